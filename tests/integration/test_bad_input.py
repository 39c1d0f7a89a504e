"""Bad input: each gets the exact SageMaker error a
boto3 user sees, and afterwards berthd and the router still serve and the
existing state is intact (the autouse `state_intact` fixture)."""
import glob
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

S = uuid.uuid4().hex[:6]
FAIL_BODY = "model exploded"
NAME_PATTERN = r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"


@pytest.fixture(scope="module")
def fx(berth):
    """One Direct endpoint whose containers misbehave in every way, plus a
    well-behaved one ("ok")."""
    containers = [
        bh.container("ok"),
        bh.container("fail", env={"ECHO_MODE": "fail", "ECHO_FAIL_BODY": FAIL_BODY}),
        bh.container("fail4", env={"ECHO_MODE": "fail", "ECHO_FAIL_STATUS": "404", "ECHO_FAIL_BODY": "not here"}),
        bh.container("reset", env={"ECHO_MODE": "reset"}),
        bh.container("hang", env={"ECHO_MODE": "hang"}),
    ]
    st = bh.create_endpoint_stack(berth.sm, "BadFix-" + S, containers=containers, mode="Direct", inst=berth)
    yield st
    bh.delete_stack(berth, *st)


def _snapshot(berth, fx):
    sm = berth.sm
    model, cfg, ep = fx
    strip = lambda d: {k: v for k, v in d.items() if k != "ResponseMetadata"}
    return {
        "model": strip(sm.describe_model(ModelName=model)),
        "config": strip(sm.describe_endpoint_config(EndpointConfigName=cfg)),
        "endpoint": strip(sm.describe_endpoint(EndpointName=ep)),
        "models": sorted(m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]),
        "configs": sorted(c["EndpointConfigName"] for c in
                          sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]),
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]),
    }


@pytest.fixture(autouse=True)
def state_intact(berth, fx):
    before = _snapshot(berth, fx)
    assert before["endpoint"]["EndpointStatus"] == "InService"
    yield
    berth.assert_serving()
    after = _snapshot(berth, fx)
    assert after == before
    resp = berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"still here", ContentType="text/plain",
                                    TargetContainerHostname="ok")
    assert resp["Body"].read() == b"still here"


def client_error(call, code, status=None):
    with pytest.raises(ClientError) as ei:
        call()
    e = ei.value
    assert bh.error_code(e) == code, e.response
    if status is not None:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
    return e


def model_kw(name, **kw):
    d = {"ModelName": name, "ExecutionRoleArn": bh.ROLE, "PrimaryContainer": bh.container()}
    d.update(kw)
    return d


def variants(model, **kw):
    v = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}
    v.update(kw)
    return [v]


# ---- names -------------------------------------------------------------------

def _create_named(berth, fx, kind, name):
    sm = berth.sm
    if kind == "model":
        return sm.create_model(**model_kw(name))
    if kind == "config":
        return sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants(fx[0]))
    return sm.create_endpoint(EndpointName=name, EndpointConfigName=fx[1])


MEMBER = {"model": "modelName", "config": "endpointConfigName", "endpoint": "endpointName"}


@pytest.mark.parametrize("kind", ["model", "config", "endpoint"])
@pytest.mark.parametrize("bad", ["bad_name!", "-leading", "trailing-", "has space", "dot.ted"])
def test_invalid_name_pattern(berth, fx, kind, bad):
    e = client_error(lambda: _create_named(berth, fx, kind, bad), "ValidationException", 400)
    assert bh.error_message(e) == (
        "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: %s" % (bad, MEMBER[kind], NAME_PATTERN))


@pytest.mark.parametrize("kind", ["model", "config", "endpoint"])
def test_name_of_64_characters_is_refused(berth, fx, kind):
    bad = "n" * 64
    e = client_error(lambda: _create_named(berth, fx, kind, bad), "ValidationException", 400)
    assert bh.error_message(e) == (
        "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
        "Member must have length less than or equal to 63" % (bad, MEMBER[kind]))


def test_name_63_chars_is_fine(berth, fx):
    name = "m" * 57 + S
    assert len(name) == 63
    berth.sm.create_model(**model_kw(name))
    assert berth.sm.describe_model(ModelName=name)["ModelArn"] == bh.arn("model", name)
    berth.sm.delete_model(ModelName=name)


def test_invalid_variant_name(berth, fx):
    client_error(lambda: berth.sm.create_endpoint_config(
        EndpointConfigName="BadVariant-" + S, ProductionVariants=variants(fx[0], VariantName="no_way!")),
        "ValidationException", 400)


@pytest.mark.parametrize("bad", ["bad_host!", "h" * 64, "-x"])
def test_invalid_container_hostname(berth, fx, bad):
    client_error(lambda: berth.sm.create_model(ModelName="BadHost-" + S, ExecutionRoleArn=bh.ROLE,
                                               Containers=[bh.container(bad), bh.container("fine")],
                                               InferenceExecutionConfig={"Mode": "Direct"}),
                 "ValidationException", 400)


def test_hostname_on_some_containers_only(berth, fx):
    client_error(lambda: berth.sm.create_model(ModelName="SomeHosts-" + S, ExecutionRoleArn=bh.ROLE,
                                               Containers=[bh.container("a"), bh.container()]),
                 "ValidationException", 400)


@pytest.mark.parametrize("env", [{"1BAD": "x"}, {"BAD-KEY": "x"}, {"K": "v" * 1025},
                                 {"K%d" % i: "v" for i in range(101)}], ids=["digit", "dash", "long", "101"])
def test_invalid_environment(berth, fx, env):
    client_error(lambda: berth.sm.create_model(**model_kw("BadEnv-" + S, PrimaryContainer=bh.container(env=env))),
                 "ValidationException", 400)


def test_describe_with_invalid_name(berth, fx):
    client_error(lambda: berth.sm.describe_model(ModelName="bad_name!"), "ValidationException", 400)


# ---- missing members (raw, past botocore's client-side checks) ---------------

@pytest.mark.parametrize("target,body,member", [
    ("CreateModel", {}, "modelName"),
    ("CreateModel", {"ExecutionRoleArn": bh.ROLE, "PrimaryContainer": {"Image": "/x"}}, "modelName"),
    ("CreateEndpointConfig", {"EndpointConfigName": "NoVariants-" + S}, "productionVariants"),
    ("CreateEndpoint", {"EndpointName": "NoConfig-" + S}, "endpointConfigName"),
    ("CreateEndpoint", {"EndpointConfigName": "whatever"}, "endpointName"),
    ("DescribeModel", {}, "modelName"),
    ("DescribeEndpoint", {}, "endpointName"),
    ("DeleteEndpointConfig", {}, "endpointConfigName"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_missing_required_member(berth, fx, target, body, member):
    status, headers, data, doc = bh.control_raw(berth.port, target, body)
    assert status == 400, data
    assert doc["__type"] == "ValidationException", doc
    assert member in doc["message"], doc
    assert "x-amzn-requestid" in headers
    assert headers["content-type"].startswith("application/x-amz-json-1.1")


def test_model_without_containers_is_refused(berth, fx):
    """Neither PrimaryContainer nor Containers."""
    status, _, data, doc = bh.control_raw(berth.port, "CreateModel",
                                          {"ModelName": "NoContainers-" + S, "ExecutionRoleArn": bh.ROLE})
    assert status == 400, data
    assert doc["__type"] == "ValidationException", doc


def test_variant_without_model_name(berth, fx):
    status, _, data, doc = bh.control_raw(berth.port, "CreateEndpointConfig", {
        "EndpointConfigName": "NoModel-" + S,
        "ProductionVariants": [{"VariantName": "v", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})
    assert status == 400, data
    assert doc["__type"] == "ValidationException", doc


def test_container_without_image(berth, fx):
    client_error(lambda: berth.sm.create_model(ModelName="NoImage-" + S, ExecutionRoleArn=bh.ROLE,
                                               PrimaryContainer={"Environment": {"A": "b"}}),
                 "ValidationException", 400)


def test_member_of_the_wrong_type_is_refused(berth, fx):
    status, _, data, doc = bh.control_raw(berth.port, "CreateModel",
                                          {"ModelName": 17, "PrimaryContainer": {"Image": ["x"]}})
    assert status == 400, data
    assert doc["__type"] in ("SerializationException", "ValidationException"), doc


# ---- containers --------------------------------------------------------------

def test_zero_containers_are_refused(berth, fx):
    client_error(lambda: berth.sm.create_model(ModelName="Zero-" + S, ExecutionRoleArn=bh.ROLE, Containers=[]),
                 "ValidationException", 400)


def test_sixteen_containers_are_refused(berth, fx):
    cs = [bh.container("c%d" % i) for i in range(16)]
    client_error(lambda: berth.sm.create_model(ModelName="Sixteen-" + S, ExecutionRoleArn=bh.ROLE,
                                               Containers=cs, InferenceExecutionConfig={"Mode": "Direct"}),
                 "ValidationException", 400)


def test_fifteen_containers_is_fine(berth, fx):
    cs = [bh.container("c%d" % i) for i in range(15)]
    name = "Fifteen-" + S
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, Containers=cs,
                          InferenceExecutionConfig={"Mode": "Direct"})
    assert len(berth.sm.describe_model(ModelName=name)["Containers"]) == 15
    berth.sm.delete_model(ModelName=name)


def test_duplicate_container_hostname(berth, fx):
    client_error(lambda: berth.sm.create_model(ModelName="Dup-" + S, ExecutionRoleArn=bh.ROLE,
                                               Containers=[bh.container("same"), bh.container("same")],
                                               InferenceExecutionConfig={"Mode": "Direct"}),
                 "ValidationException", 400)


def test_primary_container_and_containers(berth, fx):
    client_error(lambda: berth.sm.create_model(ModelName="Both-" + S, ExecutionRoleArn=bh.ROLE,
                                               PrimaryContainer=bh.container(),
                                               Containers=[bh.container("a")]),
                 "ValidationException", 400)


def test_unknown_execution_mode(berth, fx):
    client_error(lambda: berth.sm.create_model(ModelName="Mode-" + S, ExecutionRoleArn=bh.ROLE,
                                               Containers=[bh.container("a"), bh.container("b")],
                                               InferenceExecutionConfig={"Mode": "Parallel"}),
                 "ValidationException", 400)


def test_unknown_container_mode(berth, fx):
    c = bh.container()
    c["Mode"] = "SomeModels"
    client_error(lambda: berth.sm.create_model(**model_kw("CMode-" + S, PrimaryContainer=c)),
                 "ValidationException", 400)


def test_nonexistent_image_path(berth, fx):
    path = "/var/tmp/berth-no-such-image-%s/rootfs" % S
    e = client_error(lambda: berth.sm.create_model(**model_kw("NoImg-" + S, PrimaryContainer=bh.container(
        image=path))), "ValidationException", 400)
    assert path in bh.error_message(e), bh.error_message(e)


# ---- references and existing names ------------------------------------------

def test_config_naming_missing_model(berth, fx):
    e = client_error(lambda: berth.sm.create_endpoint_config(
        EndpointConfigName="Orphan-" + S, ProductionVariants=variants("MissingModel-" + S)),
        "ValidationException", 400)
    assert 'Could not find model "%s"' % bh.arn("model", "MissingModel-" + S) in bh.error_message(e)


def test_endpoint_naming_missing_config(berth, fx):
    e = client_error(lambda: berth.sm.create_endpoint(EndpointName="Orphan-" + S,
                                                       EndpointConfigName="MissingCfg-" + S),
                     "ValidationException", 400)
    assert 'Could not find endpoint configuration "%s"' % bh.arn("endpoint-config", "MissingCfg-" + S) \
        in bh.error_message(e)


@pytest.mark.parametrize("kind,what", [("model", "model"), ("config", "endpoint configuration"),
                                       ("endpoint", "endpoint")])
def test_create_existing_name(berth, fx, kind, what):
    """CONTRACT.md §2 lists ResourceInUse for a taken name, but SageMaker
    itself answers ValidationException "Cannot create already existing ..."
    for models, endpoint configs and endpoints (seen in the wild, e.g.
    astronomer/astronomer-providers#1055, awslabs/spot-tagging-bot-for-
    digital-assets#2, ministryofjustice/modernisation-platform-environments
    #9383), and SageMaker's behaviour wins (CONTRACT.md, top)."""
    name = {"model": fx[0], "config": fx[1], "endpoint": fx[2]}[kind]
    arn_kind = {"model": "model", "config": "endpoint-config", "endpoint": "endpoint"}[kind]
    e = client_error(lambda: _create_named(berth, fx, kind, name), "ValidationException", 400)
    assert bh.error_message(e) == 'Cannot create already existing %s "%s".' % (what, bh.arn(arn_kind, name))


@pytest.mark.parametrize("op", ["describe", "delete"])
@pytest.mark.parametrize("kind", ["model", "config", "endpoint"])
def test_missing_resource(berth, fx, op, kind):
    sm = berth.sm
    name = "Missing-%s-%s" % (kind, S)
    call, what, arn_kind = {
        "model": (lambda: getattr(sm, op + "_model")(ModelName=name), "model", "model"),
        "config": (lambda: getattr(sm, op + "_endpoint_config")(EndpointConfigName=name),
                   "endpoint configuration", "endpoint-config"),
        "endpoint": (lambda: getattr(sm, op + "_endpoint")(EndpointName=name), "endpoint", "endpoint"),
    }[kind]
    e = client_error(call, "ValidationException", 400)
    assert bh.error_message(e) == 'Could not find %s "%s".' % (what, bh.arn(arn_kind, name))


# ---- malformed requests ------------------------------------------------------

@pytest.mark.parametrize("body", [b'{"ModelName": ', b"not json at all", b'{"ModelName": "x",}', b"\xff\xfe{}",
                                  b"[1, 2]"], ids=["truncated", "text", "trailing-comma", "binary", "array"])
def test_malformed_json_is_a_serialization_exception(berth, fx, body):
    status, headers, data, doc = bh.control_raw(berth.port, "CreateModel", body)
    assert status == 400, data
    assert doc is not None, data
    assert doc["__type"] == "SerializationException", doc
    assert "x-amzn-requestid" in headers


def test_ten_megabyte_json_body_boto3(berth, fx):
    env = {"BIG": "x" * (10 << 20)}
    client_error(lambda: berth.sm.create_model(**model_kw("Huge-" + S, PrimaryContainer=bh.container(env=env))),
                 "ValidationException", 413)
    assert "Huge-" + S not in [m["ModelName"] for m in berth.sm.list_models(MaxResults=100)["Models"]]


def test_ten_megabyte_json_body_raw(berth, fx):
    body = json.dumps(model_kw("Huge2-" + S, Tags=[{"Key": "k", "Value": "v" * (10 << 20)}])).encode()
    status, _, data, doc = bh.control_raw(berth.port, "CreateModel", body)
    assert status == 413, data[:500]
    assert doc["__type"] == "ValidationException", doc


@pytest.mark.parametrize("target", ["SageMaker.CreateUnicorn", "SageMaker.", "SageMaker.createmodel"])
def test_unknown_target(berth, fx, target):
    status, _, data, doc = bh.control_raw(berth.port, target, b"{}")
    assert status == 400, data
    assert doc["__type"] == "UnknownOperationException", doc


def test_post_root_without_target_is_404_json(berth, fx):
    status, _, data, doc = bh.control_raw(berth.port, None, b"{}")
    assert status == 404, data
    assert "message" in doc, data


# ---- runtime -----------------------------------------------------------------

def test_invoking_an_unknown_endpoint_is_a_validation_error(berth, fx):
    name = "NoSuchEndpoint-" + S
    e = client_error(lambda: berth.rt.invoke_endpoint(EndpointName=name, Body=b"x"), "ValidationError", 400)
    assert bh.error_message(e) == "Endpoint %s of account 000000000000 not found." % name


def test_invoke_endpoint_still_creating(berth, fx):
    sm = berth.sm
    t0 = time.monotonic()
    st = bh.create_endpoint_stack(sm, "NeverHealthy-" + S, primary=bh.container(env={"ECHO_PING_STATUS": "500"}),
                                  wait=False, inst=berth)
    took = time.monotonic() - t0
    try:
        # CreateEndpoint answers after --create-grace-ms (5000) when the
        # endpoint does not settle
        assert 4.5 <= took <= 9, took
        assert sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] == "Creating"
        client_error(lambda: berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"x"), "ValidationError", 400)
        assert sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] == "Creating"
    finally:
        bh.delete_stack(berth, *st)


def test_direct_invoke_without_target(berth, fx):
    client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"x"), "ValidationError", 400)


def test_direct_invoke_unknown_target(berth, fx):
    client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"x", TargetContainerHostname="nobody"),
                 "ValidationError", 400)


def test_body_over_6mib_is_refused(berth, fx):
    body = b"z" * (6 * 1024 * 1024 + 1)
    client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=body, TargetContainerHostname="ok"),
                 "ValidationError", 400)


def test_body_of_exactly_6mib_is_fine(berth, fx):
    body = bytes(range(256)) * (6 * 1024 * 1024 // 256)
    assert len(body) == 6291456
    resp = berth.rt.invoke_endpoint(EndpointName=fx[2], Body=body, ContentType="application/octet-stream",
                                    TargetContainerHostname="ok")
    assert resp["Body"].read() == body


def test_container_answering_500_is_a_model_error(berth, fx):
    e = client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"x",
                                                      TargetContainerHostname="fail"), "ModelError", 424)
    assert e.response["OriginalStatusCode"] == 500, e.response
    assert e.response["OriginalMessage"] == FAIL_BODY, e.response
    assert bh.error_message(e) == (
        'Received server error (500) from fail with message "%s". See berth logs %s fail for more information.'
        % (FAIL_BODY, fx[2]))
    assert e.response.get("LogStreamArn"), e.response


def test_container_answering_404_is_a_model_error(berth, fx):
    e = client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"x",
                                                      TargetContainerHostname="fail4"), "ModelError", 424)
    assert e.response["OriginalStatusCode"] == 404, e.response
    assert e.response["OriginalMessage"] == "not here", e.response
    assert bh.error_message(e).startswith('Received client error (404) from fail4 with message "not here".'), \
        bh.error_message(e)


def test_container_resetting_the_connection_is_a_model_error(berth, fx):
    for _ in range(2):   # the pool must not keep the broken connection
        e = client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"x",
                                                          TargetContainerHostname="reset"), "ModelError", 424)
        assert "reset" in bh.error_message(e), bh.error_message(e)


def test_container_never_answering_times_out_as_a_model_error(berth, fx):
    for _ in range(2):
        t0 = time.monotonic()
        e = client_error(lambda: berth.rt.invoke_endpoint(EndpointName=fx[2], Body=b"x",
                                                          TargetContainerHostname="hang"), "ModelError", 424)
        took = time.monotonic() - t0
        assert 1.8 <= took <= 10, took    # --invocation-timeout-ms 2000
        msg = bh.error_message(e)
        assert "timed out" in msg, msg
        assert msg.startswith('Received server error (0) from hang with message "Your invocation timed out while '
                              'waiting for a response from container hang.'), msg


# ---- malformed HTTP at the router ---------------------------------------------

def _raw_exchange(port, data, timeout=5):
    """Sends raw bytes, returns whatever comes back until close or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            out += d
            if len(out) > 1 << 20:
                break
        return out
    finally:
        s.close()


@pytest.mark.parametrize("data", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,            # a TLS ClientHello
    b"GARBAGE GARBAGE GARBAGE\r\n\r\n",
    b"POST /endpoints/x/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /endpoints/x/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /endpoints/x/invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x09\x00\x00\x00\x00\x01garbage-frames" * 4,
], ids=["tls", "garbage", "negative-length", "huge-length", "bad-chunk", "huge-header", "bad-h2-frames"])
def test_malformed_http_does_not_hurt_the_router(berth, fx, data):
    out = _raw_exchange(berth.port, data)
    if out.startswith(b"HTTP/1.1 "):
        status = int(out[9:12])
        assert 400 <= status < 500, out[:300]


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/endpoints/%s/invocations", None),
    ("POST", "/endpoints/%s/nothing", None),
    ("POST", "/endpoints//invocations", None),
    ("POST", "/endpoints/" + "x" * 5000 + "/invocations", 400),
    ("POST", "/endpoints/%2e%2e/invocations", 400),
    ("GET", "/nowhere", 404),
])
def test_odd_runtime_requests_get_json_errors(berth, fx, method, path, status):
    if "%s" in path:
        path = path % fx[2]
    st, headers, data = bh.http_request(berth.port, method, path, body=b"x" if method == "POST" else None,
                                        headers={"X-Amzn-SageMaker-Target-Container-Hostname": "ok"})
    assert 400 <= st < 500, (st, data)
    if status is not None:
        assert st == status, (st, data)
    assert "message" in json.loads(data.decode()), data


def test_client_disconnects_mid_body(berth, fx):
    path = "/endpoints/%s/invocations" % fx[2]
    s = socket.create_connection(("127.0.0.1", berth.port), timeout=5)
    signed = bh.sign_headers(berth.port, "POST", path, body=b"a" * 1000000, host="x",
                             headers={"X-Amzn-SageMaker-Target-Container-Hostname": "ok"})
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\n" % path.encode() + bh.header_lines(signed)
              + b"Content-Length: 1000000\r\n\r\n" + b"a" * 1000)
    s.close()
    # and one that disconnects while the container is still answering (hang)
    s = socket.create_connection(("127.0.0.1", berth.port), timeout=5)
    signed = bh.sign_headers(berth.port, "POST", path, body=b"x", host="x",
                             headers={"X-Amzn-SageMaker-Target-Container-Hostname": "hang"})
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\n" % path.encode() + bh.header_lines(signed)
              + b"Content-Length: 1\r\n\r\nx")
    time.sleep(0.2)
    s.close()


def test_create_endpoint_answers_after_the_grace_period_while_creating(make_berth):
    """A second instance with --create-grace-ms 200: CreateEndpoint of an
    endpoint that never gets healthy answers after about 0.2 s, Creating."""
    b = make_berth(grace_ms=200)
    t0 = time.monotonic()
    st = bh.create_endpoint_stack(b.sm, "Grace-" + S, primary=bh.container(env={"ECHO_PING_STATUS": "503"}),
                                  wait=False, inst=b)
    took = time.monotonic() - t0
    assert took < 2.5, took
    assert b.sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] == "Creating"
    client_error(lambda: b.rt.invoke_endpoint(EndpointName=st[2], Body=b"x"), "ValidationError", 400)
    bh.delete_stack(b, *st)


# ---- hostile or broken model artifacts ----------------------------------------

def _tar_gz(path, members):
    """members: list of (TarInfo-kwargs dict, data bytes or None)."""
    with tarfile.open(path, "w:gz") as tf:
        for kw, data in members:
            ti = tarfile.TarInfo(kw.pop("name"))
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)


def _settles(berth, ep, timeout=20):
    def settled():
        d = berth.sm.describe_endpoint(EndpointName=ep)
        return d if d["EndpointStatus"] in ("InService", "Failed") else None
    return bh.wait_until(settled, timeout, "endpoint %s to settle" % ep, interval=0.1)


def _artifact_stack(berth, name, url):
    """CreateModel may refuse the artifact up front (ValidationException) or
    the endpoint may fail; either way nothing may hang or crash. Returns the
    stack and the final describe (None when CreateModel refused)."""
    try:
        st = bh.create_endpoint_stack(berth.sm, name, wait=False, inst=berth, primary=bh.container(
            env={"ECHO_MODE": "model", "ECHO_MODEL_FILE": "weights.txt"}, model_data_url=url))
    except ClientError as e:
        assert bh.error_code(e) == "ValidationException", e.response
        print("CreateModel refused %s: %s" % (url, bh.error_message(e)))
        return None, None
    d = _settles(berth, st[2])
    print("endpoint with %s: %s %s" % (url, d["EndpointStatus"], d.get("FailureReason")))
    partial = glob.glob(os.path.join(berth.state_dir, "**", "*.partial*"), recursive=True)
    assert not partial, "half-unpacked artifacts left behind: %s" % partial
    return st, d


@pytest.mark.parametrize("vector", ["dotdot", "absolute", "symlink-dir", "hardlink", "symlink-chain"])
def test_model_artifact_path_traversal_stays_inside(berth, fx, vector):
    outside = tempfile.mkdtemp(prefix="berth-evil-", dir="/var/tmp")
    victim = os.path.join(outside, "victim.txt")
    with open(victim, "wb") as f:
        f.write(b"original\n")
    try:
        rel = os.path.relpath(os.path.join(outside, "rel.txt"), "/")
        members = [({"name": "weights.txt", "mode": 0o644}, b"fine\n")]
        members += {
            "dotdot": [({"name": "../" * 12 + rel, "mode": 0o644}, b"escaped by ..\n")],
            "absolute": [({"name": os.path.join(outside, "abs.txt"), "mode": 0o644}, b"escaped by absolute path\n")],
            "symlink-dir": [({"name": "link", "type": b"2", "linkname": outside}, None),
                            ({"name": "link/through-symlink.txt", "mode": 0o644}, b"escaped through a symlink\n")],
            "hardlink": [({"name": "hl", "type": b"1", "linkname": victim}, None),
                         ({"name": "hl", "mode": 0o644}, b"overwritten through a hard link\n")],
            "symlink-chain": [({"name": "a", "type": b"2", "linkname": "."}, None),
                              ({"name": "a/b", "type": b"2", "linkname": "../" * 12 + os.path.relpath(outside, "/")},
                               None),
                              ({"name": "a/b/chain.txt", "mode": 0o644}, b"escaped through a chain\n")],
        }[vector]
        path = os.path.join(berth.object_root, "evil-%s-%s" % (vector, S), "model.tar.gz")
        os.makedirs(os.path.dirname(path))
        _tar_gz(path, members)
        st, d = _artifact_stack(berth, "Evil-%s-%s" % (vector, S), "s3://evil-%s-%s/model.tar.gz" % (vector, S))
        try:
            assert sorted(os.listdir(outside)) == ["victim.txt"], \
                "artifact wrote outside its directory: %s" % os.listdir(outside)
            with open(victim, "rb") as f:
                assert f.read() == b"original\n", "artifact overwrote a file outside through a link"
            if d is not None and d["EndpointStatus"] == "InService":
                r = berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"x")
                assert r["Body"].read() == b"fine\n"
        finally:
            if st:
                bh.delete_stack(berth, *st)
    finally:
        shutil.rmtree(outside)


@pytest.mark.parametrize("kind", ["missing", "not-gzip", "truncated"])
def test_model_artifact_broken(berth, fx, kind):
    path = os.path.join(berth.object_root, "broken-" + S, kind + ".tar.gz")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == "not-gzip":
        with open(path, "wb") as f:
            f.write(b"this is not a tarball\n" * 100)
    elif kind == "truncated":
        _tar_gz(path, [({"name": "weights.txt", "mode": 0o644}, os.urandom(200000))])
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    url = "s3://broken-%s/%s.tar.gz" % (S, kind)
    st, d = _artifact_stack(berth, "Broken-%s-%s" % (kind, S), url)
    try:
        if d is not None:
            assert d["EndpointStatus"] == "Failed", d
            assert d.get("FailureReason"), d
    finally:
        if st:
            bh.delete_stack(berth, *st)


def test_kill9_while_endpoint_creating(make_berth):
    """berthd dies while an endpoint is still Creating; the restarted berthd
    neither loses it nor leaks its container, and DeleteEndpoint cleans up
    (make_berth's teardown runs the leak check)."""
    b = make_berth(grace_ms=200)
    st = bh.create_endpoint_stack(b.sm, "CrashCreating-" + S,
                                  primary=bh.container(env={"ECHO_PING_STATUS": "500"}), wait=False, inst=b)
    assert b.sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] == "Creating"
    b.restart_berthd()
    assert b.sm.describe_endpoint(EndpointName=st[2])["EndpointStatus"] in ("Creating", "Failed")
    bh.delete_stack(b, *st)
    bh.assert_no_leaks(b, berthd_pid=b.berthd.pid)
