"""Hostile clients: oversized bodies, abandoned sessions, and a receiver that never reads.
(Malformed JSON, invalid UTF-8, overlong ids and callbacks are in the transport modules.)"""

import json
import threading
import time
import uuid

import pytest

from sockjs_client import (
    Connection,
    Receiver,
    exchange,
    get,
    new_session,
    open_session,
    poll,
    send,
    ws_connect,
    ws_recv,
)

DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024


def post_large(port, path, body: bytes, timeout=30):
    """POSTs `body` while reading the response, so a server that answers (413) before reading
    the whole body is seen rather than blocking the sender."""
    conn = Connection(port, timeout)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    def send_body():
        try:
            conn.sock.sendall(head + body)
        except OSError:
            pass  # the server answered and closed early: allowed

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        deadline = time.monotonic() + timeout
        _, status, _, headers = conn.read_head(deadline)
        return status
    finally:
        conn.close()
        sender.join(5)


def test_body_over_default_max_message_is_413(port):
    url = open_session(port)
    body = b'["' + b"x" * (DEFAULT_MAX_MESSAGE - 3) + b'"]'  # one byte over
    assert len(body) == DEFAULT_MAX_MESSAGE + 1
    assert post_large(port, url + "/xhr_send", body) == 413
    assert send(port, url, ["still here"]).status == 204
    assert poll(port, url).body == b'a["still here"]\n'


def test_declared_length_over_max_message_is_413(small):
    """A Content-Length far over the limit: refused once the limit is passed (or at once), not
    after reading a gigabyte."""
    url = open_session(small.port)
    conn = Connection(small.port, 5)
    try:
        conn.send(f"POST {url}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
                  .encode() + b'["' + b"x" * 2000)
        _, status, _, _ = conn.read_head(time.monotonic() + 5)
        assert status == 413
    finally:
        conn.close()
    assert send(small.port, url, ["ok"]).status == 204


def test_chunked_body_over_max_message_is_413(small):
    url = open_session(small.port)
    conn = Connection(small.port, 5)
    try:
        chunk = b"x" * 600
        conn.send(f"POST {url}/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  .encode() + b"3\r\n[\"x\r\n" + (b"258\r\n" + chunk + b"\r\n") * 3
                  + b"2\r\n\"]\r\n0\r\n\r\n")
        _, status, _, _ = conn.read_head(time.monotonic() + 5)
        assert status == 413
    finally:
        conn.close()
    assert send(small.port, url, ["ok"]).status == 204
    assert poll(small.port, url).body == b'a["ok"]\n'


def test_abandoned_sessions_are_reclaimed(fast):
    """1000 sessions per round, each holding an 8 KiB message nobody polls, then abandoned.
    With a 1 s disconnect delay they are forgotten; memory stays flat across rounds."""
    message = json.dumps(["m" * 8192])
    conn = Connection(fast.port, 10)
    rss = []
    first_round: list[str] = []
    try:
        for round_ in range(3):
            for _ in range(1000):
                url = f"/echo/000/{uuid.uuid4()}"
                r = exchange(conn, "POST", url + "/xhr")
                assert (r.status, r.body) == (200, b"o\n"), r
                r = exchange(conn, "POST", url + "/xhr_send", body=message)
                assert r.status == 204, r
                if round_ == 0 and len(first_round) < 50:
                    first_round.append(url)
                if conn.eof:  # the server may close keep-alive connections at will
                    conn.close()
                    conn = Connection(fast.port, 10)
            time.sleep(3)  # delay 1 s, plus slack for the sweep
            rss.append(fast.rss_kib())
    finally:
        conn.close()
    for url in first_round:
        assert send(fast.port, url, ["late"]).status == 404, url
    # Leaked sessions would add ~8 MiB per round. Allow allocator noise.
    assert rss[2] - rss[0] < 6144, f"VmRSS after each round (KiB): {rss}"


def test_unread_streaming_response_does_not_stall_others(port):
    """Receivers that never read (tiny receive window) while 8 MiB frames are written to them."""
    slow = []
    senders = []
    try:
        for _ in range(3):
            url = new_session()
            r = Receiver(port, url, "xhr_streaming", rcvbuf=4096)
            r.expect_frame("o")
            slow.append((url, r))
        big = json.dumps(["y" * (8 * 1024 * 1024)])

        def send_big(url):
            conn = Connection(port, 60)
            try:
                return exchange(conn, "POST", url + "/xhr_send", body=big, timeout=60).status
            finally:
                conn.close()

        results = {}
        for url, _ in slow:
            t = threading.Thread(target=lambda u=url: results.setdefault(u, send_big(u)),
                                 daemon=True)
            t.start()
            senders.append(t)
        time.sleep(1.5)  # the frames are being written and the writes are stuck

        # Everyone else is served promptly.
        start = time.monotonic()
        for _ in range(5):
            url = open_session(port)
            assert send(port, url, ["fine"], timeout=3).status == 204
            assert poll(port, url, timeout=3).body == b'a["fine"]\n'
        assert get(port, "/echo/info", timeout=3).status == 200
        ws = ws_connect(port, new_session() + "/websocket", timeout=3)
        try:
            assert ws_recv(ws, timeout=3) == "o"
            ws.send('["ws fine"]')
            assert ws_recv(ws, timeout=3) == 'a["ws fine"]'
        finally:
            ws.close()
        with Receiver(port, new_session(), "eventsource", timeout=3) as other:
            other.expect_frame("o")
        assert time.monotonic() - start < 10
    finally:
        for _, r in slow:
            r.close()
        for t in senders:
            t.join(20)
    # The stalled receivers are gone now; the server is still healthy.
    assert get(port, "/echo", timeout=5).status == 200


def test_send_to_a_stalled_session_does_not_block(port):
    """xhr_send queues the message in the session: it does not wait for a receiver that does not
    read."""
    url = new_session()
    with Receiver(port, url, "xhr_streaming", rcvbuf=4096) as r:
        r.expect_frame("o")
        big = json.dumps(["z" * (8 * 1024 * 1024)])
        conn = Connection(port, 30)
        try:
            assert exchange(conn, "POST", url + "/xhr_send", body=big, timeout=30).status == 204
            start = time.monotonic()
            # The receiver is stuck on the big frame; a second send must not queue behind it.
            r = exchange(conn, "POST", url + "/xhr_send", body='["small"]', timeout=5)
            assert r.status == 204, r
            assert time.monotonic() - start < 5
        finally:
            conn.close()


@pytest.mark.parametrize("n", [200])
def test_many_concurrent_long_polls(port, n):
    """Long polls held open at once do not starve the server."""
    held = []
    try:
        for _ in range(n):
            url = open_session(port)
            c = Connection(port, 10)
            c.send_request("POST", url + "/xhr", body=b"")
            held.append((url, c))
        url, _ = held[n // 2]
        assert send(port, url, ["wake"], timeout=5).status == 204
        assert open_session(port)
    finally:
        for _, c in held:
            c.close()
