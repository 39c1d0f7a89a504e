"""berth_helpers — the one fixture module of the integration tests: real
berthd + berth-router processes (Berth; SupervisedBerth when berthd runs the
router itself), boto3 clients pointed at them, berthd's control socket
(Berth.control, Berth.ps), raw HTTP helpers, and the leak check. conftest.py
turns these into the `berth`, `make_berth` and `supervised_berth` fixtures;
a module that needs its own flags writes
    @pytest.fixture(scope="module")
    def berth():
        yield from bh.serve(extra_berthd=[...])

BERTH_BUILD names the build directory (default build-san/); BERTH_WRAPPER,
when set, is a command (split like a shell would) berthd runs under, e.g.
"setarch x86_64 -R" for ThreadSanitizer on kernels that need it.

Every instance runs with authentication on (auth sigv4, the default):
it writes a credentials file with two generated keys, `admin` (allow =
sagemaker:*) and `invoke` (allow = sagemaker:InvokeEndpoint), .sm signs
with the first and .rt with the second, and every raw request (http_request,
control_raw, sign_headers for curl / nghttp / h2load / sockets, the HTTP/2
frames of h2_frames.py) is signed by botocore's own SigV4Auth unless a test
asks for an unsigned or a deliberately broken one (sign=False).

Everything here is bounded in time: every wait has a deadline and every
subprocess a timeout, so a hung product fails a test instead of hanging the
suite.
"""
import contextlib
import datetime
import http.client
import hashlib
import io
import json
import os
import pwd
import re
import secrets
import shutil
import shlex
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid

import getpass

import boto3
import botocore
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/berth-test"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "FATAL: ThreadSanitizer")

# Every live instance, so a failing test can show their logs (conftest.py).
LIVE = []


def build_dir():
    d = os.environ.get("BERTH_BUILD")
    if not d:
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build-san")
    return os.path.abspath(d)


def berthd_wrapper():
    """The command berthd runs under (BERTH_WRAPPER), as an argv prefix."""
    return shlex.split(os.environ.get("BERTH_WRAPPER", ""))


def pytest_tmp_root():
    """Where pytest's tmp_path directories live (/tmp/pytest-of-USER)."""
    return os.path.join(tempfile.gettempdir(), "pytest-of-%s" % getpass.getuser())


def shared_image_dir():
    """make framework-images' cache: the example images and their model.tar.gz
    (BERTH_IMAGE_CACHE, as examples/lib/build-oci-image.sh takes it)."""
    return os.environ.get("BERTH_IMAGE_CACHE") or "/var/cache/berth/images"


def echo_rootfs():
    return os.path.join(build_dir(), "images", "echo", "rootfs")


def echo_tarball():
    return os.path.join(build_dir(), "images", "echo", "rootfs.tar.gz")


def arn(kind, name):
    return "arn:aws:sagemaker:%s:%s:%s/%s" % (REGION, ACCOUNT, kind, name.lower())


# ---- keys and SigV4 signatures ------------------------------------------------

SERVICE = "sagemaker"   # botocore signs sagemaker and sagemaker-runtime calls as "sagemaker"
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ADMIN_KEY = {"name": "admin", "allow": "sagemaker:*"}
INVOKE_KEY = {"name": "invoke", "allow": "sagemaker:InvokeEndpoint"}


def generate_key():
    """(key id, secret) in the shape `berth keys add` makes: BRTH + 16 of
    [A-Z2-7], a 40-character secret."""
    return ("BRTH" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16)),
            "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40)))


def credentials_text(keys):
    """The credentials file (common/credentials.h) for keys: dicts with
    name, key_id, secret and optional allow, endpoints, endpoint_configs,
    models (strings, space-separated globs)."""
    out = []
    for k in keys:
        out.append("[%s]" % k["name"])
        out.append("aws_access_key_id = %s" % k["key_id"])
        out.append("aws_secret_access_key = %s" % k["secret"])
        for member in ("allow", "endpoints", "endpoint_configs", "models"):
            if k.get(member) is not None:
                out.append("%s = %s" % (member, k[member]))
    return "\n".join(out) + "\n"


def write_private_file(path, text):
    """Writes text to path as a new file of mode 0600, replacing path at
    once (a reader sees the old file or the new one, never half of it)."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


class _ShiftedDatetime(datetime.datetime):
    shift = datetime.timedelta(0)

    @classmethod
    def utcnow(cls):
        return datetime.datetime.utcnow() + cls.shift

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.now(tz) + cls.shift


@contextlib.contextmanager
def client_clock_shifted(seconds):
    """botocore (in this process) signs as if its clock were `seconds`
    ahead (negative: behind): the client's clock, not berth's."""
    if not seconds:
        yield
        return

    class _Module:
        pass
    fake = _Module()
    fake.__dict__.update({k: getattr(datetime, k) for k in dir(datetime) if not k.startswith("__")})
    fake.datetime = type("ShiftedDatetime", (_ShiftedDatetime,), {"shift": datetime.timedelta(seconds=seconds)})
    real = botocore.auth.datetime
    botocore.auth.datetime = fake
    try:
        yield
    finally:
        botocore.auth.datetime = real


def instance_on(port):
    """The live instance serving port, or None."""
    for inst in LIVE:
        if inst.port == port:
            return inst
    return None


def sign_headers(port, method, path, body=b"", headers=None, key=None, host=None, region=REGION,
                 service=SERVICE, shift_s=0):
    """The headers of a request signed by botocore's SigV4Auth: those given
    plus X-Amz-Date and Authorization (Host is signed as host, default
    127.0.0.1:PORT, what http.client, curl, nghttp and h2load send; it is
    not among the returned headers). key: (id, secret), default the
    instance's key for the path (Berth.key_for). Returns a dict."""
    if key is None:
        inst = instance_on(port)
        assert inst is not None, "no live berth on port %d to take a key from" % port
        key = inst.key_for(path)
    if isinstance(body, str):
        body = body.encode()
    host = host or "127.0.0.1:%d" % port
    req = AWSRequest(method=method, url="http://%s%s" % (host, path), data=body or b"", headers=dict(headers or {}))
    with client_clock_shifted(shift_s):
        SigV4Auth(Credentials(key[0], key[1]), service, region).add_auth(req)
    return {k: v for k, v in req.headers.items()}


def header_args(headers, flag="-H"):
    """["-H", "Name: value", …] for curl, nghttp and h2load."""
    out = []
    for k, v in headers.items():
        out += [flag, "%s: %s" % (k, v)]
    return out


def header_lines(headers):
    """b"Name: value\r\n…" for requests written by hand on a socket."""
    return b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except AssertionError:
            raise                 # a predicate's assert is fatal: fail at once
        except Exception as e:  # keep the last error for the message
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        time.sleep(interval)


def error_code(exc):
    return exc.response["Error"]["Code"]


def error_message(exc):
    return exc.response["Error"].get("Message", "")


# ---- /proc, runc, mounts, cgroups ------------------------------------------

def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def pids_all():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def shim_pids(run_dir):
    """berth-shim processes whose command line mentions run_dir."""
    out = []
    key = run_dir.encode()
    for pid in pids_all():
        argv = _cmdline(pid)
        if not argv or _is_zombie(pid):
            continue
        if os.path.basename(argv[0]) == b"berth-shim" and any(key in a for a in argv):
            out.append(pid)
    return sorted(out)


def shim_ids(run_dir):
    """{shim pid: container id} from the shims' --id argument."""
    ids = {}
    for pid in shim_pids(run_dir):
        argv = _cmdline(pid) or []
        for i, a in enumerate(argv):
            if a == b"--id" and i + 1 < len(argv):
                ids[pid] = argv[i + 1].decode()
    return ids


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def descendants(pid):
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return sorted(seen)


def runc_list(run_dir):
    """[{id, pid, status, bundle}] of runc root RUN_DIR/runc."""
    root = os.path.join(run_dir, "runc")
    if not os.path.isdir(root):
        return []
    r = subprocess.run(["runc", "--root", root, "list", "--format", "json"],
                       capture_output=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError("runc list failed: %r" % r.stderr)
    text = r.stdout.decode().strip()
    if not text or text == "null":
        return []
    return json.loads(text)


def _unescape_mount(p):
    return p.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts_under(dirs, pid="self"):
    out = []
    try:
        with open("/proc/%s/mountinfo" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        mp = _unescape_mount(line.split()[4])
        for d in dirs:
            if mp == d or mp.startswith(d.rstrip("/") + "/"):
                out.append(mp)
    return out


def overlay_mounts_using(dirs, pid="self"):
    """Overlay mounts (anywhere) whose upperdir/workdir/lowerdir lie in dirs."""
    out = []
    try:
        with open("/proc/%s/mountinfo" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        pre, _, post = line.partition(" - ")
        fields = post.split()
        if len(fields) < 3 or fields[0] != "overlay":
            continue
        opts = _unescape_mount(fields[2])
        if any(("dir=" + d.rstrip("/") + "/") in opts or ("dir=" + d.rstrip("/") + ",") in opts for d in dirs):
            out.append(_unescape_mount(pre.split()[4]))
    return out


CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_dirs():
    out = set()
    for root, dirs, _files in os.walk(CGROUP_ROOT):
        for d in dirs:
            out.add(os.path.join(root, d))
    return out


# ---- the instance ------------------------------------------------------------

class Berth:
    """One berthd + one berth-router on private temp dirs and a free port."""

    def __init__(self, grace_ms=5000, invocation_timeout_ms=2000, extra_berthd=(), extra_router=(),
                 image_roots=None, model_roots=None, env=None, auth="sigv4", keys=()):
        """auth: "sigv4" (a credentials file with the keys admin, invoke
        and those of keys: dicts with name and optional allow, endpoints,
        endpoint_configs, models) or "none" (berthd --auth none, unsigned
        clients)."""
        self.build = build_dir()
        self.auth = auth
        self.grace_ms = grace_ms
        self.invocation_timeout_ms = invocation_timeout_ms
        self.extra_berthd = list(extra_berthd)
        self.extra_router = list(extra_router)
        self.env = dict(env or {})  # set for berthd and the router
        self.state_dir = tempfile.mkdtemp(prefix="berth-it-", dir="/var/tmp")
        self.run_dir = tempfile.mkdtemp(prefix="bt-", dir="/run")
        self.object_root = tempfile.mkdtemp(prefix="berth-obj-", dir="/var/tmp")
        # Host paths berthd may use (--image-root / --model-root): where the
        # tests keep images and model data. A test passes its own to check
        # what lies outside.
        os.makedirs(pytest_tmp_root(), mode=0o700, exist_ok=True)
        self.image_roots = list(image_roots) if image_roots is not None else [
            os.path.join(self.build, "images"), shared_image_dir(), pytest_tmp_root()]
        self.model_roots = list(model_roots) if model_roots is not None else [
            os.path.join(self.build, "images"), shared_image_dir(), pytest_tmp_root(), self.object_root]
        self.socket = os.path.join(self.run_dir, "berthd.sock")
        self.credentials_path = os.path.join(self.state_dir, "credentials")
        self.key_specs = []
        self.keys = {}
        for spec in [ADMIN_KEY, INVOKE_KEY] + list(keys):
            self.add_key(spec, write=False)
        if auth == "sigv4":
            self.write_credentials()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.berthd_log = os.path.join(self.state_dir, "berthd.stderr")
        self.router_log = os.path.join(self.state_dir, "router.stderr")
        self.berthd = None
        self.router = None
        self.cgroups_before = cgroup_dirs()
        self.names = set()       # endpoint / model names seen (for the cgroup check)
        self.container_ids = set()
        self.sm = None
        self.rt = None

    # -- keys --

    @property
    def admin_key(self):
        """(id, secret) of the key allowed sagemaker:*."""
        return self.keys["admin"]

    @property
    def invoke_key(self):
        """(id, secret) of the key allowed sagemaker:InvokeEndpoint only."""
        return self.keys["invoke"]

    def key_for(self, path):
        """The key a raw request to path signs with: invoke for the runtime
        (/endpoints/…), admin for everything else."""
        return self.invoke_key if path.startswith("/endpoints/") else self.admin_key

    def add_key(self, spec, write=True):
        """Adds a key (spec: name and optional allow, endpoints,
        endpoint_configs, models) with a generated id and secret; rewrites
        the credentials file when write. Returns (id, secret)."""
        key_id, secret = generate_key()
        self.key_specs.append(dict(spec, key_id=key_id, secret=secret))
        self.keys[spec["name"]] = (key_id, secret)
        if write:
            self.write_credentials()
        return key_id, secret

    def remove_key(self, name, write=True):
        self.key_specs = [k for k in self.key_specs if k["name"] != name]
        del self.keys[name]
        if write:
            self.write_credentials()

    def client_env(self, key=None):
        """The environment for a client in a subprocess (a walkthrough, the
        aws CLI) that signs with key (default admin) the way boto3 finds
        keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, no config files."""
        key = key or self.admin_key
        return dict(os.environ, AWS_ACCESS_KEY_ID=key[0], AWS_SECRET_ACCESS_KEY=key[1], AWS_DEFAULT_REGION=REGION,
                    AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    def write_credentials(self):
        write_private_file(self.credentials_path, credentials_text(self.key_specs))

    def client(self, service, key=None, **kw):
        """A boto3 client for service ("sagemaker", "sagemaker-runtime")
        signing with key ((id, secret); default admin for the control
        plane, invoke for the runtime; unsigned when auth is none)."""
        cfg = dict(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30, connect_timeout=5)
        if self.auth == "none" and key is None:
            cfg["signature_version"] = botocore.UNSIGNED
        if key is None:
            key = self.admin_key if service == "sagemaker" else self.invoke_key
        args = dict(endpoint_url=self.url, region_name=REGION, aws_access_key_id=key[0],
                    aws_secret_access_key=key[1], config=Config(**cfg))
        args.update(kw)
        return boto3.client(service, **args)

    # -- processes --

    def _env(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.update(self.env)
        return env

    def berthd_args(self, state_dir=None, run_dir=None):
        """berthd's command line (under BERTH_WRAPPER) for this instance's
        directories, or others given."""
        args = berthd_wrapper() + [
            os.path.join(self.build, "berthd"), "--state-dir", state_dir or self.state_dir,
            "--run-dir", run_dir or self.run_dir]
        if self.auth == "sigv4":
            return args + ["--credentials", self.credentials_path]
        return args + ["--auth", self.auth]

    def start_berthd(self):
        if self not in LIVE:
            LIVE.append(self)
        args = self.berthd_args() + [
                "--object-store-root", self.object_root,
                "--create-grace-ms", str(self.grace_ms),
                # berthd refuses endpoints beyond nproc/MemTotal by default
                # (ResourceLimitExceeded); tests run many on a small host.
                # extra_berthd comes after, so a test can set its own.
                "--cpu-overcommit", "64", "--memory-overcommit", "16"]
        for r in self.image_roots:
            args += ["--image-root", r]
        for r in self.model_roots:
            args += ["--model-root", r]
        args += self.extra_berthd
        log = open(self.berthd_log, "ab")
        log.write(("\n==== test harness: starting %s at %.3f\n" % (" ".join(args), time.time())).encode())
        log.flush()
        self.berthd = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       env=self._env(), start_new_session=True)
        log.close()

        def sock_ready():
            if self.berthd.poll() is not None:
                raise AssertionError("berthd exited with %s during start-up\n%s"
                                     % (self.berthd.returncode, self.log_tail()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until(sock_ready, 15, "berthd socket %s" % self.socket)

    def start_router(self):
        args = [os.path.join(self.build, "berth-router"), "--listen", "127.0.0.1:%d" % self.port,
                "--berthd-socket", self.socket,
                "--invocation-timeout-ms", str(self.invocation_timeout_ms)] + self.extra_router
        log = open(self.router_log, "ab")
        log.write(("\n==== test harness: starting %s at %.3f\n" % (" ".join(args), time.time())).encode())
        log.flush()
        self.router = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       env=self._env(), start_new_session=True)
        log.close()

        def ping():
            if self.router.poll() is not None:
                raise AssertionError("berth-router exited with %s during start-up\n%s"
                                     % (self.router.returncode, self.log_tail()))
            return http_request(self.port, "GET", "/ping", timeout=2)[0] == 200
        wait_until(ping, 15, "router GET /ping 200")

    def start(self):
        if self not in LIVE:
            LIVE.append(self)
        for b in ("berthd", "berth-router", "berth-shim", "berth"):
            p = os.path.join(self.build, b)
            assert os.access(p, os.X_OK), "missing binary %s (build with make SAN=1 all)" % p
        assert os.path.isdir(echo_rootfs()), "missing echo image %s (make echo-image)" % echo_rootfs()
        self.start_berthd()
        self.start_router()
        self.sm = self.client("sagemaker")
        self.rt = self.client("sagemaker-runtime")
        self.sm.meta.events.register("before-parameter-build.sagemaker.*", self._note_params)
        self.rt.meta.events.register("before-parameter-build.sagemaker-runtime.*", self._note_params)
        # The control plane works end to end (router → berthd).
        wait_until(lambda: "Models" in self.sm.list_models(), 10, "ListModels through the router")
        return self

    def _note_params(self, params, **kwargs):
        for k in ("ModelName", "EndpointName", "EndpointConfigName"):
            v = params.get(k)
            if isinstance(v, str) and v:
                self.names.add(v)

    def restart_berthd(self):
        """kill -9 berthd and start it again on the same directories."""
        self.berthd.send_signal(signal.SIGKILL)
        self.berthd.wait(timeout=10)
        self.start_berthd()
        wait_until(lambda: "Models" in self.sm.list_models(), 15,
                   "ListModels through the router after berthd restart")

    def alive(self):
        return (self.berthd is not None and self.berthd.poll() is None
                and self.router is not None and self.router.poll() is None)

    def assert_serving(self):
        assert self.berthd.poll() is None, "berthd died (%s)\n%s" % (self.berthd.returncode, self.log_tail())
        assert self.router.poll() is None, "router died (%s)\n%s" % (self.router.returncode, self.log_tail())
        assert http_request(self.port, "GET", "/ping", timeout=5)[0] == 200
        assert "Models" in self.sm.list_models()

    def cli(self, *args, input=b"", timeout=30):
        return subprocess.run([os.path.join(self.build, "berth"), "--socket", self.socket] + list(args),
                              input=input, capture_output=True, timeout=timeout, env=self._env())

    # -- berthd's control socket (proto_control.h) --

    def control(self, request, timeout=60, want_reply=True):
        """Sends one request (a dict) on berthd's socket and returns its
        one-line JSON answer, parsed (None when want_reply is False)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.socket)
            s.sendall((json.dumps(request) + "\n").encode())
            if not want_reply:
                return None
            buf = b""
            while b"\n" not in buf and len(buf) < (16 << 20):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        if b"\n" not in buf:  # an OSError, so wait_until tries again
            raise ConnectionError("berthd closed its socket without an answer: %r" % buf[:200])
        return json.loads(buf.split(b"\n")[0])

    def route_table(self, timeout=10):
        """The route table berthd pushes on a watch connection (after its
        greeting, the router's auth settings), parsed."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        buf = b""
        try:
            s.connect(self.socket)
            s.sendall(b'{"op":"watch_routes"}\n')
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and len(buf) < (16 << 20):
                for line in buf.split(b"\n")[:-1]:
                    doc = json.loads(line)
                    if doc.get("op") == "routes":
                        return doc
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        raise AssertionError("no route table on the watch connection: %r" % buf[:300])

    def ps(self, endpoint=None):
        """`berth ps` rows from berthd ({"op":"ps"}): id, endpoint, variant,
        instance, state, pid, health, restarts, …; those of endpoint only,
        when given."""
        rows = self.control({"op": "ps"}, timeout=10)["containers"]
        return [r for r in rows if endpoint is None or r["endpoint"] == endpoint]

    def running_pid(self, endpoint):
        """The pid of a running container of endpoint (its first)."""
        for r in self.ps(endpoint):
            if r["state"] == "running" and r.get("pid"):
                return r["pid"]
        raise AssertionError("no running container for %s in %s" % (endpoint, self.ps()))

    # -- logs --

    def log_text(self):
        out = []
        for name, path in (("berthd", self.berthd_log), ("berth-router", self.router_log)):
            try:
                with open(path, "rb") as f:
                    out.append((name, f.read().decode(errors="replace")))
            except OSError:
                out.append((name, "(no log)"))
        return out

    def log_tail(self, lines=150):
        parts = []
        for name, text in self.log_text():
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append("---- %s stderr (%s) ----\n%s" % (name, self.state_dir, tail))
        return "\n".join(parts)

    def userns_window(self):
        """(first, last) host uid of the window berthd took for its
        containers' ranges, from its last start's log line."""
        found = None
        for name, text in self.log_text():
            if name == "berthd":
                for m in re.finditer(r"user namespace ids of this berthd: (\d+)\.\.(\d+)", text):
                    found = (int(m.group(1)), int(m.group(2)))
        assert found, "berthd logged no user namespace window\n" + self.log_tail()
        return found

    def identity(self):
        """The instance identity berthd derives from its state directory:
        berth-<first 8 hex digits of SHA-256 of its realpath>."""
        real = os.path.realpath(self.state_dir)
        return "berth-" + hashlib.sha256(real.encode()).hexdigest()[:8]

    def sanitizer_reports(self):
        found = []
        for name, text in self.log_text():
            for m in SANITIZER_MARKERS:
                if m in text:
                    found.append("%s: %s" % (name, m))
        return found

    # -- state helpers --

    def note_containers(self):
        for c in runc_list(self.run_dir):
            self.container_ids.add(c["id"])
        for cid in shim_ids(self.run_dir).values():
            self.container_ids.add(cid)

    def wait_in_service(self, name, attempts=30):
        self.sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": attempts})
        self.note_containers()

    def wait_endpoint_gone(self, name, timeout=40):
        def gone():
            try:
                self.sm.describe_endpoint(EndpointName=name)
                return False
            except ClientError as e:
                if error_code(e) == "ValidationException":
                    return True
                raise
        wait_until(gone, timeout, "endpoint %s to be deleted" % name, interval=0.1)

    def delete_endpoint_and_wait(self, name):
        self.note_containers()
        try:
            self.sm.delete_endpoint(EndpointName=name)
        except ClientError as e:
            if error_code(e) != "ValidationException":
                raise
        self.wait_endpoint_gone(name)

    def delete_all_endpoints(self):
        names = [e["EndpointName"] for e in self.sm.list_endpoints(MaxResults=100)["Endpoints"]]
        for n in names:
            self.delete_endpoint_and_wait(n)
        return names

    # -- leaks --

    def leaks(self, berthd_pid=None):
        """Everything this instance left behind: shims, runc containers,
        mounts, cgroups. Returns a list of human-readable problems."""
        problems = []
        pids = shim_pids(self.run_dir)
        if pids:
            problems.append("berth-shim processes still running: %s" % [
                b" ".join(_cmdline(p) or []).decode(errors="replace") for p in pids])
        try:
            rl = runc_list(self.run_dir)
        except Exception as e:  # runc itself failing is a finding too
            problems.append("runc list: %s" % e)
            rl = []
        if rl:
            problems.append("runc containers still present: %s" % [(c["id"], c["status"]) for c in rl])
        dirs = [self.state_dir, self.run_dir]
        mnts = mounts_under(dirs)
        if berthd_pid:
            mnts += [m for m in mounts_under(dirs, berthd_pid) if m not in mnts]
        mnts += [m for m in overlay_mounts_using(dirs) if m not in mnts]
        if mnts:
            problems.append("mounts still present: %s" % mnts)
        cg = self._leaked_cgroups()
        if cg:
            problems.append("cgroups still present: %s" % cg)
        return problems

    def _leaked_cgroups(self):
        """New cgroup directories (vs. the snapshot taken at start) that are
        ours: their path names one of our endpoints/models/container ids, or
        an empty new 'berth*' parent (berth removes /berth when empty; one
        still holding another instance's endpoints is not ours)."""
        keys = [k.lower() for k in (self.names | self.container_ids) if len(k) >= 3]
        out = []
        for d in sorted(cgroup_dirs() - self.cgroups_before):
            rel = os.path.relpath(d, CGROUP_ROOT).lower()
            parts = rel.split("/")[1:]   # drop the hierarchy name
            base = parts[-1] if parts else ""
            if any(k in p for k in keys for p in parts):
                out.append(d)
            elif base.startswith("berth"):
                try:
                    has_sub = any(os.path.isdir(os.path.join(d, e)) for e in os.listdir(d))
                except OSError:
                    continue
                if not has_sub:
                    out.append(d)
        return out

    def force_cleanup(self):
        """Best effort: remove whatever leaks() found, so one failing run does
        not poison the host for the next."""
        for p in shim_pids(self.run_dir):
            for c in descendants(p):
                try:
                    os.kill(c, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            for c in runc_list(self.run_dir):
                subprocess.run(["runc", "--root", os.path.join(self.run_dir, "runc"), "delete", "-f", c["id"]],
                               capture_output=True, timeout=20)
        except Exception:
            pass
        for m in sorted(mounts_under([self.state_dir, self.run_dir]), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True, timeout=20)
        for d in sorted(self._leaked_cgroups(), key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass

    def stop_processes(self):
        """SIGTERM router and berthd, SIGKILL after 10 s. Returns their exit codes."""
        codes = {}
        for name, p in (("berth-router", self.router), ("berthd", self.berthd)):
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
                    codes[name] = "SIGKILLed after SIGTERM timed out"
                    continue
            codes[name] = p.returncode
        return codes

    def teardown(self):
        """Deletes every endpoint, stops the processes, checks for leaks and
        sanitizer reports, cleans up. Raises AssertionError on any finding."""
        problems = []
        try:
            if self.sm is None:
                pass                # never got as far as the API: nothing to delete through it
            elif self.alive():
                self.delete_all_endpoints()
            else:
                problems.append("a process was not running at teardown: berthd=%s router=%s" % (
                    self.berthd and self.berthd.poll(), self.router and self.router.poll()))
        except Exception as e:
            problems.append("deleting endpoints failed: %r" % e)
        self.note_containers()
        codes = self.stop_processes()
        for name, c in codes.items():
            if c not in (0, -signal.SIGTERM):
                problems.append("%s did not exit cleanly on SIGTERM: %s" % (name, c))
        problems += self.leaks()
        problems += ["sanitizer report in %s" % s for s in self.sanitizer_reports()]
        logs = self.log_tail(300) if problems else ""
        self.force_cleanup()
        if self in LIVE:
            LIVE.remove(self)
        still_mounted = mounts_under([self.state_dir, self.run_dir])
        if not still_mounted:
            for d in (self.state_dir, self.run_dir, self.object_root):
                shutil.rmtree(d, ignore_errors=True)
        else:
            problems.append("left %s in place: mounts remain %s" % (self.state_dir, still_mounted))
        if problems:
            raise AssertionError("teardown findings:\n  " + "\n  ".join(problems) + "\n" + logs)


def serve(cls=None, **kw):
    """A generator for a pytest fixture: starts an instance (Berth, or cls)
    with kw, yields it, and tears it down (every endpoint deleted, nothing
    leaked, no sanitizer report). A failed start tears down what started."""
    inst = (cls or Berth)(**kw)
    try:
        inst.start()
    except BaseException:
        try:
            inst.teardown()
        except AssertionError:
            pass
        raise
    yield inst
    inst.teardown()


class Instances:
    """Instances made during one test (make_berth, supervised_berth), torn
    down together at its end; every finding is reported."""

    def __init__(self, cls=None):
        self.cls = cls or Berth
        self.made = []

    def make(self, **kw):
        inst = self.cls(**kw)
        self.made.append(inst)
        inst.start()
        return inst

    def teardown(self):
        errors = []
        for inst in self.made:
            try:
                inst.teardown()
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, "\n".join(errors)


class SupervisedBerth(Berth):
    """berthd runs the router itself (berthd --listen): the router is
    confined (unprivileged user, no capabilities, seccomp) and restarted by
    berthd when it dies."""

    def __init__(self, **kw):
        try:
            pwd.getpwnam("berth")
        except KeyError:
            raise AssertionError("the system user berth (the router's) is missing: run `make router-user` "
                                 "(make run, make install and make integration do)")
        super().__init__(**kw)
        # berthd binds the port and hands it to the router it starts
        self.extra_berthd = ["--listen", "127.0.0.1:%d" % self.port] + self.extra_berthd
        # the unprivileged router must reach berthd's socket through RUN_DIR
        os.chmod(self.run_dir, 0o755)

    def start_router(self):
        self.router = None

        def ping():
            if self.berthd.poll() is not None:
                raise AssertionError("berthd exited with %s\n%s" % (self.berthd.returncode, self.log_tail()))
            try:
                return http_request(self.port, "GET", "/ping", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(ping, 15, "supervised router GET /ping 200")

    def router_pid(self):
        with open(os.path.join(self.run_dir, "router.pid")) as f:
            return int(f.read().strip())

    def alive(self):
        return self.berthd is not None and self.berthd.poll() is None

    def assert_serving(self):
        assert self.berthd.poll() is None, "berthd died\n%s" % self.log_tail()
        assert http_request(self.port, "GET", "/ping", timeout=5)[0] == 200


def proc_status(pid):
    """/proc/PID/status as a dict."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def assert_no_leaks(inst, berthd_pid=None):
    problems = inst.leaks(berthd_pid=berthd_pid)
    assert not problems, "leaks:\n  " + "\n  ".join(problems)


# ---- raw HTTP ----------------------------------------------------------------

def _signed(port, method, path, body, headers, sign):
    """headers, signed as sign asks: True (the instance's key for path,
    when the instance on port checks signatures), a (id, secret) key, or
    False (as given)."""
    if sign is False:
        return dict(headers or {})
    if sign is True:
        inst = instance_on(port)
        if inst is None or inst.auth != "sigv4":
            return dict(headers or {})
        sign = None
    return sign_headers(port, method, path, body=body, headers=headers, key=sign)


def http_request(port, method, path, body=None, headers=None, timeout=30, sign=True):
    """(status, headers dict lower-cased, body bytes). sign: True (signed
    with the instance's key for path), a (id, secret) key, or False."""
    headers = _signed(port, method, path, body, headers, sign)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def control_raw(port, target, body, timeout=30, extra_headers=None, sign=True):
    """POST / with X-Amz-Target: SageMaker.TARGET, bypassing botocore's
    client-side validation. body: bytes, str or a JSON-able object. sign:
    as http_request's."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    h = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        h["X-Amz-Target"] = target if "." in target else "SageMaker." + target
    if extra_headers:
        h.update(extra_headers)
    status, headers, data = http_request(port, "POST", "/", body=body, headers=h, timeout=timeout, sign=sign)
    try:
        doc = json.loads(data.decode()) if data else None
    except ValueError:
        doc = None
    return status, headers, data, doc


# ---- request shapes ----------------------------------------------------------

def container(hostname=None, image=None, env=None, model_data_url=None):
    c = {"Image": image or echo_rootfs()}
    if hostname:
        c["ContainerHostname"] = hostname
    if env:
        c["Environment"] = env
    if model_data_url:
        c["ModelDataUrl"] = model_data_url
    return c


def create_endpoint_stack(sm, name, containers=None, primary=None, mode=None, variant="AllTraffic",
                          wait=True, inst=None):
    """model NAME, config NAME-cfg, endpoint NAME-ep. Returns (model, config, endpoint) names."""
    kw = {"ModelName": name, "ExecutionRoleArn": ROLE}
    if primary is not None:
        kw["PrimaryContainer"] = primary
    if containers is not None:
        kw["Containers"] = containers
    if mode:
        kw["InferenceExecutionConfig"] = {"Mode": mode}
    sm.create_model(**kw)
    cfg = name + "-cfg"
    sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": variant, "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    ep = name + "-ep"
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        if inst is not None:
            inst.note_containers()
    return name, cfg, ep


def delete_stack(inst, model, cfg, ep):
    if ep:
        inst.delete_endpoint_and_wait(ep)
    for fn, kw in ((inst.sm.delete_endpoint_config, {"EndpointConfigName": cfg}),
                   (inst.sm.delete_model, {"ModelName": model})):
        try:
            fn(**kw)
        except ClientError as e:
            if error_code(e) != "ValidationException":
                raise


def oci_add_blob(layout, data):
    """Writes data as a blob of the OCI layout; its descriptor (digest, size)."""
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", h), "wb") as fh:
        fh.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}


def unique_name(prefix):
    """prefix and 8 random hex digits: names stay unique across runs."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def tgz(files):
    """A model.tar.gz of {name: bytes}, its entries dated now."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return bio.getvalue()
