"""serving.py — the HTTP side of the example serving containers (SageMaker's
container contract): GET /ping, POST /invocations on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT
(8080), HTTP/1.1 keep-alive, one thread per connection (the stdlib's
ThreadingHTTPServer: nothing to install, starts in milliseconds).

A program gives run() a predict(rows, want) callable: rows is a list of
rows (lists of str, or of JSON values), want is "text/csv" or
"application/json"; it returns the response body (bytes). Raising
BadRequest answers 400 with its message; any other exception 500.

Request bodies: text/csv (one row a line, no header unless the program
skips it) or application/json ({"instances": [[...], ...]} or a bare list
of rows). The Accept header picks the answer's type among the two; absent
or */* gives the program's default.
"""
import csv
import io
import json
import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CSV = "text/csv"
JSON = "application/json"
MAX_BODY = 6 * 1024 * 1024


class BadRequest(Exception):
    """The client's fault: answered 400 with the message."""


def parse_rows(body, content_type):
    ctype = (content_type or CSV).split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8")
    if ctype in (CSV, "text/plain"):
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    elif ctype == JSON:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise BadRequest("the request body is not valid JSON: %s" % e)
        rows = doc.get("instances") if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise BadRequest('JSON requests are {"instances": [[...], ...]} or a list of rows')
    else:
        raise UnsupportedType("Content-Type %s is not supported (text/csv or application/json)" % ctype)
    if not rows:
        raise BadRequest("the request has no rows")
    return rows


class UnsupportedType(Exception):
    """Answered 415 (request) or 406 (Accept)."""


def pick_accept(accept, default):
    if not accept:
        return default
    for part in accept.split(","):
        t = part.split(";")[0].strip().lower()
        if t in (CSV, JSON):
            return t
        if t in ("*/*", "text/*", "application/*", ""):
            return default
    raise UnsupportedType("Accept %s is not supported (text/csv or application/json)" % accept)


def floats(rows, width, what="feature"):
    """rows → list of float lists, each of length width; BadRequest otherwise."""
    out = []
    for i, r in enumerate(rows):
        if len(r) != width:
            raise BadRequest("row %d has %d values; this model takes %d %ss" % (i + 1, len(r), width, what))
        try:
            out.append([float(v) for v in r])
        except (TypeError, ValueError):
            raise BadRequest("row %d: every value must be a number" % (i + 1))
    return out


def csv_text(rows):
    """Rows of numbers/strings → CSV; floats keep full precision (repr)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow([repr(float(v)) if isinstance(v, float) else v for v in r])
    return buf.getvalue().encode()


def json_bytes(doc):
    return json.dumps(doc, separators=(",", ":")).encode()


def make_handler(predict, default_type):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Header and body leave in one write, without Nagle: no 40 ms stalls.
        disable_nagle_algorithm = True
        wbufsize = 64 * 1024
        server_version = "berth-example"
        sys_version = ""

        def log_message(self, fmt, *args):  # quiet: errors only (see _send)
            pass

        def _send(self, status, body, ctype="text/plain"):
            if status >= 400:
                sys.stderr.write("%s %s -> %d %s\n" % (self.command, self.path, status,
                                                       body[:200].decode(errors="replace")))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/ping":
                self._send(200, b"")
            else:
                self._send(404, b"not found\n")

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.close_connection = True
                return self._send(413, b"request body too large\n")
            body = self.rfile.read(n) if n else b""
            if self.path != "/invocations":
                return self._send(404, b"not found\n")
            try:
                want = pick_accept(self.headers.get("Accept"), default_type)
                rows = parse_rows(body, self.headers.get("Content-Type"))
                out = predict(rows, want)
            except UnsupportedType as e:
                return self._send(406 if "Accept" in str(e) else 415, (str(e) + "\n").encode())
            except BadRequest as e:
                return self._send(400, (str(e) + "\n").encode())
            except Exception as e:  # the model's fault
                return self._send(500, ("%s: %s\n" % (type(e).__name__, e)).encode())
            self._send(200, out, want)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):  # HTTPServer's does a reverse DNS lookup: skip it
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]


def run(name, predict, default_type=CSV, t0=None):
    """Serves until killed. argv may carry "serve" (SageMaker's `docker run IMAGE serve`)."""
    args = [a for a in sys.argv[1:] if a != "serve"]
    if args:
        sys.stderr.write("usage: serve [serve]\n")
        sys.exit(2)
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT") or 8080)
    server = Server(("0.0.0.0", port), make_handler(predict, default_type))
    # SIGTERM: stop accepting and exit 0. Needed: as the container's PID 1 the
    # process would otherwise ignore it (init gets no default action) and
    # every stop would wait for berth's SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    if t0 is not None:
        sys.stderr.write("%s: listening on :%d (ready %.2fs after start)\n" % (name, port, time.monotonic() - t0))
    server.serve_forever()
    server.server_close()
