"""Bad input gets a STOMP ERROR (with a `message` header) and a close code; nobody else suffers."""

from __future__ import annotations

import time

import pytest
import websocket

from helpers import RawStomp, connect, encode_frame, ws_url


def test_send_without_destination_stomp_py(port, clients):
    bystander = connect(port, "bystander", registry=clients)
    bystander.subscribe("/topic/calm", "calm")
    offender = connect(port, "offender", registry=clients)
    # stomp.py refuses to build such a frame; write it through its transport directly.
    offender.conn.transport.send(encode_frame("SEND", {"receipt": "r1"}, "no destination"))
    error = offender.listener.error()
    assert error.headers["message"] == "missing header"
    assert error.headers.get("receipt-id") == "r1"
    assert "destination" in error.body
    offender.listener.wait_disconnected()

    bystander.conn.send("/topic/calm", "unaffected")
    assert bystander.listener.message().body == "unaffected"


def test_send_without_destination_closes_with_1002(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send("SEND", {}, "no destination")
    frames = raw.read_until_closed()
    assert [f.command for f in frames] == ["ERROR"], frames
    assert frames[0].headers["message"] == "missing header"
    assert raw.close_code == 1002, (raw.close_code, raw.close_reason)


def test_oversized_frame_stomp_py_others_unaffected(port, clients):
    listener = connect(port, "listener", registry=clients)
    listener.subscribe("/topic/big", "big")
    offender = connect(port, "offender", registry=clients)
    offender.conn.send("/topic/big", "x" * (70 * 1024))
    error = offender.listener.error()
    assert error.headers["message"] == "frame too large"
    offender.listener.wait_disconnected()

    # The other stomp.py client is still connected, never saw the oversized frame, and keeps
    # receiving.
    listener.listener.no_message(0.3)
    assert listener.conn.is_connected()
    publisher = connect(port, "publisher", registry=clients)
    for n in range(3):
        publisher.conn.send("/topic/big", f"after-{n}")
    assert [m.body for m in listener.listener.messages_n(3)] == ["after-0", "after-1", "after-2"]


def test_oversized_frame_closes_with_1009(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send("SEND", {"destination": "/topic/big"}, "y" * (70 * 1024))
    frames = raw.read_until_closed()
    assert [f.command for f in frames] == ["ERROR"], frames
    assert frames[0].headers["message"] == "frame too large"
    assert raw.close_code == 1009, (raw.close_code, raw.close_reason)


def test_frame_at_the_limit_is_accepted(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send("SUBSCRIBE", {"destination": "/topic/edge", "id": "e", "receipt": "s"})
    assert raw.read_frame().command == "RECEIPT"
    head = encode_frame("SEND", {"destination": "/topic/edge"})[:-1]
    body = b"z" * (64 * 1024 - len(head) - 1)  # command + headers + body + NUL = 64 KiB
    raw.send_raw(head + body + b"\x00")
    m = raw.read_frame()
    assert m.command == "MESSAGE" and m.body == body


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"FROB\n\n\x00", "unknown command"),
        (b"SEND\ndestination\n\n\x00", "malformed header"),
        (b"SUBSCRIBE\ndestination:/topic/x\n\n\x00", "missing header"),
        (b"SEND\ndestination:/topic/x\ncontent-length:5\n\nabc\x00", None),
        (b"MESSAGE\ndestination:/topic/x\n\n\x00", "unexpected command"),
        (b"CONNECT\naccept-version:1.2\nhost:x\n\n\x00", "already connected"),
    ],
    ids=["unknown-command", "malformed-header", "subscribe-without-id", "short-body",
         "server-command", "second-connect"],
)
def test_malformed_frames_get_error_and_close(port, clients, frame, message):
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send_raw(frame)
    if message is None:  # content-length beyond the data: ERROR now, or wait for more data
        raw.send_raw(b"more bytes, no NUL where it must be")
    frames = raw.read_until_closed()
    assert [f.command for f in frames] == ["ERROR"], frames
    assert frames[0].headers.get("message"), frames[0].headers
    if message is not None:
        assert frames[0].headers["message"] == message
    assert raw.close_code == 1002, (raw.close_code, raw.close_reason)


def test_frame_before_connect(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    raw.send("SEND", {"destination": "/topic/x"}, "too early")
    frames = raw.read_until_closed()
    assert [f.command for f in frames] == ["ERROR"]
    assert frames[0].headers["message"] == "not connected"
    assert raw.close_code == 1002


def test_foreign_origin_is_refused_with_403(port):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        RawStomp(port, origin="http://evil.example.com")
    assert refused.value.status_code == 403


def test_same_origin_is_accepted(port, clients):
    # websocket-client's own default Origin is http://host:port: same origin here.
    raw = RawStomp(port, origin=f"http://127.0.0.1:{port}")
    clients.append(raw)
    assert raw.connect().command == "CONNECTED"
    ws = websocket.create_connection(ws_url(port), timeout=10)  # the library default Origin
    try:
        ws.send(encode_frame("CONNECT", {"accept-version": "1.2", "host": "x"}))
        assert ws.recv().startswith("CONNECTED")
    finally:
        ws.close(timeout=1)


@pytest.mark.server_env(STOMPEDE__ENDPOINT__ALLOWED_ORIGINS='["*"]')
def test_any_origin_when_configured(port, clients):
    raw = RawStomp(port, origin="http://evil.example.com")
    clients.append(raw)
    assert raw.connect().command == "CONNECTED"


@pytest.mark.server_env(STOMPEDE__SESSION__SEND_BUFFER_SIZE_LIMIT="65536")
def test_slow_consumer_is_closed_with_4500_and_others_go_on(port, clients):
    slow = RawStomp(port)
    clients.append(slow)
    slow.connect()
    slow.send("SUBSCRIBE", {"destination": "/topic/flood", "id": "f", "receipt": "s"})
    assert slow.read_frame().command == "RECEIPT"
    healthy = connect(port, "healthy", registry=clients)
    healthy.subscribe("/topic/other", "o")

    publisher = connect(port, "publisher", registry=clients)
    chunk = "p" * (16 * 1024)
    # The slow client reads nothing meanwhile: far more than the kernel's socket buffers and the
    # 64 KiB send buffer can hold. Bounded: 1500 x 16 KiB = 24 MiB.
    started = time.monotonic()
    for n in range(1500):
        publisher.conn.send("/topic/flood", chunk, headers={"n": str(n)})
    publisher.conn.send("/topic/other", "fine", receipt="done")
    publisher.listener.receipt("done", timeout=30)
    assert time.monotonic() - started < 30, "the publisher was slowed down by the slow consumer"
    assert healthy.listener.message().body == "fine"

    frames = slow.read_until_closed(timeout=30)
    assert slow.close_code == 4500, (slow.close_code, slow.close_reason, len(frames))
    assert len(frames) < 1500, "the slow consumer got everything: it was never cut off"
    assert publisher.conn.is_connected() and healthy.conn.is_connected()
