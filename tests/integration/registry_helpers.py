"""registry_helpers — a real image registry for tests and the bench:
Debian's docker-registry on 127.0.0.1 (a free port) with htpasswd auth and
TLS from a CA made here with openssl, filled with skopeo from OCI layouts
made here; stop() removes everything it made."""
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import time

import berth_helpers as bh

S = "%x" % (int(time.time() * 1000) % 0xFFFFFF)
USER, PASSWORD = "berth-test", "s3cret-%s" % S
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True, **kw)


def make_certs(d):
    """A test CA and a server certificate for 127.0.0.1 and localhost."""
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
         d + "/ca.crt", "-days", "1", "-subj", "/CN=berth test CA " + S])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/reg.key", "-out", d + "/reg.csr",
         "-subj", "/CN=127.0.0.1"])
    with open(d + "/ext", "w") as fh:
        fh.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", d + "/reg.csr", "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key",
         "-CAcreateserial", "-out", d + "/reg.crt", "-days", "1", "-extfile", d + "/ext"])
    certs = d + "/certs"
    os.makedirs(certs)
    shutil.copy(d + "/ca.crt", certs + "/ca.crt")  # skopeo --cert-dir: *.crt are CAs
    return certs


def make_layout(layout, layer_gz, arch="amd64", tag="v1"):
    """An OCI layout of one gzip layer; returns the layer's digest. Its
    config runs /serve (Entrypoint): with no Entrypoint, `serve` would be
    looked up in its PATH, as Docker does, and the echo root has it at /."""
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)
    layer = dict(bh.oci_add_blob(layout, layer_gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer_gz)).hexdigest()
    cfg = {"architecture": arch, "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"], "Entrypoint": ["/serve"]},
           "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    cdesc = dict(bh.oci_add_blob(layout, json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MT, "config": cdesc, "layers": [layer]}
    mdesc = dict(bh.oci_add_blob(layout, json.dumps(manifest).encode()), mediaType=MANIFEST_MT)
    with open(os.path.join(layout, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "manifests": [
            dict(mdesc, annotations={"org.opencontainers.image.ref.name": tag})]}, fh)
    return layer["digest"]


def make_index_layout(layout, layer_gz, archs, tag="v1"):
    """An OCI layout whose tag names an image index (a manifest list) with
    one image per architecture in archs (all the same layer)."""
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)
    layer = dict(bh.oci_add_blob(layout, layer_gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer_gz)).hexdigest()
    entries = []
    for arch in archs:
        cfg = {"architecture": arch, "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"], "Entrypoint": ["/serve"]},
               "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        cdesc = dict(bh.oci_add_blob(layout, json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MT, "config": cdesc, "layers": [layer]}
        entries.append(dict(bh.oci_add_blob(layout, json.dumps(manifest).encode()), mediaType=MANIFEST_MT,
                            platform={"architecture": arch, "os": "linux"}))
    index_mt = "application/vnd.oci.image.index.v1+json"
    index = {"schemaVersion": 2, "mediaType": index_mt, "manifests": entries}
    idesc = dict(bh.oci_add_blob(layout, json.dumps(index).encode()), mediaType=index_mt)
    with open(os.path.join(layout, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "manifests": [
            dict(idesc, annotations={"org.opencontainers.image.ref.name": tag})]}, fh)


def file_layer(name, data):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w") as t:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    return gzip.compress(bio.getvalue(), mtime=0)


class Registry:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="berth-registry-", dir="/var/tmp")
        self.certs = make_certs(self.dir)
        self.port = bh.free_port()
        self.down_port = bh.free_port()  # nothing listens there
        self.host = "127.0.0.1:%d" % self.port
        with open(self.dir + "/htpasswd", "w") as fh:
            fh.write(run(["htpasswd", "-Bbn", USER, PASSWORD]).stdout)
        with open(self.dir + "/config.yml", "w") as fh:
            fh.write("version: 0.1\nlog: {level: warn}\n"
                     "storage: {filesystem: {rootdirectory: %s/data}}\n"
                     "http: {addr: \"%s\", secret: \"%s\", tls: {certificate: %s/reg.crt, key: %s/reg.key}}\n"
                     "auth: {htpasswd: {realm: berth-test, path: %s/htpasswd}}\n"
                     % (self.dir, self.host, S, self.dir, self.dir, self.dir))
        self.log = open(self.dir + "/registry.log", "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.dir + "/config.yml"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        ctx = ssl.create_default_context(cafile=self.dir + "/ca.crt")

        def up():
            assert self.proc.poll() is None, open(self.dir + "/registry.log").read()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                        return True
            except OSError:
                return False
        bh.wait_until(up, 20, "docker-registry on %s" % self.host)

    def skopeo(self, *args):
        return run(["skopeo", "--insecure-policy"] + list(args))

    def push(self, layout, tag, name, all_images=False):
        self.skopeo("copy", *(["--all"] if all_images else []), "--dest-creds", "%s:%s" % (USER, PASSWORD), "--dest-cert-dir", self.certs,
                    "oci:%s:%s" % (layout, tag), "docker://%s/%s" % (self.host, name))

    def digest(self, name):
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--creds", "%s:%s" % (USER, PASSWORD), "--cert-dir",
                              self.certs, "docker://%s/%s" % (self.host, name)],
                             capture_output=True, timeout=60, check=True).stdout
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def blob_path(self, digest):
        h = digest.split(":")[1]
        return os.path.join(self.dir, "data", "docker", "registry", "v2", "blobs", "sha256", h[:2], h, "data")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class HangingRegistry:
    """A port that accepts connections and never answers (a registry that
    hangs): each pull from it runs until something stops it."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.done.is_set():
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def stop(self):
        self.done.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def skopeo_pids(state_dir):
    """skopeo processes a berthd on state_dir runs (its policy file is there)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"skopeo" and any(state_dir.encode() in a for a in argv):
            out.append(int(p))
    return out


class TokenRegistry:
    """A registry front that only answers tag HEADs, with the Bearer token
    flow of real registries: an unauthenticated request gets 401 with
    `WWW-Authenticate: Bearer realm=…/token,service=…,scope=…`; the realm
    gives a token for Basic USER:PASSWORD; a HEAD with that token answers
    the digest it is told. Records every request it sees. rotate() makes
    the token it gave so far refused (401 with the challenge again), as a
    registry does with a revoked or expired token."""

    def __init__(self, certdir, digest):
        import http.server
        import ssl
        import threading
        outer = self
        self.digest = digest
        self.requests = []
        self.token = "tok-" + S
        self.tokens_given = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, status, headers, body=b""):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                auth = self.headers.get("Authorization", "")
                outer.requests.append((self.command, self.path, auth))
                want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
                if self.path.startswith("/token?") and auth == want:
                    outer.tokens_given += 1
                    body = json.dumps({"token": outer.token, "expires_in": 300}).encode()
                    return self._answer(200, {"Content-Type": "application/json"}, body)
                self._answer(401, {"Content-Type": "application/json"}, b"{}")

            def do_HEAD(self):
                auth = self.headers.get("Authorization", "")
                outer.requests.append((self.command, self.path, auth))
                if self.path == "/v2/echo/manifests/v1" and auth == "Bearer " + outer.token:
                    return self._answer(200, {"Docker-Content-Digest": outer.digest,
                                              "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                challenge = ('Bearer realm="https://%s/token",service="berth-test",scope="repository:echo:pull"'
                             % outer.host)
                self._answer(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certdir, "reg.crt"), os.path.join(certdir, "reg.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self):
        self.token = "tok-%s-%d" % (S, self.tokens_given)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
