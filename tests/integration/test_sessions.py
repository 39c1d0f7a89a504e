"""Stateful sessions (InvokeEndpoint SessionId).

X-Amzn-SageMaker-Session-Id: NEW_SESSION goes to the container; its
X-Amzn-SageMaker-New-Session-Id answer ("ID; Expires=…") pins the session to
the instance that answered; later calls naming ID go there; an answer with
X-Amzn-SageMaker-Closed-Session-Id: ID unpins it; an unknown, closed or
orphaned (instance replaced, endpoint deleted) ID gets 400 ValidationError.

The echo container's session mode (examples/echo/README.md) answers
"HOST#TOKEN session=ID calls=N": the token tells the instances of one model
apart, so the tests see which instance answered. The client is the real
one: the machine's newer boto3 (Debian's 1.26 has no SessionId), run as a
subprocess from PATH's python3, and raw signed requests for what botocore
would refuse before sending. The module's berth fixture checks for leaks and
sanitizer reports at teardown.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import berth_helpers as bh
import health_helpers as hh

MAX_SESSIONS = 4
SESSION_ENV = {"ECHO_MODE": "session", "ECHO_INSTANCE_TOKEN": "1"}


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve(extra_berthd=hh.OVERCOMMIT, extra_router=["--max-sessions", str(MAX_SESSIONS)])


@pytest.fixture
def ep(berth):
    cfg, ep = hh.make_endpoint(berth, "sess", [{"name": "AllTraffic", "count": 2, "env": SESSION_ENV}])
    yield ep
    hh.cleanup(berth, cfg, ep)


# ---- the newer boto3, in a subprocess --------------------------------------

NEWER_PYTHON = shutil.which("python3")

INVOKE_CLIENT = r'''
import json, sys
import boto3, botocore
from botocore.exceptions import ClientError, ParamValidationError
a = json.load(sys.stdin)
rt = boto3.client("sagemaker-runtime", endpoint_url=a["url"], region_name="us-east-1",
                  aws_access_key_id=a["key"][0], aws_secret_access_key=a["key"][1],
                  config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=30))
out = []
for kw in a["calls"]:
    r = {"error": None}
    try:
        resp = rt.invoke_endpoint(EndpointName=a["endpoint"], **kw)
        r["body"] = resp["Body"].read().decode()
        r["NewSessionId"] = resp.get("NewSessionId")
        r["ClosedSessionId"] = resp.get("ClosedSessionId")
    except ClientError as e:
        r["error"] = {"code": e.response.get("Error", {}).get("Code"),
                      "message": e.response.get("Error", {}).get("Message"),
                      "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")}
    except ParamValidationError as e:
        r["error"] = {"code": "ParamValidationError", "message": str(e), "status": None}
    out.append(r)
print(json.dumps({"boto3": boto3.__version__, "results": out}))
'''


def boto3_calls(inst, ep, calls):
    """Runs invoke_endpoint once per kwargs dict in calls (Body as str) with the
    newer boto3; returns one dict per call: body, NewSessionId,
    ClosedSessionId, or error {code, message, status}."""
    assert NEWER_PYTHON and os.path.realpath(NEWER_PYTHON) != os.path.realpath("/usr/bin/python3"), NEWER_PYTHON
    args = {"url": inst.url, "key": list(inst.invoke_key), "endpoint": ep, "calls": calls}
    r = subprocess.run([NEWER_PYTHON, "-c", INVOKE_CLIENT], input=json.dumps(args).encode(), capture_output=True,
                       timeout=120, env=dict(os.environ, AWS_CONFIG_FILE="/dev/null",
                                             AWS_SHARED_CREDENTIALS_FILE="/dev/null"))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = json.loads(r.stdout)
    assert int(out["boto3"].split(".")[1]) >= 35, out["boto3"]
    return out["results"]


def who(body):
    """The instance token of an echo session answer."""
    return body.split(" ", 1)[0]


def new_session(inst, ep):
    """(session ID, the instance that created it) via boto3."""
    [r] = boto3_calls(inst, ep, [{"Body": "hello", "SessionId": "NEW_SESSION"}])
    assert r["error"] is None, r
    m = re.fullmatch(r"([a-zA-Z0-9-]+); Expires=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["NewSessionId"] or "")
    assert m, r
    return m.group(1), who(r["body"])


def unknown_message(sid, ep):
    return ("Invalid session ID: %s is not an active session of endpoint %s (it was never created, was closed, "
            "has expired, or the instance serving it is gone). Start a new session with SessionId NEW_SESSION."
            % (sid, ep))


def test_new_session_pins_twenty_calls(berth, ep):
    # without a session, both instances serve (ties go round-robin)
    plain = {who(hh.invoke(berth, ep)[2].decode()) for _ in range(6)}
    assert len(plain) == 2, plain
    sid, creator = new_session(berth, ep)
    results = boto3_calls(berth, ep, [{"Body": "turn %d" % i, "SessionId": sid} for i in range(20)])
    assert [r["error"] for r in results] == [None] * 20, results
    assert {who(r["body"]) for r in results} == {creator}
    assert all(" session=%s " % sid in r["body"] for r in results)
    # SageMaker's answers to a call in a session carry no New/Closed header
    assert all(r["NewSessionId"] is None and r["ClosedSessionId"] is None for r in results)
    # a second session may land on the other instance; each keeps its own
    sid2, creator2 = new_session(berth, ep)
    for _ in range(5):
        assert who(hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid2})[2].decode()) == creator2
        assert who(hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})[2].decode()) == creator
    # streaming calls in the session go to the same instance too
    st, h, body = bh.http_request(berth.port, "POST", "/endpoints/%s/invocations-response-stream" % ep,
                                  body=b"s", headers={"X-Amzn-SageMaker-Session-Id": sid})
    assert st == 200 and creator.encode() in body, (st, body)
    berth.assert_serving()


def test_close_unpins(berth, ep):
    sid, creator = new_session(berth, ep)
    [closed, after] = boto3_calls(berth, ep, [{"Body": "close", "SessionId": sid}, {"Body": "x", "SessionId": sid}])
    assert closed["error"] is None and closed["ClosedSessionId"] == sid, closed
    assert who(closed["body"]) == creator
    assert after["error"] == {"code": "ValidationError", "status": 400, "message": unknown_message(sid, ep)}, after
    berth.assert_serving()


def test_unknown_and_malformed_session_ids(berth, ep):
    [r] = boto3_calls(berth, ep, [{"Body": "x", "SessionId": "never-made-1"}])
    assert r["error"] == {"code": "ValidationError", "status": 400,
                          "message": unknown_message("never-made-1", ep)}, r
    # what botocore refuses before sending, sent raw
    for bad in ("bad_id", "-x", "x" * 257):
        st, h, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": bad})
        assert st == 400 and h["x-amzn-errortype"].startswith("ValidationError"), (st, body)
        assert "failed to satisfy constraint" in json.loads(body)["message"]
    # NEW_SESSION cannot be created by a streamed call (SageMaker's rule)
    st, h, body = bh.http_request(berth.port, "POST", "/endpoints/%s/invocations-response-stream" % ep,
                                  body=b"s", headers={"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"})
    assert st == 400 and "InvokeEndpointWithResponseStream" in json.loads(body)["message"], body
    # a session of one endpoint is unknown to another
    sid, _ = new_session(berth, ep)
    st, _, body = hh.invoke(berth, ep + "x", headers={"X-Amzn-SageMaker-Session-Id": sid})
    assert st == 400
    berth.assert_serving()


def test_session_expires_at_its_expires(berth):
    cfg, ep = hh.make_endpoint(berth, "sexp", [{"name": "AllTraffic", "count": 2,
                                                 "env": dict(SESSION_ENV, ECHO_SESSION_TTL="3")}])
    sid, creator = new_session(berth, ep)
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})
    assert st == 200 and who(body.decode()) == creator
    time.sleep(4.2)  # Expires has whole seconds: 3 s from the container's clock, plus rounding
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})
    assert st == 400 and json.loads(body)["message"] == unknown_message(sid, ep), body
    berth.assert_serving()
    hh.cleanup(berth, cfg, ep)


def test_container_sends_malformed_new_session(berth):
    cfg, ep = hh.make_endpoint(berth, "sbad", [{"name": "AllTraffic",
                                                 "env": dict(SESSION_ENV, ECHO_SESSION_BAD_ID="1")}])
    st, h, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"})
    assert st == 424 and h["x-amzn-errortype"].startswith("ModelError"), (st, body)
    assert "is not of the form" in json.loads(body)["message"]
    assert "x-amzn-sagemaker-new-session-id" not in h
    berth.assert_serving()
    hh.cleanup(berth, cfg, ep)


def saved_pins(inst):
    """The pins berthd has on disk: its snapshot (sessions.json) with its
    log of changes since (sessions.log) applied, as berthd loads them."""
    pins = {}
    try:
        with open(os.path.join(inst.state_dir, "sessions.json")) as f:
            for p in json.load(f)["pins"]:
                pins[(p["endpoint"], p["id"])] = p
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(inst.state_dir, "sessions.log")) as f:
            lines = f.read().split("\n")
    except OSError:
        lines = []
    for line in lines[:-1]:  # the last is empty, or cut short
        c = json.loads(line)
        if c["op"] == "pin":
            pins[(c["endpoint"], c["id"])] = {k: c[k] for k in ("endpoint", "id", "variant", "instance", "expires")}
        else:
            pins.pop((c["endpoint"], c["id"]), None)
    return pins


def berthd_holds(inst, sid):
    """berthd has saved the pin of sid (it persists before anything else)."""
    return any(k[1] == sid for k in saved_pins(inst))


def restart_router(inst, ep):
    inst.router.send_signal(signal.SIGKILL)
    inst.router.wait(timeout=10)
    inst.start_router()
    bh.wait_until(lambda: hh.invoke(inst, ep)[0] == 200, 10, "the restarted router to route %s" % ep)


def test_router_kill9_keeps_pins(berth, ep):
    sid, creator = new_session(berth, ep)
    gone, _ = new_session(berth, ep)
    st, h, _ = hh.invoke(berth, ep, body=b"close", headers={"X-Amzn-SageMaker-Session-Id": gone})
    assert st == 200 and h["x-amzn-sagemaker-closed-session-id"] == gone
    bh.wait_until(lambda: berthd_holds(berth, sid) and not berthd_holds(berth, gone), 5, "berthd to save the pins")
    restart_router(berth, ep)
    results = boto3_calls(berth, ep, [{"Body": "after %d" % i, "SessionId": sid} for i in range(10)])
    assert [r["error"] for r in results] == [None] * 10, results
    assert {who(r["body"]) for r in results} == {creator}
    # the closed one stays closed
    [r] = boto3_calls(berth, ep, [{"Body": "x", "SessionId": gone}])
    assert r["error"] == {"code": "ValidationError", "status": 400, "message": unknown_message(gone, ep)}, r
    berth.assert_serving()


def test_berthd_kill9_keeps_pins(berth, ep):
    sid, creator = new_session(berth, ep)
    bh.wait_until(lambda: berthd_holds(berth, sid), 5, "berthd to save the pin")
    berth.restart_berthd()  # kill -9, start again on the same state directory
    # the router kept serving the session meanwhile; now it restarts too and
    # can only have the pin from the restarted berthd
    assert who(hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})[2].decode()) == creator
    restart_router(berth, ep)
    for _ in range(10):
        st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})
        assert st == 200 and who(body.decode()) == creator, body
    berth.assert_serving()


def test_pins_are_appended_and_replayed_after_kill9(berth, ep):
    """A pin is one line appended to sessions.log, not the whole snapshot
    rewritten; after a kill -9 berthd replays the log (a torn last line
    skipped), writes a fresh snapshot and empties the log."""
    snap = os.path.join(berth.state_dir, "sessions.json")
    sid, creator = new_session(berth, ep)
    bh.wait_until(lambda: berthd_holds(berth, sid), 5, "berthd to save the pin")
    with open(snap) as f:
        assert sid not in f.read()  # in the log only
    with open(os.path.join(berth.state_dir, "sessions.log")) as f:
        assert any(json.loads(ln)["id"] == sid for ln in f.read().splitlines())
    berth.berthd.send_signal(signal.SIGKILL)
    berth.berthd.wait(timeout=10)
    with open(os.path.join(berth.state_dir, "sessions.log"), "a") as f:
        f.write('{"op":"pin","endpoint":"%s","id":"torn-' % ep)  # a write cut by a crash
    berth.start_berthd()
    bh.wait_until(lambda: "Models" in berth.sm.list_models(), 15, "berthd back")
    with open(snap) as f:
        assert any(p["id"] == sid for p in json.load(f)["pins"])
    # the log was folded into the snapshot; the router, back in touch, may
    # have told berthd its pins again since: whole lines, none torn
    with open(os.path.join(berth.state_dir, "sessions.log")) as f:
        after = f.read()
    assert "torn-" not in after and (after == "" or after.endswith("\n")), after
    assert all(json.loads(ln)["op"] in ("pin", "unpin") for ln in after.splitlines()), after
    assert "a torn line skipped" in dict(berth.log_text())["berthd"]
    restart_router(berth, ep)
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})
    assert st == 200 and who(body.decode()) == creator, body
    berth.assert_serving()


def test_changes_while_berthd_is_down_reach_it_when_back(berth, ep):
    closed, _ = new_session(berth, ep)
    bh.wait_until(lambda: berthd_holds(berth, closed), 5, "berthd to save the pin")
    berth.berthd.send_signal(signal.SIGKILL)
    berth.berthd.wait(timeout=10)
    # berthd is down: the router serves, closes and creates sessions alone
    st, h, _ = hh.invoke(berth, ep, body=b"close", headers={"X-Amzn-SageMaker-Session-Id": closed})
    assert st == 200 and h["x-amzn-sagemaker-closed-session-id"] == closed
    st, h, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"})
    assert st == 200, body
    made, creator = h["x-amzn-sagemaker-new-session-id"].split(";")[0], who(body.decode())
    assert berthd_holds(berth, closed) and not berthd_holds(berth, made)
    berth.start_berthd()
    # the router re-subscribes and tells the new berthd what it missed
    bh.wait_until(lambda: berthd_holds(berth, made) and not berthd_holds(berth, closed), 15,
                  "the router to resynchronise berthd's pins")
    restart_router(berth, ep)
    for _ in range(5):
        st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": made})
        assert st == 200 and who(body.decode()) == creator, body
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": closed})
    assert st == 400 and json.loads(body)["message"] == unknown_message(closed, ep), body
    berth.assert_serving()


def test_session_limit(berth, ep):
    made = []
    for _ in range(MAX_SESSIONS + 3):
        st, h, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"})
        if st != 200:
            break
        made.append(h["x-amzn-sagemaker-new-session-id"].split(";")[0])
    # earlier tests' sessions of deleted endpoints made room; this one's fill it
    assert len(made) == MAX_SESSIONS, (made, st, body)
    assert st == 503 and h["x-amzn-errortype"].startswith("ServiceUnavailable"), (st, body)
    assert "limit of %d stateful sessions (--max-sessions)" % MAX_SESSIONS in json.loads(body)["message"]
    assert h.get("retry-after") == "5"
    # every pinned session still works; closing one makes room for one
    for sid in made:
        assert hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})[0] == 200
    st, h, _ = hh.invoke(berth, ep, body=b"close", headers={"X-Amzn-SageMaker-Session-Id": made[0]})
    assert st == 200 and h["x-amzn-sagemaker-closed-session-id"] == made[0]
    st, h, _ = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"})
    assert st == 200 and "x-amzn-sagemaker-new-session-id" in h
    berth.assert_serving()


def test_replaced_instance_and_deleted_endpoint_end_sessions(berth, ep):
    sid, _ = new_session(berth, ep)
    sockets = {c["socket"] for e in berth.route_table()["endpoints"] if e["name"] == ep
               for v in e["variants"] for i in v["instances"] for c in i["containers"]}
    # UpdateEndpoint to a new config replaces both instances
    cfg2 = hh.uniq("sess2") + "-cfg"
    model2 = cfg2 + "-m"
    berth.sm.create_model(ModelName=model2, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(env=SESSION_ENV))
    berth.sm.create_endpoint_config(EndpointConfigName=cfg2, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model2, "InitialInstanceCount": 2, "InstanceType": "ml.t2.medium"}])
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    hh.wait_status(berth, ep, "InService", 90)

    def replaced():
        now = {c["socket"] for e in berth.route_table()["endpoints"] if e["name"] == ep
               for v in e["variants"] for i in v["instances"] for c in i["containers"]}
        return len(now) == 2 and not (now & sockets)
    bh.wait_until(replaced, 60, "both instances replaced")
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid})
    assert st == 400 and json.loads(body)["message"] == unknown_message(sid, ep), body
    # a new session on the new instances, then DeleteEndpoint: gone with it
    sid2, _ = new_session(berth, ep)
    berth.note_containers()
    berth.delete_endpoint_and_wait(ep)
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid2})
    assert st == 400 and "not found" in json.loads(body)["message"], body
    berth.sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    hh.wait_status(berth, ep, "InService", 90)
    berth.note_containers()
    st, _, body = hh.invoke(berth, ep, headers={"X-Amzn-SageMaker-Session-Id": sid2})
    assert st == 400 and json.loads(body)["message"] == unknown_message(sid2, ep), body
    berth.assert_serving()
    berth.delete_endpoint_and_wait(ep)
    berth.sm.delete_endpoint_config(EndpointConfigName=cfg2)
    berth.sm.delete_model(ModelName=model2)
