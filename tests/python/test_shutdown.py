"""SIGTERM: sessions get what they were owed, then close 1001; the process exits 0."""

from __future__ import annotations

import time

from helpers import RawStomp, connect


def test_sigterm_with_connected_subscribers(server, clients):
    port = server.port
    subscriber = connect(port, "subscriber", heartbeats=(1000, 1000), registry=clients)
    subscriber.subscribe("/topic/last", "last")
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send("SUBSCRIBE", {"destination": "/topic/last", "id": "l", "receipt": "s"})
    assert raw.read_frame().command == "RECEIPT"

    publisher = connect(port, "publisher", registry=clients)
    for n in range(50):
        publisher.conn.send("/topic/last", f"owed-{n}")
    publisher.conn.send("/topic/last", "final", receipt="sent")
    publisher.listener.receipt("sent")

    started = time.monotonic()
    code = server.terminate(timeout=15)
    elapsed = time.monotonic() - started
    assert code == 0, f"exit code {code} (None: still running after 15 s)"
    assert elapsed < 12, f"shutdown took {elapsed:.1f} s"

    # Everything published before the signal was delivered, then the session closed with 1001.
    frames = raw.read_until_closed(timeout=5)
    assert [f.body.decode() for f in frames] == [f"owed-{n}" for n in range(50)] + ["final"]
    assert raw.close_code == 1001, (raw.close_code, raw.close_reason)
    got = subscriber.listener.messages_n(51, timeout=5)
    assert got[-1].body == "final"
    subscriber.listener.wait_disconnected(timeout=5)


def test_sigterm_idle_server_exits_zero(server):
    assert server.terminate(timeout=15) == 0
