"""`berth shutdown` and `make stop`: stop what `make run` started, keeping
the containers running (the next berthd adopts them) or stopping them too;
the records stay either way (issue 11, item 10)."""
import os
import subprocess

import berth_helpers as bh


def _alive(pid):
    return os.path.exists("/proc/%d" % pid) and not bh._is_zombie(pid)


def _pid_or_none(inst, ep):
    try:
        return inst.running_pid(ep)
    except AssertionError:  # none running yet
        return None


def test_shutdown_keeps_or_stops_the_containers(make_berth):
    inst = make_berth()
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "stopme", primary=bh.container(), inst=inst)
    pid = inst.running_pid(ep)

    # 1. berthd stops, its containers keep running and are adopted again
    r = inst.cli("shutdown", timeout=150)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "is stopping; the containers keep running" in out and out.endswith("berthd stopped\n")
    assert inst.berthd.wait(timeout=10) == 0
    assert _alive(pid)
    inst.start_berthd()
    bh.wait_until(lambda: _pid_or_none(inst, ep) == pid, 20, "the running container to be adopted")
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"same one")["Body"].read() == b"same one"

    # 2. with --stop-containers they stop too; the records stay and the next
    #    berthd starts them again
    r = inst.cli("shutdown", "--stop-containers", timeout=150)
    assert r.returncode == 0, r.stderr
    assert "its containers are being stopped (their records are kept)" in r.stdout.decode()
    assert inst.berthd.wait(timeout=10) == 0
    assert not _alive(pid)
    assert bh.shim_pids(inst.run_dir) == []
    inst.start_berthd()
    assert ep in [e["EndpointName"] for e in inst.sm.list_endpoints()["Endpoints"]]
    bh.wait_until(lambda: _pid_or_none(inst, ep) not in (None, pid), 60, "the endpoint's container to start again")
    bh.wait_until(lambda: inst.rt.invoke_endpoint(EndpointName=ep, Body=b"new one")["Body"].read() == b"new one",
                  30, "the restarted endpoint to answer")

    # 3. bad use says what to do; nothing stops
    r = inst.cli("shutdown", "--now")
    assert r.returncode == 2 and b"shutdown takes only --stop-containers" in r.stderr
    assert inst.berthd.poll() is None
    inst.assert_serving()


def test_make_stop_without_berthd_says_so(tmp_path):
    # as a user types it, not as a sub-make of make check (no inherited -w)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "-s", "--no-print-directory", "stop", "BERTH_RUN_DIR=%s" % tmp_path,
                        "BUILD=%s" % bh.build_dir()],
                       cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "no berthd is serving %s/berthd.sock: nothing to stop\n" % tmp_path
