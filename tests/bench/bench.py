"""berth benchmarks: each figure next to a baseline measured in the same run.

- CreateEndpoint -> InService for the 2-container echo demo (median of N),
  next to the berthd-reported container start + health time;
- invoke latency, 1 client, through berth-router (HTTP/1.1 and HTTP/2)
  vs. straight into the container's network namespace (nsenter --net),
  p50/p99 from h2load's per-request log, and the difference in microseconds.

Traffic goes only to 127.0.0.1 and to the container's own loopback.
"""
import argparse
import datetime
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config


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


class Berth:
    def __init__(self, build):
        self.build = build
        self.state = tempfile.mkdtemp(prefix="berth-bench-", dir="/var/tmp")
        self.run = tempfile.mkdtemp(prefix="bb-", dir="/run")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sock = os.path.join(self.run, "berthd.sock")
        log = open(os.path.join(self.state, "berthd.log"), "w")
        self.berthd = subprocess.Popen([f"{build}/berthd", "--state-dir", self.state, "--run-dir", self.run],
                                       stdout=log, stderr=log)
        wait_for(lambda: os.path.exists(self.sock), 10, "berthd")
        rlog = open(os.path.join(self.state, "router.log"), "w")
        self.router = subprocess.Popen([f"{build}/berth-router", "--listen", f"127.0.0.1:{self.port}",
                                        "--berthd-socket", self.sock], stdout=rlog, stderr=rlog)
        wait_for(self._ping, 10, "berth-router")
        kw = dict(endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
                  aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
        self.sm = boto3.client("sagemaker", **kw)
        self.rt = boto3.client("sagemaker-runtime", **kw)

    def _ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def ps(self):
        out = subprocess.run([f"{self.build}/berth", "--socket", self.sock, "ps"], capture_output=True,
                             text=True, check=True).stdout.splitlines()[1:]
        return [line.split() for line in out if line.strip()]

    def close(self):
        for ep in self.sm.list_endpoints(MaxResults=100)["Endpoints"]:
            self.sm.delete_endpoint(EndpointName=ep["EndpointName"])
        wait_for(lambda: not self.sm.list_endpoints()["Endpoints"], 60, "endpoints to go")
        for p in (self.router, self.berthd):
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.rmtree(self.run, ignore_errors=True)


def percentiles(log_path):
    us = []
    with open(log_path) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 3 and cols[1] == "200":
                us.append(int(cols[2]))
    us.sort()
    if not us:
        raise RuntimeError(f"no successful requests in {log_path}")
    return us[len(us) // 2], us[min(len(us) - 1, int(len(us) * 0.99))], len(us)


def h2load(args, n, log):
    cmd = ["h2load", "-n", str(n), "-c", "1", "-m", "1", f"--log-file={log}"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if f"{n} succeeded" not in out:
        raise RuntimeError("h2load: not every request succeeded:\n" + out)
    return percentiles(log)


def bench_create(b, image, rounds):
    b.sm.create_model(ModelName="bench", ExecutionRoleArn="arn:aws:iam::000000000000:role/berth",
                    InferenceExecutionConfig={"Mode": "Direct"}, Containers=[
        {"ContainerHostname": "a", "Image": image}, {"ContainerHostname": "b", "Image": image}])
    b.sm.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    image = os.path.join(a.build, "images/echo/rootfs")
    b = Berth(a.build)
    rows = []
    tmp = tempfile.mkdtemp(prefix="berth-bench-logs-")
    try:
        med, lo, hi, ep = bench_create(b, image, a.rounds)
        rows.append(("CreateEndpoint -> InService, 2 echo containers (median of %d)" % a.rounds,
                     f"{med:.1f} ms", f"min {lo:.1f}, max {hi:.1f} ms", "goal <= 100 ms"))
        body = os.path.join(tmp, "body")
        with open(body, "wb") as f:
            f.write(b"x" * 64)
        pid = next(int(r[4]) for r in b.ps() if r[0] == ep and r[1] == "a")
        url = f"{b.url}/endpoints/{ep}/invocations"
        hdr = ["-H", "x-amzn-sagemaker-target-container-hostname: a", "-d", body]
        # warm the pools, then measure
        h2load(["--h1"] + hdr + [url], 2000, os.path.join(tmp, "warm"))
        direct = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "h2load", "-n", str(a.requests),
                                 "-c", "1", "-m", "1", "--h1", f"--log-file={tmp}/direct", "-d", body,
                                 "http://127.0.0.1:8080/invocations"], capture_output=True, text=True,
                                check=True).stdout
        if f"{a.requests} succeeded" not in direct:
            raise RuntimeError("direct h2load failed:\n" + direct)
        d_p50, d_p99, _ = percentiles(f"{tmp}/direct")
        h1_p50, h1_p99, _ = h2load(["--h1"] + hdr + [url], a.requests, f"{tmp}/h1")
        h2_p50, h2_p99, _ = h2load(hdr + [url], a.requests, f"{tmp}/h2")
        rows.append(("invoke p50 / p99, 1 client, direct into the container (HTTP/1.1)",
                     f"{d_p50} / {d_p99} us", "baseline", ""))
        rows.append(("invoke p50 / p99, 1 client, through berth-router HTTP/1.1",
                     f"{h1_p50} / {h1_p99} us", f"+{h1_p50 - d_p50} us p50 ({h1_p50 / d_p50:.2f}x)",
                     "goal: +25 us p50"))
        rows.append(("invoke p50 / p99, 1 client, through berth-router HTTP/2 (h2c)",
                     f"{h2_p50} / {h2_p99} us", f"+{h2_p50 - d_p50} us p50 ({h2_p50 / d_p50:.2f}x)",
                     "goal: +25 us p50"))
    finally:
        b.close()
        shutil.rmtree(tmp, ignore_errors=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(a.out, exist_ok=True)
    lines = [f"# berth bench {stamp} ({os.uname().nodename}, {os.cpu_count()} cores, {os.uname().release})", "",
             "| figure | value | vs. baseline | target |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    text = "\n".join(lines) + "\n"
    path = os.path.join(a.out, f"{stamp}.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
