"""Instances and production variants: InitialInstanceCount
> 1 starts that many instances, least-outstanding-requests balancing, weights
split traffic, X-Amzn-SageMaker-Target-Variant pins one,
X-Amzn-Invoked-Production-Variant names the one that served."""
import collections
import concurrent.futures

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh
import health_helpers as hh


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(extra_berthd=hh.OVERCOMMIT)


TOKEN = {"ECHO_MODE": "hostname", "ECHO_INSTANCE_TOKEN": "1"}


def _who(body):
    return body.split(b":", 1)[0].decode()


def test_two_instances_both_serve(berth):
    cfg, ep = hh.make_endpoint(berth, "v2i", [{"name": "AllTraffic", "count": 2, "env": TOKEN}])
    d = berth.sm.describe_endpoint(EndpointName=ep)
    pv = d["ProductionVariants"][0]
    assert pv["CurrentInstanceCount"] == 2 and pv["DesiredInstanceCount"] == 2
    rows = berth.ps(ep)
    assert sorted(r["instance"] for r in rows) == [0, 1]
    # concurrent load: least outstanding requests spreads it over both
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: hh.invoke(berth, ep), range(200)))
    assert all(a[0] == 200 for a in answers)
    counts = collections.Counter(_who(a[2]) for a in answers)
    print("\n2 instances, 200 concurrent calls: %s" % dict(counts))
    assert len(counts) == 2 and min(counts.values()) >= 40, counts
    # sequential calls also alternate (ties go round-robin)
    seq = collections.Counter(_who(hh.invoke(berth, ep)[2]) for _ in range(20))
    assert len(seq) == 2, seq
    assert all(a[1]["x-amzn-invoked-production-variant"] == "AllTraffic" for a in answers[:5])
    hh.cleanup(berth, cfg, ep)


def test_weights_split_and_target_variant(berth):
    cfg, ep = hh.make_endpoint(berth, "vw", [
        {"name": "A", "weight": 1, "env": {"ECHO_MODE": "upper"}},
        {"name": "B", "weight": 3, "env": {"ECHO_MODE": "echo"}}])
    counts = collections.Counter()
    for _ in range(400):
        st, h, body = hh.invoke(berth, ep, b"abc")
        assert st == 200
        v = h["x-amzn-invoked-production-variant"]
        assert body == (b"ABC" if v == "A" else b"abc")
        counts[v] += 1
    print("\nweights 1:3 over 400 calls: %s" % dict(counts))
    assert 70 <= counts["A"] <= 130 and 270 <= counts["B"] <= 330, counts
    for v in ("A", "B"):
        for _ in range(10):
            st, h, _ = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Target-Variant": v})
            assert st == 200 and h["x-amzn-invoked-production-variant"] == v
    r = berth.rt.invoke_endpoint(EndpointName=ep, Body=b"q", TargetVariant="A")
    assert r["InvokedProductionVariant"] == "A" and r["Body"].read() == b"Q"
    with pytest.raises(ClientError) as ei:
        berth.rt.invoke_endpoint(EndpointName=ep, Body=b"q", TargetVariant="Nope")
    assert bh.error_code(ei.value) == "ValidationError"
    assert "Nope" in bh.error_message(ei.value)
    d = berth.sm.describe_endpoint(EndpointName=ep)
    assert [(p["VariantName"], p["CurrentWeight"], p["CurrentInstanceCount"]) for p in d["ProductionVariants"]] \
        == [("A", 1.0, 1), ("B", 3.0, 1)]
    hh.cleanup(berth, cfg, ep)


def test_all_zero_weights_refused(berth):
    berth.sm.create_model(ModelName="vz", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    with pytest.raises(ClientError) as ei:
        berth.sm.create_endpoint_config(EndpointConfigName="vz-cfg", ProductionVariants=[
            {"VariantName": "A", "ModelName": "vz", "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium",
             "InitialVariantWeight": 0},
            {"VariantName": "B", "ModelName": "vz", "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium",
             "InitialVariantWeight": 0}])
    assert bh.error_code(ei.value) == "ValidationException"
    berth.sm.delete_model(ModelName="vz")


def test_old_flat_record_still_loads(berth):
    """A record written before instances (flat containers[], no variant or
    instance members) loads, is re-adopted and serves."""
    import glob
    import json
    import os
    import signal
    cfg, ep = hh.make_endpoint(berth, "vold", [{"name": "AllTraffic", "count": 1}])
    berth.berthd.send_signal(signal.SIGKILL)
    berth.berthd.wait(timeout=10)
    path = glob.glob(os.path.join(berth.state_dir, "endpoints", ep + ".json"))[0]
    doc = json.load(open(path))
    for c in doc["Berth"]["containers"]:
        for k in ("variant", "instance", "restarts"):
            c.pop(k, None)
    json.dump(doc, open(path, "w"))
    berth.start_berthd()
    bh.wait_until(lambda: "Models" in berth.sm.list_models(), 15, "berthd back")
    d = berth.sm.describe_endpoint(EndpointName=ep)
    assert d["EndpointStatus"] == "InService"
    assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    bh.wait_until(lambda: hh.invoke(berth, ep)[0] == 200, 10, "old record serves")
    hh.cleanup(berth, cfg, ep)
