"""Tags (issue 11, item 4): AddTags, DeleteTags, ListTags on models,
endpoint configs and endpoints through the real boto3, with SageMaker's
limits (50 per resource, key/value patterns and lengths, the reserved
aws: prefix) and errors; Tags given at create time are listed; tags
survive a kill -9 of berthd and go with their resource. Every refused call
is checked for its exact answer, for leaving the tags as they were, and
for berth serving on. The SageMaker Python SDK is not installed here, so
the calls Predictor.update_endpoint() makes are driven with boto3. A key
limited to endpoints prod-* may tag prod-a but not dev-x."""
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import berth_helpers as bh

PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
ARN_PATTERN = "arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+"
TAGGER_KEY = {"name": "tagger", "allow": "sagemaker:AddTags sagemaker:DeleteTags sagemaker:ListTags",
              "endpoints": "prod-*"}


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(keys=[TAGGER_KEY])


def uniq():
    return uuid.uuid4().hex[:8]


def tags_of(sm, arn):
    return sm.list_tags(ResourceArn=arn)["Tags"]


def refused(call, code, message):
    with pytest.raises(ClientError) as e:
        call()
    assert bh.error_code(e.value) == code, e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert bh.error_message(e.value) == message


def raw_client(berth):
    """A client that skips botocore's own parameter checks, so that what
    only the server checks (a missing Value, MaxResults < 50) reaches it."""
    return berth.client("sagemaker", config=Config(parameter_validation=False,
                                                   retries={"total_max_attempts": 1}))


@pytest.fixture(scope="module")
def stack(berth):
    name = "Tagged-" + uniq()
    sm = berth.sm
    sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(),
                    Tags=[{"Key": "team", "Value": "ml"}, {"Key": "Größe", "Value": "名前 1"}])
    cfg = name + "-cfg"
    sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}], Tags=[{"Key": "stage", "Value": "blue"}])
    ep = name + "-ep"
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg, Tags=[{"Key": "owner", "Value": ""}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    berth.note_containers()
    yield name, cfg, ep
    bh.delete_stack(berth, name, cfg, ep)


def test_create_time_tags_are_listed_and_kept_across_kill9(berth, stack):
    model, cfg, ep = stack
    sm = berth.sm
    m_arn = sm.describe_model(ModelName=model)["ModelArn"]
    c_arn = sm.describe_endpoint_config(EndpointConfigName=cfg)["EndpointConfigArn"]
    e_arn = sm.describe_endpoint(EndpointName=ep)["EndpointArn"]
    assert tags_of(sm, m_arn) == [{"Key": "team", "Value": "ml"}, {"Key": "Größe", "Value": "名前 1"}]
    assert tags_of(sm, c_arn) == [{"Key": "stage", "Value": "blue"}]
    assert tags_of(sm, e_arn) == [{"Key": "owner", "Value": ""}]
    # AddTags overwrites a key in place and appends new ones; it answers the tags it was given
    out = sm.add_tags(ResourceArn=e_arn, Tags=[{"Key": "owner", "Value": "ops"}, {"Key": "cost:center", "Value": "42"}])
    assert out["Tags"] == [{"Key": "owner", "Value": "ops"}, {"Key": "cost:center", "Value": "42"}]
    assert tags_of(sm, e_arn) == [{"Key": "owner", "Value": "ops"}, {"Key": "cost:center", "Value": "42"}]
    # the ARN's name is lower-cased (as SageMaker's); an upper-case spelling finds it too
    assert tags_of(sm, m_arn.replace("tagged-", "TAGGED-")) == tags_of(sm, m_arn)
    # DeleteTags removes the keys given and ignores keys the resource lacks
    sm.delete_tags(ResourceArn=m_arn, TagKeys=["team", "never-there"])
    assert tags_of(sm, m_arn) == [{"Key": "Größe", "Value": "名前 1"}]
    # kill -9 right after the acknowledgement: the tags were persisted with their resource
    berth.restart_berthd()
    assert tags_of(sm, m_arn) == [{"Key": "Größe", "Value": "名前 1"}]
    assert tags_of(sm, e_arn) == [{"Key": "owner", "Value": "ops"}, {"Key": "cost:center", "Value": "42"}]
    assert tags_of(sm, c_arn) == [{"Key": "stage", "Value": "blue"}]
    # tagging changed nothing else: the endpoint still serves
    assert sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
    assert berth.rt.invoke_endpoint(EndpointName=ep, Body=b"still here")["Body"].read() == b"still here"
    berth.assert_serving()


def test_deleting_a_resource_deletes_its_tags(berth):
    sm = berth.sm
    name = "Gone-" + uniq()
    sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(),
                    Tags=[{"Key": "k", "Value": "v"}])
    arn = bh.arn("model", name)
    assert tags_of(sm, arn) == [{"Key": "k", "Value": "v"}]
    sm.delete_model(ModelName=name)
    refused(lambda: tags_of(sm, arn), "ValidationException", 'Could not find model "%s".' % arn)
    refused(lambda: sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}]), "ValidationException",
            'Could not find model "%s".' % arn)
    # a new model of that name starts without the old one's tags
    sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    assert tags_of(sm, arn) == []
    sm.delete_model(ModelName=name)


BAD_ARNS = [
    ("", "Value '' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression "
         "pattern: " + ARN_PATTERN),
    ("arn:aws:sagemaker:us-east-1:12345:model/x", None),
    ("arn:aws:s3:::bucket", None),
    ("arn:aws:sagemaker:us-east-1:000000000000:" + "m" * 250, None),
]


@pytest.mark.parametrize("arn,message", BAD_ARNS)
def test_malformed_arn(berth, stack, arn, message):
    sm = berth.sm
    if message is None:
        constraints = []
        if len(arn) > 256:
            constraints.append("Member must have length less than or equal to 256")
        if not arn.startswith("arn:aws:sagemaker:us-east-1:000000000000:"):
            constraints.append("Member must satisfy regular expression pattern: " + ARN_PATTERN)
        message = "; ".join("Value '%s' at 'resourceArn' failed to satisfy constraint: %s" % (arn, c)
                            for c in constraints)
        message = "%d validation error%s detected: %s" % (len(constraints), "" if len(constraints) == 1 else "s",
                                                        message)
    else:
        message = "1 validation error detected: " + message
    for call in (lambda: sm.list_tags(ResourceArn=arn),
                 lambda: sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]),
                 lambda: sm.delete_tags(ResourceArn=arn, TagKeys=["k"])):
        refused(call, "ValidationException", message)
    berth.assert_serving()


def test_unknown_kind_other_account_and_missing_resource(berth, stack):
    sm = berth.sm
    model = stack[0]
    job = "arn:aws:sagemaker:us-east-1:000000000000:training-job/" + model.lower()
    refused(lambda: sm.list_tags(ResourceArn=job), "ValidationException",
            "Resource type 'training-job' in ResourceArn \"%s\" is not one berth serves: berth tags models "
            "(model/NAME), endpoint configurations (endpoint-config/NAME) and endpoints (endpoint/NAME)." % job)
    other = "arn:aws:sagemaker:us-east-1:123456789012:model/" + model.lower()
    refused(lambda: sm.add_tags(ResourceArn=other, Tags=[{"Key": "k", "Value": "v"}]), "ValidationException",
            'Could not find model "%s".' % other)
    for kind, what in (("model", "model"), ("endpoint-config", "endpoint configuration"), ("endpoint", "endpoint")):
        arn = bh.arn(kind, "nope-" + uniq())
        refused(lambda: sm.delete_tags(ResourceArn=arn, TagKeys=["k"]), "ValidationException",
                'Could not find %s "%s".' % (what, arn))
    berth.assert_serving()


def test_bad_keys_and_values(berth, stack):
    sm = berth.sm
    arn = bh.arn("endpoint-config", stack[1])
    before = tags_of(sm, arn)
    cases = [
        ([{"Key": "a!b", "Value": "v"}],
         "1 validation error detected: Value 'a!b' at 'tags.1.member.key' failed to satisfy constraint: Member "
         "must satisfy regular expression pattern: " + PATTERN),
        ([{"Key": "k", "Value": "tab\there"}],
         "1 validation error detected: Value 'tab\there' at 'tags.1.member.value' failed to satisfy constraint: "
         "Member must satisfy regular expression pattern: " + PATTERN),
        ([{"Key": "k" * 129, "Value": "v"}],
         "1 validation error detected: Value '%s' at 'tags.1.member.key' failed to satisfy constraint: Member "
         "must have length less than or equal to 128" % ("k" * 129)),
        ([{"Key": "ok", "Value": "v"}, {"Key": "k", "Value": "é" * 257}],
         "1 validation error detected: Value '%s' at 'tags.2.member.value' failed to satisfy constraint: Member "
         "must have length less than or equal to 256" % ("é" * 257)),
        ([{"Key": "k%d" % i, "Value": "v"} for i in range(51)], None),
    ]
    for tags, message in cases:
        if message is None:
            message = ("1 validation error detected: Value '[%s]' at 'tags' failed to satisfy constraint: Member "
                       "must have length less than or equal to 50" %
                       ", ".join("{Key=%s, Value=%s}" % (t["Key"], t["Value"]) for t in tags))
        refused(lambda: sm.add_tags(ResourceArn=arn, Tags=tags), "ValidationException", message)
    # the same rules at create time
    name = "BadTag-" + uniq()
    refused(lambda: sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(),
                                    Tags=[{"Key": "a!b", "Value": "v"}]), "ValidationException",
            "1 validation error detected: Value 'a!b' at 'tags.1.member.key' failed to satisfy constraint: Member "
            "must satisfy regular expression pattern: " + PATTERN)
    refused(lambda: sm.describe_model(ModelName=name), "ValidationException",
            'Could not find model "%s".' % bh.arn("model", name))
    # reserved prefix, in AddTags, DeleteTags and Create*
    msg = "System prefix 'aws:' reserved for AWS usage in tag key: aws:cloudformation:stack-name"
    refused(lambda: sm.add_tags(ResourceArn=arn, Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "s"}]),
            "ValidationException", msg)
    refused(lambda: sm.delete_tags(ResourceArn=arn, TagKeys=["aws:cloudformation:stack-name"]),
            "ValidationException", msg)
    refused(lambda: sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(),
                                    Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "s"}]),
            "ValidationException", msg)
    # DeleteTags' keys: the list is judged as a whole, as AWS does for a list of strings
    refused(lambda: sm.delete_tags(ResourceArn=arn, TagKeys=["ok", "no!"]), "ValidationException",
            "1 validation error detected: Value '[ok, no!]' at 'tagKeys' failed to satisfy constraint: Member must "
            "satisfy constraint: [Member must satisfy regular expression pattern: %s]" % PATTERN)
    # what botocore would refuse before sending, sent anyway
    raw = raw_client(berth)
    refused(lambda: raw.add_tags(ResourceArn=arn, Tags=[{"Key": "k"}]), "ValidationException",
            "1 validation error detected: Value null at 'tags.1.member.value' failed to satisfy constraint: Member "
            "must not be null")
    refused(lambda: raw.list_tags(ResourceArn=arn, MaxResults=10), "ValidationException",
            "1 validation error detected: Value '10' at 'maxResults' failed to satisfy constraint: Member must have "
            "value greater than or equal to 50")
    refused(lambda: raw.delete_tags(ResourceArn=arn, TagKeys=[]), "ValidationException",
            "1 validation error detected: Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have "
            "length greater than or equal to 1")
    refused(lambda: sm.list_tags(ResourceArn=arn, NextToken="bogus"), "ValidationException",
            "Invalid NextToken: pass the NextToken of an earlier ListTags answer for the same resource, or none to "
            "start from the first tag.")
    assert tags_of(sm, arn) == before
    berth.assert_serving()


def test_fifty_tags_per_resource(berth, stack):
    sm = berth.sm
    arn = bh.arn("model", stack[0])
    before = tags_of(sm, arn)
    fill = [{"Key": "f%02d" % i, "Value": str(i)} for i in range(50 - len(before))]
    sm.add_tags(ResourceArn=arn, Tags=fill)
    full = tags_of(sm, arn)
    assert len(full) == 50
    # overwriting an existing key still fits
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "f00", "Value": "again"}])
    full = tags_of(sm, arn)
    refused(lambda: sm.add_tags(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "x"}]), "ValidationException",
            'Adding these tags would give model "%s" 51 tags, more than the limit of 50 tags per resource. Delete '
            'tags it no longer needs with DeleteTags, or add fewer.' % arn)
    assert tags_of(sm, arn) == full
    # a paginator walks them: one page (MaxResults is at least 50)
    pages = list(sm.get_paginator("list_tags").paginate(ResourceArn=arn)) if sm.can_paginate("list_tags") else \
        [sm.list_tags(ResourceArn=arn, MaxResults=50)]
    assert [t for p in pages for t in p["Tags"]] == full
    sm.delete_tags(ResourceArn=arn, TagKeys=[t["Key"] for t in fill])
    assert tags_of(sm, arn) == before


def test_update_endpoint_as_the_sdk_does(berth, stack):
    """Predictor.update_endpoint(): describe the endpoint and its config,
    list the config's tags (MaxResults=50, following NextToken), drop aws:
    keys, create a new config with them, update the endpoint to it."""
    sm = berth.sm
    ep = stack[2]
    ep_tags = tags_of(sm, bh.arn("endpoint", ep))
    current = sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"]
    desc = sm.describe_endpoint_config(EndpointConfigName=current)
    resp = sm.list_tags(ResourceArn=desc["EndpointConfigArn"], MaxResults=50)
    tags = resp["Tags"]
    while resp.get("NextToken"):
        resp = sm.list_tags(ResourceArn=desc["EndpointConfigArn"], MaxResults=50, NextToken=resp["NextToken"])
        tags.extend(resp["Tags"])
    tags = [t for t in tags if "aws:" not in t["Key"]]
    assert tags == [{"Key": "stage", "Value": "blue"}]
    new = "upd-" + uniq()
    sm.create_endpoint_config(EndpointConfigName=new, ProductionVariants=desc["ProductionVariants"], Tags=tags)
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=new)
    bh.wait_until(lambda: sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService", 60,
                  "endpoint back in service after the update")
    berth.note_containers()
    assert sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == new
    assert tags_of(sm, bh.arn("endpoint-config", new)) == [{"Key": "stage", "Value": "blue"}]
    assert berth.rt.invoke_endpoint(EndpointName=ep, Body=b"updated")["Body"].read() == b"updated"
    # the endpoint keeps its own tags through the update
    assert tags_of(sm, bh.arn("endpoint", ep)) == ep_tags
    # back to the original config so the stack deletes cleanly
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=current)
    bh.wait_until(lambda: sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService", 60,
                  "endpoint back on its config")
    berth.note_containers()
    sm.delete_endpoint_config(EndpointConfigName=new)


def test_endpoint_glob_limits_tagging(berth):
    """A key allowed the tag operations on endpoints prod-* only: it tags
    prod-a, and is refused on dev-x (AccessDeniedException, nothing changed)."""
    sm = berth.sm
    model = "Glob-" + uniq()
    sm.create_model(ModelName=model, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    cfg = model + "-cfg"
    sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    eps = ("prod-a-" + uniq(), "dev-x-" + uniq())
    try:
        for ep in eps:
            sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg)
        for ep in eps:
            berth.wait_in_service(ep)
        berth.note_containers()
        tagger = berth.client("sagemaker", key=berth.keys["tagger"])
        prod, dev = (bh.arn("endpoint", ep) for ep in eps)
        tagger.add_tags(ResourceArn=prod, Tags=[{"Key": "env", "Value": "prod"}])
        assert tagger.list_tags(ResourceArn=prod)["Tags"] == [{"Key": "env", "Value": "prod"}]
        tagger.delete_tags(ResourceArn=prod, TagKeys=["env"])
        assert tags_of(sm, prod) == []
        for op, call in (("AddTags", lambda: tagger.add_tags(ResourceArn=dev, Tags=[{"Key": "e", "Value": "d"}])),
                         ("ListTags", lambda: tagger.list_tags(ResourceArn=dev)),
                         ("DeleteTags", lambda: tagger.delete_tags(ResourceArn=dev, TagKeys=["e"]))):
            with pytest.raises(ClientError) as e:
                call()
            assert bh.error_code(e.value) == "AccessDeniedException", e.value.response
            assert bh.error_message(e.value) == (
                "User: arn:aws:iam::%s:user/tagger is not authorized to perform: sagemaker:%s on resource: %s "
                "because no identity-based policy allows the sagemaker:%s action" % (bh.ACCOUNT, op, dev, op))
        assert tags_of(sm, dev) == []
        berth.assert_serving()
    finally:
        for ep in eps:
            try:
                berth.delete_endpoint_and_wait(ep)
            except ClientError:
                pass
        sm.delete_endpoint_config(EndpointConfigName=cfg)
        sm.delete_model(ModelName=model)
