"""The container's process follows Docker's rules for `docker run IMAGE
serve` (SageMaker's command; docs/contract.md §4): the Entrypoint kept and
"serve" in place of Cmd; without an Entrypoint, `serve` looked up in the
container's PATH (the image config's Env), WorkingDir honoured; a missing
`serve` fails the endpoint with a FailureReason naming where berth looked,
and a symbolic link cannot lead the lookup out of the image.

The images are OCI layouts made here with umoci from the echo image's root
filesystem, the bring-your-own-container way: serve only in /opt/program.
The echo server's file mode answers "read /proc/1/cmdline" with the argv
the container's process got (pid 1 of its namespace) and env mode its cwd."""
import os
import re
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh
import health_helpers as hh

BYOC_PATH = "/opt/program:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(extra_berthd=hh.OVERCOMMIT)


def umoci(*args):
    subprocess.run(["umoci"] + list(args), check=True, capture_output=True, timeout=120)


def copy_with_libraries(root, program):
    """program and the shared libraries ldd names, at the same paths under root."""
    out = subprocess.run(["ldd", program], check=True, capture_output=True, timeout=30).stdout.decode()
    files = [program] + re.findall(r"(/\S+) \(0x", out)
    for f in files:
        dst = os.path.join(root, f.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(f), dst)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """One umoci layout, several tags:
      byoc    Env PATH=/opt/program:…, WorkingDir /opt/program, no Entrypoint, Cmd ["not-serve"]
      sh      Entrypoint ["/bin/sh", "-c", SCRIPT], Cmd ["not-this"]
      ep-cmd  Entrypoint ["/opt/program/serve", "--from-entrypoint"], Cmd ["--from-cmd"]
      noserve no Entrypoint, PATH=/nowhere:/usr/bin (serve on neither)
      escape  no Entrypoint, PATH=/esc, /esc/serve -> /usr/bin/env (a host file; none in the image)"""
    top = tmp_path_factory.mktemp("byoc")
    lay, bundle = str(top / "layout"), str(top / "bundle")
    umoci("init", "--layout", lay)
    umoci("new", "--image", lay + ":base")
    umoci("unpack", "--image", lay + ":base", bundle)
    root = os.path.join(bundle, "rootfs")
    shutil.copytree(bh.echo_rootfs(), root, symlinks=True, dirs_exist_ok=True)
    os.makedirs(os.path.join(root, "opt", "program"))
    os.rename(os.path.join(root, "serve"), os.path.join(root, "opt", "program", "serve"))
    copy_with_libraries(root, "/bin/dash")
    os.symlink("dash", os.path.join(root, "bin", "sh"))
    os.makedirs(os.path.join(root, "esc"))
    os.symlink("/usr/bin/env", os.path.join(root, "esc", "serve"))
    umoci("repack", "--image", lay + ":base", bundle)
    base = ["--image", lay + ":base", "--clear=config.entrypoint", "--clear=config.cmd", "--clear=config.env"]
    umoci("config", *base, "--tag", "byoc", "--config.env", "PATH=" + BYOC_PATH,
          "--config.workingdir", "/opt/program", "--config.cmd", "not-serve")
    umoci("config", *base, "--tag", "sh", "--config.env", "PATH=" + BYOC_PATH,
          "--config.entrypoint", "/bin/sh", "--config.entrypoint", "-c",
          "--config.entrypoint", 'test "$0" = serve && exec /opt/program/serve from-sh "$0" "$@"',
          "--config.cmd", "not-this")
    umoci("config", *base, "--tag", "ep-cmd", "--config.entrypoint", "/opt/program/serve",
          "--config.entrypoint", "--from-entrypoint", "--config.cmd", "--from-cmd")
    umoci("config", *base, "--tag", "noserve", "--config.env", "PATH=/nowhere:/usr/bin")
    umoci("config", *base, "--tag", "escape", "--config.env", "PATH=/esc")
    return lay


def endpoint(inst, name, image, env=None, hostnames=None):
    name = hh.uniq(name)
    if hostnames:
        cs = [bh.container(h, image=image, env=e) for h, e in zip(hostnames, env)]
        return bh.create_endpoint_stack(inst.sm, name, containers=cs, mode="Direct", wait=False)
    return bh.create_endpoint_stack(inst.sm, name, primary=bh.container(image=image, env=env), wait=False)


def settled(inst, ep):
    def done():
        d = inst.sm.describe_endpoint(EndpointName=ep)
        return d if d["EndpointStatus"] in ("InService", "Failed") else None
    d = bh.wait_until(done, 60, "endpoint %s to settle" % ep, interval=0.2)
    inst.note_containers()
    return d


def invoke(inst, ep, body, target=None):
    kw = {"TargetContainerHostname": target} if target else {}
    r = inst.rt.invoke_endpoint(EndpointName=ep, Body=body, ContentType="text/plain", **kw)
    return r["Body"].read()


CMDLINE = b"read /proc/1/cmdline"


def test_serve_found_on_the_image_path(berth, layout):
    """The usual bring-your-own layout: no Entrypoint, serve only in
    /opt/program, which the image's PATH names; runs as ["serve"] (Cmd
    replaced) in WorkingDir /opt/program."""
    m, c, ep = endpoint(berth, "byoc", "oci:%s:byoc" % layout, hostnames=["args", "cwd"],
                        env=[{"ECHO_MODE": "file"}, {"ECHO_MODE": "env"}])
    d = settled(berth, ep)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    assert invoke(berth, ep, CMDLINE, "args") == b"serve\0"
    lines = invoke(berth, ep, b"PATH", "cwd").decode().splitlines()
    assert lines[:2] == ["PATH=" + BYOC_PATH, "cwd=/opt/program"], lines
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_entrypoint_sh_c_gets_serve_as_its_argument(berth, layout):
    """Entrypoint ["/bin/sh", "-c", SCRIPT] + ["serve"]: the shell sees
    serve as $0, the image's Cmd is not passed."""
    m, c, ep = endpoint(berth, "shc", "oci:%s:sh" % layout, env={"ECHO_MODE": "file"})
    d = settled(berth, ep)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    assert invoke(berth, ep, CMDLINE) == b"/opt/program/serve\0from-sh\0serve\0"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_entrypoint_kept_and_cmd_replaced(berth, layout):
    m, c, ep = endpoint(berth, "epcmd", "oci:%s:ep-cmd" % layout, env={"ECHO_MODE": "file"})
    d = settled(berth, ep)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    assert invoke(berth, ep, CMDLINE) == b"/opt/program/serve\0--from-entrypoint\0serve\0"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def expect_failed(inst, layout, tag, path, looked):
    image = "oci:%s:%s" % (layout, tag)
    m, c, ep = endpoint(inst, tag, image)
    d = settled(inst, ep)
    assert d["EndpointStatus"] == "Failed", d
    assert d["FailureReason"] == (
        'Container primary could not be started: Image "%s": the image has no Entrypoint, so berth runs '
        '"serve" as `docker run IMAGE serve` does, looked up in the container\'s PATH (%s), but none of %s is '
        "an executable file in the image. Put serve in one of those directories, set PATH (the image "
        "config's Env or the model's Environment) to include its directory, or give the image an Entrypoint"
        % (image, path, looked)), d["FailureReason"]
    with pytest.raises(ClientError) as ei:
        inst.rt.invoke_endpoint(EndpointName=ep, Body=b"x", ContentType="text/plain")
    assert bh.error_code(ei.value) == "ValidationError"
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)


def test_missing_serve_fails_the_endpoint_saying_where_it_looked(berth, layout):
    expect_failed(berth, layout, "noserve", "/nowhere:/usr/bin", "/nowhere/serve, /usr/bin/serve")
    berth.assert_serving()


def test_the_models_path_wins_for_the_lookup(berth, layout):
    """The "noserve" image's PATH misses serve; the model's Environment PATH
    names /opt/program: berthd's check and runc's lookup both use it."""
    m, c, ep = endpoint(berth, "envpath", "oci:%s:noserve" % layout,
                        env={"PATH": "/nowhere2:/opt/program", "ECHO_MODE": "file"})
    d = settled(berth, ep)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    assert invoke(berth, ep, CMDLINE) == b"serve\0"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_a_link_cannot_lead_the_lookup_out_of_the_image(berth, layout):
    """/esc/serve -> /usr/bin/env: the host has that file, the image does not;
    the link resolves inside the image's root, so nothing is found."""
    assert os.access("/usr/bin/env", os.X_OK)
    expect_failed(berth, layout, "escape", "/esc", "/esc/serve")
    # and berth keeps serving: the same image with an Entrypoint runs
    m, c, ep = endpoint(berth, "after", "oci:%s:ep-cmd" % layout, env={"ECHO_MODE": "upper"})
    d = settled(berth, ep)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    assert invoke(berth, ep, b"still serving") == b"STILL SERVING"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_bind_to_port_label_warning_only_for_multi_container_variants(berth, layout):
    """The image lacks com.amazonaws.sagemaker.capabilities.accept-bind-to-port:
    berth warns for the containers of a multi-container model only, also
    when a single-container variant starts beside it on the same endpoint."""
    image = "oci:%s:ep-cmd" % layout
    base = hh.uniq("label")
    berth.sm.create_model(ModelName=base + "-one", ExecutionRoleArn=bh.ROLE,
                          PrimaryContainer=bh.container(image=image))
    berth.sm.create_model(ModelName=base + "-two", ExecutionRoleArn=bh.ROLE, InferenceExecutionConfig={"Mode": "Direct"},
                          Containers=[bh.container("left", image=image), bh.container("right", image=image)])
    berth.sm.create_endpoint_config(EndpointConfigName=base + "-cfg", ProductionVariants=[
        {"VariantName": v, "ModelName": base + "-" + v, "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}
        for v in ("one", "two")])
    ep = base + "-ep"
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=base + "-cfg")
    d = settled(berth, ep)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    log = dict(berth.log_text())["berthd"]
    warned = set(re.findall(r"endpoint %s: container (\S+): image \S+ lacks the label" % re.escape(ep), log))
    assert warned == {"left", "right"}, warned
    berth.delete_endpoint_and_wait(ep)
    berth.sm.delete_endpoint_config(EndpointConfigName=base + "-cfg")
    for m in ("one", "two"):
        berth.sm.delete_model(ModelName=base + "-" + m)
    bh.assert_no_leaks(berth)
