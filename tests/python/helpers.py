"""Clients for the end-to-end tests: stomp.py connections with a collecting listener, and a raw
STOMP-over-WebSocket client (websocket-client) for what stomp.py cannot show: close codes, the
negotiated subprotocol, handshake refusals and deliberately malformed frames.

Every wait here is bounded; nothing blocks forever.
"""

from __future__ import annotations

import queue
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field

import stomp
import websocket

# Default bound of every wait, in seconds.
TIMEOUT = 10.0
WS_PATH = "/ws/websocket"
SUBPROTOCOLS = ["v12.stomp", "v11.stomp", "v10.stomp"]


def ws_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}{WS_PATH}"


def run_bounded(fn, timeout: float = TIMEOUT, what: str = "call"):
    """Runs `fn` in a daemon thread; fails if it does not return within `timeout` seconds."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{what} did not return within {timeout} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


# --------------------------------------------------------------------------------------------
# stomp.py
# --------------------------------------------------------------------------------------------


class Collector(stomp.ConnectionListener):
    """Collects what a stomp.py connection receives into queues, for bounded waits."""

    def __init__(self, name: str = "client"):
        self.name = name
        self.connected_frames: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.receipts: queue.Queue = queue.Queue()
        self.errors: queue.Queue = queue.Queue()
        self.disconnected = threading.Event()
        self.heartbeats = 0
        self._lock = threading.Lock()

    # --- stomp.py callbacks (run on stomp.py's receiver thread)
    def on_connected(self, frame):
        self.connected_frames.put(frame)

    def on_message(self, frame):
        self.messages.put(frame)

    def on_receipt(self, frame):
        self.receipts.put(frame)

    def on_error(self, frame):
        self.errors.put(frame)

    def on_heartbeat(self):
        with self._lock:
            self.heartbeats += 1

    def on_disconnected(self):
        self.disconnected.set()

    # --- bounded waits (run on the test's thread)
    @staticmethod
    def _get(q: queue.Queue, what: str, timeout: float):
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {what} within {timeout} s") from None

    def connected(self, timeout: float = TIMEOUT):
        return self._get(self.connected_frames, f"CONNECTED for {self.name}", timeout)

    def message(self, timeout: float = TIMEOUT):
        return self._get(self.messages, f"MESSAGE for {self.name}", timeout)

    def messages_n(self, n: int, timeout: float = TIMEOUT) -> list:
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(n):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                raise AssertionError(
                    f"{self.name}: only {len(out)} of {n} messages within {timeout} s"
                ) from None
        return out

    def receipt(self, receipt_id: str, timeout: float = TIMEOUT):
        frame = self._get(self.receipts, f"RECEIPT {receipt_id} for {self.name}", timeout)
        assert frame.headers.get("receipt-id") == receipt_id, frame.headers
        return frame

    def error(self, timeout: float = TIMEOUT):
        return self._get(self.errors, f"ERROR for {self.name}", timeout)

    def wait_disconnected(self, timeout: float = TIMEOUT):
        assert self.disconnected.wait(timeout), f"{self.name} still connected after {timeout} s"

    def no_message(self, within: float):
        try:
            frame = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"{self.name}: unexpected MESSAGE {frame.headers} {frame.body!r}")


@dataclass
class Client:
    conn: stomp.WSStompConnection
    listener: Collector
    connected_frame: object = None

    def subscribe(self, destination: str, sub_id: str, ack: str = "auto", **headers):
        """SUBSCRIBE and wait for its receipt, so that the subscription is in place on return."""
        receipt = f"sub-{sub_id}-{uuid.uuid4().hex[:8]}"
        self.conn.subscribe(destination, id=sub_id, ack=ack, receipt=receipt, **headers)
        self.listener.receipt(receipt)

    def sync(self):
        """A no-op frame with a receipt: on return the server has handled everything sent before."""
        receipt = f"sync-{uuid.uuid4().hex[:8]}"
        # An ACK-less way to get a receipt: SUBSCRIBE+UNSUBSCRIBE would do too, but stomp.py lets
        # any frame carry a receipt, and a BEGIN/ABORT pair touches nothing else.
        tx = f"sync-tx-{uuid.uuid4().hex[:8]}"
        self.conn.begin(transaction=tx)
        self.conn.abort(transaction=tx, receipt=receipt)
        self.listener.receipt(receipt)

    def close(self):
        """Best-effort, bounded teardown: DISCONNECT with a receipt, else drop the socket."""
        transport = self.conn.transport
        try:
            if self.conn.is_connected():
                run_bounded(lambda: self.conn.disconnect(receipt=f"bye-{uuid.uuid4().hex[:8]}"),
                            timeout=3, what="disconnect")
        except Exception:  # noqa: BLE001 - teardown must not mask the test's own outcome
            pass
        finally:
            transport.running = False
            try:
                transport.disconnect_socket()
            except Exception:  # noqa: BLE001
                pass


def connect(port: int, name: str = "client", heartbeats=(0, 0), headers=None,
            registry: list | None = None) -> Client:
    """Opens a stomp.py WebSocket connection and waits (bounded) for CONNECTED."""
    conn = stomp.WSStompConnection(
        [("127.0.0.1", port)],
        ws_path=WS_PATH,
        heartbeats=heartbeats,
        reconnect_attempts_max=1,
    )
    listener = Collector(name)
    conn.set_listener("collector", listener)
    client = Client(conn, listener)
    if registry is not None:
        registry.append(client)
    run_bounded(lambda: conn.connect(wait=False, headers=headers or {}), what="connect")
    client.connected_frame = listener.connected()
    return client


# --------------------------------------------------------------------------------------------
# raw STOMP over websocket-client
# --------------------------------------------------------------------------------------------


@dataclass
class Frame:
    command: str
    headers: dict = field(default_factory=dict)
    body: bytes = b""


class Closed(Exception):
    """The server closed the WebSocket."""

    def __init__(self, code, reason: str):
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


_UNESCAPE = {"\\n": "\n", "\\r": "\r", "\\c": ":", "\\\\": "\\"}


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(_UNESCAPE.get(value[i:i + 2], value[i:i + 2]))
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def encode_frame(command: str, headers: dict | None = None, body: bytes | str = b"") -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = [command]
    for k, v in (headers or {}).items():
        lines.append(f"{k}:{v}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + body + b"\x00"


class RawStomp:
    """A STOMP client written directly on websocket-client, one frame at a time."""

    def __init__(self, port: int, subprotocols=tuple(SUBPROTOCOLS), origin: str | None = None,
                 header: list | None = None):
        kwargs = {"timeout": TIMEOUT, "header": header or []}
        if subprotocols:
            kwargs["subprotocols"] = list(subprotocols)
        if origin is None:
            kwargs["suppress_origin"] = True
        else:
            kwargs["origin"] = origin
        self.ws = websocket.create_connection(ws_url(port), **kwargs)
        self.buf = b""
        self.heartbeats = 0
        self.close_code = None
        self.close_reason = None

    @property
    def subprotocol(self):
        return self.ws.getsubprotocol()

    def send_raw(self, data: bytes, binary: bool = False):
        opcode = websocket.ABNF.OPCODE_BINARY if binary else websocket.ABNF.OPCODE_TEXT
        self.ws.send(data, opcode)

    def send(self, command: str, headers: dict | None = None, body: bytes | str = b""):
        self.send_raw(encode_frame(command, headers, body))

    def connect(self, version: str = "1.2", heart_beat: str = "0,0", **headers) -> Frame:
        hdrs = {"accept-version": version, "host": "127.0.0.1", "heart-beat": heart_beat}
        hdrs.update(headers)
        self.send("CONNECT", hdrs)
        frame = self.read_frame()
        assert frame.command == "CONNECTED", (frame.command, frame.headers, frame.body)
        return frame

    def _parse_one(self):
        """Removes and returns one frame from the buffer, or None if it holds no whole frame."""
        while self.buf[:1] in (b"\n", b"\r"):
            if self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            elif self.buf.startswith(b"\n"):
                self.buf = self.buf[1:]
            else:
                return None  # a lone \r: wait for its \n
            self.heartbeats += 1
        end = self.buf.find(b"\n\n")
        sep = 2
        crlf = self.buf.find(b"\r\n\r\n")
        if crlf != -1 and (end == -1 or crlf < end):
            end, sep = crlf, 4
        if end == -1:
            return None
        head = self.buf[:end].decode("utf-8").replace("\r\n", "\n").split("\n")
        command, headers = head[0], {}
        for line in head[1:]:
            key, _, value = line.partition(":")
            key, value = _unescape(key), _unescape(value)
            headers.setdefault(key, value)  # 1.2: the first occurrence wins
        start = end + sep
        if "content-length" in headers:
            stop = start + int(headers["content-length"])
            if len(self.buf) < stop + 1:
                return None
            assert self.buf[stop:stop + 1] == b"\x00", "frame body not followed by NUL"
        else:
            stop = self.buf.find(b"\x00", start)
            if stop == -1:
                return None
        body = self.buf[start:stop]
        self.buf = self.buf[stop + 1:]
        return Frame(command, headers, body)

    def read_frame(self, timeout: float = TIMEOUT) -> Frame:
        """The next frame; raises Closed when the server closes first, AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse_one()
            if frame is not None:
                return frame
            if self.close_code is not None:
                raise Closed(self.close_code, self.close_reason)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no frame within {timeout} s")
            self.ws.settimeout(remaining)
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                raise AssertionError(f"no frame within {timeout} s") from None
            except websocket.WebSocketConnectionClosedException:
                self.close_code, self.close_reason = "no close frame", ""
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                if len(data) >= 2:
                    self.close_code = struct.unpack("!H", data[:2])[0]
                    self.close_reason = data[2:].decode("utf-8", "replace")
                else:
                    self.close_code, self.close_reason = 1005, ""
            elif opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                self.buf += frame.data

    def read_until_closed(self, timeout: float = TIMEOUT) -> list:
        """Reads frames until the server closes; returns them. Close code in `close_code`."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout} s; got {frames}")
            try:
                frames.append(self.read_frame(remaining))
            except Closed:
                return frames

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:  # noqa: BLE001 - teardown
            pass
