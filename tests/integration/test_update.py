"""UpdateEndpoint (blue/green with roll-back) and
UpdateEndpointWeightsAndCapacities."""
import collections
import time

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh
import health_helpers as hh


@pytest.fixture(scope="module")
def berth():
    # a short grace: Update* answer while Updating, so the test sees it
    # and a short health deadline: a new container that never answers /ping
    # 200 fails the update after 4 s
    yield from bh.serve(grace_ms=300, extra_berthd=hh.OVERCOMMIT + ["--health-timeout-ms", "4000"])


def _cleanup(inst, ep, configs):
    inst.note_containers()
    inst.delete_endpoint_and_wait(ep)
    for c in configs:
        try:
            inst.sm.delete_endpoint_config(EndpointConfigName=c)
        except ClientError:
            pass
    for m in inst.sm.list_models(MaxResults=100)["Models"]:
        inst.sm.delete_model(ModelName=m["ModelName"])


def test_update_to_working_config_under_load(berth):
    ep = hh.uniq("uw") + "-ep"
    old = hh.make_config(berth, "uw-old", {"ECHO_MODE": "echo"}, count=2)
    new = hh.make_config(berth, "uw-new", {"ECHO_MODE": "upper"}, count=2)
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=old)
    hh.wait_status(berth, ep, "InService", 60)
    old_ids = {r["id"] for r in berth.ps(ep)}
    load = hh.Load(berth, ep, threads=2, total=100000, pause=0.005).start()
    time.sleep(0.5)
    seen = []
    t0 = time.time()
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=new)
    while time.time() - t0 < 30:
        d = berth.sm.describe_endpoint(EndpointName=ep)
        seen.append(d["EndpointStatus"])
        if d["EndpointStatus"] == "InService":
            break
        time.sleep(0.1)
    berth.note_containers()
    time.sleep(0.5)
    sent, failed = load.stop()
    print("\nUpdateEndpoint under light load: failed/sent = %d/%d, took %.1f s, statuses %s"
          % (failed, sent, time.time() - t0, sorted(set(seen))))
    assert failed == 0, load.failures
    assert seen[-1] == "InService"
    d = berth.sm.describe_endpoint(EndpointName=ep)
    assert d["EndpointConfigName"] == new and "FailureReason" not in d
    assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert hh.invoke(berth, ep, b"abc")[2] == b"ABC"
    now_ids = {r["id"] for r in berth.ps(ep)}
    assert len(now_ids) == 2 and not (now_ids & old_ids)
    assert "Updating" in seen
    _cleanup(berth, ep, [old, new])


def test_update_to_broken_config_rolls_back(berth):
    ep = hh.uniq("ub") + "-ep"
    old = hh.make_config(berth, "ub-old", {"ECHO_MODE": "echo"}, count=1)
    bad = hh.make_config(berth, "ub-bad", {"ECHO_EXIT_AT_START": "1"}, count=1)
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=old)
    hh.wait_status(berth, ep, "InService", 60)
    load = hh.Load(berth, ep, threads=2, total=100000, pause=0.005).start()
    time.sleep(0.3)
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=bad)
    d = hh.wait_status(berth, ep, "InService", 60)
    berth.note_containers()
    time.sleep(0.5)
    sent, failed = load.stop()
    print("\nUpdateEndpoint to a broken config: failed/sent = %d/%d; FailureReason: %s"
          % (failed, sent, d.get("FailureReason")))
    assert failed == 0, load.failures
    assert d["EndpointConfigName"] == old
    assert "rolled back" in d["FailureReason"] and "exited with code 3" in d["FailureReason"], d
    assert hh.invoke(berth, ep, b"abc")[2] == b"abc"
    assert len(berth.ps(ep)) == 1
    _cleanup(berth, ep, [old, bad])


def test_update_weights_and_capacities(berth):
    cfg, ep = hh.make_endpoint(berth, "uc", [
        {"name": "A", "weight": 1, "env": {"ECHO_MODE": "upper"}},
        {"name": "B", "weight": 1, "env": {"ECHO_MODE": "echo"}}])
    sm = berth.sm
    with pytest.raises(ClientError) as ei:
        sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0}, {"VariantName": "B", "DesiredWeight": 0}])
    assert bh.error_code(ei.value) == "ValidationException"
    with pytest.raises(ClientError) as ei:
        sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
            {"VariantName": "Nope", "DesiredWeight": 1}])
    assert bh.error_code(ei.value) == "ValidationException" and "Nope" in bh.error_message(ei.value)
    for bad in (0, 1000):
        st, _, _, doc = bh.control_raw(berth.port, "UpdateEndpointWeightsAndCapacities", {
            "EndpointName": ep, "DesiredWeightsAndCapacities": [{"VariantName": "A", "DesiredInstanceCount": bad}]})
        assert st == 400 and doc["__type"] == "ValidationException", doc
    # weights: all traffic to B
    sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0}, {"VariantName": "B", "DesiredWeight": 2}])
    hh.wait_status(berth, ep, "InService", 30)
    counts = collections.Counter(hh.invoke(berth, ep)[1]["x-amzn-invoked-production-variant"] for _ in range(50))
    assert counts == {"B": 50}, counts
    d = sm.describe_endpoint(EndpointName=ep)
    assert [(p["VariantName"], p["CurrentWeight"]) for p in d["ProductionVariants"]] == [("A", 0.0), ("B", 2.0)]
    # capacity: B grows to 3 instances, then shrinks to 1
    sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
        {"VariantName": "B", "DesiredInstanceCount": 3}])
    d = hh.wait_status(berth, ep, "InService", 60)
    berth.note_containers()
    b = [p for p in d["ProductionVariants"] if p["VariantName"] == "B"][0]
    assert b["CurrentInstanceCount"] == 3 and b["DesiredInstanceCount"] == 3, d
    assert len([r for r in berth.ps(ep) if r["variant"] == "B"]) == 3
    sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
        {"VariantName": "B", "DesiredInstanceCount": 1}])
    with pytest.raises(ClientError) as ei:  # not InService while draining the surplus
        sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
            {"VariantName": "B", "DesiredWeight": 1}])
    assert "Cannot update in-progress endpoint" in bh.error_message(ei.value)
    d = hh.wait_status(berth, ep, "InService", 60)
    b = [p for p in d["ProductionVariants"] if p["VariantName"] == "B"][0]
    assert b["CurrentInstanceCount"] == 1, d
    assert len([r for r in berth.ps(ep) if r["variant"] == "B"]) == 1
    assert hh.invoke(berth, ep, b"x")[0] == 200
    _cleanup(berth, ep, [cfg])


def test_berthd_kill9_during_update_resumes_and_rolls_back(berth):
    """An update interrupted by kill -9 berthd is cleaned up and rolled out
    again by the restarted berthd; the old instance serves throughout."""
    import signal
    ep = hh.uniq("uk") + "-ep"
    old = hh.make_config(berth, "uk-old", {"ECHO_MODE": "echo"}, count=1)
    sick = hh.make_config(berth, "uk-sick", {"ECHO_PING_STATUS": "503"}, count=1)
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=old)
    hh.wait_status(berth, ep, "InService", 60)
    old_ids = {r["id"] for r in berth.ps(ep)}
    load = hh.Load(berth, ep, threads=2, total=100000, pause=0.005).start()
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=sick)
    bh.wait_until(lambda: any(r["health"] == "starting" for r in berth.ps(ep)), 10,
                  "the new container started")
    berth.note_containers()
    berth.berthd.send_signal(signal.SIGKILL)
    berth.berthd.wait(timeout=10)
    berth.start_berthd()
    bh.wait_until(lambda: "Models" in berth.sm.list_models(), 15, "berthd back")
    assert berth.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "Updating"
    d = hh.wait_status(berth, ep, "InService", 60)
    berth.note_containers()
    sent, failed = load.stop()
    print("\nkill -9 berthd during UpdateEndpoint: failed/sent = %d/%d; FailureReason: %s"
          % (failed, sent, d.get("FailureReason")))
    assert failed == 0, load.failures
    assert d["EndpointConfigName"] == old and "rolled back" in d["FailureReason"], d
    assert {r["id"] for r in berth.ps(ep)} == old_ids
    _cleanup(berth, ep, [old, sick])
