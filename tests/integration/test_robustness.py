"""Races and odd-but-legal sequences: concurrent creates of one name,
parallel invocations across containers, deleting a model or config an
endpoint still uses (SageMaker allows it), then a berthd crash."""
import threading
import uuid

from botocore.exceptions import ClientError

import berth_helpers as bh


def uniq():
    return uuid.uuid4().hex[:6]


def _parallel(n, fn):
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", fn(i))
        except ClientError as e:
            results[i] = ("error", bh.error_code(e), bh.error_message(e))
        except Exception as e:       # surfaced in the assertion
            results[i] = ("exception", repr(e))
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "a call hung"
    return results


def test_concurrent_create_model_same_name(berth):
    name = "Race-" + uniq()
    res = _parallel(6, lambda i: berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE,
                                                       PrimaryContainer=bh.container(env={"I": str(i)})))
    oks = [r for r in res if r[0] == "ok"]
    assert len(oks) == 1, res
    for r in res:
        if r[0] != "ok":
            assert r[:2] == ("error", "ValidationException") and "already existing" in r[2], r
    assert berth.sm.describe_model(ModelName=name)["ModelArn"] == bh.arn("model", name)
    berth.sm.delete_model(ModelName=name)


def test_concurrent_create_endpoint_same_name(berth):
    s = uniq()
    model, cfg, ep = "RaceEp-" + s, "RaceEp-" + s + "-cfg", "RaceEp-" + s + "-ep"
    berth.sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    shims_before = set(bh.shim_ids(berth.run_dir).values())
    try:
        res = _parallel(4, lambda i: berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg))
        assert len([r for r in res if r[0] == "ok"]) == 1, res
        berth.wait_in_service(ep)
        mine = set(bh.shim_ids(berth.run_dir).values()) - shims_before
        assert len(mine) == 1, "one endpoint, one container expected: %s" % mine
        r = berth.rt.invoke_endpoint(EndpointName=ep, Body=b"x")
        assert r["Body"].read() == b"x"
    finally:
        bh.delete_stack(berth, model, cfg, ep)
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)


def test_parallel_invocations_across_containers(berth):
    st = bh.create_endpoint_stack(berth.sm, "Par-" + uniq(),
                                  containers=[bh.container(h, env={"ECHO_MODE": "hostname"}) for h in "abc"],
                                  mode="Direct", inst=berth)
    try:
        def work(i):
            h = "abc"[i % 3]
            for j in range(20):
                body = b"%d-%d" % (i, j)
                r = berth.rt.invoke_endpoint(EndpointName=st[2], Body=body, TargetContainerHostname=h)
                got = r["Body"].read()
                assert got == h.encode() + b":" + body, (got, body)
            return True
        res = _parallel(9, work)
        assert all(r == ("ok", True) for r in res), res
    finally:
        bh.delete_stack(berth, *st)


def test_endpoint_survives_deleting_its_model_and_config_and_a_crash(berth):
    """SageMaker lets you delete the model and endpoint config an endpoint
    was created from; the endpoint keeps serving, also across a restart."""
    s = uniq()
    st = bh.create_endpoint_stack(berth.sm, "Orph-" + s, primary=bh.container(env={"ECHO_MODE": "upper"}),
                                  inst=berth)
    try:
        berth.sm.delete_endpoint_config(EndpointConfigName=st[1])
        berth.sm.delete_model(ModelName=st[0])
        r = berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"abc")
        assert r["Body"].read() == b"ABC"
        berth.restart_berthd()
        assert berth.sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] == "InService"
        r = berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"def")
        assert r["Body"].read() == b"DEF"
    finally:
        berth.delete_endpoint_and_wait(st[2])
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)
