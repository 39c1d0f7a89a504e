"""Host paths, model data mounts, object store and unpack bounds, each attack performed for real against berthd:

- `Image` (directory, tarball, OCI layout) and `file://` model data only
  under the operator's roots (--image-root / --model-root), never through a
  symbolic link leading out of them: anything else is a ValidationException
  naming the roots (docs/contract.md pins the message);
- the model directory is mounted read-only, without whatever is mounted
  below it on the host;
- s3:// only for listed buckets (--s3-bucket), http(s):// only for listed
  hosts (--https-host), redirects only among them; refusals send nothing;
- images unpack within --image-max-bytes / --image-max-entries.

Every test checks the exact answer, that berth keeps serving, and (at
teardown) that nothing leaked."""
import gzip
import http.server
import io
import json
import os
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import threading
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh
import test_oci_images as oi

S = uuid.uuid4().hex[:6]

IMAGE_MSG = ("Container 'primary': Image \"%s\" is outside the directories berth may run images from "
             "(image roots: %s). Move the image under one of them, or add its directory to image_roots in "
             "berthd's configuration (--image-root); a symbolic link must not lead out of its root.")
MODEL_MSG = ("Container 'primary': Could not access model data at %s: it is outside the directories berth "
             "may read model data from (model roots: %s). Move it under one of them, or add its directory to "
             "model_roots in berthd's configuration (--model-root); a symbolic link must not lead out of its "
             "root.")


@pytest.fixture(scope="module")
def dirs():
    """allowed image root, allowed model root, and a directory outside both
    (all on /var/tmp, away from the default test roots)."""
    base = tempfile.mkdtemp(prefix="berth-hp-", dir="/var/tmp")
    out = {k: os.path.join(base, k) for k in ("images", "models", "outside")}
    for p in out.values():
        os.makedirs(p)
    # the echo image, as a directory and a tarball, both inside and outside
    for where in ("images", "outside"):
        shutil.copytree(bh.echo_rootfs(), os.path.join(out[where], "rootfs"), symlinks=True)
        shutil.copy(bh.echo_tarball(), os.path.join(out[where], "rootfs.tar.gz"))
        oi.make_layout(os.path.join(out[where], "layout"), [oi.tar_layer(oi.base_entries())], oi.config())
    yield out
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def hp(dirs):
    yield from bh.serve(image_roots=[dirs["images"]], model_roots=[dirs["models"]])


def create_model_error(inst, name, primary):
    with pytest.raises(ClientError) as ei:
        inst.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=primary)
    e = ei.value
    assert bh.error_code(e) == "ValidationException", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # nothing was created, and berth keeps serving
    with pytest.raises(ClientError):
        inst.sm.describe_model(ModelName=name)
    inst.assert_serving()
    return bh.error_message(e)


def links(dirs):
    """Symbolic links inside the allowed roots that lead out of them."""
    made = {}
    for root, name, target in (
            ("images", "to-root", "/"),
            ("images", "to-etc", "/etc"),
            ("images", "to-outside-dir", os.path.join(dirs["outside"], "rootfs")),
            ("images", "to-outside-tar", os.path.join(dirs["outside"], "rootfs.tar.gz")),
            ("images", "to-outside-layout", os.path.join(dirs["outside"], "layout")),
            ("images", "rel-out", "../outside"),
            ("models", "to-etc", "/etc"),
            ("models", "rel-out", "../outside"),
            ("models", "proc-root", "/proc/self/root")):
        p = os.path.join(dirs[root], name)
        if not os.path.lexists(p):
            os.symlink(target, p)
        made[(root, name)] = p
    return made


@pytest.mark.parametrize("kind", ["/", "/etc", "outside-dir", "outside-tar", "oci:/", "oci:/etc", "oci-outside",
                                  "link-root", "link-etc", "link-dir", "link-tar", "link-oci", "rel-link-dir",
                                  "dotdot"])
def test_image_outside_roots_is_refused(hp, dirs, kind):
    ln = links(dirs)
    image = {
        "/": "/",
        "/etc": "/etc",
        "outside-dir": os.path.join(dirs["outside"], "rootfs"),
        "outside-tar": os.path.join(dirs["outside"], "rootfs.tar.gz"),
        "oci:/": "oci:/",
        "oci:/etc": "oci:/etc",
        "oci-outside": "oci:" + os.path.join(dirs["outside"], "layout"),
        "link-root": ln[("images", "to-root")],
        "link-etc": ln[("images", "to-etc")] + "/",
        "link-dir": ln[("images", "to-outside-dir")],
        "link-tar": ln[("images", "to-outside-tar")],
        "link-oci": "oci:" + ln[("images", "to-outside-layout")] + ":latest",
        "rel-link-dir": os.path.join(ln[("images", "rel-out")], "rootfs"),
        "dotdot": os.path.join(dirs["images"], "..", "outside", "rootfs"),
    }[kind]
    msg = create_model_error(hp, "hp-img-%s-%s" % (kind.replace(":", "").replace("/", "x"), S), {"Image": image})
    assert msg == IMAGE_MSG % (image, dirs["images"]), msg


def test_images_inside_roots_run(hp, dirs):
    """The same three kinds inside the root work (and links inside it too)."""
    inside = os.path.join(dirs["images"], "inside-link")
    if not os.path.lexists(inside):
        os.symlink("rootfs", inside)  # relative, stays in the root
    containers = [bh.container("d", image=inside), bh.container("t", image=os.path.join(dirs["images"],
                                                                                         "rootfs.tar.gz")),
                  bh.container("o", image="oci:" + os.path.join(dirs["images"], "layout"))]
    m, c, ep = bh.create_endpoint_stack(hp.sm, "hp-inside-" + S, containers=containers, mode="Direct", inst=hp)
    for h in ("d", "t", "o"):
        r = hp.rt.invoke_endpoint(EndpointName=ep, TargetContainerHostname=h, Body=b"in-root")
        assert r["Body"].read() == b"in-root"
    bh.delete_stack(hp, m, c, ep)


@pytest.mark.parametrize("kind", ["root", "etc", "shadow", "outside", "link-etc", "rel-link", "proc-link",
                                  "mme-root", "mme-link"])
def test_model_data_outside_roots_is_refused(hp, dirs, kind):
    ln = links(dirs)
    url = {
        "root": "file:///",
        "etc": "file:///etc",
        "shadow": "file:///etc/shadow",
        "outside": "file://" + os.path.join(dirs["outside"], "rootfs.tar.gz"),
        "link-etc": "file://" + ln[("models", "to-etc")],
        "rel-link": "file://" + ln[("models", "rel-out")] + "/rootfs.tar.gz",
        "proc-link": "file://" + ln[("models", "proc-root")] + "/etc",
        "mme-root": "file:///",
        "mme-link": "file://" + ln[("models", "to-etc")] + "/",
    }[kind]
    primary = {"Image": os.path.join(dirs["images"], "rootfs"), "ModelDataUrl": url}
    if kind.startswith("mme"):
        primary["Mode"] = "MultiModel"
    msg = create_model_error(hp, "hp-model-%s-%s" % (kind, S), primary)
    assert msg == MODEL_MSG % (url, dirs["models"]), msg


def _file_op(inst, ep, cmd):
    """The echo container's file mode: (status, body) of one command."""
    st, _, body = bh.http_request(inst.port, "POST", "/endpoints/%s/invocations" % ep, body=cmd.encode(),
                                  headers={"Content-Type": "text/plain"})
    if st == 200:
        return 200, body
    doc = json.loads(body)
    return doc.get("OriginalStatusCode"), doc.get("OriginalMessage", "")


def _ps(inst):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(inst.socket)
    s.sendall(b'{"op":"ps"}\n')
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)["containers"]


def test_model_dir_with_submounts_is_read_only_and_alone(hp, dirs):
    """A model directory under an allowed root holding what an attacker
    would mount below it (the host's /proc, a tmpfs with a file): the
    container sees the directory's own files, read-only, and nothing of the
    submounts; writing anywhere under /opt/ml/model fails."""
    model = os.path.join(dirs["models"], "attack-" + S)
    os.makedirs(os.path.join(model, "proc"))
    os.makedirs(os.path.join(model, "shm"))
    with open(os.path.join(model, "weights.txt"), "w") as fh:
        fh.write("w=1\n")
    mounted = []
    try:
        subprocess.run(["mount", "--bind", "/proc", os.path.join(model, "proc")], check=True, timeout=10)
        mounted.append(os.path.join(model, "proc"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", os.path.join(model, "shm")], check=True,
                       timeout=10)
        mounted.append(os.path.join(model, "shm"))
        with open(os.path.join(model, "shm", "hostfile"), "w") as fh:
            fh.write("host tmpfs\n")
        primary = bh.container(image=os.path.join(dirs["images"], "rootfs"), env={"ECHO_MODE": "file"},
                               model_data_url="file://" + model)
        m, c, ep = bh.create_endpoint_stack(hp.sm, "hp-sub-" + S, primary=primary, inst=hp)
        try:
            assert _file_op(hp, ep, "read /opt/ml/model/weights.txt") == (200, b"w=1\n")
            # the submounts did not come along: empty directories only
            st, body = _file_op(hp, ep, "read /opt/ml/model/proc/sys/kernel/core_pattern")
            assert st == 404, (st, body)
            st, body = _file_op(hp, ep, "read /opt/ml/model/proc/self/status")
            assert st == 404, (st, body)
            st, body = _file_op(hp, ep, "read /opt/ml/model/shm/hostfile")
            assert st == 404, (st, body)
            # read-only everywhere below /opt/ml/model
            for path in ("/opt/ml/model/new.txt", "/opt/ml/model/weights.txt", "/opt/ml/model/proc/x",
                         "/opt/ml/model/shm/x"):
                st, body = _file_op(hp, ep, "write %s pwned" % path)
                assert st == 500 and "Read-only file system" in body, (path, st, body)
            assert sorted(os.listdir(model)) == ["proc", "shm", "weights.txt"]
            assert os.listdir(os.path.join(model, "shm")) == ["hostfile"]
            # the bundle binds berth's own mount of it, never recursively
            cid = [x["id"] for x in _ps(hp) if x["endpoint"] == ep][0]
            cdir = os.path.join(hp.state_dir, "containers", cid)
            with open(os.path.join(cdir, "bundle", "config.json")) as fh:
                mnt = [x for x in json.load(fh)["mounts"] if x["destination"] == "/opt/ml/model"][0]
            assert mnt["source"] == os.path.join(cdir, "model"), mnt
            assert "rbind" not in mnt["options"] and "bind" in mnt["options"] and "ro" in mnt["options"], mnt
            with open("/proc/self/mountinfo") as fh:
                line = [x for x in fh.read().splitlines() if x.split()[4] == os.path.join(cdir, "model")]
            assert len(line) == 1, line
            opts = line[0].split()[5].split(",")
            assert "ro" in opts and "nosuid" in opts and "nodev" in opts, line
        finally:
            bh.delete_stack(hp, m, c, ep)
        hp.assert_serving()
        assert bh.mounts_under([hp.state_dir]) == []
    finally:
        for p in reversed(mounted):
            subprocess.run(["umount", p], timeout=10)
        shutil.rmtree(model, ignore_errors=True)


# ---- object store ------------------------------------------------------------

class _Store(http.server.BaseHTTPRequestHandler):
    """An HTTP object store on 127.0.0.1 that records every request.
    server.objects: {path: bytes}; server.redirects: {path: location}."""

    def _answer(self, body):
        self.server.requests.append((self.command, self.path, self.headers.get("Authorization")))
        if self.path in self.server.redirects:
            self.send_response(302)
            self.send_header("Location", self.server.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.server.objects.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"%d"' % len(data))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)

    def log_message(self, *a):
        pass


@pytest.fixture
def tls_cert(tmp_path):
    """A self-signed certificate for 127.0.0.1 (berthd trusts it through
    --https-ca-file): (cert, key) paths."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def stores():
    made = []

    def make(tls=None):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Store)
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.requests, srv.objects, srv.redirects = [], {}, {}
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        made.append(srv)
        return srv
    yield make
    for srv in made:
        srv.shutdown()
        srv.server_close()


def tgz(files):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def mme(image, url):
    return {"Image": image, "Mode": "MultiModel", "ModelDataUrl": url,
            "Environment": {"SAGEMAKER_MULTI_MODEL": "true"}}


def test_unlisted_bucket_is_refused_without_a_request(make_berth, stores):
    srv = stores()
    port = srv.server_address[1]
    inst = make_berth(extra_berthd=["--s3-endpoint", "http://127.0.0.1:%d" % port, "--s3-bucket", "allowed"])
    srv.objects["/allowed/p/m.tar.gz"] = tgz({"model.txt": b"listed"})
    for url in ("s3://other/p/", "s3://secrets/"):
        msg = create_model_error(inst, "hp-bucket-%d-%s" % (len(url), S), mme(bh.echo_rootfs(), url))
        bucket = url[5:].split("/")[0]
        assert msg == ("Container 'primary': Could not access model data at %s. berth reads s3:// model data only "
                       "from the buckets in its s3_buckets setting (--s3-bucket): allowed; bucket \"%s\" is not "
                       "one of them. Use one of those buckets, or ask the operator to add this one."
                       % (url, bucket)), msg
    assert srv.requests == []
    # the listed bucket works, through the same store
    m, c, ep = bh.create_endpoint_stack(inst.sm, "hp-bucket-ok-" + S, primary=mme(bh.echo_rootfs(), "s3://allowed/p/"),
                                        inst=inst)
    r = inst.rt.invoke_endpoint(EndpointName=ep, TargetModel="m.tar.gz", Body=b"q")
    assert r["Body"].read().endswith(b":listed:q")
    assert all(p.startswith("/allowed/") for _, p, _ in srv.requests), srv.requests
    bh.delete_stack(inst, m, c, ep)


def test_s3_endpoint_without_buckets_does_not_start():
    inst = bh.Berth(extra_berthd=["--s3-endpoint", "http://127.0.0.1:9"])
    with pytest.raises(AssertionError) as ei:
        inst.start()
    assert "needs the buckets berthd may read from it: give --s3-bucket NAME" in str(ei.value)
    bh.LIVE.remove(inst)
    shutil.rmtree(inst.state_dir, ignore_errors=True)
    shutil.rmtree(inst.run_dir, ignore_errors=True)
    shutil.rmtree(inst.object_root, ignore_errors=True)


def test_unlisted_host_and_redirect_out_are_refused(make_berth, stores, tls_cert):
    a, b = stores(tls_cert), stores(tls_cert)
    pa, pb = a.server_address[1], b.server_address[1]
    inst = make_berth(extra_berthd=["--https-host", "127.0.0.1:%d" % pa, "--https-ca-file", tls_cert[0]])
    # a prefix on a host that is not listed (same address, other port; a name)
    for url, host in (("https://127.0.0.1:%d/p/" % pb, "127.0.0.1:%d" % pb),
                      ("https://localhost:%d/p/" % pa, "localhost:%d" % pa),
                      ("https://127.0.0.1:%d@127.0.0.1:%d/p/" % (pa, pb), "127.0.0.1:%d" % pb)):
        msg = create_model_error(inst, "hp-host-%d-%s" % (len(url), S), mme(bh.echo_rootfs(), url))
        assert msg == ("Container 'primary': Could not access model data at %s. berth fetches http(s):// model "
                       "data only from the hosts in its https_hosts setting (--https-host): 127.0.0.1:%d; %s is "
                       "not one of them. Use one of those hosts, or ask the operator to add this one."
                       % (url, pa, host)), msg
    assert b.requests == [] and a.requests == []
    # a listed host: redirects within it are followed, out of it are not
    a.objects["/store/good.tar.gz"] = tgz({"model.txt": b"good"})
    a.redirects["/p/good.tar.gz"] = "/store/good.tar.gz"
    a.redirects["/p/evil.tar.gz"] = "https://127.0.0.1:%d/secret.tar.gz" % pb
    b.objects["/secret.tar.gz"] = tgz({"model.txt": b"evil"})
    m, c, ep = bh.create_endpoint_stack(inst.sm, "hp-redir-" + S,
                                        primary=mme(bh.echo_rootfs(), "https://127.0.0.1:%d/p/" % pa), inst=inst)
    r = inst.rt.invoke_endpoint(EndpointName=ep, TargetModel="good.tar.gz", Body=b"x")
    assert r["Body"].read().endswith(b":good:x")
    assert ("GET", "/store/good.tar.gz", None) in a.requests, a.requests
    with pytest.raises(ClientError) as ei:
        inst.rt.invoke_endpoint(EndpointName=ep, TargetModel="evil.tar.gz", Body=b"x")
    e = ei.value
    assert bh.error_code(e) == "ValidationError" and e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    src, dst = "https://127.0.0.1:%d/p/evil.tar.gz" % pa, "https://127.0.0.1:%d/secret.tar.gz" % pb
    assert bh.error_message(e) == (
        "Failed to download model data from %s: %s redirects to %s, which berth does not follow: Could not access "
        "model data at %s. berth fetches http(s):// model data only from the hosts in its https_hosts setting "
        "(--https-host): 127.0.0.1:%d; 127.0.0.1:%d is not one of them. Use one of those hosts, or ask the "
        "operator to add this one." % (src, src, dst, dst, pa, pb)), bh.error_message(e)
    assert b.requests == [], b.requests
    inst.assert_serving()
    bh.delete_stack(inst, m, c, ep)


# ---- unpack bounds -------------------------------------------------------------

MAX_BYTES = 32 << 20
MAX_ENTRIES = 200


def _big_zero_tarball(path, size):
    """A rootfs tarball (echo's files plus one file of zeros): tiny on disk."""
    with tarfile.open(bh.echo_tarball(), "r:gz") as src, tarfile.open(path, "w:gz", compresslevel=1) as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)

        class Zeros(io.RawIOBase):
            def __init__(self, n):
                self.left = n

            def readable(self):
                return True

            def readinto(self, b):
                k = min(len(b), self.left)
                b[:k] = bytes(k)
                self.left -= k
                return k
        ti = tarfile.TarInfo("zeros.bin")
        ti.size = size
        dst.addfile(ti, io.BufferedReader(Zeros(size)))


def _settled_failed(inst, ep):
    d = oi.wait_settled(inst, ep)
    assert d["EndpointStatus"] == "Failed", d
    return d["FailureReason"]


def test_oversized_images_fail_clearly(make_berth, tmp_path):
    inst = make_berth(extra_berthd=["--image-max-bytes", str(MAX_BYTES), "--image-max-entries", str(MAX_ENTRIES)])
    big = MAX_BYTES + (16 << 20)
    tarball = str(tmp_path / "big-rootfs.tar.gz")
    _big_zero_tarball(tarball, big)
    assert os.path.getsize(tarball) < 4 << 20  # compressible: the bound is on what it unpacks to
    many = str(tmp_path / "many-rootfs.tar.gz")
    with tarfile.open(bh.echo_tarball(), "r:gz") as src, tarfile.open(many, "w:gz") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        for i in range(MAX_ENTRIES + 1):
            ti = tarfile.TarInfo("many/f%d" % i)
            ti.size = 1
            dst.addfile(ti, io.BytesIO(b"x"))
    big_layer = oi.tar_layer(oi.base_entries() + [oi.f("zeros.bin", bytes(big))])
    assert len(big_layer[0]) < 4 << 20
    layout = str(tmp_path / "big-layout")
    oi.make_layout(layout, [big_layer], oi.config())
    cases = [
        ("tar", tarball, "Image \"%s\" is over berthd's image bounds (image_max_bytes %d, image_max_entries %d): "
                         "%s unpacks to more than %d bytes" % (tarball, MAX_BYTES, MAX_ENTRIES, tarball, MAX_BYTES)),
        ("entries", many, "Image \"%s\" is over berthd's image bounds (image_max_bytes %d, image_max_entries %d): "
                          "%s holds more than %d entries" % (many, MAX_BYTES, MAX_ENTRIES, many, MAX_ENTRIES)),
        ("oci", "oci:" + layout, "the image unpacks to more than %d bytes (berthd's image_max_bytes)" % MAX_BYTES),
    ]
    for tag, image, want in cases:
        m, c, ep = bh.create_endpoint_stack(inst.sm, "hp-big-%s-%s" % (tag, S), primary=bh.container(image=image),
                                            wait=False)
        reason = _settled_failed(inst, ep)
        assert want in reason, reason
        inst.assert_serving()
        bh.delete_stack(inst, m, c, ep)
    # nothing half-unpacked stays in the cache
    left = []
    for root, ds, fs in os.walk(os.path.join(inst.state_dir, "images")):
        left += [os.path.join(root, x) for x in ds + fs if ".partial" in x or x.endswith(".lock")]
    assert left == [], left
    assert not [x for x in os.listdir(os.path.join(inst.state_dir, "images")) if x.startswith("sha256-")]
    # the echo image (well under the bounds) still runs on the same berthd
    m, c, ep = bh.create_endpoint_stack(inst.sm, "hp-small-" + S, primary=bh.container(), inst=inst)
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"ok")["Body"].read() == b"ok"
    bh.delete_stack(inst, m, c, ep)
