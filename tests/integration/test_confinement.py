"""Confinement: inside a container, the host's processes,
network and files are out of reach and the default seccomp profile blocks
what Docker's blocks; berth-router runs unprivileged, without
capabilities, under its own seccomp filter."""
import concurrent.futures
import json
import os

import berth_helpers as bh


def probe(inst, name, env=None):
    host_file = os.path.join(inst.state_dir, "written-from-a-container")
    e = {"ECHO_MODE": "probe", "ECHO_PROBE_CONNECT": "127.0.0.1:%d" % inst.port, "ECHO_PROBE_WRITE": host_file}
    e.update(env or {})
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, name, primary=bh.container(env=e), inst=inst)
    out = json.loads(inst.rt.invoke_endpoint(EndpointName=ep, Body=b"probe")["Body"].read())
    print("probe from inside the container:", out)
    return out, host_file, ep


def test_container_cannot_reach_the_host(berth):
    out, host_file, _ep = probe(berth, "conf-probe")
    # its own pid namespace: the server, nothing of the host's
    assert 1 <= out["proc_pids"] <= 3
    host_pids = sum(1 for d in os.listdir("/proc") if d.isdigit())
    assert host_pids > 10 * out["proc_pids"]
    # loopback-only network: the host's 127.0.0.1:PORT (the router) is not there
    assert out["connect"] == "Connection refused"
    # it writes into its own private root (an overlay over the image), never
    # into the image or anywhere on the host
    assert out["write_root"] in ("ok", "Read-only file system")
    assert not os.path.exists(os.path.join(bh.echo_rootfs(), "probe-root-write"))
    assert out["write"] != "ok" and not os.path.exists(host_file)
    # Docker's default seccomp profile: namespaces, mounts and keyrings are off limits
    assert out["unshare"] == "Operation not permitted"
    assert out["mount"] == "Operation not permitted"
    assert out["keyctl"] == "Operation not permitted"
    # io_uring is off limits as in Docker 25 and later (EPERM, not ENOSYS)
    assert out["io_uring_setup"] == "Operation not permitted"
    # /proc/interrupts is masked (reads as empty) while the host's is not
    with open("/proc/interrupts", "rb") as f:
        assert len(f.read(512)) > 0
    assert out["proc_interrupts_bytes"] == 0
    assert out["seccomp"] == 2
    assert out["no_new_privs"] == 1


def test_bundle_carries_the_default_seccomp_profile(berth):
    bh.create_endpoint_stack(berth.sm, "conf-bundle", primary=bh.container(), inst=berth)
    berth.note_containers()
    cid = next(c["id"] for c in bh.runc_list(berth.run_dir) if c["id"] in berth.container_ids)
    with open(os.path.join(berth.state_dir, "containers", cid, "bundle", "config.json")) as f:
        cfg = json.load(f)
    sec = cfg["linux"]["seccomp"]
    assert sec["defaultAction"] == "SCMP_ACT_ERRNO"
    if os.uname().machine == "x86_64":
        assert sec["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = {n for rule in sec["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
    assert {"read", "write", "epoll_wait", "accept4", "chown"} <= names
    # rules that need CAP_SYS_ADMIN are left out; clone is allowed only without namespace flags
    assert "mount" not in names and "unshare" not in names and "keyctl" not in names
    assert not {"io_uring_setup", "io_uring_enter", "io_uring_register"} & names
    assert "/proc/interrupts" in cfg["linux"]["maskedPaths"]
    clone = [r for r in sec["syscalls"] if r["names"] == ["clone"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"


def test_router_runs_unprivileged_and_confined(supervised_berth):
    inst = supervised_berth()
    pid = inst.router_pid()
    st = bh.proc_status(pid)
    print("berth-router pid %d: Uid %s CapEff %s CapBnd %s NoNewPrivs %s Seccomp %s" % (
        pid, st["Uid"], st["CapEff"], st["CapBnd"], st["NoNewPrivs"], st["Seccomp"]))
    assert all(int(u) != 0 for u in st["Uid"].split())
    assert all(int(g) != 0 for g in st["Gid"].split())
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == 0 and int(st.get("CapAmb", "0"), 16) == 0
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    # confined, it still does its whole job: control plane to berthd, invocations through the shims
    _m, _c, ep = bh.create_endpoint_stack(inst.sm, "conf-router", primary=bh.container(), inst=inst)
    assert inst.rt.invoke_endpoint(EndpointName=ep, Body=b"hello")["Body"].read() == b"hello"
    # its socket I/O goes through the ring it made before confinement
    # (io_uring_enter is on its allow-list; the ring runs sendmsg/recv only)
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    assert "anon_inode:[io_uring]" in links, links
    # concurrent callers, so that batches hold several connections' I/O
    def call(i):
        body = b"batch-%d-" % i + b"x" * (i * 97)
        for _ in range(5):
            assert inst.rt.invoke_endpoint(EndpointName=ep, Body=body)["Body"].read() == body
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(16)))
    assert bh.proc_status(pid)["Seccomp"] == "2"  # the same confined process served them all
