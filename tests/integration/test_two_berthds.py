"""Two berthds on one host never touch each other: each names what the host
shares after its identity (berth-<first 8 hex of SHA-256 of its state
directory's realpath>; plain berth for the default state directory): its
cgroup root, its default run directory (runc's state, the shims' sockets)
and a window of host uids no other berthd holds. Restarting one (its
start-up clean-up) and deleting in one leave the other's containers,
cgroups and uid ranges alone; a berthd given another's run directory or
uid window is refused at start, naming what is in use."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import berth_helpers as bh

SIZE = 65536
WINDOW = 1024 * SIZE


def uniq():
    return uuid.uuid4().hex[:6]


def endpoint_cgroups(identity, endpoint):
    """The cgroup directories /IDENTITY/ENDPOINT in every hierarchy."""
    out = []
    for h in os.listdir(bh.CGROUP_ROOT):
        d = os.path.join(bh.CGROUP_ROOT, h, identity, endpoint)
        if os.path.isdir(d):
            out.append(d)
    return out


def age_tree(path, seconds):
    """Sets every directory's times under path back by seconds, so that
    berthd's start-up clean-up does not take them for another berthd's
    that is just starting (it leaves those younger than 30 s)."""
    t = time.time() - seconds
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            os.utime(os.path.join(root, d), (t, t))
    os.utime(path, (t, t))


def uid_bases(inst, endpoint):
    with open(os.path.join(inst.state_dir, "endpoints", endpoint + ".json")) as f:
        return [c["uid_base"] for c in json.load(f)["Berth"]["containers"]]


def container_pids(inst):
    return {c["id"]: c["pid"] for c in bh.runc_list(inst.run_dir) if c["status"] == "running"}


def uid_map(pid):
    with open("/proc/%d/uid_map" % pid) as f:
        return [int(x) for x in f.read().split()]


def invoke(inst, endpoint):
    r = inst.rt.invoke_endpoint(EndpointName=endpoint, Body=b"hello", ContentType="text/plain")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    return r["Body"].read()


def test_restart_and_delete_in_one_leave_the_other_alone(make_berth):
    a = make_berth()
    b = make_berth()
    ia, ib = a.identity(), b.identity()
    assert ia != ib
    for inst, ident in ((a, ia), (b, ib)):
        log = dict(inst.log_text())["berthd"]
        assert "identity %s (cgroups /%s" % (ident, ident) in log, log[-2000:]
    # the same endpoint name in both: once they shared /berth/NAME
    name = "Twin-" + uniq()
    sa = bh.create_endpoint_stack(a.sm, name, primary=bh.container(), inst=a)
    sb = bh.create_endpoint_stack(b.sm, name, primary=bh.container(), inst=b)
    # and one a has no record of: a clean-up that strayed would remove it
    only_b = bh.create_endpoint_stack(b.sm, "OnlyB-" + uniq(), primary=bh.container(), inst=b)
    ep = sa[2]
    cga, cgb = endpoint_cgroups(ia, ep), endpoint_cgroups(ib, ep)
    cg_only_b = endpoint_cgroups(ib, only_b[2])
    assert cga and cgb and cg_only_b, "cgroups /%s/%s and /%s/%s" % (ia, ep, ib, ep)
    assert not endpoint_cgroups("berth", ep), "nothing of a test instance under /berth"

    # uid ranges: each berthd's window is its own, and its containers are in it
    wa, wb = a.userns_window(), b.userns_window()
    assert wa[1] - wa[0] + 1 == WINDOW and wb[1] - wb[0] + 1 == WINDOW
    assert wa[1] < wb[0] or wb[1] < wa[0], "windows overlap: %s %s" % (wa, wb)
    pa, pb = container_pids(a), container_pids(b)
    assert len(pa) == 1 and len(pb) == 2
    (base_a,), (base_b,), (base_b2,) = uid_bases(a, ep), uid_bases(b, ep), uid_bases(b, only_b[2])
    assert wa[0] <= base_a <= wa[1] - SIZE + 1 and wb[0] <= base_b <= wb[1] - SIZE + 1
    assert uid_map(list(pa.values())[0]) == [0, base_a, SIZE]
    assert sorted(uid_map(p)[1] for p in pb.values()) == sorted([base_b, base_b2])

    # restart a (kill -9): its start-up clean-up runs and must keep to its own
    for d in cgb + cg_only_b:
        age_tree(d, 300)
    a.restart_berthd()
    assert endpoint_cgroups(ib, ep) == cgb and endpoint_cgroups(ib, only_b[2]) == cg_only_b
    assert container_pids(b) == pb
    assert container_pids(a) == pa  # re-adopted, not restarted
    assert a.userns_window() == wa  # the window its records hold
    assert uid_bases(a, ep) == [base_a] and uid_bases(b, ep) == [base_b]
    assert invoke(a, ep) == b"hello" and invoke(b, ep) == b"hello"
    a.assert_serving()
    b.assert_serving()

    # and b restarted with a's cgroups old enough to look abandoned
    for d in endpoint_cgroups(ia, ep):
        age_tree(d, 300)
    b.restart_berthd()
    assert endpoint_cgroups(ia, ep) == cga
    assert container_pids(a) == pa and container_pids(b) == pb

    # deleting in b removes b's own and nothing of a's
    bh.delete_stack(b, *only_b)
    bh.delete_stack(b, *sb)
    assert endpoint_cgroups(ib, ep) == []
    assert not os.path.exists(os.path.join(bh.CGROUP_ROOT, "memory", ib))
    assert endpoint_cgroups(ia, ep) == cga
    assert container_pids(a) == pa and container_pids(b) == {}
    assert invoke(a, ep) == b"hello"
    a.assert_serving()
    b.assert_serving()
    bh.delete_stack(a, *sa)
    # both instances' leak checks run at the fixture's teardown


def berthd_once(inst, state, extra, timeout=30):
    """Runs a berthd that is expected to refuse to start; returns it."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    args = [os.path.join(inst.build, "berthd"), "--state-dir", state, "--credentials", inst.credentials_path,
            "--object-store-root", inst.object_root] + extra
    return subprocess.run(args, capture_output=True, timeout=timeout, env=env)


def window_of(state, base=100000000):
    """The first window a berthd on state tries (uid_range.h): one of the
    61 above base's own, chosen by the first 32 bits of its identity."""
    number = int(hashlib.sha256(os.path.realpath(state).encode()).hexdigest()[:8], 16)
    n = (4294967295 - base) // WINDOW
    return base + (1 + number % (n - 1)) * WINDOW


def start_bare_berthd(inst, state, log_path):
    """A berthd on state with no --run-dir (so /run/<its identity>) and
    inst's keys; returns (process, its run directory) once it serves."""
    ident = "berth-" + hashlib.sha256(os.path.realpath(state).encode()).hexdigest()[:8]
    run = "/run/" + ident
    log = open(log_path, "wb")
    p = subprocess.Popen([os.path.join(inst.build, "berthd"), "--state-dir", state, "--credentials",
                          inst.credentials_path], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"), start_new_session=True)
    log.close()
    bh.wait_until(lambda: os.path.exists(os.path.join(run, "berthd.sock")) or p.poll() is not None,
                  15, "berthd socket in " + run)
    assert p.poll() is None, open(log_path).read()
    return p, run


def logged_window(text):
    lo, hi = text.split("user namespace ids of this berthd: ")[-1].split(" ")[0].split("..")
    return int(lo), int(hi)


def test_a_window_whose_berthd_is_down_is_not_taken_while_its_containers_run(make_berth):
    a = make_berth()
    stack = bh.create_endpoint_stack(a.sm, "Down-" + uniq(), primary=bh.container(), inst=a)
    wa = a.userns_window()
    pids = container_pids(a)
    top = tempfile.mkdtemp(prefix="berth-it-", dir="/var/tmp")
    os.chmod(top, 0o711)
    # a state directory whose first choice is a's window
    state = None
    for i in range(5000):
        candidate = os.path.join(top, "s%d" % i)
        if window_of(candidate) == wa[0]:
            state = candidate
            break
    assert state, "no state directory name found whose window is %d" % wa[0]
    os.makedirs(state)
    run = None
    try:
        a.berthd.send_signal(signal.SIGKILL)   # a is down; its container runs on
        a.berthd.wait(timeout=10)
        assert container_pids(a) == pids
        p, run = start_bare_berthd(a, state, os.path.join(top, "c.log"))
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)
        text = open(os.path.join(top, "c.log")).read()
        assert p.returncode == 0, text
        lo, hi = logged_window(text)
        assert "host uids %d..%d are mapped by process %d's user namespace" % (
            wa[0], wa[1], list(pids.values())[0]) in text, text
        assert hi < wa[0] or wa[1] < lo, "took %d..%d, a's window" % (lo, hi)
    finally:
        if run:
            shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(top, ignore_errors=True)
        if a.berthd.poll() is not None:
            a.start_berthd()
            bh.wait_until(lambda: "Models" in a.sm.list_models(), 15, "ListModels after a's restart")
    # a is back with its window and its container, and serves
    assert a.userns_window() == wa
    assert container_pids(a) == pids
    assert a.rt.invoke_endpoint(EndpointName=stack[2], Body=b"x")["Body"].read() == b"x"
    a.assert_serving()
    bh.delete_stack(a, *stack)


def test_another_berthds_run_directory_or_uid_window_is_refused(make_berth):
    a = make_berth()
    name = "Held-" + uniq()
    sa = bh.create_endpoint_stack(a.sm, name, primary=bh.container(), inst=a)
    pids = container_pids(a)
    top = tempfile.mkdtemp(prefix="berth-it-", dir="/var/tmp")
    os.chmod(top, 0o711)
    run = tempfile.mkdtemp(prefix="bt-", dir="/run")
    default_run = None
    try:
        # a's run directory: refused before anything in it is touched
        r = berthd_once(a, os.path.join(top, "s1"), ["--run-dir", a.run_dir])
        assert r.returncode == 1, r.stderr
        msg = r.stderr.decode()
        assert "run directory %s is in use by another berthd" % a.run_dir in msg, msg
        assert "give this berthd its own --run-dir" in msg, msg
        assert container_pids(a) == pids
        a.assert_serving()

        # a's uid window, given explicitly: refused, naming a's berthd
        first, last = a.userns_window()
        r = berthd_once(a, os.path.join(top, "s2"), ["--run-dir", run, "--userns-uid-base", str(first + SIZE)])
        assert r.returncode == 1, r.stderr
        msg = r.stderr.decode()
        assert "host uids %d..%d overlap the user namespace ids of another berthd (pid " % (
            first + SIZE, first + SIZE + WINDOW - 1) in msg, msg
        if not bh.berthd_wrapper():
            assert "(pid %d," % a.berthd.pid in msg, msg
        assert "--userns-uid-base" in msg, msg
        assert not bh.shim_pids(run)
        assert container_pids(a) == pids
        assert a.rt.invoke_endpoint(EndpointName=sa[2], Body=b"x")["Body"].read() == b"x"
        a.assert_serving()

        # no --run-dir: a state directory of its own gets /run/<its identity>
        state = os.path.join(top, "s3")
        os.makedirs(state)
        ident = "berth-" + hashlib.sha256(os.path.realpath(state).encode()).hexdigest()[:8]
        default_run = "/run/" + ident
        assert not os.path.exists(default_run)
        log = open(os.path.join(top, "s3.log"), "wb")
        p = subprocess.Popen([os.path.join(a.build, "berthd"), "--state-dir", state, "--credentials",
                              a.credentials_path], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"), start_new_session=True)
        log.close()
        try:
            bh.wait_until(lambda: os.path.exists(os.path.join(default_run, "berthd.sock")) or p.poll() is not None,
                          15, "berthd socket in " + default_run)
            assert p.poll() is None, open(os.path.join(top, "s3.log")).read()
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=15)
        text = open(os.path.join(top, "s3.log")).read()
        assert p.returncode == 0, text
        assert "identity %s (cgroups /%s, run directory %s)" % (ident, ident, default_run) in text, text
        lo, hi = [int(x) for x in text.split("user namespace ids of this berthd: ")[1].split(" ")[0].split("..")]
        assert hi < first or last < lo, "its window %d..%d overlaps a's %d..%d" % (lo, hi, first, last)
        assert container_pids(a) == pids
        a.assert_serving()
    finally:
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        if default_run:
            shutil.rmtree(default_run, ignore_errors=True)
    bh.delete_stack(a, *sa)
