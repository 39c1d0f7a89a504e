"""Control input, sockets and users.

- JSON nested deeper than 64 levels is a ValidationException, refused
  while parsing: the 500,000-deep body that crashed berthd, 65 levels, and
  64 levels that pass;
- berthd's admin socket is root's alone; the router talks to berthd over
  its own channel, which serves only the router's uid and only what the
  router needs; nobody (the user) reaches no berth socket; the shims answer
  the router's uid only `connect`;
- the router's output reaches berthd's log through berthd, each line
  marked "router: ", so a router cannot forge berthd's own lines.
"""
import hashlib
import hmac
import inspect
import io
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time

import pytest

import berth_helpers as bh

DEEP_MESSAGE = ("The request body nests JSON objects and arrays more than 64 levels deep. "
                "Send at most 64 levels; no SageMaker request needs more.")

def talk(path, line, lines=1):
    """Connects to path, sends line, returns what happened: {"connect": "ok"
    or the error, "reply": the answer (up to `lines` lines) or None,
    "timeout"/"error"}."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        return {"connect": e.strerror}
    out = {"connect": "ok"}
    data = b""
    try:
        s.sendall(line.encode() + b"\n")
        while (not data.endswith(b"\n") or data.count(b"\n") < lines) and len(data) < (1 << 20):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        out["timeout"] = True
    except OSError as e:
        out["error"] = e.strerror
    finally:
        s.close()
    out["reply"] = data.decode(errors="replace") or None
    return out


# talk() in a process of another user (setpriv)
PEER = (inspect.getsource(talk)
        + "\nimport json, sys\nprint(json.dumps(talk(sys.argv[1], sys.argv[2], int(sys.argv[3]))))\n")


def as_user(uid, gid, path, line, lines=1):
    """What a process of uid/gid (no supplementary groups) gets from path
    (up to `lines` answer lines; "doc" is the first, "docs" all); uid 0:
    this (root) process itself."""
    if uid == 0:
        out = talk(path, line, lines)
    else:
        argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                "/usr/bin/python3", "-c", PEER, path, line, str(lines)]
        r = subprocess.run(argv, capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        out = json.loads(r.stdout.decode())
    if out.get("reply"):  # a watch connection may have sent more lines than asked for
        out["docs"] = [json.loads(x) for x in out["reply"].split("\n") if x.strip()]
        out["doc"] = out["docs"][0]
    return out


def nested(depth):
    """depth levels of {"a": …} around 1 (the outer object is level 1)."""
    return '{"a":' * depth + "1" + "}" * depth


def model_body(name, extra_depth):
    """A CreateModel request whose unknown member "Extra" nests so that the
    whole body is 1 + extra_depth levels deep."""
    return ('{"ModelName":"%s","ExecutionRoleArn":"%s","PrimaryContainer":{"Image":"%s"},"Extra":%s}'
            % (name, bh.ROLE, bh.echo_rootfs(), nested(extra_depth)))


def model_names(inst):
    return sorted(m["ModelName"] for m in inst.sm.list_models(MaxResults=100)["Models"])


def test_deep_json_is_a_validation_error(berth):
    berth.sm.create_model(ModelName="deep-keep", ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container())
    before = model_names(berth)
    pid = berth.berthd.pid
    # the body that crashed berthd: 500,000 '[' then 500,000 ']' (1 MB, under the size limit)
    bodies = [b"[" * 500000 + b"]" * 500000,
              ('{"ModelName":"deep-x","Tags":' + "[" * 499990 + "]" * 499990 + "}").encode(),
              model_body("deep-65", 64)]                       # 65 levels: one too many
    for body in bodies:
        status, headers, _data, doc = bh.control_raw(berth.port, "CreateModel", body, timeout=60)
        assert status == 400, (status, doc)
        assert doc == {"__type": "ValidationException", "message": DEEP_MESSAGE}
        assert "x-amzn-requestid" in headers
        assert berth.berthd.poll() is None and berth.berthd.pid == pid
        berth.assert_serving()
        assert model_names(berth) == before
    # 64 levels in all is legal: the model is created (unknown members are ignored, as AWS does)
    status, _h, _d, doc = bh.control_raw(berth.port, "CreateModel", model_body("deep-64", 63))
    assert status == 200, doc
    assert doc["ModelArn"] == bh.arn("model", "deep-64")
    assert model_names(berth) == sorted(before + ["deep-64"])
    # botocore sees the exact error code and message
    try:
        berth.sm.meta.events.register_first("before-sign.sagemaker.ListModels", _deep_body)
        with pytest.raises(bh.ClientError) as e:
            berth.sm.list_models()
    finally:
        berth.sm.meta.events.unregister("before-sign.sagemaker.ListModels", _deep_body)
    assert bh.error_code(e.value) == "ValidationException"
    assert bh.error_message(e.value) == DEEP_MESSAGE
    # the admin socket itself: a deep request line is dropped, berthd lives on
    r = as_user(0, 0, berth.socket, "[" * 200000 + "]" * 200000)
    assert r["connect"] == "ok" and r.get("reply") is None
    assert berth.berthd.poll() is None and berth.berthd.pid == pid
    berth.assert_serving()
    assert model_names(berth) == sorted(before + ["deep-64"])
    for name in ("deep-keep", "deep-64"):
        berth.sm.delete_model(ModelName=name)


def _deep_body(request, **kwargs):
    """botocore hook: ListModels is signed and sent with a 65-deep body."""
    request.data = nested(65).encode()


def _ids(name):
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def test_sockets_admin_is_root_only_and_router_has_its_own_channel(supervised_berth):
    inst = supervised_berth()
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "sock-ep", primary=bh.container(), inst=inst)
    router_uid, router_gid = _ids("berth")
    nobody_uid, nobody_gid = 65534, 65534
    admin = inst.socket
    channel = os.path.join(inst.run_dir, "router.sock")
    # the files: admin root 0600, channel root:berth 0660, run dir root:berth 0710
    st = os.stat(admin)
    assert stat.S_ISSOCK(st.st_mode) and (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o600, 0, 0)
    st = os.stat(channel)
    assert stat.S_ISSOCK(st.st_mode) and (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o660, 0, router_gid)
    st = os.stat(inst.run_dir)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o710, 0, router_gid)
    # the router itself runs as berth and uses the channel
    assert bh.proc_status(inst.router_pid())["Uid"].split()[0] == str(router_uid)
    assert "--berthd-socket\0%s\0" % channel in open("/proc/%d/cmdline" % inst.router_pid()).read()

    ps = '{"op":"ps"}'
    list_models = json.dumps({"op": "control", "target": "ListModels", "request_id": "t", "body": "{}"})
    # nobody reaches neither socket
    for path in (admin, channel):
        for line in (ps, list_models):
            assert as_user(nobody_uid, nobody_gid, path, line)["connect"] == "Permission denied"
    # the router's uid: not the admin socket …
    for line in (ps, list_models):
        assert as_user(router_uid, router_gid, admin, line)["connect"] == "Permission denied"
    # … and on its channel only what the router needs
    for op in ("ps", "mme_list", "stop", "reload", "x\n2026-12-01T00:00:00.000Z berthd[1]: error: FORGED-OP"):
        r = as_user(router_uid, router_gid, channel, json.dumps({"op": op, "endpoint": ep}))
        assert r["doc"] == {"ok": False, "error": "operation \"%s\" is not offered on the router's channel; "
                            "the berth CLI uses berthd's admin socket" % op}
    # (a control call on the channel is the client's signed request, forwarded whole)
    signed = json.dumps({"op": "control", "target": "ListModels", "request_id": "t", "method": "POST", "path": "/",
                         "headers": _signed_lines(inst, "ListModels", b"{}"), "body": "{}"})
    r = as_user(router_uid, router_gid, channel, signed)
    assert r["doc"]["status"] == 200 and json.loads(r["doc"]["body"])["Models"][0]["ModelName"] == "sock-ep"
    # the watch connection: the router's settings (no secret), its session pins, then the route table
    r = as_user(router_uid, router_gid, channel, '{"op":"watch_routes"}', lines=3)
    assert r["doc"]["op"] == "auth"
    assert r["docs"][1] == {"op": "sessions", "pins": []}
    assert r["docs"][2]["op"] == "routes" and [e["name"] for e in r["docs"][2]["endpoints"]] == [ep]
    # another uid that gets past the file mode (root) is still not the router: closed unanswered
    r = as_user(0, 0, channel, list_models)
    assert r["connect"] == "ok" and r.get("reply") is None and "timeout" not in r
    # the admin socket serves root everything (the CLI)
    assert as_user(0, 0, admin, ps)["doc"]["containers"][0]["endpoint"] == ep
    assert inst.cli("ps").returncode == 0

    # a shim's socket: the router's uid may ask for connect, never state or stop
    shim_sock = as_user(0, 0, admin, ps)["doc"]["containers"][0]
    shim_path = os.path.join(inst.run_dir, "shims", shim_sock["id"] + ".sock")
    assert os.path.exists(shim_path), shim_path
    for line in ('{"op":"state"}', '{"op":"stop","timeout_ms":0}'):
        op = json.loads(line)["op"]
        r = as_user(router_uid, router_gid, shim_path, line)
        assert r["doc"] == {"ok": False, "error": "op \"%s\" is berthd's only; this connection may ask for "
                            "connect" % op}
        assert as_user(nobody_uid, nobody_gid, shim_path, line)["connect"] == "Permission denied"
    assert as_user(router_uid, router_gid, shim_path, '{"op":"connect"}')["doc"] == {"ok": True}
    # berth keeps serving: the container was not stopped, the control plane answers
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"still here")["Body"].read() == b"still here"
    inst.assert_serving()
    assert [m["ModelName"] for m in inst.sm.list_models()["Models"]] == ["sock-ep"]
    # what was refused is in berthd's log
    log = dict(inst.log_text())["berthd"]
    assert "refused operation \"ps\"" in log
    assert "refused operation \"x\\x0a2026-12-01T00:00:00.000Z berthd[1]: error: FORGED-OP\"" in log
    assert not [ln for ln in log.splitlines() if ln.startswith("2026-12-01T00:00:00.000Z")]
    assert re.search(r"refused a connection from pid \d+ uid 0 \(only the router's uid %d" % router_uid, log)


def _tgz(name, data):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return bio.getvalue()


def test_router_channel_serves_multi_model_loads_and_usage(supervised_berth):
    """What the router needs from its channel besides control calls and the
    route table: mme_load on a miss, mme_touch for recency."""
    inst = supervised_berth()
    path = os.path.join(inst.object_root, "mme-bucket", "models", "m1.tar.gz")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(_tgz("weights.txt", b"one"))
    inst.sm.create_model(ModelName="chan-mme", ExecutionRoleArn=bh.ROLE, PrimaryContainer={
        "Image": bh.echo_rootfs(), "Mode": "MultiModel", "ModelDataUrl": "s3://mme-bucket/models/"})
    inst.sm.create_endpoint_config(EndpointConfigName="chan-mme-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "chan-mme", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    inst.sm.create_endpoint(EndpointName="chan-mme-ep", EndpointConfigName="chan-mme-cfg")
    inst.wait_in_service("chan-mme-ep")
    for _ in range(3):
        r = inst.rt.invoke_endpoint(EndpointName="chan-mme-ep", TargetModel="m1.tar.gz", Body=b"x")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    listing = {"op": "mme_list", "endpoint": "chan-mme-ep"}

    def touched():
        models = as_user(0, 0, inst.socket, json.dumps(listing))["doc"]["models"]
        return models and models[0]["target"] == "m1.tar.gz" and models[0]["invocations"] >= 3 and models
    bh.wait_until(touched, 10, "the router's mme_touch to reach berthd")
    log = dict(inst.log_text())["berthd"]
    refusals = [line for line in log.splitlines() if "router channel" in line and "refused" in line]
    assert refusals == []


FAKE_ROUTER = """#!/bin/sh
# A compromised router: tries to forge berthd's log lines, then runs the real one.
printf '2026-12-01T00:00:00.000Z berthd[1]: error: FORGED-PLAIN\\n'
printf 'x\\r2026-12-01T00:00:00.000Z berthd[1]: error: FORGED-CR\\n'
printf 'esc \\033[2K\\033[1G2026-12-01T00:00:00.000Z berthd[1]: error: FORGED-ESC\\n'
head -c 100000 /dev/zero | tr '\\000' A
printf ' FORGED-LONG\\n'
exec %s "$@"
"""


def test_router_output_goes_through_berthd_marked(supervised_berth):
    tmp = tempfile.mkdtemp(prefix="berth-fake-router-", dir="/var/tmp")
    try:
        fake = os.path.join(tmp, "berth-router")
        with open(fake, "w") as f:
            f.write(FAKE_ROUTER % os.path.join(bh.build_dir(), "berth-router"))
        os.chmod(fake, 0o755)
        inst = supervised_berth(extra_berthd=["--router", fake])
        pid = inst.berthd.pid
        bh.wait_until(lambda: "FORGED-ESC" in dict(inst.log_text())["berthd"], 10, "the router's lines")
        # the router's stdout and stderr are a pipe berthd reads, not berthd's log file
        for fd in (1, 2):
            target = os.readlink("/proc/%d/fd/%d" % (inst.router_pid(), fd))
            assert target.startswith("pipe:"), target
        raw = open(inst.berthd_log, "rb").read()
        assert b"\r" not in raw and b"\x1b" not in raw
        lines = raw.decode().splitlines()
        own = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z berthd\[%d\]: info: router: " % pid)
        forged = [ln for ln in lines if "FORGED" in ln or "AAAAAAAAAA" in ln]
        assert len(forged) == 4, forged
        for ln in forged:
            assert own.match(ln), ln
        assert not [ln for ln in lines if ln.startswith("2026-12-01T00:00:00.000Z")]
        assert any(ln.endswith("router: x\\x0d2026-12-01T00:00:00.000Z berthd[1]: error: FORGED-CR")
                   for ln in forged)
        assert any("router: esc \\x1b[2K\\x1b[1G2026-12-01T00:00:00.000Z" in ln for ln in forged)
        long = [ln for ln in forged if "AAAAAAAAAA" in ln]
        assert len(long) == 1 and len(long[0]) < 2048 and "FORGED-LONG" not in long[0]
        assert re.search(r"\[cut: \d+ more bytes\]$", long[0])
        # the real router's own lines arrive the same way
        assert any(own.match(ln) and "confined: user berth" in ln for ln in lines)
        # and it serves
        _m, _c, ep = bh.create_endpoint_stack(inst.sm, "log-ep", primary=bh.container(), inst=inst)
        assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"hi")["Body"].read() == b"hi"
        assert inst.berthd.poll() is None and inst.berthd.pid == pid
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_router_user_nobody_is_refused():
    """berthd will not run the router as nobody: every process running as
    nobody could then reach what is shared with the router."""
    inst = bh.Berth(extra_berthd=["--listen", "127.0.0.1:%d" % bh.free_port(), "--router-user", "nobody"])
    try:
        p = subprocess.run(inst.berthd_args() + inst.extra_berthd, capture_output=True, timeout=30)
        assert p.returncode == 1
        err = p.stderr.decode()
        assert ("--router-user nobody is nobody (uid 65534 gid 65534), which other processes share: they could "
                "reach the router's channel and the shims' sockets; use a dedicated user (the system user "
                "berth, which make install creates)") in err
        assert not os.path.exists(os.path.join(inst.run_dir, "router.sock"))
    finally:
        for d in (inst.state_dir, inst.run_dir, inst.object_root):
            shutil.rmtree(d, ignore_errors=True)


def _derived_key(secret, day, region=bh.REGION, service="sagemaker"):
    """SigV4's day key: HMAC chain secret → day → region → service → aws4_request."""
    k = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k.hex()


def _signed_lines(inst, op, body):
    """The headers of op(body) as a client signs it with the admin key, as
    the router forwards them: [[name, value], …] with host."""
    hdrs = bh.sign_headers(inst.port, "POST", "/", body=body, key=inst.admin_key,
                           headers={"X-Amz-Target": "SageMaker." + op,
                                    "Content-Type": "application/x-amz-json-1.1"})
    return [[k.lower(), v] for k, v in hdrs.items()] + [["host", "127.0.0.1:%d" % inst.port]]


def test_a_taken_over_router_holds_no_secret_and_cannot_act_as_admin(supervised_berth):
    """The attacker owns the router's uid: what it can read from berthd, and
    what it can make berthd do, on the router's own channel."""
    inst = supervised_berth()
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "owned-ep", primary=bh.container(), inst=inst)
    uid, gid = _ids("berth")
    channel = os.path.join(inst.run_dir, "router.sock")

    # 1. what berthd tells the router: no secret, only derived day keys of
    #    the invoke-only key; the admin key is only named
    r = as_user(uid, gid, channel, '{"op":"watch_routes"}')
    doc, raw = r["doc"], r["reply"]
    assert doc["op"] == "auth" and doc["mode"] == "sigv4"
    for _key_id, secret in inst.keys.values():
        assert secret not in raw
    by_id = {k["id"]: k for k in doc["keys"]}
    assert by_id[inst.admin_key[0]] == {"id": inst.admin_key[0], "name": "admin", "verify": "berthd"}
    invoke = by_id[inst.invoke_key[0]]
    assert invoke["allow"] == ["sagemaker:InvokeEndpoint"] and invoke["endpoints"] is None
    now = time.time()
    days = {time.strftime("%Y%m%d", time.gmtime(now + d * 86400)) for d in (-1, 0, 1)}
    assert set(invoke["signing"]) == days
    for day, key in invoke["signing"].items():
        assert key == _derived_key(inst.invoke_key[1], day)

    def control(line):
        reply = as_user(uid, gid, channel, json.dumps(line))["doc"]
        return reply["status"], json.loads(reply["body"])

    body = json.dumps({"ModelName": "forged", "ExecutionRoleArn": bh.ROLE, "PrimaryContainer": bh.container()})
    # 2. a control call without a signature
    assert control({"op": "control", "target": "CreateModel", "request_id": "f", "body": body}) == (
        403, {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
    # 3. an admin's real signed DescribeModel (the router saw it pass), replayed:
    #    as DeleteModel (the line's target changed) and with another body
    describe = json.dumps({"ModelName": "owned-ep"})
    signed = _signed_lines(inst, "DescribeModel", describe)
    status, answer = control({"op": "control", "target": "DescribeModel", "request_id": "f", "method": "POST",
                              "path": "/", "headers": signed, "body": describe})
    assert status == 200 and answer["ModelName"] == "owned-ep"   # replaying it as is: what it was
    status, answer = control({"op": "control", "target": "DeleteModel", "request_id": "f", "method": "POST",
                              "path": "/", "headers": signed, "body": describe})
    assert (status, answer["__type"]) == (403, "InvalidSignatureException")
    assert answer["message"] == ("The request signature does not cover the operation SageMaker.DeleteModel: "
                                 "sign the X-Amz-Target header (every AWS SDK does).")
    status, answer = control({"op": "control", "target": "DescribeModel", "request_id": "f", "method": "POST",
                              "path": "/", "headers": signed, "body": body})
    assert (status, answer["__type"]) == (403, "InvalidSignatureException")
    # 4. the admin key's invocations are berthd's to check: a made-up signature is refused
    sts = "AWS4-HMAC-SHA256\n%s\n%s/%s/sagemaker/aws4_request\n%s" % (
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)), time.strftime("%Y%m%d", time.gmtime(now)), bh.REGION,
        "0" * 64)
    r = as_user(uid, gid, channel, json.dumps({"op": "auth_verify", "key_id": inst.admin_key[0],
                                                "string_to_sign": sts, "signature": "1" * 64, "endpoint": ep}))
    assert r["doc"]["ok"] is False and r["doc"]["type"] == "InvalidSignatureException"
    assert r["doc"]["status"] == 403

    # nothing changed, and berth serves its callers
    assert model_names(inst) == ["owned-ep"]
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"still mine")["Body"].read() == b"still mine"
    admin_rt = inst.client("sagemaker-runtime", key=inst.admin_key)
    assert admin_rt.invoke_endpoint(EndpointName=ep, Body=b"admin too")["Body"].read() == b"admin too"
    inst.assert_serving()
