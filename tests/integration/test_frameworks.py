"""Real framework containers: the scikit-learn, PyTorch and
XGBoost example images (examples/*/, built from Debian packages by
examples/lib/build-oci-image.sh, cached in /var/cache/berth/images) served
by berth.

  - the three frameworks side by side as one Direct endpoint, each invoked
    by its ContainerHostname with a sensible answer (shapes, value ranges,
    the build's own predictions);
  - sklearn-preprocess → pytorch-classifier as a Serial pipeline: its answer
    equals running the two steps by hand (each container invoked on its
    own through the Direct endpoint, the first answer fed to the second);
  - each examples/*/walkthrough.py runs green against this berth;
  - the images are OCI layouts with SageMaker's config (Entrypoint, Cmd
    serve, the accept-bind-to-port label), and the builder's cache is keyed
    by its inputs (a warm run is a hash; the serving code changes the key,
    the walkthrough does not).

Images: BERTH_BUILD/images/NAME (linked by `make framework-images`); when a
link is missing the builder runs here (a cache hit costs a hash; an empty
cache takes minutes). Image = oci:DIR/oci:latest, or the unpacked
DIR/rootfs with BERTH_FRAMEWORK_IMAGE=rootfs.
"""
import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

import berth_helpers as bh

S = uuid.uuid4().hex[:6]
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NAMES = ("sklearn-preprocess", "pytorch-classifier", "xgboost-regressor")
HOST = {"sklearn-preprocess": "preprocess", "pytorch-classifier": "classifier",
        "xgboost-regressor": "regressor"}
IN_SERVICE_S = 120      # all three from a cold image cache (OCI unpack) and `import torch`
WARM_IN_SERVICE_S = 30  # the same, images already in berth's cache
INVOKE_S = 5.0          # one invocation, first call of a fresh process included


def image_dir(name):
    link = os.path.join(bh.build_dir(), "images", name)
    if not os.path.isfile(os.path.join(link, "image.env")):
        r = subprocess.run([os.path.join(REPO, "examples", "lib", "build-oci-image.sh"),
                            os.path.join(REPO, "examples", name), link],
                           stdout=subprocess.PIPE, timeout=1800)
        assert r.returncode == 0, "building the %s image failed (see stderr above)" % name
    return os.path.realpath(link)


def image_ref(d):
    if os.environ.get("BERTH_FRAMEWORK_IMAGE", "oci") == "rootfs":
        return os.path.join(d, "rootfs")
    return "oci:%s/oci:latest" % d


def fw_container(name, dirs):
    d = dirs[name]
    return {"ContainerHostname": HOST[name], "Image": image_ref(d),
            "ModelDataUrl": "file://%s/model.tar.gz" % d}


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def csv_floats(data):
    text = data.decode() if isinstance(data, bytes) else data
    return [[float(v) for v in r] for r in csv.reader(io.StringIO(text)) if r]


@pytest.fixture(scope="module")
def dirs():
    return {n: image_dir(n) for n in NAMES}


@pytest.fixture(scope="module")
def fberth(dirs):
    # Longer invocation timeout than the default fixture's 2 s: a fresh
    # TorchScript model's first call does its optimisation pass.
    yield from bh.serve(invocation_timeout_ms=20000)


def create_stack(inst, tag, containers, mode):
    t0 = time.monotonic()
    stack = bh.create_endpoint_stack(inst.sm, "Fw%s-%s" % (tag, S), containers=containers, mode=mode,
                                     wait=False)
    inst.sm.get_waiter("endpoint_in_service").wait(
        EndpointName=stack[2], WaiterConfig={"Delay": 0.5, "MaxAttempts": int(IN_SERVICE_S * 2)})
    inst.note_containers()
    dt = time.monotonic() - t0
    print("%s endpoint %s InService after %.2fs" % (mode, stack[2], dt))
    return stack, dt


@pytest.fixture(scope="module")
def direct(fberth, dirs):
    """One Direct endpoint with the three frameworks side by side."""
    stack, _ = create_stack(fberth, "dir", [fw_container(n, dirs) for n in NAMES], "Direct")
    yield stack[2]
    bh.delete_stack(fberth, *stack)


def invoke(inst, ep, body, **kw):
    t0 = time.monotonic()
    resp = inst.rt.invoke_endpoint(EndpointName=ep, Body=body, **kw)
    data = resp["Body"].read()
    dt = time.monotonic() - t0
    assert dt < INVOKE_S, "invocation took %.2fs" % dt
    return resp, data


# ---- the three frameworks side by side ----------------------------------------

def test_direct_sklearn_preprocess(fberth, direct, dirs):
    d = dirs["sklearn-preprocess"]
    body = read(os.path.join(d, "samples", "input.csv"), "rb")
    resp, data = invoke(fberth, direct, body, TargetContainerHostname="preprocess", ContentType="text/csv")
    assert resp["ContentType"] == "text/csv"
    got, want = csv_floats(data), csv_floats(read(os.path.join(d, "samples", "expected.csv")))
    assert len(got) == body.count(b"\n") == 15 and all(len(r) == 7 for r in got), got
    assert all(abs(x - y) < 1e-9 for g, w in zip(got, want) for x, y in zip(g, w)), (got, want)
    for r in got:   # standardised measurements, then exactly one shape set
        assert all(-4 < v < 4 for v in r[:4]), r
        assert sorted(r[4:]) == [0.0, 0.0, 1.0], r

    # JSON out; a header line is skipped; an unknown shape encodes as all zeros
    resp, data = invoke(fberth, direct, b"sepal_length,sepal_width,petal_length,petal_width,sepal_shape\n"
                        b"5.1,3.5,1.4,0.2,wide\n5.0,3.0,1.5,0.2,round\n", TargetContainerHostname="preprocess",
                        ContentType="text/csv", Accept="application/json")
    assert resp["ContentType"] == "application/json"
    doc = json.loads(data)
    assert len(doc["columns"]) == 7 and len(doc["instances"]) == 2, doc
    assert doc["instances"][0][4:] == [1.0, 0.0, 0.0] and doc["instances"][1][4:] == [0.0, 0.0, 0.0], doc

    # a bad row is the model's 400, surfaced as ModelError naming the container
    with pytest.raises(fberth.rt.exceptions.ModelError) as ei:
        fberth.rt.invoke_endpoint(EndpointName=direct, TargetContainerHostname="preprocess",
                                  ContentType="text/csv", Body=b"1,2,3\n")
    err = ei.value.response
    assert err["OriginalStatusCode"] == 400, err
    assert "schema" in err["Error"]["Message"], err


def test_direct_pytorch_classifier(fberth, direct, dirs):
    d = dirs["pytorch-classifier"]
    body = read(os.path.join(d, "samples", "input.csv"), "rb")
    expected = json.loads(read(os.path.join(d, "samples", "expected.json")))
    resp, data = invoke(fberth, direct, body, TargetContainerHostname="classifier", ContentType="text/csv")
    assert resp["ContentType"] == "application/json"
    preds = json.loads(data)["predictions"]
    assert len(preds) == len(expected["probabilities"]) == 15
    for p, want, label in zip(preds, expected["probabilities"], expected["labels"]):
        assert len(p["probabilities"]) == 3 and abs(sum(p["probabilities"]) - 1) < 1e-5, p
        assert all(0 <= v <= 1 for v in p["probabilities"]), p
        assert all(abs(x - y) < 1e-5 for x, y in zip(p["probabilities"], want)), (p, want)
        assert p["class"] == max(range(3), key=p["probabilities"].__getitem__)
    right = sum(p["label"] == y for p, y in zip(preds, expected["labels"]))
    assert right >= 13, (right, preds)

    resp, data = invoke(fberth, direct, body, TargetContainerHostname="classifier", ContentType="text/csv",
                        Accept="text/csv")
    assert resp["ContentType"] == "text/csv"
    rows = csv_floats(data)
    assert len(rows) == 15 and all(len(r) == 3 for r in rows)


def test_direct_xgboost_regressor(fberth, direct, dirs):
    d = dirs["xgboost-regressor"]
    body = read(os.path.join(d, "samples", "input.csv"), "rb")
    targets = [float(v) for v in read(os.path.join(d, "samples", "targets.txt")).split()]
    expected = [float(v) for v in read(os.path.join(d, "samples", "expected.txt")).split()]
    resp, data = invoke(fberth, direct, body, TargetContainerHostname="regressor", ContentType="text/csv")
    assert resp["ContentType"] == "text/csv"
    preds = [float(v) for v in data.split()]
    assert len(preds) == len(targets) == 20
    # the build's own predictions (float32 booster), and close to the truth:
    # diabetes targets span 25..346 (std 77); the fit is on these rows
    assert all(abs(p - e) < 1e-3 for p, e in zip(preds, expected)), (preds, expected)
    assert all(20 < p < 360 for p in preds), preds
    mae = sum(abs(p - y) for p, y in zip(preds, targets)) / len(targets)
    assert mae < 35, (mae, preds, targets)

    resp, data = invoke(fberth, direct, json.dumps({"instances": [[0.0] * 10, [0.05] * 10]}),
                        TargetContainerHostname="regressor", ContentType="application/json",
                        Accept="application/json")
    assert len(json.loads(data)["predictions"]) == 2


def test_direct_frameworks_answer_concurrently(fberth, direct, dirs):
    """The three containers serve at the same time (threads, one connection each)."""
    import concurrent.futures
    bodies = {h: read(os.path.join(dirs[n], "samples", "input.csv"), "rb") for n, h in HOST.items()}

    def one(h):
        return [invoke(fberth, direct, bodies[h], TargetContainerHostname=h, ContentType="text/csv")[1]
                for _ in range(5)]
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        results = dict(zip(bodies, ex.map(one, bodies)))
    for h, answers in results.items():
        assert len(set(answers)) == 1, "%s answered differently to the same request" % h


# ---- sklearn → PyTorch as a Serial pipeline --------------------------------

def test_serial_sklearn_then_pytorch_equals_steps_by_hand(fberth, direct, dirs):
    stack, dt = create_stack(fberth, "ser", [fw_container("sklearn-preprocess", dirs),
                                             fw_container("pytorch-classifier", dirs)], "Serial")
    try:
        # the images are unpacked already (the Direct endpoint): start-up only
        assert dt < WARM_IN_SERVICE_S, "Serial endpoint took %.1fs to be InService" % dt
        raw = read(os.path.join(dirs["sklearn-preprocess"], "samples", "input.csv"), "rb")
        labels = read(os.path.join(dirs["sklearn-preprocess"], "samples", "labels.txt")).split()

        # by hand: step 1, its answer (body and type) fed to step 2
        r1, mid = invoke(fberth, direct, raw, TargetContainerHostname="preprocess", ContentType="text/csv")
        _, by_hand = invoke(fberth, direct, mid, TargetContainerHostname="classifier",
                            ContentType=r1["ContentType"], Accept="application/json")

        resp, piped = invoke(fberth, stack[2], raw, ContentType="text/csv", Accept="application/json")
        assert resp["ContentType"] == "application/json"
        assert json.loads(piped) == json.loads(by_hand)
        preds = json.loads(piped)["predictions"]
        assert len(preds) == 15
        right = sum(p["label"] == y for p, y in zip(preds, labels))
        assert right >= 13, (right, [p["label"] for p in preds], labels)
        timing = resp["ResponseMetadata"]["HTTPHeaders"].get("server-timing", "")
        assert "preprocess" in timing and "classifier" in timing, timing

        # the client's Accept goes to the last step only: CSV probabilities
        resp, piped_csv = invoke(fberth, stack[2], raw, ContentType="text/csv", Accept="text/csv")
        assert resp["ContentType"] == "text/csv"
        rows = csv_floats(piped_csv)
        assert len(rows) == 15 and all(len(r) == 3 for r in rows)
        assert all(abs(a - b) < 1e-12 for r, p in zip(rows, preds) for a, b in zip(r, p["probabilities"]))

        # JSON through the whole chain gives the same classes
        body = json.dumps({"instances": [r.split(",") for r in raw.decode().split()]})
        _, piped_json = invoke(fberth, stack[2], body, ContentType="application/json")
        assert [p["label"] for p in json.loads(piped_json)["predictions"]] == [p["label"] for p in preds]

        # a row the first step rejects stops the chain there
        with pytest.raises(fberth.rt.exceptions.ModelError) as ei:
            fberth.rt.invoke_endpoint(EndpointName=stack[2], ContentType="text/csv", Body=b"x,y\n")
        assert ei.value.response["OriginalStatusCode"] == 400
        assert "preprocess" in ei.value.response["Error"]["Message"], ei.value.response
    finally:
        bh.delete_stack(fberth, *stack)


# ---- the images ----------------------------------------------------------------

def oci_blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])) as f:
        return json.load(f)


@pytest.mark.parametrize("name", NAMES)
def test_image_is_an_oci_layout_with_the_sagemaker_config(dirs, name):
    layout = os.path.join(dirs[name], "oci")
    index = json.loads(read(os.path.join(layout, "index.json")))
    [m] = [m for m in index["manifests"]
           if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"]
    manifest = oci_blob(layout, m["digest"])
    assert len(manifest["layers"]) == 2, manifest          # Debian root, then /usr/local
    assert all(lay["mediaType"].endswith("tar+gzip") for lay in manifest["layers"])
    config = oci_blob(layout, manifest["config"]["digest"])["config"]
    assert config["Entrypoint"] == ["/usr/local/bin/serve"] and config["Cmd"] == ["serve"], config
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert any(e.startswith("PATH=") for e in config["Env"]), config
    # the unpacked rootfs runs the same way (serve on PATH) and a model artifact exists
    assert os.access(os.path.join(dirs[name], "rootfs", "usr", "local", "bin", "serve"), os.X_OK)
    assert os.path.getsize(os.path.join(dirs[name], "model.tar.gz")) > 0


def build_script(*args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(REPO, "examples", "lib", "build-oci-image.sh")] + list(args),
                       capture_output=True, timeout=timeout, env=e)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode().strip(), time.monotonic() - t0


def test_image_build_is_cached_and_keyed_by_its_inputs(dirs, tmp_path):
    # warm cache: the same directory back, at once, nothing rebuilt
    out, dt = build_script(os.path.join(REPO, "examples", "sklearn-preprocess"))
    assert out == dirs["sklearn-preprocess"] and dt < 5, (out, dt)
    # a dependant's key follows its dependency's
    out, _ = build_script(os.path.join(REPO, "examples", "pytorch-classifier"), env={"BERTH_IMAGE_PRINT_ONLY": "1"})
    assert out == dirs["pytorch-classifier"], out

    # a copy of the sources: same key; the walkthrough and README are not
    # inputs; the serving program is
    import shutil
    ex = tmp_path / "examples"
    shutil.copytree(os.path.join(REPO, "examples", "lib"), ex / "lib")
    shutil.copytree(os.path.join(REPO, "examples", "sklearn-preprocess"), ex / "sklearn-preprocess")
    script = str(ex / "lib" / "build-oci-image.sh")

    def key():
        r = subprocess.run([script, str(ex / "sklearn-preprocess")], capture_output=True, timeout=30,
                           env=dict(os.environ, BERTH_IMAGE_PRINT_ONLY="1"))
        assert r.returncode == 0, r.stderr
        return r.stdout.decode().strip()
    assert key() == dirs["sklearn-preprocess"]
    with open(ex / "sklearn-preprocess" / "walkthrough.py", "a") as f:
        f.write("# edited\n")
    (ex / "sklearn-preprocess" / "README.md").write_text("edited\n")
    assert key() == dirs["sklearn-preprocess"]
    with open(ex / "sklearn-preprocess" / "serve", "a") as f:
        f.write("# edited\n")
    changed = key()
    assert changed != dirs["sklearn-preprocess"] and not os.path.exists(changed)
    with open(ex / "lib" / "serving.py", "a") as f:
        f.write("# edited\n")
    assert key() not in (changed, dirs["sklearn-preprocess"])


# ---- the walkthroughs ------------------------------------------------------

@pytest.mark.parametrize("name,extra", [
    ("sklearn-preprocess", []),
    ("sklearn-preprocess", ["--rootfs"]),
    ("pytorch-classifier", []),
    ("pytorch-classifier", ["--pipeline"]),
    ("xgboost-regressor", []),
], ids=["sklearn", "sklearn-rootfs", "pytorch", "pytorch-pipeline", "xgboost"])
def test_walkthrough_runs_green(fberth, dirs, name, extra):
    args = [sys.executable if sys.executable.startswith("/usr/bin/") else "/usr/bin/python3",
            os.path.join(REPO, "examples", name, "walkthrough.py"),
            "--endpoint-url", fberth.url, "--image-dir", dirs[name], "--wait-s", str(IN_SERVICE_S)] + extra
    if "--pipeline" in extra:
        args += ["--sklearn-image-dir", dirs["sklearn-preprocess"]]
    if os.environ.get("BERTH_FRAMEWORK_IMAGE") == "rootfs" and "--rootfs" not in extra:
        args.append("--rootfs")
    t0 = time.monotonic()
    r = subprocess.run(args, capture_output=True, timeout=IN_SERVICE_S + 20, env=fberth.client_env())
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    print(out)
    assert r.returncode == 0, "walkthrough failed (%.1fs):\n%s" % (time.monotonic() - t0, out)
    assert "ok: cleaned up" in out
    assert not fberth.sm.list_endpoints(NameContains=name)["Endpoints"]
