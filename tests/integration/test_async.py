"""InvokeEndpointAsync (POST /endpoints/E/async-invocations) and
CreateEndpointConfig's AsyncInferenceConfig.

The client is the real one: the machine's newer boto3 (Debian's 1.26 has
no InvocationTimeoutSeconds), run as a subprocess from PATH's python3, as
test_stream.py does; raw signed requests for what botocore would refuse
itself. Inputs are written to, and outputs read from, berthd's local
object store root (s3://BUCKET/KEY is OBJECT_ROOT/BUCKET/KEY); one test
goes through moto's S3 server instead (test_s3.py's).

Covered: success (output bytes exact), a Serial pipeline, variants by weight,
a container error (the failure
object is its body), a timeout, TTL expiry of a queued request (with the
queue gauges on /metrics and in `berth describe` while it waits), a kill -9
of berthd with requests queued and one running (queued ones run after the
restart, the running one is failed, never run twice), a full queue (503,
nothing accepted is lost), DeleteEndpoint dropping its queue, and the bad
input of issue 12: missing or malformed InputLocation, an input object
that does not exist, an output location that cannot be written, an
endpoint without AsyncInferenceConfig. The module's berth fixture checks
for leaks and sanitizer reports at teardown.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import berth_helpers as bh

BUCKET = "async-bucket"
QUEUE_MAX = 3  # --async-queue-max of this module's berthd
MAX_BYTES = 1 << 20  # --async-max-bytes: one input, one answer
ASYNC_KEY = {"name": "async", "allow": "sagemaker:InvokeEndpointAsync sagemaker:InvokeEndpoint"}
NEWER_PYTHON = shutil.which("python3")


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(keys=[ASYNC_KEY], extra_berthd=["--async-queue-max", str(QUEUE_MAX),
                                                            "--async-max-bytes", str(MAX_BYTES)])


# ---- helpers -----------------------------------------------------------------

ASYNC_CLIENT = r'''
import json, sys
import boto3, botocore
from botocore.exceptions import ClientError
a = json.load(sys.stdin)
rt = boto3.client("sagemaker-runtime", endpoint_url=a["url"], region_name="us-east-1",
                  aws_access_key_id=a["key"][0], aws_secret_access_key=a["key"][1],
                  config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=60))
out = []
for kw in a["calls"]:
    try:
        r = rt.invoke_endpoint_async(**kw)
        out.append({"InferenceId": r.get("InferenceId"), "OutputLocation": r.get("OutputLocation"),
                    "FailureLocation": r.get("FailureLocation"),
                    "status": r["ResponseMetadata"]["HTTPStatusCode"]})
    except ClientError as e:
        out.append({"error": {"code": e.response.get("Error", {}).get("Code"),
                              "message": e.response.get("Error", {}).get("Message"),
                              "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")}})
print(json.dumps({"boto3": boto3.__version__, "results": out}))
'''


def invoke_async(inst, calls, key=None):
    """Runs invoke_endpoint_async once per dict of calls with the newer
    boto3; returns the results (response members, or {"error": …})."""
    assert NEWER_PYTHON and os.path.realpath(NEWER_PYTHON) != os.path.realpath("/usr/bin/python3"), NEWER_PYTHON
    args = {"url": inst.url, "key": list(key or inst.keys["async"]), "calls": calls}
    r = subprocess.run([NEWER_PYTHON, "-c", ASYNC_CLIENT], input=json.dumps(args).encode(), capture_output=True,
                       timeout=120, env=dict(os.environ, AWS_CONFIG_FILE="/dev/null",
                                             AWS_SHARED_CREDENTIALS_FILE="/dev/null"))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = json.loads(r.stdout)
    assert int(out["boto3"].split(".")[1]) >= 30, out["boto3"]
    return out["results"]


def invoke_one(inst, ep, input_url, **kw):
    return invoke_async(inst, [dict(EndpointName=ep, InputLocation=input_url, **kw)])[0]


def put_object(inst, key, data):
    path = os.path.join(inst.object_root, BUCKET, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return "s3://%s/%s" % (BUCKET, key)


def object_path(inst, url):
    assert url.startswith("s3://"), url
    return os.path.join(inst.object_root, url[5:])


def wait_object(inst, url, timeout=20):
    path = object_path(inst, url)
    bh.wait_until(lambda: os.path.exists(path), timeout, "object %s" % url, interval=0.05)
    with open(path, "rb") as f:
        return f.read()


def async_records(inst):
    """Requests on disk: ID.json records and ID.running markers."""
    return sorted(glob.glob(os.path.join(inst.state_dir, "async", "*")))


def async_stack(inst, name, env=None, max_concurrent=None, output=None, failure=None, notification=False,
                containers=None):
    """Model (one container, or a Serial pipeline of containers), async
    endpoint config and endpoint (InService). Returns the endpoint name and
    its output and failure prefixes."""
    output = output or "s3://%s/%s/out" % (BUCKET, name)
    failure = failure if failure is not None else "s3://%s/%s/failed" % (BUCKET, name)
    if containers:
        inst.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, Containers=containers,
                             InferenceExecutionConfig={"Mode": "Serial"})
    else:
        inst.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(env=env))
    oc = {"S3OutputPath": output}
    if failure:
        oc["S3FailurePath"] = failure
    if notification:
        oc["NotificationConfig"] = {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:done",
                                    "ErrorTopic": "arn:aws:sns:us-east-1:000000000000:failed"}
    aic = {"OutputConfig": oc}
    if max_concurrent:
        aic["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": max_concurrent}
    status, _, data, doc = bh.control_raw(inst.port, "CreateEndpointConfig", {
        "EndpointConfigName": name + "-cfg", "AsyncInferenceConfig": aic,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
                                "InstanceType": "ml.m5.large"}]})
    assert status == 200, data
    ep = name + "-ep"
    inst.sm.create_endpoint(EndpointName=ep, EndpointConfigName=name + "-cfg")
    inst.sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    inst.note_containers()
    return ep, output, failure


def raw_async(inst, ep, headers, key=None):
    """A signed POST /endpoints/EP/async-invocations with the headers given,
    past botocore's own checks: (status, headers, JSON body)."""
    path = "/endpoints/%s/async-invocations" % ep
    status, h, data = bh.http_request(inst.port, "POST", path, body=b"", headers=headers,
                                      sign=key or inst.keys["async"])
    return status, h, json.loads(data) if data else None


def berthd_log(inst):
    return dict(inst.log_text())["berthd"]


def metrics(inst):
    status, _, data = bh.http_request(inst.port, "GET", "/metrics", sign=False)
    assert status == 200
    return data.decode()


def gauge(text, name, ep):
    m = re.search(r'^%s\{endpoint="%s"\} ([0-9.e+-]+)$' % (name, re.escape(ep)), text, re.M)
    return float(m.group(1)) if m else None


# ---- control plane ------------------------------------------------------------

def test_async_config_round_trips_and_is_validated(berth):
    name = bh.unique_name("acfg")
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    aic = {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
           "OutputConfig": {"S3OutputPath": "s3://%s/out" % BUCKET, "S3FailurePath": "s3://%s/err" % BUCKET,
                            "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:ok",
                                                   "ErrorTopic": "arn:aws:sns:us-east-1:000000000000:ko",
                                                   "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"]}}}
    pv = [{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]
    status, _, data, _ = bh.control_raw(berth.port, "CreateEndpointConfig",
                                        {"EndpointConfigName": name, "AsyncInferenceConfig": aic,
                                         "ProductionVariants": pv})
    assert status == 200, data
    status, _, _, doc = bh.control_raw(berth.port, "DescribeEndpointConfig", {"EndpointConfigName": name})
    assert status == 200 and doc["AsyncInferenceConfig"] == aic

    def refused(aic, message):
        status, h, data, doc = bh.control_raw(berth.port, "CreateEndpointConfig", {
            "EndpointConfigName": name + "-bad", "AsyncInferenceConfig": aic, "ProductionVariants": pv})
        assert status == 400, data
        assert doc["__type"] == "ValidationException" and doc["message"] == message, doc

    refused({"OutputConfig": {"S3OutputPath": "ftp://b/out"}},
            "1 validation error detected: Value 'ftp://b/out' at 'asyncInferenceConfig.outputConfig.s3OutputPath' "
            "failed to satisfy constraint: Member must satisfy regular expression pattern: (https|s3)://([^/])/?(.*)")
    refused({"OutputConfig": {"S3OutputPath": "s3://b/out"}, "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 0}},
            "1 validation error detected: Value '0' at 'asyncInferenceConfig.clientConfig."
            "maxConcurrentInvocationsPerInstance' failed to satisfy constraint: Member must have value greater "
            "than or equal to 1")
    refused({"OutputConfig": {"S3OutputPath": "s3://b/out"},
             "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1001}},
            "1 validation error detected: Value '1001' at 'asyncInferenceConfig.clientConfig."
            "maxConcurrentInvocationsPerInstance' failed to satisfy constraint: Member must have value less "
            "than or equal to 1000")
    refused({"OutputConfig": {}},
            "1 validation error detected: Value null at 'asyncInferenceConfig.outputConfig.s3OutputPath' failed to "
            "satisfy constraint: Member must not be null (berth has no default bucket for asynchronous inference "
            "results: give the s3:// prefix they are written under)")
    refused({"OutputConfig": {"S3OutputPath": "s3://b/out",
                              "NotificationConfig": {"SuccessTopic": "not-an-arn"}}},
            "1 validation error detected: Value 'not-an-arn' at 'asyncInferenceConfig.outputConfig."
            "notificationConfig.successTopic' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern: arn:aws[a-z\\-]*:sns:[a-z0-9\\-]*:[0-9]{12}:[a-zA-Z0-9_.-]+")
    refused({"OutputConfig": {"S3OutputPath": "s3://b/out", "KmsKeyId": "alias/k"}},
            "berth does not support AsyncInferenceConfig.OutputConfig.KmsKeyId yet: there is no KMS to encrypt "
            "asynchronous inference results with. Remove it from the CreateEndpointConfig request.")
    # a multi-model model cannot be addressed by InvokeEndpointAsync (no TargetModel)
    mme = name + "-mme"
    berth.sm.create_model(ModelName=mme, ExecutionRoleArn=bh.ROLE, PrimaryContainer=dict(
        bh.container(), Mode="MultiModel", ModelDataUrl="s3://%s/models/" % BUCKET))
    status, _, data, doc = bh.control_raw(berth.port, "CreateEndpointConfig", {
        "EndpointConfigName": name + "-mme", "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/o"}},
        "ProductionVariants": [dict(pv[0], ModelName=mme)]})
    assert status == 400 and doc["message"] == (
        "Endpoint configuration \"%s-mme\" has an AsyncInferenceConfig, but production variant AllTraffic serves "
        "model %s in multi-model (MultiModel) mode, which InvokeEndpointAsync cannot address (it has no "
        "TargetModel member). Serve that model from an endpoint without AsyncInferenceConfig." % (name, mme)), doc
    berth.sm.delete_endpoint_config(EndpointConfigName=name)
    berth.sm.delete_model(ModelName=mme)
    berth.sm.delete_model(ModelName=name)
    berth.assert_serving()


# ---- runtime --------------------------------------------------------------------

def test_success_writes_the_containers_answer_exactly(berth):
    name = bh.unique_name("aok")
    ep, output, failure = async_stack(berth, name, notification=True)
    data = bytes(range(256)) * 40 + b"\r\n\x00end"
    url = put_object(berth, name + "/in/x.bin", data)
    r = invoke_one(berth, ep, url, ContentType="application/octet-stream", InferenceId="req-1",
                   InvocationTimeoutSeconds=30, RequestTTLSeconds=120)
    assert r.get("status") == 202, r
    assert r["InferenceId"] == "req-1"
    assert r["OutputLocation"] == output + "/req-1.out"
    assert r["FailureLocation"] == failure + "/req-1-error.out"
    assert wait_object(berth, r["OutputLocation"]) == data
    bh.wait_until(lambda: async_records(berth) == [], 5, "the request's record removed")
    assert not os.path.exists(object_path(berth, r["FailureLocation"]))
    # without an InferenceId berth makes one; the output is named after it
    r2 = invoke_one(berth, ep, url)
    assert r2.get("status") == 202 and re.fullmatch(r"[0-9a-f-]{36}", r2["InferenceId"]), r2
    assert r2["OutputLocation"] == "%s/%s.out" % (output, r2["InferenceId"])
    assert wait_object(berth, r2["OutputLocation"]) == data
    assert "notification of its success not delivered: berth has no SNS" in berthd_log(berth)
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_serial_pipeline_runs_as_one_request(berth):
    """Each step's answer is the next one's input, as for InvokeEndpoint."""
    name = bh.unique_name("aser")
    ep, _, _ = async_stack(berth, name, containers=[bh.container("first", env={"ECHO_MODE": "upper"}),
                                                    bh.container("second", env={"ECHO_MODE": "hostname"})])
    url = put_object(berth, name + "/in/x", b"make me loud")
    r = invoke_one(berth, ep, url, ContentType="text/plain", InferenceId="chain")
    assert r.get("status") == 202, r
    assert wait_object(berth, r["OutputLocation"]) == b"second:MAKE ME LOUD"
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_variants_share_the_queue_by_weight(berth):
    """Two variants: weight 0 gets nothing; then, weights equal, both serve."""
    name = bh.unique_name("avar")
    for v, mode in (("va", "upper"), ("vb", "echo")):  # va answers "X!", vb "x!"
        berth.sm.create_model(ModelName="%s-%s" % (name, v), ExecutionRoleArn=bh.ROLE,
                              PrimaryContainer=bh.container(env={"ECHO_MODE": mode}))

    def config(cfg, wa, wb):
        status, _, data, _ = bh.control_raw(berth.port, "CreateEndpointConfig", {
            "EndpointConfigName": cfg,
            "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://%s/%s/out" % (BUCKET, name)},
                                     "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}},
            "ProductionVariants": [{"VariantName": v, "ModelName": "%s-%s" % (name, v), "InitialInstanceCount": 1,
                                    "InstanceType": "ml.m5.large", "InitialVariantWeight": w}
                                   for v, w in (("va", wa), ("vb", wb))]})
        assert status == 200, data
    config(name + "-cfg", 1.0, 0.0)
    ep = name + "-ep"
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=name + "-cfg")
    berth.sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    berth.note_containers()
    url = put_object(berth, name + "/in/x", b"x!")

    def who(n, prefix):
        # QUEUE_MAX at a time: the module's queue bound must not refuse any
        # (on a loaded host the scheduler may not have taken the first ones yet)
        out = []
        for first in range(0, n, QUEUE_MAX):
            rs = invoke_async(berth, [dict(EndpointName=ep, InputLocation=url, InferenceId="%s%d" % (prefix, i))
                                      for i in range(first, min(n, first + QUEUE_MAX))])
            out += [wait_object(berth, r["OutputLocation"]).decode() for r in rs]
        return sorted(out)
    assert who(8, "w") == ["X!"] * 8
    berth.sm.update_endpoint_weights_and_capacities(EndpointName=ep, DesiredWeightsAndCapacities=[
        {"VariantName": "va", "DesiredWeight": 1.0}, {"VariantName": "vb", "DesiredWeight": 1.0}])
    berth.sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert set(who(16, "e")) == {"X!", "x!"}
    berth.delete_endpoint_and_wait(ep)
    berth.sm.delete_endpoint_config(EndpointConfigName=name + "-cfg")
    for v in ("va", "vb"):
        berth.sm.delete_model(ModelName="%s-%s" % (name, v))
    berth.assert_serving()


def test_container_error_is_written_to_the_failure_location(berth):
    name = bh.unique_name("afail")
    body = '{"error":"the model refuses this input"}'
    ep, output, failure = async_stack(berth, name, env={"ECHO_MODE": "fail", "ECHO_FAIL_STATUS": "500",
                                                      "ECHO_FAIL_BODY": body})
    url = put_object(berth, name + "/in/x", b"hello")
    r = invoke_one(berth, ep, url, InferenceId="bad-1")
    assert r.get("status") == 202, r
    assert wait_object(berth, r["FailureLocation"]) == body.encode()
    assert r["FailureLocation"] == failure + "/bad-1-error.out"
    bh.wait_until(lambda: async_records(berth) == [], 5, "the request's record removed")
    assert not os.path.exists(object_path(berth, r["OutputLocation"]))
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_invocation_timeout(berth):
    name = bh.unique_name("ahang")
    ep, _, _ = async_stack(berth, name, env={"ECHO_MODE": "hang"})
    url = put_object(berth, name + "/in/x", b"hello")
    t0 = time.monotonic()
    r = invoke_one(berth, ep, url, InvocationTimeoutSeconds=1)
    text = wait_object(berth, r["FailureLocation"], timeout=15).decode()
    assert text == ("Inference request timed out: the container of endpoint %s did not answer within the "
                    "InvocationTimeoutSeconds of 1 s." % ep)
    assert time.monotonic() - t0 < 10
    assert not os.path.exists(object_path(berth, r["OutputLocation"]))
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_ttl_expiry_of_a_queued_request_and_the_queue_gauges(berth):
    """One slot (MaxConcurrentInvocationsPerInstance 1) held by a request
    the container never answers (timeout 64 s); a second one, TTL 60 s, waits
    behind it and expires in the queue. While it waits /metrics and berth
    describe show it."""
    name = bh.unique_name("attl")
    ep, _, _ = async_stack(berth, name, env={"ECHO_MODE": "hang"}, max_concurrent=1)
    url = put_object(berth, name + "/in/x", b"hello")
    first, second = invoke_async(berth, [
        dict(EndpointName=ep, InputLocation=url, InferenceId="holder", InvocationTimeoutSeconds=64),
        dict(EndpointName=ep, InputLocation=url, InferenceId="waiter", RequestTTLSeconds=60)])
    assert first.get("status") == 202 and second.get("status") == 202, (first, second)
    t0 = time.monotonic()

    def gauges():
        text = metrics(berth)
        return (gauge(text, "ApproximateBacklogSize", ep), gauge(text, "ApproximateBacklogSizePerInstance", ep),
                gauge(text, "ApproximateAgeOfOldestRequest", ep), gauge(text, "berth_async_running", ep))
    bh.wait_until(lambda: gauges()[0] == 1, 10, "ApproximateBacklogSize 1 on /metrics")
    time.sleep(2)
    backlog, per_instance, age, running = gauges()
    assert (backlog, per_instance, running) == (1, 1, 1)
    assert 1.5 < age < 30, age
    r = berth.cli("describe", ep)
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)["AsyncInference"]
    assert (q["ApproximateBacklogSize"], q["ApproximateBacklogSizePerInstance"], q["Running"]) == (1, 1, 1), q
    assert 1.5 < q["ApproximateAgeOfOldestRequest"] < 30, q
    text = wait_object(berth, second["FailureLocation"], timeout=75).decode()
    waited = time.monotonic() - t0
    assert re.fullmatch(r"Inference request expired: it waited 6\d s in the queue of endpoint %s, longer than its "
                        r"RequestTTLSeconds of 60 s, before an instance was free to run it\." % ep, text), text
    assert 55 < waited < 66, waited
    assert not os.path.exists(object_path(berth, second["OutputLocation"]))
    # the holder times out after that, and the gauges go back to 0
    text = wait_object(berth, first["FailureLocation"], timeout=20).decode()
    assert "did not answer within the InvocationTimeoutSeconds of 64 s" in text
    bh.wait_until(lambda: gauges()[:2] == (0, 0) and gauges()[3] == 0, 10, "the gauges back to 0")
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_berthd_kill_9_with_requests_queued_and_running(berth):
    """The running request (a slow streamed answer) is failed after the
    restart, never sent again; the two queued behind it run after it."""
    name = bh.unique_name("akill")
    ep, _, _ = async_stack(berth, name, max_concurrent=1, env={"ECHO_MODE": "count"})
    url = put_object(berth, name + "/in/x", b"payload")
    results = invoke_async(berth, [
        dict(EndpointName=ep, InputLocation=url, InferenceId="running", CustomAttributes="stream=2,delay=4000"),
        dict(EndpointName=ep, InputLocation=url, InferenceId="queued-1"),
        dict(EndpointName=ep, InputLocation=url, InferenceId="queued-2")])
    assert all(r.get("status") == 202 for r in results), results

    def states():
        out = {}
        for p in glob.glob(os.path.join(berth.state_dir, "async", "*.json")):
            with open(p) as f:
                doc = json.load(f)
            out[doc["inference_id"]] = "running" if os.path.exists(p[:-5] + ".running") else "queued"
        return out
    bh.wait_until(lambda: states() == {"running": "running", "queued-1": "queued", "queued-2": "queued"}, 10,
                  "one request running, two queued, on disk")
    berth.restart_berthd()
    text = wait_object(berth, results[0]["FailureLocation"], timeout=20).decode()
    assert text == ("berthd restarted while this inference request was running in the container of endpoint %s; "
                    "it is not run again, so that it never runs twice. Invoke the endpoint again if it should run."
                    % ep)
    # echo's count mode: the container saw the first request once (streamed,
    # so it was counted), then each queued one once
    outs = sorted(wait_object(berth, r["OutputLocation"], timeout=20) for r in results[1:])
    assert outs == [b'{"invocations":2}', b'{"invocations":3}'], outs
    bh.wait_until(lambda: async_records(berth) == [], 5, "every record removed")
    assert not os.path.exists(object_path(berth, results[0]["OutputLocation"]))
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_berthd_sigterm_with_a_request_running(berth):
    """A graceful stop while a request runs: berthd gives the run up at
    once (it does not wait for the container), exits cleanly with nothing
    leaked, and the next start fails that request (never runs it twice)
    and runs the one queued behind it."""
    name = bh.unique_name("aterm")
    ep, _, _ = async_stack(berth, name, max_concurrent=1, env={"ECHO_MODE": "count"})
    url = put_object(berth, name + "/in/x", b"payload")
    results = invoke_async(berth, [
        dict(EndpointName=ep, InputLocation=url, InferenceId="running", CustomAttributes="stream=2,delay=30000"),
        dict(EndpointName=ep, InputLocation=url, InferenceId="queued")])
    assert all(r.get("status") == 202 for r in results), results
    running = lambda: [p for p in glob.glob(os.path.join(berth.state_dir, "async", "*.running"))]
    bh.wait_until(lambda: len(running()) == 1, 10, "the first request running")
    t0 = time.monotonic()
    berth.berthd.send_signal(signal.SIGTERM)
    code = berth.berthd.wait(timeout=20)
    took = time.monotonic() - t0
    assert code == 0, (code, berth.log_tail())
    assert took < 5, "berthd took %.1f s to stop: it waited for the running request" % took
    assert berth.sanitizer_reports() == []
    assert "left for the next start" in berthd_log(berth)
    records = [p for p in async_records(berth) if p.endswith(".json")]
    assert len(running()) == 1 and len(records) == 2, ("both requests still on disk", async_records(berth))
    berth.start_berthd()
    text = wait_object(berth, results[0]["FailureLocation"], timeout=20).decode()
    assert text.startswith("berthd restarted while this inference request was running"), text
    assert wait_object(berth, results[1]["OutputLocation"], timeout=20) == b'{"invocations":2}'
    bh.wait_until(lambda: async_records(berth) == [], 5, "every record removed")
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_full_queue_is_refused_and_nothing_accepted_is_lost(berth):
    name = bh.unique_name("afull")
    ep, _, _ = async_stack(berth, name, env={"ECHO_MODE": "hang"}, max_concurrent=1)
    url = put_object(berth, name + "/in/x", b"hello")
    calls = [dict(EndpointName=ep, InputLocation=url, InferenceId="r%d" % i, InvocationTimeoutSeconds=2)
             for i in range(QUEUE_MAX + 1)]
    results = invoke_async(berth, calls)
    accepted = [r for r in results if r.get("status") == 202]
    assert len(accepted) == QUEUE_MAX, results
    refused = results[QUEUE_MAX]
    assert refused["error"] == {
        "code": "ServiceUnavailable", "status": 503,
        "message": "The asynchronous inference queue of endpoint %s is full: %d requests are waiting or running, "
                   "berthd's bound (async_queue_max) is %d. Try your call again later." % (ep, QUEUE_MAX, QUEUE_MAX)}
    for r in accepted:  # each runs in turn and times out: every one gets its failure
        assert "did not answer within the InvocationTimeoutSeconds of 2 s" in \
            wait_object(berth, r["FailureLocation"], timeout=20).decode()
    assert invoke_one(berth, ep, url, InvocationTimeoutSeconds=1).get("status") == 202  # room again
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_delete_endpoint_drops_its_queue(berth):
    name = bh.unique_name("adel")
    ep, _, _ = async_stack(berth, name, env={"ECHO_MODE": "hang"}, max_concurrent=1)
    url = put_object(berth, name + "/in/x", b"hello")
    results = invoke_async(berth, [dict(EndpointName=ep, InputLocation=url, InferenceId="d%d" % i,
                                        InvocationTimeoutSeconds=30) for i in range(3)])
    assert all(r.get("status") == 202 for r in results), results
    bh.wait_until(lambda: len(glob.glob(os.path.join(berth.state_dir, "async", "*.json"))) == 3, 5, "three records")
    berth.delete_endpoint_and_wait(ep)
    for r in results[1:]:
        assert wait_object(berth, r["FailureLocation"]).decode() == \
            "Endpoint %s was deleted before this inference request ran." % ep
    # the running one ends with its container
    assert "could not be invoked" in wait_object(berth, results[0]["FailureLocation"], timeout=40).decode()
    bh.wait_until(lambda: async_records(berth) == [], 5, "every record removed")
    assert "3 queued asynchronous" not in berthd_log(berth)
    assert "2 queued asynchronous requests dropped" in berthd_log(berth)
    berth.sm.delete_endpoint_config(EndpointConfigName=name + "-cfg")
    berth.sm.delete_model(ModelName=name)
    berth.assert_serving()


# ---- bad input ------------------------------------------------------------------

def test_bad_headers_are_refused_by_the_router(berth):
    name = bh.unique_name("abad")
    ep, _, _ = async_stack(berth, name)
    url = put_object(berth, name + "/in/x", b"hello")
    cases = [
        ({}, "1 validation error detected: Value null at 'inputLocation' failed to satisfy constraint: Member must "
             "not be null"),
        ({"X-Amzn-SageMaker-InputLocation": "ftp://b/k"},
         "1 validation error detected: Value 'ftp://b/k' at 'inputLocation' failed to satisfy constraint: Member "
         "must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"),
        ({"X-Amzn-SageMaker-InputLocation": "s3:///k"},
         "1 validation error detected: Value 's3:///k' at 'inputLocation' failed to satisfy constraint: Member "
         "must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"),
        ({"X-Amzn-SageMaker-InputLocation": url, "X-Amzn-SageMaker-RequestTTLSeconds": "59",
          "X-Amzn-SageMaker-InvocationTimeoutSeconds": "3601"},
         "2 validation errors detected: Value '59' at 'requestTTLSeconds' failed to satisfy constraint: Member "
         "must have value greater than or equal to 60; Value '3601' at 'invocationTimeoutSeconds' failed to "
         "satisfy constraint: Member must have value less than or equal to 3600"),
        ({"X-Amzn-SageMaker-InputLocation": url, "X-Amzn-SageMaker-InvocationTimeoutSeconds": "ten"},
         "1 validation error detected: Value 'ten' at 'invocationTimeoutSeconds' failed to satisfy constraint: "
         "Member must be an integer"),
        ({"X-Amzn-SageMaker-InputLocation": url, "X-Amzn-SageMaker-Inference-Id": "x" * 65},
         "1 validation error detected: Value '%s' at 'inferenceId' failed to satisfy constraint: Member must have "
         "length less than or equal to 64" % ("x" * 65)),
    ]
    for headers, message in cases:
        status, h, doc = raw_async(berth, ep, headers)
        assert (status, h.get("x-amzn-errortype"), doc) == (400, "ValidationError:", {"message": message}), \
            (headers, status, h, doc)
    assert async_records(berth) == []
    # an endpoint that does not exist, and one without AsyncInferenceConfig
    status, _, doc = raw_async(berth, name + "-none", {"X-Amzn-SageMaker-InputLocation": url})
    assert (status, doc) == (400, {"message": "Endpoint %s-none of account 000000000000 not found." % name})
    plain = bh.unique_name("aplain")
    _, _, plain_ep = bh.create_endpoint_stack(berth.sm, plain, primary=bh.container(), inst=berth)
    status, h, doc = raw_async(berth, plain_ep, {"X-Amzn-SageMaker-InputLocation": url})
    assert (status, h.get("x-amzn-errortype")) == (400, "ValidationError:"), doc
    assert doc == {"message": "Endpoint %s of account 000000000000 is not configured for asynchronous inference: "
                              "its endpoint configuration %s-cfg has no AsyncInferenceConfig. Call InvokeEndpoint "
                              "instead, or update the endpoint to a configuration with an AsyncInferenceConfig."
                              % (plain_ep, plain)}
    # a key that may only InvokeEndpoint may not InvokeEndpointAsync
    status, h, doc = raw_async(berth, ep, {"X-Amzn-SageMaker-InputLocation": url}, key=berth.invoke_key)
    assert status == 403 and "sagemaker:InvokeEndpointAsync" in doc["message"], (status, doc)
    assert async_records(berth) == []
    bh.delete_stack(berth, plain, plain + "-cfg", plain_ep)
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_missing_input_object_and_unwritable_output(berth):
    name = bh.unique_name("aio")
    # the output prefix lies under a regular file: nothing can be written there
    blocker = put_object(berth, name + "/blocked", b"a file, not a directory")
    ep, output, failure = async_stack(berth, name, output=blocker + "/out")
    r = invoke_one(berth, ep, "s3://%s/%s/nothing-here" % (BUCKET, name), InferenceId="missing")
    assert r.get("status") == 202, r
    assert wait_object(berth, r["FailureLocation"]).decode() == (
        "Failed to download the input(bucket: %s, key: %s/nothing-here): there is no object at the InputLocation "
        "s3://%s/%s/nothing-here. Upload the input there, then invoke the endpoint again." % (BUCKET, name, BUCKET,
                                                                                             name))
    url = put_object(berth, name + "/in/x", b"hello")
    r = invoke_one(berth, ep, url, InferenceId="unwritable")
    text = wait_object(berth, r["FailureLocation"]).decode()
    assert text.startswith("The inference succeeded, but its result could not be written to %s/out/unwritable.out: "
                           % blocker), text
    assert "Not a directory" in text, text
    bh.wait_until(lambda: async_records(berth) == [], 5, "every record removed")
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_input_over_the_bound_is_a_failure_not_a_crash(berth):
    name = bh.unique_name("abig")
    ep, _, _ = async_stack(berth, name)
    url = put_object(berth, name + "/in/big", b"z" * (MAX_BYTES + 1))
    r = invoke_one(berth, ep, url, InferenceId="big")
    assert wait_object(berth, r["FailureLocation"]).decode() == (
        "Failed to download the input from %s: it is larger than berthd's bound of %d bytes (async_max_bytes)."
        % (url, MAX_BYTES))
    assert not os.path.exists(object_path(berth, r["OutputLocation"]))
    # exactly the bound passes, byte for byte
    url = put_object(berth, name + "/in/max", b"y" * MAX_BYTES)
    r = invoke_one(berth, ep, url, InferenceId="max")
    assert wait_object(berth, r["OutputLocation"]) == b"y" * MAX_BYTES
    bh.delete_stack(berth, name, name + "-cfg", ep)
    berth.assert_serving()


def test_s3_endpoint_input_and_output_through_moto(tmp_path_factory):
    """The same through an S3 server (moto's): the input fetched and the
    output written with signed requests."""
    import test_s3
    moto = test_s3.Moto(str(tmp_path_factory.mktemp("moto-async")))
    insts = bh.Instances()
    try:
        moto.s3.create_bucket(Bucket=BUCKET)
        inst = insts.make(keys=[ASYNC_KEY], extra_berthd=["--s3-endpoint", moto.url, "--s3-bucket", BUCKET],
                          env=dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"))
        name = bh.unique_name("as3")
        ep, _, _ = async_stack(inst, name)
        data = os.urandom(70000)
        moto.s3.put_object(Bucket=BUCKET, Key=name + "/in.bin", Body=data)
        r = invoke_one(inst, ep, "s3://%s/%s/in.bin" % (BUCKET, name), InferenceId="via-s3")
        assert r.get("status") == 202, r
        key = "%s/out/via-s3.out" % name

        def fetched():
            try:
                return moto.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except Exception:
                return None
        bh.wait_until(lambda: fetched() is not None, 20, "the output in moto")
        assert fetched() == data
        assert moto.requests("PUT", BUCKET, key) == [200]
        bh.delete_stack(inst, name, name + "-cfg", ep)
        inst.assert_serving()
    finally:
        try:
            insts.teardown()
        finally:
            moto.stop()
