"""The JSESSIONID cookie (sockjs-protocol 0.3.3: JsessionidCookie) and the /amplify and /broadcast
services."""

import json
import time

import pytest

from sockjs_client import (
    Receiver,
    get,
    messages_of,
    new_session,
    open_session,
    poll,
    poll_messages,
    post,
    send,
    ws_connect,
    ws_recv,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# --- JSESSIONID


def transport_responses(port, prefix, headers):
    """One response of every HTTP transport of a fresh session under `prefix`, by name."""
    out = {}
    url = new_session(prefix)
    out["xhr"] = poll(port, url, headers=headers)
    out["xhr_send"] = send(port, url, ["x"], headers=headers)
    out["jsonp"] = get(port, url + "/jsonp?c=cb", headers=headers)
    out["jsonp_send"] = post(port, url + "/jsonp_send", body="d=%5B%22x%22%5D",
                             headers={**FORM, **headers})
    for transport in ["xhr_streaming", "eventsource", "htmlfile"]:
        with Receiver(port, new_session(prefix), transport, headers=headers) as r:
            r.expect_frame("o")
            out[transport] = r.response
    return out


@pytest.mark.parametrize("cookie,value", [
    (None, "dummy"),
    ("JSESSIONID=abcdef", "abcdef"),
    ("a=1; JSESSIONID=xyz.node7; b=2", "xyz.node7"),
])
def test_cookie_on_every_transport(port, cookie, value):
    headers = {"Cookie": cookie} if cookie else {}
    for transport, r in transport_responses(port, "/cookie_needed_echo", headers).items():
        assert r.status in (200, 204), (transport, r)
        assert r.all("Set-Cookie") == [f"JSESSIONID={value}; Path=/"], (transport, r)


def test_no_cookie_without_cookie_needed(port):
    for transport, r in transport_responses(port, "/echo", {"Cookie": "JSESSIONID=abc"}).items():
        assert r.status in (200, 204), (transport, r)
        assert r.all("Set-Cookie") == [], (transport, r)


@pytest.mark.parametrize("path", ["/info", "/iframe.html", "", "/"])
def test_no_cookie_on_non_transport_urls(port, path):
    r = get(port, "/cookie_needed_echo" + path)
    assert r.status == 200, r
    assert r.all("Set-Cookie") == [], r


def test_cookie_needed_info(port):
    assert json.loads(get(port, "/cookie_needed_echo/info").body)["cookie_needed"] is True


def test_cookie_needed_echo_works(port):
    url = open_session(port, "/cookie_needed_echo")
    assert send(port, url, ["x"]).status == 204
    assert poll(port, url).body == b'a["x"]\n'
    ws = ws_connect(port, new_session("/cookie_needed_echo") + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        ws.send('["y"]')
        assert ws_recv(ws) == 'a["y"]'
    finally:
        ws.close()


# --- /amplify


@pytest.mark.parametrize("n,length", [("1", 2), ("3", 8), ("10", 1024), ("18", 2**18), ("0", 2),
                                      ("19", 2), ("-3", 2), ("abc", 2), ("", 2), ("100", 2)])
def test_amplify_websocket(port, n, length):
    ws = ws_connect(port, new_session("/amplify") + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        ws.send(json.dumps([n]))
        assert messages_of(ws_recv(ws)) == ["x" * length]
    finally:
        ws.close()


def test_amplify_xhr(port):
    url = open_session(port, "/amplify")
    assert send(port, url, ["2", "4", "x"]).status == 204
    assert poll_messages(port, url, 3) == ["xxxx", "x" * 16, "xx"]


# --- /broadcast


def test_broadcast_across_sessions_and_transports(port):
    ws = [ws_connect(port, new_session("/broadcast") + "/websocket") for _ in range(3)]
    streams = [Receiver(port, new_session("/broadcast"), t)
               for t in ["xhr_streaming", "eventsource", "htmlfile"]]
    polling = open_session(port, "/broadcast")
    try:
        for w in ws:
            assert ws_recv(w) == "o"
        for s in streams:
            s.expect_frame("o")
        time.sleep(0.2)

        def everyone_gets(expected):
            for w in ws:
                got = []
                while len(got) < len(expected):
                    got += messages_of(ws_recv(w))
                assert got == expected
            for s in streams:
                got = []
                while len(got) < len(expected):
                    got += messages_of(s.next_frame())
                assert got == expected
            assert poll_messages(port, polling, len(expected)) == expected

        ws[0].send('["hello"]')
        everyone_gets(["hello"])
        assert send(port, polling, ["from xhr", "two"]).status == 204
        everyone_gets(["from xhr", "two"])
        # A session that left gets nothing and breaks nothing.
        ws.pop().close()
        time.sleep(0.2)
        ws[1].send('["after leave"]')
        everyone_gets(["after leave"])
    finally:
        for w in ws:
            w.close()
        for s in streams:
            s.close()


def test_broadcast_is_per_prefix(port):
    echo = open_session(port)
    ws = ws_connect(port, new_session("/broadcast") + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        ws.send('["only broadcast"]')
        assert messages_of(ws_recv(ws)) == ["only broadcast"]
        assert send(port, echo, ["echo"]).status == 204
        assert poll(port, echo).body == b'a["echo"]\n'
    finally:
        ws.close()
