"""Helpers for the health, variants and update tests: endpoints with
several variants / instances and a bounded loopback load generator. (The
instance and its `ps` rows are berth_helpers': bh.serve, Berth.ps.)"""
import threading
import time
import uuid

from botocore.exceptions import ClientError

import berth_helpers as bh

# models made for each endpoint (cleanup)
MODELS = {}


def uniq(name):
    """Names are unique per run: cgroups (/IDENTITY/ENDPOINT) outlive a berthd and
    other test runs may be going on at the same time."""
    return "%s-%s" % (name, uuid.uuid4().hex[:6])


def cleanup(inst, cfg, ep):
    inst.note_containers()
    inst.delete_endpoint_and_wait(ep)
    for fn, kw in [(inst.sm.delete_endpoint_config, {"EndpointConfigName": cfg})] + \
            [(inst.sm.delete_model, {"ModelName": m}) for m in MODELS.pop(ep, [])]:
        try:
            fn(**kw)
        except ClientError as e:
            if bh.error_code(e) != "ValidationException":
                raise


def make_endpoint(inst, name, variants, instance_type="ml.t2.medium", wait=True):
    """variants: list of dicts {name, env, count, weight, hostname}. One
    model per variant (NAME-VARIANT), config NAME-cfg, endpoint NAME-ep."""
    name = uniq(name)
    pvs = []
    models = []
    for v in variants:
        model = "%s-%s" % (name, v["name"])
        inst.sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE,
                             PrimaryContainer=bh.container(hostname=v.get("hostname"), env=v.get("env")))
        pv = {"VariantName": v["name"], "ModelName": model, "InitialInstanceCount": v.get("count", 1),
              "InstanceType": instance_type}
        if "weight" in v:
            pv["InitialVariantWeight"] = v["weight"]
        pvs.append(pv)
        models.append(model)
    cfg = name + "-cfg"
    inst.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=pvs)
    ep = name + "-ep"
    MODELS[ep] = models
    inst.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    if wait:
        wait_status(inst, ep, "InService", 60)
        inst.note_containers()
    return cfg, ep


def make_config(inst, name, env, count=1, variant="AllTraffic", instance_type="ml.t2.medium"):
    name = uniq(name)
    model = name + "-m"
    inst.sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(env=env))
    inst.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": variant, "ModelName": model, "InitialInstanceCount": count,
        "InstanceType": instance_type}])
    return name


def wait_status(inst, ep, status, timeout):
    last = {}

    def ok():
        last["d"] = inst.sm.describe_endpoint(EndpointName=ep)
        if last["d"]["EndpointStatus"] == "Failed" and status != "Failed":
            raise AssertionError("endpoint failed: %s" % last["d"].get("FailureReason"))
        return last["d"]["EndpointStatus"] == status
    bh.wait_until(ok, timeout, "endpoint %s %s" % (ep, status), interval=0.2)
    return last["d"]


def invoke(inst, ep, body=b"x", headers=None, timeout=10):
    h = {"Content-Type": "text/plain"}
    h.update(headers or {})
    return bh.http_request(inst.port, "POST", "/endpoints/%s/invocations" % ep, body=body, headers=h,
                           timeout=timeout)


class Load:
    """`threads` threads invoking ep back to back until stopped or `total`
    requests were sent; counts sent / failed and remembers failures."""

    def __init__(self, inst, ep, threads=4, total=100000, pause=0.0):
        self.inst, self.ep, self.threads, self.total, self.pause = inst, ep, threads, total, pause
        self.sent = 0
        self.failed = 0
        self.failures = []
        self.first_failure = self.last_failure = None
        self.answers = {}
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.workers = []

    def _run(self):
        while not self.stop_flag.is_set():
            with self.lock:
                if self.sent >= self.total:
                    return
                self.sent += 1
            try:
                st, _, body = invoke(self.inst, self.ep, b"ping")
                err = None if st == 200 else "%d %s" % (st, body[:200])
            except Exception as e:  # noqa: BLE001 - every failure counts
                err = repr(e)
            with self.lock:
                if err:
                    now = time.time()
                    self.first_failure = self.first_failure or now
                    self.last_failure = now
                    self.failed += 1
                    if len(self.failures) < 20:
                        self.failures.append((time.time(), err))
            if self.pause:
                time.sleep(self.pause)

    def start(self):
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.workers:
            t.join(timeout=30)
        return self.sent, self.failed


# Many instances on a 2-CPU test host: the instance-type capacity check
# (ResourceLimitExceeded) needs over-commit for these tests.
OVERCOMMIT = ["--cpu-overcommit", "40", "--memory-overcommit", "40"]
