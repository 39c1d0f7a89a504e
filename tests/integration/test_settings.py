"""No silently ignored settings (issue 11, item 5) and the container
environment (item 8), through the real boto3 against real berthd, router
and runc containers.

- Every member of SageMaker's requests berth does not implement is refused
  with 400 ValidationException "berth does not support PATH yet: WHAT.
  Remove it from the OPERATION request.": each case is sent for real, its
  exact answer checked, nothing is created or changed, berth serves on.
- ContainerStartupHealthCheckTimeoutInSeconds bites: this berthd's own
  health timeout is 3 s; a container whose /ping answers 200 only after 5 s
  fails without the setting ("within 3 seconds") and is InService with it
  (60, SageMaker's minimum). The downward direction (60 s below berthd's
  default 240 s) would take a minute per run; it is the same code path
  (runtime_startup_timeout_ms), so it is not run here.
- ModelDataDownloadTimeoutInSeconds is validated, described, and an
  endpoint whose variant sets it fetches its model data and serves (the
  deadline itself: tests/unit/test_unpack.c).
- EnableNetworkIsolation is described as given, also after kill -9 of
  berthd.
- SageMaker's variables in the container: SAGEMAKER_BIND_TO_PORT=8080
  (Environment cannot move it), SAGEMAKER_SAFE_PORT_RANGE=23000-23999
  (Environment may), read back from inside the container."""
import io
import os
import tarfile
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import berth_helpers as bh

S = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(extra_berthd=["--health-timeout-ms", "3000"])


def raw(berth):
    """A client that skips botocore's own checks (its minimums, members its
    model does not know are still dropped)."""
    return berth.client("sagemaker", config=Config(parameter_validation=False,
                                                   retries={"total_max_attempts": 1}))


def message(path, what, op):
    return "berth does not support %s yet: %s. Remove it from the %s request." % (path, what, op)


def variant(model, **extra):
    v = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}
    v.update(extra)
    return v


def refused_raw(berth, op, body, msg):
    """Sends body as it is (members botocore's model lacks included)."""
    status, headers, _, doc = bh.control_raw(berth.port, op, body)
    assert (status, doc) == (400, {"__type": "ValidationException", "message": msg}), (status, doc)


def refused(call, msg):
    with pytest.raises(ClientError) as e:
        call()
    assert bh.error_code(e.value) == "ValidationException", e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert bh.error_message(e.value) == msg


def gone(call):
    with pytest.raises(ClientError) as e:
        call()
    assert bh.error_code(e.value) == "ValidationException"
    assert bh.error_message(e.value).startswith("Could not find")


NO_VPC = "containers have no network but their own loopback, so there is no VPC to attach them to"
BLUE_GREEN = ("updates are always blue/green, all at once, with roll-back when the new instances do not become "
              "healthy")

# (member given, path in the message, what) for CreateModel, through boto3
MODEL_CASES = [
    ({"VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}}, "VpcConfig", NO_VPC),
    ({"PrimaryContainer": {"Image": "x", "ModelPackageName": "p"}}, "PrimaryContainer.ModelPackageName",
     "there is no model registry; give Image (and ModelDataUrl) instead"),
    ({"PrimaryContainer": {"Image": "x", "InferenceSpecificationName": "s"}},
     "PrimaryContainer.InferenceSpecificationName", "there is no model registry; give Image instead"),
    ({"Containers": [{"Image": "x"}, {"Image": "x", "ImageConfig": {
        "RepositoryAccessMode": "Vpc", "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": "arn:aws:lambda:l"}}}]},
     "Containers.2.ImageConfig.RepositoryAuthConfig",
     "registry credentials are berthd's (its registries configuration), not a Lambda function's"),
]

# members of CreateEndpointConfig, through boto3
CONFIG_CASES = [
    ({"DataCaptureConfig": {"InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/capture",
                            "CaptureOptions": [{"CaptureMode": "Input"}]}},
     "DataCaptureConfig", "requests and responses are not captured"),
    ({"KmsKeyId": "alias/k"}, "KmsKeyId", "there is no KMS to encrypt the instances' storage with"),
    ({"AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/out", "KmsKeyId": "alias/k"}}},
     "AsyncInferenceConfig.OutputConfig.KmsKeyId", "there is no KMS to encrypt asynchronous inference results with"),
    ({"ExplainerConfig": {"ClarifyExplainerConfig": {"ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "1"}}}}},
     "ExplainerConfig", "there is no SageMaker Clarify explainer"),
    ({"ShadowProductionVariants": "SHADOW"}, "ShadowProductionVariants", "shadow variants are not served"),
]

# members of a production variant, through boto3 (Debian's botocore knows these)
VARIANT_CASES = [
    ({"AcceleratorType": "ml.eia2.medium"}, "AcceleratorType", "Elastic Inference accelerators do not exist on this host"),
    ({"CoreDumpConfig": {"DestinationS3Uri": "s3://b/dumps"}}, "CoreDumpConfig",
     "core dumps of serving containers are not collected"),
    ({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}, "ServerlessConfig",
     "serverless variants are not served; give InstanceType and InitialInstanceCount instead"),
    ({"VolumeSizeInGB": 30}, "VolumeSizeInGB",
     "containers write to a private overlay on berthd's state directory, whose size berth does not bound per variant"),
]

# members newer than Debian's botocore: sent as raw signed JSON
VARIANT_RAW_CASES = [
    ({"EnableSSMAccess": True}, "EnableSSMAccess", "there is no SSM agent to reach the containers (false is accepted)"),
    ({"ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 2}},
     "ManagedInstanceScaling", "berth does not scale instances by itself; use UpdateEndpointWeightsAndCapacities"),
    ({"InferenceAmiVersion": "al2-ami-sagemaker-inference-gpu-2"}, "InferenceAmiVersion",
     "containers run on this host's kernel and drivers, not on a SageMaker AMI"),
    ({"InstancePools": [{"InstanceType": "ml.m5.large"}]}, "InstancePools",
     "instance pools choose among several instance types; berth runs each variant on its one InstanceType"),
    ({"VariantInstanceProvisionTimeoutInSeconds": 600}, "VariantInstanceProvisionTimeoutInSeconds",
     "it bounds the provisioning of instances, which berth does not do: an instance is started at once"),
    ({"CapacityReservationConfig": {"MlReservationArn": "arn:aws:sagemaker:us-east-1:1:r/x"}},
     "CapacityReservationConfig", "there are no capacity reservations on one host"),
]

CONFIG_RAW_CASES = [
    ({"ExecutionRoleArn": bh.ROLE}, "ExecutionRoleArn", "it serves inference components, which berth does not have"),
    ({"VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}}, "VpcConfig", NO_VPC),
    ({"EnableNetworkIsolation": True}, "EnableNetworkIsolation",
     "it serves inference components, which berth does not have; give it in CreateModel"),
    ({"MetricsConfig": {"EnableEnhancedMetrics": True}}, "MetricsConfig",
     "berth-router's /metrics has no per-endpoint settings"),
]


@pytest.fixture(scope="module")
def model(berth):
    name = "Settings-" + S
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    yield name
    berth.sm.delete_model(ModelName=name)


@pytest.mark.parametrize("extra,path,what", MODEL_CASES, ids=[c[1] for c in MODEL_CASES])
def test_create_model_refuses_unsupported_members(berth, extra, path, what):
    name = "Refused-" + S
    kw = {"ModelName": name, "ExecutionRoleArn": bh.ROLE, "PrimaryContainer": bh.container()}
    kw.update(extra)
    if "Containers" in extra:
        del kw["PrimaryContainer"]
    refused(lambda: berth.sm.create_model(**kw), message(path, what, "CreateModel"))
    gone(lambda: berth.sm.describe_model(ModelName=name))
    berth.assert_serving()


@pytest.mark.parametrize("extra,path,what", CONFIG_CASES, ids=[c[1] for c in CONFIG_CASES])
def test_create_endpoint_config_refuses_unsupported_members(berth, model, extra, path, what):
    name = "RefusedCfg-" + S
    if extra.get("ShadowProductionVariants") == "SHADOW":
        extra = {"ShadowProductionVariants": [variant(model, VariantName="Shadow")]}
    refused(lambda: berth.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant(model)],
                                                    **extra),
            message(path, what, "CreateEndpointConfig"))
    gone(lambda: berth.sm.describe_endpoint_config(EndpointConfigName=name))
    berth.assert_serving()


@pytest.mark.parametrize("extra,path,what", VARIANT_CASES, ids=[c[1] for c in VARIANT_CASES])
def test_variant_members_refused(berth, model, extra, path, what):
    name = "RefusedVar-" + S
    variants = [variant(model), variant(model, VariantName="Second", **extra)]
    refused(lambda: berth.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants),
            message("ProductionVariants.2." + path, what, "CreateEndpointConfig"))
    gone(lambda: berth.sm.describe_endpoint_config(EndpointConfigName=name))
    berth.assert_serving()


@pytest.mark.parametrize("extra,path,what", VARIANT_RAW_CASES + CONFIG_RAW_CASES,
                         ids=[c[1] for c in VARIANT_RAW_CASES + CONFIG_RAW_CASES])
def test_newer_members_refused_as_sent(berth, model, extra, path, what):
    name = "RefusedRaw-" + S
    body = {"EndpointConfigName": name, "ProductionVariants": [variant(model)]}
    if (extra, path, what) in VARIANT_RAW_CASES:
        body["ProductionVariants"][0].update(extra)
        path = "ProductionVariants.1." + path
    else:
        body.update(extra)
    refused_raw(berth, "CreateEndpointConfig", body, message(path, what, "CreateEndpointConfig"))
    gone(lambda: berth.sm.describe_endpoint_config(EndpointConfigName=name))
    berth.assert_serving()


def test_multi_model_config_cache_enabled_is_kept_disabled_is_refused(berth):
    """MultiModelConfig: ModelCacheSetting Enabled (or none) is what berth's
    multi-model containers do, so it is accepted and described back;
    Disabled is refused in words; another value gets SageMaker's enum
    message. Through Debian's boto3, which knows the member."""
    name = "Mmc-" + S
    second = dict(bh.container(), ContainerHostname="second")

    def create(setting):
        return berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, Containers=[
            bh.container("first"), dict(second, MultiModelConfig=setting)])
    refused(lambda: create({"ModelCacheSetting": "Disabled"}),
            "berth does not support ModelCacheSetting Disabled (Containers.2.MultiModelConfig) yet: multi-model "
            "containers always cache their models (loaded on first use, evicted least recently used). Give "
            "ModelCacheSetting Enabled, or leave MultiModelConfig out of the CreateModel request.")
    refused(lambda: create({"ModelCacheSetting": "Sometimes"}),
            "1 validation error detected: Value 'Sometimes' at 'containers.2.multiModelConfig.modelCacheSetting' "
            "failed to satisfy constraint: Member must satisfy enum value set: [Enabled, Disabled]")
    gone(lambda: berth.sm.describe_model(ModelName=name))
    for setting in ({"ModelCacheSetting": "Enabled"}, {}):
        create(setting)
        try:
            got = [c.get("MultiModelConfig") for c in berth.sm.describe_model(ModelName=name)["Containers"]]
            assert got == [None, setting], got
            berth.restart_berthd()  # kept in the model's record
            got = [c.get("MultiModelConfig") for c in berth.sm.describe_model(ModelName=name)["Containers"]]
            assert got == [None, setting], got
        finally:
            berth.sm.delete_model(ModelName=name)
    berth.assert_serving()


def test_routing_config_least_outstanding_is_kept_random_is_refused(berth, model):
    """RoutingConfig: LEAST_OUTSTANDING_REQUESTS is what the router does
    anyway, so it is accepted and described back; RANDOM is refused in
    words; a value outside SageMaker's set and a missing strategy get
    SageMaker's own validation messages. Sent raw: Debian's botocore does
    not know the member."""
    name = "Routing-" + S
    body = {"EndpointConfigName": name, "ProductionVariants": [
        variant(model, VariantName="Other"),
        variant(model, RoutingConfig={"RoutingStrategy": "RANDOM"})]}
    refused_raw(berth, "CreateEndpointConfig", body,
                "berth does not support RoutingStrategy RANDOM (ProductionVariants.2.RoutingConfig) yet: berth "
                "always routes a variant's requests to the instance with the fewest outstanding requests. Give "
                "RoutingStrategy LEAST_OUTSTANDING_REQUESTS, or leave RoutingConfig out of the "
                "CreateEndpointConfig request.")
    body["ProductionVariants"][1]["RoutingConfig"] = {"RoutingStrategy": "ROUND_ROBIN"}
    refused_raw(berth, "CreateEndpointConfig", body,
                "1 validation error detected: Value 'ROUND_ROBIN' at "
                "'productionVariants.2.routingConfig.routingStrategy' failed to satisfy constraint: Member must "
                "satisfy enum value set: [LEAST_OUTSTANDING_REQUESTS, RANDOM]")
    body["ProductionVariants"][1]["RoutingConfig"] = {}
    status, _, _, doc = bh.control_raw(berth.port, "CreateEndpointConfig", body)
    assert status == 400 and doc["__type"] == "ValidationException", (status, doc)
    assert "productionVariants.2.routingConfig.routingStrategy" in doc["message"], doc
    gone(lambda: berth.sm.describe_endpoint_config(EndpointConfigName=name))

    body["ProductionVariants"][1]["RoutingConfig"] = {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    status, _, _, doc = bh.control_raw(berth.port, "CreateEndpointConfig", body)
    assert status == 200 and doc["EndpointConfigArn"].endswith("endpoint-config/" + name.lower()), (status, doc)
    try:
        variants = berth.sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
        status, _, _, raw_doc = bh.control_raw(berth.port, "DescribeEndpointConfig", {"EndpointConfigName": name})
        assert status == 200, raw_doc
        assert [v.get("RoutingConfig") for v in raw_doc["ProductionVariants"]] == [
            None, {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}], raw_doc
        assert [v["VariantName"] for v in variants] == ["Other", "AllTraffic"]
        # an endpoint of it describes its variants' RoutingConfig too, and
        # keeps it across a berthd restart (its own copy of the variants)
        berth.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        berth.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        berth.restart_berthd()
        status, _, _, ep = bh.control_raw(berth.port, "DescribeEndpoint", {"EndpointName": name})
        assert status == 200, ep
        assert {v["VariantName"]: v.get("RoutingConfig") for v in ep["ProductionVariants"]} == {
            "Other": None, "AllTraffic": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}, ep
        berth.sm.delete_endpoint(EndpointName=name)
        berth.sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    finally:
        berth.sm.delete_endpoint_config(EndpointConfigName=name)
    berth.assert_serving()


MODEL_RAW_CASES = [
    ({"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/m/", "S3DataType": "S3Prefix",
                                           "CompressionType": "None"}}},
     "ModelDataSource", "give the model data as ModelDataUrl (a .tar.gz, or a directory already unpacked)"),
    ({"AdditionalModelDataSources": [{"ChannelName": "draft", "S3DataSource": {
        "S3Uri": "s3://b/d/", "S3DataType": "S3Prefix", "CompressionType": "None"}}]},
     "AdditionalModelDataSources", "only ModelDataUrl is mounted, at /opt/ml/model"),
]


@pytest.mark.parametrize("extra,path,what", MODEL_RAW_CASES, ids=[c[1] for c in MODEL_RAW_CASES])
def test_newer_container_members_refused_as_sent(berth, extra, path, what):
    name = "RefusedRawModel-" + S
    primary = dict(bh.container(), **extra)
    refused_raw(berth, "CreateModel", {"ModelName": name, "ExecutionRoleArn": bh.ROLE, "PrimaryContainer": primary},
                message("PrimaryContainer." + path, what, "CreateModel"))
    refused_raw(berth, "CreateModel", {"ModelName": name, "ExecutionRoleArn": bh.ROLE,
                                       "Containers": [bh.container(hostname="a"), dict(primary, ContainerHostname="b")]},
                message("Containers.2." + path, what, "CreateModel"))
    gone(lambda: berth.sm.describe_model(ModelName=name))
    berth.assert_serving()


def test_false_and_null_are_not_settings(berth, model):
    """EnableSSMAccess false is what berth does; JSON null is "not given"."""
    name = "Accepted-" + S
    status, _, _, doc = bh.control_raw(berth.port, "CreateEndpointConfig", {
        "EndpointConfigName": name, "KmsKeyId": None, "DataCaptureConfig": None,
        "ProductionVariants": [variant(model, EnableSSMAccess=False, ServerlessConfig=None)]})
    assert status == 200, doc
    d = berth.sm.describe_endpoint_config(EndpointConfigName=name)
    assert "EnableSSMAccess" not in d["ProductionVariants"][0]
    berth.sm.delete_endpoint_config(EndpointConfigName=name)


@pytest.fixture(scope="module")
def endpoint(berth, model):
    cfg = "SettingsCfg-" + S
    berth.sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[variant(model)])
    ep = "SettingsEp-" + S
    refused(lambda: berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg, DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}}),
            message("DeploymentConfig", BLUE_GREEN, "CreateEndpoint"))
    gone(lambda: berth.sm.describe_endpoint(EndpointName=ep))
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
    berth.wait_in_service(ep)
    berth.note_containers()
    yield ep, cfg
    berth.delete_endpoint_and_wait(ep)
    berth.sm.delete_endpoint_config(EndpointConfigName=cfg)


def test_update_members_refused_and_endpoint_unchanged(berth, model, endpoint):
    ep, cfg = endpoint
    before = berth.sm.describe_endpoint(EndpointName=ep)
    cases = [
        ({"RetainAllVariantProperties": True}, "RetainAllVariantProperties",
         "the new endpoint configuration's weights and instance counts are used (false is accepted)"),
        ({"ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}]},
         "ExcludeRetainedVariantProperties", "variant properties are not retained across an update"),
        ({"DeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
            "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}}}, "DeploymentConfig", BLUE_GREEN),
    ]
    for extra, path, what in cases:
        refused(lambda: berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg, **extra),
                message(path, what, "UpdateEndpoint"))
    refused_raw(berth, "UpdateEndpointWeightsAndCapacities", {
        "EndpointName": ep, "DesiredWeightsAndCapacities": [
            {"VariantName": "AllTraffic", "DesiredWeight": 2, "ServerlessUpdateConfig": {"MaxConcurrency": 2}}]},
        message("DesiredWeightsAndCapacities.1.ServerlessUpdateConfig", "serverless variants are not served",
                "UpdateEndpointWeightsAndCapacities"))
    after = berth.sm.describe_endpoint(EndpointName=ep)
    assert after["EndpointStatus"] == "InService"
    assert after["LastModifiedTime"] == before["LastModifiedTime"]
    assert after["ProductionVariants"][0]["CurrentWeight"] == before["ProductionVariants"][0]["CurrentWeight"]
    assert berth.rt.invoke_endpoint(EndpointName=ep, Body=b"still")["Body"].read() == b"still"
    berth.assert_serving()


def test_timeouts_validated_and_described(berth, model):
    name = "Timeouts-" + S
    refused(lambda: raw(berth).create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        variant(model, ContainerStartupHealthCheckTimeoutInSeconds=59)]),
        "1 validation error detected: Value '59' at 'productionVariants.1.containerStartupHealthCheckTimeoutInSeconds' "
        "failed to satisfy constraint: Member must have value greater than or equal to 60")
    refused(lambda: berth.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        variant(model, ModelDataDownloadTimeoutInSeconds=3601)]),
        "1 validation error detected: Value '3601' at 'productionVariants.1.modelDataDownloadTimeoutInSeconds' "
        "failed to satisfy constraint: Member must have value less than or equal to 3600")
    gone(lambda: berth.sm.describe_endpoint_config(EndpointConfigName=name))
    berth.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        variant(model, ContainerStartupHealthCheckTimeoutInSeconds=60, ModelDataDownloadTimeoutInSeconds=3600)])
    v = berth.sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert (v["ContainerStartupHealthCheckTimeoutInSeconds"], v["ModelDataDownloadTimeoutInSeconds"]) == (60, 3600)
    berth.restart_berthd()
    v = berth.sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert (v["ContainerStartupHealthCheckTimeoutInSeconds"], v["ModelDataDownloadTimeoutInSeconds"]) == (60, 3600)
    berth.sm.delete_endpoint_config(EndpointConfigName=name)


def _slow_stack(berth, name, **variant_extra):
    """A model whose /ping answers 503 for its first 5 s, then 200."""
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE,
                          PrimaryContainer=bh.container(env={"ECHO_PING_OK_AFTER": "5"}))
    berth.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant(name, **variant_extra)])
    berth.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _wait_settled(berth, name, timeout=30):
    bh.wait_until(lambda: berth.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "Creating",
                  timeout, "endpoint %s to leave Creating" % name)
    return berth.sm.describe_endpoint(EndpointName=name)


def test_startup_health_check_timeout_bites(berth):
    # without the setting: berthd's own 3-s health timeout fails it
    plain = "SlowPlain-" + S
    _slow_stack(berth, plain)
    d = _wait_settled(berth, plain)
    assert d["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check within 3 seconds" in d["FailureReason"], d["FailureReason"]
    # with ContainerStartupHealthCheckTimeoutInSeconds 60 (SageMaker's minimum) it waits for the container
    slow = "SlowOk-" + S
    _slow_stack(berth, slow, ContainerStartupHealthCheckTimeoutInSeconds=60)
    d = _wait_settled(berth, slow)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    berth.note_containers()
    assert berth.rt.invoke_endpoint(EndpointName=slow, Body=b"late")["Body"].read() == b"late"
    for name in (plain, slow):
        bh.delete_stack(berth, name, name, name)
    berth.assert_serving()


def test_model_data_download_timeout_endpoint_serves(berth):
    name = "Download-" + S
    bucket = "settings-" + S.lower()
    os.makedirs(os.path.join(berth.object_root, bucket))
    with tarfile.open(os.path.join(berth.object_root, bucket, "model.tar.gz"), "w:gz") as t:
        data = b"weights"
        ti = tarfile.TarInfo("weights.bin")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(
        env={"ECHO_MODE": "file"}, model_data_url="s3://%s/model.tar.gz" % bucket))
    berth.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        variant(name, ModelDataDownloadTimeoutInSeconds=60)])
    berth.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    berth.wait_in_service(name)
    berth.note_containers()
    out = berth.rt.invoke_endpoint(EndpointName=name, Body=b"read /opt/ml/model/weights.bin")["Body"].read()
    assert out == b"weights"
    bh.delete_stack(berth, name, name, name)


def test_enable_network_isolation_round_trips_through_kill9(berth):
    iso, plain = "Isolated-" + S, "NotIsolated-" + S
    berth.sm.create_model(ModelName=iso, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(),
                          EnableNetworkIsolation=True)
    berth.sm.create_model(ModelName=plain, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(),
                          EnableNetworkIsolation=False)
    assert berth.sm.describe_model(ModelName=iso)["EnableNetworkIsolation"] is True
    assert berth.sm.describe_model(ModelName=plain)["EnableNetworkIsolation"] is False
    berth.restart_berthd()
    assert berth.sm.describe_model(ModelName=iso)["EnableNetworkIsolation"] is True
    assert berth.sm.describe_model(ModelName=plain)["EnableNetworkIsolation"] is False
    # an isolated model serves as any other (its containers have no network either way)
    berth.sm.create_endpoint_config(EndpointConfigName=iso, ProductionVariants=[variant(iso)])
    berth.sm.create_endpoint(EndpointName=iso, EndpointConfigName=iso)
    berth.wait_in_service(iso)
    assert berth.rt.invoke_endpoint(EndpointName=iso, Body=b"isolated")["Body"].read() == b"isolated"
    bh.delete_stack(berth, iso, iso, iso)
    berth.sm.delete_model(ModelName=plain)


def _env_of(berth, ep, key):
    out = berth.rt.invoke_endpoint(EndpointName=ep, Body=key.encode())["Body"].read().decode()
    return out.splitlines()[0]


def test_container_environment(berth):
    st = bh.create_endpoint_stack(berth.sm, "Env-" + S, primary=bh.container(env={"ECHO_MODE": "env"}), inst=berth)
    ep = st[2]
    assert _env_of(berth, ep, "SAGEMAKER_BIND_TO_PORT") == "SAGEMAKER_BIND_TO_PORT=8080"
    assert _env_of(berth, ep, "SAGEMAKER_SAFE_PORT_RANGE") == "SAGEMAKER_SAFE_PORT_RANGE=23000-23999"
    assert _env_of(berth, ep, "SAGEMAKER_MULTI_MODEL") == "SAGEMAKER_MULTI_MODEL unset"
    bh.delete_stack(berth, *st)
    # Environment may set the port range, never the port (the container still listens on 8080)
    st = bh.create_endpoint_stack(berth.sm, "EnvOwn-" + S, primary=bh.container(env={
        "ECHO_MODE": "env", "SAGEMAKER_SAFE_PORT_RANGE": "9000-9999", "SAGEMAKER_BIND_TO_PORT": "7000"}), inst=berth)
    ep = st[2]
    assert _env_of(berth, ep, "SAGEMAKER_SAFE_PORT_RANGE") == "SAGEMAKER_SAFE_PORT_RANGE=9000-9999"
    assert _env_of(berth, ep, "SAGEMAKER_BIND_TO_PORT") == "SAGEMAKER_BIND_TO_PORT=8080"
    # what the model was given is described as given
    env = berth.sm.describe_model(ModelName=st[0])["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_BIND_TO_PORT"] == "7000"
    bh.delete_stack(berth, *st)
    berth.assert_serving()


def test_image_config_access_mode(berth):
    """RepositoryAccessMode is checked (berthd pulls with its own registry
    settings whichever is given); RepositoryAuthConfig is refused above."""
    name = "AccessMode-" + S
    refused(lambda: berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=dict(
        bh.container(), ImageConfig={"RepositoryAccessMode": "Private"})),
        "1 validation error detected: Value 'Private' at 'primaryContainer.imageConfig.repositoryAccessMode' "
        "failed to satisfy constraint: Member must satisfy enum value set: [Platform, Vpc]")
    gone(lambda: berth.sm.describe_model(ModelName=name))
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=dict(
        bh.container(), ImageConfig={"RepositoryAccessMode": "Platform"}))
    berth.sm.delete_model(ModelName=name)
    berth.assert_serving()
