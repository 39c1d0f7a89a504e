"""The walking skeleton end to end with the real boto3:
Direct multi-container endpoint, single-container endpoint, ModelDataUrl,
FailureReason, delete everything, nothing leaked.

Tests in this module delete what they create, so that the whole-instance
leak check after "delete everything" is meaningful.
"""
import datetime
import io
import os
import tarfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh


def uniq():
    return uuid.uuid4().hex[:6]


def read_body(resp):
    return resp["Body"].read()


def expect_missing(call, message):
    with pytest.raises(ClientError) as ei:
        call()
    assert bh.error_code(ei.value) == "ValidationException", ei.value.response
    assert bh.error_message(ei.value) == message
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_direct_three_containers_full_lifecycle(berth):
    sm, rt = berth.sm, berth.rt
    s = uniq()
    model = "SkelDirect-" + s            # mixed case: the ARN lower-cases it
    cfg = "SkelDirectCfg-" + s
    ep = "SkelDirectEp-" + s
    env = {"ECHO_MODE": "hostname"}
    images = {"a": bh.echo_rootfs(), "b": bh.echo_tarball(), "c": bh.echo_rootfs()}

    r = sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE,
                        Containers=[{"ContainerHostname": h, "Image": images[h], "Environment": env}
                                    for h in ("a", "b", "c")],
                        InferenceExecutionConfig={"Mode": "Direct"})
    assert r["ModelArn"] == bh.arn("model", model) == \
        "arn:aws:sagemaker:us-east-1:000000000000:model/skeldirect-" + s

    r = sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "Blue", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    assert r["EndpointConfigArn"] == bh.arn("endpoint-config", cfg)

    t0 = time.monotonic()
    r = sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    t_ack = time.monotonic() - t0
    assert r["EndpointArn"] == bh.arn("endpoint", ep)
    berth.wait_in_service(ep)
    print("CreateEndpoint acknowledged after %.1f ms; InService after %.1f ms"
          % (t_ack * 1000, (time.monotonic() - t0) * 1000))

    # -- invoke each container by hostname --
    for h in ("a", "b", "c"):
        payload = b"payload for " + h.encode() + bytes(range(256))
        resp = rt.invoke_endpoint(EndpointName=ep, Body=payload, ContentType="application/x-berth-test",
                                  TargetContainerHostname=h)
        assert read_body(resp) == h.encode() + b":" + payload
        assert resp["ContentType"] == "application/x-berth-test"
        assert resp["InvokedProductionVariant"] == "Blue"
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    # keep-alive / pooled connections: many in a row, interleaved
    for i in range(30):
        h = "abc"[i % 3]
        resp = rt.invoke_endpoint(EndpointName=ep, Body=b"%d" % i, ContentType="text/plain",
                                  TargetContainerHostname=h)
        assert read_body(resp) == h.encode() + b":%d" % i

    # -- describe / list --
    dm = sm.describe_model(ModelName=model)
    assert dm["ModelName"] == model
    assert dm["ModelArn"] == bh.arn("model", model)
    assert isinstance(dm["CreationTime"], datetime.datetime)
    assert abs(dm["CreationTime"].timestamp() - time.time()) < 120
    assert dm["ExecutionRoleArn"] == bh.ROLE
    assert dm["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert "PrimaryContainer" not in dm
    assert [c["ContainerHostname"] for c in dm["Containers"]] == ["a", "b", "c"]
    for c in dm["Containers"]:
        assert c["Image"] == images[c["ContainerHostname"]]
        assert c["Environment"] == env

    lm = sm.list_models(NameContains=s)["Models"]
    assert [m["ModelName"] for m in lm] == [model]
    assert lm[0]["ModelArn"] == dm["ModelArn"]
    assert lm[0]["CreationTime"] == dm["CreationTime"]
    assert model in [m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]]

    dc = sm.describe_endpoint_config(EndpointConfigName=cfg)
    assert dc["EndpointConfigName"] == cfg
    assert dc["EndpointConfigArn"] == bh.arn("endpoint-config", cfg)
    assert isinstance(dc["CreationTime"], datetime.datetime)
    pv = dc["ProductionVariants"]
    assert len(pv) == 1
    assert pv[0]["VariantName"] == "Blue"
    assert pv[0]["ModelName"] == model
    assert pv[0]["InitialInstanceCount"] == 1
    assert pv[0]["InstanceType"] == "ml.m5.large"
    assert pv[0]["InitialVariantWeight"] == 1.0
    lc = sm.list_endpoint_configs(NameContains=s)["EndpointConfigs"]
    assert [(c["EndpointConfigName"], c["EndpointConfigArn"]) for c in lc] == [(cfg, dc["EndpointConfigArn"])]
    assert lc[0]["CreationTime"] == dc["CreationTime"]

    de = sm.describe_endpoint(EndpointName=ep)
    assert de["EndpointName"] == ep
    assert de["EndpointArn"] == bh.arn("endpoint", ep)
    assert de["EndpointConfigName"] == cfg
    assert de["EndpointStatus"] == "InService"
    assert "FailureReason" not in de
    assert isinstance(de["CreationTime"], datetime.datetime)
    assert isinstance(de["LastModifiedTime"], datetime.datetime)
    assert de["LastModifiedTime"] >= de["CreationTime"] >= dm["CreationTime"]
    assert de["ProductionVariants"][0]["VariantName"] == "Blue"
    assert de["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    le = sm.list_endpoints(NameContains=s)["Endpoints"]
    assert [(e["EndpointName"], e["EndpointArn"], e["EndpointStatus"]) for e in le] == \
        [(ep, de["EndpointArn"], "InService")]
    assert le[0]["CreationTime"] == de["CreationTime"]

    # three containers really run under this instance's runc root
    running = [c for c in bh.runc_list(berth.run_dir) if c["status"] == "running"]
    assert len(running) == 3, running
    assert len(bh.shim_pids(berth.run_dir)) == 3

    # -- delete everything --
    sm.delete_endpoint(EndpointName=ep)
    berth.wait_endpoint_gone(ep)
    sm.delete_endpoint_config(EndpointConfigName=cfg)
    sm.delete_model(ModelName=model)

    expect_missing(lambda: sm.describe_endpoint(EndpointName=ep),
                   'Could not find endpoint "%s".' % bh.arn("endpoint", ep))
    expect_missing(lambda: sm.describe_endpoint_config(EndpointConfigName=cfg),
                   'Could not find endpoint configuration "%s".' % bh.arn("endpoint-config", cfg))
    expect_missing(lambda: sm.describe_model(ModelName=model),
                   'Could not find model "%s".' % bh.arn("model", model))
    assert sm.list_models(NameContains=s)["Models"] == []
    assert sm.list_endpoint_configs(NameContains=s)["EndpointConfigs"] == []
    assert sm.list_endpoints(NameContains=s)["Endpoints"] == []

    # nothing left: no shim, no runc container, no mount, no cgroup
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)
    berth.assert_serving()


def test_single_container_primary_no_target_header(berth):
    sm, rt = berth.sm, berth.rt
    s = uniq()
    stack = bh.create_endpoint_stack(sm, "Single-" + s, primary=bh.container(), inst=berth)
    try:
        model, cfg, ep = stack
        for ct, payload in (("text/csv", b"1,2,3\n4,5,6\n"), ("application/json", b'{"x": [1, 2]}'),
                            ("application/octet-stream", os.urandom(100000))):
            resp = rt.invoke_endpoint(EndpointName=ep, Body=payload, ContentType=ct)
            assert read_body(resp) == payload
            assert resp["ContentType"] == ct
            assert resp["InvokedProductionVariant"] == "AllTraffic"
        # empty body
        resp = rt.invoke_endpoint(EndpointName=ep, Body=b"", ContentType="text/plain")
        assert read_body(resp) == b""

        dm = sm.describe_model(ModelName=model)
        assert dm["PrimaryContainer"]["Image"] == bh.echo_rootfs()
        assert "Containers" not in dm or len(dm["Containers"]) <= 1
        ps = berth.cli("ps")
        assert ps.returncode == 0, ps.stderr
    finally:
        bh.delete_stack(berth, *stack)


def test_primary_container_hostname_is_primary(berth):
    """CONTRACT §2: a PrimaryContainer's hostname is `primary`."""
    s = uniq()
    stack = bh.create_endpoint_stack(berth.sm, "Prim-" + s,
                                     primary=bh.container(env={"ECHO_MODE": "hostname"}), inst=berth)
    try:
        resp = berth.rt.invoke_endpoint(EndpointName=stack[2], Body=b"x", ContentType="text/plain")
        assert read_body(resp) == b"primary:x"
    finally:
        bh.delete_stack(berth, *stack)


def _model_tarball(path, files):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))


@pytest.mark.parametrize("scheme", ["s3", "file"])
def test_model_data_url_is_unpacked_into_the_container(berth, scheme):
    s = uniq()
    content = b"weights for %s via %s\n" % (s.encode(), scheme.encode())
    if scheme == "s3":
        bucket = "bucket-" + s
        _model_tarball(os.path.join(berth.object_root, bucket, "m", "model.tar.gz"),
                       {"weights.txt": content, "sub/other.bin": b"\0\1\2"})
        url = "s3://%s/m/model.tar.gz" % bucket
    else:
        path = os.path.join(berth.object_root, "local-" + s, "model.tar.gz")
        _model_tarball(path, {"weights.txt": content})
        url = "file://" + path
    env = {"ECHO_MODE": "model", "ECHO_MODEL_FILE": "weights.txt"}
    stack = bh.create_endpoint_stack(berth.sm, "Data-%s-%s" % (scheme, s),
                                     primary=bh.container(env=env, model_data_url=url), inst=berth)
    try:
        resp = berth.rt.invoke_endpoint(EndpointName=stack[2], Body=b"ignored", ContentType="text/plain")
        assert read_body(resp) == content
        dm = berth.sm.describe_model(ModelName=stack[0])
        assert dm["PrimaryContainer"]["ModelDataUrl"] == url
    finally:
        bh.delete_stack(berth, *stack)


def test_failure_reason_quotes_container_stderr(berth):
    sm = berth.sm
    s = uniq()
    stack = bh.create_endpoint_stack(sm, "Fails-" + s,
                                     primary=bh.container(env={"ECHO_EXIT_AT_START": "1"}),
                                     wait=False, inst=berth)
    try:
        ep = stack[2]

        def failed():
            d = sm.describe_endpoint(EndpointName=ep)
            assert d["EndpointStatus"] in ("Creating", "Failed"), d["EndpointStatus"]
            return d if d["EndpointStatus"] == "Failed" else None
        d = bh.wait_until(failed, 20, "endpoint %s Failed" % ep, interval=0.2)
        assert "echo: ECHO_EXIT_AT_START=1, exiting with status 3" in d["FailureReason"], d["FailureReason"]
        # the waiter reports the failure instead of waiting
        with pytest.raises(Exception) as ei:
            sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        assert "Failed" in str(ei.value) or "failure" in str(ei.value).lower()
        # invoking a Failed endpoint is a ValidationError, not a hang or a 5xx
        with pytest.raises(ClientError) as ei:
            berth.rt.invoke_endpoint(EndpointName=ep, Body=b"x", ContentType="text/plain")
        assert bh.error_code(ei.value) == "ValidationError"
    finally:
        bh.delete_stack(berth, *stack)
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)


def test_leak_check_sees_a_live_endpoint(berth):
    """The leak check itself can fail: with an endpoint running it reports
    the shim, the runc container and the cgroups; after the delete, none."""
    stack = bh.create_endpoint_stack(berth.sm, "LeakSelf-" + uniq(), primary=bh.container(), inst=berth)
    try:
        problems = "\n".join(berth.leaks(berthd_pid=berth.berthd.pid))
        assert "berth-shim processes still running" in problems, problems
        assert "runc containers still present" in problems, problems
        assert "cgroups still present" in problems and stack[2].lower() in problems.lower(), problems
    finally:
        bh.delete_stack(berth, *stack)
    bh.assert_no_leaks(berth, berthd_pid=berth.berthd.pid)


def test_list_paging_sorting_and_filters(berth):
    sm = berth.sm
    s = uniq()
    names = ["List%s-%d" % (s, i) for i in range(5)]
    for n in names:                      # created in this order: CreationTime ascending
        sm.create_model(ModelName=n, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
        time.sleep(0.01)
    try:
        # defaults: SortBy CreationTime, SortOrder Descending
        assert [m["ModelName"] for m in sm.list_models(NameContains=s)["Models"]] == names[::-1]
        asc = sm.list_models(NameContains=s, SortBy="Name", SortOrder="Ascending")["Models"]
        assert [m["ModelName"] for m in asc] == sorted(names)
        assert [m["ModelName"] for m in sm.list_models(NameContains=s + "-3")["Models"]] == [names[3]]
        # paging with NextToken: every model exactly once, in order
        seen, token, pages = [], None, 0
        while True:
            kw = {"NameContains": s, "MaxResults": 2, "SortBy": "Name", "SortOrder": "Descending"}
            if token:
                kw["NextToken"] = token
            page = sm.list_models(**kw)
            assert len(page["Models"]) <= 2
            seen += [m["ModelName"] for m in page["Models"]]
            pages += 1
            token = page.get("NextToken")
            if not token:
                break
            assert pages < 10
        assert seen == sorted(names, reverse=True)
        assert pages == 3
        # the paginator boto3 users call
        got = [m["ModelName"] for p in sm.get_paginator("list_models").paginate(
            NameContains=s, PaginationConfig={"PageSize": 2}) for m in p["Models"]]
        assert got == names[::-1]
        # creation-time filters (botocore sends whole epoch seconds)
        t3 = sm.describe_model(ModelName=names[3])["CreationTime"]
        hour = datetime.timedelta(hours=1)
        assert len(sm.list_models(NameContains=s, CreationTimeAfter=t3 - hour)["Models"]) == 5
        assert sm.list_models(NameContains=s, CreationTimeAfter=t3 + hour)["Models"] == []
        assert sm.list_models(NameContains=s, CreationTimeBefore=t3 - hour)["Models"] == []
        assert len(sm.list_models(NameContains=s, CreationTimeBefore=t3 + hour)["Models"]) == 5
        # bad parameters
        for kw in ({"SortBy": "Colour"}, {"SortOrder": "Sideways"}, {"MaxResults": 101},
                   {"NextToken": "not-a-token-berth-made"}):
            with pytest.raises(ClientError) as ei:
                sm.list_models(**kw)
            assert bh.error_code(ei.value) == "ValidationException", kw
    finally:
        for n in names:
            sm.delete_model(ModelName=n)
