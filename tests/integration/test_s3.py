"""S3 everywhere through one object store: single-model and pipeline
ModelDataUrl, multi-model prefixes and SAGEMAKER_SUBMIT_DIRECTORY, all
fetched by berthd from a real S3-protocol server (moto's, on 127.0.0.1,
filled with boto3) with SigV4, cached by ETag, bounded, and failing with
SageMaker's errors.

moto runs in the Python found on PATH as python3 (the tests themselves run
under Debian's /usr/bin/python3, which lacks it); without moto the module
fails, it never skips."""
import os
import re
import shutil
import signal
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import berth_helpers as bh

BUCKET = "berth-s3-models"
OTHER = "berth-s3-unlisted"
MAX_BYTES = 1 << 20          # berthd --model-max-bytes for the shared instance
S3_KEY = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
MISSING = ("Container primary could not be started: Failed to download model data(bucket: %s, key: %s). Please "
           "ensure that there is an object located at the URL and that the role passed to CreateModel has "
           "permissions to download the model.")
SUBMIT_MOUNT = "/opt/ml/berth/submit"


uniq = bh.unique_name
tgz = bh.tgz


# ---- the S3 server -----------------------------------------------------------

def moto_python():
    """The first python3 on PATH that imports moto's server."""
    tried = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cand = os.path.join(d or ".", "python3")
        if not os.access(cand, os.X_OK) or cand in tried:
            continue
        tried.append(cand)
        r = subprocess.run([cand, "-c", "import moto.server"], capture_output=True, timeout=120)
        if r.returncode == 0:
            return cand
    raise AssertionError("test_s3 needs moto's S3 server: no python3 on PATH imports moto.server (tried %s). "
                         "Install it for that Python: python3 -m pip install 'moto[server]'" % (tried or "none"))


class Moto:
    """`python3 -m moto.server` on 127.0.0.1; its request log counts what
    berthd asked."""

    def __init__(self, tmpdir):
        self.port = bh.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(tmpdir, "moto.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([moto_python(), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.s3 = boto3.client("s3", endpoint_url=self.url, region_name=bh.REGION, aws_access_key_id=S3_KEY[0],
                               aws_secret_access_key=S3_KEY[1],
                               config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10))

        def up():
            assert self.proc.poll() is None, "moto server exited: %s" % self.log()
            try:
                self.s3.list_buckets()
                return True
            except Exception:
                return False
        bh.wait_until(up, 60, "moto server on %s" % self.url, interval=0.2)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def requests(self, method, bucket, key=""):
        """Answered requests METHOD /bucket/key in the server's log."""
        pat = re.compile(r'"%s /%s/%s HTTP/1\.1" (\d+)' % (method, re.escape(bucket), re.escape(key)))
        return [int(m.group(1)) for m in pat.finditer(self.log())]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = Moto(str(tmp_path_factory.mktemp("moto")))
    try:
        for b in (BUCKET, OTHER):
            m.s3.create_bucket(Bucket=b)
        yield m
    finally:
        m.stop()


def s3_env():
    """berthd's credentials for the store, from its environment only."""
    return {"AWS_ACCESS_KEY_ID": S3_KEY[0], "AWS_SECRET_ACCESS_KEY": S3_KEY[1],
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


@pytest.fixture(scope="module")
def berth(moto):
    yield from bh.serve(extra_berthd=["--s3-endpoint", moto.url, "--s3-bucket", BUCKET,
                                      "--model-max-bytes", str(MAX_BYTES)], env=s3_env())


# ---- helpers -------------------------------------------------------------------

def settled(inst, ep, timeout=90):
    def done():
        d = inst.sm.describe_endpoint(EndpointName=ep)
        return d if d["EndpointStatus"] in ("InService", "Failed") else None
    return bh.wait_until(done, timeout, "endpoint %s to settle" % ep, interval=0.2)


def invoke(inst, ep, body, **kw):
    r = inst.rt.invoke_endpoint(EndpointName=ep, Body=body, ContentType="text/plain", **kw)
    return r["Body"].read()


def cache_leftovers(inst):
    """What in STATE/artifacts is not a finished entry (16 hex digits)."""
    top = os.path.join(inst.state_dir, "artifacts")
    if not os.path.isdir(top):
        return []
    odd = [x for x in os.listdir(top)
           if x not in (".fetch", ".last", ".meta", ".lock") and not re.fullmatch(r"[0-9a-f]{16}", x)]
    for sub in (".last", ".meta"):
        d = os.path.join(top, sub)
        if os.path.isdir(d):
            odd += [sub + "/" + x for x in os.listdir(d) if not re.fullmatch(r"[0-9a-f]{16}", x)]
    fetch = os.path.join(top, ".fetch")
    if os.path.isdir(fetch):
        odd += [".fetch/" + x for x in os.listdir(fetch)]
    return odd


def cache_entries(inst):
    top = os.path.join(inst.state_dir, "artifacts")
    return sorted(x for x in os.listdir(top) if re.fullmatch(r"[0-9a-f]{16}", x)) if os.path.isdir(top) else []


def failed_stack(inst, name, primary):
    m, c, ep = bh.create_endpoint_stack(inst.sm, name, primary=primary, wait=False, inst=inst)
    d = settled(inst, ep)
    assert d["EndpointStatus"] == "Failed", d
    return (m, c, ep), d["FailureReason"]


def create_model_error(inst, name, primary):
    with pytest.raises(ClientError) as ei:
        inst.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer=primary)
    assert bh.error_code(ei.value) == "ValidationException", ei.value.response
    with pytest.raises(ClientError):
        inst.sm.describe_model(ModelName=name)
    return bh.error_message(ei.value)


# ---- what works ----------------------------------------------------------------

def test_single_model_from_s3_is_fetched_once_and_cached_by_etag(berth, moto):
    key = uniq("single") + "/model.tar.gz"
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=tgz({"model.txt": b"weights one\n"}))
    url = "s3://%s/%s" % (BUCKET, key)
    name = uniq("s3-single")
    m, c, ep = bh.create_endpoint_stack(berth.sm, name, inst=berth, primary=bh.container(
        env={"ECHO_MODE": "model"}, model_data_url=url))
    assert invoke(berth, ep, b"x") == b"weights one\n"
    assert moto.requests("GET", BUCKET, key) == [200]    # signed: moto refuses anonymous requests (403)
    assert berth.sm.describe_model(ModelName=m)["PrimaryContainer"]["ModelDataUrl"] == url
    # berthd restarts, the endpoint gets new containers: the version is asked, nothing downloaded again
    berth.restart_berthd()
    heads = len(moto.requests("HEAD", BUCKET, key))
    cfg2 = name + "-cfg2"
    berth.sm.create_endpoint_config(EndpointConfigName=cfg2, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": m, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    bh.wait_until(lambda: berth.sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == cfg2
                  and berth.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService",
                  90, "UpdateEndpoint to %s" % cfg2, interval=0.2)
    berth.note_containers()
    assert invoke(berth, ep, b"x") == b"weights one\n"
    assert len(moto.requests("HEAD", BUCKET, key)) > heads
    assert moto.requests("GET", BUCKET, key) == [200]
    # a new version (new ETag) of the same key is fetched into a new entry
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=tgz({"model.txt": b"weights two\n"}))
    before = cache_entries(berth)
    berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=c)
    bh.wait_until(lambda: berth.sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == c
                  and berth.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "InService",
                  90, "UpdateEndpoint back to %s" % c, interval=0.2)
    berth.note_containers()
    assert invoke(berth, ep, b"x") == b"weights two\n"
    assert moto.requests("GET", BUCKET, key) == [200, 200]
    assert len(set(cache_entries(berth)) - set(before)) == 1
    assert cache_leftovers(berth) == []
    bh.delete_stack(berth, m, c, ep)
    berth.sm.delete_endpoint_config(EndpointConfigName=cfg2)


def test_instances_starting_together_share_one_download(berth, moto):
    p = uniq("two")
    key = p + "/model.tar.gz"
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=tgz({"model.txt": b"shared\n"}))
    berth.sm.create_model(ModelName=p, ExecutionRoleArn=bh.ROLE, PrimaryContainer=bh.container(
        env={"ECHO_MODE": "model"}, model_data_url="s3://%s/%s" % (BUCKET, key)))
    berth.sm.create_endpoint_config(EndpointConfigName=p + "-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": p, "InitialInstanceCount": 3, "InstanceType": "ml.m5.large"}])
    berth.sm.create_endpoint(EndpointName=p + "-ep", EndpointConfigName=p + "-cfg")
    berth.wait_in_service(p + "-ep")
    assert len(berth.ps(p + "-ep")) == 3
    for _ in range(6):
        assert invoke(berth, p + "-ep", b"x") == b"shared\n"
    assert moto.requests("GET", BUCKET, key) == [200]
    bh.delete_stack(berth, p, p + "-cfg", p + "-ep")
    assert cache_leftovers(berth) == []


def test_pipeline_containers_each_fetch_their_model_data(berth, moto):
    p = uniq("pipe")
    # container a answers with its model file, which is container b's command: read b's model file
    moto.s3.put_object(Bucket=BUCKET, Key=p + "/a.tar.gz", Body=tgz({"cmd.txt": b"read /opt/ml/model/b.txt"}))
    moto.s3.put_object(Bucket=BUCKET, Key=p + "/b.tar.gz", Body=tgz({"b.txt": b"pipeline via s3\n"}))
    cs = [bh.container("a", env={"ECHO_MODE": "model", "ECHO_MODEL_FILE": "cmd.txt"},
                       model_data_url="s3://%s/%s/a.tar.gz" % (BUCKET, p)),
          bh.container("b", env={"ECHO_MODE": "file"}, model_data_url="s3://%s/%s/b.tar.gz" % (BUCKET, p))]
    m, c, ep = bh.create_endpoint_stack(berth.sm, p, containers=cs, mode="Serial", inst=berth)
    assert invoke(berth, ep, b"ignored") == b"pipeline via s3\n"
    assert moto.requests("GET", BUCKET, p + "/a.tar.gz") == [200]
    assert moto.requests("GET", BUCKET, p + "/b.tar.gz") == [200]
    bh.delete_stack(berth, m, c, ep)
    assert cache_leftovers(berth) == []


def test_multi_model_prefix_from_s3(berth, moto):
    p = uniq("mme")
    moto.s3.put_object(Bucket=BUCKET, Key=p + "/m1.tar.gz", Body=tgz({"model.txt": b"first"}))
    moto.s3.put_object(Bucket=BUCKET, Key=p + "/m2.tar.gz", Body=tgz({"model.txt": b"second"}))
    primary = {"Image": bh.echo_rootfs(), "Mode": "MultiModel", "ModelDataUrl": "s3://%s/%s/" % (BUCKET, p)}
    m, c, ep = bh.create_endpoint_stack(berth.sm, p, primary=primary, inst=berth)
    assert invoke(berth, ep, b"q", TargetModel="m1.tar.gz").endswith(b":first:q")
    assert invoke(berth, ep, b"r", TargetModel="m2.tar.gz").endswith(b":second:r")
    assert invoke(berth, ep, b"s", TargetModel="m1.tar.gz").endswith(b":first:s")
    assert moto.requests("GET", BUCKET, p + "/m1.tar.gz") == [200]
    with pytest.raises(ClientError) as ei:
        invoke(berth, ep, b"t", TargetModel="absent.tar.gz")
    assert bh.error_code(ei.value) == "ValidationError"
    assert bh.error_message(ei.value) == MISSING.split(": ", 1)[1] % (BUCKET, p + "/absent.tar.gz")
    assert invoke(berth, ep, b"u", TargetModel="m2.tar.gz").endswith(b":second:u")
    bh.delete_stack(berth, m, c, ep)


def test_submit_directory_is_fetched_mounted_read_only_and_rewritten(berth, moto):
    p = uniq("sourcedir")
    key = p + "/sourcedir.tar.gz"
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=tgz({"inference.py": b"def model_fn(d):\n    return d\n",
                                                         "lib/util.py": b"X = 1\n"}))
    url = "s3://%s/%s" % (BUCKET, key)
    env = {"ECHO_MODE": "file", "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": url}
    m, c, ep = bh.create_endpoint_stack(berth.sm, p, primary=bh.container(env=env), inst=berth)
    assert invoke(berth, ep, b"read %s/inference.py" % SUBMIT_MOUNT.encode()) == b"def model_fn(d):\n    return d\n"
    assert invoke(berth, ep, b"read %s/lib/util.py" % SUBMIT_MOUNT.encode()) == b"X = 1\n"
    environ = invoke(berth, ep, b"read /proc/1/environ").split(b"\0")
    assert b"SAGEMAKER_SUBMIT_DIRECTORY=" + SUBMIT_MOUNT.encode() in environ, environ
    assert b"SAGEMAKER_PROGRAM=inference.py" in environ
    st, _, body = bh.http_request(berth.port, "POST", "/endpoints/%s/invocations" % ep,
                                  body=b"write %s/inference.py pwned" % SUBMIT_MOUNT.encode(),
                                  headers={"Content-Type": "text/plain"})
    assert st == 424 and b"Read-only file system" in body, (st, body)
    # the model keeps what the caller gave
    got = berth.sm.describe_model(ModelName=m)["PrimaryContainer"]["Environment"]
    assert got["SAGEMAKER_SUBMIT_DIRECTORY"] == url
    assert moto.requests("GET", BUCKET, key) == [200]
    bh.delete_stack(berth, m, c, ep)
    assert cache_leftovers(berth) == []


def test_a_local_submit_directory_is_left_alone(berth):
    env = {"ECHO_MODE": "file", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    m, c, ep = bh.create_endpoint_stack(berth.sm, uniq("localsub"), primary=bh.container(env=env), inst=berth)
    environ = invoke(berth, ep, b"read /proc/1/environ").split(b"\0")
    assert b"SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code" in environ
    st, _, _ = bh.http_request(berth.port, "POST", "/endpoints/%s/invocations" % ep,
                               body=b"read %s/x" % SUBMIT_MOUNT.encode(), headers={"Content-Type": "text/plain"})
    assert st == 424   # nothing mounted there
    bh.delete_stack(berth, m, c, ep)


# ---- bad input -----------------------------------------------------------------

def test_missing_objects_fail_the_endpoint_with_sagemakers_reason(berth, moto):
    p = uniq("missing")
    st, reason = failed_stack(berth, p, bh.container(model_data_url="s3://%s/%s/model.tar.gz" % (BUCKET, p)))
    assert reason == MISSING % (BUCKET, p + "/model.tar.gz"), reason
    bh.delete_stack(berth, *st)
    st, reason = failed_stack(berth, p + "-sub", bh.container(
        env={"SAGEMAKER_SUBMIT_DIRECTORY": "s3://%s/%s/sourcedir.tar.gz" % (BUCKET, p)}))
    assert reason == ("Container primary could not be started: Environment SAGEMAKER_SUBMIT_DIRECTORY: Failed to "
                      "download the source directory(bucket: %s, key: %s/sourcedir.tar.gz). Please ensure that "
                      "there is an object located at the URL and that the role passed to CreateModel has "
                      "permissions to download the model." % (BUCKET, p)), reason
    bh.delete_stack(berth, *st)
    assert moto.requests("GET", BUCKET, p + "/model.tar.gz") == []
    assert cache_leftovers(berth) == []
    berth.assert_serving()


def test_an_unlisted_bucket_is_refused_without_a_request(berth, moto):
    key = uniq("forbidden") + "/model.tar.gz"
    moto.s3.put_object(Bucket=OTHER, Key=key, Body=tgz({"model.txt": b"secret"}))
    url = "s3://%s/%s" % (OTHER, key)
    refusal = ("Could not access model data at %s. berth reads s3:// model data only from the buckets in its "
               "s3_buckets setting (--s3-bucket): %s; bucket \"%s\" is not one of them. Use one of those buckets, "
               "or ask the operator to add this one." % (url, BUCKET, OTHER))
    msg = create_model_error(berth, uniq("forbid"), bh.container(model_data_url=url))
    assert msg == "Container 'primary': " + refusal, msg
    msg = create_model_error(berth, uniq("forbid-sub"), bh.container(env={"SAGEMAKER_SUBMIT_DIRECTORY": url}))
    assert msg == "Container 'primary': Environment SAGEMAKER_SUBMIT_DIRECTORY: " + refusal, msg
    msg = create_model_error(berth, uniq("forbid-mme"), {"Image": bh.echo_rootfs(), "Mode": "MultiModel",
                                                        "ModelDataUrl": "s3://%s/prefix/" % OTHER})
    assert msg.startswith("Container 'primary': Could not access model data at s3://%s/prefix/. " % OTHER), msg
    assert moto.requests("GET", OTHER, key) == [] and moto.requests("HEAD", OTHER, key) == []
    berth.assert_serving()


def test_an_object_over_the_size_bound_is_not_downloaded(berth, moto):
    p = uniq("big")
    key = p + "/model.tar.gz"
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(MAX_BYTES + 4096))
    url = "s3://%s/%s" % (BUCKET, key)
    st, reason = failed_stack(berth, p, bh.container(model_data_url=url))
    assert reason == ("Container primary could not be started: Failed to download model data from %s: %s is larger "
                      "than the limit of %d bytes (berthd's model_max_bytes)." % (url, url, MAX_BYTES)), reason
    assert moto.requests("GET", BUCKET, key) == []
    bh.delete_stack(berth, *st)
    # small to download, too big unpacked: the same bound, nothing half-unpacked kept
    bomb = p + "/bomb.tar.gz"
    moto.s3.put_object(Bucket=BUCKET, Key=bomb, Body=tgz({"zeros.bin": bytes(MAX_BYTES + 1)}))
    st, reason = failed_stack(berth, p + "-bomb", bh.container(model_data_url="s3://%s/%s" % (BUCKET, bomb)))
    assert reason.startswith("Container primary could not be started: Failed to extract model data from s3://%s/%s: "
                             % (BUCKET, bomb)), reason
    assert "unpacks to more than %d bytes" % MAX_BYTES in reason, reason
    bh.delete_stack(berth, *st)
    assert cache_leftovers(berth) == []
    berth.assert_serving()


def test_the_store_down_fails_clearly_and_nothing_else_changes(make_berth, moto):
    dead = bh.free_port()   # nothing listens there
    inst = make_berth(extra_berthd=["--s3-endpoint", "http://127.0.0.1:%d" % dead, "--s3-bucket", BUCKET],
                      env=s3_env())
    url = "s3://%s/any/model.tar.gz" % BUCKET
    st, reason = failed_stack(inst, uniq("down"), bh.container(model_data_url=url))
    assert reason.startswith("Container primary could not be started: Failed to download model data from %s: the "
                             "object store could not be reached (" % url), reason
    assert "127.0.0.1:%d" % dead in reason and reason.endswith("Please try again."), reason
    bh.delete_stack(inst, *st)
    assert cache_leftovers(inst) == [] and cache_entries(inst) == []
    # the same berthd still runs what needs no store
    m, c, ep = bh.create_endpoint_stack(inst.sm, uniq("down-ok"), primary=bh.container(), inst=inst)
    assert invoke(inst, ep, b"still serving") == b"still serving"
    bh.delete_stack(inst, m, c, ep)


def test_a_container_restarted_while_the_store_is_down_runs_its_cached_model(make_berth, tmp_path):
    own = Moto(str(tmp_path))
    try:
        own.s3.create_bucket(Bucket=BUCKET)
        key = uniq("restart") + "/model.tar.gz"
        own.s3.put_object(Bucket=BUCKET, Key=key, Body=tgz({"model.txt": b"still here\n"}))
        inst = make_berth(extra_berthd=["--s3-endpoint", own.url, "--s3-bucket", BUCKET], env=s3_env())
        url = "s3://%s/%s" % (BUCKET, key)
        m, c, ep = bh.create_endpoint_stack(inst.sm, uniq("restart"), inst=inst, primary=bh.container(
            env={"ECHO_MODE": "model"}, model_data_url=url))
        assert invoke(inst, ep, b"x") == b"still here\n"
    finally:
        own.stop()
    victim = inst.ps(ep)[0]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted():
        r = [x for x in inst.ps(ep) if x["id"] == victim["id"]]
        return r and r[0]["restarts"] >= 1 and r[0]["state"] == "running" and r[0]["health"] == "healthy"
    bh.wait_until(restarted, 60, "the killed container restarted with the store down")
    assert invoke(inst, ep, b"x") == b"still here\n"
    with open(inst.berthd_log, "rb") as f:
        assert ("using the copy of %s fetched before" % url) in f.read().decode(errors="replace")
    # what was never fetched still fails clearly
    other = "s3://%s/%s" % (BUCKET, uniq("never") + "/model.tar.gz")
    st, reason = failed_stack(inst, uniq("never"), bh.container(model_data_url=other))
    assert "could not be reached" in reason, reason
    bh.delete_stack(inst, *st)
    bh.delete_stack(inst, m, c, ep)
    assert cache_leftovers(inst) == []
