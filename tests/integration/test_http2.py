"""The same invocation over HTTP/2 (prior knowledge and h2c Upgrade, nghttp
and curl), over HTTP/1.1 (curl), and under load (h2load)."""
import json
import os
import re
import socket
import subprocess
import tempfile
import uuid

import pytest

import berth_helpers as bh

TARGET = "x-amzn-sagemaker-target-container-hostname"


@pytest.fixture(scope="module")
def ep(berth):
    s = uuid.uuid4().hex[:6]
    st = bh.create_endpoint_stack(
        berth.sm, "H2-" + s,
        containers=[bh.container(h, env={"ECHO_MODE": "hostname"}) for h in ("a", "b")],
        mode="Direct", inst=berth)
    yield st[2]
    bh.delete_stack(berth, *st)


@pytest.fixture
def payload_file():
    fd, path = tempfile.mkstemp(prefix="berth-h2-", dir="/var/tmp")
    data = b"h2 payload " + os.urandom(3000).hex().encode()
    os.write(fd, data)
    os.close(fd)
    yield path, data
    os.unlink(path)


def run(args, timeout=60):
    return subprocess.run(args, capture_output=True, timeout=timeout)


def inv_url(berth, ep):
    return "%s/endpoints/%s/invocations" % (berth.url, ep)


def signed(berth, path, body=b"", headers=None, method="POST"):
    """-H arguments for curl, nghttp and h2load: headers plus botocore's
    SigV4 signature of the request (path on berth, body)."""
    return bh.header_args(bh.sign_headers(berth.port, method, path, body=body, headers=headers))


def inv_path(ep):
    return "/endpoints/%s/invocations" % ep


@pytest.mark.parametrize("host", ["a", "b"])
def test_nghttp_prior_knowledge(berth, ep, payload_file, host):
    path, data = payload_file
    r = run(["nghttp", "-d", path, "-H", ":method: POST"]
            + signed(berth, inv_path(ep), data, {"content-type": "text/plain", TARGET: host}) + [inv_url(berth, ep)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == host.encode() + b":" + data
    # verbose: it really was HTTP/2 and the status was 200
    r = run(["nghttp", "-v", "-d", path] + signed(berth, inv_path(ep), data, {TARGET: host}) + [inv_url(berth, ep)])
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr
    assert "recv SETTINGS frame" in out
    assert re.search(r"\) :status: 200$", out, re.M), out[-3000:]
    assert re.search(r"\) x-amzn-invoked-production-variant: AllTraffic$", out, re.M | re.I), out[-3000:]


def test_nghttp_prior_knowledge_errors_are_json(berth, ep, payload_file):
    path, data = payload_file
    r = run(["nghttp", "-v", "-d", path] + signed(berth, inv_path(ep), data, {TARGET: "nope"}) + [inv_url(berth, ep)])
    out = r.stdout.decode(errors="replace")
    assert re.search(r"\) :status: 400$", out, re.M), out[-3000:]
    assert re.search(r"\) x-amzn-errortype: ValidationError", out, re.M | re.I), out[-3000:]


def test_nghttp_h2c_upgrade(berth, ep, payload_file):
    path, data = payload_file
    r = run(["nghttp", "-u", "-d", path] + signed(berth, inv_path(ep), data, {TARGET: "a"}) + [inv_url(berth, ep)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(b"a:" + data), r.stdout[-300:]
    r = run(["nghttp", "-u", "-v", "-d", path] + signed(berth, inv_path(ep), data, {TARGET: "b"})
            + [inv_url(berth, ep)])
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr
    assert "HTTP Upgrade success" in out, out[-3000:]
    assert re.search(r"\) :status: 200$", out, re.M), out[-3000:]


def test_nghttp_h2c_upgrade_get_ping(berth):
    r = run(["nghttp", "-u", "-v"] + signed(berth, "/ping", method="GET") + [berth.url + "/ping"])
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr
    assert "HTTP Upgrade success" in out, out[-3000:]
    assert re.search(r"\) :status: 200$", out, re.M), out[-3000:]


@pytest.mark.parametrize("mode,version", [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")])
def test_curl_invocation_over_http11_and_http2_carries_the_contract_headers(berth, ep, payload_file, mode, version):
    path, data = payload_file
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as out:
        r = run(["curl", "-sS", mode, "-X", "POST", "--data-binary", "@" + path]
                + signed(berth, inv_path(ep), data, {"Content-Type": "application/x-test",
                                                     "X-Amzn-SageMaker-Target-Container-Hostname": "b"})
                + ["-D", "-", "-o", out.name, "-w", "\nHTTPCODE=%{http_code} VERSION=%{http_version}\n",
                 inv_url(berth, ep)])
        assert r.returncode == 0, r.stderr
        meta = r.stdout.decode()
        assert "HTTPCODE=200 VERSION=%s" % version in meta, meta
        assert re.search(r"^content-type: application/x-test\r?$", meta, re.M | re.I), meta
        assert re.search(r"^x-amzn-invoked-production-variant: AllTraffic\r?$", meta, re.M | re.I), meta
        # CONTRACT §3: Server-Timing with route, each container by hostname, total
        m = re.search(r"^server-timing: (.*?)\r?$", meta, re.M | re.I)
        assert m, meta
        entries = [e.strip().split(";")[0] for e in m.group(1).split(",")]
        assert "route" in entries and "b" in entries and "total" in entries, m.group(1)
        with open(out.name, "rb") as f:
            assert f.read() == b"b:" + data


def test_curl_http11_keepalive_many_requests(berth, ep):
    # curl reuses one connection for several URLs on the same command line
    n = 20
    args = ["curl", "-sS", "--http1.1", "-X", "POST", "--data-binary", "ka"]
    args += signed(berth, inv_path(ep), b"ka", {"X-Amzn-SageMaker-Target-Container-Hostname": "a"})
    args += ["-w", "\n%{http_code} %{num_connects}\n"]
    args += [inv_url(berth, ep)] * n
    r = run(args)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.count("a:ka\n200 ") == n, out
    connects = [int(x) for x in re.findall(r"^200 (\d+)$", out, re.M)]
    assert sum(connects) == 1, "connection not kept alive: %s" % connects


def test_curl_404_is_json(berth):
    r = run(["curl", "-sS", "--http1.1", "-w", "\n%{http_code}"] + signed(berth, "/nope", method="GET")
            + [berth.url + "/nope"])
    body, _, code = r.stdout.decode().rpartition("\n")
    assert code == "404"
    assert "message" in json.loads(body)


def _h2load_status(out):
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def _h2load_requests(out):
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                  out)
    assert m, out
    return tuple(int(x) for x in m.groups())


@pytest.mark.parametrize("extra", [[], ["-m", "8"], ["--h1"]], ids=["h2", "h2-8-streams", "h1"])
def test_h2load_all_requests_answered_200(berth, ep, payload_file, extra):
    path, data = payload_file
    r = run(["h2load", "-n", "200", "-c", "4", "-d", path] + signed(berth, inv_path(ep), data, {TARGET: "a"})
            + extra + [inv_url(berth, ep)], timeout=90)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert _h2load_status(out) == (200, 0, 0, 0), out
    assert _h2load_requests(out)[:4] == (200, 200, 200, 200), out
    # the endpoint still answers correctly afterwards
    resp = berth.rt.invoke_endpoint(EndpointName=ep, Body=b"after", TargetContainerHostname="b")
    assert resp["Body"].read() == b"b:after"


@pytest.mark.parametrize("size", [1, 2 * 1024 * 1024])
def test_curl_http11_chunked_and_expect_continue(berth, ep, size):
    """Transfer-Encoding: chunked request bodies, and curl's default
    'Expect: 100-continue' for large bodies."""
    data = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as src, tempfile.NamedTemporaryFile(dir="/var/tmp") as out:
        src.write(data)
        src.flush()
        for extra in (["-H", "Transfer-Encoding: chunked"], []):
            r = run(["curl", "-sS", "--http1.1", "-X", "POST", "--data-binary", "@" + src.name]
                    + signed(berth, inv_path(ep), data, {"X-Amzn-SageMaker-Target-Container-Hostname": "a"})
                    + ["-o", out.name,
                     "-w", "%{http_code}"] + extra + [inv_url(berth, ep)])
            assert r.returncode == 0, r.stderr
            assert r.stdout == b"200", (extra, r.stdout)
            with open(out.name, "rb") as f:
                assert f.read() == b"a:" + data, extra


def test_http2_body_over_6mib_is_refused_and_the_endpoint_still_answers(berth, ep):
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as src:
        src.write(b"y" * (6 * 1024 * 1024 + 1))
        src.flush()
        r = run(["curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "--data-binary", "@" + src.name]
                + signed(berth, inv_path(ep), b"y" * (6 * 1024 * 1024 + 1),
                         {"X-Amzn-SageMaker-Target-Container-Hostname": "a"}) + ["-D", "-",
                 "-w", "\nHTTPCODE=%{http_code}", inv_url(berth, ep)])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode(errors="replace")
    assert "HTTPCODE=400" in out, out[-2000:]
    assert re.search(r"^x-amzn-errortype: ValidationError", out, re.M | re.I), out[-2000:]
    # the connection-level damage is contained: the endpoint still answers
    resp = berth.rt.invoke_endpoint(EndpointName=ep, Body=b"ok", TargetContainerHostname="a")
    assert resp["Body"].read() == b"a:ok"


def test_control_plane_answers_over_http2(berth, ep):
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as src:
        body = json.dumps({"EndpointName": ep}).encode()
        src.write(body)
        src.flush()
        r = run(["curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "--data-binary", "@" + src.name]
                + signed(berth, "/", body, {"X-Amz-Target": "SageMaker.DescribeEndpoint",
                                            "Content-Type": "application/x-amz-json-1.1"})
                + ["-w", "\n%{http_code} %{http_version}",
                 berth.url + "/"])
    assert r.returncode == 0, r.stderr
    body, _, tail = r.stdout.decode().rpartition("\n")
    assert tail == "200 2", tail
    doc = json.loads(body)
    assert doc["EndpointName"] == ep and doc["EndpointStatus"] == "InService"


def test_connections_to_containers_are_pooled(berth, ep):
    """30 sequential invocations must not open 30 connections to the
    container: count TCP sockets on :8080 inside the container's network
    namespace (the router's end lives there too: the shim connects from
    inside and passes the fd)."""
    init = {c["id"]: c["pid"] for c in bh.runc_list(berth.run_dir) if c["status"] == "running"}
    ids_for_ep = [cid for cid in init if cid in set(bh.shim_ids(berth.run_dir).values())]
    assert ids_for_ep

    def sockets(pid):
        """{(local, peer)} of TCP sockets on :8080 (any state but LISTEN)."""
        r = run(["nsenter", "-t", str(pid), "-n", "ss", "-Htan", "( sport = :8080 or dport = :8080 )"])
        assert r.returncode == 0, r.stderr
        return {tuple(l.split()[3:5]) for l in r.stdout.decode().splitlines() if l.strip() and "LISTEN" not in l}
    before = {cid: sockets(pid) for cid, pid in init.items()}
    for _ in range(30):
        resp = berth.rt.invoke_endpoint(EndpointName=ep, Body=b"p", TargetContainerHostname="a")
        assert resp["Body"].read() == b"a:p"
    new = {cid: len(sockets(pid) - before[cid]) for cid, pid in init.items()}
    # health checks may add a couple; without pooling "a" would show ~30
    assert max(new.values()) <= 6, new


def test_metrics_are_served_as_prometheus_text(berth, ep):
    status, headers, data = bh.http_request(berth.port, "GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain"), headers
    text = data.decode()
    assert "# TYPE " in text, text[:500]


def test_curl_h2c_upgrade_with_request_body(berth, ep, payload_file):
    """curl --http2 on http:// sends the POST itself (with its body) as the
    HTTP/1.1 Upgrade request; the answer comes on stream 1 over HTTP/2."""
    path, data = payload_file
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as out:
        r = run(["curl", "-sS", "--http2", "-X", "POST", "--data-binary", "@" + path]
                + signed(berth, inv_path(ep), data, {"X-Amzn-SageMaker-Target-Container-Hostname": "a"})
                + ["-o", out.name,
                 "-w", "%{http_code} %{http_version}", inv_url(berth, ep)])
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"200 2", r.stdout
        with open(out.name, "rb") as f:
            assert f.read() == b"a:" + data


def test_http11_pipelining(berth, ep):
    def req(i, h):
        body = b"p%d" % i
        signed = bh.sign_headers(berth.port, "POST", inv_path(ep), body=body, host="x",
                                 headers={"X-Amzn-SageMaker-Target-Container-Hostname": h})
        return (b"POST %s HTTP/1.1\r\nHost: x\r\n" % inv_path(ep).encode() + bh.header_lines(signed)
                + b"Content-Length: 2\r\n\r\n" + body)
    reqs = b"".join(req(i, h) for i, h in enumerate(["a", "b"] * 4))
    s = socket.create_connection(("127.0.0.1", berth.port), timeout=10)
    try:
        s.sendall(reqs)
        data = b""
        while data.count(b"HTTP/1.1 200") < 8 or not data.endswith(b"b:p7"):
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    bodies = re.findall(rb"\r\n\r\n([ab]:p\d)", data)
    assert bodies == [(b"a:p%d" if i % 2 == 0 else b"b:p%d") % i for i in range(8)], data[-2000:]
