"""An error's status and code travel with it from where it arises.

berthd failing to check an image for its own reasons (here: a real EMFILE,
berthd's descriptor limit lowered with prlimit) is 500 InternalFailure,
not a 400 ValidationException that blames the caller's image; a wrong
image stays a 400. berth keeps serving, and the same call succeeds once
berthd has descriptors again.
"""
import json
import os
import resource

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh


def oci_layout(root):
    """A minimal OCI image layout with tag "latest": what CreateModel checks."""
    layout = os.path.join(root, "layout")
    os.makedirs(layout)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "0123456789abcdef" * 4, "size": 2,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    return layout


def lowest_free_fd(pid):
    used = {int(n) for n in os.listdir("/proc/%d/fd" % pid)}
    fd = 0
    while fd in used:
        fd += 1
    return fd


def create_model_error(inst, name, image):
    with pytest.raises(ClientError) as ei:
        inst.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer={"Image": image})
    e = ei.value
    return e.response["ResponseMetadata"]["HTTPStatusCode"], bh.error_code(e), bh.error_message(e)


def test_image_check_failure_of_berthd_is_internal(make_berth, tmp_path):
    inst = make_berth()
    layout = oci_layout(str(tmp_path))
    image = "oci:%s:latest" % layout

    # the caller's mistake: 400 ValidationException, as before
    missing = "oci:%s/nope:latest" % tmp_path
    assert create_model_error(inst, "wrong-image", missing) == (
        400, "ValidationException",
        'Container \'primary\': Image "%s": the OCI image layout %s/nope does not exist.' % (missing, tmp_path))

    # berthd's failure: one descriptor left, which the control connection
    # takes; opening the layout then fails with EMFILE
    pid = inst.berthd.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free_fd(pid) + 1, hard))
    try:
        got = create_model_error(inst, "emfile", image)
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    assert got == (
        500, "InternalFailure",
        'Container \'primary\': Image "%s": cannot open the OCI image layout %s: Too many open files. This is '
        "a failure of berthd on this host, not of the request: retry it, and see berthd's log if it persists."
        % (image, layout))
    assert "control plane: Container 'primary'" in dict(inst.log_text())["berthd"]

    # nothing was created; berth keeps serving; the same call now succeeds
    assert inst.sm.list_models()["Models"] == []
    arn = inst.sm.create_model(ModelName="emfile", ExecutionRoleArn=bh.ROLE,
                               PrimaryContainer={"Image": image})["ModelArn"]
    assert arn == bh.arn("model", "emfile")
    inst.sm.delete_model(ModelName="emfile")
    inst.assert_serving()
