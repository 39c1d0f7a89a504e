"""berthd runs the router and keeps it running:
kill -9 of the router under load → a new one serves the same listening
socket (held by berthd) within 100 ms and no client sees a refused
connection; a crash-looping router is restarted with back-off; berthd's
SIGTERM leaves containers running unless --stop-containers; leftovers of a
crash that no state refers to are removed at start."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import berth_helpers as bh


def one_request(port, path, body):
    """One invocation on a new connection: ("ok"|"refused"|"failed", t_done)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("POST", path, body=body,
                  headers=bh.sign_headers(port, "POST", path, body=body, headers={"Content-Type": "text/plain"}))
        r = c.getresponse()
        data = r.read()
        return ("ok" if r.status == 200 and data == body else "failed:%d" % r.status), time.monotonic()
    except ConnectionRefusedError:
        return "refused", time.monotonic()
    except (OSError, http.client.HTTPException) as e:
        return "failed:%s" % type(e).__name__, time.monotonic()
    finally:
        c.close()


def test_kill_9_router_under_load(supervised_berth):
    inst = supervised_berth()
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "sup-load", primary=bh.container(), inst=inst)
    path = "/endpoints/%s/invocations" % ep
    results = []
    lock = threading.Lock()
    stop = threading.Event()

    def load():
        while not stop.is_set():
            t0 = time.monotonic()
            outcome, t1 = one_request(inst.port, path, b"load")
            with lock:
                results.append((t0, t1, outcome))

    threads = [threading.Thread(target=load) for _ in range(2)]   # bounded: 2 clients, loopback
    for t in threads:
        t.start()
    time.sleep(0.5)
    old = inst.router_pid()
    t_kill = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = old
    while new == old and time.monotonic() - t_kill < 5:
        try:
            new = inst.router_pid()
        except (OSError, ValueError):
            pass
        time.sleep(0.001)
    t_respawn = time.monotonic()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    # served again: the first request sent after the kill that succeeded
    after = sorted(t1 for t0, t1, o in results if o == "ok" and t0 > t_kill)
    serving_again_ms = (after[0] - t_kill) * 1000 if after else float("inf")
    respawn_ms = (t_respawn - t_kill) * 1000
    failed = [o for _t0, _t1, o in results if o != "ok"]
    refused = [o for o in failed if o == "refused"]
    print("\nkill -9 berth-router %d: new router %d spawned after %.1f ms, serving again after %.1f ms; "
          "%d of %d requests failed (%s), %d refused" % (
              old, new, respawn_ms, serving_again_ms, len(failed), len(results), failed, len(refused)))
    assert new != old, "no new router"
    assert refused == [], "connections were refused"
    assert len(failed) <= len(threads), "only the requests in flight to the killed router may fail"
    assert respawn_ms < 100
    assert serving_again_ms < 1000
    st = bh.proc_status(new)
    assert st["Seccomp"] == "2" and int(st["CapEff"], 16) == 0
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"after")["Body"].read() == b"after"


def test_crash_looping_router_backs_off():
    # the router exits at once, every time: berthd alone comes up
    inst = bh.SupervisedBerth(extra_berthd=["--router", "/bin/false"])
    try:
        inst.start_berthd()
        time.sleep(2.0)
        assert inst.berthd.poll() is None, "berthd must survive a router that keeps exiting"
        text = dict(inst.log_text())["berthd"]
        starts = text.count("exited with status 1")
        print("\nrouter exits in 2 s with back-off: %d" % starts)
        assert 2 <= starts <= 8, text
        assert "keeps dying; next start in" in text
        # the port stays bound by berthd all along: clients queue, nobody is refused
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=2)
        s.close()
    finally:
        inst.teardown()   # SIGTERM: berthd must exit cleanly; nothing may leak
    assert inst.berthd.returncode == 0


def running_ids(inst):
    return sorted(c["id"] for c in bh.runc_list(inst.run_dir) if c["status"] == "running")


def stop_berthd(inst):
    inst.berthd.send_signal(signal.SIGTERM)
    assert inst.berthd.wait(timeout=60) == 0


def test_sigterm_leaves_containers_running(make_berth):
    inst = make_berth()
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "sup-term", primary=bh.container(), inst=inst)
    before = running_ids(inst)
    assert len(before) == 1
    stop_berthd(inst)
    assert running_ids(inst) == before
    with open(inst.berthd_log) as f:
        assert "containers keep running" in f.read()
    inst.start_berthd()
    bh.wait_until(lambda: "Models" in inst.sm.list_models(), 10, "berthd back")
    assert running_ids(inst) == before   # re-adopted, not restarted
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"x")["Body"].read() == b"x"


def test_stop_containers_flag(make_berth):
    inst = make_berth(extra_berthd=["--stop-containers"])
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "sup-stop", primary=bh.container(), inst=inst)
    assert len(running_ids(inst)) == 1
    stop_berthd(inst)
    assert running_ids(inst) == []
    # the records are kept as they were: the next berthd brings the containers back
    with open(os.path.join(inst.state_dir, "endpoints", ep + ".json")) as f:
        assert json.load(f)["EndpointStatus"] == "InService"
    inst.start_berthd()

    def serving():
        try:
            return inst.rt.invoke_endpoint(EndpointName=ep, Body=b"back")["Body"].read() == b"back"
        except Exception:
            return False
    bh.wait_until(serving, 30, "the container back after a restart")
    assert len(running_ids(inst)) == 1


def test_leftovers_of_a_crash_are_removed_at_start(make_berth):
    inst = make_berth()
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "sup-keep", primary=bh.container(), inst=inst)
    kept = running_ids(inst)
    # simulate a crash that left a runc container and a container directory behind
    inst.berthd.send_signal(signal.SIGKILL)
    inst.berthd.wait(timeout=10)
    ghost = "0123456789abcdef"
    bundle = os.path.join(inst.state_dir, "ghost-bundle")
    os.makedirs(bundle)
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["root"] = {"path": bh.echo_rootfs(), "readonly": True}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/serve", "serve"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    subprocess.run(["runc", "--root", os.path.join(inst.run_dir, "runc"), "run", "-d", "--bundle", bundle, ghost],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    orphan_dir = os.path.join(inst.state_dir, "containers", "fedcba9876543210")
    os.makedirs(orphan_dir)
    with open(os.path.join(orphan_dir, "log"), "w") as f:
        f.write("left by a crash\n")
    assert ghost in running_ids(inst)
    inst.start_berthd()
    bh.wait_until(lambda: "Models" in inst.sm.list_models(), 10, "berthd back")
    assert ghost not in [c["id"] for c in bh.runc_list(inst.run_dir)]
    assert not os.path.exists(orphan_dir)
    assert running_ids(inst) == kept       # what the state refers to stays
    with open(inst.berthd_log) as f:
        text = f.read()
    assert "leftover runc container %s" % ghost in text
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"x")["Body"].read() == b"x"
    shutil.rmtree(bundle)
