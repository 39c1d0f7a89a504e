"""Multi-model endpoints: the router's MultiModel path against the
real berthd, the echo container's model API (SAGEMAKER_MULTI_MODEL=true)
and the scikit-learn MME image.

Artifacts are tar.gz files the tests write under the object-store root
(s3://BUCKET/PREFIX/NAME.tar.gz → ROOT/BUCKET/PREFIX/NAME.tar.gz). The
echo container answers POST /models/N/invoke with "N:<model.txt>:" + body,
so each answer names the model that produced it.
"""
import concurrent.futures
import io
import json
import os
import re
import subprocess
import tarfile
import time

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

BUCKET = "mme-bucket"
MAX_MODELS = 50     # ECHO_MAX_MODELS of the big endpoint: eviction must happen
N_MODELS = 1000
MAX_MODEL_BYTES = 1 << 20  # berthd --mme-max-model-bytes for this module


def write_artifact(root, key, files, mode="w:gz"):
    """ROOT/BUCKET/KEY as a tarball of files {name: bytes} (TarInfo allowed as key)."""
    path = os.path.join(root, BUCKET, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with tarfile.open(tmp, mode) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    os.rename(tmp, path)
    return path


def mme_primary(prefix, env=None, image=None):
    e = {"SAGEMAKER_MULTI_MODEL": "true"}
    e.update(env or {})
    return {"Image": image or bh.echo_rootfs(), "Mode": "MultiModel",
            "ModelDataUrl": prefix, "Environment": e}


def invoke(inst, ep, target, body, content_type="text/plain"):
    kw = dict(EndpointName=ep, Body=body, ContentType=content_type)
    if target is not None:
        kw["TargetModel"] = target
    r = inst.rt.invoke_endpoint(**kw)
    return r["Body"].read()


def invoke_raw(inst, ep, target, body):
    h = {"Content-Type": "text/plain"}
    if target is not None:
        h["X-Amzn-SageMaker-Target-Model"] = target
    return bh.http_request(inst.port, "POST", "/endpoints/%s/invocations" % ep, body=body, headers=h, timeout=60)


def expect_error(inst, ep, target, code, status, pattern, body=b"x"):
    with pytest.raises(ClientError) as ei:
        invoke(inst, ep, target, body)
    e = ei.value
    assert bh.error_code(e) == code, (bh.error_code(e), bh.error_message(e))
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
    assert re.search(pattern, bh.error_message(e)), bh.error_message(e)
    return e


def container_get(inst, ep, path):
    """GET http://127.0.0.1:8080PATH inside the endpoint's container netns."""
    pid = inst.running_pid(ep)
    out = subprocess.run(["nsenter", "--net=/proc/%d/ns/net" % pid, "curl", "-s", "-m", "10",
                          "http://127.0.0.1:8080" + path], capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def echo_loads(inst, ep):
    return container_get(inst, ep, "/models?limit=1")["loads"]


def router_metric(inst, name, labels=""):
    st, _, body = bh.http_request(inst.port, "GET", "/metrics")
    assert st == 200
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), body.decode(), re.M)
    return float(m.group(1)) if m else None


@pytest.fixture(scope="module")
def mb():
    yield from bh.serve(extra_berthd=["--mme-max-model-bytes", str(MAX_MODEL_BYTES)])


@pytest.fixture(scope="module")
def echo_ep(mb):
    """One echo MME endpoint over s3://BUCKET/echo/ with 1,000 tiny models."""
    for i in range(N_MODELS):
        write_artifact(mb.object_root, "echo/model-%d.tar.gz" % i, {"model.txt": b"m-%d\n" % i})
    _, _, ep = bh.create_endpoint_stack(
        mb.sm, "mme-echo", primary=mme_primary("s3://%s/echo/" % BUCKET, {"ECHO_MAX_MODELS": str(MAX_MODELS)}),
        inst=mb)
    return ep


def check_answer(answer, i, body):
    name, _, rest = answer.partition(b":")
    assert name and rest == b"m-%d:%s" % (i, body), answer


def test_thousand_models_with_eviction(mb, echo_ep):
    def one(i):
        body = b"b%d" % i
        check_answer(invoke(mb, echo_ep, "model-%d.tar.gz" % i, body), i, body)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(N_MODELS)))
    # the container holds at most MAX_MODELS: berthd evicted the rest
    listed = container_get(mb, echo_ep, "/models?limit=1000")
    assert len(listed["models"]) <= MAX_MODELS, listed["count"]
    assert listed["loads"] >= N_MODELS
    # early models were evicted; they load again transparently
    for i in list(range(0, 20)) + [333, 500]:
        body = b"again%d" % i
        check_answer(invoke(mb, echo_ep, "model-%d.tar.gz" % i, body), i, body)
    # warm calls stay warm
    for _ in range(3):
        check_answer(invoke(mb, echo_ep, "model-500.tar.gz", b"w"), 500, b"w")
    loaded = router_metric(mb, "berth_router_mme_models_loaded", '{endpoint="%s"}' % echo_ep)
    assert loaded is not None and 0 < loaded <= N_MODELS
    assert router_metric(mb, "berth_router_mme_loads_total") >= N_MODELS
    assert router_metric(mb, "berth_router_mme_cache_hits_total") >= 3
    st, _, body = bh.http_request(mb.port, "GET", "/metrics")
    per_model = re.findall(r'^berth_router_mme_model_invocations_total\{endpoint="%s",model="([^"]*)"\}' % echo_ep,
                           body.decode(), re.M)
    assert "other" in per_model and len(per_model) <= 21, per_model  # bounded cardinality


def test_server_timing_shows_the_load_on_first_call_only(mb, echo_ep):
    write_artifact(mb.object_root, "echo/timing.tar.gz", {"model.txt": b"t"})
    st, h, body = invoke_raw(mb, echo_ep, "timing.tar.gz", b"x")
    assert st == 200 and body.endswith(b":t:x"), (st, body)
    assert re.search(r"(^|, )load;dur=", h["server-timing"]), h["server-timing"]
    st, h, body = invoke_raw(mb, echo_ep, "timing.tar.gz", b"x")
    assert st == 200 and "load;" not in h["server-timing"], h["server-timing"]


def test_multimodel_invocation_over_http2(mb, echo_ep, tmp_path):
    """The same MultiModel path over HTTP/2 (curl, prior knowledge)."""
    write_artifact(mb.object_root, "echo/h2.tar.gz", {"model.txt": b"over-h2"})
    body = tmp_path / "body"
    body.write_bytes(b"h2body")
    signed = bh.sign_headers(mb.port, "POST", "/endpoints/%s/invocations" % echo_ep, body=b"h2body",
                             headers={"X-Amzn-SageMaker-Target-Model": "h2.tar.gz", "Content-Type": "text/plain"})
    r = subprocess.run(["curl", "-s", "--http2-prior-knowledge"] + bh.header_args(signed)
                       + ["--data-binary", "@%s" % body, "%s/endpoints/%s/invocations" % (mb.url, echo_ep)],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.endswith(b":over-h2:h2body"), (r.returncode, r.stdout, r.stderr)


def test_concurrent_first_calls_single_flight(mb):
    """50 concurrent first calls: one fetch (berthd logs each) and one POST /models."""
    write_artifact(mb.object_root, "sf/one.tar.gz", {"model.txt": b"single"})
    _, _, ep = bh.create_endpoint_stack(mb.sm, "mme-sf", primary=mme_primary("s3://%s/sf/" % BUCKET), inst=mb)
    before = echo_loads(mb, ep)

    def one(k):
        return invoke_raw(mb, ep, "one.tar.gz", b"c%d" % k)
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    for k, (st, _, body) in enumerate(results):
        assert st == 200 and body.endswith(b":single:c%d" % k), (st, body)
    assert echo_loads(mb, ep) - before == 1  # exactly one POST /models
    fetches = re.findall(r"mme %s: fetching one\.tar\.gz " % re.escape(ep), dict(mb.log_text())["berthd"])
    assert len(fetches) == 1, fetches


def test_model_added_later_is_servable(mb, echo_ep):
    expect_error(mb, echo_ep, "later.tar.gz", "ValidationError", 400, r"Failed to download model data")
    write_artifact(mb.object_root, "echo/later.tar.gz", {"weights.bin": b"late"})  # first file, no model.txt
    assert invoke(mb, echo_ep, "later.tar.gz", b"q").endswith(b":late:q")


def test_target_model_required_and_refused_elsewhere(mb, echo_ep):
    expect_error(mb, echo_ep, None, "ValidationError", 400, r"multi-model endpoint.*X-Amzn-SageMaker-Target-Model")
    _, _, single = bh.create_endpoint_stack(mb.sm, "mme-single", primary=bh.container(), inst=mb)
    expect_error(mb, single, "model-1.tar.gz", "ValidationError", 400, r"is not a multi-model endpoint")
    assert invoke(mb, single, None, b"plain") == b"plain"


def test_missing_artifact_is_a_validation_error(mb, echo_ep):
    expect_error(mb, echo_ep, "nope/absent.tar.gz", "ValidationError", 400,
                 r"^Failed to download model data\(bucket: %s, key: echo/nope/absent.tar.gz\)\. Please ensure" % BUCKET)


def test_corrupt_or_truncated_artifact_is_a_validation_error(mb, echo_ep):
    path = os.path.join(mb.object_root, BUCKET, "echo/corrupt.tar.gz")
    with open(path, "wb") as f:
        f.write(b"this is not gzip at all\n" * 10)
    expect_error(mb, echo_ep, "corrupt.tar.gz", "ValidationError", 400, r"Failed to extract model data")
    write_artifact(mb.object_root, "echo/plain.tar.gz", {"model.txt": b"p"})
    data = open(os.path.join(mb.object_root, BUCKET, "echo/plain.tar.gz"), "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])  # truncated gzip
    expect_error(mb, echo_ep, "corrupt.tar.gz", "ValidationError", 400, r"Failed to extract model data")


@pytest.mark.parametrize("member", ["../escape.txt", "/abs-escape.txt", "a/../../escape2.txt"])
def test_path_escape_artifact(mb, echo_ep, member):
    key = "echo/esc-%d.tar.gz" % abs(hash(member))
    write_artifact(mb.object_root, key, {"model.txt": b"ok", member: b"pwned"})
    expect_error(mb, echo_ep, os.path.basename(key), "ValidationError", 400, r"Failed to extract model data")
    for base in (mb.state_dir, "/"):
        for name in ("escape.txt", "abs-escape.txt", "escape2.txt"):
            assert not os.path.exists(os.path.join(base, name))
    assert not any("pwned" in open(os.path.join(d, f), errors="replace").read()
                   for d, _, fs in os.walk(os.path.join(mb.state_dir, "mme")) for f in fs if f.endswith("escape.txt"))


def test_artifact_entry_name_not_utf8(mb, echo_ep):
    """A refused archive entry whose name is not UTF-8 (bytes FF FE): the
    400 names it with U+FFFD in a valid JSON body (berthd's reply to the
    router used to break on it), and the endpoint keeps serving."""
    key = "echo/not-utf8.tar.gz"
    path = os.path.join(mb.object_root, BUCKET, key)
    with tarfile.open(path + ".tmp", "w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as t:
        for name, data in (("model.txt", b"ok"), ("\udcff\udcfe/../evil.txt", b"pwned")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    os.rename(path + ".tmp", path)
    pattern = (r"^Failed to extract model data from s3://%s/echo/not-utf8\.tar\.gz \(TargetModel not-utf8\.tar\.gz\): "
               r"\S+/not-utf8\.tar\.gz: entry \"\ufffd\ufffd/\.\./evil\.txt\" points outside the archive root; "
               r"refusing to unpack it$" % BUCKET)
    e = expect_error(mb, echo_ep, "not-utf8.tar.gz", "ValidationError", 400, pattern)
    st, hdrs, body = invoke_raw(mb, echo_ep, "not-utf8.tar.gz", b"x")
    assert st == 400 and hdrs["x-amzn-errortype"] == "ValidationError:", (st, hdrs)
    assert json.loads(body.decode("utf-8")) == {"message": bh.error_message(e)}
    assert not os.path.exists(os.path.join(mb.state_dir, "mme", "evil.txt"))
    check_answer(invoke(mb, echo_ep, "model-7.tar.gz", b"hi"), 7, b"hi")


def test_artifact_over_size_limit(mb, echo_ep):
    write_artifact(mb.object_root, "echo/huge.tar.gz", {"model.txt": os.urandom(MAX_MODEL_BYTES + 4096)})
    expect_error(mb, echo_ep, "huge.tar.gz", "ValidationError", 400, r"Failed to (download|extract) model data")


@pytest.mark.parametrize("target,pattern", [
    ("/..", r"absolute path"),
    ("..", r"must not contain"),
    ("a/../model-1.tar.gz", r"must not contain"),
    ("x" * 2000, r"length less than or equal to 1024"),
])
def test_bad_target_names(mb, echo_ep, target, pattern):
    expect_error(mb, echo_ep, target, "ValidationError", 400, pattern)


def test_container_refusing_a_load_is_a_model_error_every_time(mb):
    write_artifact(mb.object_root, "fail/m.tar.gz", {"model.txt": b"f"})
    _, _, ep = bh.create_endpoint_stack(mb.sm, "mme-fail",
                                        primary=mme_primary("s3://%s/fail/" % BUCKET, {"ECHO_LOAD_FAIL": "1"}),
                                        inst=mb)
    e = expect_error(mb, ep, "m.tar.gz", "ModelError", 424, r"500")
    body = e.response.get("OriginalStatusCode") or e.response["Error"].get("OriginalStatusCode")
    assert str(body) == "500", e.response
    # nothing stuck: the next call tries again (and fails the same way)
    expect_error(mb, ep, "m.tar.gz", "ModelError", 424, r"500")


def test_unreachable_store_and_slow_load(make_berth):
    """--model-wait-ms below the container's load time: 429
    ModelNotReadyException, the load goes on and a later call succeeds; an
    object store that cannot be reached: the error says so."""
    port = bh.free_port()  # nothing listens there
    inst = make_berth(extra_router=["--model-wait-ms", "800"],
                      extra_berthd=["--s3-endpoint", "http://127.0.0.1:%d" % port, "--s3-bucket", BUCKET])
    # slow loads: file:// prefix (not through the unreachable S3 endpoint)
    slow_dir = os.path.join(inst.object_root, "slow")
    os.makedirs(slow_dir)
    with tarfile.open(os.path.join(slow_dir, "s.tar.gz"), "w:gz") as t:
        info = tarfile.TarInfo("model.txt")
        info.size = 4
        t.addfile(info, io.BytesIO(b"slow"))
    _, _, slow = bh.create_endpoint_stack(inst.sm, "mme-slow",
                                          primary=mme_primary("file://%s/" % slow_dir, {"ECHO_LOAD_DELAY_MS": "2500"}),
                                          inst=inst)
    e = expect_error(inst, slow, "s.tar.gz", "ModelNotReadyException", 429, r"not ready")
    assert "s.tar.gz" in bh.error_message(e)
    bh.wait_until(lambda: invoke_raw(inst, slow, "s.tar.gz", b"z")[0] == 200, 30, "the slow model loaded")
    assert invoke(inst, slow, "s.tar.gz", b"z").endswith(b":slow:z")
    # the object store cannot be reached
    _, _, ep = bh.create_endpoint_stack(inst.sm, "mme-unreach", primary=mme_primary("s3://%s/x/" % BUCKET), inst=inst)
    expect_error(inst, ep, "m.tar.gz", "ServiceUnavailable", 503, r"object store could not be reached")


# ---- scikit-learn MME image ---------------------------------------------------

def sklearn_mme_dir():
    """The image (built by make framework-images; built here when missing)."""
    link = os.path.join(bh.build_dir(), "images", "sklearn-mme")
    if not os.path.isfile(os.path.join(link, "image.env")):
        repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        r = subprocess.run([os.path.join(repo, "examples", "lib", "build-oci-image.sh"),
                            os.path.join(repo, "examples", "sklearn-mme"), link],
                           stdout=subprocess.PIPE, timeout=1800)
        assert r.returncode == 0, "building the sklearn-mme image failed (see stderr above)"
    return os.path.realpath(link)


def test_sklearn_mme_ten_models(mb):
    """Ten scikit-learn models trained on different data behind one
    endpoint: each answers its own predictions (computed at build time)."""
    d = sklearn_mme_dir()
    expected = json.load(open(os.path.join(d, "samples", "expected.json")))
    for name in expected["models"]:
        with open(os.path.join(d, "samples", "artifacts", name), "rb") as fi:
            data = fi.read()
        dst = os.path.join(mb.object_root, BUCKET, "sk", name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as fo:
            fo.write(data)
    primary = {"Image": "oci:%s/oci:latest" % d, "Mode": "MultiModel", "ModelDataUrl": "s3://%s/sk/" % BUCKET}
    bh.create_endpoint_stack(mb.sm, "mme-sklearn", primary=primary, wait=False)
    ep = "mme-sklearn-ep"
    mb.sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    mb.note_containers()
    body = expected["input_csv"].encode()
    for name, want in expected["models"].items():
        got = [float(x) for x in invoke(mb, ep, name, body, content_type="text/csv").decode().split()]
        assert len(got) == len(want), (name, got, want)
        for g, w in zip(got, want):
            assert abs(g - w) <= 1e-6 * max(1.0, abs(w)), (name, got, want)
    # JSON answers too, and the models differ: ten models, not one
    r = mb.rt.invoke_endpoint(EndpointName=ep, TargetModel="model-3.tar.gz", Body=body, ContentType="text/csv",
                              Accept="application/json")
    assert len(json.loads(r["Body"].read())["predictions"]) == len(expected["models"]["model-3.tar.gz"])
    assert len({json.dumps(v) for v in expected["models"].values()}) == len(expected["models"])


def test_sklearn_mme_walkthrough(mb):
    d = sklearn_mme_dir()
    r = subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                                                         "sklearn-mme", "walkthrough.py"),
                        "--endpoint-url", mb.url, "--image-dir", d, "--object-store-root", mb.object_root],
                       capture_output=True, timeout=140, env=mb.client_env())
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0 and "ok: cleaned up" in out, out
    assert "added after the endpoint was created" in out, out
