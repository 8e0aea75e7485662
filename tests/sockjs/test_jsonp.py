"""jsonp polling and jsonp_send (sockjs-protocol 0.3.3: JsonPolling), with our `/**/` prefix."""

import json
import re
import time

import pytest

from sockjs_client import (
    ANOTHER_CONNECTION,
    GO_AWAY,
    Stream,
    assert_not_cached,
    get,
    messages_of,
    new_session,
    post,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def jsonp(frame: str, cb: str = "cb") -> bytes:
    """What a jsonp poll answers for `frame`."""
    return f"/**/{cb}({json.dumps(frame)});\r\n".encode()


def jsonp_messages(r, cb: str = "cb") -> list[str]:
    """The messages of a jsonp poll answer carrying an `a` frame."""
    m = re.fullmatch(rb"/\*\*/" + re.escape(cb.encode()) + rb'\((".*")\);\r\n', r.body, re.S)
    assert r.status == 200 and m, r
    return messages_of(json.loads(m.group(1)))


def jsonp_send(port, url, body, headers=FORM):
    return post(port, url + "/jsonp_send", body=body, headers=headers)


def test_transport(port):
    url = new_session()
    r = get(port, url + "/jsonp?c=%63allback")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/javascript;charset=UTF-8", r
    assert_not_cached(r)
    assert r.all("Set-Cookie") == [], r
    assert r.body == b'/**/callback("o");\r\n', r

    r = jsonp_send(port, url, "d=%5B%22x%22%5D")
    assert (r.status, r.body) == (200, b"ok"), r
    assert r.header("Content-Type") == "text/plain;charset=UTF-8", r
    assert_not_cached(r)

    r = get(port, url + "/jsonp?c=%63allback")
    assert r.status == 200, r
    assert r.body == b'/**/callback("a[\\"x\\"]");\r\n', r


@pytest.mark.parametrize("cb", ["a", "cb.x-y_Z9", "jQuery1234_5678", "a" * 256])
def test_valid_callbacks(port, cb):
    r = get(port, new_session() + f"/jsonp?c={cb}")
    assert (r.status, r.body) == (200, jsonp("o", cb)), r


def test_invalid_json(port):
    url = new_session()
    assert get(port, url + "/jsonp?c=x").body == jsonp("o", "x")
    r = jsonp_send(port, url, "d=%5B%22x")
    assert (r.status, r.body) == (500, b"Broken JSON encoding."), r
    for data in ["", "d=", "p=p"]:
        r = jsonp_send(port, url, data)
        assert (r.status, r.body) == (500, b"Payload expected."), (data, r)
    for data in ["d=%5B1%5D", "d=%7B%7D", "d=%5B%5B%22a%22%5D%5D", "d=" + "%5B" * 5000]:
        r = jsonp_send(port, url, data)
        assert (r.status, r.body) == (500, b"Broken JSON encoding."), (data[:40], r)
    r = jsonp_send(port, url, "d=%5B%22b%22%5D")
    assert (r.status, r.body) == (200, b"ok"), r
    r = get(port, url + "/jsonp?c=x")
    assert (r.status, r.body) == (200, jsonp('a["b"]', "x")), r


def test_plain_body_and_form_body(port):
    url = new_session()
    assert get(port, url + "/jsonp?c=x").body == jsonp("o", "x")
    r = jsonp_send(port, url, "d=%5B%22abc%22%5D")
    assert (r.status, r.body) == (200, b"ok"), r
    # Not form-encoded: the raw body is the JSON, and is not URL-decoded.
    r = jsonp_send(port, url, '["%61bc"]', headers={"Content-Type": "text/plain"})
    assert (r.status, r.body) == (200, b"ok"), r
    r = jsonp_send(port, url, '["d=1"]', headers={})
    assert (r.status, r.body) == (200, b"ok"), r
    got = []
    while len(got) < 3:
        got += jsonp_messages(get(port, url + "/jsonp?c=x"), "x")
    assert got == ["abc", "%61bc", "d=1"]


@pytest.mark.parametrize("body,message", [
    ("d=%5B%22a+b%22%5D", "a b"),                       # '+' is a space in a form
    ("d=%5B%22a%2Bb%22%5D", "a+b"),
    ("x=1&d=%5B%22q%22%5D&y=2", "q"),                    # other fields are ignored
    ("d=%5B%22%C3%A9%E2%82%AC%F0%9F%98%80%22%5D", "é€😀"),
    ("d=%5B%22%5Cu00e9%22%5D", "é"),
    ("d=[\"raw\"]", "raw"),
])
def test_form_decoding(port, body, message):
    url = new_session()
    assert get(port, url + "/jsonp?c=x").body == jsonp("o", "x")
    r = jsonp_send(port, url, body)
    assert (r.status, r.body) == (200, b"ok"), r
    assert jsonp_messages(get(port, url + "/jsonp?c=x"), "x") == [message]


def test_form_invalid_utf8(port):
    """Percent-decoding yields bytes; invalid UTF-8 among them is refused, not replaced."""
    url = new_session()
    assert get(port, url + "/jsonp?c=x").status == 200
    r = jsonp_send(port, url, "d=%5B%22%FF%22%5D")
    assert (r.status, r.body) == (500, b"Broken JSON encoding."), r


def test_plain_body_invalid_utf8(port):
    url = new_session()
    assert get(port, url + "/jsonp?c=x").status == 200
    r = jsonp_send(port, url, b'["\xff"]', headers={"Content-Type": "text/plain"})
    assert (r.status, r.body) == (500, b"Broken JSON encoding."), r


def test_form_with_charset_parameter(port):
    url = new_session()
    assert get(port, url + "/jsonp?c=x").status == 200
    r = jsonp_send(port, url, "d=%5B%22x%22%5D",
                   headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert (r.status, r.body) == (200, b"ok"), r
    assert get(port, url + "/jsonp?c=x").body == jsonp('a["x"]', "x")


def test_send_to_unknown_session_is_404(port):
    assert jsonp_send(port, new_session(), "d=%5B%22x%22%5D").status == 404


def test_over_max_message_is_413(small):
    url = new_session()
    assert get(small.port, url + "/jsonp?c=x").status == 200
    r = jsonp_send(small.port, url, json.dumps(["x" * 1100]),
                   headers={"Content-Type": "text/plain"})
    assert r.status == 413, r
    r = jsonp_send(small.port, url, "d=%5B%22ok%22%5D")
    assert (r.status, r.body) == (200, b"ok"), r
    assert get(small.port, url + "/jsonp?c=x").body == jsonp('a["ok"]', "x")


def test_close(port):
    url = new_session("/close")
    assert get(port, url + "/jsonp?c=x").body == jsonp("o", "x")
    for _ in range(3):
        r = get(port, url + "/jsonp?c=x")
        assert (r.status, r.body) == (200, jsonp(GO_AWAY, "x")), r


def test_second_receiver_gets_2010(port):
    url = new_session()
    assert get(port, url + "/jsonp?c=cb").body == jsonp("o")
    with Stream(port, "GET", url + "/jsonp?c=cb", read_head=False) as held:
        time.sleep(0.2)
        r = get(port, url + "/jsonp?c=other")
        assert r.body == jsonp(ANOTHER_CONNECTION, "other"), r
        assert jsonp_send(port, url, "d=%5B%22x%22%5D").status == 200
        assert held.read_head(timeout=5).status == 200
        assert held.read_to_end(timeout=5) == jsonp('a["x"]')
