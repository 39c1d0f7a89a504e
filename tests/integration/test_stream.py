"""InvokeEndpointWithResponseStream (POST /endpoints/E/invocations-response-stream).

The echo container streams when the request's custom attributes (or its
ECHO_STREAM) say so: `stream=N` chunks, `delay=MS` between them, `bytes=B`
(each chunk B bytes of the pattern a..z, continued across chunks) or the
body cut in N parts, `stamp=1` (each chunk "I <unix µs>\\n", written when
sent), `reset=K` / `hang=K` (reset the connection, or stop answering,
after K chunks). Without them it answers with a Content-Length.

The client is the real one: the machine's newer boto3 (Debian's 1.26 has no
invoke_endpoint_with_response_stream), run as a subprocess from PATH's
python3, and botocore's own event-stream parser (EventStreamBuffer) over
what curl receives on HTTP/1.1 and HTTP/2.

Bad input: a container that does not stream (one PayloadPart), one reset
or killed mid-stream (ModelStreamError StreamBroken), one that stops
answering mid-stream (ModelInvocationTimeExceeded), one that fails before
its first byte (ModelError 424, as InvokeEndpoint), a client that goes
away mid-stream (the container's connection is closed), a client that does
not read (back-pressure: the router's memory stays bounded). The module's
berth fixture checks for leaks and sanitizer reports at teardown.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
from botocore.eventstream import EventStreamBuffer

import berth_helpers as bh

S = uuid.uuid4().hex[:6]
TIMEOUT_MS = 5000  # the router's --invocation-timeout-ms in this module


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(invocation_timeout_ms=TIMEOUT_MS)


@pytest.fixture(scope="module")
def ep(berth):
    _, _, name = bh.create_endpoint_stack(berth.sm, "strm-" + S, primary=bh.container(), inst=berth)
    return name


def stream_path(ep):
    return "/endpoints/%s/invocations-response-stream" % ep


def pattern(offset, n):
    """The bytes echo's bytes=B mode sends from offset on."""
    return bytes(97 + (k % 26) for k in range(offset, offset + n))


# ---- the newer boto3, in a subprocess --------------------------------------

NEWER_PYTHON = shutil.which("python3")

STREAM_CLIENT = r'''
import base64, json, sys, time
import boto3, botocore
from botocore.exceptions import ClientError
a = json.load(sys.stdin)
rt = boto3.client("sagemaker-runtime", endpoint_url=a["url"], region_name="us-east-1",
                  aws_access_key_id=a["key"][0], aws_secret_access_key=a["key"][1],
                  config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=60))
out = {"parts": [], "error": None, "boto3": boto3.__version__}
kw = dict(EndpointName=a["endpoint"], Body=a["body"].encode())
kw.update(a["kw"])
try:
    r = rt.invoke_endpoint_with_response_stream(**kw)
    out["meta"] = {k: r.get(k) for k in ("ContentType", "InvokedProductionVariant", "CustomAttributes")}
    out["headers"] = r["ResponseMetadata"]["HTTPHeaders"]
    for ev in r["Body"]:
        if "PayloadPart" in ev:
            out["parts"].append([time.time(), base64.b64encode(ev["PayloadPart"]["Bytes"]).decode()])
        else:
            out["other"] = list(ev)
except ClientError as e:
    out["error"] = {"code": e.response.get("Error", {}).get("Code"),
                    "message": e.response.get("Error", {}).get("Message"),
                    "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
                    "type": type(e).__name__}
print(json.dumps(out))
'''


def boto3_stream(inst, ep, body=b"", **kw):
    """Runs invoke_endpoint_with_response_stream with the newer boto3.
    Returns {"parts": [(time received, bytes)], "error", "meta", "headers"}."""
    assert NEWER_PYTHON and os.path.realpath(NEWER_PYTHON) != os.path.realpath("/usr/bin/python3"), NEWER_PYTHON
    args = {"url": inst.url, "key": list(inst.invoke_key), "endpoint": ep, "body": body.decode(), "kw": kw}
    r = subprocess.run([NEWER_PYTHON, "-c", STREAM_CLIENT], input=json.dumps(args).encode(), capture_output=True,
                       timeout=120, env=dict(os.environ, AWS_CONFIG_FILE="/dev/null",
                                             AWS_SHARED_CREDENTIALS_FILE="/dev/null"))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = json.loads(r.stdout)
    assert int(out["boto3"].split(".")[1]) >= 30, out["boto3"]
    out["parts"] = [(t, base64.b64decode(b)) for t, b in out["parts"]]
    return out


# ---- raw: curl + botocore's parser ----------------------------------------

def parse_events(data):
    """[(headers, payload)] of the event stream bytes, checked by botocore
    (prelude and message CRCs, lengths); the bytes must end on a message."""
    buf = EventStreamBuffer()
    buf.add_data(data)
    out = [(m.headers, m.payload) for m in buf]
    assert sum(12 + len(m[1]) + 4 for m in out) <= len(data)
    return out


def curl_stream(inst, ep, body, headers=None, version="--http1.1", max_time=60):
    """(curl's exit code, response headers lower-cased, body bytes) of a
    signed stream request sent with curl."""
    path = stream_path(ep)
    h = bh.sign_headers(inst.port, "POST", path, body=body, headers=dict(headers or {}))
    r = subprocess.run(["curl", "-sS", version, "-m", str(max_time), "-D", "/dev/stderr", "-X", "POST",
                        "--data-binary", "@-"] + bh.header_args(h) + [inst.url + path],
                       input=body, capture_output=True, timeout=max_time + 30)
    heads = {}
    for line in r.stderr.decode(errors="replace").splitlines():
        k, sep, v = line.partition(":")
        if sep and not k.startswith("curl"):
            heads[k.strip().lower()] = v.strip()
        elif line.startswith("HTTP/"):
            heads[":status"] = line.split()[1]
    return r.returncode, heads, r.stdout


PART_HEADERS = {":event-type": "PayloadPart", ":message-type": "event", ":content-type": "application/octet-stream"}


# ---- tests ------------------------------------------------------------------

def test_first_part_arrives_before_the_container_writes_its_last_chunk(berth, ep):
    """Stamps written by the container as it sends each chunk against the
    time the client got each PayloadPart: the first part is in the client's
    hands long before the last chunk was even written."""
    out = boto3_stream(berth, ep, b"x", CustomAttributes="stream=5,delay=300,stamp=1", ContentType="text/plain")
    assert out["error"] is None, out
    parts = out["parts"]
    text = b"".join(p for _, p in parts).decode()
    lines = text.splitlines()
    assert [l.split()[0] for l in lines] == ["0", "1", "2", "3", "4"], text
    stamps = [int(l.split()[1]) / 1e6 for l in lines]
    first_received = parts[0][0]
    assert first_received < stamps[-1] - 0.5, (first_received, stamps)
    # each chunk became its own part, delivered as it was written
    assert len(parts) == 5, [p for _, p in parts]
    for (received, _), written in zip(parts, stamps):
        assert 0 <= received - written < 0.5, (received, written)  # each part as it was written
    assert out["meta"]["ContentType"] == "text/plain", out["meta"]
    assert out["meta"]["InvokedProductionVariant"] == "AllTraffic", out["meta"]
    assert out["headers"]["content-type"] == "application/vnd.amazon.eventstream", out["headers"]


def test_large_answer_concatenates_exactly(berth, ep):
    out = boto3_stream(berth, ep, b"x", CustomAttributes="stream=64,bytes=65536")
    assert out["error"] is None, out
    data = b"".join(p for _, p in out["parts"])
    assert len(data) == 64 * 65536
    assert data == pattern(0, 64 * 65536)


def test_body_in_parts_and_accept_header(berth, ep):
    body = b"streamed back in three parts"
    out = boto3_stream(berth, ep, body, CustomAttributes="stream=3", Accept="application/jsonlines",
                       ContentType="application/x-text")
    assert out["error"] is None, out
    assert [p for _, p in out["parts"]] == [body[0:10], body[10:19], body[19:]]  # 28 bytes: 10, 9, 9
    assert out["meta"]["ContentType"] == "application/x-text"


@pytest.mark.parametrize("version", ["--http1.1", "--http2-prior-knowledge"])
def test_raw_event_stream_over_http1_and_http2(berth, ep, version):
    body = b"hello, event stream"
    code, heads, data = curl_stream(berth, ep, body, {"X-Amzn-SageMaker-Custom-Attributes": "stream=4,delay=20",
                                                      "Content-Type": "text/csv"}, version)
    assert code == 0, (code, heads)
    assert heads[":status"] == "200", heads
    assert heads["content-type"] == "application/vnd.amazon.eventstream", heads
    assert heads["x-amzn-sagemaker-content-type"] == "text/csv", heads
    assert heads["x-amzn-invoked-production-variant"] == "AllTraffic", heads
    assert "content-length" not in heads, heads
    if version == "--http1.1":
        assert heads["transfer-encoding"] == "chunked", heads
    events = parse_events(data)
    assert len(events) == 4
    for h, _ in events:
        assert h == PART_HEADERS, h
    assert b"".join(p for _, p in events) == body
    assert sum(12 + len(h[1]) + 4 for h in events) < len(data)  # headers are in there too


def test_container_that_does_not_stream_gives_one_part(berth, ep):
    body = b"a Content-Length answer" * 1000
    out = boto3_stream(berth, ep, body, ContentType="text/plain")
    assert out["error"] is None, out
    assert len(out["parts"]) == 1
    assert out["parts"][0][1] == body
    code, heads, data = curl_stream(berth, ep, body, {"Content-Type": "text/plain"}, "--http2-prior-knowledge")
    assert code == 0 and heads[":status"] == "200", heads
    events = parse_events(data)
    assert [p for _, p in events] == [body]


def test_reset_mid_stream_ends_with_model_stream_error(berth, ep):
    out = boto3_stream(berth, ep, b"x", CustomAttributes="stream=5,bytes=100,delay=50,reset=2")
    assert [p for _, p in out["parts"]] == [pattern(0, 100), pattern(100, 100)], out
    assert out["error"]["code"] == "ModelStreamError", out
    assert out["error"]["type"] == "EventStreamError", out
    assert "reset or closed" in out["error"]["message"], out
    # the ErrorCode, as botocore's ResponseStream shape has it
    code, heads, data = curl_stream(berth, ep, b"x", {"X-Amzn-SageMaker-Custom-Attributes": "stream=5,bytes=100,reset=2"})
    assert code == 0 and heads[":status"] == "200"
    events = parse_events(data)
    assert [h for h, _ in events[:2]] == [PART_HEADERS, PART_HEADERS]
    h, payload = events[2]
    assert h == {":exception-type": "ModelStreamError", ":message-type": "exception",
                 ":content-type": "application/json"}, h
    doc = json.loads(payload)
    assert doc["ErrorCode"] == "StreamBroken", doc
    assert "reset or closed" in doc["Message"] and "200 bytes were sent" in doc["Message"], doc
    assert len(events) == 3
    berth.assert_serving()
    assert [p for _, p in boto3_stream(berth, ep, b"after", CustomAttributes="stream=2")["parts"]] == [b"aft", b"er"]


def test_container_silent_mid_stream_times_out(berth, ep):
    t0 = time.monotonic()
    code, heads, data = curl_stream(berth, ep, b"x", {"X-Amzn-SageMaker-Custom-Attributes": "stream=5,bytes=10,hang=2"})
    took = time.monotonic() - t0
    assert code == 0 and heads[":status"] == "200", heads
    events = parse_events(data)
    assert [p for _, p in events[:2]] == [pattern(0, 10), pattern(10, 10)]
    h, payload = events[2]
    assert h[":exception-type"] == "ModelStreamError", h
    doc = json.loads(payload)
    assert doc["ErrorCode"] == "ModelInvocationTimeExceeded", doc
    assert "within %d ms" % TIMEOUT_MS in doc["Message"], doc
    assert TIMEOUT_MS / 1000 - 0.5 < took < TIMEOUT_MS / 1000 + 5, took


@pytest.mark.parametrize("spec", ["stream=3,reset=0", "stream=3,hang=0"])
def test_failure_before_the_first_byte_is_a_model_error(berth, ep, spec):
    out = boto3_stream(berth, ep, b"x", CustomAttributes=spec)
    assert out["parts"] == []
    assert out["error"]["code"] == "ModelError", out
    assert out["error"]["status"] == 424, out
    st, heads, body = bh.http_request(berth.port, "POST", stream_path(ep), body=b"x",
                                      headers={"X-Amzn-SageMaker-Custom-Attributes": spec}, timeout=30)
    assert st == 424 and heads["x-amzn-errortype"] == "ModelError:", (st, heads)
    doc = json.loads(body)
    assert doc["OriginalStatusCode"] == 0 and "LogStreamArn" in doc, doc


def test_unknown_endpoint_and_wrong_signature(berth):
    out = boto3_stream(berth, "nosuch-" + S, b"x")
    assert out["error"]["code"] == "ValidationError" and out["error"]["status"] == 400, out
    assert "Endpoint nosuch-%s of account %s not found." % (S, bh.ACCOUNT) == out["error"]["message"], out
    st, heads, body = bh.http_request(berth.port, "POST", stream_path("nosuch"), body=b"x",
                                      sign=(berth.invoke_key[0], "wrong-secret"))
    assert st == 403 and heads["x-amzn-errortype"].startswith("InvalidSignatureException"), (st, heads, body)


def container_log(inst, ep):
    r = inst.cli("logs", ep)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode(errors="replace")


@pytest.mark.parametrize("version", ["--http1.1", "--http2-prior-knowledge"])
def test_client_gone_mid_stream_closes_the_container_connection(berth, ep, version):
    before = container_log(berth, ep).count("stream ended after")
    code, heads, data = curl_stream(berth, ep, b"x", {"X-Amzn-SageMaker-Custom-Attributes": "stream=100,bytes=10,delay=50"},
                                    version, max_time=1)
    assert code == 28, (code, heads)  # curl gave up after 1 s
    whole = len(data) // 115 * 115  # 12 + 89 (headers) + 10 + 4 bytes a part
    got = parse_events(data[:whole])
    assert len(got) >= 5 and b"".join(p for _, p in got) == pattern(0, 10 * len(got))

    def closed():
        log = container_log(berth, ep)
        return log.count("stream ended after") > before and "the connection closed" in log.splitlines()[-1]
    bh.wait_until(closed, 5, "the container's connection closed by the router")
    last = [l for l in container_log(berth, ep).splitlines() if "stream ended after" in l][-1]
    sent = int(last.split("after ")[1].split()[0])
    assert 5 <= sent < 60, last  # ~20 sent in the second curl waited, far from 100
    berth.assert_serving()
    assert boto3_stream(berth, ep, b"ok", CustomAttributes="stream=2")["error"] is None


def router_rss_kib(inst, field="VmRSS"):
    return int(bh.proc_status(inst.router.pid)[field].split()[0])


def test_slow_client_back_pressure_and_a_gigabyte(make_berth):
    """1 GiB streamed through a client that first does not read for 1.5 s:
    the container is held back (its writes block), the router's memory
    stays bounded, and every byte arrives in order."""
    inst = make_berth(invocation_timeout_ms=60000)
    _, _, ep = bh.create_endpoint_stack(inst.sm, "strm-big-" + S, primary=bh.container(), inst=inst)
    chunk, n = 65536, 16384
    path = stream_path(ep)
    h = bh.sign_headers(inst.port, "POST", path, body=b"x",
                        headers={"X-Amzn-SageMaker-Custom-Attributes": "stream=%d,bytes=%d" % (n, chunk),
                                 "Content-Length": "1"})
    hwm_before = router_rss_kib(inst, "VmHWM")
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path.encode(), inst.port) + bh.header_lines(h)
                  + b"\r\nx")
        time.sleep(1.5)  # not reading: the router must stop reading the container
        rss_paused = router_rss_kib(inst)
        buf = EventStreamBuffer()
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += s.recv(65536)
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"Transfer-Encoding: chunked" in head, head
        # de-chunk as it comes, feed botocore's parser, check every byte
        pending, total, done = rest, 0, False
        deadline = time.monotonic() + 100
        while not done:
            assert time.monotonic() < deadline, total
            while True:
                line, sep, after = pending.partition(b"\r\n")
                if not sep:
                    break
                size = int(line, 16)
                if len(after) < size + 2:
                    break
                if size == 0:
                    done = True
                    break
                buf.add_data(after[:size])
                pending = after[size + 2:]
                for m in buf:
                    assert m.headers == PART_HEADERS
                    p = m.payload
                    off = total % 26
                    assert p[:26] == pattern(off, min(26, len(p))) and p[-1] == 97 + (total + len(p) - 1) % 26
                    total += len(p)
            if not done:
                more = s.recv(1 << 20)
                assert more, "connection closed after %d bytes" % total
                pending += more
        assert total == n * chunk
    finally:
        s.close()
    hwm_after = router_rss_kib(inst, "VmHWM")
    # 1 GiB went through; the router grew by a small, fixed amount
    assert hwm_after - hwm_before < 64 * 1024, (hwm_before, hwm_after, rss_paused)
    inst.assert_serving()


def test_container_killed_mid_stream(berth):
    """SIGKILL to the container's process while it streams: ModelStreamError
    StreamBroken, then berth restarts the container and serves again."""
    _, cfg, ep2 = bh.create_endpoint_stack(berth.sm, "strm-kill-" + S, primary=bh.container(), inst=berth)
    pid = berth.running_pid(ep2)
    path = stream_path(ep2)
    h = bh.sign_headers(berth.port, "POST", path, body=b"x",
                        headers={"X-Amzn-SageMaker-Custom-Attributes": "stream=50,bytes=10,delay=100",
                                 "Content-Length": "1"})
    s = socket.create_connection(("127.0.0.1", berth.port), timeout=30)
    try:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path.encode(), berth.port)
                  + bh.header_lines(h) + b"\r\nx")
        raw = b""
        while raw.count(b"PayloadPart") < 2:
            raw += s.recv(65536)
        os.kill(pid, signal.SIGKILL)
        while not raw.endswith(b"0\r\n\r\n"):
            more = s.recv(65536)
            assert more, raw[-200:]
            raw += more
    finally:
        s.close()
    body = b""
    rest = raw.partition(b"\r\n\r\n")[2]
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2:]
    events = parse_events(body)
    assert len(events) >= 3
    assert all(h == PART_HEADERS for h, _ in events[:-1])
    h, payload = events[-1]
    assert h[":exception-type"] == "ModelStreamError", h
    assert json.loads(payload)["ErrorCode"] == "StreamBroken", payload
    # the container comes back and streams again
    bh.wait_until(lambda: boto3_stream(berth, ep2, b"back", CustomAttributes="stream=2")["error"] is None, 30,
                  "the restarted container streaming")
    berth.delete_endpoint_and_wait(ep2)
    berth.sm.delete_endpoint_config(EndpointConfigName=cfg)
    berth.sm.delete_model(ModelName="strm-kill-" + S)


def test_direct_mode_targets_a_container(berth):
    containers = [bh.container("ca", env={"ECHO_MODE": "hostname"}), bh.container("cb", env={"ECHO_MODE": "hostname"}),
                  bh.container("hd", env={"ECHO_MODE": "headers"})]
    model, cfg, ep2 = bh.create_endpoint_stack(berth.sm, "strm-dir-" + S, containers=containers, mode="Direct",
                                               inst=berth)
    try:
        for host in ("ca", "cb"):
            out = boto3_stream(berth, ep2, b"payload", CustomAttributes="stream=2", TargetContainerHostname=host)
            assert out["error"] is None, out
            assert len(out["parts"]) == 2
            assert b"".join(p for _, p in out["parts"]) == host.encode() + b":payload"
        # the SDK's Accept travels as X-Amzn-SageMaker-Accept; the container gets it as Accept
        out = boto3_stream(berth, ep2, b"payload", CustomAttributes="stream=2", TargetContainerHostname="hd",
                           Accept="application/jsonlines", ContentType="text/csv")
        assert out["error"] is None, out
        line = b"".join(p for _, p in out["parts"]).split(b"\n")[0]
        assert line == b"hd ct=text/csv accept=application/jsonlines ca=stream=2", line
        assert out["meta"]["CustomAttributes"] == "hd:stream=2", out["meta"]  # echo answers HOST:CA
        out = boto3_stream(berth, ep2, b"payload", CustomAttributes="stream=2")
        assert out["error"]["code"] == "ValidationError", out
        assert "Direct invocation mode" in out["error"]["message"], out
    finally:
        bh.delete_stack(berth, model, cfg, ep2)


def test_serial_pipeline_streams_the_last_step(berth):
    containers = [bh.container("up", env={"ECHO_MODE": "upper"}), bh.container("last")]
    model, cfg, ep2 = bh.create_endpoint_stack(berth.sm, "strm-ser-" + S, containers=containers, mode="Serial",
                                               inst=berth)
    try:
        out = boto3_stream(berth, ep2, b"abcdef", CustomAttributes="stream=3,delay=100")
        assert out["error"] is None, out
        assert [p for _, p in out["parts"]] == [b"AB", b"CD", b"EF"]
        assert out["parts"][2][0] - out["parts"][0][0] > 0.15  # the last step's chunks, as they came
    finally:
        bh.delete_stack(berth, model, cfg, ep2)


def test_multi_model_streams(berth):
    """SageMaker's InvokeEndpointWithResponseStream has no TargetModel
    member (botocore refuses it), so the SDKs cannot stream from a
    multi-model endpoint; berth takes the X-Amzn-SageMaker-Target-Model
    header on the streaming path as on InvokeEndpoint's, for raw clients."""
    import tarfile
    import io
    root = os.path.join(berth.object_root, "strm-bucket", "m")
    os.makedirs(root, exist_ok=True)
    with tarfile.open(os.path.join(root, "one.tar.gz"), "w:gz") as t:
        info = tarfile.TarInfo("model.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"one"))
    primary = {"Image": bh.echo_rootfs(), "Mode": "MultiModel", "ModelDataUrl": "s3://strm-bucket/m/",
               "Environment": {"SAGEMAKER_MULTI_MODEL": "true", "ECHO_ANSWER_FORM": "chunked"}}
    model, cfg, ep2 = bh.create_endpoint_stack(berth.sm, "strm-mme-" + S, primary=primary, inst=berth)
    try:
        body = b"q" * 2500
        code, heads, data = curl_stream(berth, ep2, body, {"X-Amzn-SageMaker-Target-Model": "one.tar.gz"},
                                        "--http2-prior-knowledge")
        assert code == 0 and heads[":status"] == "200", (code, heads, data[:300])
        events = parse_events(data)
        assert len(events) >= 3  # echo's chunked form: 1000-byte chunks
        answer = b"".join(p for _, p in events)
        assert answer.endswith(b"one:" + body), answer[:100]
        out = boto3_stream(berth, ep2, body)
        assert out["error"]["code"] == "ValidationError", out
        assert "TargetModel" in out["error"]["message"], out
    finally:
        bh.delete_stack(berth, model, cfg, ep2)


def test_http2_flow_control_holds_the_container_back(berth, ep):
    """An HTTP/2 client that grants 16 MiB of window and no more, then
    resets the stream: the router sends what the window allows, stops
    reading the container meanwhile (its memory stays put), and the reset
    closes the container's connection."""
    import h2_frames as h2
    before = container_log(berth, ep).count("stream ended after")
    chunk, n = 65536, 16384  # 1 GiB if nothing held it back
    path = stream_path(ep)
    extra = [("x-amzn-sagemaker-custom-attributes", "stream=%d,bytes=%d" % (n, chunk)), ("content-length", "1")]
    c = h2.H2Client(berth.port)
    try:
        hwm_before = router_rss_kib(berth, "VmHWM")
        c.open_stream(1, h2.request_headers(berth.port, path, extra=extra, body=b"x"))
        c.send(h2.data_frames(1, b"x", end_stream=True))
        got, status, window = 0, None, 1 << 24
        deadline, quiet_until = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            if got >= window - 2 * 65536:  # the window is used up: nothing more may come
                quiet_until = quiet_until or time.monotonic() + 0.5
                if time.monotonic() >= quiet_until:
                    break
            f = c.read_frame(0.1)
            if f is None:
                continue
            ftype, flags, stream, payload = f
            if ftype == h2.HEADERS and stream == 1:
                status = h2.status_of(payload)
            elif ftype == h2.DATA and stream == 1:
                got += len(payload)
            assert not (ftype == h2.RST_STREAM and stream == 1), f
        assert status == 200
        assert window - 2 * 65536 <= got <= window, got  # all the window allowed, not a byte more
        hwm_paused = router_rss_kib(berth, "VmHWM")
        c.send(h2.rst_frame(1))

        def closed():
            log = container_log(berth, ep)
            return log.count("stream ended after") > before and "the connection closed" in log.splitlines()[-1]
        bh.wait_until(closed, 5, "the container's connection closed after RST_STREAM")
    finally:
        c.close()
    last = [l for l in container_log(berth, ep).splitlines() if "stream ended after" in l][-1]
    sent = int(last.split("after ")[1].split()[0])
    assert sent < n // 8, last  # held back: far from the 16384 chunks it would have sent
    assert hwm_paused - hwm_before < 48 * 1024, (hwm_before, hwm_paused)
    berth.assert_serving()


def test_confined_router_streams(supervised_berth):
    """The router berthd runs (unprivileged, seccomp allow-list) streams with
    the system calls it already had."""
    inst = supervised_berth()
    _, _, ep2 = bh.create_endpoint_stack(inst.sm, "strm-conf-" + S, primary=bh.container(), inst=inst)
    for version in ("--http1.1", "--http2-prior-knowledge"):
        code, heads, data = curl_stream(inst, ep2, b"x",
                                        {"X-Amzn-SageMaker-Custom-Attributes": "stream=8,bytes=70000,delay=10"},
                                        version)
        assert code == 0 and heads[":status"] == "200", (code, heads)
        assert b"".join(p for _, p in parse_events(data)) == pattern(0, 8 * 70000)
        code, heads, data = curl_stream(inst, ep2, b"x",
                                        {"X-Amzn-SageMaker-Custom-Attributes": "stream=4,bytes=10,reset=1"}, version)
        assert json.loads(parse_events(data)[-1][1])["ErrorCode"] == "StreamBroken"
    inst.assert_serving()


def test_http10_client_gets_the_stream_delimited_by_the_close(berth, ep):
    """No chunked encoding in HTTP/1.0: the event stream goes out as it is
    and the router closes the connection at its end."""
    path = stream_path(ep)
    h = bh.sign_headers(berth.port, "POST", path, body=b"abcdef",
                        headers={"X-Amzn-SageMaker-Custom-Attributes": "stream=3,delay=20", "Content-Length": "6"})
    s = socket.create_connection(("127.0.0.1", berth.port), timeout=30)
    try:
        s.sendall(b"POST %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n" % (path.encode(), berth.port) + bh.header_lines(h)
                  + b"\r\nabcdef")
        raw = b""
        while True:
            more = s.recv(65536)
            if not more:
                break
            raw += more
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 "), head
    assert b"Connection: close" in head and b"Transfer-Encoding" not in head and b"Content-Length" not in head, head
    assert [p for _, p in parse_events(body)] == [b"ab", b"cd", b"ef"]
    assert sum(12 + 89 + 2 + 4 for _ in range(3)) == len(body)  # nothing but the three messages


def router_counter(inst, name):
    st, _, body = bh.http_request(inst.port, "GET", "/metrics")
    assert st == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def test_metrics_count_streams_bytes_and_errors(berth, ep):
    streams, sent, errors = (router_counter(berth, "berth_router_" + n)
                             for n in ("streams_total", "stream_bytes_total", "stream_errors_total"))
    assert boto3_stream(berth, ep, b"x", CustomAttributes="stream=4,bytes=1000")["error"] is None
    out = boto3_stream(berth, ep, b"x", CustomAttributes="stream=4,bytes=1000,reset=1")
    assert out["error"]["code"] == "ModelStreamError", out
    assert router_counter(berth, "berth_router_streams_total") == streams + 2
    assert router_counter(berth, "berth_router_stream_bytes_total") == sent + 5000
    assert router_counter(berth, "berth_router_stream_errors_total") == errors + 1
