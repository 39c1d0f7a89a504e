"""The aws CLI (Debian's awscli) and the berth CLI against the same
resources."""
import json
import os
import re
import subprocess
import tempfile
import uuid

import pytest

import berth_helpers as bh


@pytest.fixture(scope="module")
def stack(berth):
    s = uuid.uuid4().hex[:6]
    st = bh.create_endpoint_stack(
        berth.sm, "CliModel-" + s,
        containers=[bh.container("a", env={"ECHO_MODE": "hostname"}),
                    bh.container("b", image=bh.echo_tarball(), env={"ECHO_MODE": "upper"})],
        mode="Direct", inst=berth)
    yield st
    bh.delete_stack(berth, *st)


def aws(berth, *args):
    home = tempfile.mkdtemp(prefix="berth-aws-", dir="/var/tmp")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=berth.admin_key[0], AWS_SECRET_ACCESS_KEY=berth.admin_key[1],
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", HOME=home,
               AWS_CONFIG_FILE=os.path.join(home, "config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "credentials"),
               AWS_MAX_ATTEMPTS="1")
    try:
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", berth.url, "--region", "us-east-1",
                            "--output", "json", "sagemaker"] + list(args),
                           capture_output=True, timeout=60, env=env)
    finally:
        subprocess.run(["rm", "-rf", home])
    return r


def aws_json(berth, *args):
    r = aws(berth, *args)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_aws_list_and_describe_models(berth, stack):
    model = stack[0]
    doc = aws_json(berth, "list-models")
    mine = [m for m in doc["Models"] if m["ModelName"] == model]
    assert len(mine) == 1
    assert mine[0]["ModelArn"] == bh.arn("model", model)
    assert "CreationTime" in mine[0]

    d = aws_json(berth, "describe-model", "--model-name", model)
    assert d["ModelName"] == model
    assert d["ModelArn"] == bh.arn("model", model)
    assert [c["ContainerHostname"] for c in d["Containers"]] == ["a", "b"]
    assert d["Containers"][1]["Image"] == bh.echo_tarball()
    assert d["Containers"][1]["Environment"] == {"ECHO_MODE": "upper"}
    assert d["InferenceExecutionConfig"] == {"Mode": "Direct"}


def test_aws_list_and_describe_endpoints(berth, stack):
    model, cfg, ep = stack
    doc = aws_json(berth, "list-endpoints")
    mine = [e for e in doc["Endpoints"] if e["EndpointName"] == ep]
    assert len(mine) == 1
    assert mine[0]["EndpointStatus"] == "InService"
    assert mine[0]["EndpointArn"] == bh.arn("endpoint", ep)

    d = aws_json(berth, "describe-endpoint", "--endpoint-name", ep)
    assert d["EndpointName"] == ep
    assert d["EndpointArn"] == bh.arn("endpoint", ep)
    assert d["EndpointConfigName"] == cfg
    assert d["EndpointStatus"] == "InService"

    d = aws_json(berth, "describe-endpoint-config", "--endpoint-config-name", cfg)
    assert d["ProductionVariants"][0]["ModelName"] == model


def test_aws_cli_shows_the_validation_exception_of_a_missing_model(berth, stack):
    r = aws(berth, "describe-model", "--model-name", "NoSuchModel-cli")
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "ValidationException" in err, err
    assert 'Could not find model "%s"' % bh.arn("model", "NoSuchModel-cli") in err, err


def test_berth_ls_lists_models_configs_and_endpoints(berth, stack):
    model, cfg, ep = stack
    r = berth.cli("ls")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for name in (model, cfg, ep):
        assert name in out, out
    assert "InService" in out, out


def test_berth_describe_prints_a_resource_of_any_kind(berth, stack):
    model, cfg, ep = stack
    r = berth.cli("describe", ep)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["EndpointName"] == ep and doc["EndpointStatus"] == "InService", doc
    assert doc["EndpointArn"] == bh.arn("endpoint", ep)
    r = berth.cli("describe", model)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ModelArn"] == bh.arn("model", model), doc
    r = berth.cli("describe", cfg)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["EndpointConfigArn"] == bh.arn("endpoint-config", cfg)
    r = berth.cli("describe", "NoSuchThing-cli")
    assert r.returncode != 0
    assert r.stderr, "an error must say something"


def test_berth_invoke_reaches_the_target_container(berth, stack):
    """--url: the router of this test listens on a free port, not :8080."""
    ep = stack[2]
    payload = b"hello from the berth cli \x00\xff"
    r = berth.cli("invoke", ep, "--url", berth.url, "--credentials", berth.credentials_path, "--target-container", "a", input=payload)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a:" + payload
    r = berth.cli("invoke", ep, "--url", berth.url, "--credentials", berth.credentials_path, "--target-container", "b", "--content-type", "text/plain",
                  input=b"shout")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"SHOUT"
    r = berth.cli("invoke", ep, "--url", berth.url, "--credentials", berth.credentials_path, "--target-container", "nope", input=b"x")
    assert r.returncode != 0
    assert r.stderr


def test_berth_ps_lists_each_container_with_its_pid(berth, stack):
    r = berth.cli("ps")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    shims = bh.shim_ids(berth.run_dir)
    assert len(shims) == 2
    pids = {c["id"]: c["pid"] for c in bh.runc_list(berth.run_dir)}
    for cid in shims.values():
        line = [l for l in out.splitlines() if cid in l]
        assert len(line) == 1, out
        assert stack[2] in line[0] and "running" in line[0], line
        assert str(pids[cid]) in line[0].split(), (line, pids[cid])


def test_berth_top_shows_the_busy_container_first(berth, stack):
    """Load on container b only: over a 1 s interval berth top puts b first
    with a CPU share above zero and a's near zero."""
    import threading
    ep, stop = stack[2], threading.Event()

    def load():
        while not stop.is_set():
            berth.rt.invoke_endpoint(EndpointName=ep, TargetContainerHostname="b", Body=b"x" * 65536)
    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        r = berth.cli("top", "-n", "2", "-d", "1", timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert r.returncode == 0, r.stderr
    screens = r.stdout.decode().split("berth top - ")
    assert len(screens) == 3, r.stdout  # "" before the first, then two screens
    rows = [l.split() for l in screens[2].splitlines() if l.startswith(ep)]
    assert [row[1] for row in rows] == ["b", "a"], screens[2]
    cpu = {row[1]: float(row[7]) for row in rows}
    assert cpu["b"] > 1.0 and cpu["a"] < cpu["b"], screens[2]
    r = berth.cli("top", "-n", "0")
    assert r.returncode == 2 and b"-n wants" in r.stderr


def test_berth_cli_fails_with_a_message_on_bad_use(berth, stack):
    r = subprocess.run([os.path.join(berth.build, "berth"), "--socket", "/run/no-such-berthd.sock", "ls"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b"no-such-berthd.sock" in r.stderr, r.stderr
    r = berth.cli("frobnicate")
    assert r.returncode != 0 and r.stderr
    r = berth.cli("invoke", stack[2], "--url", "http://127.0.0.1:1", "--target-container", "a", input=b"x")
    assert r.returncode != 0 and r.stderr


def _keys(berth, *args):
    return subprocess.run([os.path.join(berth.build, "berth"), "keys"] + list(args), capture_output=True,
                          timeout=30)


def test_berth_keys_add_creates_the_file_and_ls_shows_no_secret(berth, tmp_path):
    path = tmp_path / "etc" / "berth" / "credentials"
    r = _keys(berth, "add", "ops", "--allow", "sagemaker:*", "--credentials", str(path))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    key_id = re.search(r"^aws_access_key_id = (\S+)$", out, re.M).group(1)
    secret = re.search(r"^aws_secret_access_key = (\S+)$", out, re.M).group(1)
    assert re.fullmatch(r"BRTH[A-Z2-7]{16}", key_id), key_id
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret), secret
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    r = _keys(berth, "add", "app", "--allow", "sagemaker:InvokeEndpoint", "--endpoints", "prod-* canary",
              "--models", "m-*", "--credentials", str(path))
    assert r.returncode == 0, r.stderr
    app_id = re.search(rb"aws_access_key_id = (\S+)", r.stdout).group(1).decode()
    assert app_id != key_id
    text = path.read_text()
    assert text.count("[ops]") == 1 and "endpoints = prod-* canary" in text and "models = m-*" in text
    r = _keys(berth, "ls", "--credentials", str(path))
    assert r.returncode == 0, r.stderr
    rows = [l.split() for l in r.stdout.decode().splitlines()]
    assert rows[0][:3] == ["NAME", "KEY", "ID"]
    assert rows[1] == ["ops", key_id, "sagemaker:*", "*", "*", "*"], rows
    assert rows[2] == ["app", app_id, "sagemaker:InvokeEndpoint", "prod-*", "canary", "*", "m-*"], rows
    assert secret.encode() not in r.stdout
    # refusals: an existing name, a bad name, a value on two lines; the file is unchanged
    for args, code, words in ((["add", "ops"], 1, b'already has a key named "ops"'),
                              (["add", "two words"], 2, b"is not valid"),
                              (["add", "x", "--allow", "a\nb"], 2, b"--allow wants"),
                              (["add", "x", "--endpoints", ""], 2, b"--endpoints wants")):
        r = _keys(berth, *args, "--credentials", str(path))
        assert r.returncode == code and words in r.stderr, (args, r.returncode, r.stderr)
    assert path.read_text() == text
    # a file berthd would refuse is not appended to
    path.write_text(text + "[broken\n")
    os.chmod(path, 0o600)
    r = _keys(berth, "add", "x", "--credentials", str(path))
    assert r.returncode == 1 and b"fix the file first" in r.stderr, r.stderr


def test_a_key_made_by_berth_keys_add_is_used_by_berthd_at_once(berth, stack):
    """berth keys add on the instance's own file: berthd notices, and the new
    invoke-only key works through the router while it may not list."""
    r = _keys(berth, "add", "cli-made", "--allow", "sagemaker:InvokeEndpoint", "--credentials",
              berth.credentials_path)
    assert r.returncode == 0, r.stderr
    key = (re.search(rb"aws_access_key_id = (\S+)", r.stdout).group(1).decode(),
           re.search(rb"aws_secret_access_key = (\S+)", r.stdout).group(1).decode())
    rt = berth.client("sagemaker-runtime", key=key)

    def works():
        return rt.invoke_endpoint(EndpointName=stack[2], TargetContainerHostname="a", Body=b"k")["Body"].read()
    assert bh.wait_until(works, 10, "the new key to be accepted") == b"a:k"
    with pytest.raises(bh.ClientError) as e:
        berth.client("sagemaker", key=key).list_models()
    assert bh.error_code(e.value) == "AccessDeniedException"
    r = berth.cli("invoke", stack[2], "--url", berth.url, "--credentials", berth.credentials_path, "--key",
                  "cli-made", "--target-container", "b", input=b"via key")
    assert (r.returncode, r.stdout) == (0, b"VIA KEY"), r.stderr


def test_berth_socket_from_the_environment(berth, stack):
    """BERTH_SOCKET names the admin socket when --socket is not given (a
    berthd with its own --run-dir); --socket still wins over it."""
    exe = os.path.join(berth.build, "berth")
    env = dict(os.environ, BERTH_SOCKET=berth.socket)
    r = subprocess.run([exe, "ls"], capture_output=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    assert stack[2] in r.stdout.decode()
    env["BERTH_SOCKET"] = os.path.join(berth.run_dir, "missing.sock")
    r = subprocess.run([exe, "ls"], capture_output=True, timeout=30, env=env)
    assert r.returncode != 0 and b"missing.sock" in r.stderr, r.stderr
    r = subprocess.run([exe, "--socket", berth.socket, "ls"], capture_output=True, timeout=30, env=env)
    assert r.returncode == 0 and stack[2] in r.stdout.decode(), r.stderr
