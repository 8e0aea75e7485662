"""Origin checks of the SockJS endpoint `/ws` of the real binary (`stompede serve`), for the three
kinds of `endpoint.allowed_origins`: empty (same origin, the default), an explicit list, `*`."""

import json
import time

import pytest
import websocket

from sockjs_client import (
    Receiver,
    assert_cors,
    get,
    messages_of,
    new_session,
    poll,
    post,
    send,
    ws_connect,
    ws_recv,
)

FOREIGN = "http://evil.example"
ALLOWED = "http://allowed.example"
LIST_ENV = {"STOMPEDE__ENDPOINT__ALLOWED_ORIGINS": f'["{ALLOWED}"]'}
STAR_ENV = {"STOMPEDE__ENDPOINT__ALLOWED_ORIGINS": '["*"]', "STOMPEDE__SOCKJS__HEARTBEAT": "1s"}
CONNECT = "CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00"


@pytest.fixture
def same_origin(stompede_server):
    return stompede_server()


@pytest.fixture
def listed(stompede_server):
    return stompede_server(**LIST_ENV)


@pytest.fixture
def star(stompede_server):
    return stompede_server(**STAR_ENV)


def own_origin(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def transport_statuses(port, headers) -> dict[str, int]:
    """The status of each SockJS transport of `/ws` for a request with `headers`. xhr_send and
    jsonp_send go to a session opened without those headers."""
    out = {}
    out["xhr"] = poll(port, new_session("/ws"), headers=headers).status
    for transport in ["xhr_streaming", "eventsource", "htmlfile"]:
        with Receiver(port, new_session("/ws"), transport, headers=headers,
                      read_prelude=False) as r:
            out[transport] = r.status
    out["jsonp"] = get(port, new_session("/ws") + "/jsonp?c=cb", headers=headers).status
    url = new_session("/ws")
    assert poll(port, url).status == 200
    out["xhr_send"] = send(port, url, ["x"], headers=headers).status
    out["jsonp_send"] = post(port, url + "/jsonp_send", body="d=%5B%22x%22%5D",
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      **headers}).status
    return out


def handshake_status(port, path, origin) -> int:
    # Raw STOMP over WebSocket negotiates a STOMP subprotocol; the SockJS transport does not.
    subprotocols = ["v12.stomp"] if path == "/ws/websocket" else None
    try:
        ws = ws_connect(port, path, origin=origin, subprotocols=subprotocols)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    ws.close()
    return 101


# --- same origin (default)


def test_same_origin_refuses_foreign_origin(same_origin):
    statuses = transport_statuses(same_origin.port, {"Origin": FOREIGN})
    assert statuses == {t: 403 for t in statuses}, statuses


def test_same_origin_refuses_null_origin(same_origin):
    statuses = transport_statuses(same_origin.port, {"Origin": "null"})
    assert statuses == {t: 403 for t in statuses}, statuses


def test_same_origin_allows_own_origin_and_no_origin(same_origin):
    for headers in [{"Origin": own_origin(same_origin)}, {}]:
        statuses = transport_statuses(same_origin.port, headers)
        assert statuses == {**{t: 200 for t in statuses}, "xhr_send": 204}, (headers, statuses)
    r = poll(same_origin.port, new_session("/ws"), headers={"Origin": own_origin(same_origin)})
    assert_cors(r, own_origin(same_origin))


def test_same_origin_websocket_handshake(same_origin):
    port = same_origin.port
    assert handshake_status(port, new_session("/ws") + "/websocket", FOREIGN) == 403
    assert handshake_status(port, "/ws/websocket", FOREIGN) == 403
    assert handshake_status(port, new_session("/ws") + "/websocket", own_origin(same_origin)) == 101


def test_same_origin_iframe_is_frame_restricted(same_origin):
    r = get(same_origin.port, "/ws/iframe.html")
    assert r.status == 200, r
    assert r.header("X-Frame-Options") == "SAMEORIGIN", r


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_same_origin_refuses_cross_site_get_transports(same_origin, site):
    """jsonp, eventsource, htmlfile are GETs a foreign page can make without an Origin header;
    Sec-Fetch-Site gives them away."""
    port = same_origin.port
    h = {"Sec-Fetch-Site": site}
    assert get(port, new_session("/ws") + "/jsonp?c=cb", headers=h).status == 403
    for transport in ["eventsource", "htmlfile"]:
        with Receiver(port, new_session("/ws"), transport, headers=h, read_prelude=False) as r:
            assert r.status == 403, (transport, r.response)


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_allows_same_origin_fetches(same_origin, site):
    r = get(same_origin.port, new_session("/ws") + "/jsonp?c=cb", headers={"Sec-Fetch-Site": site})
    assert (r.status, r.body) == (200, b'/**/cb("o");\r\n'), r


def test_info_and_cookie_defaults(same_origin):
    port = same_origin.port
    r = get(port, "/ws/info")
    assert r.status == 200, r
    info = json.loads(r.body)
    assert info["cookie_needed"] is True and info["websocket"] is True, info
    r = poll(port, new_session("/ws"))
    assert r.all("Set-Cookie") == ["JSESSIONID=dummy; Path=/"], r


def test_stomp_over_xhr(same_origin):
    """The /ws SockJS endpoint carries STOMP: CONNECT over xhr_send, CONNECTED over xhr."""
    port = same_origin.port
    url = new_session("/ws")
    assert poll(port, url).body == b"o\n"
    assert send(port, url, [CONNECT]).status == 204
    deadline = time.monotonic() + 10
    while True:
        frame = poll(port, url).text.strip()
        if frame != "h" or time.monotonic() > deadline:
            break
    assert messages_of(frame)[0].startswith("CONNECTED\n"), frame


# --- explicit list


def test_list_refuses_iframe(listed):
    for name in ["iframe.html", "iframe-1.6.1.html"]:
        assert get(listed.port, "/ws/" + name).status == 404


def test_list_checks_origin(listed):
    statuses = transport_statuses(listed.port, {"Origin": FOREIGN})
    assert statuses == {t: 403 for t in statuses}, statuses
    statuses = transport_statuses(listed.port, {"Origin": ALLOWED})
    assert statuses == {**{t: 200 for t in statuses}, "xhr_send": 204}, statuses
    r = poll(listed.port, new_session("/ws"), headers={"Origin": ALLOWED})
    assert_cors(r, ALLOWED)


def test_list_websocket_handshake(listed):
    assert handshake_status(listed.port, new_session("/ws") + "/websocket", FOREIGN) == 403
    assert handshake_status(listed.port, new_session("/ws") + "/websocket", ALLOWED) == 101


# --- any origin


def test_star_allows_everything(star):
    port = star.port
    statuses = transport_statuses(port, {"Origin": FOREIGN})
    assert statuses == {**{t: 200 for t in statuses}, "xhr_send": 204}, statuses
    r = poll(port, new_session("/ws"), headers={"Origin": FOREIGN})
    assert_cors(r, FOREIGN)
    assert get(port, "/ws/iframe.html").status == 200
    r = get(port, new_session("/ws") + "/jsonp?c=cb", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 200, r
    assert handshake_status(port, new_session("/ws") + "/websocket", FOREIGN) == 101
    assert handshake_status(port, "/ws/websocket", FOREIGN) == 101


def test_heartbeat_env_override(star):
    """STOMPEDE__SOCKJS__HEARTBEAT=1s: an idle poll answers `h` after about a second."""
    url = new_session("/ws")
    assert poll(star.port, url).body == b"o\n"
    start = time.monotonic()
    assert poll(star.port, url).body == b"h\n"
    assert 0.5 <= time.monotonic() - start <= 3.0


def test_websocket_transport_carries_stomp(star):
    ws = ws_connect(star.port, new_session("/ws") + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        ws.send(json.dumps([CONNECT]))
        frame = ws_recv(ws)
        while frame == "h":
            frame = ws_recv(ws)
        assert messages_of(frame)[0].startswith("CONNECTED\n"), frame
    finally:
        ws.close()
