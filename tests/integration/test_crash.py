"""kill -9 berthd right after an acknowledged change, restart it on the same
state dir: nothing acknowledged is lost, running containers are re-adopted
(not restarted)."""
import os
import signal
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh


def uniq():
    return uuid.uuid4().hex[:6]


def container_processes(run_dir):
    """{container id: (shim pid, container init pid)} from /proc and runc's
    state files alone, without asking berthd."""
    init = {c["id"]: c["pid"] for c in bh.runc_list(run_dir)}
    out = {}
    for pid, cid in bh.shim_ids(run_dir).items():
        out[cid] = (pid, init.get(cid))
        assert init.get(cid) in bh.descendants(pid), \
            "container %s (pid %s) is not below its shim %d" % (cid, init.get(cid), pid)
    return out


def berth_ps(berth):
    r = berth.cli("ps")
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_kill9_after_create_model(berth):
    sm = berth.sm
    name = "CrashModel-" + uniq()
    r = sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.restart_berthd()          # kill -9 at once after the acknowledgement
    d = sm.describe_model(ModelName=name)
    assert d["ModelArn"] == r["ModelArn"] == bh.arn("model", name)
    before = d["CreationTime"]
    berth.restart_berthd()
    d2 = sm.describe_model(ModelName=name)
    assert d2["CreationTime"] == before
    assert d2["PrimaryContainer"]["Image"] == bh.echo_rootfs()
    assert d2["ExecutionRoleArn"] == bh.ROLE
    sm.delete_model(ModelName=name)
    berth.restart_berthd()
    with pytest.raises(ClientError) as ei:
        sm.describe_model(ModelName=name)
    assert bh.error_code(ei.value) == "ValidationException"


def test_kill9_after_create_endpoint_readopts_containers(berth):
    s = uniq()
    model, cfg, ep = "CrashEp-" + s, "CrashEp-" + s + "-cfg", "CrashEp-" + s + "-ep"
    try:
        _kill9_after_create_endpoint(berth, model, cfg, ep)
    finally:
        if not berth.alive():
            berth.start_berthd()
        bh.delete_stack(berth, model, cfg, ep)
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)


def _kill9_after_create_endpoint(berth, model, cfg, ep):
    sm, rt = berth.sm, berth.rt
    rm = sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE,
                         Containers=[bh.container(h, env={"ECHO_MODE": "hostname"}) for h in ("a", "b")],
                         InferenceExecutionConfig={"Mode": "Direct"})
    berth.restart_berthd()
    rc = sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    berth.restart_berthd()
    re_ = sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    # kill -9 right after the acknowledgement; look at the containers from
    # /proc only, so berthd gets no extra time before it dies
    berth.berthd.kill()
    berth.berthd.wait(timeout=10)
    procs_before = container_processes(berth.run_dir)
    berth.note_containers()

    berth.start_berthd()
    bh.wait_until(lambda: "Models" in sm.list_models(), 15, "berthd back")

    dm = sm.describe_model(ModelName=model)
    dc = sm.describe_endpoint_config(EndpointConfigName=cfg)
    assert dm["ModelArn"] == rm["ModelArn"]
    assert dc["EndpointConfigArn"] == rc["EndpointConfigArn"]
    assert dc["ProductionVariants"][0]["ModelName"] == model
    berth.wait_in_service(ep)
    de = sm.describe_endpoint(EndpointName=ep)
    assert de["EndpointArn"] == re_["EndpointArn"]
    assert de["EndpointStatus"] == "InService"
    # The endpoint was created while the router's route subscription was
    # down (the previous berthd had just been killed), so the router learns
    # of it only when it re-subscribes: allow its reconnect back-off
    # (router/routes.h: at most 2 s) plus slack, no more.
    t0 = time.monotonic()

    def invocable():
        resp = rt.invoke_endpoint(EndpointName=ep, Body=b"after restart", TargetContainerHostname="a")
        return resp["Body"].read() == b"a:after restart"
    bh.wait_until(invocable, 3.5, "router to route %s after berthd restart" % ep)
    print("router routed the re-adopted endpoint %.0f ms after berthd answered" % ((time.monotonic() - t0) * 1000))
    for h in ("a", "b"):
        resp = rt.invoke_endpoint(EndpointName=ep, Body=b"after restart", TargetContainerHostname=h)
        assert resp["Body"].read() == h.encode() + b":after restart"

    # the same containers: CreateEndpoint was acknowledged with both running
    # (InService within the grace period), so they must have been re-adopted
    assert len(procs_before) == 2, procs_before
    procs_after = container_processes(berth.run_dir)
    assert procs_after == procs_before, (procs_before, procs_after)
    assert len(bh.runc_list(berth.run_dir)) == 2
    ps = berth_ps(berth)
    for cid in procs_before:
        assert cid in ps, ps

    # a second crash, after the endpoint settled, keeps everything as well
    created = (dm["CreationTime"], dc["CreationTime"], de["CreationTime"])
    berth.berthd.kill()
    berth.berthd.wait(timeout=10)
    # the router keeps serving the last route table while berthd is down
    for h in ("a", "b"):
        resp = rt.invoke_endpoint(EndpointName=ep, Body=b"while down", TargetContainerHostname=h)
        assert resp["Body"].read() == h.encode() + b":while down"
    berth.start_berthd()
    bh.wait_until(lambda: "Models" in sm.list_models(), 15, "berthd back")
    assert (sm.describe_model(ModelName=model)["CreationTime"],
            sm.describe_endpoint_config(EndpointConfigName=cfg)["CreationTime"],
            sm.describe_endpoint(EndpointName=ep)["CreationTime"]) == created
    assert sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
    assert container_processes(berth.run_dir) == procs_before

    # delete works on the re-adopted containers (the caller deletes and
    # checks for leaks)


def test_kill9_after_delete_endpoint(berth):
    """An acknowledged DeleteEndpoint is not undone by a crash, and the
    containers still get stopped."""
    sm = berth.sm
    ids_before = set(bh.shim_ids(berth.run_dir).values())
    st = bh.create_endpoint_stack(sm, "CrashDel-" + uniq(), primary=bh.container(), inst=berth)
    mine = set(bh.shim_ids(berth.run_dir).values()) - ids_before
    assert len(mine) == 1, mine
    sm.delete_endpoint(EndpointName=st[2])
    berth.restart_berthd()

    def gone():
        try:
            d = sm.describe_endpoint(EndpointName=st[2])
            assert d["EndpointStatus"] == "Deleting", d["EndpointStatus"]
            return False
        except ClientError as e:
            assert bh.error_code(e) == "ValidationException"
            return True
    bh.wait_until(gone, 40, "endpoint deleted after crash", interval=0.2)
    bh.wait_until(lambda: not mine & set(bh.shim_ids(berth.run_dir).values()), 20, "its shim gone")
    bh.wait_until(lambda: not mine & {c["id"] for c in bh.runc_list(berth.run_dir)}, 20, "its runc container gone")
    bh.delete_stack(berth, st[0], st[1], None)
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)


def test_repeated_crashes_keep_serving(berth):
    """The control plane works after several quick crashes in a row (the
    socket is re-bound, stale files are handled)."""
    for _ in range(3):
        berth.restart_berthd()
    berth.assert_serving()


def test_sigterm_restart_readopts(berth):
    """A clean stop (SIGTERM) of berthd leaves the containers running
    (DESIGN: shims outlive berthd); the next berthd re-adopts them."""
    st = bh.create_endpoint_stack(berth.sm, "Term-" + uniq(), primary=bh.container(env={"ECHO_MODE": "upper"}),
                                  inst=berth)
    try:
        before = container_processes(berth.run_dir)
        berth.berthd.send_signal(signal.SIGTERM)
        assert berth.berthd.wait(timeout=15) == 0
        assert container_processes(berth.run_dir) == before
        berth.start_berthd()
        bh.wait_until(lambda: "Models" in berth.sm.list_models(), 15, "berthd back")
        assert berth.sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] == "InService"
        assert container_processes(berth.run_dir) == before
        assert berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"q")["Body"].read() == b"Q"
    finally:
        if not berth.alive():
            berth.start_berthd()
        bh.delete_stack(berth, *st)


def test_router_kill9_and_restart(berth):
    st = bh.create_endpoint_stack(berth.sm, "RouterCrash-" + uniq(), primary=bh.container(), inst=berth)
    try:
        berth.router.send_signal(signal.SIGKILL)
        berth.router.wait(timeout=10)
        berth.start_router()

        def invocable():
            return berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"back")["Body"].read() == b"back"
        bh.wait_until(invocable, 3, "the restarted router to route %s" % st[2])
        assert len(bh.shim_ids(berth.run_dir)) >= 1
    finally:
        if berth.router.poll() is not None:
            berth.start_router()
        bh.delete_stack(berth, *st)


def test_corrupt_state_document_is_set_aside(berth):
    """store.h: a corrupt document is logged, renamed NAME.json.corrupt and
    skipped; berthd still starts and everything else is intact."""
    s = uniq()
    good, bad = "Good-" + s, "Bad-" + s
    for n in (good, bad):
        berth.sm.create_model(ModelName=n, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    created = berth.sm.describe_model(ModelName=good)["CreationTime"]
    docs = [os.path.join(root, f) for root, _, files in os.walk(berth.state_dir) for f in files
            if f == bad + ".json"]
    assert len(docs) == 1, docs
    berth.berthd.kill()
    berth.berthd.wait(timeout=10)
    with open(docs[0], "w") as f:
        f.write('{"ModelName": "%s", "ModelArn": ' % bad)      # torn
    berth.start_berthd()
    bh.wait_until(lambda: "Models" in berth.sm.list_models(), 15, "berthd back")
    assert berth.sm.describe_model(ModelName=good)["CreationTime"] == created
    with pytest.raises(ClientError) as ei:
        berth.sm.describe_model(ModelName=bad)
    assert bh.error_code(ei.value) == "ValidationException"
    assert os.path.exists(docs[0] + ".corrupt")
    # the name is usable again
    berth.sm.create_model(ModelName=bad, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    for n in (good, bad):
        berth.sm.delete_model(ModelName=n)
