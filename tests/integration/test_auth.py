"""Only callers with keys get in (issue 10): every bad signature, key or
permission, sent for real over HTTP/1.1 and HTTP/2 (h2c, h2_frames.py) to
the control plane (verified by berthd) and the runtime (verified by the
router), gets the exact answer docs/contract.md §1 pins; nothing is executed
(no model is created, the counting container receives nothing) and berth
goes on serving everyone else. The clients people use — boto3 (Debian's, in
this process, and the machine's newer one in a subprocess), the aws CLI and
curl --aws-sigv4 — succeed with the right keys. The credentials file is
reloaded on change and on SIGHUP without dropping a keep-alive connection.
With auth none, unsigned calls work and a foreign Host is refused (DNS
rebinding).

Requests are signed by botocore's SigV4Auth (berth_helpers.sign_headers) and
then broken the way each case says."""
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh
import h2_frames as h2

MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")
ROLE = bh.ROLE


def uniq():
    return uuid.uuid4().hex[:8]


PROD_KEY = {"name": "prod", "allow": "sagemaker:InvokeEndpoint", "endpoints": "prod-*"}
READER_KEY = {"name": "reader", "allow": "sagemaker:Describe* sagemaker:List*", "endpoints": "prod-*"}


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(keys=[PROD_KEY, READER_KEY])


@pytest.fixture(scope="module")
def counter(berth):
    """An endpoint whose container answers {"invocations": N}: N counts the
    requests that reached it."""
    st = bh.create_endpoint_stack(berth.sm, "Count-" + uniq(), primary=bh.container(env={"ECHO_MODE": "count"}),
                                  inst=berth)
    yield st[2]
    bh.delete_stack(berth, *st)


@pytest.fixture(scope="module")
def prod_dev(berth):
    """Echo endpoints prod-y and dev-x (the prod key may invoke prod-* only)."""
    m = "ProdDev-" + uniq()
    berth.sm.create_model(ModelName=m, ExecutionRoleArn=ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName=m, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": m, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    for ep in ("prod-y", "dev-x"):
        berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=m)
    for ep in ("prod-y", "dev-x"):
        berth.wait_in_service(ep)
    yield "prod-y", "dev-x"
    for ep in ("prod-y", "dev-x"):
        berth.delete_endpoint_and_wait(ep)
    berth.sm.delete_endpoint_config(EndpointConfigName=m)
    berth.sm.delete_model(ModelName=m)


# ---- requests built, broken and sent by hand ---------------------------------------

class Req:
    """One POST: path, body and the header list exactly as it goes out
    (Host first; repeated names allowed)."""

    def __init__(self, path, body, headers):
        self.path, self.body, self.headers = path, body, list(headers)

    def get(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set(self, name, value):
        self.headers = [(k, value if k.lower() == name.lower() else v) for k, v in self.headers]
        return self

    def drop(self, name):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        return self

    def add(self, name, value):
        self.headers.append((name, value))
        return self


def model_body(name):
    return json.dumps({"ModelName": name, "ExecutionRoleArn": ROLE,
                       "PrimaryContainer": {"Image": bh.echo_rootfs()}}).encode()


def build(inst, plane, ep=None, key=None, body=None, extra=None, sign=True, **sign_kw):
    """A request on plane ("control": CreateModel of a new model; "runtime":
    an invocation of ep), signed by botocore with key (default the
    instance's key for the path) unless sign is False. Returns (Req, name of
    the model it would create or None)."""
    name = None
    if plane == "control":
        name = "Attack-" + uniq()
        path = "/"
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.CreateModel"}
        body = model_body(name) if body is None else body
    else:
        path = "/endpoints/%s/invocations" % ep
        headers = {"Content-Type": "text/plain"}
        body = b"attack" if body is None else body
    headers.update(extra or {})
    if sign:
        headers = bh.sign_headers(inst.port, "POST", path, body=body, headers=headers, key=key, **sign_kw)
    host = sign_kw.get("host") or "127.0.0.1:%d" % inst.port
    return Req(path, body, [("Host", host)] + list(headers.items())), name


def send_h1(port, req, timeout=20):
    """(status, {lower-case name: first value}, body) over a new HTTP/1.1 connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest("POST", req.path, skip_host=True, skip_accept_encoding=True)
        for k, v in req.headers:
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(req.body)))
        c.endheaders(req.body)
        r = c.getresponse()
        data = r.read()
        headers = {}
        for k, v in r.getheaders():
            headers.setdefault(k.lower(), v)
        return r.status, headers, data
    finally:
        c.close()


def send_h2(port, req, timeout=20):
    """The same over a new prior-knowledge HTTP/2 connection (stream 1;
    Host becomes :authority)."""
    import hpack
    c = h2.H2Client(port, timeout=timeout)
    try:
        host = req.get("Host")
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", host), (":path", req.path)]
        hdrs += [(k.lower(), v) for k, v in req.headers if k.lower() != "host"]
        hdrs.append(("content-length", str(len(req.body))))
        c.open_stream(1, hdrs, end_stream=not req.body)
        if req.body:
            c.send_data(1, req.body, end_stream=True)
        decoder = hpack.Decoder()
        f = c.wait_for(lambda f: f[0] in (h2.HEADERS, h2.RST_STREAM, h2.GOAWAY) and f[2] in (0, 1), timeout)
        assert f is not None, "no answer on stream 1"
        assert f[0] == h2.HEADERS, "stream 1 ended without an answer: frame type %d" % f[0]
        headers = {}
        for k, v in h2.response_headers(f[3], decoder):
            headers.setdefault(k, v)
        data = b""
        ended = bool(f[1] & h2.END_STREAM)
        while not ended:
            d = c.wait_for(lambda f: f[0] in (h2.DATA, h2.RST_STREAM, h2.HEADERS) and f[2] == 1, timeout)
            assert d is not None, "answer body incomplete"
            if d[0] == h2.DATA:
                data += d[3]
            ended = bool(d[1] & h2.END_STREAM) or d[0] == h2.RST_STREAM
        return int(headers[":status"]), headers, data
    finally:
        c.close()


SEND = {"h1": send_h1, "h2": send_h2}


def assert_answer(plane, resp, err_type, status_control, status_runtime, message):
    """The exact answer of docs/contract.md §1 in the plane's shape.
    message: a string, or a compiled regex the whole message must match."""
    status, headers, data = resp
    try:
        doc = json.loads(data)
    except ValueError:
        raise AssertionError("not JSON: %r (status %d)" % (data[:300], status))
    if plane == "control":
        assert status == status_control, (status, doc)
        assert headers.get("content-type") == "application/x-amz-json-1.1", headers
        assert set(doc) == {"__type", "message"}, doc
        assert doc["__type"] == err_type, doc
    else:
        assert status == status_runtime, (status, doc, headers)
        assert headers.get("x-amzn-errortype") == err_type + ":", headers
        assert set(doc) == {"message"}, doc
    if isinstance(message, str):
        assert doc["message"] == message, doc["message"]
    else:
        assert message.fullmatch(doc["message"]), doc["message"]
    return doc["message"]


def count(inst, ep):
    """How many requests reached the counting container (this one included)."""
    st, _h, body = bh.http_request(inst.port, "POST", "/endpoints/%s/invocations" % ep, body=b"count",
                                   headers={"Content-Type": "text/plain"})
    assert st == 200, body
    return json.loads(body)["invocations"]


def model_absent(inst, name):
    with pytest.raises(ClientError) as e:
        inst.sm.describe_model(ModelName=name)
    assert bh.error_code(e.value) == "ValidationException", e.value.response


def attack(inst, plane, proto, ep, req, name, *expected):
    """Sends req, checks the answer, that nothing ran and that both planes
    still serve signed callers over the same protocol."""
    before = count(inst, ep) if plane == "runtime" else None
    msg = assert_answer(plane, SEND[proto](inst.port, req), *expected)
    if plane == "control":
        model_absent(inst, name)
        good, _ = build(inst, "control", body=json.dumps({"MaxResults": 1}).encode(),
                        extra={"X-Amz-Target": "SageMaker.ListModels"})
        st, _h, data = SEND[proto](inst.port, good)
        assert st == 200 and "Models" in json.loads(data), data
    else:
        assert count(inst, ep) == before + 1, "the container received the refused request"
        good, _ = build(inst, "runtime", ep)
        st, _h, data = SEND[proto](inst.port, good)
        assert st == 200 and "invocations" in json.loads(data), data
    inst.assert_serving()
    return msg


def shown(value):
    """The Authorization header as AWS quotes it: cut at 256 bytes with '...'."""
    return value if len(value) <= 256 else value[:256] + "..."


def auth_parts(value):
    """'AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…' → dict."""
    assert value.startswith("AWS4-HMAC-SHA256 "), value
    return dict(p.strip().split("=", 1) for p in value[len("AWS4-HMAC-SHA256 "):].split(","))


def auth_value(parts):
    return "AWS4-HMAC-SHA256 " + ", ".join("%s=%s" % kv for kv in parts.items())


def with_parts(req, **changes):
    """req with Authorization parts replaced (value) or removed (None)."""
    parts = auth_parts(req.get("Authorization"))
    for k, v in changes.items():
        if v is None:
            parts.pop(k, None)
        else:
            parts[k] = v
    if not parts:  # "AWS4-HMAC-SHA256 " alone would lose its space on the wire
        parts["Unknown"] = "part"
    return req.set("Authorization", auth_value(parts))


NEED = {"Credential": "Authorization header requires 'Credential' parameter. ",
        "Signature": "Authorization header requires 'Signature' parameter. ",
        "SignedHeaders": "Authorization header requires 'SignedHeaders' parameter. ",
        "date": "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "}


def incomplete(req, *missing):
    return ("IncompleteSignatureException", 400, 400,
            "".join(NEED[m] for m in ("Credential", "Signature", "SignedHeaders", "date") if m in missing)
            + "Authorization=" + shown(req.get("Authorization")))


PLANES = [("control", "h1"), ("control", "h2"), ("runtime", "h1"), ("runtime", "h2")]
IDS = ["control-h1", "control-h2", "runtime-h1", "runtime-h2"]


# ---- the header's shape ---------------------------------------------------------------

@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_no_authorization_header(berth, counter, plane, proto):
    req, name = build(berth, plane, counter)
    req.drop("Authorization")
    attack(berth, plane, proto, counter, req, name,
           "MissingAuthenticationTokenException", 403, 403, "Missing Authentication Token")
    # nor with no signing headers at all
    req, name = build(berth, plane, counter, sign=False)
    attack(berth, plane, proto, counter, req, name,
           "MissingAuthenticationTokenException", 403, 403, "Missing Authentication Token")


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_wrong_algorithm(berth, counter, plane, proto):
    for alg in ("AWS4-HMAC-SHA1 ", "AWS4-HMAC-SHA256X ", "Bearer ", "aws4-hmac-sha256 "):
        req, name = build(berth, plane, counter)
        value = alg + req.get("Authorization")[len("AWS4-HMAC-SHA256 "):]
        req.set("Authorization", value)
        attack(berth, plane, proto, counter, req, name, "IncompleteSignatureException", 400, 400,
               "Authorization header requires 'AWS4-HMAC-SHA256' as its algorithm. Authorization=" + shown(value))


# (name, parts changed, what counts as missing)
MALFORMED = [
    ("no-credential", {"Credential": None}, ["Credential"]),
    ("no-signature", {"Signature": None}, ["Signature"]),
    ("no-signedheaders", {"SignedHeaders": None}, ["SignedHeaders"]),
    ("no-parts", {"Credential": None, "Signature": None, "SignedHeaders": None}, ["Credential", "Signature",
                                                                                   "SignedHeaders"]),
    ("credential-4-parts", {"Credential": "KEYID/20261201/us-east-1/sagemaker"}, ["Credential"]),
    ("credential-empty-part", {"Credential": "KEYID//us-east-1/sagemaker/aws4_request"}, ["Credential"]),
    ("signature-63-hex", {"Signature": "a" * 63}, ["Signature"]),
    ("signature-not-hex", {"Signature": "g" * 64}, ["Signature"]),
    ("signedheaders-upper-case", {"SignedHeaders": "Content-Type;Host;X-Amz-Date"}, ["SignedHeaders"]),
    ("signedheaders-unsorted", {"SignedHeaders": "x-amz-date;host;content-type"}, ["SignedHeaders"]),
    ("signedheaders-empty", {"SignedHeaders": ""}, ["SignedHeaders"]),
    ("two-garbled", {"Credential": "garbage", "Signature": "zz"}, ["Credential", "Signature"]),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_malformed_authorization(berth, counter, plane, proto, case):
    _, changes, missing = case
    req, name = build(berth, plane, counter)
    if "Credential" in changes and changes["Credential"] and changes["Credential"].startswith("KEYID"):
        changes = dict(changes, Credential=changes["Credential"].replace("KEYID", berth.key_for(req.path)[0]))
    with_parts(req, **changes)
    attack(berth, plane, proto, counter, req, name, *incomplete(req, *missing))


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_x_amz_date_missing_or_malformed(berth, counter, plane, proto):
    req, name = build(berth, plane, counter)
    req.drop("X-Amz-Date")
    attack(berth, plane, proto, counter, req, name, *incomplete(req, "date"))
    # missing date and a missing part: one sentence each, in order
    req, name = build(berth, plane, counter)
    req.drop("X-Amz-Date")
    with_parts(req, Signature=None)
    attack(berth, plane, proto, counter, req, name, *incomplete(req, "Signature", "date"))
    for bad in ("2026-12-01T13:00:00Z", "20261201T130000", "20261301T130000Z", "yesterday"):
        req, name = build(berth, plane, counter)
        req.set("X-Amz-Date", bad)
        attack(berth, plane, proto, counter, req, name, "IncompleteSignatureException", 400, 400,
               "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601" % bad)


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_repeated_and_huge_authorization(berth, counter, plane, proto):
    req, name = build(berth, plane, counter)
    req.add("Authorization", req.get("Authorization"))
    attack(berth, plane, proto, counter, req, name, "IncompleteSignatureException", 400, 400,
           "Only one Authorization header may be sent; this request has 2.")
    req, name = build(berth, plane, counter)
    other, _ = build(berth, plane, counter, key=berth.admin_key)
    req.add("Authorization", other.get("Authorization")).add("Authorization", "AWS4-HMAC-SHA256 x")
    attack(berth, plane, proto, counter, req, name, "IncompleteSignatureException", 400, 400,
           "Only one Authorization header may be sent; this request has 3.")
    req, name = build(berth, plane, counter)
    value = req.get("Authorization") + ", Padding=" + "a" * 5000
    req.set("Authorization", value)
    attack(berth, plane, proto, counter, req, name, "IncompleteSignatureException", 400, 400,
           "Authorization header of %d bytes exceeds the limit of 4096 bytes." % len(value))
    # exactly at the limit it is read, and an unknown component is ignored, as AWS does
    req, name = build(berth, plane, counter)
    value = req.get("Authorization")
    value = value + ", P=" + "a" * (4096 - len(value) - 4)
    assert len(value) == 4096
    req.set("Authorization", value)
    st, _h, data = SEND[proto](berth.port, req)
    assert st == 200, data
    if plane == "control":
        berth.sm.delete_model(ModelName=name)


# ---- keys and signatures ------------------------------------------------------------

@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_unknown_key_and_wrong_secret(berth, counter, plane, proto):
    req, name = build(berth, plane, counter, key=bh.generate_key())
    attack(berth, plane, proto, counter, req, name, "UnrecognizedClientException", 403, 403,
           "The security token included in the request is invalid.")
    own = berth.key_for(req.path)
    req, name = build(berth, plane, counter, key=(own[0], bh.generate_key()[1]))
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)
    # another key's secret with this key's id
    other = berth.keys["prod"]
    req, name = build(berth, plane, counter, key=(own[0], other[1]))
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_request_changed_after_signing(berth, counter, plane, proto):
    # the body: one byte changed, one byte more
    for change in (lambda b: b[:-1] + bytes([b[-1] ^ 1]), lambda b: b + b" "):
        req, name = build(berth, plane, counter)
        req.body = change(req.body)
        attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)
    # a signed header changed, and one absent
    req, name = build(berth, plane, counter)
    req.set("Content-Type", req.get("Content-Type") + "; charset=utf-8")
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)
    req, name = build(berth, plane, counter, extra={"X-Amz-Meta-Note": "signed"})
    req.drop("X-Amz-Meta-Note")
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)
    # the signature itself, one digit changed
    req, name = build(berth, plane, counter)
    sig = auth_parts(req.get("Authorization"))["Signature"]
    with_parts(req, Signature=sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)
    # the Host the signature covers is not the one sent
    req, name = build(berth, plane, counter)
    req.set("Host", "localhost:%d" % berth.port)
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403, MISMATCH)


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_host_must_be_signed(berth, counter, plane, proto):
    req, name = build(berth, plane, counter)
    signed = auth_parts(req.get("Authorization"))["SignedHeaders"].split(";")
    with_parts(req, SignedHeaders=";".join(h for h in signed if h != "host"))
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
           "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_content_sha256_must_be_the_body_hash(berth, counter, plane, proto):
    # signed with a hash of another body: the signature holds, the hash does not
    for value in (hashlib.sha256(b"another body").hexdigest(), "UNSIGNED-PAYLOAD"):
        req, name = build(berth, plane, counter, extra={"X-Amz-Content-Sha256": value})
        attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
               "The provided 'x-amz-content-sha256' header does not match what was computed.")
    # the right hash is fine
    body = model_body("Sha-" + uniq()) if plane == "control" else b"sha"
    req, _ = build(berth, plane, counter, body=body, extra={"X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest()})
    st, _h, data = SEND[proto](berth.port, req)
    assert st == 200, data
    if plane == "control":
        berth.sm.delete_model(ModelName=json.loads(body)["ModelName"])


AMZ = "%Y%m%dT%H%M%SZ"


def parse_amz(text):
    return datetime.datetime.strptime(text, AMZ).replace(tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_clock_skew_beyond_15_minutes(berth, counter, plane, proto):
    for shift, word in ((-16 * 60, "expired"), (16 * 60, "ahead")):
        req, name = build(berth, plane, counter, shift_s=shift)
        sent = req.get("X-Amz-Date")
        t0 = datetime.datetime.now(datetime.timezone.utc)
        stamp = r"(\d{8}T\d{6}Z)"
        if word == "expired":
            pattern = r"Signature expired: %s is now earlier than %s \(%s - 15 min\.\)" % (stamp, stamp, stamp)
        else:
            pattern = r"Signature not yet current: %s is still later than %s \(%s \+ 15 min\.\)" % (stamp, stamp,
                                                                                                   stamp)
        msg = attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
                     re.compile(pattern))
        m = re.fullmatch(pattern, msg)
        assert m.group(1) == sent, (msg, sent)
        now, bound = parse_amz(m.group(3)), parse_amz(m.group(2))
        assert abs((now - t0).total_seconds()) <= 5, (msg, t0)
        assert bound - now == datetime.timedelta(minutes=-15 if word == "expired" else 15), msg
    # 14 minutes either way is within the skew
    for shift in (-14 * 60, 14 * 60):
        req, name = build(berth, plane, counter, shift_s=shift)
        st, _h, data = SEND[proto](berth.port, req)
        assert st == 200, data
        if plane == "control":
            berth.sm.delete_model(ModelName=name)


@pytest.mark.parametrize("plane,proto", PLANES, ids=IDS)
def test_credential_scope(berth, counter, plane, proto):
    req, name = build(berth, plane, counter, region="eu-west-1")
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
           "Credential should be scoped to a valid region, not 'eu-west-1'. ")
    for service in ("s3", "sagemaker-runtime"):
        req, name = build(berth, plane, counter, service=service)
        attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
               "Credential should be scoped to correct service: 'sagemaker'. ")
    req, name = build(berth, plane, counter)
    cred = auth_parts(req.get("Authorization"))["Credential"]
    with_parts(req, Credential=cred.replace("/aws4_request", "/aws4_requesx"))
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
           "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requesx'. ")
    # the scope's date is not X-Amz-Date's day
    req, name = build(berth, plane, counter)
    amz_day = req.get("X-Amz-Date")[:8]
    other = (parse_amz(req.get("X-Amz-Date")) - datetime.timedelta(days=1)).strftime("%Y%m%d")
    with_parts(req, Credential=auth_parts(req.get("Authorization"))["Credential"].replace(
        "/%s/" % amz_day, "/%s/" % other))
    attack(berth, plane, proto, counter, req, name, "InvalidSignatureException", 403, 403,
           "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
           "'%s' != '%s', from 'X-Amz-Date'." % (other, amz_day))


# ---- permissions ----------------------------------------------------------------------

def denied(user, action, resource):
    return ("User: arn:aws:iam::%s:user/%s is not authorized to perform: sagemaker:%s on resource: %s because no "
            "identity-based policy allows the sagemaker:%s action" % (bh.ACCOUNT, user, action, resource, action))


@pytest.mark.parametrize("proto", ["h1", "h2"])
def test_invoke_only_key_cannot_create_a_model(berth, counter, proto):
    req, name = build(berth, "control", key=berth.invoke_key)
    attack(berth, "control", proto, counter, req, name, "AccessDeniedException", 400, 403,
           denied("invoke", "CreateModel", bh.arn("model", name)))
    # the same through boto3: the client sees AccessDeniedException
    rt_key_sm = berth.client("sagemaker", key=berth.invoke_key)
    name = "Denied-" + uniq()
    with pytest.raises(ClientError) as e:
        rt_key_sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=bh.container())
    assert bh.error_code(e.value) == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert bh.error_message(e.value) == denied("invoke", "CreateModel", bh.arn("model", name))
    model_absent(berth, name)
    # and it may invoke
    assert berth.rt.invoke_endpoint(EndpointName=counter, Body=b"x")["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("proto", ["h1", "h2"])
def test_endpoint_glob_limits_a_key(berth, prod_dev, proto):
    prod, dev = prod_dev
    key = berth.keys["prod"]
    req, _ = build(berth, "runtime", dev, key=key, body=b"to dev")
    assert_answer("runtime", SEND[proto](berth.port, req), "AccessDeniedException", 400, 403,
                  denied("prod", "InvokeEndpoint", bh.arn("endpoint", dev)))
    req, _ = build(berth, "runtime", prod, key=key, body=b"to prod")
    st, _h, data = SEND[proto](berth.port, req)
    assert (st, data) == (200, b"to prod")
    # boto3 with that key: the same both ways
    rt = berth.client("sagemaker-runtime", key=key)
    assert rt.invoke_endpoint(EndpointName=prod, Body=b"boto3")["Body"].read() == b"boto3"
    with pytest.raises(ClientError) as e:
        rt.invoke_endpoint(EndpointName=dev, Body=b"boto3")
    assert bh.error_code(e.value) == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert bh.error_message(e.value) == denied("prod", "InvokeEndpoint", bh.arn("endpoint", dev))
    berth.assert_serving()


def test_resource_globs_on_the_control_plane(berth, prod_dev):
    """reader: Describe* and List* on prod-* endpoints. A List call is on
    every endpoint (endpoint/*), which the glob does not allow."""
    prod, dev = prod_dev
    sm = berth.client("sagemaker", key=berth.keys["reader"])
    assert sm.describe_endpoint(EndpointName=prod)["EndpointName"] == prod
    for call, action, resource in (
            (lambda: sm.describe_endpoint(EndpointName=dev), "DescribeEndpoint", bh.arn("endpoint", dev)),
            (lambda: sm.list_endpoints(), "ListEndpoints", "arn:aws:sagemaker:%s:%s:endpoint/*" % (bh.REGION,
                                                                                                   bh.ACCOUNT)),
            (lambda: sm.delete_endpoint(EndpointName=prod), "DeleteEndpoint", bh.arn("endpoint", prod))):
        with pytest.raises(ClientError) as e:
            call()
        assert bh.error_code(e.value) == "AccessDeniedException", e.value.response
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert bh.error_message(e.value) == denied("reader", action, resource)
    # models are not restricted for it: listing them is allowed
    assert "Models" in sm.list_models()
    assert berth.sm.describe_endpoint(EndpointName=prod)["EndpointStatus"] == "InService"


# ---- the clients people use -----------------------------------------------------------

def test_boto3_in_process_with_both_keys(berth, counter):
    assert "Models" in berth.sm.list_models()
    r = berth.rt.invoke_endpoint(EndpointName=counter, Body=b"x", ContentType="text/plain")
    assert "invocations" in json.loads(r["Body"].read())
    # the admin key may invoke too
    rt = berth.client("sagemaker-runtime", key=berth.admin_key)
    assert rt.invoke_endpoint(EndpointName=counter, Body=b"x")["ResponseMetadata"]["HTTPStatusCode"] == 200


NEWER_BOTO3 = r'''
import json, sys
import boto3, botocore
url, ep, admin_id, admin_secret, inv_id, inv_secret = sys.argv[1:]
kw = dict(endpoint_url=url, region_name="us-east-1",
          config=botocore.config.Config(retries={"total_max_attempts": 1}))
sm = boto3.client("sagemaker", aws_access_key_id=admin_id, aws_secret_access_key=admin_secret, **kw)
rt = boto3.client("sagemaker-runtime", aws_access_key_id=inv_id, aws_secret_access_key=inv_secret, **kw)
models = sm.list_models()["Models"]
body = rt.invoke_endpoint(EndpointName=ep, Body=b"newer", ContentType="text/plain")["Body"].read()
try:  # the invoke-only key may not list models
    boto3.client("sagemaker", aws_access_key_id=inv_id, aws_secret_access_key=inv_secret, **kw).list_models()
    denied = None
except botocore.exceptions.ClientError as e:
    denied = e.response["Error"]["Code"]
print(json.dumps({"boto3": boto3.__version__, "models": len(models), "body": body.decode(), "denied": denied}))
'''


def test_newer_boto3_in_a_subprocess(berth, counter):
    """The machine's python3 (not Debian's) and its boto3."""
    py = shutil.which("python3")
    assert py and os.path.realpath(py) != os.path.realpath("/usr/bin/python3"), py
    r = subprocess.run([py, "-c", NEWER_BOTO3, berth.url, counter, berth.admin_key[0], berth.admin_key[1],
                        berth.invoke_key[0], berth.invoke_key[1]], capture_output=True, timeout=60,
                       env=dict(os.environ, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null"))
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    assert int(out["boto3"].split(".")[1]) >= 30, out
    assert out["models"] >= 1 and "invocations" in out["body"], out
    assert out["denied"] == "AccessDeniedException", out


def run_aws(berth, aws, key, *args):
    home = tempfile.mkdtemp(prefix="berth-aws-", dir="/var/tmp")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key[0], AWS_SECRET_ACCESS_KEY=key[1], AWS_PAGER="", HOME=home,
               AWS_CONFIG_FILE=os.path.join(home, "config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "credentials"), AWS_MAX_ATTEMPTS="1")
    try:
        return subprocess.run([aws, "--endpoint-url", berth.url, "--region", "us-east-1", "--output", "json"]
                              + list(args), capture_output=True, timeout=90, env=env, cwd=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def aws_clis():
    out = ["/usr/bin/aws"]
    other = shutil.which("aws")
    if other and os.path.realpath(other) != os.path.realpath("/usr/bin/aws"):
        out.append(other)
    return out


@pytest.mark.parametrize("aws", aws_clis())
def test_aws_cli(berth, counter, aws, tmp_path):
    r = run_aws(berth, aws, berth.admin_key, "sagemaker", "list-models")
    assert r.returncode == 0, r.stderr
    assert "Models" in json.loads(r.stdout)
    body = tmp_path / "body"
    body.write_bytes(b"from the aws cli")
    out = tmp_path / "out"
    r = run_aws(berth, aws, berth.invoke_key, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", counter,
                "--body", "fileb://%s" % body, str(out))
    assert r.returncode == 0, r.stderr
    assert "invocations" in json.loads(out.read_bytes())
    # a wrong secret: the CLI shows AWS's words
    r = run_aws(berth, aws, (berth.admin_key[0], "wrong"), "sagemaker", "list-models")
    assert r.returncode != 0
    assert b"InvalidSignatureException" in r.stderr and MISMATCH.encode() in r.stderr, r.stderr


@pytest.mark.parametrize("version", ["--http1.1", "--http2-prior-knowledge"])
def test_curl_aws_sigv4(berth, counter, version):
    def curl(key, path, data, *headers):
        args = ["curl", "-sS", version, "--aws-sigv4", "aws:amz:us-east-1:sagemaker", "--user", "%s:%s" % key,
                "-X", "POST", "--data-binary", data, "-w", "\n%{http_code}"]
        for h in headers:
            args += ["-H", h]
        r = subprocess.run(args + [berth.url + path], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        body, _, code = r.stdout.decode().rpartition("\n")
        return int(code), body
    code, body = curl(berth.admin_key, "/", "{}", "X-Amz-Target: SageMaker.ListModels",
                      "Content-Type: application/x-amz-json-1.1")
    assert code == 200 and "Models" in json.loads(body), body
    code, body = curl(berth.invoke_key, "/endpoints/%s/invocations" % counter, "curl", "Content-Type: text/plain")
    assert code == 200 and "invocations" in json.loads(body), body
    code, body = curl(berth.invoke_key, "/", "{}", "X-Amz-Target: SageMaker.ListModels",
                      "Content-Type: application/x-amz-json-1.1")
    assert code == 400 and json.loads(body)["__type"] == "AccessDeniedException", body


def test_berth_cli_invoke_signs(berth, counter, prod_dev):
    prod, dev = prod_dev
    r = berth.cli("invoke", prod, "--url", berth.url, "--credentials", berth.credentials_path, input=b"cli")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"cli"
    # --key picks the section; the prod key may not invoke dev-x
    r = berth.cli("invoke", dev, "--url", berth.url, "--credentials", berth.credentials_path, "--key", "prod",
                  input=b"cli")
    assert r.returncode == 1
    assert b"AccessDeniedException" in r.stderr and b"HTTP 403" in r.stderr, r.stderr
    # AWS_* variables come first
    env = dict(os.environ, AWS_ACCESS_KEY_ID=berth.keys["prod"][0], AWS_SECRET_ACCESS_KEY=berth.keys["prod"][1])
    r = subprocess.run([os.path.join(berth.build, "berth"), "invoke", prod, "--url", berth.url, "--credentials",
                        "/nonexistent"], input=b"env", capture_output=True, timeout=30, env=env)
    assert (r.returncode, r.stdout) == (0, b"env"), r.stderr
    # a body over 1 MiB: libcurl sends Expect: 100-continue (unsigned, as botocore leaves it)
    big = os.urandom(1536 * 1024)
    r = subprocess.run([os.path.join(berth.build, "berth"), "invoke", prod, "--url", berth.url, "--credentials",
                        "/nonexistent"], input=big, capture_output=True, timeout=30, env=env)
    assert (r.returncode, r.stdout == big) == (0, True), r.stderr
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    r = subprocess.run([os.path.join(berth.build, "berth"), "invoke", prod, "--url", berth.url],
                       input=b"env", capture_output=True, timeout=30, env=env)
    assert r.returncode == 1 and b"InvalidSignatureException" in r.stderr, r.stderr


# ---- the credentials file changes ----------------------------------------------------

class KeepAlive:
    """One HTTP/1.1 connection kept open across the calls."""

    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.c.connect()
        self.local = self.c.sock.getsockname()

    def call(self, plane, key, ep=None, may_close=False):
        if plane == "control":
            path, body = "/", b'{"MaxResults": 1}'
            headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListModels"}
        else:
            path, body, headers = "/endpoints/%s/invocations" % ep, b"ka", {"Content-Type": "text/plain"}
        headers = bh.sign_headers(self.port, "POST", path, body=body, headers=headers, key=key)
        self.c.request("POST", path, body=body, headers=headers)
        r = self.c.getresponse()
        data = r.read()
        if not may_close:
            assert self.c.sock is not None and self.c.sock.getsockname() == self.local, "the connection was dropped"
        return r.status, data

    def close(self):
        self.c.close()


def _reload_case(berth, counter, plane, notify):
    """A connection opened before the change keeps working across it and
    sees the new keys. Refused probes go on connections of their own (the
    router may close one after refusing a request by its head)."""
    def probe(key):
        ka = KeepAlive(berth.port)
        try:
            return ka.call(plane, key, counter, may_close=True)
        finally:
            ka.close()
    ka = KeepAlive(berth.port)
    try:
        # an invoke-only key on the runtime (the router verifies it), a control-plane one else
        spec = {"name": "late-" + uniq(),
                "allow": "sagemaker:ListModels" if plane == "control" else "sagemaker:InvokeEndpoint"}
        usual = berth.admin_key if plane == "control" else berth.invoke_key
        st, _ = ka.call(plane, usual, counter)
        assert st == 200
        new = bh.generate_key()
        st, data = probe(new)
        assert st == 403 and b"The security token included in the request is invalid." in data, data
        berth.key_specs.append(dict(spec, key_id=new[0], secret=new[1]))
        berth.keys[spec["name"]] = new
        berth.write_credentials()
        notify()
        bh.wait_until(lambda: probe(new)[0] == 200, 10, "the added key to be accepted")
        # the connection opened before the change: still open, and the new key works on it
        st, _ = ka.call(plane, new, counter)
        assert st == 200
        berth.remove_key(spec["name"])
        notify()
        bh.wait_until(lambda: probe(new)[0] == 403, 10, "the removed key to be refused")
        st, data = probe(new)
        assert b"The security token included in the request is invalid." in data, data
        # the other keys never stopped working, on the same connection
        st, _ = ka.call(plane, usual, counter)
        assert st == 200
        # and on it too the removed key is refused now
        st, data = ka.call(plane, new, counter, may_close=True)
        assert st == 403 and b"The security token included in the request is invalid." in data, data
    finally:
        ka.close()
    berth.assert_serving()


@pytest.mark.parametrize("plane", ["control", "runtime"])
def test_key_added_and_removed_with_sighup(berth, counter, plane):
    _reload_case(berth, counter, plane, lambda: berth.berthd.send_signal(signal.SIGHUP))


@pytest.mark.parametrize("plane", ["control", "runtime"])
def test_key_added_and_removed_file_change_alone(berth, counter, plane):
    _reload_case(berth, counter, plane, lambda: None)


def test_a_broken_credentials_file_keeps_the_old_keys(berth, counter):
    """berthd refuses a file it cannot read whole and keeps serving with the
    keys it had."""
    with open(berth.credentials_path) as f:
        good = f.read()
    try:
        bh.write_private_file(berth.credentials_path, good + "[broken\n")
        berth.berthd.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert "Models" in berth.sm.list_models()
        assert berth.rt.invoke_endpoint(EndpointName=counter, Body=b"x")["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert berth.berthd.poll() is None
    finally:
        bh.write_private_file(berth.credentials_path, good)
        berth.berthd.send_signal(signal.SIGHUP)
    berth.assert_serving()


# ---- auth none -------------------------------------------------------------------------

def rebinding_message(host):
    return ("Host '%s' is not served by this berth: with auth none it answers only localhost, 127.0.0.1, [::1] "
            "and its listen addresses (a guard against DNS rebinding). Call it by one of those names, or run berthd "
            "with keys (auth sigv4)." % host)


def test_auth_none_unsigned_calls_and_dns_rebinding(make_berth):
    inst = make_berth(auth="none")
    # unsigned boto3 (botocore.UNSIGNED) on both planes
    m, _c, ep = bh.create_endpoint_stack(inst.sm, "NoAuth-" + uniq(), primary=bh.container(), inst=inst)
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"open")["Body"].read() == b"open"
    for plane in ("control", "runtime"):
        for proto in ("h1", "h2"):
            for host in ("127.0.0.1:%d" % inst.port, "localhost:%d" % inst.port, "localhost"):
                req, name = build(inst, plane, ep, sign=False)
                req.set("Host", host)
                st, _h, data = SEND[proto](inst.port, req)
                assert st == 200, (host, data)
                if plane == "control":
                    inst.sm.delete_model(ModelName=name)
            for host in ("evil.example", "evil.example:%d" % inst.port, "127.0.0.1.evil.example"):
                req, name = build(inst, plane, ep, sign=False)
                req.set("Host", host)
                assert_answer(plane, SEND[proto](inst.port, req), "AccessDeniedException", 403, 403,
                              rebinding_message(host))
                if plane == "control":
                    model_absent(inst, name)
            # a signed request with a foreign Host is refused the same way
            req, name = build(inst, plane, ep, key=bh.generate_key(), host="evil.example")
            assert_answer(plane, SEND[proto](inst.port, req), "AccessDeniedException", 403, 403,
                          rebinding_message("evil.example"))
    inst.assert_serving()
