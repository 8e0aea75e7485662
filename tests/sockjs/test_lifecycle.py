"""Session lifecycle: the /close service on every transport, heart-beats (1 s heart-beat server),
and expiry after the disconnect delay (1 s delay server)."""

import time

import pytest

from sockjs_client import (
    GO_AWAY,
    Receiver,
    Stream,
    get,
    messages_of,
    new_session,
    open_session,
    poll,
    send,
    ws_connect,
    ws_expect_closed,
    ws_recv,
)

STREAMING = ["xhr_streaming", "eventsource", "htmlfile"]


# --- /close: every new session is closed with c[3000,"Go away!"]


def test_close_xhr(port):
    url = new_session("/close")
    r = poll(port, url)
    assert (r.status, r.body) == (200, b"o\n"), r
    for _ in range(3):  # served to every later receiver
        r = poll(port, url)
        assert (r.status, r.body) == (200, (GO_AWAY + "\n").encode()), r


@pytest.mark.parametrize("transport", STREAMING)
def test_close_streaming_ends_response(port, transport):
    url = new_session("/close")
    with Receiver(port, url, transport) as r1:
        r1.expect_frame("o")
        r1.expect_frame(GO_AWAY)
        r1.expect_end(timeout=5)
    for _ in range(2):
        with Receiver(port, url, transport) as r2:
            r2.expect_frame(GO_AWAY)
            r2.expect_end(timeout=5)


def test_close_seen_by_other_transports(port):
    url = new_session("/close")
    with Receiver(port, url, "eventsource") as r:
        r.expect_frame("o")
        r.expect_frame(GO_AWAY)
        r.expect_end(timeout=5)
    assert poll(port, url).body == (GO_AWAY + "\n").encode()
    assert get(port, url + "/jsonp?c=x").body == b'/**/x("c[3000,\\"Go away!\\"]");\r\n'


def test_close_websocket(port):
    ws = ws_connect(port, new_session("/close") + "/websocket")
    assert ws_recv(ws) == "o"
    assert ws_recv(ws) == GO_AWAY
    ws_expect_closed(ws, timeout=5)


# --- heart-beats


def test_xhr_poll_answers_h_after_heartbeat(fast):
    url = open_session(fast.port)
    start = time.monotonic()
    r = poll(fast.port, url, timeout=10)
    elapsed = time.monotonic() - start
    assert (r.status, r.body) == (200, b"h\n"), r
    assert 0.5 <= elapsed <= 3.0, elapsed


def test_jsonp_poll_answers_h_after_heartbeat(fast):
    url = new_session()
    assert get(fast.port, url + "/jsonp?c=cb").body == b'/**/cb("o");\r\n'
    start = time.monotonic()
    r = get(fast.port, url + "/jsonp?c=cb")
    assert r.body == b'/**/cb("h");\r\n', r
    assert 0.5 <= time.monotonic() - start <= 3.0


@pytest.mark.parametrize("transport", STREAMING)
def test_streaming_heartbeats(fast, transport):
    url = new_session()
    with Receiver(fast.port, url, transport) as r:
        r.expect_frame("o")
        start = time.monotonic()
        r.expect_frame("h", timeout=5)
        first = time.monotonic() - start
        r.expect_frame("h", timeout=5)
        second = time.monotonic() - start
        assert 0.5 <= first <= 3.0 and second - first >= 0.5, (first, second)
        # Heart-beats do not disturb messages.
        assert send(fast.port, url, ["x"]).status == 204
        frame = r.next_frame()
        while frame == "h":
            frame = r.next_frame()
        assert frame == 'a["x"]'


def test_websocket_heartbeats(fast):
    ws = ws_connect(fast.port, new_session() + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        start = time.monotonic()
        assert ws_recv(ws, timeout=5) == "h"
        assert 0.5 <= time.monotonic() - start <= 3.0
        assert ws_recv(ws, timeout=5) == "h"
    finally:
        ws.close()


def test_no_heartbeat_while_messages_flow(fast):
    """Heart-beats are sent after a heartbeat of silence, not on a fixed clock."""
    url = new_session()
    with Receiver(fast.port, url, "xhr_streaming") as r:
        r.expect_frame("o")
        frames = []
        for i in range(8):  # a message every 0.3 s for 2.4 s
            assert send(fast.port, url, [str(i)]).status == 204
            frames.append(r.next_frame())
            time.sleep(0.3)
        assert "h" not in frames, frames


# --- disconnect delay


def test_session_without_receiver_expires(fast):
    url = open_session(fast.port)
    time.sleep(2.5)  # delay 1 s, plus slack
    r = send(fast.port, url, ["x"])
    assert r.status == 404, r
    # The id is free again: a poll opens a new session.
    assert poll(fast.port, url).body == b"o\n"


def test_session_with_receiver_does_not_expire(fast):
    url = new_session()
    with Receiver(fast.port, url, "xhr_streaming") as r:
        r.expect_frame("o")
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert r.next_frame(timeout=5) == "h"
        assert send(fast.port, url, ["x"]).status == 204
        assert r.next_frame() == 'a["x"]'


def test_polled_session_does_not_expire(fast):
    url = open_session(fast.port)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert poll(fast.port, url).body == b"h\n"
    assert send(fast.port, url, ["x"]).status == 204
    assert poll(fast.port, url).body == b'a["x"]\n'


def test_messages_wait_within_delay(fast):
    url = open_session(fast.port)
    assert send(fast.port, url, ["x"]).status == 204
    time.sleep(0.5)
    assert poll(fast.port, url).body == b'a["x"]\n'


def test_closed_session_expires(fast):
    url = new_session("/close")
    assert poll(fast.port, url).body == b"o\n"
    assert poll(fast.port, url).body == (GO_AWAY + "\n").encode()
    time.sleep(2.5)
    assert poll(fast.port, url).body == b"o\n"  # forgotten: a new session


def test_interrupted_session_expires(fast):
    url = open_session(fast.port)
    held = Stream(fast.port, "POST", url + "/xhr", body=b"", read_head=False)
    time.sleep(0.2)
    held.close()
    time.sleep(2.5)
    assert send(fast.port, url, ["x"]).status == 404
    assert poll(fast.port, url).body == b"o\n"


def test_default_delay_keeps_idle_session(port):
    """The default disconnect delay is 5 s: 2 s without a receiver is fine."""
    url = open_session(port)
    time.sleep(2)
    assert send(port, url, ["x"]).status == 204
    assert messages_of(poll(port, url).text.strip()) == ["x"]
