"""The chat demo's application destination, driven as the Spring chat page drives it."""

from __future__ import annotations

import json

from helpers import RawStomp, connect


def chat(client, kind: str, room: str, sender: str, message: str = ""):
    body = json.dumps({"type": kind, "roomId": room, "sender": sender, "message": message},
                      ensure_ascii=False)
    client.conn.send("/app/chat/message", body)


def test_enter_is_announced_and_talk_is_broadcast_to_the_room(port, clients):
    bob = connect(port, "bob", registry=clients)
    amy = connect(port, "amy", registry=clients)
    elsewhere = connect(port, "elsewhere", registry=clients)
    bob.subscribe("/topic/chat/room/1", "room1")
    amy.subscribe("/topic/chat/room/1", "room1")
    elsewhere.subscribe("/topic/chat/room/2", "room2")

    chat(bob, "ENTER", "1", "bob")
    for c in (bob, amy):
        m = c.listener.message()
        assert m.headers["destination"] == "/topic/chat/room/1"
        assert m.headers["content-type"].startswith("application/json")
        assert json.loads(m.body) == {"type": "ENTER", "roomId": "1", "sender": "bob",
                                      "message": "bob님이 입장했습니다."}

    chat(amy, "TALK", "1", "amy", "안녕하세요 bob! 🚀")
    for c in (bob, amy):
        m = c.listener.message()
        assert json.loads(m.body) == {"type": "TALK", "roomId": "1", "sender": "amy",
                                      "message": "안녕하세요 bob! 🚀"}

    elsewhere.listener.no_message(0.5)


def test_rejected_chat_message_gets_an_error(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send("SEND", {"destination": "/app/chat/message", "content-type": "application/json"},
             json.dumps({"type": "TALK", "roomId": "../etc", "sender": "x", "message": "m"}))
    frames = raw.read_until_closed()
    assert [f.command for f in frames] == ["ERROR"]
    assert frames[0].headers["message"] == "message rejected"
    assert raw.close_code == 1002


def test_invalid_chat_json_gets_invalid_payload(port, clients):
    raw = RawStomp(port)
    clients.append(raw)
    raw.connect()
    raw.send("SEND", {"destination": "/app/chat/message", "receipt": "r"}, "{not json")
    frames = raw.read_until_closed()
    assert [f.command for f in frames] == ["ERROR"]
    assert frames[0].headers["message"] == "invalid payload"
    assert frames[0].headers.get("receipt-id") == "r"
    assert raw.close_code == 1002
