"""Instance types and limits: each endpoint instance is a
parent cgroup /IDENTITY/ENDPOINT/VARIANT-N (berth-HASH for the tests) whose CPU quota, memory limit and
pids limit berthd writes from the instance type; unknown types, bad counts
and endpoints that do not fit the host are refused as SageMaker does; a
container that allocates past its instance's memory is killed by the OOM
killer and says so; one that forks until the pids limit fails cleanly."""
import json
import os
import time

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

CG = bh.CGROUP_ROOT


def cgroup_mounts():
    """{controller: mount point} for v1, and "unified" → the cgroup2 mount."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fstype, _src, opts = post.split()[:3]
            mnt = pre.split()[4]
            if fstype == "cgroup2":
                out.setdefault("unified", mnt)
            elif fstype == "cgroup":
                for o in opts.split(","):
                    if o in ("cpu", "memory", "pids"):
                        out[o] = mnt
    return out


def read(path):
    with open(path) as f:
        return f.read().strip()


def instance_limits(inst, endpoint, instance="AllTraffic-0"):
    """(cpu quota/period, memory bytes, pids) read back from the cgroup files,
    on a v1 host from each controller's hierarchy, on v2 from cgroup2."""
    m = cgroup_mounts()
    if "memory" in m:   # v1 (or hybrid with v1 controllers)
        d = lambda c: os.path.join(m[c], inst.identity(), endpoint, instance)
        quota = int(read(os.path.join(d("cpu"), "cpu.cfs_quota_us")))
        period = int(read(os.path.join(d("cpu"), "cpu.cfs_period_us")))
        mem = int(read(os.path.join(d("memory"), "memory.limit_in_bytes")))
        pids = int(read(os.path.join(d("pids"), "pids.max")))
        return quota / period, mem, pids
    d = os.path.join(m["unified"], inst.identity(), endpoint, instance)
    quota, period = read(os.path.join(d, "cpu.max")).split()
    return int(quota) / int(period), int(read(os.path.join(d, "memory.max"))), int(read(os.path.join(d, "pids.max")))


def make_stack(sm, name, instance_type="ml.t2.medium", count=1, env=None, wait=True):
    sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(env=env))
    sm.create_endpoint_config(EndpointConfigName=name + "-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": count,
        "InstanceType": instance_type}])
    sm.create_endpoint(EndpointName=name + "-ep", EndpointConfigName=name + "-cfg")
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name + "-ep",
                                                  WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name + "-ep"


def container_ids(inst):
    return [c["id"] for c in bh.runc_list(inst.run_dir)]


def test_t2_medium_limits_in_cgroup_files(berth):
    ep = make_stack(berth.sm, "lim-t2")
    berth.note_containers()
    cpus, mem, pids = instance_limits(berth, ep)
    print("ml.t2.medium instance cgroup: %.1f CPUs, %d MiB, pids.max %d" % (cpus, mem >> 20, pids))
    assert cpus == 2.0
    assert mem == 4 << 30
    assert pids == 4096
    # the container sits inside its instance's cgroup
    (cid,) = container_ids(berth)
    m = cgroup_mounts()
    base = m.get("memory") or m["unified"]
    assert os.path.isdir(os.path.join(base, berth.identity(), ep, "AllTraffic-0", cid))
    assert berth.rt.invoke_endpoint(EndpointName=ep, Body=b"x")["Body"].read() == b"x"
    berth.delete_endpoint_and_wait(ep)
    # deleting the endpoint removes the instance and endpoint cgroups
    for ctl, mnt in cgroup_mounts().items():
        assert not os.path.exists(os.path.join(mnt, berth.identity(), ep)), (ctl, mnt)


def test_unknown_instance_type_is_a_validation_error(berth):
    berth.sm.create_model(ModelName="lim-unknown", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    with pytest.raises(ClientError) as e:
        berth.sm.create_endpoint_config(EndpointConfigName="lim-unknown-cfg", ProductionVariants=[{
            "VariantName": "v", "ModelName": "lim-unknown", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.huge"}])
    assert bh.error_code(e.value) == "ValidationException"
    msg = bh.error_message(e.value)
    assert "Value 'ml.m5.huge' at 'productionVariants.1.instanceType'" in msg
    assert "enum value set" in msg and "ml.t2.medium" in msg


@pytest.mark.parametrize("count", [0, -1, 1000000])
def test_instance_count_out_of_range(berth, count):
    name = "lim-count%d" % abs(count)
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    # botocore refuses < 1 itself: send it raw, as another client could
    status, _h, _d, doc = bh.control_raw(berth.port, "CreateEndpointConfig", {
        "EndpointConfigName": name + "-cfg", "ProductionVariants": [{
            "VariantName": "v", "ModelName": name, "InitialInstanceCount": count,
            "InstanceType": "ml.t2.medium"}]})
    assert status == 400
    assert doc["__type"] == "ValidationException"
    assert "initialInstanceCount" in doc["message"]


def test_resource_limit_exceeded(make_berth):
    # no over-commit: the host's CPUs and memory are the limit
    inst = make_berth(extra_berthd=["--cpu-overcommit", "1", "--memory-overcommit", "1"])
    ncpu = os.cpu_count()
    # 20 x ml.r5.24xlarge (96 vCPUs, 768 GiB each) fits no host this test runs on
    inst.sm.create_model(ModelName="big", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    inst.sm.create_endpoint_config(EndpointConfigName="big-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "big", "InitialInstanceCount": 20,
        "InstanceType": "ml.r5.24xlarge"}])
    with pytest.raises(ClientError) as e:
        inst.sm.create_endpoint(EndpointName="big-ep", EndpointConfigName="big-cfg")
    assert bh.error_code(e.value) == "ResourceLimitExceeded"
    msg = bh.error_message(e.value)
    print("ResourceLimitExceeded:", msg)
    assert "request delta" in msg and "20 x ml.r5.24xlarge" in msg
    # nothing was created
    assert inst.sm.list_endpoints()["Endpoints"] == []
    # what fits is counted: fill the CPUs with ml.c5.large (2 vCPUs, 4 GiB), one more is refused
    fit = max(1, ncpu // 2)
    inst.sm.create_endpoint_config(EndpointConfigName="small-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "big", "InitialInstanceCount": 1,
        "InstanceType": "ml.c5.large"}])
    eps = []
    for i in range(fit):
        inst.sm.create_endpoint(EndpointName="small%d" % i, EndpointConfigName="small-cfg")
        eps.append("small%d" % i)
    with pytest.raises(ClientError) as e:
        inst.sm.create_endpoint(EndpointName="small-extra", EndpointConfigName="small-cfg")
    assert bh.error_code(e.value) == "ResourceLimitExceeded"
    assert "current utilization of %d vCPUs" % (2 * fit) in bh.error_message(e.value)
    # freeing one makes room again
    inst.delete_endpoint_and_wait(eps[0])
    inst.sm.create_endpoint(EndpointName="small-extra", EndpointConfigName="small-cfg")


def _tiny_types(tmpdir):
    """The shipped table plus a test type small enough to fill quickly."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "configs", "instance-types.json")) as f:
        types = json.load(f)
    types["ml.berthtest.tiny"] = {"vcpus": 1, "memory_mib": 96, "gpus": 0}
    path = os.path.join(tmpdir, "instance-types.json")
    with open(path, "w") as f:
        json.dump(types, f)
    return path


def test_out_of_memory_is_reported(make_berth, tmp_path):
    inst = make_berth(extra_berthd=["--instance-types", _tiny_types(str(tmp_path))])
    ep = make_stack(inst.sm, "oom", instance_type="ml.berthtest.tiny",
                    env={"ECHO_MODE": "alloc", "ECHO_ALLOC_MB": "256"})
    inst.note_containers()
    (cid,) = container_ids(inst)
    _q, mem, _p = instance_limits(inst, ep)
    assert mem == 96 << 20
    with pytest.raises(ClientError) as e:
        inst.rt.invoke_endpoint(EndpointName=ep, Body=b"grow")
    print("invoke past the memory limit:", bh.error_code(e.value), bh.error_message(e.value)[:200])
    assert bh.error_code(e.value) in ("ModelError", "ServiceUnavailable")
    log = os.path.join(inst.state_dir, "containers", cid, "log")

    def oom_logged():
        with open(log, errors="replace") as f:
            return "OOM killer" in f.read()
    bh.wait_until(oom_logged, 20, "the OOM kill in the container's log")
    with open(log, errors="replace") as f:
        print("log:", [l for l in f.read().splitlines() if "OOM" in l][-1])

    # berthd restarts it and the endpoint says why it had to
    def reason():
        return inst.sm.describe_endpoint(EndpointName=ep).get("FailureReason", "")
    bh.wait_until(lambda: "OOM killer" in reason(), 20, "FailureReason naming the OOM killer")
    print("FailureReason:", reason())


def test_fork_until_pids_limit_fails_cleanly(make_berth):
    inst = make_berth(extra_berthd=["--pids-limit", "64"])
    ep = make_stack(inst.sm, "forker", env={"ECHO_MODE": "fork"})
    _q, _m, pids = instance_limits(inst, ep)
    assert pids == 64
    out = json.loads(inst.rt.invoke_endpoint(EndpointName=ep, Body=b"go")["Body"].read())
    print("fork mode:", out)
    assert 0 < out["forked"] < 64
    assert out["error"] == "Resource temporarily unavailable"
    # the container is still serving, and can do it again (its children were reaped)
    out2 = json.loads(inst.rt.invoke_endpoint(EndpointName=ep, Body=b"again")["Body"].read())
    assert out2["forked"] == out["forked"]
    assert inst.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
