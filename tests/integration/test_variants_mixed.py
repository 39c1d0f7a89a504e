"""Production variants of different modes on one endpoint: each variant is
invoked by its own model's mode (single container, Direct, Serial,
MultiModel), chosen by weight or by TargetVariant; the target headers of
one mode on a variant of another are refused with SageMaker's error; the
per-variant routing survives kill -9 of berthd, a record written before
modes were per variant, and UpdateEndpoint to a config of other modes.

Every call goes through the real boto3 clients (inst.sm / inst.rt), signed;
the echo containers show who answered: ECHO_MODE=hostname answers
"<hostname>:" + body, upper upper-cases, so a Serial variant of [upper,
hostname] answers "second:ABC" for "abc" only when both steps ran."""
import collections
import json
import os
import re
import signal
import tarfile
import io

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh
import health_helpers as hh

BUCKET = "mixed-bucket"
TYPE = "ml.t2.medium"


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(extra_berthd=hh.OVERCOMMIT)


def write_artifact(root, key, text):
    path = os.path.join(root, BUCKET, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("model.txt")
        info.size = len(text)
        t.addfile(info, io.BytesIO(text))


def make_models(inst, base):
    """single (upper), Direct [left, right] (hostname), Serial [first
    (upper), second (hostname)], MultiModel (echo's model API). Returns
    {kind: model name}."""
    sm = inst.sm
    names = {k: "%s-%s" % (base, k) for k in ("one", "dir", "ser", "mm")}
    sm.create_model(ModelName=names["one"], ExecutionRoleArn=bh.ROLE,
                    PrimaryContainer=bh.container(env={"ECHO_MODE": "upper"}))
    sm.create_model(ModelName=names["dir"], ExecutionRoleArn=bh.ROLE,
                    InferenceExecutionConfig={"Mode": "Direct"},
                    Containers=[bh.container("left", env={"ECHO_MODE": "hostname"}),
                                bh.container("right", env={"ECHO_MODE": "hostname"})])
    sm.create_model(ModelName=names["ser"], ExecutionRoleArn=bh.ROLE,
                    Containers=[bh.container("first", env={"ECHO_MODE": "upper"}),
                                bh.container("second", env={"ECHO_MODE": "hostname"})])
    write_artifact(inst.object_root, "mixed/model-1.tar.gz", b"m-1")
    sm.create_model(ModelName=names["mm"], ExecutionRoleArn=bh.ROLE, PrimaryContainer={
        "Image": bh.echo_rootfs(), "Mode": "MultiModel", "ModelDataUrl": "s3://%s/mixed/" % BUCKET,
        "Environment": {"SAGEMAKER_MULTI_MODEL": "true"}})
    return names


def variant(name, model, weight):
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1, "InstanceType": TYPE,
            "InitialVariantWeight": weight}


@pytest.fixture(scope="module")
def mixed(berth):
    base = hh.uniq("mix")
    models = make_models(berth, base)
    cfg = base + "-cfg"
    berth.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[
        variant("one", models["one"], 1), variant("dir", models["dir"], 1),
        variant("ser", models["ser"], 2), variant("mm", models["mm"], 0)])
    ep = base + "-ep"
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    hh.wait_status(berth, ep, "InService", 60)
    berth.note_containers()
    yield {"ep": ep, "cfg": cfg, "models": models, "base": base}
    berth.delete_endpoint_and_wait(ep)
    for c in (cfg, base + "-cfg2"):
        try:
            berth.sm.delete_endpoint_config(EndpointConfigName=c)
        except ClientError:
            pass
    for m in models.values():
        berth.sm.delete_model(ModelName=m)
    bh.assert_no_leaks(berth)


def invoke(inst, ep, body=b"abc", **kw):
    r = inst.rt.invoke_endpoint(EndpointName=ep, Body=body, ContentType="text/plain", **kw)
    return r["InvokedProductionVariant"], r["Body"].read()


def refused(inst, ep, status=400, code="ValidationError", **kw):
    with pytest.raises(ClientError) as ei:
        inst.rt.invoke_endpoint(EndpointName=ep, Body=b"abc", ContentType="text/plain", **kw)
    e = ei.value
    assert bh.error_code(e) == code, (bh.error_code(e), bh.error_message(e))
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status
    return bh.error_message(e)


def check_each_variant(inst, ep):
    """Every variant, pinned, answers in its own mode."""
    assert invoke(inst, ep, TargetVariant="one") == ("one", b"ABC")
    assert invoke(inst, ep, TargetVariant="dir", TargetContainerHostname="left") == ("dir", b"left:abc")
    assert invoke(inst, ep, TargetVariant="dir", TargetContainerHostname="right") == ("dir", b"right:abc")
    assert invoke(inst, ep, TargetVariant="ser") == ("ser", b"second:ABC")
    v, body = invoke(inst, ep, TargetVariant="mm", TargetModel="model-1.tar.gz")
    assert v == "mm" and re.fullmatch(rb"[0-9a-f]+:m-1:abc", body), body


def test_each_variant_runs_in_its_own_mode(berth, mixed):
    ep = mixed["ep"]
    check_each_variant(berth, ep)
    # the route table carries one mode per variant
    table = berth.route_table()
    e = [x for x in table["endpoints"] if x["name"] == ep][0]
    assert "mode" not in e
    assert [(v["name"], v["mode"]) for v in e["variants"]] == \
        [("one", "Single"), ("dir", "Direct"), ("ser", "Serial"), ("mm", "MultiModel")]
    # each variant's instance has its own model's containers
    rows = berth.ps(ep)
    by_variant = collections.defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r["hostname"])
    assert {k: sorted(v) for k, v in by_variant.items()} == {
        "one": ["primary"], "dir": ["left", "right"], "ser": ["first", "second"], "mm": ["primary"]}, rows
    d = berth.sm.describe_endpoint(EndpointName=ep)
    assert [(p["VariantName"], len(p["DeployedImages"]), p["CurrentWeight"], p["CurrentInstanceCount"])
            for p in d["ProductionVariants"]] == \
        [("one", 1, 1.0, 1), ("dir", 2, 1.0, 1), ("ser", 2, 2.0, 1), ("mm", 1, 0.0, 1)]


def test_weights_choose_the_variant_then_its_mode(berth, mixed):
    """Weights 1:1:2:0. Without targets the Direct variant refuses (it needs
    a container), the others answer in their own mode; mm is never chosen."""
    ep = mixed["ep"]
    counts = collections.Counter()
    for _ in range(400):
        try:
            v, body = invoke(berth, ep)
        except ClientError as e:
            assert bh.error_code(e) == "ValidationError"
            assert "is in Direct invocation mode: the request must name its container" in bh.error_message(e)
            counts["dir"] += 1
            continue
        assert (v, body) in (("one", b"ABC"), ("ser", b"second:ABC")), (v, body)
        counts[v] += 1
    print("\nweights 1:1:2:0 over 400 calls: %s" % dict(counts))
    assert set(counts) == {"one", "dir", "ser"}, counts
    assert 60 <= counts["one"] <= 140 and 60 <= counts["dir"] <= 140 and 150 <= counts["ser"] <= 250, counts


def test_wrong_kind_of_target_is_refused(berth, mixed):
    ep = mixed["ep"]
    msg = refused(berth, ep, TargetVariant="ser", TargetContainerHostname="first")
    assert msg == ("The X-Amzn-SageMaker-Target-Container-Hostname header can only be used with a production "
                   "variant in Direct invocation mode; variant ser of endpoint %s is in Serial mode. Name a "
                   "Direct variant (e.g. dir) in the X-Amzn-SageMaker-Target-Variant header." % ep)
    msg = refused(berth, ep, TargetVariant="one", TargetModel="model-1.tar.gz")
    assert msg == ("Variant one of endpoint %s is not a multi-model variant and does not support target model "
                   "header. Name the multi-model variant (mm) in the X-Amzn-SageMaker-Target-Variant header."
                   % ep)
    msg = refused(berth, ep, TargetVariant="dir", TargetContainerHostname="first")
    assert msg == ("Container hostname first given in the X-Amzn-SageMaker-Target-Container-Hostname header is "
                   "not a container of endpoint %s (its containers: left, right)." % ep)
    msg = refused(berth, ep, TargetVariant="mm")
    assert "must name its model in the X-Amzn-SageMaker-Target-Model header" in msg
    msg = refused(berth, ep, TargetVariant="dir")
    assert "(one of: left, right)" in msg
    # nothing changed: every variant still serves
    check_each_variant(berth, ep)
    berth.assert_serving()


def test_two_multi_model_variants_refused(berth, mixed):
    """berth keeps one multi-model cache per endpoint: a config with two
    MultiModel variants is refused at CreateEndpoint and UpdateEndpoint,
    and nothing is created or changed."""
    mm = mixed["models"]["mm"]
    cfg = mixed["base"] + "-two-mm"
    berth.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[
        variant("m1", mm, 1), variant("m2", mm, 1)])
    want = ("Endpoint configuration \"%s\" has two production variants whose models are multi-model (Mode "
            "MultiModel): m1 and m2. berth serves at most one multi-model variant per endpoint; put the other "
            "in an endpoint of its own." % cfg)
    with pytest.raises(ClientError) as ei:
        berth.sm.create_endpoint(EndpointName=cfg + "-ep", EndpointConfigName=cfg)
    assert bh.error_code(ei.value) == "ValidationException" and bh.error_message(ei.value) == want
    assert cfg + "-ep" not in [e["EndpointName"] for e in berth.sm.list_endpoints()["Endpoints"]]
    with pytest.raises(ClientError) as ei:
        berth.sm.update_endpoint(EndpointName=mixed["ep"], EndpointConfigName=cfg)
    assert bh.error_code(ei.value) == "ValidationException" and bh.error_message(ei.value) == want
    d = berth.sm.describe_endpoint(EndpointName=mixed["ep"])
    assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == mixed["cfg"]
    berth.sm.delete_endpoint_config(EndpointConfigName=cfg)
    check_each_variant(berth, mixed["ep"])


def test_kill_9_keeps_per_variant_routing(berth, mixed):
    ep = mixed["ep"]
    before = sorted((r["id"], r["variant"]) for r in berth.ps(ep))
    berth.restart_berthd()
    assert sorted((r["id"], r["variant"]) for r in berth.ps(ep)) == before  # re-adopted, none restarted
    check_each_variant(berth, ep)


def test_record_of_the_old_format_still_loads(berth, mixed):
    """A record written with one endpoint mode (variant 0's, Berth.mode)
    and variants without one, as berthd wrote before: after a restart each
    variant routes by its own model again, and the record says so."""
    ep = mixed["ep"]
    berth.berthd.send_signal(signal.SIGKILL)
    berth.berthd.wait(timeout=10)
    path = os.path.join(berth.state_dir, "endpoints", ep + ".json")
    doc = json.load(open(path))
    for v in doc["Berth"]["production_variants"]:
        assert v.pop("Mode")
    doc["Berth"]["mode"] = "Single"
    json.dump(doc, open(path, "w"))
    berth.start_berthd()
    bh.wait_until(lambda: "Models" in berth.sm.list_models(), 15, "berthd back")
    assert berth.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
    check_each_variant(berth, ep)
    doc = json.load(open(path))
    assert [v.get("Mode") for v in doc["Berth"]["production_variants"]] == \
        ["Single", "Direct", "Serial", "MultiModel"]
    berthd_log = dict(berth.log_text())["berthd"]
    assert "variant ser routes in Serial mode (a record written before modes were per variant)" in berthd_log


def test_update_to_a_config_of_other_modes(berth, mixed):
    """UpdateEndpoint to variants whose modes differ from the old ones':
    'one' becomes the Serial model, 'ser' the Direct one; mm goes."""
    ep, models = mixed["ep"], mixed["models"]
    cfg2 = mixed["base"] + "-cfg2"
    berth.sm.create_endpoint_config(EndpointConfigName=cfg2, ProductionVariants=[
        variant("one", models["ser"], 1), variant("ser", models["dir"], 1)])
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    hh.wait_status(berth, ep, "InService", 60)
    berth.note_containers()
    assert invoke(berth, ep, TargetVariant="one") == ("one", b"second:ABC")
    assert invoke(berth, ep, TargetVariant="ser", TargetContainerHostname="right") == ("ser", b"right:abc")
    msg = refused(berth, ep, TargetVariant="one", TargetContainerHostname="first")
    assert "variant one of endpoint %s is in Serial mode. Name a Direct variant (e.g. ser)" % ep in msg
    msg = refused(berth, ep, TargetVariant="mm", TargetModel="model-1.tar.gz")
    assert msg.startswith("Variant mm not found for endpoint %s" % ep), msg
    msg = refused(berth, ep, TargetModel="model-1.tar.gz", TargetVariant="one")
    assert msg == "Endpoint %s is not a multi-model endpoint and does not support target model header." % ep
    table = berth.route_table()
    e = [x for x in table["endpoints"] if x["name"] == ep][0]
    assert [(v["name"], v["mode"]) for v in e["variants"]] == [("one", "Serial"), ("ser", "Direct")]
    d = berth.sm.describe_endpoint(EndpointName=ep)
    assert d["EndpointConfigName"] == cfg2
    assert [(p["VariantName"], len(p["DeployedImages"])) for p in d["ProductionVariants"]] == [("one", 2), ("ser", 2)]
