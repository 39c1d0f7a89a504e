"""The model data cache (STATE/artifacts): `berth artifacts` lists what
berthd unpacked from ModelDataUrl with the endpoints holding each entry,
`berth artifacts prune` removes what no container holds and never what one
does, and artifact_cache_max_bytes trims entries no container holds, least
recently used first, once containers go."""
import fcntl
import os

import pytest

import berth_helpers as bh


def _put(inst, bucket, key, files):
    path = os.path.join(inst.object_root, bucket, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(bh.tgz(files))
    return "s3://%s/%s" % (bucket, key)


def _artifacts(inst):
    r = inst.cli("artifacts")
    assert r.returncode == 0, r.stderr
    reply = inst.control({"op": "artifacts"})
    assert reply["ok"], reply
    return reply["artifacts"], r.stdout.decode()


def _entry_dirs(inst):
    d = os.path.join(inst.state_dir, "artifacts")
    return sorted(n for n in os.listdir(d) if len(n) == 16) if os.path.isdir(d) else []


def _stack(inst, name, url, content_file="weights.txt"):
    env = {"ECHO_MODE": "model", "ECHO_MODEL_FILE": content_file}
    return bh.create_endpoint_stack(inst.sm, bh.unique_name(name), primary=bh.container(env=env, model_data_url=url),
                                    inst=inst)


def _invoke(inst, ep):
    r = inst.rt.invoke_endpoint(EndpointName=ep, Body=b"x", ContentType="text/plain")
    return r["Body"].read()


@pytest.fixture(scope="module")
def berth():
    # no automatic trim here: only berth artifacts prune removes entries
    yield from bh.serve(extra_berthd=["--artifact-cache-max-bytes", "0"])


def test_prune_keeps_what_a_container_holds_and_removes_the_rest(berth):
    bucket = bh.unique_name("art")
    url = _put(berth, bucket, "m/model.tar.gz", {"weights.txt": b"held weights\n"})
    stack = _stack(berth, "Held", url)
    try:
        assert _invoke(berth, stack[2]) == b"held weights\n"
        arts, table = _artifacts(berth)
        mine = [a for a in arts if a["url"] == url]
        assert len(mine) == 1, arts
        assert mine[0]["endpoints"] == [stack[2]], mine
        assert mine[0]["bytes"] > 0 and mine[0]["last_used"] > 0, mine
        assert mine[0]["key"] in table and stack[2] in table and url in table, table
        r = berth.cli("artifacts", "prune")
        assert r.returncode == 0, r.stderr
        assert mine[0]["key"] in _entry_dirs(berth)
        # the container still reads its model after the prune
        assert _invoke(berth, stack[2]) == b"held weights\n"
    finally:
        bh.delete_stack(berth, *stack)

    def released():
        return [a["endpoints"] for a in _artifacts(berth)[0] if a["url"] == url] == [[]]
    bh.wait_until(released, 30, "the entry no longer held once the endpoint is gone")
    r = berth.cli("artifacts", "prune")
    assert r.returncode == 0, r.stderr
    assert b"removed" in r.stdout, r.stdout
    assert mine[0]["key"] not in _entry_dirs(berth)
    assert [a for a in _artifacts(berth)[0] if a["url"] == url] == []
    # the same model again: fetched and unpacked anew
    stack = _stack(berth, "Again", url)
    try:
        assert _invoke(berth, stack[2]) == b"held weights\n"
        assert [a["endpoints"] for a in _artifacts(berth)[0] if a["url"] == url] == [[stack[2]]]
    finally:
        bh.delete_stack(berth, *stack)
    berth.note_containers()


def test_prune_waits_for_a_container_start_resolving_its_model_data(berth):
    """A start holds the cache lock shared from resolving to recording its
    hold; a prune meanwhile removes nothing and says so."""
    bucket = bh.unique_name("art")
    url = _put(berth, bucket, "m/model.tar.gz", {"weights.txt": b"w\n"})
    stack = _stack(berth, "Lock", url)
    bh.delete_stack(berth, *stack)
    key = [a["key"] for a in _artifacts(berth)[0] if a["url"] == url]
    assert len(key) == 1
    fd = os.open(os.path.join(berth.state_dir, "artifacts", ".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # as a container start does
        r = berth.cli("artifacts", "prune")
        assert r.returncode == 1
        assert r.stderr.decode() == (
            "berth: artifacts prune: A container is starting and resolving its model data; nothing was "
            "removed. Try berth artifacts prune again when it is up.\n"), r.stderr
        assert key[0] in _entry_dirs(berth)
    finally:
        os.close(fd)
    r = berth.cli("artifacts", "prune")
    assert r.returncode == 0, r.stderr
    assert key[0] not in _entry_dirs(berth)


def test_artifacts_usage_errors(berth):
    r = berth.cli("artifacts", "remove")
    assert r.returncode == 2
    assert r.stderr == b"usage: berth artifacts [prune]\n"


def test_cache_bound_trims_least_recently_used_once_containers_go(make_berth):
    """With artifact_cache_max_bytes small, deleting an endpoint removes its
    entry at once (no container holds it); an entry held stays, whatever the
    bound; at start, berthd trims what a previous run left."""
    inst = make_berth(extra_berthd=["--artifact-cache-max-bytes", "1"])
    bucket = bh.unique_name("trim")
    url_a = _put(inst, bucket, "a/model.tar.gz", {"weights.txt": b"a\n"})
    url_b = _put(inst, bucket, "b/model.tar.gz", {"weights.txt": b"b\n"})
    a = _stack(inst, "TrimA", url_a)
    b = _stack(inst, "TrimB", url_b)
    try:
        assert _invoke(inst, a[2]) == b"a\n" and _invoke(inst, b[2]) == b"b\n"
        arts = _artifacts(inst)[0]
        assert sorted(x["url"] for x in arts) == sorted([url_a, url_b]), arts  # both held: over the bound, kept
    finally:
        bh.delete_stack(inst, *a)

    def a_gone():
        return [x["url"] for x in _artifacts(inst)[0]] == [url_b]
    bh.wait_until(a_gone, 30, "A's entry trimmed once its endpoint went, B's kept")
    assert _invoke(inst, b[2]) == b"b\n"
    bh.delete_stack(inst, *b)
    bh.wait_until(lambda: _artifacts(inst)[0] == [], 30, "B's entry trimmed too")
    assert _entry_dirs(inst) == []
    inst.note_containers()


def test_berthd_trims_at_start_what_a_previous_run_left(make_berth):
    inst = make_berth(extra_berthd=["--artifact-cache-max-bytes", "0"])
    url = _put(inst, bh.unique_name("start"), "m/model.tar.gz", {"weights.txt": b"left\n"})
    stack = _stack(inst, "Left", url)
    bh.delete_stack(inst, *stack)
    bh.wait_until(lambda: [x["endpoints"] for x in _artifacts(inst)[0]] == [[]], 30, "the entry released")
    assert len(_entry_dirs(inst)) == 1
    inst.extra_berthd = ["--artifact-cache-max-bytes", "1"]
    inst.restart_berthd()
    assert _entry_dirs(inst) == []
    assert _artifacts(inst)[0] == []
    inst.note_containers()
