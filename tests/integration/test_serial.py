"""Serial inference pipelines (CONTRACT.md §3): each step's
answer body and Content-Type become the next step's request, the client's
Accept goes to the last step only, custom attributes pass through, a failing
step stops the chain with a ModelError naming it, Server-Timing carries one
entry per step plus route and total, and a step's answer is bounded
(--max-step-bytes between steps, default 5 MB; --max-body-bytes for the
final answer, default 6 MiB).

Bad input: a step that answers 0 bytes (passed on, as
SageMaker does), a step whose answer is over the limit, a step that times
out mid-pipeline, a Content-Type the next step rejects.

Each test deletes what it creates; the module's berth fixture checks for
leaks (shims, runc containers, mounts, cgroups) and sanitizer reports at
teardown.
"""
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import berth_helpers as bh

S = uuid.uuid4().hex[:6]


def client_error(call, code, status):
    with pytest.raises(ClientError) as ei:
        call()
    e = ei.value
    assert bh.error_code(e) == code, e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
    return e


def timing_entries(resp):
    """[(name, dur_ms)] from the Server-Timing header."""
    h = resp["ResponseMetadata"]["HTTPHeaders"]["server-timing"]
    out = []
    for part in h.split(","):
        m = re.fullmatch(r"\s*([A-Za-z0-9-]+);dur=([0-9]+\.[0-9]{3})\s*", part)
        assert m, "bad Server-Timing entry %r in %r" % (part, h)
        out.append((m.group(1), float(m.group(2))))
    return out


class Pipeline:
    """A Serial endpoint of the given containers, deleted on exit."""

    def __init__(self, inst, tag, containers, mode="Serial"):
        self.inst = inst
        self.stack = bh.create_endpoint_stack(inst.sm, "Ser%s-%s" % (tag, S), containers=containers, mode=mode,
                                              inst=inst)
        self.ep = self.stack[2]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        bh.delete_stack(self.inst, *self.stack)

    def invoke(self, body, **kw):
        return self.inst.rt.invoke_endpoint(EndpointName=self.ep, Body=body, **kw)


def test_two_steps_echo_then_upper(berth):
    with Pipeline(berth, "two", [bh.container("pre"), bh.container("up", env={"ECHO_MODE": "upper"})]) as p:
        for i in range(20):  # pooled connections on both steps
            resp = p.invoke(b"hello serial %d" % i, ContentType="text/plain")
            assert resp["Body"].read() == b"HELLO SERIAL %d" % i
            assert resp["ContentType"] == "text/plain"
        assert resp["InvokedProductionVariant"] == "AllTraffic"
        t = timing_entries(resp)
        assert [n for n, _ in t] == ["route", "pre", "up", "total"], t
        d = dict(t)
        assert d["total"] >= d["pre"] + d["up"] - 0.002, t


def test_large_and_small_bodies_alternate_on_pooled_connections(berth):
    """Answers with a Content-Length body are read straight into the buffer
    that becomes the next step's request (no copy); big and small answers,
    and 0 bytes, alternate on the same pooled connections."""
    with Pipeline(berth, "sizes", [bh.container("one"), bh.container("two", env={"ECHO_MODE": "upper"}),
                                   bh.container("three")]) as p:
        for n in (3 * 1024 * 1024, 10, 1024 * 1024 + 7, 0, 70000, 2 * 1024 * 1024, 1, 5 * 1024 * 1024):
            body = (b"abcdefghijklmnopqrstuvwxyz0123456789" * (n // 36 + 1))[:n]
            assert p.invoke(body, ContentType="text/plain")["Body"].read() == body.upper(), n


def test_fifteen_steps_in_order_with_default_mode(berth):
    """15 containers without InferenceExecutionConfig: Serial is the default.
    Each step prefixes its hostname, so the answer shows the order."""
    # 63-character hostnames (the maximum): Server-Timing is over 1 KB
    names = ["s%02d-" % i + "x" * 59 for i in range(1, 16)]
    containers = [bh.container(n, env={"ECHO_MODE": "hostname"}) for n in names]
    with Pipeline(berth, "fifteen", containers, mode=None) as p:
        for _ in range(3):
            resp = p.invoke(b"x" * 1000, ContentType="application/x-chain")
            want = b"".join(n.encode() + b":" for n in reversed(names)) + b"x" * 1000
            assert resp["Body"].read() == want
            assert resp["ContentType"] == "application/x-chain"
        t = timing_entries(resp)
        assert [n for n, _ in t] == ["route"] + names + ["total"], t


def test_accept_to_last_step_content_type_and_custom_attributes(berth):
    """ECHO_MODE=headers prefixes "HOST ct=… accept=… ca=…" to the body it
    got and answers custom attributes "HOST:CA"; ECHO_CONTENT_TYPE sets the
    answer's Content-Type, which must become the next step's request type."""
    containers = [
        bh.container("a", env={"ECHO_MODE": "headers", "ECHO_CONTENT_TYPE": "text/csv"}),
        bh.container("b", env={"ECHO_MODE": "headers"}),
        bh.container("c", env={"ECHO_MODE": "headers", "ECHO_CONTENT_TYPE": "application/json"}),
    ]
    with Pipeline(berth, "hdr", containers) as p:
        resp = p.invoke(b"body", ContentType="text/plain", Accept="application/x-final",
                        CustomAttributes="k=v;trace=1")
        assert resp["Body"].read() == (b"c ct=text/csv accept=application/x-final ca=k=v;trace=1\n"
                                       b"b ct=text/csv accept= ca=k=v;trace=1\n"
                                       b"a ct=text/plain accept= ca=k=v;trace=1\n"
                                       b"body")
        assert resp["ContentType"] == "application/json"
        # custom attributes come back from the last step
        assert resp["CustomAttributes"] == "c:k=v;trace=1"
        # without Accept / custom attributes / Content-Type: none invented
        resp = p.invoke(b"")
        assert resp["Body"].read() == (b"c ct=text/csv accept= ca=\n"
                                       b"b ct=text/csv accept= ca=\n"
                                       b"a ct= accept= ca=\n")
        assert "CustomAttributes" not in resp


def test_failing_middle_step_stops_the_chain(berth):
    containers = [
        bh.container("first"),
        bh.container("middle", env={"ECHO_MODE": "fail", "ECHO_FAIL_STATUS": "503",
                                    "ECHO_FAIL_BODY": "middle broke"}),
        bh.container("last", env={"ECHO_MODE": "hang"}),  # must never be reached
    ]
    with Pipeline(berth, "fail", containers) as p:
        for _ in range(2):
            t0 = time.monotonic()
            e = client_error(lambda: p.invoke(b"x", ContentType="text/plain"), "ModelError", 424)
            assert time.monotonic() - t0 < 1.5   # did not wait for "last"
            assert e.response["OriginalStatusCode"] == 503, e.response
            assert e.response["OriginalMessage"] == "middle broke", e.response
            assert bh.error_message(e) == (
                'Received server error (503) from middle with message "middle broke". '
                'See berth logs %s middle for more information.' % p.ep)
            assert e.response["LogStreamArn"].endswith(":log-stream:AllTraffic/middle"), e.response


def test_step_times_out_mid_pipeline(berth):
    containers = [bh.container("one"), bh.container("stuck", env={"ECHO_MODE": "hang"}), bh.container("three")]
    with Pipeline(berth, "hang", containers) as p:
        t0 = time.monotonic()
        e = client_error(lambda: p.invoke(b"x"), "ModelError", 424)
        took = time.monotonic() - t0
        assert 1.8 <= took <= 10, took           # --invocation-timeout-ms 2000, per step
        assert e.response["OriginalStatusCode"] == 0, e.response
        msg = bh.error_message(e)
        assert msg.startswith('Received server error (0) from stuck with message "Your invocation timed out '
                              'while waiting for a response from container stuck.'), msg


def test_next_step_rejects_the_content_type(berth):
    containers = [bh.container("csv", env={"ECHO_CONTENT_TYPE": "text/csv"}),
                  bh.container("jsononly", env={"ECHO_ACCEPT_CONTENT_TYPE": "application/json"})]
    with Pipeline(berth, "ct", containers) as p:
        e = client_error(lambda: p.invoke(b"1,2", ContentType="application/json"), "ModelError", 424)
        assert e.response["OriginalStatusCode"] == 415, e.response
        assert "unsupported content type 'text/csv'" in e.response["OriginalMessage"], e.response
        assert bh.error_message(e).startswith('Received client error (415) from jsononly with message "'), \
            bh.error_message(e)


def test_zero_byte_answer_is_passed_on(berth):
    """A step answering 200 with an empty body: the next step gets an empty
    request (Content-Length: 0) with the step's Content-Type, as SageMaker
    passes it on; the pipeline goes on."""
    containers = [bh.container("empty", env={"ECHO_CONTENT_TYPE": "application/x-empty"}),
                  bh.container("next", env={"ECHO_MODE": "headers"}),
                  bh.container("tail")]
    with Pipeline(berth, "zero", containers) as p:
        resp = p.invoke(b"", ContentType="text/plain")
        assert resp["Body"].read() == b"next ct=application/x-empty accept= ca=\n"
        assert resp["ContentType"] == "application/x-empty"
        assert [n for n, _ in timing_entries(resp)] == ["route", "empty", "next", "tail", "total"]


def test_step_answer_over_the_inter_step_limit(berth):
    """5 MiB + 1 bytes from the first step to the second: ModelError naming
    the step with SageMaker's wording; the limit is not a memory leak (the
    router reads no further) and the endpoint keeps working."""
    containers = [bh.container("big"), bh.container("small")]
    n = 5 * 1024 * 1024 + 1
    with Pipeline(berth, "big", containers) as p:
        e = client_error(lambda: p.invoke(b"y" * n), "ModelError", 424)
        assert bh.error_message(e) == (
            "Received response from big with status code 200. However, the request payload from big to small "
            "is %d bytes, which has exceeded the maximum limit of 5 MB." % n)
        assert e.response["OriginalStatusCode"] == 200, e.response
        # exactly at the limit is fine
        body = b"z" * (5 * 1024 * 1024)
        assert p.invoke(body)["Body"].read() == body


def test_limits_are_configurable(make_berth):
    """--max-step-bytes raised to 7 MiB: a 6 MiB step answer passes between
    steps, but the final answer (6 MiB + "tail:") is over --max-body-bytes."""
    inst = make_berth(extra_router=["--max-step-bytes", str(7 * 1024 * 1024)])
    containers = [bh.container("head"), bh.container("tail", env={"ECHO_MODE": "hostname"})]
    with Pipeline(inst, "cfg", containers) as p:
        body = b"q" * (6 * 1024 * 1024)
        e = client_error(lambda: p.invoke(body), "ModelError", 424)
        msg = bh.error_message(e)
        assert msg.startswith('Received server error (0) from tail with message "the response body exceeds '
                              'the maximum of 6291456 bytes'), msg
        assert p.invoke(b"fine")["Body"].read() == b"tail:fine"
    inst2 = make_berth(extra_router=["--max-step-bytes", "1000"])
    with Pipeline(inst2, "cfg2", [bh.container("p1"), bh.container("p2")]) as p:
        assert p.invoke(b"a" * 1000)["Body"].read() == b"a" * 1000
        e = client_error(lambda: p.invoke(b"a" * 1001), "ModelError", 424)
        assert bh.error_message(e) == (
            "Received response from p1 with status code 200. However, the request payload from p1 to p2 "
            "is 1001 bytes, which has exceeded the maximum limit of 1000 bytes.")
