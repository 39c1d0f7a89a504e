"""berth benchmarks (make bench): every figure next to a baseline measured in
the same run on the same machine, as absolute values and as ratios, with the
targets marked met / MISSED.

What is measured
- router overhead: h2load (HTTP/1.1 and h2c) and wrk (HTTP/1.1) POSTing a
  64-byte body to the echo container, at 1 and 64 concurrent clients:
    direct   straight to the container's 127.0.0.1:8080, the load generator
             inside the container's network namespace (nsenter --net);
    router   berth-router (host loopback) -> pooled connection -> container;
    nginx    Debian nginx-light, 1 worker, upstream keepalive;
    nghttpx  Debian nghttp2-proxy, 1 worker, HTTP/1.1 backend.
  nginx and nghttpx run INSIDE the container's network namespace (nsenter
  --net, configuration generated into a temp dir, another port there) and
  proxy to the container's 127.0.0.1:8080, and their load generator runs in
  that namespace too: a container's loopback is reachable only from its own
  namespace, and berth-router reaches it the same way (a socket the shim
  connected inside the namespace). Every hop measured is a loopback TCP hop;
  the router's load generator runs on the host loopback.
  Each proxy's CPU per request (user + system time of its processes over
  the requests served) is shown with its spread (min-max over rounds),
  and its sleeps per request (voluntary context switches of its threads:
  at one client each one is a wake-up on the request's path, the part of
  the one-client latency a proxy that blocks in epoll cannot cut);
  the router's CPU ratio to nginx (HTTP/1.1) and to nghttpx (h2c) at 64
  clients is the ratio of the medians, with the spread of the per-round
  ratios (target <= 0.85x). --only-proxy runs just these figures.
  --router-before BINARY runs a second router binary (the build before a
  change) alternately with the build's in every round, on the same berthd
  and container: rows "berth-router before", and on the router's rows its
  p50 and CPU against it, with the spread of the per-round differences.
- Serial pipelines of N = 1, 2, 5, 15 echo steps through the router, 1
  client: p50, the router's CPU per request (with its spread over
  rounds), and the cost of one more hop ((p50(N) - p50(1)) / (N - 1))
  against one direct call (direct p50 from above).
- CreateEndpoint -> InService for 2 echo containers (boto3, median of
  rounds) vs. a bare `runc run -d` of the same rootfs, two containers started
  at once, until both answer GET /ping 200 (socket created inside the
  container's netns with setns, as berth does).
- (userns) CreateEndpoint -> InService (the container's first /ping 200)
  of a one-container echo endpoint on a berthd with user namespaces (the
  default) and on one without (no_user_namespaces: true), rounds
  interleaved; the ratio's target is <= 1.2x.
- TLS: h2load over HTTPS (ALPN http/1.1 and h2), 64 clients, into
  berth-router's --tls-listen address and into nginx (1 worker, `listen ...
  ssl http2`, in the container's namespace like the cleartext one), both
  with the same certificate (ECDSA P-256, made with openssl at the start)
  and OpenSSL's defaults; rounds interleaved; target >= 1.0x nginx. The
  router's calls are signed and verified (auth sigv4, as deployed on a
  network); nginx checks nothing.
- Streaming (--only-stream): time to the first streamed byte (median of
  2000 small streams) and the rate of a 1 GiB answer in 64 KiB chunks,
  with the proxy's and the container's CPU per GiB: straight from the
  container, through the router (InvokeEndpointWithResponseStream, signed
  and verified, PayloadPart framing and CRCs) and, as the cost of one
  plain proxy hop, through nginx (proxy_buffering off, 1 MiB buffers,
  chunks passed on unframed). Targets: first byte <= +100 us, rate >= 0.8x
  direct.
- VmRSS of berthd, berth-router and each berth-shim (from /proc/PID/status)
  after the load.
- SigV4: router CPU per request with signature verification on (auth
  sigv4, the default) vs. off (berthd --auth none), 1 KiB bodies, 64
  clients, h2load HTTP/1.1 and h2c, two berth instances side by side in the
  same run, rounds interleaved; the ratio's target is <= 1.10x.

Every request to a router is signed as boto3 signs it (botocore's SigV4Auth,
with the admin / invoke keys each instance's credentials file holds):
h2load and wrk send one pre-signed header set for their fixed body, signed
again for every round (a signature is good for 15 minutes).

Traffic goes only to loopback. Everything started is stopped and removed at
the end (nginx, nghttpx, runc containers, endpoints, temp dirs).
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import boto3
import botocore
from botocore.config import Config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import berth_helpers as bh  # noqa: E402  keys and botocore's signing, as the tests use them

BODY = b"x" * 64
BEFORE = "berth-router before"  # bench.py --router-before
SIGV4_BODY = b"x" * 1024
CLONE_NEWNET = 0x40000000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def proc_tree(pid):
    """pid and its children (nginx master + worker, nghttpx + worker)."""
    out = [pid]
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def cpu_seconds(pids):
    """user + system CPU of every thread of pids."""
    total = 0
    for pid in pids:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def sleeps(pids):
    """Times the threads of pids went to sleep waiting (voluntary context
    switches): at one client, each is a wake-up on the request's path."""
    total = 0
    for pid in pids:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/status") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
            except (OSError, StopIteration):
                continue
    return total


def reap_orphans():
    """Kills and reaps what was re-parented to us (see PR_SET_CHILD_SUBREAPER)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            for c in proc_tree(os.getpid())[1:]:
                try:
                    os.kill(c, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_certificate(tmp):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1: (cert, key)."""
    cert, key = os.path.join(tmp, "tls.pem"), os.path.join(tmp, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


class Berth:
    def __init__(self, build, user_namespaces=True, auth="sigv4", tls=None, registries=None):
        """auth: "sigv4" (a credentials file with an admin and an invoke
        key; every call signed) or "none" (berthd --auth none, unsigned).
        tls: (cert, key): berthd hands them to the router, which also
        listens on tls_port, TLS only."""
        self.build = build
        self.auth = auth
        self.state = tempfile.mkdtemp(prefix="berth-bench-", dir="/var/tmp")
        self.run = tempfile.mkdtemp(prefix="bb-", dir="/run")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sock = os.path.join(self.run, "berthd.sock")
        self.objroot = os.path.join(self.state, "objects")  # (mme) s3://B/K → objects/B/K
        os.makedirs(self.objroot)
        log = open(os.path.join(self.state, "berthd.log"), "w")
        # The bench runs the serial pipelines (23 containers) at once on this
        # host: allow over-commit of the instance types' CPU and memory.
        conf = os.path.join(self.state, "berthd.json")
        settings = {"cpu_overcommit": 32, "memory_overcommit": 32, "no_user_namespaces": not user_namespaces}
        # (tls) berthd reads the pair and hands it to the router
        self.tls_port = free_port() if tls else None
        if tls:
            settings.update(tls_cert=tls[0], tls_key=tls[1])
        if registries:
            settings["registries"] = registries
        with open(conf, "w") as f:
            json.dump(settings, f)
        self.admin_key, self.invoke_key = bh.generate_key(), bh.generate_key()
        self.credentials = os.path.join(self.state, "credentials")
        if auth == "sigv4":
            bh.write_private_file(self.credentials, bh.credentials_text([
                dict(bh.ADMIN_KEY, key_id=self.admin_key[0], secret=self.admin_key[1]),
                dict(bh.INVOKE_KEY, key_id=self.invoke_key[0], secret=self.invoke_key[1])]))
            auth_args = ["--credentials", self.credentials]
        else:
            auth_args = ["--auth", auth]
        self.berthd = subprocess.Popen([f"{build}/berthd", "--config", conf, "--state-dir", self.state,
                                        "--run-dir", self.run, "--object-store-root", self.objroot,
                                        # the echo image lives in the build tree
                                        "--image-root", f"{build}/images"] + auth_args,
                                       stdout=log, stderr=log)
        wait_for(lambda: os.path.exists(self.sock), 10, "berthd")
        rlog = open(os.path.join(self.state, "router.log"), "w")
        rargs = [f"{build}/berth-router", "--listen", f"127.0.0.1:{self.port}", "--berthd-socket", self.sock]
        if tls:
            rargs += ["--tls-listen", f"127.0.0.1:{self.tls_port}"]
        self.router = subprocess.Popen(rargs, stdout=rlog, stderr=rlog)
        self.rargs, self.rlog = rargs, rlog
        wait_for(self._ping, 10, "berth-router")
        cfg = dict(retries={"max_attempts": 1})
        if auth == "none":
            cfg["signature_version"] = botocore.UNSIGNED
        kw = dict(endpoint_url=self.url, region_name="us-east-1", config=Config(**cfg))
        self.sm = boto3.client("sagemaker", aws_access_key_id=self.admin_key[0],
                               aws_secret_access_key=self.admin_key[1], **kw)
        self.rt = boto3.client("sagemaker-runtime", aws_access_key_id=self.invoke_key[0],
                               aws_secret_access_key=self.invoke_key[1], **kw)

    def use_router(self, binary):
        """Runs binary as the router (same flags, same berthd), stopping
        the one running if it is another; True when it was restarted."""
        if self.rargs[0] == binary:
            return False
        self.router.send_signal(signal.SIGTERM)
        self.router.wait(10)
        self.rargs = [binary] + self.rargs[1:]
        self.router = subprocess.Popen(self.rargs, stdout=self.rlog, stderr=self.rlog)
        wait_for(self._ping, 10, "berth-router")
        return True

    def signed(self, url, body, headers=(), port=None):
        """headers ("name: value" strings) plus the SigV4 signature of a
        POST of body to url (this router's, on port: default its cleartext
        one) with the invoke key, as "name: value" strings for h2load;
        unsigned with auth none. Good for 15 minutes."""
        hdrs = dict(h.split(": ", 1) for h in headers)
        if self.auth == "none":
            return list(headers)
        port = port or self.port
        path = url.split(str(port), 1)[1]
        signed = bh.sign_headers(port, "POST", path, body=body, headers=hdrs, key=self.invoke_key)
        return [f"{k}: {v}" for k, v in signed.items()]

    def _ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def ps(self):
        """[{column: value}] of `berth ps` (by header: its columns change)."""
        lines = subprocess.run([f"{self.build}/berth", "--socket", self.sock, "ps"], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        head = lines[0].split()
        return [dict(zip(head, line.split())) for line in lines[1:] if line.strip()]

    def container_pid(self, endpoint, hostname):
        return next(int(r["PID"]) for r in self.ps() if r["ENDPOINT"] == endpoint and r["CONTAINER"] == hostname)

    def shim_pids(self):
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if os.path.basename(argv[0]) == b"berth-shim" and any(self.run.encode() in a for a in argv):
                out.append(int(p))
        return out

    def stack(self, name, containers, mode):
        kw = dict(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/berth", Containers=containers)
        if mode:
            kw["InferenceExecutionConfig"] = {"Mode": mode}
        self.sm.create_model(**kw)
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])

    def close(self):
        try:
            for ep in self.sm.list_endpoints(MaxResults=100)["Endpoints"]:
                self.sm.delete_endpoint(EndpointName=ep["EndpointName"])
            wait_for(lambda: not self.sm.list_endpoints()["Endpoints"], 60, "endpoints to go")
        finally:
            for p in (self.router, self.berthd):
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
            shutil.rmtree(self.state, ignore_errors=True)
            shutil.rmtree(self.run, ignore_errors=True)


# ---- load generators ---------------------------------------------------------

def netns_prefix(pid):
    return ["nsenter", f"--net=/proc/{pid}/ns/net"] if pid else []


def pct(values, q):
    return values[min(len(values) - 1, int(len(values) * q))]


def body_of(path):
    with open(path, "rb") as f:
        return f.read()


def h2load(url, n, clients, h1, body, headers, log, ns_pid=None):
    """(req/s, p50 us, p99 us) from h2load's per-request log (h2load
    appends to it: start from an empty file). body: a file."""
    if os.path.exists(log):
        os.unlink(log)
    cmd = netns_prefix(ns_pid) + ["h2load", "-n", str(n), "-c", str(clients), "-m", "1", "-d", body,
                                  f"--log-file={log}"]
    if h1:
        cmd.append("--h1")
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=300).stdout
    if f"{n} succeeded" not in out:
        raise RuntimeError(f"h2load {url}: not every request succeeded:\n{out}")
    rps = float(re.search(r"finished in [0-9.]+m?s, ([0-9.]+) req/s", out).group(1))
    us = []
    with open(log) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 3 and cols[1] == "200":
                us.append(int(cols[2]))
    us.sort()
    os.unlink(log)
    if len(us) != n:
        raise RuntimeError(f"h2load {url}: {len(us)} logged requests of {n}")
    return rps, pct(us, 0.5), pct(us, 0.99), n


def wrk_time_us(text):
    v, unit = float(re.match(r"([0-9.]+)(\w+)", text).group(1)), re.match(r"[0-9.]+(\w+)", text).group(1)
    return v * {"us": 1, "ms": 1000, "s": 1000000}[unit]


def wrk(url, seconds, clients, script, ns_pid=None):
    cmd = netns_prefix(ns_pid) + ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk {url}: errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p50 = wrk_time_us(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = wrk_time_us(re.search(r"\s99%\s+(\S+)", out).group(1))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    return rps, p50, p99, count


def wrk_script(path, headers, body=BODY):
    """headers: (name, value) pairs; they must not sign Content-Type
    (h2load's -d sends none, wrk this one), nor can they: the signature
    covers only the headers given to bh.sign_headers."""
    assert body == b"x" * len(body)
    lines = ['wrk.method = "POST"', f'wrk.body = string.rep("x", {len(body)})',
             'wrk.headers["Content-Type"] = "application/octet-stream"']
    for k, v in headers:
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---- reverse proxies in the container's netns ---------------------------------

class NetnsProxy:
    def __init__(self, kind, pid, tmp, tls=None):
        self.kind, self.pid = kind, pid
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-", dir=tmp)
        self.port = 18000 + (os.getpid() % 1000)   # inside the container's netns: nothing else listens there
        if kind == "nginx":
            self.port += 1
            conf = os.path.join(self.dir, "nginx.conf")
            d = self.dir
            # (tls) the same certificate as the router's, OpenSSL's defaults as the router's
            self.tls_port = self.port + 2
            tls_conf = (f"listen 127.0.0.1:{self.tls_port} ssl http2;\n        ssl_certificate {tls[0]};\n"
                        f"        ssl_certificate_key {tls[1]};\n        ssl_protocols TLSv1.2 TLSv1.3;\n"
                        f"        keepalive_requests 10000000;") if tls else ""
            with open(conf, "w") as f:
                f.write(f"""user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    client_body_buffer_size 64k;
    keepalive_requests 10000000;
    upstream echo {{ server 127.0.0.1:8080; keepalive 128; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{self.port} http2;
        listen 127.0.0.1:{self.port + 1};
        {tls_conf}
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        # (bench_stream) a streamed answer passed on as it comes, read
        # 1 MiB at a time as the router reads it (the default is a page)
        location /stream/ {{
            proxy_pass http://echo/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_buffer_size 1m;
            proxy_buffers 4 1m;
            proxy_busy_buffers_size 2m;
        }}
    }}
}}
""")
            cmd = ["nginx", "-c", conf, "-p", d + "/"]
            self.h2_port, self.h1_port = self.port, self.port + 1
        else:
            cmd = ["nghttpx", "--conf=/dev/null", f"--frontend=127.0.0.1,{self.port};no-tls",
                   "--backend=127.0.0.1,8080", "--workers=1", "--backend-connections-per-host=256",
                   "--no-via", "--no-server-push", f"--errorlog-file={self.dir}/error.log", "--no-ocsp"]
            self.h2_port = self.h1_port = self.port
        self.log = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen(netns_prefix(pid) + cmd, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        wait_for(self._up, 10, kind)

    def _up(self):
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "stderr")) as f:
                raise RuntimeError(f"{self.kind} exited: {f.read()}")
        r = subprocess.run(netns_prefix(self.pid) + ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                                      "--data-binary", "x",
                                                      f"http://127.0.0.1:{self.h1_port}/invocations"],
                           capture_output=True, text=True)
        return r.stdout == "200"

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)   # graceful: both masters wait for their workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


# ---- bare runc baseline ---------------------------------------------------------

class Netns:
    def __init__(self):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.own = os.open("/proc/self/ns/net", os.O_RDONLY)

    def socket_in(self, pid):
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if self.libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            try:
                return socket.socket()
            finally:
                if self.libc.setns(self.own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(fd)

    def ping(self, pid):
        try:
            s = self.socket_in(pid)
        except OSError:
            return False
        try:
            s.settimeout(1)
            s.connect(("127.0.0.1", 8080))
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            s.close()


def bare_runc(rootfs, tmp, rounds, netns):
    """Median ms from two concurrent `runc run -d` to both containers answering /ping 200."""
    root = f"/run/berth-dev-bench-{os.getpid()}"
    bundles = []
    for h in ("a", "b"):
        b = os.path.join(tmp, f"bundle-{h}")
        os.makedirs(b)
        subprocess.run(["runc", "spec", "--bundle", b], check=True)
        with open(os.path.join(b, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/serve", "serve"]
        spec["process"]["env"] = ["PATH=/usr/bin:/bin", "SAGEMAKER_BIND_TO_PORT=8080"]
        spec["root"] = {"path": rootfs, "readonly": True}
        spec["hostname"] = h
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(spec, f)
        bundles.append((h, b))
    times = []
    try:
        for i in range(rounds):
            t0 = time.monotonic()
            procs = []
            for h, b in bundles:
                procs.append(subprocess.Popen(["runc", "--root", root, "run", "-d", "--bundle", b, "--pid-file",
                                               f"{b}/pid", f"bb{os.getpid()}-{h}-{i}"],
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            for p in procs:
                if p.wait(30) != 0:
                    raise RuntimeError("runc run -d failed")
            pids = [int(open(f"{b}/pid").read()) for _, b in bundles]
            for pid in pids:
                wait_for(lambda: netns.ping(pid), 10, "bare container /ping")
            times.append((time.monotonic() - t0) * 1000)
            for h, _ in bundles:
                subprocess.run(["runc", "--root", root, "delete", "-f", f"bb{os.getpid()}-{h}-{i}"],
                               capture_output=True, timeout=30)
    finally:
        r = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True, text=True)
        for cid in r.stdout.split():
            subprocess.run(["runc", "--root", root, "delete", "-f", cid], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    return statistics.median(times), min(times), max(times)


def bench_create(b, image, rounds):
    b.stack("bench", [{"ContainerHostname": "a", "Image": image}, {"ContainerHostname": "b", "Image": image}],
            "Direct")
    times = []
    for i in range(rounds):
        t0 = time.monotonic()
        b.sm.create_endpoint(EndpointName=f"bench-{i}", EndpointConfigName="bench")
        status = b.sm.describe_endpoint(EndpointName=f"bench-{i}")["EndpointStatus"]
        times.append((time.monotonic() - t0) * 1000)
        if status != "InService":
            raise RuntimeError(f"bench-{i} is {status}")
        if i < rounds - 1:
            b.sm.delete_endpoint(EndpointName=f"bench-{i}")
    return statistics.median(times), min(times), max(times), f"bench-{rounds - 1}"


def bench_userns(b_on, b_off, image, rounds):
    """Median ms from CreateEndpoint to InService (its container's first
    /ping 200) of a one-container echo endpoint, on a berthd with user
    namespaces and one without, rounds interleaved so background load hits
    both alike."""
    times = {True: [], False: []}
    for b in (b_on, b_off):
        b.stack("userns", [{"ContainerHostname": "a", "Image": image}], None)
    for i in range(rounds):
        for on, b in ((True, b_on), (False, b_off)):
            name = f"userns-{i}"
            t0 = time.monotonic()
            b.sm.create_endpoint(EndpointName=name, EndpointConfigName="userns")
            status = b.sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
            times[on].append((time.monotonic() - t0) * 1000)
            if status != "InService":
                raise RuntimeError(f"{name} is {status} (user namespaces {'on' if on else 'off'})")
            b.sm.delete_endpoint(EndpointName=name)
            wait_for(lambda: not any(e["EndpointName"] == name for e in b.sm.list_endpoints()["Endpoints"]),
                     60, f"{name} to go")
    return statistics.median(times[True]), statistics.median(times[False])


def report_userns(b, build, image, rounds, rep):
    b_off = Berth(build, user_namespaces=False)
    try:
        on, off = bench_userns(b, b_off, image, rounds)
    finally:
        b_off.close()
    rep.row("CreateEndpoint -> first /ping 200, 1 echo container, user namespace", f"{on:.1f} ms",
            f"{on / off:.2f}x without", "<= 1.2x without")
    rep.row("CreateEndpoint -> first /ping 200, 1 echo container, no user namespace", f"{off:.1f} ms",
            "baseline", "")
    rep.target("InService with user namespaces vs. without", f"{on / off:.2f}x", "<= 1.2x", on <= 1.2 * off)


# ---- SigV4 verification cost ------------------------------------------------------

def bench_sigv4(b_on, image, tmp, rep, n, rounds):
    """Router CPU per request with SigV4 verification (b_on, auth sigv4) vs.
    without (a second instance, auth none), the same signed requests to
    both, 1 KiB bodies, 64 clients, h2load HTTP/1.1 and h2c; rounds
    interleave the two so that background load hits both alike; each figure
    is the median over rounds."""
    body = os.path.join(tmp, "body-1k")
    with open(body, "wb") as f:
        f.write(SIGV4_BODY)
    b_off = Berth(b_on.build, auth="none")
    try:
        urls = {}
        for auth, b in (("sigv4", b_on), ("none", b_off)):
            b.stack("sigv4", [{"Image": image}], None)
            b.sm.create_endpoint(EndpointName="sigv4", EndpointConfigName="sigv4")
            wait_for(lambda: b.sm.describe_endpoint(EndpointName="sigv4")["EndpointStatus"] == "InService", 60,
                     f"the sigv4 bench endpoint (auth {auth})")
            urls[auth] = (b, f"{b.url}/endpoints/sigv4/invocations")
            h2load(urls[auth][1], 2000, 4, True, body, b.signed(urls[auth][1], SIGV4_BODY),
                   os.path.join(tmp, "warm"))
        runs = {}
        for _ in range(rounds):
            for h1 in (True, False):
                # Both get the same signed request, as boto3 signs whatever
                # the server does: the figure is the verification's cost,
                # not that of the header bytes. Signed anew each round (good
                # for 15 minutes); auth none ignores the signature.
                hdr = b_on.signed(urls["sigv4"][1], SIGV4_BODY)
                for auth, (b, u) in urls.items():
                    c0 = cpu_seconds([b.router.pid])
                    rps, p50, p99, count = h2load(u, n, 64, h1, body, hdr, os.path.join(tmp, "log"))
                    cpu_us = (cpu_seconds([b.router.pid]) - c0) * 1e6 / count
                    runs.setdefault((auth, h1), []).append((rps, p50, p99, cpu_us))
        res = {k: tuple(statistics.median(v[i] for v in vals) for i in range(4)) for k, vals in runs.items()}
        for h1 in (True, False):
            tool = "h2load h1" if h1 else "h2load h2c"
            on, off = res[("sigv4", h1)], res[("none", h1)]
            for auth, r in (("auth none", off), ("SigV4 verified", on)):
                rep.row(f"{tool}, 64 clients, 1 KiB body, router, {auth}",
                        f"{r[0]:,.0f} req/s, p50 {r[1]:.0f} us, p99 {r[2]:.0f} us, router CPU {r[3]:.1f} us/req",
                        "baseline" if r is off else f"{r[3] / off[3]:.2f}x the CPU/req of auth none, "
                                                     f"{r[0] / off[0]:.2f}x its rps", "" if r is off else "<= 1.10x")
            rep.target(f"router CPU/req with SigV4 vs. auth none, 1 KiB, 64 clients, {tool}",
                       f"{on[3] / off[3]:.2f}x", "<= 1.10x", on[3] <= 1.10 * off[3])
        for b, _ in urls.values():
            b.sm.delete_endpoint(EndpointName="sigv4")
    finally:
        b_off.close()


# ---- multi-model endpoints (mme) -------------------------------------------------

def mme_artifacts(root, prefix, names):
    import io
    import tarfile
    d = os.path.join(root, "bench", prefix)
    os.makedirs(d, exist_ok=True)
    for n in names:
        with tarfile.open(os.path.join(d, n), "w:gz", compresslevel=1) as t:
            info = tarfile.TarInfo("model.txt")
            info.size = len(n)
            t.addfile(info, io.BytesIO(n.encode()))


def mme_call(b, ep, target, body=BODY):
    """(status, seconds) of one InvokeEndpoint on a fresh connection."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=120)
    try:
        headers = {"X-Amzn-SageMaker-Target-Model": target, "Content-Type": "application/octet-stream"}
        if b.auth == "sigv4":
            headers = bh.sign_headers(b.port, "POST", f"/endpoints/{ep}/invocations", body=body, headers=headers,
                                      key=b.invoke_key)
        t0 = time.monotonic()
        c.request("POST", f"/endpoints/{ep}/invocations", body=body, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def bench_mme(b, image, body, tmp, rep, n_models, n_req, rounds):
    """Cold first call vs warm call, warm MME invoke vs a single-model
    invoke, routing cost with n_models models known to the router vs 10."""
    import concurrent.futures
    few = [f"m-{i}.tar.gz" for i in range(10)]
    many = [f"m-{i}.tar.gz" for i in range(n_models)]
    cold_names = [f"cold-{i}.tar.gz" for i in range(20)]
    mme_artifacts(b.objroot, "few", few + cold_names)
    mme_artifacts(b.objroot, "many", many)
    for name, prefix in (("mme10", "few"), ("mmebig", "many")):
        b.sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/berth",
                          PrimaryContainer={"Image": image, "Mode": "MultiModel",
                                            "ModelDataUrl": f"s3://bench/{prefix}/"})
        b.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        b.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    b.stack("single1", [{"Image": image}], None)
    b.sm.create_endpoint(EndpointName="single1", EndpointConfigName="single1")
    for ep in ("mme10", "mmebig", "single1"):
        wait_for(lambda: b.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService", 60, ep)
    # cold vs warm: a fresh model's first call, then its second
    cold, warm = [], []
    for n in cold_names:
        st, t = mme_call(b, "mme10", n)
        st2, t2 = mme_call(b, "mme10", n)
        if st != 200 or st2 != 200:
            raise RuntimeError(f"mme cold/warm call: {st}/{st2}")
        cold.append(t * 1e3)
        warm.append(t2 * 1e3)
    cm, wm = statistics.median(cold), statistics.median(warm)
    rep.row("MME tiny model, first call (load) vs warm call, fresh connection each",
            f"cold {cm:.2f} ms, warm {wm:.2f} ms", f"cold adds {cm - wm:.2f} ms (echo's own load ~0)",
            "<= +20 ms")
    rep.target("MME cold call beyond the container's load", f"{cm - wm:+.2f} ms", "<= +20 ms", cm - wm <= 20)
    # load every model once: the router then knows n_models targets of mmebig
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bad = [s for s, _ in pool.map(lambda n: mme_call(b, "mmebig", n), many) if s != 200]
    if bad:
        raise RuntimeError(f"mme: {len(bad)} loads of {n_models} failed")
    rep.row(f"MME: {n_models} models loaded through the router (8 at a time)",
            f"{time.monotonic() - t0:.1f} s", "", "")
    for n in few:
        mme_call(b, "mme10", n)
    url = lambda ep: f"{b.url}/endpoints/{ep}/invocations"  # noqa: E731
    hdr = ["x-amzn-sagemaker-target-model: m-3.tar.gz"]
    jobs = {"single": (url("single1"), []), "mme10": (url("mme10"), hdr), "mmebig": (url("mmebig"), hdr)}
    data = body_of(body)
    for u, h in jobs.values():
        h2load(u, 500, 1, True, body, b.signed(u, data, h), os.path.join(tmp, "warm"))
    runs = {}
    for _ in range(rounds):
        for k, (u, h) in jobs.items():
            runs.setdefault(k, []).append(h2load(u, n_req, 1, True, body, b.signed(u, data, h),
                                                 os.path.join(tmp, "log")))
    res = {k: tuple(statistics.median(v[i] for v in vals) for i in range(3)) for k, vals in runs.items()}
    s, m10, mbig = res["single"], res["mme10"], res["mmebig"]
    rep.row("single-model invoke, 1 client, h2load h1", f"{s[0]:,.0f} req/s, p50 {s[1]:.0f} us, p99 {s[2]:.0f} us",
            "baseline", "")
    rep.row("warm MME invoke (10 models), 1 client, h2load h1",
            f"{m10[0]:,.0f} req/s, p50 {m10[1]:.0f} us, p99 {m10[2]:.0f} us",
            f"{m10[1] / s[1]:.2f}x single-model p50", "<= 1.1x")
    rep.row(f"warm MME invoke ({n_models} models), 1 client, h2load h1",
            f"{mbig[0]:,.0f} req/s, p50 {mbig[1]:.0f} us, p99 {mbig[2]:.0f} us",
            f"{mbig[1] / m10[1]:.2f}x the 10-model p50", "flat")
    rep.target("warm MME invoke vs. single-model", f"{m10[1] / s[1]:.2f}x p50", "<= 1.1x", m10[1] <= 1.1 * s[1])
    rep.target(f"routing with {n_models} models vs. 10", f"{mbig[1] / m10[1]:.2f}x p50", "flat (<= 1.1x)",
               mbig[1] <= 1.1 * m10[1])
    for ep in ("mme10", "mmebig", "single1"):
        b.sm.delete_endpoint(EndpointName=ep)


def bench_tls(b, ep, cert, body, tmp, rep, n, rounds):
    """h2load over TLS (ALPN http/1.1, h2), 64 clients: berth-router's TLS-only
    address (calls SigV4-signed and verified, as deployed) vs. nginx with TLS
    (1 worker, same certificate, no auth) in the container's namespace;
    rounds interleaved, medians."""
    pid = b.container_pid(ep, "a")
    nginx = NetnsProxy("nginx", pid, tmp, tls=cert)
    router_url = f"https://127.0.0.1:{b.tls_port}/endpoints/{ep}/invocations"
    try:
        targets = {  # url, headers for a round, netns, pids
            "berth-router": (router_url, lambda: b.signed(router_url, BODY, [
                "x-amzn-sagemaker-target-container-hostname: a"], port=b.tls_port), None, [b.router.pid]),
            "nginx": (f"https://127.0.0.1:{nginx.tls_port}/invocations", lambda: [], pid, proc_tree(nginx.proc.pid)),
        }
        for name, (url, hdr, ns, _) in targets.items():  # warm: pools, sessions, page cache
            h2load(url, 2000, 4, True, body, hdr(), os.path.join(tmp, "warm"), ns)
        runs = {}
        for _ in range(rounds):
            for h1 in (True, False):
                for name, (url, hdrs, ns, pids) in targets.items():
                    hdr = hdrs()  # signed anew each round: good for 15 minutes
                    c0 = cpu_seconds(pids)
                    rps, p50, p99, count = h2load(url, n, 64, h1, body, hdr, os.path.join(tmp, "log"), ns)
                    cpu_us = (cpu_seconds(pids) - c0) * 1e6 / count
                    runs.setdefault((name, h1), []).append((rps, p50, p99, cpu_us))
        res = {k: tuple(statistics.median(v[i] for v in vals) for i in range(4)) for k, vals in runs.items()}
        for h1 in (True, False):
            proto = "HTTP/1.1" if h1 else "h2"
            ng = res[("nginx", h1)]
            for name in ("berth-router", "nginx"):
                rps, p50, p99, cpu_us = res[(name, h1)]
                ratio = f"{rps / ng[0]:.2f}x nginx rps, {cpu_us / ng[3]:.2f}x its CPU" if name != "nginx" else \
                    "baseline"
                rep.row(f"h2load TLS {proto}, 64 clients, {name}",
                        f"{rps:,.0f} req/s, p50 {p50:.0f} us, p99 {p99:.0f} us, proxy CPU {cpu_us:.1f} us/req",
                        ratio, ">= 1.0x nginx" if name != "nginx" else "")
            r = res[("berth-router", h1)]
            rep.target(f"router TLS throughput vs. nginx TLS, {proto}, 64 clients",
                       f"{r[0] / ng[0]:.2f}x (CPU/req {r[3] / ng[3]:.2f}x)", ">= 1.0x", r[0] >= ng[0])
    finally:
        nginx.close()


# ---- InvokeEndpointWithResponseStream -------------------------------------------

def _stream_request(path, headers, close=False):
    h = dict(headers, **{"Content-Length": "1"})
    if close:
        h["Connection"] = "close"
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + bh.header_lines(h) + b"\r\nx")


def _first_byte_us(sock, request):
    """Microseconds from sending request to the first body byte of its
    (chunked) answer; the rest of the answer is read and dropped."""
    t0 = time.perf_counter()
    sock.sendall(request)
    data, first = b"", None
    while True:
        more = sock.recv(1 << 16)
        if not more:
            raise RuntimeError("connection closed: %r" % data[-200:])
        data += more
        head_end = data.find(b"\r\n\r\n")
        if first is None and head_end >= 0 and len(data) > head_end + 4:
            first = time.perf_counter()
        if data.endswith(b"\r\n0\r\n\r\n"):
            return (first - t0) * 1e6


def _drain_rate(sock, request):
    """(bytes, MB/s) of an answer read until the peer closes."""
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    sock.sendall(request)
    total = 0
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            break
        total += n
    return total, total / (time.perf_counter() - t0) / 1e6


def bench_stream(b, image, netns, rep, rounds, tmp, n_ttfb=2000, stream_bytes=1 << 30):
    """Time to the first streamed byte and the rate of a 1 GiB streamed
    answer (echo's stream= custom attribute, 64 KiB chunks), through the
    router's InvokeEndpointWithResponseStream (signed, verified, HTTP/1.1)
    and straight from the container in its network namespace; interleaved
    rounds, medians. The same answer through nginx (proxy_buffering off:
    chunks passed on as they come, no framing, no checksum) shows what one
    proxy hop costs on this host; CPU per GiB of the proxy and of the
    container are reported next to the rates."""
    b.stack("streambench", [{"ContainerHostname": "a", "Image": image}], None)
    b.sm.create_endpoint(EndpointName="streambench", EndpointConfigName="streambench")
    b.sm.get_waiter("endpoint_in_service").wait(EndpointName="streambench", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    pid = b.container_pid("streambench", "a")
    path = "/endpoints/streambench/invocations-response-stream"
    small = {"X-Amzn-SageMaker-Custom-Attributes": "stream=1,bytes=64"}
    chunk = 1 << 16
    big = {"X-Amzn-SageMaker-Custom-Attributes": f"stream={stream_bytes // chunk},bytes={chunk}"}

    def signed(headers, close=False):
        h = dict(headers, **{"Content-Length": "1"})
        if close:
            h["Connection"] = "close"
        hd = bh.sign_headers(b.port, "POST", path, body=b"x", headers=h, key=b.invoke_key,
                             host="x") if b.auth == "sigv4" else h
        return f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + bh.header_lines(hd) + b"\r\nx"

    def router_sock():
        return socket.create_connection(("127.0.0.1", b.port))

    def direct_sock():
        s = netns.socket_in(pid)
        s.connect(("127.0.0.1", 8080))
        return s
    nginx = NetnsProxy("nginx", pid, tmp)

    def nginx_sock():
        s = netns.socket_in(pid)
        s.connect(("127.0.0.1", nginx.h1_port))
        return s
    # name: (connect, small request, big request, the proxy's pids or None)
    targets = {
        "direct": (direct_sock, _stream_request("/invocations", small),
                   _stream_request("/invocations", big, close=True), None),
        "berth-router": (router_sock, signed(small), signed(big, close=True), [b.router.pid]),
        "nginx": (nginx_sock, _stream_request("/stream/invocations", small),
                  _stream_request("/stream/invocations", big, close=True), proc_tree(nginx.proc.pid)),
    }
    ttfb, rate, proxy_cpu, echo_cpu = {}, {}, {}, {}
    try:
        for _ in range(rounds):
            for name, (connect, small_req, big_req, pids) in targets.items():
                s = connect()
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    for _ in range(100):  # warm
                        _first_byte_us(s, small_req)
                    ttfb.setdefault(name, []).append(statistics.median(_first_byte_us(s, small_req)
                                                                       for _ in range(n_ttfb)))
                finally:
                    s.close()
                s = connect()
                try:
                    c0, e0 = cpu_seconds(pids or []), cpu_seconds([pid])
                    n, r = _drain_rate(s, big_req)
                    gib = n / (1 << 30)
                    rate.setdefault(name, []).append(r)
                    proxy_cpu.setdefault(name, []).append((cpu_seconds(pids or []) - c0) / gib)
                    echo_cpu.setdefault(name, []).append((cpu_seconds([pid]) - e0) / gib)
                finally:
                    s.close()
    finally:
        nginx.close()
    med = {k: statistics.median(v) for k, v in ttfb.items()}
    mrate = {k: statistics.median(v) for k, v in rate.items()}
    goals = {"berth-router": ("<= +100 us", ">= 0.8x direct")}
    for name, (_, _, _, pids) in targets.items():
        rep.row(f"stream: time to first byte, 1 client, HTTP/1.1, {name}", f"{med[name]:.0f} us (median)",
                "baseline" if name == "direct" else f"{med[name] - med['direct']:+.0f} us over direct",
                goals.get(name, ("", ""))[0])
        cpu = f"container CPU {statistics.median(echo_cpu[name]):.2f} s/GiB"
        if pids:
            cpu = (f"proxy CPU {statistics.median(proxy_cpu[name]):.2f} s/GiB "
                   f"(rounds {min(proxy_cpu[name]):.2f}-{max(proxy_cpu[name]):.2f}), " + cpu)
        rep.row(f"stream: 1 GiB answer, HTTP/1.1, {name}", f"{mrate[name]:,.0f} MB/s, {cpu}",
                "baseline" if name == "direct" else f"{mrate[name] / mrate['direct']:.2f}x direct",
                goals.get(name, ("", ""))[1])
    d = med["berth-router"] - med["direct"]
    rep.target("stream time to first PayloadPart over direct (median)", f"{d:+.0f} us", "<= +100 us", d <= 100)
    r = mrate["berth-router"] / mrate["direct"]
    rep.target("stream throughput vs. direct, 1 GiB", f"{r:.2f}x (nginx passing the chunks on: "
               f"{mrate['nginx'] / mrate['direct']:.2f}x)", ">= 0.8x", r >= 0.8)
    b.sm.delete_endpoint(EndpointName="streambench")


# ---- asynchronous inference ---------------------------------------------------------

IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80


def _read_answer(sock):
    """Reads one Content-Length HTTP/1.1 answer; returns its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed before the head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head, rest


def bench_async(b, image, netns, rep, n=200):
    """InvokeEndpointAsync's queue overhead: from the 202 to the output
    object in place (inotify on the output directory: the rename berthd's
    object store makes), minus the container's own time for the same
    request made directly in its network namespace (a new connection each,
    as berthd makes); medians over n sequential requests."""
    name = "asyncbench"
    b.sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/berth",
                      PrimaryContainer={"Image": image})
    status, _, data, _ = bh.control_raw(b.port, "CreateEndpointConfig", {
        "EndpointConfigName": name, "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}],
        "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://bench/out"},
                                 "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1}}},
        sign=b.admin_key)
    assert status == 200, data
    b.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    b.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    pid = b.container_pid(name, "primary")
    out_dir = os.path.join(b.objroot, "bench", "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(b.objroot, "bench", "in.bin"), "wb") as f:
        f.write(BODY)
    libc = netns.libc
    ino = libc.inotify_init1(os.O_CLOEXEC)
    assert ino >= 0 and libc.inotify_add_watch(ino, out_dir.encode(), IN_MOVED_TO | IN_CLOSE_WRITE) >= 0
    path = f"/endpoints/{name}/async-invocations"
    conn = socket.create_connection(("127.0.0.1", b.port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def submit(i):
        h = bh.sign_headers(b.port, "POST", path, body=b"", key=b.admin_key, host="x", headers={
            "X-Amzn-SageMaker-InputLocation": "s3://bench/in.bin", "X-Amzn-SageMaker-Inference-Id": f"b{i}",
            "Content-Length": "0"})
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + bh.header_lines(h) + b"\r\n")
        head, body = _read_answer(conn)
        assert head.startswith(b"HTTP/1.1 202"), head + body
        return time.perf_counter()

    def wait_output(i):
        want = f"b{i}.out".encode()
        while True:
            buf = os.read(ino, 65536)
            off = 0
            while off < len(buf):
                _, mask, _, ln = struct.unpack_from("iIII", buf, off)
                fname = buf[off + 16: off + 16 + ln].rstrip(b"\0")
                off += 16 + ln
                if fname == want and mask & IN_MOVED_TO:
                    return time.perf_counter()

    def direct():
        s = netns.socket_in(pid)
        t0 = time.perf_counter()
        s.connect(("127.0.0.1", 8080))
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        _, body = _read_answer(s)
        t = time.perf_counter() - t0
        s.close()
        assert body == BODY
        return t
    queue, own = [], []
    try:
        for i in range(20):  # warm
            submit(i)
            wait_output(i)
        for i in range(20, 20 + n):
            t202 = submit(i)
            queue.append(wait_output(i) - t202)
            own.append(direct())
            with open(os.path.join(out_dir, f"b{i}.out"), "rb") as f:
                assert f.read() == BODY
    finally:
        conn.close()
        os.close(ino)
    mq, mo = statistics.median(queue) * 1e3, statistics.median(own) * 1e3
    rep.row("async: 202 -> output object written (64 B, echo)", f"{mq:.2f} ms (median of {n})",
            f"container's own time {mo:.3f} ms", "")
    d = mq - mo
    rep.row("async: queue overhead per request", f"{d:.2f} ms (median)", "202 -> output, minus direct", "<= 2 ms")
    rep.target("async queue overhead per request (median)", f"{d:.2f} ms", "<= 2 ms", d <= 2)
    b.sm.delete_endpoint(EndpointName=name)

# ---- registry images -------------------------------------------------------------

SKLEARN_LAYOUT = os.path.join(os.environ.get("BERTH_IMAGE_CACHE") or "/var/cache/berth/images", "sklearn-mme/oci")


def bench_registry(build, rep, rounds):
    """A registry of our own (docker-registry, htpasswd, TLS; registry_helpers).
    Warm: CreateEndpoint -> InService of the echo image by registry tag whose
    digest is cached (berthd still asks the registry what the tag means, as
    SageMaker resolves tags at CreateEndpoint) vs. the same image from an OCI
    layout, rounds interleaved. Cold: `berth pull` of the scikit-learn image
    into an empty cache vs. `skopeo copy` of it alone."""
    import registry_helpers as rh
    reg = rh.Registry()
    layout = os.path.join(build, "images", f"bench-echo-oci-{os.getpid()}")
    b = None
    try:
        with open(os.path.join(build, "images/echo/rootfs.tar.gz"), "rb") as f:
            rh.make_layout(layout, f.read())
        reg.push(layout, "v1", "echo:v1")
        have_sklearn = os.path.isfile(os.path.join(SKLEARN_LAYOUT, "index.json"))
        if have_sklearn:
            reg.push(SKLEARN_LAYOUT, "latest", "sklearn:v1")
        creds = {"username": rh.USER, "password": rh.PASSWORD, "cert_dir": reg.certs}
        b = Berth(build, registries={"hosts": {reg.host: creds}})
        images = {"registry": f"{reg.host}/echo:v1", "pinned": f"{reg.host}/echo@{reg.digest('echo:v1')}",
                  "oci": f"oci:{layout}:v1"}
        for kind, image in images.items():
            b.stack(f"reg-{kind}", [{"ContainerHostname": "a", "Image": image}], None)
            # warm: the pull (registry) and the unpack (both) happen here
            b.sm.create_endpoint(EndpointName=f"reg-{kind}-warm", EndpointConfigName=f"reg-{kind}")
            if b.sm.describe_endpoint(EndpointName=f"reg-{kind}-warm")["EndpointStatus"] != "InService":
                raise RuntimeError(f"reg-{kind}-warm not InService")
            b.sm.delete_endpoint(EndpointName=f"reg-{kind}-warm")
        times = {k: [] for k in images}
        for i in range(rounds):
            for kind in images:
                name = f"reg-{kind}-{i}"
                t0 = time.monotonic()
                b.sm.create_endpoint(EndpointName=name, EndpointConfigName=f"reg-{kind}")
                status = b.sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
                times[kind].append((time.monotonic() - t0) * 1000)
                if status != "InService":
                    raise RuntimeError(f"{name} is {status}")
                b.sm.delete_endpoint(EndpointName=name)
                wait_for(lambda: not any(e["EndpointName"] == name for e in b.sm.list_endpoints()["Endpoints"]),
                         60, f"{name} to go")
        warm, oci = statistics.median(times["registry"]), statistics.median(times["oci"])
        pinned = statistics.median(times["pinned"])
        rep.row("CreateEndpoint -> InService, 1 echo container, registry tag, digest cached (tag asked of the "
                "registry)", f"{warm:.1f} ms", f"{warm / oci:.2f}x OCI layout", "<= 1.1x OCI layout")
        rep.row("CreateEndpoint -> InService, 1 echo container, registry @sha256 digest, cached (no network)",
                f"{pinned:.1f} ms", f"{pinned / oci:.2f}x OCI layout", "<= 1.1x OCI layout")
        rep.row("CreateEndpoint -> InService, 1 echo container, OCI layout", f"{oci:.1f} ms", "baseline", "")
        rep.target("warm CreateEndpoint, registry tag vs. OCI layout", f"{warm / oci:.2f}x", "<= 1.1x",
                   warm <= 1.1 * oci)
        rep.target("warm CreateEndpoint, registry digest vs. OCI layout", f"{pinned / oci:.2f}x", "<= 1.1x",
                   pinned <= 1.1 * oci)
        if not have_sklearn:
            rep.row("cold pull of the scikit-learn image", "not measured: make framework-images first", "", "")
            return
        ref = f"{reg.host}/sklearn:v1"
        pulls, copies = [], []
        dest = tempfile.mkdtemp(prefix="bench-skopeo-", dir="/var/tmp")
        try:
            for _ in range(max(1, min(rounds, 3))):
                subprocess.run([f"{build}/berth", "--socket", b.sock, "images", "prune"], check=True,
                               capture_output=True, timeout=120)
                t0 = time.monotonic()
                subprocess.run([f"{build}/berth", "--socket", b.sock, "pull", ref], check=True,
                               capture_output=True, timeout=600)
                pulls.append((time.monotonic() - t0) * 1000)
                shutil.rmtree(os.path.join(dest, "x"), ignore_errors=True)
                t0 = time.monotonic()
                subprocess.run(["skopeo", "--insecure-policy", "copy", "--src-creds", f"{rh.USER}:{rh.PASSWORD}",
                                "--src-cert-dir", reg.certs, f"docker://{ref}", f"oci:{dest}/x:image"],
                               check=True, capture_output=True, timeout=600)
                copies.append((time.monotonic() - t0) * 1000)
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(SKLEARN_LAYOUT) for f in fs)
        pull, copy = statistics.median(pulls), statistics.median(copies)
        rep.row(f"cold `berth pull` of the scikit-learn image ({size / (1 << 20):.0f} MiB) from a local registry",
                f"{pull:.0f} ms", f"{pull / copy:.2f}x `skopeo copy` alone", "")
        rep.row("`skopeo copy` of the same image alone", f"{copy:.0f} ms", "baseline", "")
    finally:
        try:
            if b is not None:
                b.close()
        finally:
            reg.stop()
            shutil.rmtree(layout, ignore_errors=True)


def spread(values, fmt="{:.1f}"):
    """min-max of a figure over rounds, for the report."""
    return (fmt + "-" + fmt).format(min(values), max(values))


def bench_proxy(b, ep, body, tmp, rep, a, proxies):
    """Router overhead: direct vs. berth-router vs. nginx and nghttpx (see
    the module's doc). Each figure is the median over a.bench_rounds
    interleaved rounds; CPU per request is shown with its spread (min-max
    over the rounds), and the router's CPU ratio to each proxy is the
    ratio of the medians, with the spread of the per-round ratios."""
    pid = b.container_pid(ep, "a")
    router_url = f"{b.url}/endpoints/{ep}/invocations"
    rhdr = ["x-amzn-sagemaker-target-container-hostname: a"]
    proxies.append(NetnsProxy("nginx", pid, tmp))
    proxies.append(NetnsProxy("nghttpx", pid, tmp))
    nginx, nghttpx = proxies
    targets = {
        "direct": (None, "http://127.0.0.1:8080/invocations", None, [], pid),
        "berth-router": (router_url, router_url, router_url, rhdr, None),
        "nginx": (f"http://127.0.0.1:{nginx.h1_port}/invocations", f"http://127.0.0.1:{nginx.h1_port}/invocations",
                  f"http://127.0.0.1:{nginx.h2_port}/invocations", [], pid),
        "nghttpx": (None, f"http://127.0.0.1:{nghttpx.h1_port}/invocations",
                    f"http://127.0.0.1:{nghttpx.h2_port}/invocations", [], pid),
    }
    res = {}
    wscript_plain = wrk_script(os.path.join(tmp, "plain.lua"), [])

    # --router-before: a second router binary, alternated with the build's
    # in every round on the same berthd and container (a change's effect
    # inside one run, where the machine's drift hits both alike)
    binaries = {"berth-router": b.rargs[0]}
    if a.router_before:
        binaries[BEFORE] = os.path.abspath(a.router_before)
        targets[BEFORE] = targets["berth-router"]

    def sign_router():
        """The router's header set signed anew (for the next 15 minutes)."""
        hdr = b.signed(router_url, BODY, rhdr)
        for name in binaries:
            targets[name] = (router_url, router_url, router_url, hdr, None)
        return wrk_script(os.path.join(tmp, "router.lua"), [tuple(h.split(": ", 1)) for h in hdr])
    wscript_router = sign_router()
    cpu_pids = {"direct": [pid], "nginx": proc_tree(nginx.proc.pid), "nghttpx": proc_tree(nghttpx.proc.pid)}

    def switch_router(name):
        """The router binary of name running, its pool warm; its pids."""
        if b.use_router(binaries[name]):
            for attempt in range(50):  # the route table comes from berthd right after the start
                try:
                    h2load(router_url, 500, 1, True, body, targets[name][3], os.path.join(tmp, "warm"))
                    break
                except RuntimeError:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        return [b.router.pid]
    # warm every path (pools, page cache)
    for name, (_, h1, h2, hdr, ns) in targets.items():
        if name in binaries:
            switch_router(name)
        h2load(h1, 2000, 4, True, body, hdr, os.path.join(tmp, "warm"), ns)
    # Rounds interleave the variants, so that drift in the machine's
    # background load hits them alike; each figure is the median over rounds.
    runs = {}
    for rnd in range(a.bench_rounds):
        wscript_router = sign_router()
        # the two routers run back to back, in turns first (where a run
        # sits in the round showed in the figures)
        order = [k for k in targets if k != BEFORE]
        if BEFORE in targets:
            order.insert(order.index("berth-router") + (rnd % 2 == 0), BEFORE)
        for clients in (1, 64):
            n = a.requests if clients == 1 else a.requests64
            for name in order:
                _, h1, h2, hdr, ns = targets[name]
                jobs = [("h2load h1", lambda: h2load(h1, n, clients, True, body, hdr, os.path.join(tmp, "log"), ns))]
                if h2:
                    jobs.append(("h2load h2c", lambda: h2load(h2, n, clients, False, body, hdr,
                                                              os.path.join(tmp, "log"), ns)))
                jobs.append(("wrk h1", lambda: wrk(h1, a.wrk_seconds, clients,
                                                   wscript_router if name in binaries else wscript_plain, ns)))
                if name in binaries:
                    cpu_pids[name] = switch_router(name)
                for tool, job in jobs:
                    c0, s0 = cpu_seconds(cpu_pids[name]), sleeps(cpu_pids[name])
                    rps, p50, p99, count = job()
                    cpu_us = (cpu_seconds(cpu_pids[name]) - c0) * 1e6 / count
                    sleeps_per_req = (sleeps(cpu_pids[name]) - s0) / count
                    runs.setdefault((name, tool, clients), []).append((rps, p50, p99, cpu_us, sleeps_per_req))
    switch_router("berth-router")  # the build's router for what follows
    for key, vals in runs.items():
        res[key] = tuple(statistics.median(v[i] for v in vals) for i in range(5))

    def cpu_ratio(tool, clients, other):
        """router CPU/req over other's: ratio of the medians, and the
        spread of the per-round ratios (rounds are interleaved)."""
        r, o = runs[("berth-router", tool, clients)], runs[(other, tool, clients)]
        per_round = [x[3] / y[3] for x, y in zip(r, o)]
        return res[("berth-router", tool, clients)][3] / res[(other, tool, clients)][3], per_round

    for tool in ("h2load h1", "h2load h2c", "wrk h1"):
        for clients in (1, 64):
            d = res.get(("direct", tool if tool != "h2load h2c" else "h2load h1", clients))
            for name in ("direct", "berth-router", BEFORE, "nginx", "nghttpx"):
                r = res.get((name, tool, clients))
                if not r:
                    continue
                rps, p50, p99, cpu_us, sleeps_per_req = r
                ratios = []
                if name != "direct":
                    ratios.append(f"{rps / d[0]:.2f}x direct rps, p50 {p50 - d[1]:+.0f} us")
                if name == "berth-router":
                    if (BEFORE, tool, clients) in res:
                        ratio, per_round = cpu_ratio(tool, clients, BEFORE)
                        b50 = [x[1] - y[1] for x, y in zip(runs[(name, tool, clients)], runs[(BEFORE, tool, clients)])]
                        ratios.append(f"vs. before: p50 {p50 - res[(BEFORE, tool, clients)][1]:+.0f} us "
                                      f"(rounds {spread(b50, '{:+.0f}')}), {ratio:.2f}x its CPU "
                                      f"(rounds {spread(per_round, '{:.2f}')})")
                    for other in ("nginx", "nghttpx"):
                        if (other, tool, clients) in res:
                            ratio, per_round = cpu_ratio(tool, clients, other)
                            ratios.append(f"{rps / res[(other, tool, clients)][0]:.2f}x {other} rps, "
                                          f"{ratio:.2f}x its CPU (rounds {spread(per_round, '{:.2f}')})")
                who = "echo" if name == "direct" else "proxy"
                cpus = [v[3] for v in runs[(name, tool, clients)]]
                rep.row(f"{tool}, {clients} client{'s' if clients > 1 else ''}, {name}",
                        f"{rps:,.0f} req/s, p50 {p50:.0f} us, p99 {p99:.0f} us, {who} CPU {cpu_us:.1f} us/req "
                        f"(rounds {spread(cpus)}), {sleeps_per_req:.2f} sleeps/req",
                        "; ".join(ratios) or ("baseline (HTTP/1.1)" if tool == "h2load h2c" else "baseline"), "")
    d1 = res[("direct", "h2load h1", 1)]
    for tool in ("h2load h1", "h2load h2c", "wrk h1"):
        r = res[("berth-router", tool, 1)]
        dd = res[("direct", "wrk h1", 1)] if tool == "wrk h1" else d1
        rep.target(f"router p50 overhead over direct, 1 client, {tool}", f"{r[1] - dd[1]:+.0f} us",
                   "<= +20 us", r[1] - dd[1] <= 20)
    for tool, other, proto in (("h2load h1", "nginx", "HTTP/1.1"), ("wrk h1", "nginx", "HTTP/1.1"),
                               ("h2load h2c", "nghttpx", "h2c")):
        ratio, per_round = cpu_ratio(tool, 64, other)
        rep.target(f"router CPU per request vs. {other}, {proto}, 64 clients, {tool}",
                   f"{ratio:.2f}x (rounds {spread(per_round, '{:.2f}')})", "<= 0.85x", ratio <= 0.85)
    for tool in ("h2load h1", "wrk h1"):
        r, ng = res[("berth-router", tool, 64)], res[("nginx", tool, 64)]
        rep.target(f"router throughput vs. nginx, HTTP/1.1, 64 clients, {tool}",
                   f"{r[0] / ng[0]:.2f}x", ">= 1.2x", r[0] >= 1.2 * ng[0])
    r, nx = res[("berth-router", "h2load h2c", 64)], res[("nghttpx", "h2load h2c", 64)]
    rep.target("router throughput vs. nghttpx, HTTP/2, 64 clients", f"{r[0] / nx[0]:.2f}x", ">= 1.0x", r[0] >= nx[0])


# ---- report ----------------------------------------------------------------------

class Report:
    def __init__(self):
        self.rows, self.targets = [], []

    def row(self, *cols):
        self.rows.append(cols)
        print(" | ".join(str(c) for c in cols), flush=True)

    def target(self, name, value, limit, ok):
        self.targets.append((name, value, limit, "met" if ok else "MISSED"))


class _Done(Exception):
    """--only-mme: the figures are in; write the report."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--requests", type=int, default=20000, help="h2load requests at 1 client")
    ap.add_argument("--requests64", type=int, default=60000, help="h2load requests at 64 clients")
    ap.add_argument("--wrk-seconds", type=int, default=2)
    ap.add_argument("--serial-requests", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=7, help="CreateEndpoint / bare runc rounds")
    ap.add_argument("--bench-rounds", type=int, default=3, help="interleaved rounds of the load runs")
    ap.add_argument("--mme-models", type=int, default=10000, help="models behind the big MME endpoint")
    ap.add_argument("--mme-requests", type=int, default=5000, help="h2load requests per MME figure")
    ap.add_argument("--only-mme", action="store_true", help="run only the multi-model figures")
    ap.add_argument("--only-userns", action="store_true", help="run only the user namespace start-up figure")
    ap.add_argument("--only-sigv4", action="store_true", help="run only the SigV4 verification cost figure")
    ap.add_argument("--sigv4-requests", type=int, default=60000, help="h2load requests per SigV4 figure")
    ap.add_argument("--only-tls", action="store_true", help="run only the TLS figures")
    ap.add_argument("--only-stream", action="store_true", help="run only the response streaming figures")
    ap.add_argument("--only-registry", action="store_true", help="run only the registry image figures")
    ap.add_argument("--only-proxy", action="store_true",
                    help="run only the router overhead figures (direct, berth-router, nginx, nghttpx)")
    ap.add_argument("--router-before", metavar="BINARY",
                    help="another berth-router (the build before a change): the router overhead rounds run it "
                         "alternately with --build's, rows 'berth-router before' and the change's deltas")
    ap.add_argument("--only-async", action="store_true", help="run only the InvokeEndpointAsync queue figure")
    ap.add_argument("--async-requests", type=int, default=200, help="requests of the async figure")
    ap.add_argument("--tls-requests", type=int, default=60000, help="h2load requests per TLS figure")
    a = ap.parse_args()
    image = os.path.join(a.build, "images/echo/rootfs")
    rep = Report()
    tmp = tempfile.mkdtemp(prefix="berth-bench-logs-")
    body = os.path.join(tmp, "body")
    with open(body, "wb") as f:
        f.write(BODY)
    netns = Netns()
    # Orphans (a proxy's worker outliving its master) come back to us to be
    # reaped, instead of lingering as zombies under pid 1.
    PR_SET_CHILD_SUBREAPER = 36
    netns.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    proxies = []
    cert = make_certificate(tmp)
    b = Berth(a.build, tls=cert)
    try:
        if a.only_tls:
            b.stack("tlsbench", [{"ContainerHostname": "a", "Image": image}], "Direct")
            b.sm.create_endpoint(EndpointName="tlsbench", EndpointConfigName="tlsbench")
            bench_tls(b, "tlsbench", cert, body, tmp, rep, a.tls_requests, a.bench_rounds)
            raise _Done()
        if a.only_stream:
            bench_stream(b, image, netns, rep, a.bench_rounds, tmp)
            raise _Done()
        if a.only_mme:
            bench_mme(b, image, body, tmp, rep, a.mme_models, a.mme_requests, a.bench_rounds)
            raise _Done()
        if a.only_userns:
            report_userns(b, a.build, image, a.rounds, rep)
            raise _Done()
        if a.only_sigv4:
            bench_sigv4(b, image, tmp, rep, a.sigv4_requests, a.bench_rounds)
            raise _Done()
        if a.only_registry:
            bench_registry(a.build, rep, a.rounds)
            raise _Done()
        if a.only_proxy:
            _, _, _, ep = bench_create(b, image, 1)
            bench_proxy(b, ep, body, tmp, rep, a, proxies)
            raise _Done()
        if a.only_async:
            bench_async(b, image, netns, rep, a.async_requests)
            raise _Done()
        # -- start-up --
        med, lo, hi, ep = bench_create(b, image, a.rounds)
        bare, blo, bhi = bare_runc(image, tmp, a.rounds, netns)
        rep.row("CreateEndpoint -> InService, 2 echo containers", f"{med:.1f} ms (min {lo:.1f}, max {hi:.1f})",
                f"{med / bare:.2f}x bare runc", "<= 100 ms, <= 1.5x bare")
        rep.row("bare `runc run -d` x2 concurrently -> both /ping 200", f"{bare:.1f} ms (min {blo:.1f}, max {bhi:.1f})",
                "baseline", "")
        rep.target("InService (2 echo containers)", f"{med:.1f} ms", "<= 100 ms", med <= 100)
        rep.target("InService vs. bare runc run", f"{med / bare:.2f}x", "<= 1.5x", med <= 1.5 * bare)
        report_userns(b, a.build, image, a.rounds, rep)  # (userns) with and without
        bench_registry(a.build, rep, a.rounds)  # registry images: warm vs. OCI layout, cold pull

        # -- router overhead --
        bench_proxy(b, ep, body, tmp, rep, a, proxies)
        for p in proxies:
            p.close()
        proxies.clear()

        # -- TLS: router vs. nginx, same certificate --
        bench_tls(b, ep, cert, body, tmp, rep, a.tls_requests, a.bench_rounds)

        # -- Serial pipelines: all up at once, rounds interleaved with a direct call --
        pid = b.container_pid(ep, "a")  # the direct baseline: the echo container of the overhead figures
        for n in (1, 2, 5, 15):
            name = f"serial{n}"
            b.stack(name, [{"ContainerHostname": f"s{i}", "Image": image} for i in range(n)], "Serial")
            b.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            if b.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
                raise RuntimeError(f"{name} not InService")
            u = f"{b.url}/endpoints/{name}/invocations"
            h2load(u, 500, 1, True, body, b.signed(u, BODY), os.path.join(tmp, "warm"))
        sruns = {}
        for _ in range(a.bench_rounds):
            sruns.setdefault("direct", []).append(
                h2load("http://127.0.0.1:8080/invocations", a.serial_requests, 1, True, body, [],
                       os.path.join(tmp, "log"), pid))
            for n in (1, 2, 5, 15):
                u = f"{b.url}/endpoints/serial{n}/invocations"
                c0 = cpu_seconds([b.router.pid])
                rps, p50, p99, count = h2load(u, a.serial_requests, 1, True, body, b.signed(u, BODY),
                                              os.path.join(tmp, "log"))
                sruns.setdefault(n, []).append((rps, p50, p99, (cpu_seconds([b.router.pid]) - c0) * 1e6 / count))
        serial = {k: tuple(statistics.median(v[i] for v in vals) for i in range(3)) for k, vals in sruns.items()}
        direct_p50 = serial["direct"][1]
        rep.row("direct call into the container, 1 client, h2load h1 (serial baseline)",
                f"{serial['direct'][0]:,.0f} req/s, p50 {direct_p50:.0f} us, p99 {serial['direct'][2]:.0f} us",
                "baseline", "")
        for n in (1, 2, 5, 15):
            rps, p50, p99 = serial[n]
            extra = ""
            if n > 1:
                hop = (p50 - serial[1][1]) / (n - 1)
                extra = f"per added hop {hop:.1f} us = {hop / direct_p50:.2f}x a direct call"
                rep.target(f"Serial hop cost, N={n}", f"{hop:.1f} us = {hop / direct_p50:.2f}x direct", "<= 1.2x",
                           hop <= 1.2 * direct_p50)
            cpus = [v[3] for v in sruns[n]]
            rep.row(f"Serial pipeline, {n} echo step{'s' if n > 1 else ''}, 1 client, h2load h1",
                    f"{rps:,.0f} req/s, p50 {p50:.0f} us, p99 {p99:.0f} us, router CPU "
                    f"{statistics.median(cpus):.1f} us/req (rounds {spread(cpus)})",
                    extra or f"{p50 / direct_p50:.2f}x a direct call", "")
        for n in (1, 2, 5, 15):
            b.sm.delete_endpoint(EndpointName=f"serial{n}")

        # -- SigV4 verification cost --
        bench_sigv4(b, image, tmp, rep, a.sigv4_requests, a.bench_rounds)

        # -- InvokeEndpointWithResponseStream --
        bench_stream(b, image, netns, rep, a.bench_rounds, tmp)
        bench_async(b, image, netns, rep, a.async_requests)

        # -- multi-model endpoints --
        bench_mme(b, image, body, tmp, rep, a.mme_models, a.mme_requests, a.bench_rounds)

        # -- memory --
        shims = b.shim_pids()
        rss = {"berthd": vm_rss_kib(b.berthd.pid), "berth-router": vm_rss_kib(b.router.pid)}
        shim_rss = [vm_rss_kib(p) for p in shims]
        rep.row("VmRSS berthd", f"{rss['berthd'] / 1024:.2f} MiB", "", "")
        rep.row("VmRSS berth-router (after the load)", f"{rss['berth-router'] / 1024:.2f} MiB", "", "")
        if shim_rss:
            rep.row(f"VmRSS berth-shim (max of {len(shim_rss)})", f"{max(shim_rss) / 1024:.2f} MiB",
                    f"min {min(shim_rss) / 1024:.2f} MiB", "<= 1 MiB")
            rep.target("shim RSS", f"{max(shim_rss) / 1024:.2f} MiB", "<= 1 MiB", max(shim_rss) <= 1024)
    except _Done:
        pass
    finally:
        for p in proxies:
            p.close()
        try:
            b.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            reap_orphans()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    # make bench passes --build and --out only; anything else is a partial or smaller run
    extra = [x for i, x in enumerate(sys.argv[1:]) if x not in ("--build", "--out")
             and (i == 0 or sys.argv[i] not in ("--build", "--out"))]
    command = "`make bench`" if not extra else "`make bench` as `bench.py %s`" % " ".join(extra)
    os.makedirs(a.out, exist_ok=True)
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"# berth bench {stamp}", "",
             f"Machine: {os.uname().nodename}, {cpu}, {os.cpu_count()} cores, Linux {os.uname().release}, "
             f"{platform.freedesktop_os_release().get('PRETTY_NAME', '')}. Command: {command}.", "",
             "| figure | value | vs. baseline (same run) | target |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rep.rows]
    lines += ["", "| target | measured | goal | |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(t) + " |" for t in rep.targets]
    text = "\n".join(lines) + "\n"
    path = os.path.join(a.out, f"{stamp}.md")
    with open(path, "w") as f:
        f.write(text)
    print()
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
