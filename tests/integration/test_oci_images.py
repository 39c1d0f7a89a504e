"""OCI image layouts:
`Image: oci:/path/to/layout[:tag]` unpacked once into berthd's
content-addressed cache with every digest verified and whiteouts applied,
the image config honoured as Docker does, and each container on a private
writable overlay root.

The layouts are built here in Python (tarfile + hashlib + json, the format
`umoci` and `skopeo copy` write) around the echo binary."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

S = uuid.uuid4().hex[:6]
LAYER_MT = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MT = "application/vnd.oci.image.config.v1+json"
BIND_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"


# ---- building layouts ------------------------------------------------------

def d(name, mode=0o755, uid=0, gid=0):
    return {"type": "dir", "name": name, "mode": mode, "uid": uid, "gid": gid}


def f(name, data, mode=0o644, uid=0, gid=0):
    return {"type": "file", "name": name, "data": data if isinstance(data, bytes) else data.encode(),
            "mode": mode, "uid": uid, "gid": gid}


def ln(name, target):
    return {"type": "symlink", "name": name, "target": target}


def tar_layer(entries, compression="gzip"):
    """(blob bytes, media type, diff id) of a layer made of entries."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mtime = 1700000000
            if e["type"] == "dir":
                ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, e["mode"], e["uid"], e["gid"]
                t.addfile(ti)
            elif e["type"] == "file":
                ti.mode, ti.uid, ti.gid, ti.size = e["mode"], e["uid"], e["gid"], len(e["data"])
                t.addfile(ti, io.BytesIO(e["data"]))
            else:
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e["target"], 0o777
                t.addfile(ti)
    raw = bio.getvalue()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    if compression == "gzip":
        return gzip.compress(raw, mtime=0), LAYER_MT + "+gzip", diff_id
    if compression == "zstd":
        z = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True, timeout=30)
        return z.stdout, LAYER_MT + "+zstd", diff_id
    return raw, LAYER_MT, diff_id


def make_layout(layout, layers, config, tags=("latest",)):
    """Writes an OCI image layout; returns the manifest digest."""
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)
    descs, diff_ids = [], []
    for blob, mt, diff_id in layers:
        descs.append(dict(bh.oci_add_blob(layout, blob), mediaType=mt))
        diff_ids.append(diff_id)
    cfg = {"architecture": "amd64", "os": "linux", "config": config,
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cdesc = dict(bh.oci_add_blob(layout, json.dumps(cfg).encode()), mediaType=CONFIG_MT)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MT, "config": cdesc, "layers": descs}
    mdesc = dict(bh.oci_add_blob(layout, json.dumps(manifest).encode()), mediaType=MANIFEST_MT)
    index = {"schemaVersion": 2, "manifests": [
        dict(mdesc, annotations={"org.opencontainers.image.ref.name": t}) for t in tags]}
    with open(os.path.join(layout, "index.json"), "w") as fh:
        json.dump(index, fh)
    return mdesc["digest"]


def echo_binary():
    with open(os.path.join(bh.build_dir(), "echo-serve"), "rb") as fh:
        return fh.read()


PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:app\n"


def base_entries(serve_path="opt/bin/echo-serve"):
    """A root like the echo image's, with the binary at serve_path (not on
    PATH and not /serve, so only an honoured Entrypoint finds it)."""
    dirs = ["proc", "dev", "sys", "etc", "opt", "opt/bin", "opt/ml", "opt/ml/model", "var", "var/log",
            "var/lib", "var/lib/nginx", "run", "srv", "home"]
    out = [d(x) for x in dirs] + [d("tmp", 0o1777)]
    out += [f("etc/passwd", PASSWD), f("etc/group", GROUP), f("etc/hostname", "oci\n"),
            f(serve_path, echo_binary(), 0o755)]
    return out


def config(env=(), entrypoint=("/opt/bin/echo-serve",), **kw):
    c = {"Entrypoint": list(entrypoint), "Cmd": ["this-cmd-is-replaced-by-serve"], "Env": list(env)}
    c.update(kw)
    return c


def image_dirs(inst):
    p = os.path.join(inst.state_dir, "images")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def cache_rootfs(inst, digest):
    return os.path.join(inst.state_dir, "images", "sha256-" + digest.split(":")[1], "rootfs")


def invoke(inst, ep, body, target=None):
    kw = {"EndpointName": ep, "Body": body, "ContentType": "text/plain"}
    if target:
        kw["TargetContainerHostname"] = target
    r = inst.rt.invoke_endpoint(**kw)
    return r["Body"].read().decode()


def wait_settled(inst, ep, timeout=60):
    def settled():
        dd = inst.sm.describe_endpoint(EndpointName=ep)
        return dd if dd["EndpointStatus"] in ("InService", "Failed") else None
    return bh.wait_until(settled, timeout, "endpoint %s to settle" % ep, interval=0.2)


def stack(inst, name, image, env=None, hostnames=None, mode=None):
    """Model + config + endpoint, not waiting; returns the names."""
    if hostnames:
        cs = [bh.container(h, image=image, env=env) for h in hostnames]
        return bh.create_endpoint_stack(inst.sm, name, containers=cs, mode=mode or "Direct", wait=False)
    return bh.create_endpoint_stack(inst.sm, name, primary=bh.container(image=image, env=env), wait=False)


def walk_names(top):
    out = set()
    for root, dirs, files in os.walk(top):
        out.update(dirs)
        out.update(files)
    return out


# ---- tests -------------------------------------------------------------------

def test_config_honoured(berth, tmp_path):
    """Entrypoint (+ "serve"), Env under CreateModel Environment, WorkingDir
    and User (a name from the image's /etc/passwd, its groups from
    /etc/group); a zstd layer on a gzip one."""
    layout = str(tmp_path / "cfg")
    layers = [tar_layer(base_entries()),
              tar_layer([d("srv"), d("srv/work", 0o755, 1000, 1001)],
                        "zstd")]
    make_layout(layout, layers, config(
        env=["PATH=/usr/bin:/bin", "ECHO_MODE=env", "ECHO_ENV_KEY=IMG_VAR", "IMG_VAR=from-image",
             "OVERRIDE=image"],
        WorkingDir="/srv/work", User="app", Labels={BIND_LABEL: "true"}), tags=("v1", "latest"))
    m, c, ep = stack(berth, "oci-cfg-" + S, "oci:%s:v1" % layout, env={"OVERRIDE": "model"})
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    out = invoke(berth, ep, b"")
    assert out.splitlines() == ["IMG_VAR=from-image", "cwd=/srv/work", "uid=1000", "gid=1001", "groups=50"], out
    assert invoke(berth, ep, b"OVERRIDE").startswith("OVERRIDE=model\n")
    assert invoke(berth, ep, b"SAGEMAKER_BIND_TO_PORT").startswith("SAGEMAKER_BIND_TO_PORT=8080\n")
    assert invoke(berth, ep, b"PATH").startswith("PATH=/usr/bin:/bin\n")
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_whiteouts_and_opaque_dirs(berth, tmp_path):
    layout = str(tmp_path / "wh")
    l1 = tar_layer(base_entries() + [d("data"), f("data/a.txt", "A"), f("data/b.txt", "B"),
                                     d("olddir"), f("olddir/x", "X"), d("olddir/sub"), f("olddir/sub/y", "Y")])
    l2 = tar_layer([d("data"), f("data/.wh.a.txt", ""), d("olddir"), f("olddir/.wh..wh..opq", ""),
                    f("olddir/new", "N")])
    digest = make_layout(layout, [l1, l2], config(env=["ECHO_MODE=file"]))
    m, c, ep = stack(berth, "oci-wh-" + S, "oci:" + layout)
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    root = cache_rootfs(berth, digest)
    assert os.path.isfile(os.path.join(root, "data", "b.txt"))
    assert not os.path.lexists(os.path.join(root, "data", "a.txt"))
    assert not os.path.lexists(os.path.join(root, "data", ".wh.a.txt"))
    assert sorted(os.listdir(os.path.join(root, "olddir"))) == ["new"]
    assert invoke(berth, ep, b"read /data/b.txt") == "B"
    with pytest.raises(ClientError) as ei:
        invoke(berth, ep, b"read /data/a.txt")
    assert bh.error_code(ei.value) == "ModelError"
    assert invoke(berth, ep, b"read /olddir/new") == "N"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_missing_layout_malformed_index_missing_tag(berth, tmp_path):
    layout = str(tmp_path / "tags")
    make_layout(layout, [tar_layer(base_entries())], config(), tags=("v1", "v2"))
    bad_index = str(tmp_path / "badindex")
    make_layout(bad_index, [tar_layer([f("x", "x")])], config())
    with open(os.path.join(bad_index, "index.json"), "w") as fh:
        fh.write('{"manifests": [')
    not_layout = str(tmp_path / "plain")
    os.makedirs(not_layout)
    cases = [
        ("oci:%s/nope" % tmp_path, "does not exist"),
        ("oci:" + layout, 'no tag "latest"'),
        ("oci:%s:v3" % layout, "its tags are: v1, v2"),
        ("oci:" + bad_index, "index.json is not valid JSON"),
        ("oci:" + not_layout, "no oci-layout file"),
        ("oci:relative/path", "absolute"),
    ]
    for i, (image, want) in enumerate(cases):
        with pytest.raises(ClientError) as ei:
            berth.sm.create_model(ModelName="oci-bad-%d-%s" % (i, S), ExecutionRoleArn=bh.ROLE,
                                  PrimaryContainer={"Image": image})
        assert bh.error_code(ei.value) == "ValidationException", image
        assert want in bh.error_message(ei.value), (image, bh.error_message(ei.value))
    berth.assert_serving()


def _assert_failed_and_clean(inst, name, image, want):
    before = image_dirs(inst)
    m, c, ep = stack(inst, name, image)
    dd = wait_settled(inst, ep)
    assert dd["EndpointStatus"] == "Failed", dd
    assert want in dd.get("FailureReason", ""), dd
    # nothing half-unpacked in the cache: no new entry, no partial, no lock
    assert image_dirs(inst) == before, image_dirs(inst)
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)
    inst.assert_serving()


def test_layer_digest_mismatch_fails_endpoint_and_leaves_no_cache(berth, tmp_path):
    """CreateModel stays cheap (the layout, index and tag are fine); the
    layer is verified while it is unpacked, so the endpoint fails."""
    layout = str(tmp_path / "corrupt")
    l1 = tar_layer(base_entries(), compression=None)
    make_layout(layout, [l1], config())
    path = os.path.join(layout, "blobs", "sha256", hashlib.sha256(l1[0]).hexdigest())
    data = bytearray(open(path, "rb").read())
    at = data.find(b"app:x:1000")
    data[at] = ord("A")  # still a valid tar, other bytes than the digest names
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    _assert_failed_and_clean(berth, "oci-digest-" + S, "oci:" + layout, "does not match its digest")


def test_dotdot_entry_refused(berth, tmp_path):
    marker = "escaped-" + S
    layout = str(tmp_path / "dotdot")
    make_layout(layout, [tar_layer(base_entries() + [f("../" + marker, "evil"),
                                                     f("../../" + marker, "evil")])], config())
    _assert_failed_and_clean(berth, "oci-dotdot-" + S, "oci:" + layout, "outside the image root")
    assert marker not in walk_names(berth.state_dir)
    assert marker not in os.listdir(os.path.dirname(berth.state_dir))


def test_absolute_symlink_out_is_not_written_through(berth, tmp_path):
    host = str(tmp_path / "host-target")
    os.makedirs(host)
    layout = str(tmp_path / "symlink")
    l1 = tar_layer(base_entries() + [ln("hostlink", host), ln("etc/shadowlink", "/etc")])
    l2 = tar_layer([f("hostlink/pwned", "evil")])
    make_layout(layout, [l1, l2], config())
    _assert_failed_and_clean(berth, "oci-symlink-" + S, "oci:" + layout, "symbolic link")
    assert os.listdir(host) == []
    # the same link without anything written through it is a fine image
    ok = str(tmp_path / "symlink-ok")
    digest = make_layout(ok, [l1], config(env=["ECHO_MODE=file"]))
    m, c, ep = stack(berth, "oci-symok-" + S, "oci:" + ok)
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    assert os.readlink(os.path.join(cache_rootfs(berth, digest), "hostlink")) == host
    bh.delete_stack(berth, m, c, ep)
    assert os.listdir(host) == []
    bh.assert_no_leaks(berth)


def test_writable_private_overlay(berth, tmp_path):
    """Two containers of one image: each writes where serving stacks write;
    the other does not see it and the cached image stays as it was."""
    layout = str(tmp_path / "rw")
    digest = make_layout(layout, [tar_layer(base_entries())], config(env=["ECHO_MODE=file"]))
    m, c, ep = stack(berth, "oci-rw-" + S, "oci:" + layout, hostnames=["a", "b"])
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    root = cache_rootfs(berth, digest)
    before = sorted(walk_names(root))
    paths = ["/var/log/app.log", "/tmp/t.txt", "/run/app.pid", "/var/lib/nginx/body", "/new-at-root"]
    for p in paths:
        assert invoke(berth, ep, ("write %s hello-%s" % (p, p)).encode(), target="a") == "ok"
        assert invoke(berth, ep, ("read " + p).encode(), target="a") == "hello-" + p
        with pytest.raises(ClientError) as ei:
            invoke(berth, ep, ("read " + p).encode(), target="b")
        assert bh.error_code(ei.value) == "ModelError"
    # the image's own files can be replaced in the container, not in the cache
    assert invoke(berth, ep, b"write /etc/hostname changed", target="a") == "ok"
    assert open(os.path.join(root, "etc", "hostname")).read() == "oci\n"
    assert sorted(walk_names(root)) == before
    # the writes are in a's upper layer, which goes away with the container
    cdir = os.path.join(berth.state_dir, "containers")
    uppers = [os.path.join(cdir, i, "upper") for i in os.listdir(cdir)
              if os.path.isfile(os.path.join(cdir, i, "upper", "var", "log", "app.log"))]
    assert len(uppers) == 1, os.listdir(cdir)
    # a multi-container model's image without the bind-to-port label is warned about
    assert "lacks the label " + BIND_LABEL in open(berth.berthd_log).read()
    bh.delete_stack(berth, m, c, ep)
    for u in uppers:
        assert not os.path.exists(os.path.dirname(u))
    assert os.path.isdir(root)
    bh.assert_no_leaks(berth)


def test_concurrent_starts_share_one_unpack(berth, tmp_path):
    """Three containers of one image start in parallel threads (this host
    fits one ml.m5.large endpoint at a time, so they share an endpoint):
    one unpack, one cache entry."""
    layout = str(tmp_path / "shared")
    digest = make_layout(layout, [tar_layer(base_entries() + [f("big", os.urandom(4 << 20))])],
                         config(Labels={BIND_LABEL: "true"}))
    m, c, ep = stack(berth, "oci-share-" + S, "oci:" + layout, hostnames=["a", "b", "c"])
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    log = open(berth.berthd_log).read()
    assert log.count("unpacked image %s" % digest) == 1, log[-3000:]
    hexd = digest.split(":")[1]
    assert [x for x in image_dirs(berth) if hexd in x] == ["sha256-" + hexd]
    assert "image oci:%s lacks the label" % layout not in log
    for h in ("a", "b", "c"):
        assert invoke(berth, ep, b"hi", target=h) == "hi"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_orphan_overlay_removed_at_start(make_berth, tmp_path):
    """A container directory no endpoint refers to (a berthd that died
    between mounting and recording) is unmounted and removed at start-up."""
    inst = make_berth()
    layout = str(tmp_path / "orphan")
    make_layout(layout, [tar_layer(base_entries())], config())
    m, c, ep = stack(inst, "oci-orphan-" + S, "oci:" + layout)
    assert wait_settled(inst, ep)["EndpointStatus"] == "InService"
    inst.note_containers()
    # fake an orphan: an overlay mounted under containers/ with no record
    orphan = os.path.join(inst.state_dir, "containers", "00000000deadbeef")
    for sub in ("rootfs", "upper", "work"):
        os.makedirs(os.path.join(orphan, sub))
    lower = os.path.join(tmp_path, "lower")
    os.makedirs(lower)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s/upper,workdir=%s/work" % (lower, orphan, orphan),
                    os.path.join(orphan, "rootfs")], check=True, timeout=20)
    assert bh.mounts_under([orphan])
    inst.restart_berthd()
    bh.wait_until(lambda: not os.path.exists(orphan), 20, "orphan container dir removed")
    assert not bh.mounts_under([orphan])
    # the real endpoint was not touched
    assert inst.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService"
    assert invoke(inst, ep, b"still here") == "still here"
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)


def test_layout_written_by_umoci(berth, tmp_path):
    """A layout as umoci writes it (init, new, unpack, repack, config)."""
    layout, bundle = str(tmp_path / "umoci"), str(tmp_path / "bundle")

    def umoci(*args):
        subprocess.run(["umoci"] + list(args), check=True, capture_output=True, timeout=60)
    umoci("init", "--layout", layout)
    umoci("new", "--image", layout + ":v1")
    umoci("unpack", "--image", layout + ":v1", bundle)
    root = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(root, "usr", "local", "bin"))
    with open(os.path.join(root, "usr", "local", "bin", "serve"), "wb") as fh:
        fh.write(echo_binary())
    os.chmod(os.path.join(root, "usr", "local", "bin", "serve"), 0o755)
    umoci("repack", "--image", layout + ":v1", bundle)
    umoci("config", "--image", layout + ":v1", "--config.env", "ECHO_MODE=upper")
    m, c, ep = stack(berth, "oci-umoci-" + S, "oci:%s:v1" % layout)
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    assert invoke(berth, ep, b"made by umoci") == "MADE BY UMOCI"
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


# lrzip's magic and version bytes: libarchive's filter_all would hand such a
# stream to an `lrzip -d` it finds on PATH (found by the layer fuzz target)
LRZIP_BLOB = b"LRZI\x00\x06" + b"\x00" * 18 + b"not really lrzip data\n" * 20


def _fake_decompressors(tmp_path, monkeypatch):
    """A PATH directory whose lrzip, lzop and grzip only leave a trace, put
    first on the PATH berthd inherits. Returns the trace file."""
    bindir, trace = tmp_path / "fakebin", tmp_path / "decompressor-ran"
    bindir.mkdir()
    for name in ("lrzip", "lzop", "grzip"):
        p = bindir / name
        p.write_text("#!/bin/sh\necho %s \"$@\" >> %s\nexit 1\n" % (name, trace))
        p.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")))
    return str(trace)


def test_layer_never_runs_an_external_decompressor(make_berth, tmp_path, monkeypatch):
    """A layer whose bytes claim lrzip compression is not a layer the OCI
    media types allow (tar, tar+gzip, tar+zstd): the endpoint fails naming
    the layer, and berthd (root) runs no program found on its PATH."""
    trace = _fake_decompressors(tmp_path, monkeypatch)
    inst = make_berth()
    layout = str(tmp_path / "lrzip-layer")
    good = tar_layer(base_entries())
    diff_id = "sha256:" + hashlib.sha256(LRZIP_BLOB).hexdigest()
    make_layout(layout, [good, (LRZIP_BLOB, LAYER_MT + "+gzip", diff_id)], config())
    _assert_failed_and_clean(inst, "oci-lrzip-" + S, "oci:" + layout,
                             "not a readable tar archive: Unrecognized archive format")
    assert not os.path.exists(trace), open(trace).read()
    # the good layer alone is a fine image
    ok = str(tmp_path / "lrzip-ok")
    make_layout(ok, [good], config())
    m, c, ep = stack(inst, "oci-after-lrzip-" + S, "oci:" + ok)
    assert wait_settled(inst, ep)["EndpointStatus"] == "InService"
    inst.note_containers()
    assert invoke(inst, ep, b"fine") == "fine"
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)


def test_model_artifact_never_runs_an_external_decompressor(make_berth, tmp_path, monkeypatch):
    """The same for a ModelDataUrl artifact (downloaded, unpacked by berthd
    as root): refused as unreadable, no program from PATH run."""
    trace = _fake_decompressors(tmp_path, monkeypatch)
    inst = make_berth()
    path = os.path.join(inst.object_root, "lrzip-" + S, "model.tar.gz")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as fh:
        fh.write(LRZIP_BLOB)
    url = "s3://lrzip-%s/model.tar.gz" % S
    m, c, ep = bh.create_endpoint_stack(inst.sm, "artifact-lrzip-" + S, wait=False, inst=inst,
                                        primary=bh.container(model_data_url=url))
    dd = wait_settled(inst, ep)
    assert dd["EndpointStatus"] == "Failed", dd
    assert "model.tar.gz: Unrecognized archive format" in dd.get("FailureReason", ""), dd
    assert not os.path.exists(trace), open(trace).read()
    bh.delete_stack(inst, m, c, ep)
    inst.assert_serving()
    bh.assert_no_leaks(inst)
