"""Messaging through the real server with stomp.py clients: sessions, topics, queues, acks,
transactions, heart-beats."""

from __future__ import annotations

import queue
import time
import uuid

import pytest

from helpers import RawStomp, connect, run_bounded


def test_connect_and_disconnect_with_receipt(port, clients):
    client = connect(port, "alice", registry=clients)
    headers = client.connected_frame.headers
    assert headers["version"] == "1.2"
    assert headers["heart-beat"] == "10000,10000"
    assert headers["server"].startswith("stompede")
    assert headers.get("session")

    other = connect(port, "bob", registry=clients)
    assert other.connected_frame.headers["session"] != headers["session"], "sessions must differ"

    # stomp.py sends DISCONNECT, waits for the receipt, then closes the socket.
    run_bounded(lambda: client.conn.disconnect(receipt="bye-1"), what="disconnect")
    client.listener.receipt("bye-1")
    client.listener.wait_disconnected()
    assert not client.conn.is_connected()
    # The server is still fine for everyone else.
    other.subscribe("/topic/after", "s1")
    other.conn.send("/topic/after", "still here")
    assert other.listener.message().body == "still here"


def test_topic_fan_out_to_three_subscribers(port, clients):
    subscribers = [connect(port, f"sub{i}", registry=clients) for i in range(3)]
    for i, sub in enumerate(subscribers):
        sub.subscribe("/topic/news", f"news-{i}")
    publisher = connect(port, "publisher", registry=clients)

    publisher.conn.send("/topic/news", '{"headline":"hi"}', content_type="application/json",
                        headers={"x-trace": "abc-123", "x-empty": ""})
    publisher.conn.send("/topic/news", "second")

    ids = {"first": set(), "second": set()}
    for i, sub in enumerate(subscribers):
        first, second = sub.listener.messages_n(2)
        assert first.body == '{"headline":"hi"}'
        h = first.headers
        assert h["destination"] == "/topic/news"
        assert h["subscription"] == f"news-{i}"
        assert h["content-type"].startswith("application/json")
        assert h["x-trace"] == "abc-123"
        assert h["x-empty"] == ""
        assert int(h["content-length"]) == len(first.body.encode())
        assert second.body == "second"
        ids["first"].add(first.headers["message-id"])
        ids["second"].add(second.headers["message-id"])
        sub.listener.no_message(0.3)
    # A message's id may be shared by its copies (or differ per copy); two messages never share one.
    assert all(ids.values()) and not ids["first"] & ids["second"], ids
    # The publisher is not subscribed and gets nothing.
    publisher.listener.no_message(0.1)


def test_topic_patterns(port, clients):
    client = connect(port, "patterns", registry=clients)
    client.subscribe("/topic/chat.*", "one-segment")
    client.subscribe("/topic/a/**", "any-depth")
    for dest in ("/topic/chat.general", "/topic/chat.x.y", "/topic/chat/x", "/topic/a/b/c",
                 "/topic/b/a", "/topic/ab"):
        client.conn.send(dest, dest)
    # Ant-style with "/" separators, as Spring's simple broker: `*` stays within one segment
    # (so it covers "x.y"), `**` spans segments.
    got = {(m.headers["subscription"], m.body) for m in client.listener.messages_n(3)}
    assert got == {("one-segment", "/topic/chat.general"), ("one-segment", "/topic/chat.x.y"),
                   ("any-depth", "/topic/a/b/c")}
    client.listener.no_message(0.5)


def test_non_ascii_and_60_kib_bodies_arrive_intact(port, clients):
    receiver = connect(port, "receiver", registry=clients)
    receiver.subscribe("/topic/bodies", "b")
    sender = connect(port, "sender", registry=clients)

    text = "안녕하세요, 세계! Grüße — ☃ 🚀 \u00e9\u0301 日本語"
    unit = "가나다라마바사 ümlaut ✓ 🚀 "
    big = (unit * (60 * 1024 // len(unit.encode()) + 1)).encode()[: 60 * 1024]
    big = big.decode("utf-8", "ignore")  # cut on a character boundary
    assert 60 * 1024 - 4 <= len(big.encode()) <= 60 * 1024

    sender.conn.send("/topic/bodies", text, content_type="text/plain;charset=utf-8")
    sender.conn.send("/topic/bodies", big, headers={"x-kind": "big"})
    first, second = receiver.listener.messages_n(2)
    assert first.body == text
    assert int(first.headers["content-length"]) == len(text.encode())
    assert second.body == big
    assert second.headers["x-kind"] == "big"
    assert int(second.headers["content-length"]) == len(big.encode())


def test_header_values_with_special_characters(port, clients):
    client = connect(port, "escapes", registry=clients)
    client.subscribe("/topic/escapes", "e")
    # stomp.py escapes \n, : and \\ (STOMP 1.2); the server must unescape and re-escape them.
    client.conn.send("/topic/escapes", "x", headers={"x-odd": "a:b\\c\nd", "x-utf8": "한국어"})
    m = client.listener.message()
    assert m.headers["x-odd"] == "a:b\\c\nd"
    assert m.headers["x-utf8"] == "한국어"


def test_queue_round_robin_each_message_exactly_once(port, clients):
    workers = [connect(port, f"worker{i}", registry=clients) for i in range(2)]
    for i, w in enumerate(workers):
        w.subscribe("/queue/work", f"w{i}")
    producer = connect(port, "producer", registry=clients)
    bodies = [f"job-{n}" for n in range(10)]
    for body in bodies:
        producer.conn.send("/queue/work", body)

    received = {0: [], 1: []}
    deadline = time.monotonic() + 10
    while sum(len(v) for v in received.values()) < len(bodies):
        assert time.monotonic() < deadline, f"only got {received}"
        for i, w in enumerate(workers):
            try:
                received[i].append(w.listener.messages.get(timeout=0.05).body)
            except queue.Empty:
                pass
    for w in workers:
        w.listener.no_message(0.3)
    all_received = received[0] + received[1]
    assert sorted(all_received) == sorted(bodies), "each message exactly once"
    assert len(received[0]) == len(received[1]) == 5, f"round robin: {received}"
    # Round robin alternates strictly with a single producer.
    assert set(received[0]) in ({f"job-{n}" for n in range(0, 10, 2)},
                                {f"job-{n}" for n in range(1, 10, 2)}), received


def test_queue_holds_messages_until_someone_subscribes(port, clients):
    producer = connect(port, "producer", registry=clients)
    for n in range(3):
        producer.conn.send("/queue/later", f"m{n}")
    producer.sync()
    consumer = connect(port, "consumer", registry=clients)
    consumer.subscribe("/queue/later", "late")
    assert [m.body for m in consumer.listener.messages_n(3)] == ["m0", "m1", "m2"]


def test_client_individual_ack_and_nack_redelivery(port, clients):
    consumer = connect(port, "consumer", registry=clients)
    consumer.subscribe("/queue/jobs", "jobs", ack="client-individual")
    producer = connect(port, "producer", registry=clients)
    producer.conn.send("/queue/jobs", "first")
    producer.conn.send("/queue/jobs", "second")

    first, second = consumer.listener.messages_n(2)
    assert (first.body, second.body) == ("first", "second")
    for m in (first, second):
        assert m.headers.get("ack"), "client-individual deliveries carry an ack header (1.2)"
        assert m.headers.get("redelivered", "false") != "true"

    # ACK the second only (client-individual: the first stays unacknowledged), NACK the first.
    consumer.conn.ack(second.headers["ack"], receipt="ack-2")
    consumer.listener.receipt("ack-2")
    consumer.conn.nack(first.headers["ack"], receipt="nack-1")
    consumer.listener.receipt("nack-1")

    again = consumer.listener.message()
    assert again.body == "first"
    assert again.headers["redelivered"] == "true"
    assert again.headers["ack"] != first.headers["ack"]
    consumer.conn.ack(again.headers["ack"], receipt="ack-1b")
    consumer.listener.receipt("ack-1b")
    consumer.listener.no_message(0.3)

    # Everything is settled: a new subscriber after the consumer leaves gets nothing old.
    consumer.close()
    newcomer = connect(port, "newcomer", registry=clients)
    newcomer.subscribe("/queue/jobs", "jobs2")
    newcomer.listener.no_message(0.5)
    producer.conn.send("/queue/jobs", "third")
    assert newcomer.listener.message().body == "third"


def test_nack_goes_to_another_subscriber(port, clients):
    a = connect(port, "a", registry=clients)
    b = connect(port, "b", registry=clients)
    a.subscribe("/queue/hot", "a", ack="client-individual")
    b.subscribe("/queue/hot", "b", ack="client-individual")
    producer = connect(port, "producer", registry=clients)
    producer.conn.send("/queue/hot", "potato")

    # Whoever gets it NACKs it; it must come back, flagged redelivered (to either subscriber).
    got = None
    deadline = time.monotonic() + 10
    while got is None:
        assert time.monotonic() < deadline, "nobody got the message"
        for who in (a, b):
            if not who.listener.messages.empty():
                got = (who, who.listener.messages.get_nowait())
                break
        time.sleep(0.02)
    who, m = got
    who.conn.nack(m.headers["ack"])
    redelivered = None
    deadline = time.monotonic() + 10
    while redelivered is None:
        assert time.monotonic() < deadline, "NACKed message not redelivered"
        for c in (a, b):
            if not c.listener.messages.empty():
                redelivered = c.listener.messages.get_nowait()
        time.sleep(0.02)
    assert redelivered.body == "potato"
    assert redelivered.headers["redelivered"] == "true"


def test_unacked_messages_are_redelivered_when_the_consumer_disconnects(port, clients):
    greedy = connect(port, "greedy", registry=clients)
    greedy.subscribe("/queue/orders", "g", ack="client")
    producer = connect(port, "producer", registry=clients)
    for n in range(3):
        producer.conn.send("/queue/orders", f"order-{n}")
    got = greedy.listener.messages_n(3)
    # client mode: ACK of order-0 acknowledges it alone (nothing earlier is pending).
    greedy.conn.ack(got[0].headers["ack"], receipt="a0")
    greedy.listener.receipt("a0")
    # DISCONNECT leaves order-1 and order-2 unacknowledged.
    run_bounded(lambda: greedy.conn.disconnect(receipt="bye"), what="disconnect")
    greedy.listener.wait_disconnected()

    other = connect(port, "other", registry=clients)
    other.subscribe("/queue/orders", "o", ack="auto")
    redelivered = other.listener.messages_n(2)
    assert [m.body for m in redelivered] == ["order-1", "order-2"]
    assert all(m.headers["redelivered"] == "true" for m in redelivered)
    other.listener.no_message(0.3)


def test_transactions_commit_delivers_and_abort_does_not(port, clients):
    receiver = connect(port, "receiver", registry=clients)
    receiver.subscribe("/topic/tx", "tx")
    sender = connect(port, "sender", registry=clients)

    sender.conn.begin(transaction="t1")
    sender.conn.send("/topic/tx", "in-t1-a", transaction="t1")
    sender.conn.send("/topic/tx", "in-t1-b", transaction="t1")
    sender.sync()
    receiver.listener.no_message(0.5)  # nothing before COMMIT
    sender.conn.commit(transaction="t1", receipt="c1")
    sender.listener.receipt("c1")
    assert [m.body for m in receiver.listener.messages_n(2)] == ["in-t1-a", "in-t1-b"]

    sender.conn.begin(transaction="t2")
    sender.conn.send("/topic/tx", "in-t2", transaction="t2")
    sender.conn.abort(transaction="t2", receipt="a2")
    sender.listener.receipt("a2")
    sender.conn.send("/topic/tx", "marker")
    # The marker was sent after the ABORT: if it arrives first and alone, the aborted one is gone.
    assert receiver.listener.message().body == "marker"
    receiver.listener.no_message(0.5)


@pytest.mark.server_env(STOMPEDE__HEARTBEAT__SEND="200ms", STOMPEDE__HEARTBEAT__RECEIVE="200ms")
def test_heart_beats_negotiated_and_connection_kept(port, clients):
    client = connect(port, "beating", heartbeats=(1000, 1000), registry=clients)
    assert client.connected_frame.headers["heart-beat"] == "200,200"
    client.subscribe("/topic/beat", "beat")
    # Negotiated: each side beats every max(1000, 200) = 1000 ms; the server closes a client
    # silent for 2 x 1000 ms. stomp.py beats for us; stay idle well past that.
    time.sleep(3.5)
    assert client.conn.is_connected()
    assert not client.listener.disconnected.is_set()
    assert client.listener.heartbeats >= 2, f"server heart-beats seen: {client.listener.heartbeats}"
    client.conn.send("/topic/beat", "alive")
    assert client.listener.message().body == "alive"


@pytest.mark.server_env(STOMPEDE__HEARTBEAT__SEND="200ms", STOMPEDE__HEARTBEAT__RECEIVE="200ms")
def test_silent_client_is_closed_after_twice_the_heart_beat_interval(port, clients):
    silent = RawStomp(port)
    clients.append(silent)
    connected = silent.connect(heart_beat="500,0")  # we promise a beat every max(500,200) ms
    assert connected.headers["heart-beat"] == "200,200"
    started = time.monotonic()
    silent.read_until_closed(timeout=10)
    elapsed = time.monotonic() - started
    assert silent.close_code == 4500, (silent.close_code, silent.close_reason)
    assert 0.8 <= elapsed <= 5, f"closed after {elapsed:.2f} s, expected about 2 x 500 ms"


def test_stomp_1_0_and_1_1_clients(port, clients):
    for version in ("1.0", "1.1"):
        raw = RawStomp(port, subprotocols=(f"v1{version[-1]}.stomp",))
        clients.append(raw)
        assert raw.subprotocol == f"v1{version[-1]}.stomp"
        connected = raw.connect(version=version)
        # A 1.0 CONNECTED has no version header (1.0 predates it).
        assert connected.headers.get("version", "1.0") == version
        raw.send("SUBSCRIBE", {"destination": "/topic/old", "id": "o", "receipt": "r"})
        assert raw.read_frame().command == "RECEIPT"
        raw.send("SEND", {"destination": "/topic/old"}, "v" + version)
        m = raw.read_frame()
        assert (m.command, m.body) == ("MESSAGE", b"v" + version.encode())
        raw.send("DISCONNECT", {"receipt": "bye"})
        assert raw.read_frame().headers["receipt-id"] == "bye"


def test_subprotocol_negotiation_prefers_v12_and_none_is_accepted(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    assert raw.subprotocol == "v12.stomp"
    assert raw.connect().headers["version"] == "1.2"
    bare = RawStomp(port, subprotocols=())
    clients.append(bare)
    assert bare.subprotocol is None
    assert bare.connect().headers["version"] == "1.2"


def test_message_ids_unique_across_many_messages(port, clients):
    client = connect(port, "ids", registry=clients)
    client.subscribe("/topic/ids", "ids")
    for n in range(200):
        client.conn.send("/topic/ids", str(n))
    msgs = client.listener.messages_n(200)
    assert [m.body for m in msgs] == [str(n) for n in range(200)], "order kept"
    assert len({m.headers["message-id"] for m in msgs}) == 200


def test_receipt_for_send(port, clients):
    client = connect(port, "receipts", registry=clients)
    rid = uuid.uuid4().hex
    client.conn.send("/topic/nobody", "x", receipt=rid)
    client.listener.receipt(rid)
