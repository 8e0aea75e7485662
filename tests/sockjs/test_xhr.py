"""xhr polling and xhr_send (sockjs-protocol 0.3.3: Protocol, XhrPolling, HandlingClose), message
order and caching between polls, and the errors of xhr_send."""

import json
import time

import pytest

from sockjs_client import (
    ANOTHER_CONNECTION,
    INTERRUPTED,
    Stream,
    assert_cors,
    assert_not_cached,
    new_session,
    open_session,
    poll,
    poll_messages,
    post,
    send,
)


def test_transport(port):
    url = new_session()
    r = poll(port, url)
    assert (r.status, r.body) == (200, b"o\n"), r
    assert r.header("Content-Type") == "application/javascript;charset=UTF-8", r
    assert_cors(r)
    assert_not_cached(r)
    assert r.all("Set-Cookie") == [], r

    r = send(port, url, ["x"])
    assert (r.status, r.body) == (204, b""), r
    assert r.header("Content-Type") == "text/plain;charset=UTF-8", r
    assert_cors(r)
    assert_not_cached(r)
    assert r.all("Set-Cookie") == [], r

    r = poll(port, url)
    assert (r.status, r.body) == (200, b'a["x"]\n'), r


@pytest.mark.parametrize("origin", ["http://foo.example", "https://bar.example:8443", "null"])
def test_cors_with_origin(port, origin):
    url = new_session()
    r = poll(port, url, headers={"Origin": origin})
    assert (r.status, r.body) == (200, b"o\n"), r
    assert_cors(r, origin)
    r = send(port, url, ["x"], headers={"Origin": origin})
    assert r.status == 204, r
    assert_cors(r, origin)


def test_access_control_request_headers_echoed(port):
    r = poll(port, new_session(), headers={"Access-Control-Request-Headers": "a, b, c"})
    assert r.status == 200, r
    assert_cors(r)
    assert r.header("Access-Control-Allow-Headers") == "a, b, c", r

    r = poll(port, new_session(), headers={"Access-Control-Request-Headers": ""})
    assert r.status == 200, r
    assert r.header("Access-Control-Allow-Headers") is None, r

    r = poll(port, new_session())
    assert r.status == 200, r
    assert r.header("Access-Control-Allow-Headers") is None, r

    url = open_session(port)
    r = send(port, url, ["x"], headers={"Access-Control-Request-Headers": "x-custom"})
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Headers") == "x-custom", r


def test_send_to_unknown_session_is_404(port):
    assert send(port, new_session(), ["x"]).status == 404
    assert post(port, "/echo/000/bad_session/xhr_send", body='["x"]').status == 404


def test_messages_wait_between_polls_in_order(port):
    url = open_session(port)
    assert send(port, url, ["a", "b"]).status == 204
    assert send(port, url, ["c"]).status == 204
    assert send(port, url, []).status == 204
    assert send(port, url, ["d", "", "e"]).status == 204
    time.sleep(0.3)  # still there after a while
    # All of them in one frame, in order.
    r = poll(port, url)
    assert (r.status, r.body) == (200, b'a["a","b","c","d","","e"]\n'), r
    assert send(port, url, ["f"]).status == 204
    r = poll(port, url)
    assert (r.status, r.body) == (200, b'a["f"]\n'), r


def test_many_messages_keep_order(port):
    # 90: under the session's message cache (100 in Spring and in our default config).
    url = open_session(port)
    expected = [str(i) for i in range(90)]
    for i in range(0, 90, 30):
        assert send(port, url, expected[i:i + 30]).status == 204
    assert poll_messages(port, url, 90) == expected


def test_a_client_that_sends_without_polling_is_bounded(port):
    """A client that sends far more than it polls: the server holds a bounded number of
    messages (sends wait for room, backpressure), and a session with no receiving request is
    forgotten after the disconnect delay (the protocol's rule), so nothing grows without bound.
    Every send is answered; once the session is gone, every later send gets 404, not a flapping
    mix, and the next poll opens a fresh session."""
    url = open_session(port)
    statuses = [send(port, url, [str(j) for j in range(i, i + 10)]).status
                for i in range(0, 300, 10)]
    assert set(statuses) <= {204, 404}, statuses
    if 404 in statuses:
        first_gone = statuses.index(404)
        assert set(statuses[first_gone:]) == {404}, statuses
    r = poll(port, url)
    assert r.status == 200, r
    if 404 in statuses:
        assert r.body == b"o\n", r
    else:
        assert r.body.startswith((b"a[", b"c[")), r


def test_content_types_accepted(port):
    url = open_session(port)
    ctypes = ["text/plain", "T", "application/json", "application/xml", "",
              "application/json; charset=utf-8", "text/xml; charset=utf-8", "text/xml",
              "application/x-www-form-urlencoded"]
    for ct in ctypes:
        r = post(port, url + "/xhr_send", body='["a"]', headers={"Content-Type": ct})
        assert (r.status, r.body) == (204, b""), (ct, r)
    assert poll_messages(port, url, len(ctypes)) == ["a"] * len(ctypes)


def test_whitespace_around_json_accepted(port):
    url = open_session(port)
    r = post(port, url + "/xhr_send", body=' \r\n[ "a" ,\t"b" ]\n ')
    assert r.status == 204, r
    assert poll_messages(port, url, 2) == ["a", "b"]


def test_long_poll_returns_when_a_message_arrives(port):
    url = open_session(port)
    # A held poll sends its headers only with its frame: read them afterwards.
    with Stream(port, "POST", url + "/xhr", body=b"", read_head=False) as held:
        time.sleep(0.2)
        assert send(port, url, ["x"]).status == 204
        assert held.read_head(timeout=5).status == 200
        assert held.read_to_end(timeout=5) == b'a["x"]\n'


def test_second_receiver_gets_2010_and_first_stays(port):
    url = open_session(port)
    with Stream(port, "POST", url + "/xhr", body=b"", read_head=False) as first:
        time.sleep(0.2)  # the first poll is attached
        r = poll(port, url)
        assert (r.status, r.body) == (200, (ANOTHER_CONNECTION + "\n").encode()), r
        # The session and its first receiver are unharmed.
        assert send(port, url, ["x"]).status == 204
        assert first.read_head(timeout=5).status == 200
        assert first.read_to_end(timeout=5) == b'a["x"]\n'
    r = send(port, url, ["y"])
    assert r.status == 204, r
    assert poll(port, url).body == b'a["y"]\n'


@pytest.mark.parametrize("how", ["close", "reset"])
def test_aborted_poll_closes_session_with_1002(port, how):
    url = open_session(port)
    held = Stream(port, "POST", url + "/xhr", body=b"", read_head=False)
    time.sleep(0.2)
    held.abort() if how == "reset" else held.close()
    # The server notices the abort promptly; until it does, the old poll is still attached.
    deadline = time.monotonic() + 3
    while True:
        r = poll(port, url)
        if r.body != (ANOTHER_CONNECTION + "\n").encode() or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (r.status, r.body) == (200, (INTERRUPTED + "\n").encode()), r
    # A closed session answers every later receiver with its close frame.
    r = poll(port, url)
    assert (r.status, r.body) == (200, (INTERRUPTED + "\n").encode()), r


# --- xhr_send errors


def assert_500(r, text):
    assert r.status == 500, r
    assert r.body == text.encode(), r


def test_empty_payload(port):
    url = open_session(port)
    assert_500(post(port, url + "/xhr_send", body=""), "Payload expected.")
    assert send(port, url, ["ok"]).status == 204
    assert poll(port, url).body == b'a["ok"]\n'


NOT_AN_ARRAY_OF_STRINGS = [
    '["x', "[", "]", "x", '"a"', "null", "true", "1", "{}", '{"a":"b"}', "[1]", "[null]",
    "[true]", '[["a"]]', '["a",1]', '["a",["b"]]', '[{"a":"b"}]', '["a"]x', '["a"]["b"]',
    '["a",]', "[,]", "['a']", '["\\x"]', '["\\u12"]', '["a\nb"]', '["\t"]',
    "[" * 100_000, "[" * 10_000 + "]" * 10_000, '["' + "\\" + '"]',
]


@pytest.mark.parametrize("body", NOT_AN_ARRAY_OF_STRINGS,
                         ids=lambda b: repr(b[:20]) + (f"..{len(b)}" if len(b) > 20 else ""))
def test_not_an_array_of_strings(port, body):
    url = open_session(port)
    assert_500(post(port, url + "/xhr_send", body=body), "Broken JSON encoding.")
    # Nothing of the rejected batch is delivered; the session still works.
    assert send(port, url, ["ok"]).status == 204
    assert poll(port, url).body == b'a["ok"]\n'


@pytest.mark.parametrize("body", [b'["\xff"]', b'["\xc3"]', b'["\xed\xa0\x80"]', b'["a\x80b"]',
                                  b'["\xf4\x90\x80\x80"]', b'\xef["x"]', b'["\xc0\xaf"]'])
def test_invalid_utf8(port, body):
    url = open_session(port)
    assert_500(post(port, url + "/xhr_send", body=body), "Broken JSON encoding.")
    assert send(port, url, ["ok"]).status == 204
    assert poll(port, url).body == b'a["ok"]\n'


def test_lone_surrogate_escape_does_not_break_the_session(port):
    """A lone surrogate (`"\\ud800"`) is valid JSON but no Unicode string: either refusal or
    replacement is fine, but the session must go on."""
    url = open_session(port)
    r = post(port, url + "/xhr_send", body='["\\ud800"]')
    assert r.status in (204, 500), r
    assert send(port, url, ["ok"]).status == 204
    frame = poll(port, url).body
    assert frame.endswith(b'"ok"]\n'), frame


def test_over_max_message_is_413_and_session_works(small):
    port = small.port  # --max-message 1024
    url = open_session(port)
    body = json.dumps(["x" * 1021])
    assert len(body) == 1025  # one byte over
    r = post(port, url + "/xhr_send", body=body)
    assert r.status == 413, r
    body = json.dumps(["x" * 1020])
    assert len(body) == 1024  # exactly the limit: allowed
    r = post(port, url + "/xhr_send", body=body)
    assert r.status == 204, r
    assert send(port, url, ["ok"]).status == 204
    assert poll_messages(port, url, 2) == ["x" * 1020, "ok"]


def test_sessions_are_independent(port):
    a, b = open_session(port), open_session(port)
    assert send(port, a, ["for a"]).status == 204
    assert send(port, b, ["for b"]).status == 204
    assert poll(port, a).body == b'a["for a"]\n'
    assert poll(port, b).body == b'a["for b"]\n'
