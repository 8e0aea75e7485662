"""Clients for the SockJS protocol tests, written on raw sockets so that every byte the server
sends (status line, headers, chunk framing, connection close) can be checked.

- `request()`: one HTTP request, the whole response read (Content-Length, chunked, or until close).
- `Stream`: a response read incrementally (xhr_streaming, eventsource, htmlfile, long polls).
- `Receiver`: a `Stream` that splits a SockJS streaming transport into frames.
- `ws_connect()` / `ws_expect_closed()`: the websocket transport, through websocket-client.
- `sockjs_quote()`: what sockjs-client 1.x sends for a message (its JSON escaping).

Every read has a deadline: nothing here blocks for longer than its `timeout`.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
import uuid
from dataclasses import dataclass

import websocket

# Default bound of every wait, in seconds.
TIMEOUT = 10.0

# Frames, exactly as the 0.3.3 protocol spells them.
GO_AWAY = 'c[3000,"Go away!"]'
ANOTHER_CONNECTION = 'c[2010,"Another connection still open"]'
INTERRUPTED = 'c[1002,"Connection interrupted"]'
PRELUDE = b"h" * 2048 + b"\n"
NOT_CACHED = "no-store, no-cache, must-revalidate, max-age=0"

# What the 0.3.3 page must look like (sockjs-protocol-0.3.3.py, IframePage.iframe_body), with the
# script URL as a placeholder.
IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script>
    document.domain = document.domain;
    _sockjs_onload = function(){SockJS.bootstrap_iframe();};
  </script>
  <script src="{url}"></script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""

# The htmlfile transport's head (sockjs-protocol-0.3.3.py, HtmlFile.head), callback placeholder.
HTMLFILE_HEAD = """<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.{cb};
    c.start();
    function p(d) {{c.message(d);}};
    window.onload = function() {{c.stop();}};
  </script>"""


def new_session(prefix: str = "/echo", server: str = "000") -> str:
    """A fresh session URL `{prefix}/{server}/{session}` (no trailing slash)."""
    return f"{prefix}/{server}/{uuid.uuid4()}"


# --------------------------------------------------------------------------------------------
# HTTP over raw sockets
# --------------------------------------------------------------------------------------------


class ProtocolError(AssertionError):
    """The server's bytes are not valid HTTP (bad status line, chunk framing, ...)."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    raw_body: bytes = b""  # the body bytes as sent, chunk framing included
    closed: bool = False  # the server closed the connection after the response

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or None. Fails if it is repeated."""
        values = self.all(name)
        if len(values) > 1:
            raise AssertionError(f"header {name} repeated: {values}")
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return f"<HTTP/{self.version} {self.status} {self.reason} {self.headers} {body!r}>"


def _encode_request(port: int, method: str, path: str, headers: dict | list | None,
                    body: bytes | str | None, version: str) -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8")
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", f"127.0.0.1:{port}"))
    if "content-length" not in names and (body or method in ("POST", "PUT")):
        items.append(("Content-Length", str(len(body or b""))))
    head = f"{method} {path} HTTP/{version}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("latin-1") + b"\r\n" + (body or b"")


class Connection:
    """One TCP connection to the server, with a deadline on every read."""

    def __init__(self, port: int, timeout: float = TIMEOUT, rcvbuf: int | None = None):
        self.port = port
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the advertised window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.eof = False

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_request(self, method: str, path: str, headers=None, body=None, version="1.1"):
        self.send(_encode_request(self.port, method, path, headers, body, version))

    def fill(self, deadline: float) -> bool:
        """Reads more bytes into the buffer; False at EOF. Fails at the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the server before the deadline") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, delimiter: bytes, deadline: float) -> bytes:
        while True:
            i = self.buf.find(delimiter)
            if i >= 0:
                out, self.buf = self.buf[: i + len(delimiter)], self.buf[i + len(delimiter):]
                return out
            if not self.fill(deadline):
                raise ProtocolError(
                    f"connection closed before {delimiter!r}; got {self.buf[:200]!r}")

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self.fill(deadline):
                raise ProtocolError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_some(self, deadline: float) -> bytes:
        """Whatever is buffered or arrives next; b'' at EOF."""
        if not self.buf:
            self.fill(deadline)
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout: float = TIMEOUT) -> bytes:
        """Reads until the server closes the connection; returns the bytes that came before."""
        deadline = time.monotonic() + timeout
        while self.fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def read_head(self, deadline: float) -> tuple[str, int, str, list[tuple[str, str]]]:
        head = self.read_until(b"\r\n\r\n", deadline).decode("latin-1")
        lines = head[:-4].split("\r\n")
        m = re.fullmatch(r"HTTP/(\d\.\d) (\d{3}) ?(.*)", lines[0])
        if not m:
            raise ProtocolError(f"bad status line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"bad header line {line!r}")
            headers.append((name, value.strip()))
        return m.group(1), int(m.group(2)), m.group(3), headers

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a RST, as a browser aborting a request may."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


class BodyReader:
    """Decodes a response body incrementally: chunked (strictly checked), Content-Length, or
    until the connection closes. `raw` keeps the body bytes exactly as sent."""

    def __init__(self, conn: Connection, response: Response, method: str):
        self.conn = conn
        self.response = response
        te = response.all("Transfer-Encoding")
        cl = response.all("Content-Length")
        self.chunked = bool(te)
        if te and [v.lower() for v in te] != ["chunked"]:
            raise ProtocolError(f"unexpected Transfer-Encoding {te}")
        if te and cl:
            raise ProtocolError("both Transfer-Encoding and Content-Length")
        no_body = method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        self.remaining = 0 if no_body else (int(cl[0]) if cl else None)
        if no_body and self.chunked:
            raise ProtocolError(f"{response.status} response with a chunked body")
        self.chunk_left = 0  # bytes left in the current chunk
        self.done = no_body or self.remaining == 0
        self.raw = b""

    def read(self, deadline: float) -> bytes:
        """The next piece of decoded body; b'' once the body ended."""
        if self.done:
            return b""
        c = self.conn
        if self.chunked:
            if self.chunk_left == 0:
                line = c.read_until(b"\r\n", deadline)
                self.raw += line
                m = re.fullmatch(rb"([0-9a-fA-F]+)\r\n", line)
                if not m:
                    raise ProtocolError(f"bad chunk size line {line!r}")
                size = int(m.group(1), 16)
                if size == 0:
                    end = c.read_exact(2, deadline)
                    self.raw += end
                    if end != b"\r\n":
                        raise ProtocolError(f"chunked body does not end with CRLF: {end!r}")
                    self.done = True
                    return b""
                self.chunk_left = size
            if not c.buf and not c.fill(deadline):
                raise ProtocolError("connection closed inside a chunk")
            data = c.buf[: self.chunk_left]
            c.buf = c.buf[len(data):]
            self.chunk_left -= len(data)
            self.raw += data
            if self.chunk_left == 0:
                crlf = c.read_exact(2, deadline)
                self.raw += crlf
                if crlf != b"\r\n":
                    raise ProtocolError(f"chunk not followed by CRLF: {crlf!r}")
            return data
        if self.remaining is not None:
            if not c.buf and not c.fill(deadline):
                raise ProtocolError("connection closed inside the body")
            data = c.buf[: self.remaining]
            c.buf = c.buf[len(data):]
            self.remaining -= len(data)
            self.done = self.remaining == 0
            self.raw += data
            return data
        data = c.read_some(deadline)  # until close
        if not data:
            self.done = True
        self.raw += data
        return data


def exchange(conn: Connection, method: str, path: str, headers=None, body=None,
             version: str = "1.1", timeout: float = TIMEOUT) -> Response:
    """One request on `conn` and its whole response, read within `timeout`. The connection may
    carry further requests if the server keeps it open."""
    deadline = time.monotonic() + timeout
    conn.send_request(method, path, headers, body, version)
    version_, status, reason, hdrs = conn.read_head(deadline)
    response = Response(version_, status, reason, hdrs)
    reader = BodyReader(conn, response, method)
    parts = []
    while True:
        data = reader.read(deadline)
        if not data and reader.done:
            break
        parts.append(data)
    response.body = b"".join(parts)
    response.raw_body = reader.raw
    response.closed = conn.eof
    return response


def request(port: int, method: str, path: str, headers=None, body=None, version: str = "1.1",
            timeout: float = TIMEOUT) -> Response:
    """One request on a new connection; the whole response, read within `timeout`."""
    conn = Connection(port, timeout)
    try:
        return exchange(conn, method, path, headers, body, version, timeout)
    finally:
        conn.close()


def get(port, path, **kw) -> Response:
    return request(port, "GET", path, **kw)


def post(port, path, body=b"", **kw) -> Response:
    return request(port, "POST", path, body=body, **kw)


def options(port, path, **kw) -> Response:
    return request(port, "OPTIONS", path, **kw)


class Stream:
    """A request whose response body is read piece by piece (streaming transports, polls held
    open). Use as a context manager, or call close()."""

    def __init__(self, port: int, method: str, path: str, headers=None, body=None,
                 version: str = "1.1", timeout: float = TIMEOUT, rcvbuf: int | None = None,
                 read_head: bool = True):
        self.conn = Connection(port, timeout, rcvbuf)
        self.timeout = timeout
        self.method = method
        self.data = b""  # decoded body not consumed yet
        self.response: Response | None = None
        self.reader: BodyReader | None = None
        self.conn.send_request(method, path, headers, body, version)
        if read_head:
            self.read_head()

    def read_head(self, timeout: float | None = None) -> Response:
        deadline = time.monotonic() + (timeout or self.timeout)
        version, status, reason, hdrs = self.conn.read_head(deadline)
        self.response = Response(version, status, reason, hdrs)
        self.reader = BodyReader(self.conn, self.response, self.method)
        return self.response

    @property
    def status(self) -> int:
        return self.response.status

    def header(self, name):
        return self.response.header(name)

    def _more(self, deadline: float) -> bool:
        piece = self.reader.read(deadline)
        if not piece and self.reader.done:
            return False
        self.data += piece
        return True

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.data) < n:
            if not self._more(deadline):
                raise ProtocolError(
                    f"body ended after {len(self.data)} of {n} bytes: {self.data[:200]!r}")
        out, self.data = self.data[:n], self.data[n:]
        return out

    def read_until(self, delimiter: bytes, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while delimiter not in self.data:
            if not self._more(deadline):
                raise ProtocolError(f"body ended before {delimiter!r}: {self.data[:300]!r}")
        i = self.data.index(delimiter) + len(delimiter)
        out, self.data = self.data[:i], self.data[i:]
        return out

    def read_to_end(self, timeout: float | None = None) -> bytes:
        """The rest of the body; fails unless the body ends within the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._more(deadline):
            pass
        out, self.data = self.data, b""
        return out

    def expect(self, expected: bytes | str, timeout: float | None = None):
        """The next body bytes are exactly `expected`."""
        if isinstance(expected, str):
            expected = expected.encode("utf-8")
        got = self.read_exact(len(expected), timeout)
        assert got == expected, f"expected {expected[:300]!r}, got {got[:300]!r}"

    def expect_end(self, timeout: float | None = None):
        """The body ends now (terminating chunk or connection close), with no more bytes."""
        rest = self.read_to_end(timeout)
        assert rest == b"", f"expected the response to end, got more: {rest[:300]!r}"

    @property
    def raw(self) -> bytes:
        return self.reader.raw

    def close(self):
        self.conn.close()

    def abort(self):
        self.conn.abort()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------
# Header checks shared by the tests
# --------------------------------------------------------------------------------------------


def assert_cors(r, origin=None):
    if origin and origin != "null":
        assert r.header("Access-Control-Allow-Origin") == origin, r
        assert r.header("Access-Control-Allow-Credentials") == "true", r
    else:
        assert r.header("Access-Control-Allow-Origin") == "*", r


def assert_not_cached(r):
    assert r.header("Cache-Control") == NOT_CACHED, r
    assert r.header("Expires") is None, r
    assert r.header("Last-Modified") is None, r


def assert_options(port, path, methods):
    for origin in [None, "test", "null", "http://foo.example:8080"]:
        r = options(port, path, headers={"Origin": origin} if origin else {})
        assert r.status == 204, r
        assert r.body == b"", r
        assert r.header("Cache-Control") == "public, max-age=31536000", r
        assert r.header("Expires"), r
        assert r.header("Access-Control-Max-Age") == "31536000", r
        assert r.header("Access-Control-Allow-Methods") == methods, r
        assert_cors(r, origin)


# --------------------------------------------------------------------------------------------
# SockJS streaming transports
# --------------------------------------------------------------------------------------------


class Receiver(Stream):
    """A streaming SockJS receiver: `xhr_streaming`, `eventsource` or `htmlfile` (callback `cb`).
    `next_frame()` returns each frame as text (`o`, `h`, `a[...]`, `c[...]`)."""

    def __init__(self, port: int, session_url: str, transport: str, cb: str = "cb",
                 headers=None, version: str = "1.1", timeout: float = TIMEOUT,
                 rcvbuf: int | None = None, read_prelude: bool = True):
        self.transport = transport
        self.cb = cb
        if transport == "xhr_streaming":
            super().__init__(port, "POST", f"{session_url}/xhr_streaming", headers, b"", version,
                             timeout, rcvbuf)
        elif transport == "eventsource":
            super().__init__(port, "GET", f"{session_url}/eventsource", headers, None, version,
                             timeout, rcvbuf)
        elif transport == "htmlfile":
            super().__init__(port, "GET", f"{session_url}/htmlfile?c={cb}", headers, None, version,
                             timeout, rcvbuf)
        else:
            raise ValueError(transport)
        self.prelude = b""
        if read_prelude and self.status == 200:
            self.read_prelude()

    def read_prelude(self) -> bytes:
        if self.transport == "xhr_streaming":
            self.prelude = self.read_exact(len(PRELUDE))
            assert self.prelude == PRELUDE, f"xhr_streaming prelude: {self.prelude[:100]!r}"
        elif self.transport == "eventsource":
            self.prelude = self.read_exact(2)
            assert self.prelude == b"\r\n", f"eventsource prelude: {self.prelude!r}"
        else:
            # The head, padded with whitespace, then the first frame's "<script>".
            self.prelude = self.read_until(b"<script>\np(")
            self.data = b"<script>\np(" + self.data
            self.prelude = self.prelude[: -len(b"<script>\np(")]
        return self.prelude

    def frame_bytes(self, frame: str) -> bytes:
        """How `frame` looks on this transport."""
        if self.transport == "xhr_streaming":
            return frame.encode() + b"\n"
        if self.transport == "eventsource":
            return b"data: " + frame.encode() + b"\r\n\r\n"
        return b"<script>\np(" + json.dumps(frame).encode() + b");\n</script>\r\n"

    def next_frame(self, timeout: float | None = None) -> str:
        if self.transport == "xhr_streaming":
            return self.read_until(b"\n", timeout)[:-1].decode("utf-8")
        if self.transport == "eventsource":
            event = self.read_until(b"\r\n\r\n", timeout)
            assert event.startswith(b"data: "), f"eventsource event: {event[:200]!r}"
            return event[len(b"data: "):-4].decode("utf-8")
        script = self.read_until(b"\n</script>\r\n", timeout)
        m = re.fullmatch(rb"<script>\np\((.*)\);\n</script>\r\n", script, re.S)
        assert m, f"htmlfile script: {script[:200]!r}"
        return json.loads(m.group(1))

    def expect_frame(self, frame: str, timeout: float | None = None):
        """The next bytes are exactly `frame` in this transport's framing."""
        self.expect(self.frame_bytes(frame), timeout)


def messages_of(frame: str) -> list[str]:
    assert frame.startswith("a["), f"not a message frame: {frame[:200]!r}"
    return json.loads(frame[1:])


def poll(port: int, session_url: str, timeout: float = TIMEOUT, **kw) -> Response:
    return post(port, f"{session_url}/xhr", timeout=timeout, **kw)


def send(port: int, session_url: str, messages: list[str], **kw) -> Response:
    return post(port, f"{session_url}/xhr_send", body=json.dumps(messages), **kw)


def open_session(port: int, prefix: str = "/echo") -> str:
    url = new_session(prefix)
    r = poll(port, url)
    assert (r.status, r.body) == (200, b"o\n"), r
    return url


def poll_messages(port: int, session_url: str, count: int, timeout: float = TIMEOUT) -> list[str]:
    """Polls until `count` messages arrived (heartbeats skipped); fails past `timeout`."""
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while len(got) < count:
        r = poll(port, session_url, timeout=max(0.1, deadline - time.monotonic()))
        assert r.status == 200, r
        frame = r.text
        assert frame.endswith("\n") and frame.count("\n") == 1, f"one frame per poll: {frame!r}"
        if frame != "h\n":
            got += messages_of(frame[:-1])
    return got


# --------------------------------------------------------------------------------------------
# WebSocket
# --------------------------------------------------------------------------------------------


def ws_connect(port: int, path: str, timeout: float = TIMEOUT, **kw) -> websocket.WebSocket:
    return websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout, **kw)


def ws_recv(ws: websocket.WebSocket, timeout: float = TIMEOUT):
    ws.settimeout(timeout)
    opcode, data = ws.recv_data()
    if opcode == websocket.ABNF.OPCODE_TEXT:
        return data.decode("utf-8")
    return data


def ws_expect_closed(ws: websocket.WebSocket, timeout: float = TIMEOUT) -> int | None:
    """The server ends the connection (close frame or TCP close) within `timeout`, sending no
    more data messages. Returns the close code, if a close frame came."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout} s")
            ws.settimeout(remaining)
            frame = ws.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
                return code
            if frame.opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                raise AssertionError(f"unexpected message before close: {frame.data[:200]!r}")
    except websocket.WebSocketTimeoutException:
        raise AssertionError(f"connection still open after {timeout} s") from None
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return None
    finally:
        try:
            ws.shutdown()
        except Exception:  # noqa: BLE001 - best effort
            pass


# --------------------------------------------------------------------------------------------
# JSON escaping as sockjs-client 1.x does it (lib/utils/escape.js, `quote`)
# --------------------------------------------------------------------------------------------

# sockjs-client's `extraEscapable`, as ranges of UTF-16 code units.
CLIENT_ESCAPABLE = (
    "\x00-\x1f\ud800-\udfff\ufffe\uffff\u0300-\u0333\u033d-\u0346\u034a-\u034c\u0350-\u0352"
    "\u0357-\u0358\u035c-\u0362\u0374\u037e\u0387\u0591-\u05af\u05c4\u0610-\u0617\u0653-\u0654"
    "\u0657-\u065b\u065d-\u065e\u06df-\u06e2\u06eb-\u06ec\u0730\u0732-\u0733\u0735-\u0736\u073a"
    "\u073d\u073f-\u0741\u0743\u0745\u0747\u07eb-\u07f1\u0951\u0958-\u095f\u09dc-\u09dd\u09df"
    "\u0a33\u0a36\u0a59-\u0a5b\u0a5e\u0b5c-\u0b5d\u0e38-\u0e39\u0f43\u0f4d\u0f52\u0f57\u0f5c"
    "\u0f69\u0f72-\u0f76\u0f78\u0f80-\u0f83\u0f93\u0f9d\u0fa2\u0fa7\u0fac\u0fb9\u1939-\u193a"
    "\u1a17\u1b6b\u1cda-\u1cdb\u1dc0-\u1dcf\u1dfc\u1dfe\u1f71\u1f73\u1f75\u1f77\u1f79\u1f7b"
    "\u1f7d\u1fbb\u1fbe\u1fc9\u1fcb\u1fd3\u1fdb\u1fe3\u1feb\u1fee-\u1fef\u1ff9\u1ffb\u1ffd"
    "\u2000-\u2001\u20d0-\u20d1\u20d4-\u20d7\u20e7-\u20e9\u2126\u212a-\u212b\u2329-\u232a\u2adc"
    "\u302b-\u302c\uaab2-\uaab3\uf900-\ufa0a\ufa10\ufa12\ufa15-\ufa1e\ufa20\ufa22\ufa25-\ufa26"
    "\ufa2a-\ufa2d\ufa30-\ufa6d\ufa70-\ufad9\ufb1d\ufb1f\ufb2a-\ufb36\ufb38-\ufb3c\ufb3e"
    "\ufb40-\ufb41\ufb43-\ufb44\ufb46-\ufb4e\ufff0-\uffff"
)
_CLIENT_ESCAPABLE_RE = re.compile(f"[{CLIENT_ESCAPABLE}]")


def _utf16_units(s: str) -> str:
    """`s` as JavaScript sees it: astral characters become surrogate pairs."""
    out = []
    for ch in s:
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            out += [chr(0xD800 + (cp >> 10)), chr(0xDC00 + (cp & 0x3FF))]
        else:
            out.append(ch)
    return "".join(out)


def sockjs_quote(message: str) -> str:
    """`quote(message)` of sockjs-client: JSON.stringify, then the extra characters as \\uXXXX
    (lowercase hex, astral characters as two escaped surrogates). Pure ASCII."""
    quoted = _utf16_units(json.dumps(message, ensure_ascii=False))
    return _CLIENT_ESCAPABLE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def sockjs_payload(messages: list[str]) -> bytes:
    """The body sockjs-client posts to xhr_send: `[` + quoted messages + `]`, UTF-8."""
    return ("[" + ",".join(sockjs_quote(m) for m in messages) + "]").encode("utf-8")

