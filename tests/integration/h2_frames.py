"""Minimal HTTP/2 client framing (RFC 9113, HPACK RFC 7541) for attack tests.

Requests are encoded as HPACK literals without indexing and without
Huffman coding, signed by botocore's SigV4Auth (berth_helpers.sign_headers)
unless a test asks for an unsigned or broken request. Of a response,
status_of decodes :status alone (the client asks for a header table of 0,
so nothing refers to a dynamic table); response_headers decodes the whole
block with Debian's python3-hpack.
"""
import select
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
REFUSED_STREAM, CANCEL = 7, 8

SETTINGS_HEADER_TABLE_SIZE = 1
SETTINGS_INITIAL_WINDOW_SIZE = 4

MAX_FRAME = 16384

# RFC 7541 Appendix A: the static entries that name :status
_STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}
# RFC 7541 Appendix B: Huffman codes of the digits (code, bit length)
_HUFFMAN_DIGITS = {(0x0, 5): "0", (0x1, 5): "1", (0x2, 5): "2", (0x19, 6): "3", (0x1a, 6): "4",
                   (0x1b, 6): "5", (0x1c, 6): "6", (0x1d, 6): "7", (0x1e, 6): "8", (0x1f, 6): "9"}


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_str(b):
    return _hpack_int(len(b), 7) + b


def header_block(headers):
    """Literal header fields without indexing, new names, raw strings."""
    out = b""
    for name, value in headers:
        if isinstance(name, str):
            name = name.encode()
        if isinstance(value, str):
            value = value.encode()
        out += b"\x00" + _hpack_str(name) + _hpack_str(value)
    return out


def request_headers(port, path, method="POST", extra=(), body=b"", sign=True):
    """A request's header list. sign: True (botocore's SigV4 signature of
    the request with body, by the instance's key for path), a (id, secret)
    key, or False (unsigned). The signed headers are extra's, host (the
    :authority) and x-amz-date."""
    headers = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1:%d" % port),
               (":path", path)] + list(extra)
    if sign is False:
        return headers
    import berth_helpers as bh  # the instance's keys; bh does not import this module
    inst = bh.instance_on(port)
    if sign is True and (inst is None or inst.auth != "sigv4"):
        return headers
    signed = bh.sign_headers(port, method, path, body=body, headers=dict(extra),
                             key=None if sign is True else sign)
    given = {name.lower() for name, _ in extra}
    return headers + [(k.lower(), v) for k, v in signed.items() if k.lower() not in given]


def response_headers(block, decoder=None):
    """A response header block as [(name, value)] (str), decoded by hpack;
    decoder: the connection's hpack.Decoder (its dynamic table), default a
    new one (enough while the client keeps the table size at 0)."""
    import hpack
    decoder = decoder or hpack.Decoder()
    return [(k.decode(errors="replace") if isinstance(k, bytes) else k,
             v.decode(errors="replace") if isinstance(v, bytes) else v)
            for k, v in decoder.decode(block, raw=True)]


def headers_frame(stream, headers, end_stream=False):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, header_block(headers))


def data_frames(stream, data, end_stream=False):
    out = []
    for off in range(0, max(len(data), 1), MAX_FRAME):
        chunk = data[off:off + MAX_FRAME]
        last = off + MAX_FRAME >= len(data)
        out.append(frame(DATA, END_STREAM if (end_stream and last) else 0, stream, chunk))
    return b"".join(out)


def rst_frame(stream, code=CANCEL):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def settings_frame(settings=(), ack=False):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
    return frame(SETTINGS, ACK if ack else 0, 0, b"" if ack else payload)


def ping_frame(opaque=b"berthpng", ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def window_update_frame(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def _huffman_digits(data):
    bits = "".join("{:08b}".format(b) for b in data)
    out, i = "", 0
    while i < len(bits):
        for n in (5, 6):
            code = bits[i:i + n]
            if len(code) == n and (int(code, 2), n) in _HUFFMAN_DIGITS:
                out += _HUFFMAN_DIGITS[(int(code, 2), n)]
                i += n
                break
        else:
            if set(bits[i:]) <= {"1"} and len(bits) - i < 8:  # EOS padding
                return out
            raise ValueError("Huffman-coded :status that is not digits")
    return out


def _read_int(block, pos, prefix_bits):
    limit = (1 << prefix_bits) - 1
    value = block[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        b = block[pos]
        pos += 1
        value += (b & 127) << shift
        shift += 7
        if not b & 128:
            return value, pos


def status_of(block):
    """The :status of a response header block (its first field)."""
    pos = 0
    while block[pos] & 0xE0 == 0x20:  # dynamic table size updates
        _, pos = _read_int(block, pos, 5)
    b = block[pos]
    if b & 0x80:
        index, pos = _read_int(block, pos, 7)
        return _STATIC_STATUS[index]
    index, pos = _read_int(block, pos, 6 if b & 0x40 else 4)
    if index not in _STATIC_STATUS:
        raise ValueError("first response field is not :status (index %d)" % index)
    huffman = bool(block[pos] & 0x80)
    length, pos = _read_int(block, pos, 7)
    raw = block[pos:pos + length]
    return int(_huffman_digits(raw) if huffman else raw.decode())


class H2Client:
    """One prior-knowledge HTTP/2 connection. Frames read by read_frame()
    are handled for flow control and SETTINGS acks, then returned."""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.conn_window = 65535
        self.initial_window = 65535
        self.stream_windows = {}
        self.closed = False
        self.sock.sendall(PREFACE + settings_frame([(SETTINGS_HEADER_TABLE_SIZE, 0),
                                                    (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24)])
                          + window_update_frame(0, (1 << 30)))

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def open_stream(self, stream, headers, end_stream=False):
        self.stream_windows[stream] = self.initial_window
        self.send(headers_frame(stream, headers, end_stream))

    def _apply(self, ftype, flags, stream, payload):
        if ftype == SETTINGS and not flags & ACK:
            for off in range(0, len(payload), 6):
                key, value = struct.unpack(">HI", payload[off:off + 6])
                if key == SETTINGS_INITIAL_WINDOW_SIZE:
                    delta = value - self.initial_window
                    self.initial_window = value
                    for s in self.stream_windows:
                        self.stream_windows[s] += delta
            self.send(settings_frame(ack=True))
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if stream == 0:
                self.conn_window += inc
            elif stream in self.stream_windows:
                self.stream_windows[stream] += inc
        elif ftype == RST_STREAM:
            self.stream_windows.pop(stream, None)
        elif ftype == GOAWAY:
            self.closed = True

    def read_frame(self, timeout):
        """(type, flags, stream, payload), or None on timeout; raises
        ConnectionError when the router closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    ftype, flags = self.buf[3], self.buf[4]
                    stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    self._apply(ftype, flags, stream, payload)
                    return ftype, flags, stream, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the router closed the HTTP/2 connection")
            self.buf += chunk

    def poll(self):
        """Handles every frame already received; returns them."""
        frames = []
        while True:
            f = self.read_frame(0)
            if f is None:
                return frames
            frames.append(f)

    def wait_for(self, pred, timeout):
        """Reads frames until pred(frame) is true; returns that frame or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            f = self.read_frame(left)
            if f is not None and pred(f):
                return f

    def send_data(self, stream, data, end_stream=False, timeout=10.0):
        """Sends data within the flow-control windows, reading WINDOW_UPDATEs
        as needed. False when the stream was reset meanwhile."""
        off = 0
        deadline = time.monotonic() + timeout
        while off < len(data) or (end_stream and off == 0 and not data):
            if stream not in self.stream_windows:
                return False
            room = min(MAX_FRAME, self.conn_window, self.stream_windows[stream], len(data) - off)
            if room <= 0 and len(data) > off:
                if time.monotonic() > deadline:
                    raise TimeoutError("no flow-control window for stream %d" % stream)
                self.read_frame(0.2)
                continue
            chunk = data[off:off + room]
            last = off + room >= len(data)
            self.send(frame(DATA, END_STREAM if (end_stream and last) else 0, stream, chunk))
            self.conn_window -= room
            self.stream_windows[stream] -= room
            off += room
            if not data:
                break
        return True
