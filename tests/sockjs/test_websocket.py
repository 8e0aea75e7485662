"""The websocket transport `{prefix}/{s}/{s}/websocket` and the raw `{prefix}/websocket`
(sockjs-protocol 0.3.3: WebsocketHttpErrors, WebsocketHybi10, RawWebsocket)."""

import json
import os
import time
import uuid

import pytest
import websocket

from sockjs_client import (
    Connection,
    get,
    new_session,
    post,
    request,
    ws_connect,
    ws_expect_closed,
    ws_recv,
)


def ws_session(port, prefix="/echo", **kw):
    ws = ws_connect(port, new_session(prefix) + "/websocket", **kw)
    assert ws_recv(ws) == "o"
    return ws


def recv_messages(ws, count):
    """Collects `count` messages from `a[...]` frames (a server may batch or split them)."""
    got = []
    while len(got) < count:
        frame = ws_recv(ws)
        assert isinstance(frame, str) and frame.startswith("a["), frame
        got += json.loads(frame[1:])
    assert len(got) == count, got
    return got


def test_transport(port):
    ws = ws_session(port)
    try:
        ws.send('["a"]')
        assert ws_recv(ws) == 'a["a"]'
        ws.send('"single string"')
        assert ws_recv(ws) == 'a["single string"]'
        ws.send('["b","c"]')
        assert recv_messages(ws, 2) == ["b", "c"]  # one frame or two
        ws.send("[]")
        ws.send('["d"]')
        assert ws_recv(ws) == 'a["d"]'
    finally:
        ws.close()


def test_empty_message_ignored(port):
    ws = ws_session(port)
    try:
        ws.send("")
        ws.send('["a"]')
        assert ws_recv(ws) == 'a["a"]'
    finally:
        ws.close()


def test_any_origin_allowed(port):
    ws = ws_session(port, origin="http://evil.example")
    try:
        ws.send('["a"]')
        assert ws_recv(ws) == 'a["a"]'
    finally:
        ws.close()


@pytest.mark.parametrize("payload", ['["a', "[", '{"a"', "x", '["a"]]', '["\\x"]'])
def test_broken_json_drops_connection(port, payload):
    ws = ws_session(port)
    ws.send(payload)
    ws_expect_closed(ws, timeout=5)


@pytest.mark.parametrize("payload", ["[1]", "{}", '[["a"]]', "null", "1", '["a",2]',
                                     "[" * 100_000, "[" * 5000 + "]" * 5000])
def test_not_an_array_of_strings_drops_connection(port, payload):
    ws = ws_session(port)
    ws.send(payload)
    ws_expect_closed(ws, timeout=5)


def test_binary_message_is_not_a_sockjs_message(port):
    """SockJS messages are text: a binary WebSocket message is not echoed as one."""
    ws = ws_session(port)
    ws.send_binary(b'["a"]')
    try:
        frame = ws_recv(ws, timeout=2)
    except (websocket.WebSocketTimeoutException, websocket.WebSocketConnectionClosedException):
        return
    pytest.fail(f"binary message answered with {frame!r}")


def test_session_id_reuse(port):
    url = new_session() + "/websocket"
    ws1, ws2 = ws_connect(port, url), ws_connect(port, url)
    try:
        assert ws_recv(ws1) == "o"
        assert ws_recv(ws2) == "o"
        ws1.send('["a"]')
        assert ws_recv(ws1) == 'a["a"]'
        ws2.send('["b"]')
        assert ws_recv(ws2) == 'a["b"]'
    finally:
        ws1.close()
        ws2.close()
    ws1 = ws_connect(port, url)
    try:
        assert ws_recv(ws1) == "o"
        ws1.send('["a"]')
        assert ws_recv(ws1) == 'a["a"]'
    finally:
        ws1.close()


def test_message_over_max_message_drops_connection(small):
    ws = ws_session(small.port)  # --max-message 1024
    ws.send(json.dumps(["x" * 1000]))
    assert ws_recv(ws) == "a" + json.dumps(["x" * 1000])
    ws.send(json.dumps(["x" * 2000]))
    ws_expect_closed(ws, timeout=5)


# --- HTTP errors on the websocket URL


def test_plain_get_is_400(port):
    r = get(port, "/echo/0/0/websocket")
    assert r.status == 400, r
    assert 'Can "Upgrade" only to "WebSocket".' in r.text, r


def test_connection_header_without_upgrade_is_400(port):
    r = get(port, "/echo/0/0/websocket", headers={"Upgrade": "WebSocket", "Connection": "close"})
    assert r.status == 400, r
    assert '"Connection" must be "Upgrade".' in r.text, r


@pytest.mark.parametrize("headers", [{"Upgrade": "WebSocket", "Connection": "Upgrade"}, {}])
def test_post_is_405(port, headers):
    r = post(port, "/echo/0/0/websocket", headers=headers)
    assert r.status == 405, r
    assert r.header("Allow"), r
    assert r.body == b"", r


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
}


@pytest.mark.parametrize("connection", ["Upgrade", "keep-alive, Upgrade", "upgrade"])
def test_handshake_headers(port, connection):
    conn = Connection(port)
    try:
        conn.send_request("GET", new_session() + "/websocket",
                          {**UPGRADE, "Connection": connection, "Origin": "http://asd"})
        _, status, _, headers = conn.read_head(time.monotonic() + 5)
        h = {k.lower(): v for k, v in headers}
        assert status == 101, headers
        assert h["sec-websocket-accept"] == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=", headers
        assert h["connection"].lower() == "upgrade", headers
        assert h["upgrade"].lower() == "websocket", headers
        assert "content-length" not in h, headers
        assert "sec-websocket-extensions" not in h, "no compression is offered"
    finally:
        conn.close()


def test_disabled_websocket(port):
    r = request(port, "GET", f"/disabled_websocket_echo/000/{uuid.uuid4()}/websocket",
                headers=UPGRADE)
    assert r.status == 404, r
    assert get(port, "/disabled_websocket_echo/0/0/websocket").status == 404
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        ws_connect(port, new_session("/disabled_websocket_echo") + "/websocket")
    assert e.value.status_code == 404
    # The other transports of that prefix work.
    r = post(port, new_session("/disabled_websocket_echo") + "/xhr")
    assert (r.status, r.body) == (200, b"o\n"), r


# --- raw WebSocket


def test_raw_websocket_echo(port):
    ws = ws_connect(port, "/echo/websocket")
    try:
        ws.send("Hello world!\uffff")
        assert ws_recv(ws) == "Hello world!\uffff"  # no "o", no framing
        ws.send_binary(b"\x00\xff\x01binary")
        opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, b"\x00\xff\x01binary")
        ws.send('["not", "parsed"]')
        assert ws_recv(ws) == '["not", "parsed"]'
        big = "é" * 100_000
        ws.send(big)
        assert ws_recv(ws) == big
    finally:
        ws.close()


def test_raw_websocket_echoes_empty_messages(port):
    ws = ws_connect(port, "/echo/websocket")
    try:
        ws.send("")
        assert ws_recv(ws, timeout=3) == ""
        ws.send_binary(b"")
        assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"")
    finally:
        ws.close()


def test_raw_websocket_close(port):
    ws = ws_connect(port, "/close/websocket")
    ws_expect_closed(ws, timeout=5)



# --- the closing handshake (RFC 6455 5.5.1), on raw sockets


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    assert len(payload) < 126
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _read_frame(conn: Connection, deadline: float) -> tuple[int, bytes]:
    b0, b1 = conn.read_exact(2, deadline)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(conn.read_exact(2, deadline), "big")
    elif length == 127:
        length = int.from_bytes(conn.read_exact(8, deadline), "big")
    assert not b1 & 0x80, "server frames are not masked"
    return b0 & 0x0F, conn.read_exact(length, deadline)


@pytest.mark.parametrize("path", ["/echo/websocket", "/echo/000/{session}/websocket"])
def test_client_close_is_answered_with_close(port, path):
    """A client Close frame gets a Close frame back (same code) before the server closes TCP."""
    conn = Connection(port, 5)
    try:
        deadline = time.monotonic() + 5
        conn.send_request("GET", path.format(session=uuid.uuid4()), UPGRADE)
        _, status, _, _ = conn.read_head(deadline)
        assert status == 101
        if "{session}" in path:
            assert _read_frame(conn, deadline) == (1, b"o")
        conn.send(_masked(8, (1000).to_bytes(2, "big") + b"bye"))
        frames = []
        while True:
            try:
                frame = _read_frame(conn, deadline)
            except AssertionError as e:  # ProtocolError: the connection ended
                raise AssertionError(
                    f"TCP closed without a Close frame; frames before: {frames}") from e
            frames.append(frame)
            if frame[0] == 8:
                break
        assert frame[1][:2] == (1000).to_bytes(2, "big"), frames
        assert conn.wait_closed(5) == b""
    finally:
        conn.close()
