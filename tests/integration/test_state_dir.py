"""berthd's state directory under faults: read-only, full, shared by two
berthd. The change is refused with a clear InternalFailure, nothing is
half-written, and berthd keeps serving what it had."""
import glob
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh


def _mount(*args):
    subprocess.run(["mount"] + list(args), check=True)


def _umount(path):
    subprocess.run(["umount", path], check=True)


def _create_model(inst, name, env=None):
    kw = {"ModelName": name, "ExecutionRoleArn": bh.ROLE,
          "PrimaryContainer": bh.container(env=env)}
    return inst.sm.create_model(**kw)


def _state_unchanged(inst, before):
    assert sorted(m["ModelName"] for m in inst.sm.list_models(MaxResults=100)["Models"]) == before
    inst.assert_serving()


@pytest.fixture
def berth1(make_berth):
    inst = make_berth()
    _create_model(inst, "kept")
    return inst


def test_read_only_state_dir_refuses_the_change(berth1):
    models = os.path.join(berth1.state_dir, "models")
    before = ["kept"]
    _mount("--bind", models, models)
    try:
        _mount("-o", "remount,bind,ro", models)
        with pytest.raises(ClientError) as e:
            _create_model(berth1, "refused")
        assert bh.error_code(e.value) == "InternalFailure"
        msg = bh.error_message(e.value)
        assert "nothing was changed" in msg and "Read-only file system" in msg, msg
        assert "writable" in msg
        # not in memory either, and the old model still there
        with pytest.raises(ClientError) as e2:
            berth1.sm.describe_model(ModelName="refused")
        assert bh.error_code(e2.value) == "ValidationException"
        _state_unchanged(berth1, before)
        # deleting is refused too, and the model stays
        with pytest.raises(ClientError) as e3:
            berth1.sm.delete_model(ModelName="kept")
        assert bh.error_code(e3.value) == "InternalFailure"
        _state_unchanged(berth1, before)
    finally:
        _umount(models)
    # writable again: the same request now works and survives a crash
    _create_model(berth1, "refused")
    berth1.restart_berthd()
    assert berth1.sm.describe_model(ModelName="refused")["ModelName"] == "refused"
    assert berth1.sm.describe_model(ModelName="kept")["ModelName"] == "kept"


def test_full_state_dir_refuses_the_change_and_leaves_no_partial_file(berth1):
    models = os.path.join(berth1.state_dir, "models")
    saved = {p: open(p, "rb").read() for p in glob.glob(os.path.join(models, "*.json"))}
    _mount("-t", "tmpfs", "-o", "size=16k", "tmpfs", models)
    try:
        for name, data in saved.items():  # same content as before, on the small fs
            with open(os.path.join(models, os.path.basename(name)), "wb") as f:
                f.write(data)
        fd = os.open(os.path.join(models, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 512) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        with pytest.raises(ClientError) as e:
            _create_model(berth1, "toobig", env={"PAD": "x" * 1000})
        assert bh.error_code(e.value) == "InternalFailure"
        msg = bh.error_message(e.value)
        assert "No space left on device" in msg and "nothing was changed" in msg, msg
        leftovers = [p for p in os.listdir(models) if ".tmp." in p or p.startswith("toobig")]
        assert leftovers == [], leftovers
        _state_unchanged(berth1, ["kept"])
    finally:
        _umount(models)
    assert sorted(p for p in os.listdir(models) if ".tmp." in p) == []


def test_second_berthd_on_the_same_state_dir_refuses(berth1):
    run2 = "/run/bt-second-%d" % os.getpid()
    os.makedirs(run2, exist_ok=True)
    try:
        p = subprocess.run(berth1.berthd_args(run_dir=run2), capture_output=True, text=True, timeout=20)
        assert p.returncode != 0
        assert "in use by another berthd" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(run2, "berthd.sock"))
    finally:
        subprocess.run(["rm", "-rf", run2])
    _state_unchanged(berth1, ["kept"])
