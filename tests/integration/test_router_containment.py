"""Router containment: attacks a client can mount against berth-router,
performed for real over real sockets (raw HTTP/2 frames from h2_frames.py,
raw HTTP/1.1), each checking the exact answer the client sees, that berth
keeps serving, and (fixtures) that nothing leaks.

  - 128 half-open HTTP/2 streams of ~6 MiB each on one connection: router
    RSS stays under 64 MiB while another client keeps getting answers
  - a half-open HTTP/2 stream gets 408 at the request deadline, then a reset
  - HEADERS + RST_STREAM pairs (rapid reset) cost the container nothing
  - a shim that never answers delays only its own endpoint's callers
  - custom attributes survive a container header name of 48+ characters
  - the connection cap answers 503 ServiceUnavailable with Retry-After
  - HTTP/1.1 body trickle (slowloris) gets 408 at the request deadline
  - buffered-bytes caps: 503 + Retry-After (HTTP/1.1), REFUSED_STREAM (HTTP/2)
"""
import json
import os
import signal
import socket
import threading
import time
import uuid

import pytest

import berth_helpers as bh
import h2_frames as h2

MiB = 1 << 20
REQUEST_TIMEOUT_MS = 4000
EXTRA_HEADER = "X-A-Response-Header-Name-Of-Forty-Eight-Chars-XY"  # 48 characters


def uniq():
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def berth():
    # ASan's quarantine keeps every freed block resident (256 MiB by
    # default) by design; without it the router's RSS is what it holds.
    yield from bh.serve(extra_router=["--request-timeout-ms", str(REQUEST_TIMEOUT_MS)],
                        env={"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=0"})


@pytest.fixture(scope="module")
def echo_ep(berth):
    st = bh.create_endpoint_stack(berth.sm, "Contain-" + uniq(), primary=bh.container(), inst=berth)
    yield st[2]
    bh.delete_stack(berth, *st)


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def metric(port, name):
    status, _, body = bh.http_request(port, "GET", "/metrics", timeout=5)
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric %s" % name)


def invoke_raw(port, ep, body=b"hi", timeout=10):
    return bh.http_request(port, "POST", "/endpoints/%s/invocations" % ep, body=body,
                           headers={"Content-Type": "text/plain"}, timeout=timeout)


# ---- HTTP/2: half-open streams ------------------------------------------------

def half_open_attack(port, streams=128, per_stream=6 * MiB - 1024, time_limit=90):
    """One connection, `streams` streams each sending per_stream body bytes
    and never END_STREAM; a stream the router refuses or answers is
    replaced by a new one. Returns (bytes sent, streams ended by the router)."""
    c = h2.H2Client(port, timeout=30)
    try:
        hdrs = h2.request_headers(port, "/endpoints/nowhere/invocations",
                                  extra=[("content-type", "application/octet-stream")], body=b"x" * per_stream)
        active, next_id, sent, ended = {}, 1, 0, 0
        for _ in range(streams):
            c.open_stream(next_id, hdrs)
            active[next_id] = 0
            next_id += 2
        chunk = b"x" * h2.MAX_FRAME
        end = time.monotonic() + time_limit
        while sent < streams * per_stream and time.monotonic() < end and not c.closed:
            progressed = False
            for sid in list(active):
                if sid not in c.stream_windows:
                    del active[sid]
                    ended += 1
                    c.open_stream(next_id, hdrs)
                    active[next_id] = 0
                    next_id += 2
                    continue
                room = min(h2.MAX_FRAME, c.conn_window, c.stream_windows[sid], per_stream - active[sid])
                if room > 0:
                    c.send(h2.frame(h2.DATA, 0, sid, chunk[:room]))
                    c.conn_window -= room
                    c.stream_windows[sid] -= room
                    active[sid] += room
                    sent += room
                    progressed = True
            if progressed:
                c.poll()
            elif all(v >= per_stream for v in active.values()):
                break
            else:
                c.read_frame(0.05)
        return sent, ended
    finally:
        c.close()


def test_half_open_streams_keep_router_memory_bounded(berth, echo_ep):
    pid = berth.router.pid
    answers, failures, stop = [], [], threading.Event()

    def normal_client():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                status, _, body = invoke_raw(berth.port, echo_ep, b"still here", timeout=10)
                answers.append((status, body, time.monotonic() - t0))
            except OSError as e:
                failures.append(repr(e))
            time.sleep(0.1)

    t = threading.Thread(target=normal_client)
    t.start()
    try:
        sent, ended = half_open_attack(berth.port)
    finally:
        stop.set()
        t.join(30)
    hwm_mib = status_kb(pid, "VmHWM") / 1024
    print("half-open attack: %d MiB sent, %d streams refused or answered, router VmHWM %.1f MiB"
          % (sent // MiB, ended, hwm_mib))
    assert sent >= 128 * (6 * MiB - 1024) * 0.99, "the attack could not send its bytes (%d)" % sent
    assert hwm_mib < 64, "router peak RSS %.1f MiB under the attack" % hwm_mib
    assert ended > 0 and metric(berth.port, "berth_router_refused_busy_total") > 0
    assert not failures, failures
    assert len(answers) >= 5, answers
    assert all(a[0] == 200 and a[1] == b"still here" for a in answers), answers[:5]
    bh.wait_until(lambda: metric(berth.port, "berth_router_buffered_bytes") == 0, 10,
                  "every body byte given back once the attacker is gone")
    berth.assert_serving()


def test_half_open_stream_times_out(berth):
    c = h2.H2Client(berth.port)
    try:
        c.open_stream(1, h2.request_headers(berth.port, "/endpoints/nowhere/invocations",
                                            extra=[("content-length", "1000")], body=b"x" * 1000))
        t0 = time.monotonic()
        # a byte a second: the body-idle timeout never fires, the deadline does
        headers = None
        while headers is None and time.monotonic() - t0 < REQUEST_TIMEOUT_MS / 1000 + 5:
            assert c.send_data(1, b"x")
            headers = c.wait_for(lambda f: f[0] == h2.HEADERS and f[2] == 1, 1.0)
        elapsed = time.monotonic() - t0
        assert headers is not None, "no answer on the half-open stream"
        assert h2.status_of(headers[3]) == 408
        assert REQUEST_TIMEOUT_MS / 1000 - 0.5 <= elapsed <= REQUEST_TIMEOUT_MS / 1000 + 3, elapsed
        data = b""
        if not headers[1] & h2.END_STREAM:
            while True:
                f = c.wait_for(lambda f: f[0] == h2.DATA and f[2] == 1, 5)
                assert f is not None, "408 body incomplete"
                data += f[3]
                if f[1] & h2.END_STREAM:
                    break
        assert json.loads(data) == {"message": "Request timed out: a whole request must arrive within %d ms."
                                    % REQUEST_TIMEOUT_MS}
        rst = c.wait_for(lambda f: f[0] == h2.RST_STREAM and f[2] == 1, 5)
        assert rst is not None and int.from_bytes(rst[3], "big") == h2.NO_ERROR
        # the connection itself still works
        c.send(h2.ping_frame(b"stillup!"))
        pong = c.wait_for(lambda f: f[0] == h2.PING and f[1] & h2.ACK, 5)
        assert pong is not None and pong[3] == b"stillup!"
    finally:
        c.close()
    berth.assert_serving()


# ---- HTTP/2: rapid reset -----------------------------------------------------

def test_rapid_reset_costs_the_container_nothing(berth):
    st = bh.create_endpoint_stack(berth.sm, "Reset-" + uniq(),
                                  primary=bh.container(env={"ECHO_MODE": "count"}), inst=berth)
    ep = st[2]
    try:
        path = "/endpoints/%s/invocations" % ep
        conns, pairs = 5, 900
        for _ in range(conns):
            c = h2.H2Client(berth.port)
            try:
                hdrs = h2.request_headers(berth.port, path, extra=[("content-type", "text/plain")])
                batch = b"".join(h2.headers_frame(sid, hdrs, end_stream=True) + h2.rst_frame(sid)
                                 for sid in range(1, 2 * pairs, 2))
                c.send(batch)
                c.send(h2.ping_frame(b"afterrst"))
                pong = c.wait_for(lambda f: f[0] == h2.PING and f[1] & h2.ACK, 10)
                assert pong is not None, "the router did not get through the resets"
            finally:
                c.close()
        status, _, body = invoke_raw(berth.port, ep)
        assert status == 200, body
        received = json.loads(body)["invocations"] - 1
        print("rapid reset: %d of %d reset requests reached the container" % (received, conns * pairs))
        assert received <= conns * pairs // 100, received
        berth.assert_serving()
    finally:
        bh.delete_stack(berth, *st)


# ---- a shim that never answers -------------------------------------------------

def test_stopped_shim_delays_only_its_own_callers(berth, echo_ep):
    ids_before = set(bh.shim_ids(berth.run_dir).values())
    st = bh.create_endpoint_stack(berth.sm, "Stuck-" + uniq(), primary=bh.container(), inst=berth)
    try:
        mine = [pid for pid, cid in bh.shim_ids(berth.run_dir).items() if cid not in ids_before]
        assert len(mine) == 1, mine
        assert invoke_raw(berth.port, echo_ep)[0] == 200
        results = []
        os.kill(mine[0], signal.SIGSTOP)
        try:
            threads = [threading.Thread(target=lambda: results.append(invoke_raw(berth.port, st[2], timeout=20)))
                       for _ in range(10)]
            for th in threads:
                th.start()
            time.sleep(0.2)
            # meanwhile: the router's own answers and another endpoint's
            worst = 0.0
            for _ in range(5):
                t0 = time.monotonic()
                assert bh.http_request(berth.port, "GET", "/ping", timeout=10)[0] == 200
                status, _, body = invoke_raw(berth.port, echo_ep, b"other")
                worst = max(worst, time.monotonic() - t0)
                assert (status, body) == (200, b"other")
            for th in threads:
                th.join(30)
        finally:
            os.kill(mine[0], signal.SIGCONT)
        print("stopped shim: worst /ping + other endpoint round trip %.3f s" % worst)
        assert worst < 0.5, worst
        assert len(results) == 10
        for status, headers, body in results:
            assert status == 503, (status, body)
            assert headers.get("x-amzn-errortype") == "ServiceUnavailable:"
            assert "did not hand over a connection within 1000 ms" in json.loads(body)["message"]
        assert metric(berth.port, "berth_router_shim_connect_timeouts_total") >= 10
        # once the shim runs again, so does its endpoint
        bh.wait_until(lambda: invoke_raw(berth.port, st[2], b"back")[:3:2] == (200, b"back"), 15,
                      "the endpoint answering again")
        berth.assert_serving()
    finally:
        bh.delete_stack(berth, *st)


# ---- custom attributes after a long header name ----------------------------------

def test_custom_attributes_after_long_response_header_name(berth):
    assert len(EXTRA_HEADER) == 48
    st = bh.create_endpoint_stack(
        berth.sm, "Attrs-" + uniq(), inst=berth,
        primary=bh.container(env={"ECHO_MODE": "headers", "ECHO_EXTRA_HEADER": EXTRA_HEADER + ": 1"}))
    try:
        reused_before = metric(berth.port, "berth_router_upstream_connections_reused_total")
        for i in range(3):  # the second and third on the pooled connection
            r = berth.rt.invoke_endpoint(EndpointName=st[2], Body=b"b", ContentType="text/plain",
                                         CustomAttributes="attr-%d" % i)
            assert r.get("CustomAttributes") == "primary:attr-%d" % i, r  # the echo's HOST:CA
        assert metric(berth.port, "berth_router_upstream_connections_reused_total") >= reused_before + 2
    finally:
        bh.delete_stack(berth, *st)


# ---- HTTP/1.1: whole-request deadline ----------------------------------------------

def test_http11_body_trickle_gets_408_at_the_deadline(berth):
    s = socket.create_connection(("127.0.0.1", berth.port), timeout=10)
    try:
        signed = bh.sign_headers(berth.port, "POST", "/endpoints/nowhere/invocations", body=b"x" * 100,
                                 headers={"Content-Type": "text/plain"}, host="x")
        s.sendall(b"POST /endpoints/nowhere/invocations HTTP/1.1\r\nHost: x\r\n"
                  + bh.header_lines(signed) + b"Content-Length: 100\r\n\r\n")
        t0 = time.monotonic()
        s.settimeout(0.5)
        reply = b""
        while time.monotonic() - t0 < REQUEST_TIMEOUT_MS / 1000 + 5 and b"\r\n\r\n" not in reply:
            try:
                s.sendall(b"x")
            except OSError:
                pass
            try:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            except socket.timeout:
                pass
        elapsed = time.monotonic() - t0
        s.settimeout(5)
        while True:  # the rest of the answer, up to the close
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            reply += chunk
    finally:
        s.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), reply[:200]
    assert b"\r\nConnection: close" in head
    assert json.loads(body) == {"message": "Request timed out: a whole request must arrive within %d ms."
                                % REQUEST_TIMEOUT_MS}
    assert REQUEST_TIMEOUT_MS / 1000 - 0.5 <= elapsed <= REQUEST_TIMEOUT_MS / 1000 + 3, elapsed
    berth.assert_serving()


# ---- caps: connections and buffered bytes -----------------------------------------

def read_http11(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    want = int(headers.get("content-length", "0"))
    while len(body) < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.split(b"\r\n")[0].decode(), headers, body


def check_connection_cap(port, cap):
    """Keeps connections open until the router refuses one; checks that
    answer, then that the router serves again once they are closed."""
    held, refused = [], None
    try:
        for _ in range(cap + 3):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(s)
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + bh.header_lines(
                bh.sign_headers(port, "GET", "/ping", host="x")) + b"\r\n")
            line, headers, body = read_http11(s)
            if line != "HTTP/1.1 200 OK":
                refused = (line, headers, body)
                break
        assert refused is not None, "no connection refused with %d open" % len(held)
        assert len(held) <= cap + 1
        line, headers, body = refused
        assert line == "HTTP/1.1 503 Service Unavailable"
        assert headers["retry-after"] == "1"
        assert headers["x-amzn-errortype"] == "ServiceUnavailable:"
        assert headers["connection"] == "close"
        assert json.loads(body) == {"message": "The router serves the maximum of %d client connections at once: "
                                               "retry shortly." % cap}
    finally:
        for s in held:
            s.close()
    bh.wait_until(lambda: bh.http_request(port, "GET", "/ping", timeout=5)[0] == 200, 10,
                  "/ping once the connections are closed")
    assert metric(port, "berth_router_refused_connections_total") >= 1


def test_limits_answer_503_with_retry_after(make_berth):
    cap = 6
    b = make_berth(extra_router=["--max-connections", str(cap), "--max-buffered-bytes", str(MiB),
                                 "--max-connection-buffered-bytes", str(MiB // 2)])
    check_connection_cap(b.port, cap)

    # HTTP/1.1 past the global body budget: 503 + Retry-After
    status, headers, body = bh.http_request(b.port, "POST", "/endpoints/nowhere/invocations",
                                            body=b"y" * (2 * MiB), headers={"Content-Type": "text/plain"})
    assert status == 503, body
    assert headers["retry-after"] == "1"
    assert headers["x-amzn-errortype"] == "ServiceUnavailable:"
    assert json.loads(body) == {"message": "The router holds the maximum of %d bytes of request bodies in memory: "
                                           "retry shortly." % MiB}

    # HTTP/2 past the connection's body budget: RST_STREAM REFUSED_STREAM,
    # and the connection goes on serving
    c = h2.H2Client(b.port)
    try:
        c.open_stream(1, h2.request_headers(b.port, "/endpoints/nowhere/invocations", body=b"z" * MiB))
        c.send_data(1, b"z" * MiB)
        rst = c.wait_for(lambda f: f[0] == h2.RST_STREAM and f[2] == 1, 10)
        assert rst is not None and int.from_bytes(rst[3], "big") == h2.REFUSED_STREAM
        c.open_stream(3, h2.request_headers(b.port, "/ping", method="GET"), end_stream=True)
        resp = c.wait_for(lambda f: f[0] == h2.HEADERS and f[2] == 3, 10)
        assert resp is not None and h2.status_of(resp[3]) == 200
    finally:
        c.close()
    assert metric(b.port, "berth_router_refused_busy_total") >= 2
    bh.wait_until(lambda: metric(b.port, "berth_router_buffered_bytes") == 0, 10, "body bytes given back")
    b.assert_serving()


def test_berthd_passes_its_router_limits(tmp_path, supervised_berth):
    """berthd.json router_* settings reach the router berthd runs (confined)."""
    conf = tmp_path / "berthd.json"
    conf.write_text(json.dumps({"router_max_connections": 3, "router_request_timeout_ms": 3000,
                                "router_max_buffered_bytes": 64 * MiB,
                                "router_max_connection_buffered_bytes": 8 * MiB}))
    inst = supervised_berth(extra_berthd=["--config", str(conf)])
    with open("/proc/%d/cmdline" % inst.router_pid(), "rb") as f:
        argv = f.read().decode().split("\0")
    for flag, value in (("--max-connections", "3"), ("--request-timeout-ms", "3000"),
                        ("--max-buffered-bytes", str(64 * MiB)),
                        ("--max-connection-buffered-bytes", str(8 * MiB))):
        assert argv[argv.index(flag) + 1] == value, argv
    check_connection_cap(inst.port, 3)
    inst.assert_serving()
