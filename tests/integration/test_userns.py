"""User namespaces: every container's root is an
unprivileged host uid range of its endpoint instance's own (65536 ids from
the start of the berthd's window up: 100000000 for the default state
directory, a window above it for the tests' own), recorded in the state store so a kill -9 of berthd keeps
them, and free again once the endpoint is deleted. The image and the model
data are mounted idmapped, so the container's root owns what host root
unpacked; nothing of the host is writable from inside."""
import io
import json
import os
import subprocess
import tarfile
import tempfile
import uuid

import berth_helpers as bh

SIZE = 65536
WINDOW = 1024 * SIZE


def uniq():
    return uuid.uuid4().hex[:6]


def record(inst, endpoint):
    with open(os.path.join(inst.state_dir, "endpoints", endpoint + ".json")) as f:
        return json.load(f)["Berth"]["containers"]


def bases_in_use(inst):
    used = set()
    d = os.path.join(inst.state_dir, "endpoints")
    for name in os.listdir(d):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                used.update(c["uid_base"] for c in json.load(f)["Berth"]["containers"])
    return used


def reserved_spans():
    spans = []
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        spans.append((int(parts[1]), int(parts[2])))
        except FileNotFoundError:
            pass
    return spans


def lowest_free(used, base):
    s = base
    while any(s < u + SIZE and u < s + SIZE for u in used) or \
            any(s < a + n and a < s + SIZE for a, n in reserved_spans()):
        s += SIZE
    return s


def host_ids(pid):
    """(uids, gids) of a host process, from /proc/PID/status."""
    uids = gids = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uids = [int(x) for x in line.split()[1:]]
            if line.startswith("Gid:"):
                gids = [int(x) for x in line.split()[1:]]
    return uids, gids


def container_pids(inst):
    return {c["id"]: c["pid"] for c in bh.runc_list(inst.run_dir) if c["status"] == "running"}


def model_tarball(path, files):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, (data, mode) in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            ti.uid = ti.gid = 0
            tf.addfile(ti, io.BytesIO(data))


def create_instances(inst, name, count, env=None):
    sm = inst.sm
    sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(env=env))
    sm.create_endpoint_config(EndpointConfigName=name + "-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name + "-ep", EndpointConfigName=name + "-cfg")
    inst.wait_in_service(name + "-ep")
    inst.note_containers()
    return name, name + "-cfg", name + "-ep"


def test_container_root_is_an_unprivileged_host_range(berth):
    s = uniq()
    secret = b"root-only weights " + s.encode()
    tarball = os.path.join(berth.object_root, "userns-" + s, "model.tar.gz")
    model_tarball(tarball, {"secret.bin": (secret, 0o600)})
    host_file = os.path.join(berth.state_dir, "written-from-a-container-" + s)
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    env = {"ECHO_MODE": "probe", "ECHO_PROBE_WRITE": host_file,
           "ECHO_PROBE_OVERWRITE": "/proc/sys/kernel/core_pattern",
           "ECHO_PROBE_READ": "/opt/ml/model/secret.bin"}
    stack = bh.create_endpoint_stack(berth.sm, "Userns-" + s, inst=berth,
                                     primary=bh.container(env=env, model_data_url="file://" + tarball))
    try:
        out = json.loads(berth.rt.invoke_endpoint(EndpointName=stack[2], Body=b"probe")["Body"].read())
        print("probe from inside the container:", out)
        (c,) = record(berth, stack[2])
        base = c["uid_base"]
        first, last = berth.userns_window()
        assert last - first + 1 == WINDOW and (first - 100000000) % WINDOW == 0
        assert first <= base <= last - SIZE + 1 and (base - first) % SIZE == 0
        # inside: root is mapped, not the identity
        assert out["uid_map"] == [0, base, SIZE]
        # from the host: the container's processes are unprivileged uids
        pid = container_pids(berth)[c["id"]]
        uids, gids = host_ids(pid)
        assert uids == [base] * 4 and gids == [base] * 4
        with open("/proc/%d/uid_map" % pid) as f:
            assert f.read().split() == ["0", str(base), str(SIZE)]
        # host paths stay out of reach: the kernel's core_pattern, a host file
        assert out["overwrite"] in ("Read-only file system", "Permission denied")
        with open("/proc/sys/kernel/core_pattern") as f:
            assert f.read() == core_pattern
        assert out["write"] != "ok" and not os.path.exists(host_file)
        # its own root is writable, and what it writes is owned by its range
        assert out["write_root"] == "ok"
        st = os.stat(os.path.join(berth.state_dir, "containers", c["id"], "upper", "probe-root-write"))
        assert (st.st_uid, st.st_gid) == (base, base)
        # the model data, host root's and mode 0600, is its root's to read
        assert out["read"] == "ok"
        berth.assert_serving()
    finally:
        bh.delete_stack(berth, *stack)


def test_instances_get_ranges_of_their_own_kept_across_kill9_freed_on_delete(berth):
    s = uniq()
    a = create_instances(berth, "UnsA-" + s, 2)
    b = create_instances(berth, "UnsB-" + s, 1)
    try:
        ca, cb = record(berth, a[2]), record(berth, b[2])
        assert len(ca) == 2 and len(cb) == 1
        bases = [c["uid_base"] for c in ca + cb]
        assert len(set(bases)) == 3, "each instance has a range of its own: %s" % bases
        pids = container_pids(berth)
        for c in ca + cb:
            assert host_ids(pids[c["id"]])[0] == [c["uid_base"]] * 4

        berth.restart_berthd()  # kill -9, then start again on the same state
        assert record(berth, a[2]) == ca and record(berth, b[2]) == cb
        assert container_pids(berth) == pids  # re-adopted, not restarted
        for ep in (a[2], b[2]):
            assert berth.rt.invoke_endpoint(EndpointName=ep, Body=b"x",
                                            ContentType="text/plain")["ResponseMetadata"]["HTTPStatusCode"] == 200
        c = create_instances(berth, "UnsC-" + s, 1)
        (cc,) = record(berth, c[2])
        assert cc["uid_base"] not in bases
        assert cc["uid_base"] == lowest_free(bases_in_use(berth) - {cc["uid_base"]}, berth.userns_window()[0])

        # deleting A frees its two ranges: the next instance takes the lowest free one
        bh.delete_stack(berth, *a)
        a = None
        used = bases_in_use(berth)
        assert not used & {x["uid_base"] for x in ca}
        d = create_instances(berth, "UnsD-" + s, 1)
        (cd,) = record(berth, d[2])
        assert cd["uid_base"] == lowest_free(used, berth.userns_window()[0])
        assert cd["uid_base"] in {x["uid_base"] for x in ca} or cd["uid_base"] < min(x["uid_base"] for x in ca)
        berth.assert_serving()
        bh.delete_stack(berth, *c)
        bh.delete_stack(berth, *d)
    finally:
        if a:
            bh.delete_stack(berth, *a)
        bh.delete_stack(berth, *b)


def test_bad_uid_base_and_unpassable_state_dir_are_refused():
    build = bh.build_dir()
    # berthd returns from main at once, leaving what it parsed to the exit
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    top = tempfile.mkdtemp(prefix="berth-userns-", dir="/var/tmp")
    run = tempfile.mkdtemp(prefix="bt-", dir="/run")
    try:
        r = subprocess.run([os.path.join(build, "berthd"), "--userns-uid-base", "12",
                            "--state-dir", os.path.join(top, "state"), "--run-dir", run],
                           capture_output=True, timeout=30, env=env)
        assert r.returncode == 2
        assert b"--userns-uid-base must be a whole number from 65536 to 4294901759" in r.stderr, r.stderr
        # mkdtemp made top 0700: a container's root could not pass through it
        r = subprocess.run([os.path.join(build, "berthd"), "--state-dir", os.path.join(top, "state"),
                            "--run-dir", run], capture_output=True, timeout=30, env=env)
        assert r.returncode == 1
        msg = r.stderr.decode()
        assert "must pass through %s" % top in msg and "chmod o+x %s" % top in msg, msg
        assert not bh.shim_pids(run)
    finally:
        subprocess.run(["rm", "-rf", top, run])


def nginx_gunicorn_image():
    """examples/nginx-gunicorn, built (once, cached) as make framework-images does."""
    link = os.path.join(bh.build_dir(), "images", "nginx-gunicorn")
    if not os.path.isfile(os.path.join(link, "image.env")):
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        r = subprocess.run([os.path.join(repo, "examples", "lib", "build-oci-image.sh"),
                            os.path.join(repo, "examples", "nginx-gunicorn"), link],
                           stdout=subprocess.PIPE, timeout=1800)
        assert r.returncode == 0, "building the nginx-gunicorn image failed (see stderr above)"
    return os.path.realpath(link)


def test_nginx_gunicorn_image_chowns_its_temp_dirs_and_answers(berth):
    d = nginx_gunicorn_image()
    with open(os.path.join(d, "samples", "input.txt"), "rb") as f:
        body = f.read()
    with open(os.path.join(d, "samples", "expected.json")) as f:
        expected = json.load(f)
    s = uniq()
    stack = bh.create_endpoint_stack(berth.sm, "Ngx-" + s, inst=berth, primary={
        "Image": "oci:%s/oci:latest" % d, "ModelDataUrl": "file://%s/model.tar.gz" % d})
    try:
        out = json.loads(berth.rt.invoke_endpoint(EndpointName=stack[2], Body=body)["Body"].read())
        assert out["greeting"] == expected["greeting"] and out["body"] == expected["body"]
        # gunicorn dropped to www-data, and the chown at start gave nginx's
        # temp directory to www-data: the mapped root could do both
        assert out["user"] == "www-data" and out["uid"] == 33
        assert out["nginx_temp_owner"] == "www-data"
        # from the host, every process of the container is in its range,
        # root's at the base and www-data's at base + 33
        (c,) = record(berth, stack[2])
        base = c["uid_base"]
        pid = container_pids(berth)[c["id"]]
        uids = set()
        for p in [pid] + bh.descendants(pid):
            try:
                uids.add(host_ids(p)[0][0])
            except FileNotFoundError:
                pass
        assert uids <= {base, base + 33} and base + 33 in uids and base in uids, uids
        berth.assert_serving()
    finally:
        bh.delete_stack(berth, *stack)
