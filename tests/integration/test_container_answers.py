"""How containers put their answers on the wire (one HTTP/1.1
client): berthd's health pings and model loads and the router's upstreams
read every answer with the one parser on http-parser (common/http_response.c).

The echo container writes its /ping answers in ECHO_PING_FORM and every
other answer in ECHO_ANSWER_FORM: plain (Content-Length), chunked (small
chunks, a chunk extension, a trailer), close (delimited by the close),
bighead (a 100 KiB header) or badstatus (status "2x0"). Well-formed ones
must work end to end; the others get an exact error, and berth keeps
serving (the fixtures check for leaks at teardown).
"""
import io
import os
import re
import tarfile
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

S = uuid.uuid4().hex[:6]
BUCKET = "answers-" + S


def form_env(ping, answer, extra=None):
    env = {"ECHO_PING_FORM": ping, "ECHO_ANSWER_FORM": answer}
    env.update(extra or {})
    return env


def client_error(call, code, status):
    with pytest.raises(ClientError) as ei:
        call()
    e = ei.value
    assert bh.error_code(e) == code, e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
    return e


@pytest.fixture(scope="module")
def forms(berth):
    """One Direct endpoint: a container per answer form, pings in the same
    form for the well-formed ones (so the health check reads them too)."""
    containers = [
        bh.container("plain"),
        bh.container("chunked", env=form_env("chunked", "chunked")),
        bh.container("close", env=form_env("close", "close")),
        bh.container("bighead", env=form_env("plain", "bighead")),
        bh.container("badstatus", env=form_env("plain", "badstatus")),
    ]
    st = bh.create_endpoint_stack(berth.sm, "Answers-" + S, containers=containers, mode="Direct", inst=berth)
    yield st
    bh.delete_stack(berth, *st)


def invoke(berth, ep, host, body):
    r = berth.rt.invoke_endpoint(EndpointName=ep, Body=body, ContentType="application/octet-stream",
                                 TargetContainerHostname=host)
    return r["Body"].read()


@pytest.mark.parametrize("host", ["chunked", "close", "plain"])
def test_well_formed_answers_round_trip(berth, forms, host):
    """InService means berthd's pings parsed this form; the router reads
    bodies of many chunks (and a close-delimited body) intact, every time,
    pooled connection or not."""
    ep = forms[2]
    assert berth.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
    for size in (1, 999, 1000, 1001, 250000):
        body = os.urandom(size)
        for _ in range(3):
            assert invoke(berth, ep, host, body) == body, (host, size)


@pytest.mark.parametrize("host,pattern", [
    ("badstatus", r"malformed HTTP response: invalid HTTP status code"),
    ("bighead", r"the response's status line and headers exceed the maximum of 81920 bytes"),
])
def test_unusable_answers_are_model_errors(berth, forms, host, pattern):
    ep = forms[2]
    for _ in range(2):   # the broken connection is not pooled
        e = client_error(lambda: invoke(berth, ep, host, b"x"), "ModelError", 424)
        msg = bh.error_message(e)
        assert msg.startswith("Received server error (0) from %s with message \"" % host), msg
        assert re.search(pattern, msg), msg
    # berth keeps serving: the other containers of the endpoint answer
    assert invoke(berth, ep, "plain", b"still here") == b"still here"
    assert invoke(berth, ep, "chunked", b"still here") == b"still here"
    berth.assert_serving()


@pytest.mark.parametrize("form,pattern", [
    ("bighead", r"GET /ping: the response's status line and headers exceed the maximum of 32768 bytes"),
    ("badstatus", r"GET /ping: malformed HTTP response: invalid HTTP status code"),
])
def test_unusable_ping_answers_fail_the_endpoint(make_berth, form, pattern):
    """A container whose /ping answer cannot be read never becomes healthy;
    FailureReason says why in the parser's words."""
    b = make_berth(extra_berthd=["--health-timeout-ms", "3000"])
    st = bh.create_endpoint_stack(b.sm, "BadPing-%s-%s" % (form, S), primary=bh.container(env=form_env(form, "plain")),
                                  wait=False, inst=b)

    def settled():
        d = b.sm.describe_endpoint(EndpointName=st[2])
        return d if d["EndpointStatus"] != "Creating" else None
    d = bh.wait_until(settled, 30, "endpoint to leave Creating", interval=0.2)
    assert d["EndpointStatus"] == "Failed", d
    reason = d.get("FailureReason", "")
    assert "container primary did not pass the ping health check within 3 seconds (last: " in reason, reason
    assert re.search(pattern, reason), reason
    b.assert_serving()
    bh.delete_stack(b, *st)


def write_artifact(root, key, files):
    path = os.path.join(root, BUCKET, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))


def mme_primary(prefix, env):
    e = {"SAGEMAKER_MULTI_MODEL": "true"}
    e.update(env)
    return {"Image": bh.echo_rootfs(), "Mode": "MultiModel", "ModelDataUrl": prefix, "Environment": e}


def test_mme_loads_read_any_form(berth):
    """POST /models answered chunked (berthd's multi-model load) and the
    invocation answered chunked (the router) both work; an unusable load
    answer is a 503 naming the cause."""
    write_artifact(berth.object_root, "ok/m.tar.gz", {"model.txt": b"chunky"})
    st = bh.create_endpoint_stack(berth.sm, "AnsMme-" + S,
                                  primary=mme_primary("s3://%s/ok/" % BUCKET, form_env("chunked", "chunked")),
                                  inst=berth)
    try:
        for _ in range(2):
            r = berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"in", ContentType="text/plain",
                                         TargetModel="m.tar.gz")
            out = r["Body"].read()
            assert out.endswith(b":chunky:in"), out
    finally:
        bh.delete_stack(berth, *st)

    write_artifact(berth.object_root, "bad/m.tar.gz", {"model.txt": b"x"})
    st = bh.create_endpoint_stack(berth.sm, "AnsMmeBad-" + S,
                                  primary=mme_primary("s3://%s/bad/" % BUCKET, form_env("plain", "bighead")),
                                  inst=berth)
    try:
        for _ in range(2):   # nothing stuck: the next call tries again
            e = client_error(lambda: berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"in",
                                                              ContentType="text/plain", TargetModel="m.tar.gz"),
                             "ServiceUnavailable", 503)
            msg = bh.error_message(e)
            assert msg == ("The model container of endpoint %s gave an answer to the model load that berth cannot "
                           "use: POST /models: the response's status line and headers exceed the maximum of 32768 "
                           "bytes. Fix the container's POST /models handler." % st[2]), msg
        berth.assert_serving()
    finally:
        bh.delete_stack(berth, *st)
