"""Multi-model endpoints, berthd's side: mme_load / mme_touch /
mme_list driven directly over berthd's control socket (proto_control.h
kinds 4 and 5), against the echo container's /models API."""
import array
import http.server
import io
import json
import os
import socket
import tarfile
import threading
import time

import pytest

import berth_helpers as bh

BUCKET = "mme-bucket"
PREFIX = "models"
MISSING_FMT = ("Failed to download model data(bucket: %s, key: %s). Please ensure that there is an object "
               "located at the URL and that the role passed to CreateModel has permissions to download the model.")


uniq = bh.unique_name
tgz = bh.tgz


def put(berth, key, data, prefix=PREFIX):
    path = os.path.join(berth.object_root, BUCKET, prefix, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def load(berth, endpoint, target, timeout=60):
    return berth.control({"op": "mme_load", "endpoint": endpoint, "target_model": target}, timeout)


def container_http(berth, endpoint, method, path):
    """An HTTP exchange with the endpoint's (first) container through its shim."""
    ids = [c["id"] for c in berth.ps(endpoint)]
    assert ids, berth.ps()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(berth.run_dir, "shims", ids[0] + ".sock"))
    s.sendall(b'{"op":"connect"}\n')
    msg, fds, _, _ = socket.recv_fds(s, 4096, 1)
    assert fds, msg
    s.close()
    c = socket.socket(fileno=fds[0])
    c.settimeout(10)
    c.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
               % (method, path)).encode())
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def make_mme(berth, env=None, url=None, count=1):
    model, cfg, ep = uniq("mme-m"), uniq("mme-c"), uniq("mme-e")
    berth.sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE, PrimaryContainer={
        "Image": bh.echo_rootfs(), "Mode": "MultiModel",
        "ModelDataUrl": url or "s3://%s/%s/" % (BUCKET, PREFIX),
        "Environment": env or {}})
    berth.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large"}])
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    berth.wait_in_service(ep)
    return ep


def loads_count(berth, ep):
    status, body = container_http(berth, ep, "GET", "/models")
    assert status == 200, body
    return json.loads(body)


def berthd_log(berth):
    with open(berth.berthd_log, "rb") as f:
        return f.read().decode(errors="replace")


def fetch_lines(berth, ep, target):
    return [l for l in berthd_log(berth).splitlines() if ("mme %s: fetching %s " % (ep, target)) in l]


@pytest.fixture(scope="module")
def mme_ep(berth):
    return make_mme(berth)


def test_mme_endpoint_is_routed_as_multimodel_with_a_cache_dir(berth, mme_ep):
    routes = berth.route_table()
    e = [x for x in routes["endpoints"] if x["name"] == mme_ep][0]
    assert [v["mode"] for v in e["variants"]] == ["MultiModel"]  # each variant has its own mode
    assert os.path.isdir(os.path.join(berth.state_dir, "mme", mme_ep))


def test_load_unpacks_once_and_a_second_load_answers_at_once(berth, mme_ep):
    put(berth, "m1.tar.gz", tgz({"model.txt": b"model one\n"}))
    r = load(berth, mme_ep, "m1.tar.gz")
    assert r["ok"] is True, r
    n = r["model"]
    assert len(n) == 24 and all(c in "0123456789abcdef" for c in n)
    assert os.path.isfile(os.path.join(berth.state_dir, "mme", mme_ep, n, "model", "model.txt"))
    t0 = time.time()
    r2 = load(berth, mme_ep, "m1.tar.gz")
    assert r2["ok"] is True and r2["model"] == n
    assert time.time() - t0 < 1.0
    models = loads_count(berth, mme_ep)
    assert any(m.get("modelName") == n for m in models["models"]), models
    # the container reads it from /opt/ml/models/N/model
    status, body = container_http(berth, mme_ep, "GET", "/models/" + n)
    assert status == 200, body
    # listed for berth describe
    lst = berth.control({"op": "mme_list", "endpoint": mme_ep})
    assert [m["target"] for m in lst["models"] if m["model"] == n] == ["m1.tar.gz"]
    out = berth.cli("describe", mme_ep)
    assert b"LoadedModels" in out.stdout and n.encode() in out.stdout
    # touch: no answer, counts
    berth.control({"op": "mme_touch", "endpoint": mme_ep, "models": {n: 3}}, want_reply=False)
    bh.wait_until(lambda: [m["invocations"] for m in berth.control({"op": "mme_list", "endpoint": mme_ep})
                           ["models"] if m["model"] == n] == [3], 5, "touch counted")


def test_changed_artifact_loads_under_a_new_name_after_eviction(berth):
    ep = make_mme(berth, env={"ECHO_MAX_MODELS": "1"})
    put(berth, "v.tar.gz", tgz({"model.txt": b"v1"}))
    n1 = load(berth, ep, "v.tar.gz")["model"]
    time.sleep(0.01)
    put(berth, "v.tar.gz", tgz({"model.txt": b"v2 longer"}))
    assert load(berth, ep, "v.tar.gz")["model"] == n1   # loaded: answered at once
    put(berth, "other.tar.gz", tgz({"model.txt": b"o"}))
    assert load(berth, ep, "other.tar.gz")["ok"]         # 507 → v evicted
    n2 = load(berth, ep, "v.tar.gz")["model"]
    assert n2 != n1
    berth.delete_endpoint_and_wait(ep)


def test_fifty_concurrent_loads_of_one_model_share_one_fetch(berth):
    ep = make_mme(berth, env={"ECHO_LOAD_DELAY_MS": "500"})
    put(berth, "sf.tar.gz", tgz({"model.txt": b"single flight"}))
    before = loads_count(berth, ep)["loads"]
    results = [None] * 50

    def one(i):
        results[i] = load(berth, ep, "sf.tar.gz")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r and r["ok"] for r in results), [r for r in results if not (r and r["ok"])][:3]
    assert len({r["model"] for r in results}) == 1
    assert loads_count(berth, ep)["loads"] - before == 1
    assert len(fetch_lines(berth, ep, "sf.tar.gz")) == 1
    berth.delete_endpoint_and_wait(ep)


def test_missing_artifact_is_refused_in_sagemakers_words(berth, mme_ep):
    r = load(berth, mme_ep, "nope/absent.tar.gz")
    assert r["ok"] is False and r["status"] == 400 and r["code"] == "ValidationError"
    assert r["message"] == MISSING_FMT % (BUCKET, PREFIX + "/nope/absent.tar.gz")


def test_corrupt_or_non_gzip_artifact_is_refused_without_leftovers(berth, mme_ep):
    put(berth, "corrupt.tar.gz", b"\x1f\x8b\x08\x00garbage-not-really-gzip" * 10)
    r = load(berth, mme_ep, "corrupt.tar.gz")
    assert r["ok"] is False and r["status"] == 400 and r["code"] == "ValidationError", r
    assert "corrupt.tar.gz" in r["message"]
    put(berth, "plain.txt", b"just text, not an archive\n")
    r = load(berth, mme_ep, "plain.txt")
    assert r["ok"] is False and r["status"] == 400 and "plain.txt" in r["message"], r
    assert not [d for d in os.listdir(os.path.join(berth.state_dir, "mme", mme_ep)) if "partial" in d]


def test_artifact_escaping_its_directory_is_refused(berth, mme_ep):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        for name in ("../escape.txt",):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"bad"))
    put(berth, "evil.tar.gz", bio.getvalue())
    r = load(berth, mme_ep, "evil.tar.gz")
    assert r["ok"] is False and r["status"] == 400, r
    assert not os.path.exists(os.path.join(berth.state_dir, "mme", "escape.txt"))
    assert not os.path.exists(os.path.join(berth.state_dir, "mme", mme_ep, "escape.txt"))
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        info = tarfile.TarInfo("/tmp/berth-mme-abs-escape.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    put(berth, "abs.tar.gz", bio.getvalue())
    r = load(berth, mme_ep, "abs.tar.gz")
    assert r["ok"] is False and r["status"] == 400, r
    assert not os.path.exists("/tmp/berth-mme-abs-escape.txt")


@pytest.mark.parametrize("target", ["/abs.tar.gz", "../up.tar.gz", "a/../../b.tar.gz", "x" * 2000, "a\x01b", ""])
def test_bad_target_model_names_are_refused(berth, mme_ep, target):
    r = load(berth, mme_ep, target)
    assert r["ok"] is False and r["status"] == 400 and r["code"] == "ValidationError", r
    assert "TargetModel" in r["message"]


def test_load_on_a_single_model_or_unknown_endpoint_is_refused(berth):
    model, cfg, ep = uniq("single-m"), uniq("single-c"), uniq("single-e")
    berth.sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE,
                          PrimaryContainer={"Image": bh.echo_rootfs()})
    berth.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    berth.wait_in_service(ep)
    r = load(berth, ep, "m1.tar.gz")
    assert r["ok"] is False and r["status"] == 400 and "is not a multi-model endpoint" in r["message"], r
    r = load(berth, "no-such-endpoint-mme", "m1.tar.gz")
    assert r["ok"] is False and r["status"] == 400 and "not found" in r["message"], r
    berth.delete_endpoint_and_wait(ep)


def test_container_failing_a_load_is_a_model_error(berth):
    ep = make_mme(berth, env={"ECHO_LOAD_FAIL": "1"})
    put(berth, "f.tar.gz", tgz({"model.txt": b"f"}))
    r = load(berth, ep, "f.tar.gz")
    assert r["ok"] is False and r["status"] == 424 and r["code"] == "ModelError", r
    assert r["original_status"] == 500 and "ECHO_LOAD_FAIL" in r["original_message"]
    berth.delete_endpoint_and_wait(ep)


def test_container_507_evicts_the_least_recently_used_model(berth):
    ep = make_mme(berth, env={"ECHO_MAX_MODELS": "2"})
    watch = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    watch.settimeout(10)
    watch.connect(berth.socket)
    watch.sendall(b'{"op":"watch_routes"}\n')
    names = []
    for i in range(3):
        put(berth, "e%d.tar.gz" % i, tgz({"model.txt": b"model %d" % i}))
        r = load(berth, ep, "e%d.tar.gz" % i)
        assert r["ok"], r
        names.append(r["model"])
    listed = {m["model"] for m in berth.control({"op": "mme_list", "endpoint": ep})["models"]}
    assert listed == {names[1], names[2]}
    assert not os.path.exists(os.path.join(berth.state_dir, "mme", ep, names[0]))
    buf = b""
    deadline = time.time() + 10
    evicted = None
    while time.time() < deadline and evicted is None:
        buf += watch.recv(1 << 20)
        for line in buf.split(b"\n"):
            if line.startswith(b'{"op":"mme_evicted"'):
                evicted = json.loads(line)
    watch.close()
    assert evicted == {"op": "mme_evicted", "endpoint": ep, "model": names[0]}
    # LRU uses touch: touch e1, then e3 evicts e2
    berth.control({"op": "mme_touch", "endpoint": ep, "models": {names[1]: 1}}, want_reply=False)
    time.sleep(0.3)
    put(berth, "e3.tar.gz", tgz({"model.txt": b"model 3"}))
    assert load(berth, ep, "e3.tar.gz")["ok"]
    listed = {m["target"] for m in berth.control({"op": "mme_list", "endpoint": ep})["models"]}
    assert listed == {"e1.tar.gz", "e3.tar.gz"}
    berth.delete_endpoint_and_wait(ep)


def test_cache_stays_within_its_disk_and_model_size_bounds(make_berth):
    b = make_berth(extra_berthd=["--mme-disk-bytes", str(3 * 1024 * 1024), "--mme-max-model-bytes",
                                 str(2 * 1024 * 1024)])
    ep = make_mme(b)
    for i in range(3):
        put(b, "d%d.tar.gz" % i, tgz({"model.bin": os.urandom(1200 * 1024)}))
        assert load(b, ep, "d%d.tar.gz" % i)["ok"]
    listed = [m["target"] for m in b.control({"op": "mme_list", "endpoint": ep})["models"]]
    assert "d0.tar.gz" not in listed and "d2.tar.gz" in listed, listed
    assert "evicted model" in berthd_log(b) and "model cache on disk" in berthd_log(b)
    put(b, "big.tar.gz", tgz({"model.bin": os.urandom(3 * 1024 * 1024)}))
    r = load(b, ep, "big.tar.gz")
    assert r["ok"] is False and r["status"] == 400 and "big.tar.gz" in r["message"], r
    b.delete_endpoint_and_wait(ep)
    assert not os.path.exists(os.path.join(b.state_dir, "mme", ep))
    assert b.leaks() == []


class _Handler(http.server.BaseHTTPRequestHandler):
    store = {}

    def _send(self, body):
        data = self.store.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"%x"' % (hash(data) & 0xffffffff))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):
        self._send(False)

    def do_GET(self):
        self._send(True)

    def log_message(self, *a):
        pass


def test_models_load_over_http_and_an_unreachable_store_is_503(make_berth):
    """--s3-endpoint: s3:// objects over HTTP (path style, SigV4 when
    credentials are around); a store that stopped answering → 503."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    b = make_berth(extra_berthd=["--s3-endpoint", "http://127.0.0.1:%d" % port, "--s3-bucket", BUCKET])
    try:
        _Handler.store["/%s/%s/h.tar.gz" % (BUCKET, PREFIX)] = tgz({"model.txt": b"over http"})
        ep = make_mme(b)
        r = load(b, ep, "h.tar.gz")
        assert r["ok"], r
        assert os.path.isfile(os.path.join(b.state_dir, "mme", ep, r["model"], "model", "model.txt"))
        r = load(b, ep, "missing.tar.gz")
        assert r["ok"] is False and r["status"] == 400, r
        assert r["message"] == MISSING_FMT % (BUCKET, PREFIX + "/missing.tar.gz")
    finally:
        srv.shutdown()
        srv.server_close()
    r = load(b, ep, "h2.tar.gz")   # nothing listens on the port now
    assert r["ok"] is False and r["status"] == 503 and r["code"] == "ServiceUnavailable", r
    assert "could not be reached" in r["message"]
    assert load(b, ep, "h.tar.gz")["ok"]   # already loaded: no store access
    b.delete_endpoint_and_wait(ep)
    assert b.leaks() == []


def test_deleting_the_endpoint_removes_its_model_cache(make_berth):
    b = make_berth()
    ep = make_mme(b)
    put(b, "x.tar.gz", tgz({"model.txt": b"x"}))
    assert load(b, ep, "x.tar.gz")["ok"]
    b.delete_endpoint_and_wait(ep)
    assert not os.path.exists(os.path.join(b.state_dir, "mme", ep))
    assert b.leaks() == []
