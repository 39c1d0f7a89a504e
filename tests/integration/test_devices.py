"""Accelerators through CDI (issue 13): GPU instance types reserve whole
devices that CDI spec files describe, and their containers get exactly
those devices (device nodes usable by the container's root under berth's
user namespaces, cgroup rules, mounts, environment).

This host has no GPU: each test writes synthetic CDI specs into a spec
directory of its own (berthd --cdi-spec-dir, never /etc/cdi) whose device
nodes are real character devices the test makes under /dev/berth-test-*/
with /dev/null's and /dev/zero's numbers (mode 0600, root's: only a node
berthd makes for the container's root can be opened from inside), and
removes at teardown."""
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

KIND = "nvidia.com/gpu"
NULL_DEV = os.stat("/dev/null").st_rdev
ZERO_DEV = os.stat("/dev/zero").st_rdev


class Host:
    """Two synthetic GPUs: nodes under /dev/berth-test-*/, a driver
    directory the spec mounts, and a CDI spec directory."""

    def __init__(self):
        self.devdir = tempfile.mkdtemp(prefix="berth-test-", dir="/dev")
        self.nodes = {}
        for name, rdev in (("gpu0", NULL_DEV), ("gpu1", ZERO_DEV)):
            path = os.path.join(self.devdir, name)
            os.mknod(path, 0o600 | stat.S_IFCHR, rdev)
            os.chmod(path, 0o600)
            self.nodes[name] = path
        self.specdir = tempfile.mkdtemp(prefix="berth-cdi-", dir="/var/tmp")
        os.chmod(self.specdir, 0o755)
        self.driver = tempfile.mkdtemp(prefix="berth-driver-", dir="/var/tmp")
        os.chmod(self.driver, 0o755)
        with open(os.path.join(self.driver, "version.txt"), "w") as f:
            f.write("berth-test-driver 1.0\n")
        os.chmod(os.path.join(self.driver, "version.txt"), 0o644)

    def spec(self, devices=("0", "1"), version="0.6.0", kind=KIND, extra=None):
        nodes = {"0": "gpu0", "1": "gpu1"}
        doc = {
            "cdiVersion": version,
            "kind": kind,
            "devices": [{
                "name": d,
                "containerEdits": {
                    "deviceNodes": [{"path": "/dev/berth-gpu%s" % d, "hostPath": self.nodes[nodes[d]]}],
                    "env": ["BERTH_TEST_GPU=%s" % d],
                },
            } for d in devices],
            "containerEdits": {
                "env": ["BERTH_TEST_DRIVER=1"],
                "mounts": [{"hostPath": self.driver, "containerPath": "/usr/lib/berth-driver",
                            "options": ["ro", "nosuid", "nodev", "bind"]}],
            },
        }
        if extra:
            doc.update(extra)
        return doc

    def write(self, name, doc, mode=0o644):
        path = os.path.join(self.specdir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        os.chmod(tmp, mode)
        os.rename(tmp, path)  # a CDI tool writes atomically too
        return path

    def remove(self, name):
        os.unlink(os.path.join(self.specdir, name))

    def clear(self):
        for n in os.listdir(self.specdir):
            os.unlink(os.path.join(self.specdir, n))

    def cleanup(self):
        shutil.rmtree(self.devdir, ignore_errors=True)
        shutil.rmtree(self.specdir, ignore_errors=True)
        shutil.rmtree(self.driver, ignore_errors=True)


@pytest.fixture(scope="module")
def host():
    h = Host()
    yield h
    h.cleanup()
    assert not os.path.exists(h.devdir)


@pytest.fixture(scope="module")
def berth(host):
    yield from bh.serve(extra_berthd=["--cdi-spec-dir", host.specdir])


@pytest.fixture(autouse=True)
def fresh_specs(host, berth):
    """Each test starts from the two-GPU spec and no endpoints."""
    host.clear()
    host.write("gpus.json", host.spec())
    yield
    berth.delete_all_endpoints()
    host.clear()
    host.write("gpus.json", host.spec())


def stack(inst, name, instance_type="ml.g5.xlarge", count=1, env=None, wait=True):
    e = {"ECHO_MODE": "file"}
    e.update(env or {})
    inst.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(env=e))
    inst.sm.create_endpoint_config(EndpointConfigName=name + "-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": count,
        "InstanceType": instance_type}])
    inst.sm.create_endpoint(EndpointName=name + "-ep", EndpointConfigName=name + "-cfg")
    if wait:
        inst.wait_in_service(name + "-ep")
    return name + "-ep"


def file_op(inst, endpoint, cmd):
    """(status, body) of the echo container's file mode ("read PATH")."""
    try:
        r = inst.rt.invoke_endpoint(EndpointName=endpoint, Body=cmd.encode())
        return 200, r["Body"].read()
    except ClientError as e:
        if bh.error_code(e) != "ModelError":
            raise
        return e.response["OriginalStatusCode"], bh.error_message(e).encode()


def environ(inst, endpoint):
    status, body = file_op(inst, endpoint, "read /proc/self/environ")
    assert status == 200, body
    return dict(kv.split("=", 1) for kv in body.decode().split("\0") if "=" in kv)


def devices(inst):
    doc = inst.control({"op": "devices"}, timeout=10)
    assert doc["ok"] is True
    return doc


def holders(inst):
    return {d["name"]: d.get("endpoint") for d in devices(inst)["devices"]}


def limit_exceeded(inst, call, **kw):
    with pytest.raises(ClientError) as exc:
        call(**kw)
    assert bh.error_code(exc.value) == "ResourceLimitExceeded", exc.value.response
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return bh.error_message(exc.value)


def test_two_endpoints_each_see_only_their_own_gpu(berth, host):
    a = stack(berth, "gpu-a", env={"NVIDIA_VISIBLE_DEVICES": "all"})  # the instance type decides, not this
    b = stack(berth, "gpu-b")
    berth.note_containers()
    assert holders(berth) == {"nvidia.com/gpu=0": a, "nvidia.com/gpu=1": b}
    # each container opens its own node (root-owned 0600 on the host) as its root ...
    assert file_op(berth, a, "read /dev/berth-gpu0") == (200, b"")                # /dev/null
    assert file_op(berth, b, "read /dev/berth-gpu1") == (200, b"\0" * 65536)      # /dev/zero
    assert file_op(berth, a, "write /dev/berth-gpu0 hello") == (200, b"ok")
    # ... and has no node of the other's
    status, body = file_op(berth, a, "read /dev/berth-gpu1")
    assert status == 404 and b"No such file or directory" in body, body
    status, body = file_op(berth, b, "read /dev/berth-gpu0")
    assert status == 404 and b"No such file or directory" in body, body
    # the spec's mount and environment, the device's environment
    assert file_op(berth, a, "read /usr/lib/berth-driver/version.txt") == (200, b"berth-test-driver 1.0\n")
    env_a, env_b = environ(berth, a), environ(berth, b)
    assert env_a["NVIDIA_VISIBLE_DEVICES"] == "0" and env_b["NVIDIA_VISIBLE_DEVICES"] == "1"
    assert env_a["BERTH_TEST_GPU"] == "0" and env_b["BERTH_TEST_GPU"] == "1"
    assert env_a["BERTH_TEST_DRIVER"] == "1"
    assert list(env_a).count("NVIDIA_VISIBLE_DEVICES") == 1
    # the device cgroup: berth's deny-all plus exactly this device's rule
    cid = berth.ps(a)[0]["id"]
    with open(os.path.join(berth.state_dir, "containers", cid, "bundle", "config.json")) as f:
        config = json.load(f)
    rules = config["linux"]["resources"]["devices"]
    assert rules == [{"allow": False, "access": "rwm"},
                     {"allow": True, "type": "c", "major": os.major(NULL_DEV), "minor": os.minor(NULL_DEV),
                      "access": "rwm"}]
    # `berth devices` says the same
    out = berth.cli("devices")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert any(l.split()[:2] == ["nvidia.com/gpu=0", a] and l.split()[4] == "ok" for l in lines), lines
    assert any(l.split()[:2] == ["nvidia.com/gpu=1", b] for l in lines), lines
    berth.assert_serving()


def test_exhaustion_names_what_is_free(berth, host):
    a = stack(berth, "ex-a")
    # one device left: two instances do not fit, and the message says which one is free
    berth.sm.create_model(ModelName="ex-c", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName="ex-c-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ex-c", "InitialInstanceCount": 2,
        "InstanceType": "ml.g5.xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="ex-c-ep", EndpointConfigName="ex-c-cfg")
    assert msg == ("The host-level service limit 'nvidia.com/gpu devices for endpoint usage' is 2 devices, with "
                   "current utilization of 1 devices and a request delta of 2 devices (2 x ml.g5.xlarge). Free "
                   "devices: nvidia.com/gpu=1. Delete an endpoint that holds nvidia.com/gpu devices, or add "
                   "devices, to fit it."), msg
    b = stack(berth, "ex-b")
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="ex-c-ep", EndpointConfigName="ex-c-cfg")
    assert "current utilization of 2 devices and a request delta of 2 devices" in msg and "Free devices: none." in msg
    # an instance type with more GPUs than the host has
    berth.sm.create_endpoint_config(EndpointConfigName="ex-big-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ex-c", "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.12xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="ex-big-ep", EndpointConfigName="ex-big-cfg")
    assert msg == ("ml.g5.12xlarge needs 4 nvidia.com/gpu devices per instance, and this host has 2. Use an "
                   "instance type with at most 2 GPUs, or add devices."), msg
    # UpdateEndpoint (blue/green: the new fleet beside the old) and a capacity change
    msg = limit_exceeded(berth, berth.sm.update_endpoint, EndpointName=a, EndpointConfigName="ex-a-cfg")
    assert "request delta of 1 devices (1 x ml.g5.xlarge)" in msg and "Free devices: none." in msg
    msg = limit_exceeded(berth, berth.sm.update_endpoint_weights_and_capacities, EndpointName=b,
                         DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    assert "request delta of 1 devices (2 x ml.g5.xlarge)" in msg, msg
    # nothing was stored or started for the refused calls; both still serve
    names = [e["EndpointName"] for e in berth.sm.list_endpoints()["Endpoints"]]
    assert sorted(names) == sorted([a, b])
    assert berth.sm.describe_endpoint(EndpointName=a)["EndpointStatus"] == "InService"
    assert holders(berth) == {"nvidia.com/gpu=0": a, "nvidia.com/gpu=1": b}
    assert file_op(berth, b, "read /dev/berth-gpu1")[0] == 200
    # a CPU instance type is not affected
    cpu = stack(berth, "ex-cpu", instance_type="ml.t2.medium")
    assert "NVIDIA_VISIBLE_DEVICES" not in environ(berth, cpu)
    berth.assert_serving()


def test_restart_keeps_reservations_and_delete_frees(berth, host):
    a = stack(berth, "rs-a")
    b = stack(berth, "rs-b")
    before = holders(berth)
    berth.restart_berthd()   # kill -9
    assert holders(berth) == before == {"nvidia.com/gpu=0": a, "nvidia.com/gpu=1": b}
    berth.sm.create_model(ModelName="rs-c", ExecutionRoleArn=bh.ROLE,
                          PrimaryContainer=bh.container(env={"ECHO_MODE": "file"}))
    berth.sm.create_endpoint_config(EndpointConfigName="rs-c-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "rs-c", "InitialInstanceCount": 1,
        "InstanceType": "ml.g4dn.xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="rs-c-ep", EndpointConfigName="rs-c-cfg")
    assert "Free devices: none." in msg
    assert file_op(berth, a, "read /dev/berth-gpu0") == (200, b"")
    berth.delete_endpoint_and_wait(a)
    assert holders(berth) == {"nvidia.com/gpu=0": None, "nvidia.com/gpu=1": b}
    berth.sm.create_endpoint(EndpointName="rs-c-ep", EndpointConfigName="rs-c-cfg")
    berth.wait_in_service("rs-c-ep")
    assert holders(berth) == {"nvidia.com/gpu=0": "rs-c-ep", "nvidia.com/gpu=1": b}
    assert file_op(berth, "rs-c-ep", "read /dev/berth-gpu0") == (200, b"")
    berth.assert_serving()


def test_host_without_devices_refuses_gpu_types(berth, host):
    host.clear()
    berth.sm.create_model(ModelName="nodev", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName="nodev-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "nodev", "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="nodev-ep", EndpointConfigName="nodev-cfg")
    assert msg == ("ml.g5.xlarge needs 1 nvidia.com/gpu device per instance, and this host has no devices of kind "
                   "nvidia.com/gpu (no CDI spec in the directories cdi_spec_dirs names defines one). Use an "
                   "instance type without GPUs, or install the devices' CDI spec (nvidia-ctk cdi generate)."), msg
    assert devices(berth)["devices"] == []
    cpu = stack(berth, "nodev-cpu", instance_type="ml.t2.medium")
    cid = berth.ps(cpu)[0]["id"]
    with open(os.path.join(berth.state_dir, "containers", cid, "bundle", "config.json")) as f:
        config = json.load(f)
    assert config["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert "hooks" not in config and "devices" not in config["linux"]
    berth.assert_serving()


BAD_SPECS = [
    # (file name, content, the error `berth devices` reports for it)
    ("version.json", lambda h: h.spec(version="0.9.0"),
     'cdiVersion "0.9.0" is not a released CDI version (0.1.0 to 1.1.0)'),
    ("old.json", lambda h: h.spec(version="0.4.0"),
     'cdiVersion "0.4.0" is too old for a device name beginning with a digit, which needs 0.5.0'),
    ("kind.json", lambda h: h.spec(kind="gpu"),
     'kind "gpu" is not VENDOR/CLASS (a DNS name, a slash, a class of letters, digits, -, _ and .: '
     '"nvidia.com/gpu")'),
    ("unknown.json", lambda h: h.spec(extra={"containerRuntime": ["podman"]}),
     'spec: unknown member "containerRuntime"'),
    ("outside.json", lambda h: dict(h.spec(), devices=[{"name": "x", "containerEdits": {
        "deviceNodes": [{"path": "/dev/x", "hostPath": "/var/tmp/not-a-device"}]}}]),
     'devices[0].containerEdits.deviceNodes[0]: host device node "/var/tmp/not-a-device" is not under /dev; '
     'berth only passes device nodes from /dev'),
    ("dotdot.json", lambda h: dict(h.spec(), devices=[{"name": "x", "containerEdits": {
        "deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/../etc/shadow"}]}}]),
     'devices[0].containerEdits.deviceNodes[0]: host device node "/dev/../etc/shadow" is not under /dev; '
     'berth only passes device nodes from /dev'),
    ("rdt.json", lambda h: dict(h.spec(version="0.7.0"), containerEdits={"intelRdt": {"closID": "x"}}),
     "containerEdits.intelRdt: berth does not apply this edit; remove it from the spec or use a runtime that does"),
    ("hook.json", lambda h: dict(h.spec(), containerEdits={"hooks": [{"hookName": "onBoot", "path": "/bin/true"}]}),
     'containerEdits.hooks[0].hookName "onBoot" must be one of prestart, createRuntime, createContainer, '
     'startContainer, poststart, poststop'),
    ("empty.json", lambda h: dict(h.spec(), devices=[]), "devices must list at least one device"),
    ("twice.json", lambda h: dict(h.spec(), devices=h.spec()["devices"] * 2),
     'device "0" is defined twice in this spec'),
    ("malformed.json", lambda h: '{"cdiVersion": "0.6.0", "kind": ', None),
    ("malformed.yaml", lambda h: "cdiVersion: 0.6.0\nkind: [unclosed\n", None),
    ("alias.yaml", lambda h: "cdiVersion: &v 0.6.0\nkind: nvidia.com/gpu\ndevices: []\n",
     "not a YAML CDI spec: line 1: anchors are not accepted in a CDI spec"),
]


@pytest.mark.parametrize("name,content,error", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_is_refused_and_named(berth, host, name, content, error):
    doc = content(host)
    host.clear()
    path = host.write(name, doc)
    listing = devices(berth)
    assert listing["devices"] == []
    assert len(listing["problems"]) == 1 and listing["problems"][0]["file"] == path, listing
    if error is not None:
        assert listing["problems"][0]["error"] == error, listing
    else:
        assert listing["problems"][0]["error"].startswith("not a "), listing
    out = berth.cli("devices")
    assert ("refused %s: " % path) in out.stdout.decode()
    # no device: a GPU type is refused as on a CPU-only host; berth keeps serving
    berth.sm.create_model(ModelName="bad", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName="bad-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "bad", "InitialInstanceCount": 1, "InstanceType": "ml.g5.xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="bad-ep", EndpointConfigName="bad-cfg")
    assert "this host has no devices of kind nvidia.com/gpu" in msg
    berth.sm.delete_endpoint_config(EndpointConfigName="bad-cfg")
    berth.sm.delete_model(ModelName="bad")
    berth.assert_serving()


def test_spec_writable_by_others_is_refused(berth, host):
    host.clear()
    path = host.write("gpus.json", host.spec(), mode=0o666)
    listing = devices(berth)
    assert listing["devices"] == []
    assert listing["problems"] == [{"file": path, "error": "owned by uid 0 with mode 0666; a CDI spec must belong "
                                    "to root and be writable by no one else (chown root, chmod go-w)"}]


def test_two_specs_claiming_one_device(berth, host):
    host.write("other.json", host.spec(devices=("1",)))
    listing = devices(berth)
    names = [d["name"] for d in listing["devices"]]
    assert names == ["nvidia.com/gpu=0"], listing   # gpu=1 is in conflict: neither file's is used
    files = sorted(p["file"] for p in listing["problems"])
    assert files == sorted([os.path.join(host.specdir, "gpus.json"), os.path.join(host.specdir, "other.json")])
    assert all("device nvidia.com/gpu=1 is also defined by " in p["error"] for p in listing["problems"])
    # only one device to reserve now
    stack(berth, "dup-a")
    berth.sm.create_model(ModelName="dup-b", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName="dup-b-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "dup-b", "InitialInstanceCount": 1, "InstanceType": "ml.g5.xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="dup-b-ep", EndpointConfigName="dup-b-cfg")
    assert "is 1 devices" in msg and "Free devices: none." in msg


def test_yaml_spec_and_missing_node(berth, host):
    host.clear()
    # YAML as nvidia-ctk writes it; device 1's node does not exist
    yaml = "\n".join([
        "cdiVersion: 0.5.0",
        "kind: nvidia.com/gpu",
        "devices:",
        "- name: \"0\"",
        "  containerEdits:",
        "    deviceNodes:",
        "    - path: /dev/berth-gpu0",
        "      hostPath: %s" % host.nodes["gpu0"],
        "- name: \"1\"",
        "  containerEdits:",
        "    deviceNodes:",
        "    - path: /dev/berth-gpu1",
        "      hostPath: %s/gone" % host.devdir,
        "containerEdits:",
        "  env:",
        "  - BERTH_TEST_DRIVER=yaml",
        ""])
    host.write("gpus.yaml", yaml)
    listing = devices(berth)
    health = {d["name"]: d["health"] for d in listing["devices"]}
    assert health == {"nvidia.com/gpu=0": "ok",
                      "nvidia.com/gpu=1": "device node %s/gone: No such file or directory" % host.devdir}
    assert listing["problems"] == []
    a = stack(berth, "yaml-a")
    assert environ(berth, a)["BERTH_TEST_DRIVER"] == "yaml"
    assert holders(berth)["nvidia.com/gpu=0"] == a
    # the unusable device is never handed out
    berth.sm.create_model(ModelName="yaml-b", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    berth.sm.create_endpoint_config(EndpointConfigName="yaml-b-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "yaml-b", "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge"}])
    msg = limit_exceeded(berth, berth.sm.create_endpoint, EndpointName="yaml-b-ep", EndpointConfigName="yaml-b-cfg")
    assert "is 1 devices" in msg and "Free devices: none." in msg
    out = berth.cli("devices").stdout.decode()
    assert "unusable" in out and "device node %s/gone: No such file or directory" % host.devdir in out


def test_spec_changes_under_a_running_endpoint(berth, host):
    a = stack(berth, "chg-a")
    assert holders(berth)["nvidia.com/gpu=0"] == a
    # the vendor's tool rewrites the spec without device 0: the reservation stays, the endpoint keeps serving
    host.write("gpus.json", host.spec(devices=("1",)))
    listing = devices(berth)
    gone = [d for d in listing["devices"] if d["name"] == "nvidia.com/gpu=0"]
    assert gone == [{"name": "nvidia.com/gpu=0", "kind": "nvidia.com/gpu", "health": "no CDI spec defines it any more",
                     "endpoint": a, "variant": "AllTraffic", "instance": 0}], listing
    assert file_op(berth, a, "read /dev/berth-gpu0") == (200, b"")
    # the container is restarted (its process killed): the start says what is missing, and berth keeps serving
    pid = berth.running_pid(a)
    os.kill(pid, 9)
    bh.wait_until(lambda: "CDI device nvidia.com/gpu=0, reserved for this instance, is defined by no CDI spec" in
                  berth.log_text()[0][1], 30, "the restart naming the missing device")
    berth.assert_serving()
    # the spec comes back with a new environment: the next start applies it
    doc = host.spec()
    doc["containerEdits"]["env"] = ["BERTH_TEST_DRIVER=2"]
    host.write("gpus.json", doc)
    bh.wait_until(lambda: berth.sm.describe_endpoint(EndpointName=a)["EndpointStatus"] == "InService" and
                  file_op(berth, a, "read /dev/berth-gpu0")[0] == 200, 60, "the container back with its device")
    assert environ(berth, a)["BERTH_TEST_DRIVER"] == "2"
    berth.delete_endpoint_and_wait(a)
    assert holders(berth)["nvidia.com/gpu=0"] is None


def test_update_moves_the_reservation(berth, host):
    a = stack(berth, "upd-a")
    assert holders(berth) == {"nvidia.com/gpu=0": a, "nvidia.com/gpu=1": None}
    berth.sm.create_endpoint_config(EndpointConfigName="upd-a-cfg2", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "upd-a", "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge"}])
    # blue/green: the new instance takes the free device while the old one still serves on its own
    berth.sm.update_endpoint(EndpointName=a, EndpointConfigName="upd-a-cfg2")
    berth.wait_in_service(a)
    bh.wait_until(lambda: holders(berth) == {"nvidia.com/gpu=0": None, "nvidia.com/gpu=1": a}, 30,
                  "the old instance's device freed once the update is done")
    assert file_op(berth, a, "read /dev/berth-gpu1") == (200, b"\0" * 65536)
    assert file_op(berth, a, "read /dev/berth-gpu0")[0] == 404
    berth.assert_serving()


def test_without_user_namespaces_runc_makes_the_node(make_berth, host):
    # an instance of its own (its own spec directory: two berthds do not share devices)
    specdir = tempfile.mkdtemp(prefix="berth-cdi-nouserns-", dir="/var/tmp")
    try:
        os.chmod(specdir, 0o755)
        with open(os.path.join(specdir, "gpus.json"), "w") as f:
            json.dump(host.spec(), f)
        inst = make_berth(extra_berthd=["--cdi-spec-dir", specdir, "--no-user-namespaces"])
        a = stack(inst, "nu-a")
        assert file_op(inst, a, "read /dev/berth-gpu0") == (200, b"")
        assert environ(inst, a)["NVIDIA_VISIBLE_DEVICES"] == "0"
        cid = inst.ps(a)[0]["id"]
        with open(os.path.join(inst.state_dir, "containers", cid, "bundle", "config.json")) as f:
            config = json.load(f)
        assert config["linux"]["devices"] == [{
            "path": "/dev/berth-gpu0", "type": "c", "major": os.major(NULL_DEV), "minor": os.minor(NULL_DEV),
            "fileMode": 0o600, "uid": 0, "gid": 0}]
        inst.assert_serving()
    finally:
        shutil.rmtree(specdir, ignore_errors=True)


def test_two_berthds_never_share_a_gpu(berth, make_berth, host):
    """Two berthds of one host reading the same specs: each sees the other's
    reservations (/run/berth-devices/IDENTITY) and never hands them out."""
    a = stack(berth, "two-a")
    other = make_berth(extra_berthd=["--cdi-spec-dir", host.specdir])
    b = stack(other, "two-b")
    assert holders(other) == {"nvidia.com/gpu=0": None, "nvidia.com/gpu=1": b}
    claims = os.path.join("/run/berth-devices", berth.identity())
    with open(claims) as f:
        assert f.read() == "nvidia.com/gpu=0\n"
    mine = [d for d in devices(other)["devices"] if d["name"] == "nvidia.com/gpu=0"]
    assert mine[0]["berthd"] == berth.identity(), mine
    other.sm.create_model(ModelName="two-c", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    other.sm.create_endpoint_config(EndpointConfigName="two-c-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "two-c", "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge"}])
    msg = limit_exceeded(other, other.sm.create_endpoint, EndpointName="two-c-ep", EndpointConfigName="two-c-cfg")
    assert "current utilization of 2 devices" in msg and "Free devices: none." in msg, msg
    out = berth.cli("devices").stdout.decode()
    assert "berthd:%s" % other.identity() in out, out
    # the other's delete frees its device for this one
    other.delete_endpoint_and_wait(b)
    assert not os.path.exists(os.path.join("/run/berth-devices", other.identity()))
    c = stack(berth, "two-d")
    assert holders(berth) == {"nvidia.com/gpu=0": a, "nvidia.com/gpu=1": c}
    berth.delete_all_endpoints()
    bh.wait_until(lambda: not os.path.exists(claims), 10, "the claims file removed once nothing is held")


def test_every_container_of_an_instance_sees_its_devices(berth, host):
    env = {"ECHO_MODE": "file"}
    berth.sm.create_model(ModelName="mc", ExecutionRoleArn=bh.ROLE, InferenceExecutionConfig={"Mode": "Direct"},
                          Containers=[bh.container(hostname="first", env=env),
                                      bh.container(hostname="second", env=env)])
    berth.sm.create_endpoint_config(EndpointConfigName="mc-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "mc", "InitialInstanceCount": 1, "InstanceType": "ml.g5.xlarge"}])
    berth.sm.create_endpoint(EndpointName="mc-ep", EndpointConfigName="mc-cfg")
    berth.wait_in_service("mc-ep")
    berth.note_containers()
    for hostname in ("first", "second"):
        r = berth.rt.invoke_endpoint(EndpointName="mc-ep", TargetContainerHostname=hostname,
                                     Body=b"read /dev/berth-gpu0")
        assert r["Body"].read() == b""
    # one instance, one device: the two containers share it
    assert holders(berth) == {"nvidia.com/gpu=0": "mc-ep", "nvidia.com/gpu=1": None}
    ids = [c["id"] for c in berth.ps("mc-ep")]
    assert len(ids) == 2
    for cid in ids:   # the same device in each container's record
        with open(os.path.join(berth.state_dir, "endpoints", "mc-ep.json")) as f:
            rec = json.load(f)
        assert [c.get("devices") for c in rec["Berth"]["containers"] if c["id"] == cid] == [["nvidia.com/gpu=0"]]
