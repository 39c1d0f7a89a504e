"""Images by registry reference (docs/contract.md §5): a real registry,
Debian's docker-registry on 127.0.0.1 with htpasswd auth and TLS (a CA made
here with openssl), filled with skopeo from an OCI layout of the echo image;
berthd pulls with skopeo into its cache, resolves tags at CreateEndpoint and
reports ResolvedImage; an ECR-style name reaches it through a mirror; every
bad input fails the endpoint (or the call) with the registry's own words,
leaves nothing in the cache and berth keeps serving."""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import berth_helpers as bh
from registry_helpers import (PASSWORD, S, USER, HangingRegistry, Registry, TokenRegistry, file_layer,
                              make_index_layout, make_layout, skopeo_pids)

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def registry():
    reg = Registry()
    try:
        work = tempfile.mkdtemp(prefix="berth-layouts-", dir="/var/tmp")
        with open(bh.echo_tarball(), "rb") as fh:
            echo_gz = fh.read()
        make_layout(work + "/echo", echo_gz)
        reg.push(work + "/echo", "v1", "echo:v1")
        reg.push(work + "/echo", "v1", "ecr/echo:v1")
        make_layout(work + "/arm", echo_gz, arch="arm64")
        reg.push(work + "/arm", "v1", "arm:v1")
        make_index_layout(work + "/multi", echo_gz, ["arm64", "amd64", "s390x"])
        reg.push(work + "/multi", "v1", "multi:v1", all_images=True)
        make_index_layout(work + "/armlist", echo_gz, ["arm64", "ppc64le"])
        reg.push(work + "/armlist", "v1", "armlist:v1", all_images=True)
        reg.big_layer = os.urandom(3 << 20)
        make_layout(work + "/big", file_layer("big", reg.big_layer))
        reg.push(work + "/big", "v1", "big:v1")
        reg.corrupt_layer = make_layout(work + "/corrupt", file_layer("only-here", ("corrupt %s" % S).encode() * 1000))
        reg.push(work + "/corrupt", "v1", "corrupt:v1")
        shutil.rmtree(work)
        yield reg
    finally:
        reg.stop()


def registries_file(reg, d, **extra):
    conf = {
        "hosts": {
            reg.host: {"username": USER, "password": PASSWORD, "cert_dir": reg.certs},
            "localhost:%d" % reg.port: {"username": USER, "password": "not-the-password", "cert_dir": reg.certs},
            "127.0.0.1:%d" % reg.down_port: {"cert_dir": reg.certs},
        },
        "mirrors": {"*.dkr.ecr.*.amazonaws.com": reg.host + "/ecr"},
        "pull_timeout_ms": 60000,
    }
    conf.update(extra)
    path = os.path.join(d, "registries-%s.json" % S)
    with open(path, "w") as fh:
        json.dump(conf, fh)
    return path


@pytest.fixture(scope="module")
def berth(registry):
    d = tempfile.mkdtemp(prefix="berth-regconf-", dir="/var/tmp")
    try:
        yield from bh.serve(extra_berthd=["--registries", registries_file(registry, d)])
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- helpers ------------------------------------------------------------------

def berthd_log(inst):
    return dict(inst.log_text())["berthd"]


def cache(inst):
    p = os.path.join(inst.state_dir, "registry")
    return sorted(n for n in os.listdir(p) if n.startswith("sha256-")) if os.path.isdir(p) else []


def wait_settled(inst, ep, timeout=90):
    def settled():
        dd = inst.sm.describe_endpoint(EndpointName=ep)
        return dd if dd["EndpointStatus"] in ("InService", "Failed") else None
    return bh.wait_until(settled, timeout, "endpoint %s to settle" % ep, interval=0.2)


def stack(inst, name, image):
    return bh.create_endpoint_stack(inst.sm, name, primary=bh.container(image=image), wait=False)


def invoke(inst, ep, body):
    r = inst.rt.invoke_endpoint(EndpointName=ep, Body=body, ContentType="text/plain")
    return r["Body"].read()


def assert_fails(inst, name, image, want):
    """The endpoint fails with want in its FailureReason; the cache gains
    nothing (no image, no partial pull, no lock); berth keeps serving."""
    before = cache(inst)
    m, c, ep = stack(inst, name, image)
    dd = wait_settled(inst, ep)
    assert dd["EndpointStatus"] == "Failed", dd
    assert want in dd.get("FailureReason", ""), (want, dd.get("FailureReason"))
    leftovers = [n for n in os.listdir(os.path.join(inst.state_dir, "registry"))
                 if n.endswith(".partial") or n.endswith(".lock")]
    assert cache(inst) == before and not leftovers, (cache(inst), leftovers)
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)
    inst.assert_serving()
    return dd["FailureReason"]


# ---- what works ---------------------------------------------------------------

def test_pull_serve_and_resolved_image(berth, registry):
    digest = registry.digest("echo:v1")
    image = registry.host + "/echo:v1"
    m, c, ep = stack(berth, "reg-ok-" + S, image)
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    assert invoke(berth, ep, b"hello from a registry") == b"hello from a registry"
    (deployed,) = dd["ProductionVariants"][0]["DeployedImages"]
    assert deployed["SpecifiedImage"] == image
    assert deployed["ResolvedImage"] == "%s/echo@%s" % (registry.host, digest)
    assert abs(deployed["ResolutionTime"].timestamp() - time.time()) < 120
    assert cache(berth) == ["sha256-" + digest.split(":")[1]]
    log = berthd_log(berth)
    assert "pull %s: " % image in log and "Copying blob" in log, berth.log_tail(40)
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_ecr_name_through_mirror_uses_the_cache(berth, registry):
    """The same manifest under ecr/echo: the ECR name resolves through the
    mirror to the digest already cached, so nothing is pulled again."""
    digest = registry.digest("ecr/echo:v1")
    image = ECR + "/echo:v1"
    pulls_before = berthd_log(berth).count("pull %s: done" % image)
    m, c, ep = stack(berth, "reg-ecr-" + S, image)
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    assert invoke(berth, ep, b"via ecr") == b"via ecr"
    (deployed,) = dd["ProductionVariants"][0]["DeployedImages"]
    assert deployed["ResolvedImage"] == "%s/echo@%s" % (ECR, digest)
    assert berthd_log(berth).count("pull %s: done" % image) == pulls_before
    assert "sha256-" + digest.split(":")[1] in cache(berth)
    # the pinned form runs from the cache as well
    m2, c2, ep2 = stack(berth, "reg-pin-" + S, "%s/echo@%s" % (ECR, digest))
    assert wait_settled(berth, ep2)["EndpointStatus"] == "InService"
    berth.note_containers()
    bh.delete_stack(berth, m2, c2, ep2)
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


def test_manifest_list_runs_this_platform(berth, registry):
    """A multi-arch image (an image index): berthd pulls its linux/amd64
    entry; ResolvedImage names the list's digest, as Docker's does."""
    digest = registry.digest("multi:v1")
    image = registry.host + "/multi:v1"
    m, c, ep = stack(berth, "reg-multi-" + S, image)
    dd = wait_settled(berth, ep)
    assert dd["EndpointStatus"] == "InService", dd
    berth.note_containers()
    assert invoke(berth, ep, b"multi") == b"multi"
    (deployed,) = dd["ProductionVariants"][0]["DeployedImages"]
    assert deployed["ResolvedImage"] == "%s/multi@%s" % (registry.host, digest)
    bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)


class MovingTag:
    """REPO:v1 in the registry, pushed from a layout of the echo image;
    move() pushes an index of the same image under the same tag, so the
    tag's digest changes and the containers still run."""

    def __init__(self, registry, repo):
        self.registry, self.repo = registry, repo
        self.work = tempfile.mkdtemp(prefix="berth-layouts-", dir="/var/tmp")
        with open(bh.echo_tarball(), "rb") as fh:
            echo_gz = fh.read()
        make_layout(self.work + "/a", echo_gz)
        make_index_layout(self.work + "/b", echo_gz, ["amd64"])
        registry.push(self.work + "/a", "v1", repo + ":v1")
        self.first = registry.digest(repo + ":v1")
        self.second = None
        self.image = "%s/%s:v1" % (registry.host, repo)

    def move(self):
        self.registry.push(self.work + "/b", "v1", self.repo + ":v1", all_images=True)
        self.second = self.registry.digest(self.repo + ":v1")
        assert self.second != self.first

    def back(self):
        """The tag to the first image again."""
        self.registry.push(self.work + "/a", "v1", self.repo + ":v1")
        assert self.registry.digest(self.repo + ":v1") == self.first

    def pinned(self, digest):
        return "%s/%s@%s" % (self.registry.host, self.repo, digest)

    def close(self):
        shutil.rmtree(self.work, ignore_errors=True)


def restart_runs(inst, ep):
    """kill -9 of ep's container; returns the image its restart started from."""
    def starts():
        return [ln for ln in berthd_log(inst).splitlines()
                if "endpoint %s: container primary (" % ep in ln and " started from " in ln]
    n = len(starts())
    os.kill(inst.running_pid(ep), signal.SIGKILL)
    bh.wait_until(lambda: len(starts()) == n + 1, 30, "the container's restart")
    return starts()[-1].rsplit(" started from ", 1)[1]


def resolved_image(inst, ep):
    return inst.sm.describe_endpoint(EndpointName=ep)["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"]


def test_tag_moved_each_endpoint_keeps_its_digest(berth, registry):
    """SageMaker resolves a tag at CreateEndpoint: an endpoint created
    before the tag moved keeps showing, and restarting from, the digest it
    got; one created after gets the new one."""
    tag = MovingTag(registry, "mov")
    try:
        m1, c1, ep1 = stack(berth, "reg-mov1-" + S, tag.image)
        assert wait_settled(berth, ep1)["EndpointStatus"] == "InService"
        berth.note_containers()
        tag.move()
        m2, c2, ep2 = stack(berth, "reg-mov2-" + S, tag.image)
        assert wait_settled(berth, ep2)["EndpointStatus"] == "InService"
        berth.note_containers()
        assert {ep: resolved_image(berth, ep) for ep in (ep1, ep2)} == {ep1: tag.pinned(tag.first),
                                                                        ep2: tag.pinned(tag.second)}
        # a restarted container of the first endpoint runs the first digest
        assert restart_runs(berth, ep1) == tag.pinned(tag.first)

        def serves_again():
            try:
                return invoke(berth, ep1, b"still") == b"still"
            except bh.ClientError:
                return False  # ServiceUnavailable until its /ping answers
        bh.wait_until(serves_again, 30, "the restarted container to serve")
        # UpdateEndpoint resolves the new config's tag anew, as a create does
        berth.sm.update_endpoint(EndpointName=ep1, EndpointConfigName=c2)
        bh.wait_until(lambda: berth.sm.describe_endpoint(EndpointName=ep1)["EndpointStatus"] == "InService"
                      and berth.sm.describe_endpoint(EndpointName=ep1)["EndpointConfigName"] == c2, 60,
                      "the update")
        berth.note_containers()
        assert resolved_image(berth, ep1) == tag.pinned(tag.second)
        assert invoke(berth, ep1, b"updated") == b"updated"
        bh.delete_stack(berth, m1, c1, ep1)
        bh.delete_stack(berth, m2, c2, ep2)
        assert not os.path.exists(os.path.join(berth.state_dir, "registry", "pins", ep1))
        bh.assert_no_leaks(berth)
    finally:
        tag.close()


def test_failed_update_keeps_the_running_digest(berth, registry):
    """An UpdateEndpoint resolves its tags anew; when it fails and is rolled
    back, the endpoint still shows, and restarts from, the digest its
    running containers have, not what the tag meant for the update."""
    tag = MovingTag(registry, "rollback")
    try:
        m1, c1, ep = stack(berth, "reg-rb1-" + S, tag.image)
        assert wait_settled(berth, ep)["EndpointStatus"] == "InService"
        berth.note_containers()
        tag.move()
        # the same tag in a model whose container exits at start: the update fails
        m2, c2 = "reg-rb2-" + S, "reg-rb2-" + S + "-cfg"
        berth.sm.create_model(ModelName=m2, ExecutionRoleArn=bh.ROLE,
                              PrimaryContainer=bh.container(image=tag.image, env={"ECHO_EXIT_AT_START": "1"}))
        berth.sm.create_endpoint_config(EndpointConfigName=c2, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": m2, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        berth.sm.update_endpoint(EndpointName=ep, EndpointConfigName=c2)

        def rolled_back():
            dd = berth.sm.describe_endpoint(EndpointName=ep)
            return dd if dd["EndpointStatus"] == "InService" and "rolled back" in dd.get("FailureReason", "") else None
        dd = bh.wait_until(rolled_back, 120, "the update to fail and roll back", interval=0.2)
        berth.note_containers()
        assert dd["EndpointConfigName"] == c1, dd
        assert resolved_image(berth, ep) == tag.pinned(tag.first)
        # a restart of the running container keeps the first digest
        assert restart_runs(berth, ep) == tag.pinned(tag.first)
        bh.delete_stack(berth, m1, c1, ep)
        bh.delete_stack(berth, m2, c2, None)
        bh.assert_no_leaks(berth)
    finally:
        tag.close()


def fast_resolutions(inst, image):
    """berthd's log lines for tags it resolved with its own request."""
    return [ln for ln in berthd_log(inst).splitlines()
            if ("image %s is sha256:" % image) in ln and "(cached; the registry answered in " in ln]


def test_warm_tag_is_resolved_by_berthd_itself(berth, registry):
    """A tag whose digest is cached: CreateEndpoint asks the registry with
    one HEAD of berthd's own, not with skopeo; for a manifest list the
    pinned digest is still the list's, as skopeo's was."""
    for name in ("echo:v1", "multi:v1"):
        image = registry.host + "/" + name
        digest = registry.digest(name)
        p = berth.cli("pull", image, timeout=90)  # cached from here on
        assert p.returncode == 0, p.stderr
        before = len(fast_resolutions(berth, image))
        m, c, ep = stack(berth, "reg-warm-%s-%s" % (name.split(":")[0], S), image)
        dd = wait_settled(berth, ep)
        assert dd["EndpointStatus"] == "InService", dd
        berth.note_containers()
        (deployed,) = dd["ProductionVariants"][0]["DeployedImages"]
        assert deployed["ResolvedImage"] == "%s/%s@%s" % (registry.host, name.split(":")[0], digest), deployed
        lines = fast_resolutions(berth, image)
        assert len(lines) == before + 1 and digest in lines[-1], berth.log_tail(40)
        assert invoke(berth, ep, b"warm") == b"warm"
        bh.delete_stack(berth, m, c, ep)
    bh.assert_no_leaks(berth)
    berth.assert_serving()


def test_auth_file_credentials(make_berth, registry, tmp_path):
    """Credentials from an auth.json "auth" entry: skopeo's pull and
    berthd's own tag request both log in with them."""
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {registry.host: {
        "auth": base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()}}}))
    conf = tmp_path / "registries-auth.json"
    conf.write_text(json.dumps({"hosts": {registry.host: {"auth_file": str(auth), "cert_dir": registry.certs}},
                                "pull_timeout_ms": 60000}))
    inst = make_berth(extra_berthd=["--registries", str(conf)])
    image = registry.host + "/echo:v1"
    digest = registry.digest("echo:v1")
    for i in range(2):
        m, c, ep = stack(inst, "reg-auth%d-%s" % (i, S), image)
        dd = wait_settled(inst, ep)
        assert dd["EndpointStatus"] == "InService", dd
        inst.note_containers()
        assert dd["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"] == "%s/echo@%s" % (
            registry.host, digest)
        bh.delete_stack(inst, m, c, ep)
    # the first pulled; the second found the digest cached with its own request
    assert len(fast_resolutions(inst, image)) == 1, inst.log_tail(40)
    bh.assert_no_leaks(inst)
    inst.assert_serving()


def test_bearer_token_flow(make_berth, registry, tmp_path):
    """A registry with the Bearer token flow (as Docker Hub's): berthd's own
    request asks the WWW-Authenticate realm for a token with the configured
    credentials, service and scope, keeps it for its expires_in, and
    resolves the tag to the cached digest the registry names."""
    digest = registry.digest("echo:v1")
    tr = TokenRegistry(registry.dir, digest)
    try:
        conf = tmp_path / "registries-bearer.json"
        creds = {"username": USER, "password": PASSWORD, "cert_dir": registry.certs}
        conf.write_text(json.dumps({"hosts": {registry.host: creds, tr.host: creds}, "pull_timeout_ms": 60000}))
        inst = make_berth(extra_berthd=["--registries", str(conf)])
        p = inst.cli("pull", registry.host + "/echo:v1", timeout=90)  # the digest is cached from here on
        assert p.returncode == 0, p.stderr
        image = tr.host + "/echo:v1"
        for _ in range(2):
            p = inst.cli("pull", image, timeout=90)
            assert p.returncode == 0, p.stderr
            assert p.stdout.decode().startswith("%s is %s/echo@%s (" % (image, tr.host, digest)), p.stdout
        tokens = [r for r in tr.requests if r[1].startswith("/token?")]
        assert len(tokens) == 1, tr.requests  # the second resolution kept the token
        assert "service=berth-test" in tokens[0][1] and "scope=repository%3Aecho%3Apull" in tokens[0][1], tokens
        heads = [r for r in tr.requests if r[0] == "HEAD"]
        assert [h[2].split(" ")[0] for h in heads] == ["Basic", "Bearer", "Bearer"], tr.requests
        assert all(h[2] == "Bearer " + tr.token for h in heads[1:]), tr.requests
        assert len(fast_resolutions(inst, image)) == 2, inst.log_tail(40)
        bh.assert_no_leaks(inst)
        inst.assert_serving()
    finally:
        tr.stop()


def test_bearer_token_kept_across_create_endpoints_and_replaced_when_refused(make_berth, registry, tmp_path):
    """CreateEndpoint asks the registry what the tag means every time, with
    the token it got before (no new token while it lasts); when the
    registry refuses that token (revoked), berthd asks the realm for a new
    one once and the CreateEndpoint still succeeds with its own request."""
    digest = registry.digest("echo:v1")
    tr = TokenRegistry(registry.dir, digest)
    try:
        conf = tmp_path / "registries-bearer-ce.json"
        creds = {"username": USER, "password": PASSWORD, "cert_dir": registry.certs}
        # this front makes a TLS handshake (in Python) per request: on a
        # busy host three of them may take more than the default 2 s
        conf.write_text(json.dumps({"hosts": {registry.host: creds, tr.host: creds}, "pull_timeout_ms": 60000,
                                    "resolve_timeout_ms": 20000}))
        inst = make_berth(extra_berthd=["--registries", str(conf)])
        p = inst.cli("pull", registry.host + "/echo:v1", timeout=90)  # the digest is cached from here on
        assert p.returncode == 0, p.stderr
        image = tr.host + "/echo:v1"
        first_token = tr.token

        def create(i):
            m, c, ep = stack(inst, "reg-tok%d-%s" % (i, S), image)
            dd = wait_settled(inst, ep)
            assert dd["EndpointStatus"] == "InService", dd
            inst.note_containers()
            assert dd["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"] == "%s/echo@%s" % (
                tr.host, digest), dd
            assert invoke(inst, ep, b"tok%d" % i) == b"tok%d" % i
            bh.delete_stack(inst, m, c, ep)

        create(0)
        create(1)
        heads = [r for r in tr.requests if r[0] == "HEAD"]
        assert [h[2] for h in heads[1:]] == ["Bearer " + first_token] * 2, tr.requests
        assert tr.tokens_given == 1, tr.requests
        tr.rotate()  # the registry refuses the token berthd holds
        create(2)
        heads = [r for r in tr.requests if r[0] == "HEAD"]
        assert [h[2] for h in heads[3:]] == ["Bearer " + first_token, "Bearer " + tr.token], tr.requests
        assert tr.tokens_given == 2, tr.requests
        create(3)  # and keeps the new one
        heads = [r for r in tr.requests if r[0] == "HEAD"]
        assert [h[2] for h in heads[5:]] == ["Bearer " + tr.token], tr.requests
        assert tr.tokens_given == 2, tr.requests
        # all four by berthd's own request, none by skopeo
        assert len(fast_resolutions(inst, image)) == 4, inst.log_tail(40)
        assert "asking skopeo" not in berthd_log(inst), inst.log_tail(40)
        bh.assert_no_leaks(inst)
        inst.assert_serving()
    finally:
        tr.stop()


def test_tag_moved_back_is_asked_again(berth, registry):
    """Both digests cached: what the tag means is still asked of the
    registry at every CreateEndpoint, never taken from the last answer, so
    a tag moved back to an older image resolves to that image's digest."""
    tag = MovingTag(registry, "back")
    try:
        for i, step in enumerate((None, tag.move, tag.back, tag.move)):
            if step:
                step()
            want = tag.second if step == tag.move else tag.first
            before = len(fast_resolutions(berth, tag.image))
            m, c, ep = stack(berth, "reg-back%d-%s" % (i, S), tag.image)
            dd = wait_settled(berth, ep)
            assert dd["EndpointStatus"] == "InService", dd
            berth.note_containers()
            assert resolved_image(berth, ep) == tag.pinned(want), i
            if i >= 2:  # both digests cached by now: berthd's own request told
                lines = fast_resolutions(berth, tag.image)
                assert len(lines) == before + 1 and want in lines[-1], berth.log_tail(40)
            assert invoke(berth, ep, b"back%d" % i) == b"back%d" % i
            bh.delete_stack(berth, m, c, ep)
        bh.assert_no_leaks(berth)
        berth.assert_serving()
    finally:
        tag.close()


# ---- bad input ----------------------------------------------------------------

def test_refused_at_create_model(berth, registry):
    """Malformed references and registries berthd does not pull from are
    400s at CreateModel; nothing is created."""
    cases = [
        ("ghcr.io/someone/model:1", 'berthd does not pull from registry "ghcr.io"'),
        ("999999999999.dkr.ecr.us-west-2.amazonaws.com.evil.io/x:1", "does not pull from registry"),
        ("public.ecr.aws/x/y:1", "registries.mirrors"),
        ("ubuntu", 'registry "docker.io"'),
        (registry.host + "/Echo:v1", "invalid repository name"),
        (registry.host + "/echo:-v1", "invalid tag"),
        (registry.host + "/echo@sha256:1234", "invalid digest"),
    ]
    for i, (image, want) in enumerate(cases):
        with pytest.raises(bh.ClientError) as ei:
            berth.sm.create_model(ModelName="reg-bad-%d-%s" % (i, S), ExecutionRoleArn=bh.ROLE,
                                  PrimaryContainer={"Image": image})
        assert bh.error_code(ei.value) == "ValidationException", image
        assert want in bh.error_message(ei.value), (image, bh.error_message(ei.value))
        with pytest.raises(bh.ClientError):
            berth.sm.describe_model(ModelName="reg-bad-%d-%s" % (i, S))
    berth.assert_serving()


def test_unknown_tag(berth, registry):
    r = assert_fails(berth, "reg-tag-" + S, registry.host + "/echo:nope", "manifest unknown")
    assert r.startswith('Container primary could not be started: Image "%s/echo:nope" could not be pulled: '
                        % registry.host), r


def test_bad_digest(berth, registry):
    assert_fails(berth, "reg-dig-" + S, registry.host + "/echo@sha256:" + "0" * 64, "manifest unknown")


def test_refused_credentials(berth, registry):
    assert_fails(berth, "reg-cred-" + S, "localhost:%d/echo:v1" % registry.port,
                 "unauthorized: authentication required")


def test_registry_down(berth, registry):
    assert_fails(berth, "reg-down-" + S, "127.0.0.1:%d/echo:v1" % registry.down_port, "connection refused")


def test_other_platform(berth, registry):
    r = assert_fails(berth, "reg-arm-" + S, registry.host + "/arm:v1", "is built for linux/arm64")
    assert "berthd runs linux/amd64 images" in r, r


def test_manifest_list_without_this_platform(berth, registry):
    r = assert_fails(berth, "reg-armlist-" + S, registry.host + "/armlist:v1",
                     "has no linux/amd64 image (its manifest list has: linux/arm64, linux/ppc64le)")
    assert "berthd runs linux/amd64 images (registries.os, registries.arch)" in r, r


def test_layer_not_matching_its_digest_leaves_nothing(berth, registry):
    """The registry serves a layer whose bytes are not what its digest
    names: skopeo refuses it, the partial pull is removed."""
    path = registry.blob_path(registry.corrupt_layer)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    assert_fails(berth, "reg-corrupt-" + S, registry.host + "/corrupt:v1", "Digest did not match")


def test_image_over_bound(make_berth, registry, tmp_path):
    inst = make_berth(extra_berthd=["--registries", registries_file(registry, str(tmp_path)),
                                    "--image-max-bytes", str(2 << 20)])
    r = assert_fails(inst, "reg-big-" + S, registry.host + "/big:v1", "is over berthd's image bounds")
    assert "above image_max_bytes %d; nothing was downloaded" % (2 << 20) in r, r


def test_mirror_to_unlisted_registry_refused_at_start(registry, tmp_path):
    path = registries_file(registry, str(tmp_path), mirrors={"*.dkr.ecr.*.amazonaws.com": "10.0.0.1:5000"})
    state, rund = str(tmp_path / "state"), tempfile.mkdtemp(prefix="bt-", dir="/run")
    try:
        p = subprocess.run([os.path.join(bh.build_dir(), "berthd"), "--state-dir", state, "--run-dir", rund,
                            "--registries", path], capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(rund, ignore_errors=True)
    assert p.returncode != 0
    assert ('registries: mirror "*.dkr.ecr.*.amazonaws.com" leads to registry "10.0.0.1:5000", which is not '
            "in registries.hosts") in p.stderr, p.stderr


def test_cli_pull_images_prune(berth, registry):
    """berth pull fetches ahead (then CreateEndpoint pulls nothing), berth
    images lists the cache with the models using each image, prune removes
    only what no model uses; a bad pull says why and changes nothing."""
    image = registry.host + "/echo:v1"
    digest = registry.digest("echo:v1")
    p = berth.cli("pull", image, timeout=90)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("%s is %s/echo@%s (" % (image, registry.host, digest)), p.stdout
    p = berth.cli("pull", registry.host + "/echo:nope", timeout=90)
    assert p.returncode == 1
    assert ('berth: pull: Image "%s/echo:nope" could not be pulled: ' % registry.host) in p.stderr.decode()
    assert "manifest unknown" in p.stderr.decode(), p.stderr
    p = berth.cli("pull", "ghcr.io/x/y:1")
    assert p.returncode == 1 and 'does not pull from registry "ghcr.io"' in p.stderr.decode(), p.stderr

    name = "reg-cli-" + S
    berth.sm.create_model(ModelName=name, ExecutionRoleArn=bh.ROLE, PrimaryContainer={"Image": image})
    p = berth.cli("images")
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line for line in p.stdout.decode().splitlines()[1:]}
    short = digest[:19]
    assert short in rows and name in rows[short] and image in rows[short], p.stdout
    size = float(rows[short].split()[1])
    assert size > 0, rows[short]

    # pull something no model uses, then prune: only that goes
    p = berth.cli("pull", registry.host + "/big:v1", timeout=90)
    assert p.returncode == 0, p.stderr
    big = "sha256-" + registry.digest("big:v1").split(":")[1]
    assert big in cache(berth)
    unused = len(cache(berth)) - 1  # big, and what earlier tests left unused
    p = berth.cli("images", "prune")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("removed %d image%s no model uses" % (unused, "" if unused == 1 else "s")), \
        p.stdout
    assert cache(berth) == ["sha256-" + digest.split(":")[1]], cache(berth)
    berth.sm.delete_model(ModelName=name)
    berth.assert_serving()


# ---- a registry that hangs: the deadline, DeleteEndpoint, berthd's stop -------------------

@pytest.fixture
def hanging():
    h = HangingRegistry()
    yield h
    h.stop()


def hanging_instance(make_berth, hanging, d, timeout_ms):
    path = os.path.join(d, "hang-%d.json" % timeout_ms)
    with open(path, "w") as fh:
        json.dump({"hosts": {hanging.host: {}}, "pull_timeout_ms": timeout_ms}, fh)
    return make_berth(extra_berthd=["--registries", path])


def test_pull_deadline_and_progress(make_berth, hanging, tmp_path):
    # longer than CreateEndpoint's wait for a stable state (5 s)
    inst = hanging_instance(make_berth, hanging, str(tmp_path), 9000)
    image = hanging.host + "/x:v1"
    m, c, ep = stack(inst, "reg-hang-" + S, image)
    dd = inst.sm.describe_endpoint(EndpointName=ep)
    assert dd["EndpointStatus"] == "Creating", dd
    # `berth describe` (DescribeEndpoint's raw answer) shows the pull's step
    p = inst.cli("describe", ep)
    assert p.returncode == 0, p.stderr
    (deployed,) = json.loads(p.stdout)["ProductionVariants"][0]["DeployedImages"]
    assert deployed["BerthPullProgress"] == "asking docker://%s/x:v1 what v1 means" % hanging.host, deployed
    assert "ResolvedImage" not in deployed
    dd = wait_settled(inst, ep)
    assert dd["EndpointStatus"] == "Failed", dd
    assert dd["FailureReason"] == ('Container primary could not be started: Image "%s" could not be pulled within 9 '
                                   "seconds (registries.pull_timeout_ms); check that the registry answers, or raise "
                                   "the limit" % image), dd["FailureReason"]
    assert skopeo_pids(inst.state_dir) == []
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)
    inst.assert_serving()


def test_resolve_timeout_setting(make_berth, hanging, tmp_path):
    """registries.resolve_timeout_ms bounds berthd's own tag request: a
    registry that does not answer is asked by skopeo after that long (the
    default is 2000 ms), and the pull's deadline still holds."""
    path = tmp_path / "hang-resolve.json"
    path.write_text(json.dumps({"hosts": {hanging.host: {}}, "pull_timeout_ms": 60000, "resolve_timeout_ms": 300}))
    inst = make_berth(extra_berthd=["--registries", str(path)])
    image = hanging.host + "/x:v1"
    m, c, ep = stack(inst, "reg-hres-" + S, image)
    bh.wait_until(lambda: skopeo_pids(inst.state_dir), 10, "skopeo to run")

    def at(line):
        stamp = line.split(" ", 1)[0]
        return time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + stamp[19:23])
    log = berthd_log(inst).splitlines()
    (creating,) = [ln for ln in log if "endpoint %s: Creating" % ep in ln]
    (fallback,) = [ln for ln in log if "image %s: asking skopeo what v1 means" % image in ln]
    assert "Timeout was reached" in fallback, fallback
    waited = at(fallback) - at(creating)
    assert 0.29 <= waited < 1.5, (waited, creating, fallback)
    inst.delete_endpoint_and_wait(ep)
    bh.wait_until(lambda: skopeo_pids(inst.state_dir) == [], 3, "skopeo to end")
    bh.delete_stack(inst, m, c, None)
    bh.assert_no_leaks(inst)
    inst.assert_serving()


def test_delete_endpoint_ends_its_pull(make_berth, hanging, tmp_path):
    inst = hanging_instance(make_berth, hanging, str(tmp_path), 120000)
    m, c, ep = stack(inst, "reg-hdel-" + S, hanging.host + "/x:v1")
    bh.wait_until(lambda: skopeo_pids(inst.state_dir), 10, "skopeo to run")
    t0 = time.monotonic()
    inst.delete_endpoint_and_wait(ep)
    assert time.monotonic() - t0 < 5
    # killed with berthd's stop; the kernel may take a moment to reap it on a busy host
    bh.wait_until(lambda: skopeo_pids(inst.state_dir) == [], 3, "skopeo to end with berthd's stop")
    bh.delete_stack(inst, m, c, None)
    bh.assert_no_leaks(inst)
    inst.assert_serving()


def test_berthd_stop_and_kill_end_the_pull(make_berth, hanging, tmp_path):
    """SIGTERM: berthd stops at once, its skopeo with it, and the endpoint
    is not marked Failed (the next berthd creates it again); SIGKILL: skopeo
    dies with berthd (PDEATHSIG), and nothing partial stays in the cache."""
    inst = hanging_instance(make_berth, hanging, str(tmp_path), 120000)
    m, c, ep = stack(inst, "reg-hstop-" + S, hanging.host + "/x:v1")
    bh.wait_until(lambda: skopeo_pids(inst.state_dir), 10, "skopeo to run")
    t0 = time.monotonic()
    inst.berthd.send_signal(signal.SIGTERM)
    inst.berthd.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    # killed with berthd's stop; the kernel may take a moment to reap it on a busy host
    bh.wait_until(lambda: skopeo_pids(inst.state_dir) == [], 3, "skopeo to end with berthd's stop")
    inst.start_berthd()
    bh.wait_until(lambda: "Models" in inst.sm.list_models(), 15, "berthd back")
    assert inst.sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "Creating"
    bh.wait_until(lambda: skopeo_pids(inst.state_dir), 10, "skopeo to run again")
    inst.berthd.send_signal(signal.SIGKILL)
    inst.berthd.wait(timeout=10)
    # checked before berthd is back: the next berthd resumes the pull with a skopeo of its own
    bh.wait_until(lambda: not skopeo_pids(inst.state_dir), 5, "skopeo to die with berthd")
    inst.start_berthd()
    bh.wait_until(lambda: "Models" in inst.sm.list_models(), 15, "berthd back")
    reg = os.path.join(inst.state_dir, "registry")
    assert not [n for n in os.listdir(reg) if n.endswith(".partial")]
    bh.delete_stack(inst, m, c, ep)
    bh.assert_no_leaks(inst)
    inst.assert_serving()
