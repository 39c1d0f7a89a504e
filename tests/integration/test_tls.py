"""TLS (issue 10): the router serves HTTPS with ALPN h2 / http/1.1 on a
TLS-only address (--tls-listen) and on its cleartext address (told apart by
the first byte), with the certificate and key berthd reads and pushes to it;
SIGHUP swaps them; who may listen where is checked at start.

Certificates are made here with the openssl command: a CA and server
certificates for 127.0.0.1 / localhost. Every client verifies against the CA.
"""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid

import pytest

import berth_helpers as bh
import h2_frames as h2


# ---- certificates --------------------------------------------------------------

def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def server_cert(d, name, cn, days="2", not_before=None):
    """NAME.pem / NAME.key signed by the CA in d, for 127.0.0.1 and localhost."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    args = ["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", name + ".pem", "-extfile", name + ".ext"]
    if not_before:  # openssl 3.0's x509 has no -not_before: use the ca command's dates
        args = ["ca", "-batch", "-config", "ca.cnf", "-in", name + ".csr", "-out", name + ".pem",
                "-startdate", not_before[0], "-enddate", not_before[1], "-extfile", name + ".ext",
                "-notext"]
    else:
        args += ["-days", days]
    openssl(*args, cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=berth test CA", cwd=d)
    os.makedirs(os.path.join(d, "newcerts"))
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=test\n[test]\ndir=.\ndatabase=index.txt\nnew_certs_dir=newcerts\n"
                "certificate=ca.pem\nprivate_key=ca.key\nserial=serial\ndefault_md=sha256\n"
                "policy=any\nunique_subject=no\n[any]\ncommonName=supplied\n")
    p = {"dir": d, "ca": os.path.join(d, "ca.pem")}
    p["one"] = server_cert(d, "one", "berth one")
    p["two"] = server_cert(d, "two", "berth two")
    p["expired"] = server_cert(d, "expired", "berth expired", not_before=("20200101000000Z", "20200102000000Z"))
    p["future"] = server_cert(d, "future", "berth future", not_before=("20990101000000Z", "20990102000000Z"))
    # what berthd reads: copies the tests replace before a SIGHUP
    p["cert"], p["key"] = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
    shutil.copy(p["one"][0], p["cert"])
    shutil.copy(p["one"][1], p["key"])
    os.chmod(p["key"], 0o600)
    return p


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    """A credentials file for berthd runs that refuse to start."""
    path = str(tmp_path_factory.mktemp("keys") / "credentials")
    key_id, secret = bh.generate_key()
    bh.write_private_file(path, bh.credentials_text([dict(bh.ADMIN_KEY, key_id=key_id, secret=secret)]))
    return path


class TLSBerth(bh.SupervisedBerth):
    """berthd with --tls-cert/--tls-key and a TLS-only address."""

    def __init__(self, pki, **kw):
        super().__init__(**kw)
        self.tls_port = bh.free_port()
        self.pki = pki
        self.extra_berthd += ["--tls-listen", "127.0.0.1:%d" % self.tls_port, "--tls-cert", pki["cert"],
                              "--tls-key", pki["key"]]

    def https(self, port=None):
        return "https://127.0.0.1:%d" % (port or self.tls_port)

    def logs(self):
        """berthd's log, where the supervised router's lines land too."""
        return "".join(text for _, text in self.log_text())

    def tls_client(self, service, port=None, key=None):
        """A boto3 client over HTTPS (verify=CA), signing as self.client does."""
        return self.client(service, key=key, endpoint_url=self.https(port), verify=self.pki["ca"])


@pytest.fixture(scope="module")
def tb(pki):
    yield from bh.serve(TLSBerth, pki=pki)


@pytest.fixture(scope="module")
def ep(tb):
    sm = tb.tls_client("sagemaker")
    sm.meta.events.register("before-parameter-build.sagemaker.*", tb._note_params)
    st = bh.create_endpoint_stack(sm, "Tls-" + uuid.uuid4().hex[:6], primary=bh.container(), inst=tb)
    yield st[2]
    bh.delete_stack(tb, *st)


def tls_context(ca, alpn=None, maximum=None, minimum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    if maximum is not None:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this client offer TLS 1.0 / 1.1 at all
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum
    return ctx


def tls_connect(port, ctx, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def read_until_closed(sock, timeout):
    """Everything the peer sends until it closes (bounded)."""
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
            break
        if not chunk:
            break
        out += chunk
    return out


def https_get(port, path, ca, alpn=None):
    """GET over HTTP/1.1 on TLS: (status, negotiated ALPN, body, peer CN)."""
    s = tls_connect(port, tls_context(ca, alpn))
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % (path, port)).encode())
        data = read_until_closed(s, 10)
        cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), s.selected_alpn_protocol(), body, cn
    finally:
        s.close()


def peer_cn(port, ca):
    s = tls_connect(port, tls_context(ca))
    try:
        return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
    finally:
        s.close()


def assert_serving(tb):
    tb.assert_serving()
    assert https_get(tb.tls_port, "/ping", tb.pki["ca"])[0] == 200
    assert "Endpoints" in tb.tls_client("sagemaker").list_endpoints()


def run(args, timeout=60, env=None):
    return subprocess.run(args, capture_output=True, timeout=timeout, env=env)


# ---- clients over HTTPS ----------------------------------------------------------

def test_boto3_in_process(tb, ep):
    """Debian's boto3 (1.26, this interpreter): control and invoke over HTTPS."""
    sm = tb.tls_client("sagemaker")
    rt = tb.tls_client("sagemaker-runtime")
    assert ep in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
    r = rt.invoke_endpoint(EndpointName=ep, Body=b"over tls", ContentType="text/plain")
    assert r["Body"].read() == b"over tls"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_boto3_machine_python(tb, ep):
    """The machine's python3 and its boto3 (1.43), in a subprocess."""
    py = shutil.which("python3")
    assert py and os.path.realpath(py) != "/usr/bin/python3", "the machine's python3 is not on PATH: %s" % py
    script = r"""
import json, sys, boto3
url, ca, ep, admin_id, admin_secret, invoke_id, invoke_secret = sys.argv[1:]
kw = dict(endpoint_url=url, region_name="us-east-1", verify=ca)
sm = boto3.client("sagemaker", aws_access_key_id=admin_id, aws_secret_access_key=admin_secret, **kw)
rt = boto3.client("sagemaker-runtime", aws_access_key_id=invoke_id, aws_secret_access_key=invoke_secret, **kw)
names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
body = rt.invoke_endpoint(EndpointName=ep, Body=b"from 1.43", ContentType="text/plain")["Body"].read()
print(json.dumps({"version": boto3.__version__, "names": names, "body": body.decode()}))
"""
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(k, None)
    r = run([py, "-c", script, tb.https(), tb.pki["ca"], ep] + list(tb.admin_key) + list(tb.invoke_key), env=env)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = json.loads(r.stdout)
    assert out["version"].startswith("1.43"), out
    assert ep in out["names"]
    assert out["body"] == "from 1.43"


def test_aws_cli(tb, ep, tmp_path):
    base = ["aws", "--endpoint-url", tb.https(), "--ca-bundle", tb.pki["ca"]]
    r = run(base + ["sagemaker", "list-endpoints"], env=tb.client_env(tb.admin_key))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert ep in [e["EndpointName"] for e in json.loads(r.stdout)["Endpoints"]]
    out = tmp_path / "answer"
    r = run(base + ["sagemaker-runtime", "invoke-endpoint", "--endpoint-name", ep, "--content-type", "text/plain",
                    "--body", "from the aws cli", str(out)], env=tb.client_env(tb.invoke_key))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert out.read_bytes() == b"from the aws cli"
    assert json.loads(r.stdout)["ContentType"] == "text/plain"


@pytest.mark.parametrize("version,flag", [("1.1", "--http1.1"), ("2", "--http2")])
def test_curl_sigv4(tb, ep, version, flag):
    def base(key):
        return ["curl", "-sS", "--max-time", "30", flag, "--cacert", tb.pki["ca"], "--aws-sigv4",
                "aws:amz:us-east-1:sagemaker", "--user", "%s:%s" % key, "-w", "\n%{http_code} %{http_version}"]
    r = run(base(tb.invoke_key) + ["-H", "Content-Type: text/plain", "--data-binary", "curl body",
                    "%s/endpoints/%s/invocations" % (tb.https(), ep)])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail.decode() == "200 " + version
    assert body == b"curl body"
    r = run(base(tb.admin_key) + ["-H", "Content-Type: application/x-amz-json-1.1", "-H",
                                  "X-Amz-Target: SageMaker.ListEndpoints",
                    "--data-binary", "{}", tb.https() + "/"])
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail.decode() == "200 " + version, body
    assert ep in [e["EndpointName"] for e in json.loads(body)["Endpoints"]]


@pytest.mark.parametrize("version,flag", [("1.1", "--http1.1"), ("2", "--http2")])
def test_large_body_over_tls(tb, ep, tmp_path, version, flag):
    """5 MiB each way: many records, short writes, HTTP/2 flow control."""
    data = os.urandom(5 << 20)
    src, dst = tmp_path / "big", tmp_path / "back"
    src.write_bytes(data)
    r = run(["curl", "-sS", "--max-time", "60", flag, "--cacert", tb.pki["ca"], "--aws-sigv4",
             "aws:amz:us-east-1:sagemaker", "--user", "%s:%s" % tb.invoke_key, "-H",
             "Content-Type: application/octet-stream", "--data-binary", "@" + str(src), "-o", str(dst),
             "-w", "%{http_code} %{http_version}", "%s/endpoints/%s/invocations" % (tb.https(), ep)], timeout=90)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout.decode() == "200 " + version
    assert dst.read_bytes() == data
    assert_serving(tb)


def router_cpu_seconds(tb):
    with open("/proc/%d/stat" % tb.router_pid()) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("alpn", [["http/1.1"], ["h2"]])
def test_client_leaves_during_a_large_answer(tb, ep, alpn):
    """A client asks for 5 MiB back, sends close_notify and goes without
    reading: the router drops the connection (no busy loop on the dead
    session) and keeps serving."""
    body = os.urandom(5 << 20)
    key = tb.invoke_key
    path = "/endpoints/%s/invocations" % ep
    hdrs = bh.sign_headers(tb.tls_port, "POST", path, body=body, key=key,
                           headers={"Content-Type": "application/octet-stream"})
    for _ in range(3):
        s = tls_connect(tb.tls_port, tls_context(tb.pki["ca"], alpn))
        try:
            if alpn == ["h2"]:
                c = TLSH2.__new__(TLSH2)
                c.port, c.sock, c.buf, c.closed = tb.tls_port, s, b"", False
                c.conn_window = c.initial_window = 65535
                c.stream_windows = {}
                s.sendall(h2.PREFACE + h2.settings_frame([(h2.SETTINGS_HEADER_TABLE_SIZE, 0)]))
                c.open_stream(1, [(":method", "POST"), (":scheme", "https"),
                                  (":authority", "127.0.0.1:%d" % tb.tls_port), (":path", path)]
                              + [(k.lower(), v) for k, v in hdrs.items()])
                assert c.send_data(1, body, end_stream=True, timeout=20)
            else:
                head = "".join("%s: %s\r\n" % kv for kv in hdrs.items())
                s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %d\r\n\r\n"
                           % (path, tb.tls_port, head, len(body))).encode() + body)
            time.sleep(0.3)  # the answer is on its way and fills the socket
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                s.setblocking(False)
                s.unwrap()
            except (ssl.SSLError, OSError, ValueError):
                pass
            s.close()
    time.sleep(0.5)
    before = router_cpu_seconds(tb)
    time.sleep(1.5)
    assert router_cpu_seconds(tb) - before < 0.5, "the router keeps working on connections that are gone"
    assert_serving(tb)


def test_nghttp_negotiates_h2(tb):
    r = run(["nghttp", "-v", "--timeout=10", tb.https() + "/ping"], timeout=30,
            env=dict(os.environ, SSL_CERT_FILE=tb.pki["ca"]))
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out[-2000:] + r.stderr.decode(errors="replace")
    assert "The negotiated protocol: h2" in out
    assert re.search(r"\) :status: 200$", out, re.M), out[-2000:]


@pytest.mark.parametrize("h1", [False, True])
def test_h2load(tb, h1):
    args = ["h2load", "-n", "2000", "-c", "8", "-m", "4", "-T", "20", tb.https() + "/ping"]
    r = run(args + (["--h1"] if h1 else []), timeout=60)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert "Application protocol: %s" % ("http/1.1" if h1 else "h2") in out, out
    assert re.search(r"requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, "
                     r"0 timeout", out), out
    assert_serving(tb)


# ---- protocols -------------------------------------------------------------------

@pytest.mark.parametrize("offer,chosen", [(None, None), (["http/1.1"], "http/1.1"), (["h2", "http/1.1"], "h2"),
                                          (["spdy/3", "http/1.1"], "http/1.1"), (["spdy/3"], None)])
def test_alpn(tb, offer, chosen):
    """h2 first, then http/1.1; nothing (or nothing we speak) offered: HTTP/1.1."""
    s = tls_connect(tb.tls_port, tls_context(tb.pki["ca"], offer))
    try:
        assert s.selected_alpn_protocol() == chosen
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        if chosen != "h2":
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert read_until_closed(s, 10).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        s.close()


def test_same_port_cleartext_and_tls(tb):
    """The --listen port answers cleartext and, told apart by the first byte, TLS."""
    assert bh.http_request(tb.port, "GET", "/ping")[0] == 200
    status, alpn, _, cn = https_get(tb.port, "/ping", tb.pki["ca"])
    assert (status, alpn, cn) == (200, None, "berth one")
    s = tls_connect(tb.port, tls_context(tb.pki["ca"], ["h2", "http/1.1"]))
    assert s.selected_alpn_protocol() == "h2"
    s.close()
    sm = tb.tls_client("sagemaker", port=tb.port)
    assert "Endpoints" in sm.list_endpoints()
    r = run(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:%d/ping" % tb.port, "-w", " %{http_version}"])
    assert r.stdout.endswith(b" 1.1")


def test_plain_http_to_tls_port(tb):
    """The nginx answer: 400, a message naming the https:// address, then close."""
    s = socket.create_connection(("127.0.0.1", tb.tls_port), timeout=10)
    try:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = read_until_closed(s, 10)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "The plain HTTP request was sent to the HTTPS port: use "
                                           "https://127.0.0.1:%d/." % tb.tls_port}
    # boto3 pointed at http:// on that port sees the same answer
    sm = tb.client("sagemaker", endpoint_url="http://127.0.0.1:%d" % tb.tls_port)
    with pytest.raises(Exception) as e:
        sm.list_endpoints()
    assert "The plain HTTP request was sent to the HTTPS port" in str(e.value)
    assert_serving(tb)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_refused(tb, version):
    ctx = tls_context(tb.pki["ca"], maximum=version, minimum=ssl.TLSVersion.TLSv1)
    with pytest.raises(ssl.SSLError) as e:
        tls_connect(tb.tls_port, ctx).close()
    # the router's alert (protocol_version, 70), not a refusal by this client
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in str(e.value), str(e.value)
    # the same client allowed TLS 1.2 gets in
    ctx = tls_context(tb.pki["ca"], maximum=ssl.TLSVersion.TLSv1_2, minimum=ssl.TLSVersion.TLSv1)
    s = tls_connect(tb.tls_port, ctx)
    assert s.version() == "TLSv1.2"
    s.close()
    assert_serving(tb)


def client_hello():
    """The first flight of a real TLS client."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("port_kind", ["tls", "listen"])
def test_garbage_first_flight(tb, port_kind):
    """A handshake record of junk: an alert (or nothing) and the connection closes."""
    port = tb.tls_port if port_kind == "tls" else tb.port
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"\x16\x03\x01\x00\x30" + os.urandom(48))
        t0 = time.monotonic()
        data = read_until_closed(s, 10)
        assert time.monotonic() - t0 < 5
        assert data == b"" or data[0] == 0x15  # a TLS alert record
    finally:
        s.close()
    assert_serving(tb)


def test_stalled_handshake_is_closed(tb):
    """Half a ClientHello, then nothing: closed at the header timeout (20 s)
    while everyone else is served."""
    hello = client_hello()
    s = socket.create_connection(("127.0.0.1", tb.tls_port), timeout=40)
    try:
        s.sendall(hello[:len(hello) // 2])
        t0 = time.monotonic()
        time.sleep(1)
        assert_serving(tb)
        data = read_until_closed(s, 35)
        waited = time.monotonic() - t0
    finally:
        s.close()
    assert 15 <= waited <= 30, waited
    assert data == b"" or data[0] == 0x15
    metrics = bh.http_request(tb.port, "GET", "/metrics")[2].decode()
    assert re.search(r"^berth_router_tls_handshake_failures_total [1-9]", metrics, re.M), metrics
    assert_serving(tb)


# ---- reload ----------------------------------------------------------------------

class TLSH2(h2.H2Client):
    """h2_frames' client over TLS (ALPN h2)."""

    def __init__(self, port, ca, timeout=10.0):
        self.port = port
        self.sock = tls_connect(port, tls_context(ca, ["h2"]), timeout=timeout)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.buf = b""
        self.conn_window = 65535
        self.initial_window = 65535
        self.stream_windows = {}
        self.closed = False
        self.sock.sendall(h2.PREFACE + h2.settings_frame([(h2.SETTINGS_HEADER_TABLE_SIZE, 0)]))

    def read_frame(self, timeout):
        # OpenSSL may hold decrypted bytes select() cannot see
        if self.sock.pending():
            self.buf += self.sock.recv(self.sock.pending())
        return super().read_frame(timeout)

    def ping(self, stream):
        hdrs = [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1:%d" % self.port),
                (":path", "/ping")]
        self.open_stream(stream, hdrs, end_stream=True)
        f = self.wait_for(lambda f: f[0] == h2.HEADERS and f[2] == stream, 10)
        assert f is not None, "no answer on stream %d" % stream
        return h2.status_of(f[3])


def sighup_and_wait(tb, count_before):
    """SIGHUP berthd; waits until the router logged one more installed certificate."""
    os.kill(tb.berthd.pid, signal.SIGHUP)
    bh.wait_until(lambda: tb.logs().count("TLS certificate in use") > count_before, 10,
                  "the router to take the reloaded certificate")


def install(pki, pair):
    """Replaces the files berthd reads (atomically, as an operator's tooling would)."""
    for src, dst in zip(pair, (pki["cert"], pki["key"])):
        shutil.copy(src, dst + ".new")
        os.chmod(dst + ".new", 0o600)
        os.rename(dst + ".new", dst)


def test_sighup_new_certificate(tb):
    pki = tb.pki
    assert peer_cn(tb.tls_port, pki["ca"]) == "berth one"
    old = TLSH2(tb.tls_port, pki["ca"])
    try:
        assert old.ping(1) == 200
        before = tb.logs().count("TLS certificate in use")
        install(pki, pki["two"])
        sighup_and_wait(tb, before)
        # new connections, on both ports, see the new certificate
        bh.wait_until(lambda: peer_cn(tb.tls_port, pki["ca"]) == "berth two", 5, "the new certificate")
        assert peer_cn(tb.port, pki["ca"]) == "berth two"
        # the open HTTP/2 connection keeps its session and keeps working
        assert old.ping(3) == 200
        assert old.ping(5) == 200
        assert dict(x[0] for x in old.sock.getpeercert()["subject"])["commonName"] == "berth one"
    finally:
        old.close()
        install(pki, pki["one"])
        before = tb.logs().count("TLS certificate in use")
        sighup_and_wait(tb, before)
    assert peer_cn(tb.tls_port, pki["ca"]) == "berth one"
    assert_serving(tb)


@pytest.mark.parametrize("bad", ["mismatch", "garbage"])
def test_sighup_bad_pair_keeps_the_old_one(tb, bad):
    pki = tb.pki
    assert peer_cn(tb.tls_port, pki["ca"]) == "berth one"
    try:
        if bad == "mismatch":
            install(pki, (pki["two"][0], pki["one"][1]))
            want = "is not the private key of the certificate in --tls-cert"
        else:
            with open(pki["cert"], "w") as f:
                f.write("not a certificate\n")
            want = "is not a PEM certificate"
        seen = tb.logs().count(want)
        os.kill(tb.berthd.pid, signal.SIGHUP)
        bh.wait_until(lambda: tb.logs().count(want) > seen, 10, "berthd to refuse the pair")
        assert "the router keeps serving the previous one" in tb.logs()
        assert peer_cn(tb.tls_port, pki["ca"]) == "berth one"
        assert_serving(tb)
    finally:
        install(pki, pki["one"])


@pytest.mark.parametrize("which,warning,refusal", [
    ("expired", r"has expired: valid from Jan  1 00:00:00 2020 GMT until Jan  2 00:00:00 2020 GMT; clients will "
                r"refuse it until it is renewed", "expired"),
    ("future", r"is not valid yet: valid from Jan  1 00:00:00 2099 GMT until Jan  2 00:00:00 2099 GMT; clients "
               r"will refuse it until then", "not yet valid")])
def test_sighup_certificate_out_of_its_dates_is_a_warning(tb, which, warning, refusal):
    """A certificate outside its validity is pushed (the operator decides),
    with a warning that names its dates; clients refuse it."""
    pki = tb.pki
    try:
        before = tb.logs().count("TLS certificate in use")
        install(pki, pki[which])
        sighup_and_wait(tb, before)
        log = tb.logs()
        assert re.search(r"the certificate in --tls-cert \S+ " + warning, log), log[-3000:]
        with pytest.raises(ssl.SSLCertVerificationError) as e:
            peer_cn(tb.tls_port, pki["ca"])
        assert refusal in str(e.value)
    finally:
        install(pki, pki["one"])
        before = tb.logs().count("TLS certificate in use")
        sighup_and_wait(tb, before)
    assert peer_cn(tb.tls_port, pki["ca"]) == "berth one"
    assert_serving(tb)


# ---- who may listen where --------------------------------------------------------

def berthd_refuses(pki, credentials, args):
    """Runs berthd with args on fresh directories: (exit status, stderr). It
    must refuse before it makes or binds anything."""
    state = os.path.join("/var/tmp", "berth-it-refuse-" + uuid.uuid4().hex[:8])
    run_dir = os.path.join("/run", "bt-refuse-" + uuid.uuid4().hex[:8])
    try:
        r = run(bh.berthd_wrapper() + [os.path.join(bh.build_dir(), "berthd"), "--state-dir", state,
                                       "--run-dir", run_dir, "--credentials", credentials] + args, timeout=30)
        assert not os.path.exists(state) and not os.path.exists(run_dir), "berthd went ahead before refusing"
        return r.returncode, r.stderr.decode(errors="replace")
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


def test_refuses_cleartext_on_a_non_loopback_address(pki, credentials):
    port = bh.free_port()
    code, err = berthd_refuses(pki, credentials, ["--listen", "0.0.0.0:%d" % port])
    assert code == 2, err
    assert ("berthd: --listen 0.0.0.0:%d is not a loopback address: callers and their keys would cross the network "
            "in cleartext. Serve it over TLS: add --tls-cert PEM --tls-key PEM and use --tls-listen 0.0.0.0:%d "
            "instead; or, on a network you trust, add --insecure-listen" % (port, port)) in err
    assert "listening on" not in err
    # [::] is no different; a loopback address is fine (refused here only for the missing key)
    code, err = berthd_refuses(pki, credentials, ["--listen", "[::]:%d" % port])
    assert code == 2 and "--listen [::]:%d is not a loopback address" % port in err


@pytest.mark.parametrize("flags", [["--listen", "0.0.0.0:{p}", "--insecure-listen"],
                                   ["--tls-listen", "0.0.0.0:{p}", "--tls-cert", "{cert}", "--tls-key", "{key}"]])
def test_refuses_auth_none_on_a_non_loopback_address(pki, credentials, flags):
    port = bh.free_port()
    args = [f.format(p=port, cert=pki["one"][0], key=pki["one"][1]) for f in flags] + ["--auth", "none"]
    code, err = berthd_refuses(pki, credentials, args)
    assert code == 2, err
    assert "0.0.0.0:%d is not a loopback address and --auth none would let anyone who reaches it call every " \
           "operation" % port in err
    assert "use --auth sigv4 (keys in --credentials), or listen on 127.0.0.1 or [::1]" in err


def test_refuses_incomplete_tls_settings(pki, credentials):
    port = bh.free_port()
    code, err = berthd_refuses(pki, credentials, ["--listen", "127.0.0.1:%d" % port, "--tls-cert", pki["one"][0]])
    assert code == 2
    assert "berthd: --tls-cert without --tls-key: give both --tls-cert (the certificate chain, PEM) and " \
           "--tls-key (its private key, PEM), or neither" in err
    code, err = berthd_refuses(pki, credentials, ["--tls-listen", "127.0.0.1:%d" % port])
    assert code == 2
    assert "berthd: --tls-listen 127.0.0.1:%d needs a certificate: add --tls-cert PEM and --tls-key PEM" % port in err
    code, err = berthd_refuses(pki, credentials, ["--tls-listen", "127.0.0.1:%d" % port, "--tls-cert", pki["one"][0],
                                                  "--tls-key", pki["two"][1]])
    assert code == 2
    assert "is not the private key of the certificate in --tls-cert %s" % pki["one"][0] in err
    code, err = berthd_refuses(pki, credentials, ["--tls-listen", "127.0.0.1:%d" % port, "--tls-cert", pki["one"][1],
                                                  "--tls-key", pki["one"][1]])
    assert code == 2
    assert "--tls-cert %s is not a PEM certificate" % pki["one"][1] in err
    code, err = berthd_refuses(pki, credentials, ["--listen", "127.0.0.1:%d" % port, "--tls-listen",
                                                  "localhost:%d" % port, "--tls-cert", pki["one"][0],
                                                  "--tls-key", pki["one"][1]])
    assert code == 2
    assert ("berthd: --listen 127.0.0.1:%d and --tls-listen localhost:%d are the same address: give each address "
            "once" % (port, port)) in err


class InsecureBerth(bh.SupervisedBerth):
    logs = TLSBerth.logs


def test_insecure_listen_warns_and_serves():
    """--insecure-listen: the cleartext non-loopback address is served, with a
    warning at start."""
    port = bh.free_port()
    inst = InsecureBerth(extra_berthd=["--listen", "0.0.0.0:%d" % port, "--insecure-listen"])
    try:
        inst.start()
        assert "--insecure-listen: serving cleartext HTTP on 0.0.0.0:%d, which is not a loopback address" % port \
            in inst.logs()
        assert bh.http_request(port, "GET", "/ping")[0] == 200
        inst.assert_serving()
    finally:
        inst.teardown()


def test_router_alone_refuses_cleartext_on_a_non_loopback_address(tmp_path):
    router = os.path.join(bh.build_dir(), "berth-router")
    port = bh.free_port()
    r = run([router, "--listen", "0.0.0.0:%d" % port, "--berthd-socket", str(tmp_path / "none.sock")], timeout=20)
    assert r.returncode == 2
    assert ("berth-router: --listen 0.0.0.0:%d is not a loopback address: anyone who reaches it would talk to berth "
            "in cleartext. Serve it over TLS with --tls-listen 0.0.0.0:%d (berthd --tls-cert/--tls-key), or, on a "
            "network you trust, add --insecure-listen" % (port, port)) in r.stderr.decode()
    # with --insecure-listen it serves (and says so), until SIGTERM
    p = subprocess.Popen([router, "--listen", "0.0.0.0:%d" % port, "--insecure-listen", "--berthd-socket",
                          str(tmp_path / "none.sock")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        bh.wait_until(lambda: _ping(port), 10, "the router on 0.0.0.0")
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    assert b"--insecure-listen: serving cleartext HTTP on 0.0.0.0:%d" % port in err


def test_router_refuses_an_inherited_non_loopback_socket(tmp_path):
    """A cleartext socket handed down (--listen-fd) is held to the same rule:
    berthd passes --insecure-listen when it allowed one."""
    router = os.path.join(bh.build_dir(), "berth-router")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("0.0.0.0", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        r = subprocess.run([router, "--listen-fd", str(sock.fileno()), "--berthd-socket",
                            str(tmp_path / "none.sock")], pass_fds=[sock.fileno()], capture_output=True, timeout=20)
    finally:
        sock.close()
    assert r.returncode == 2
    assert ("berth-router: --listen-fd %d is 0.0.0.0:%d, not a loopback address: cleartext there needs "
            "--insecure-listen (berthd --insecure-listen), else use a TLS-only address (--tls-listen-fd)"
            % (int(r.args[2]), port)) in r.stderr.decode()


def _ping(port):
    try:
        return bh.http_request(port, "GET", "/ping", timeout=2)[0] == 200
    except OSError:
        return False


# ---- the router run alone ----------------------------------------------------------

class AloneTLSBerth(bh.Berth):
    """berthd with the certificate; the router started by the harness, not
    by berthd, with its own --tls-listen: berthd's greeting reaches it too."""

    def __init__(self, pki, **kw):
        super().__init__(**kw)
        self.tls_port = bh.free_port()
        self.pki = pki
        self.extra_berthd += ["--tls-cert", pki["cert"], "--tls-key", pki["key"]]
        self.extra_router += ["--tls-listen", "127.0.0.1:%d" % self.tls_port]

    https = TLSBerth.https
    logs = TLSBerth.logs
    tls_client = TLSBerth.tls_client


def test_router_alone_gets_the_certificate_from_berthd(pki):
    inst = AloneTLSBerth(pki)
    try:
        inst.start()
        bh.wait_until(lambda: peer_cn(inst.tls_port, pki["ca"]) == "berth one", 10, "TLS on the router alone")
        assert https_get(inst.tls_port, "/ping", pki["ca"], ["http/1.1"])[:2] == (200, "http/1.1")
        sm = inst.tls_client("sagemaker")
        assert "Endpoints" in sm.list_endpoints()
        inst.assert_serving()
    finally:
        inst.teardown()


def test_tls_client_before_any_certificate(tmp_path):
    """No berthd, so no certificate: TLS clients are closed, and that is
    logged once a second at most; plain HTTP there still gets the 400."""
    router = os.path.join(bh.build_dir(), "berth-router")
    port = bh.free_port()
    log = open(tmp_path / "router.log", "wb")
    p = subprocess.Popen([router, "--tls-listen", "127.0.0.1:%d" % port, "--berthd-socket",
                          str(tmp_path / "none.sock")], stdout=log, stderr=log)
    try:
        bh.wait_until(lambda: b"listening on 127.0.0.1:%d" % port in (tmp_path / "router.log").read_bytes(), 10,
                      "the router to listen")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t0 = time.monotonic()
        for _ in range(5):
            with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
                tls_connect(port, ctx).close()
        assert time.monotonic() - t0 < 1.0, "too slow to check the once-a-second log"
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_until_closed(s, 10).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        s.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        log.close()
    text = (tmp_path / "router.log").read_text()
    assert p.returncode == 0, text
    assert text.count("closed a TLS client: berthd has not sent the router a certificate yet (berthd --tls-cert "
                      "and --tls-key)") == 1, text


@pytest.mark.parametrize("version,flag", [("1.1", "--http1.1"), ("2", "--http2")])
def test_response_stream_over_tls(tb, ep, version, flag):
    """InvokeEndpointWithResponseStream over TLS (ALPN h2 and http/1.1): the
    echo container streams 16 chunks of 64 KiB; botocore's event-stream
    parser reads them back, in order, byte for byte."""
    from botocore.eventstream import EventStreamBuffer
    r = run(["curl", "-sS", "--max-time", "60", flag, "--cacert", tb.pki["ca"], "--aws-sigv4",
             "aws:amz:us-east-1:sagemaker", "--user", "%s:%s" % tb.invoke_key, "-w", "\n%{http_code} %{http_version}",
             "-H", "X-Amzn-SageMaker-Custom-Attributes: stream=16,bytes=65536,delay=5", "--data-binary", "x",
             "%s/endpoints/%s/invocations-response-stream" % (tb.https(), ep)])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail.decode() == "200 " + version
    buf = EventStreamBuffer()
    buf.add_data(body)
    payload = b"".join(m.payload for m in buf if m.headers[":event-type"] == "PayloadPart")
    assert payload == bytes(97 + k % 26 for k in range(16 * 65536))
