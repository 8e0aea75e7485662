"""JSON escaping (sockjs-protocol 0.3.3: JSONEncoding). The server escapes the characters that
browsers or proxies mangle; it decodes whatever sockjs-client 1.x escapes. Our own vectors, sent
and received on every transport."""

import json
import re
import urllib.parse

import pytest

from sockjs_client import (
    CLIENT_ESCAPABLE,
    Receiver,
    get,
    messages_of,
    new_session,
    open_session,
    poll,
    post,
    sockjs_payload,
    sockjs_quote,
    ws_connect,
    ws_recv,
)

# What the contract says the server escapes as \uXXXX (besides `"` and `\`).
SERVER_ESCAPES = [
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0604), (0x070F, 0x070F),
    (0x17B4, 0x17B5), (0x200C, 0x200F), (0x2028, 0x202F), (0x2060, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF0, 0xFFFF),
]
MUST_ESCAPE = {chr(c) for lo, hi in SERVER_ESCAPES for c in range(lo, hi + 1)}
SHORT_ESCAPES = {"\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}

# One message with every character the server must escape, among characters it may send raw.
KILLER = "".join(f"{c}a" for c in sorted(MUST_ESCAPE)) + 'é中😀"\\/\u2027\u2030\ufefe'
# Sent with the characters raw (JSON escapes only what it must: `"`, `\`, U+0000-U+001F).
KILLER_PAYLOAD = json.dumps([KILLER], ensure_ascii=False)


def parse_json_string(literal: str) -> list[tuple[str, bool]]:
    """The characters of a JSON string literal, each with whether it was escaped; checks that
    the literal is well-formed."""
    assert literal[0] == literal[-1] == '"', literal[:50]
    out = []
    i, body = 0, literal[1:-1]
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                cp = int(body[i + 2: i + 6], 16)
                assert re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2: i + 6]), body[i: i + 6]
                i += 6
                if 0xD800 <= cp <= 0xDBFF and body[i: i + 2] == "\\u":
                    low = int(body[i + 2: i + 6], 16)
                    assert 0xDC00 <= low <= 0xDFFF, body[i - 6: i + 6]
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                out.append((chr(cp), True))
            else:
                out.append(({"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"',
                             "\\": "\\", "/": "/"}[nxt], True))
                i += 2
        else:
            assert ch not in ('"',) and ord(ch) >= 0x20, f"raw {ch!r} at {i}"
            out.append((ch, False))
            i += 1
    return out


def assert_server_escaped(literal: str, message: str):
    """`literal` (a JSON string from the server) decodes to `message`, with every character of
    the contract's list escaped."""
    chars = parse_json_string(literal)
    assert "".join(c for c, _ in chars) == message
    for c, escaped in chars:
        if c in MUST_ESCAPE:
            assert escaped, f"U+{ord(c):04X} sent raw"
    # The \uXXXX form, except JSON's short escapes for five control characters.
    for c in MUST_ESCAPE - set(SHORT_ESCAPES):
        assert c not in literal


def message_literal(frame: str) -> str:
    """The single string literal of an `a["..."]` frame."""
    assert frame.startswith('a["') and frame.endswith('"]'), frame[:80]
    return frame[2:-1]


def no_raw_must_escape(data: bytes):
    text = data.decode("utf-8")
    raw = sorted({f"U+{ord(c):04X}" for c in text if c in MUST_ESCAPE and c not in "\r\n"})
    assert not raw, f"raw characters in the response: {raw}"


# --- the server escapes


def test_xhr_server_escapes(port):
    url = open_session(port)
    r = post(port, url + "/xhr_send", body=KILLER_PAYLOAD)
    assert r.status == 204, r
    r = poll(port, url)
    assert r.status == 200 and r.body.endswith(b"\n"), r
    assert_server_escaped(message_literal(r.text[:-1]), KILLER)


def test_server_escapes_what_the_client_sent_escaped(port):
    url = open_session(port)
    r = post(port, url + "/xhr_send", body=json.dumps([KILLER], ensure_ascii=True))
    assert r.status == 204, r
    assert_server_escaped(message_literal(poll(port, url).text[:-1]), KILLER)


def test_websocket_server_escapes(port):
    ws = ws_connect(port, new_session() + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        ws.send(KILLER_PAYLOAD)
        assert_server_escaped(message_literal(ws_recv(ws)), KILLER)
    finally:
        ws.close()


@pytest.mark.parametrize("transport", ["xhr_streaming", "eventsource", "htmlfile"])
def test_streaming_server_escapes(port, transport):
    url = new_session()
    with Receiver(port, url, transport) as r:
        r.expect_frame("o")
        assert post(port, url + "/xhr_send", body=KILLER_PAYLOAD).status == 204
        before = len(r.raw)
        frame = r.next_frame()
        no_raw_must_escape(r.raw[before:])
        assert_server_escaped(message_literal(frame), KILLER)


def test_jsonp_server_escapes(port):
    url = new_session()
    assert get(port, url + "/jsonp?c=cb").status == 200
    assert post(port, url + "/xhr_send", body=KILLER_PAYLOAD).status == 204
    r = get(port, url + "/jsonp?c=cb")
    no_raw_must_escape(r.body)
    m = re.fullmatch(rb'/\*\*/cb\((".*")\);\r\n', r.body, re.S)
    assert m, r.body[:100]
    assert_server_escaped(message_literal(json.loads(m.group(1))), KILLER)


# --- the server decodes what sockjs-client escapes

VECTORS = {
    "ascii": "Hello, world! {}[]:,'`~",
    "quotes_and_backslashes": '"\\"\\\\/\\/',
    "controls": "".join(chr(c) for c in range(0x20)) + "\x7f",
    "combining": "a\u0300\u0301\u0333e\u0346\u034a",
    "client_escapable_bmp": "".join(
        chr(c) for c in range(0x80, 0x10000)
        if not 0xD800 <= c <= 0xDFFF and re.fullmatch(f"[{CLIENT_ESCAPABLE}]", chr(c))
    ),
    "astral": "\U0001F600 \U00010000 \U0010FFFF \U0001D11E",
    "noncharacters": "\ufffe\uffff\ufdd0\U0001FFFE",
    "line_separators": "\u2028\u2029\u0085",
    "bidi": "\u202a\u202e\u2066\u2069\u200e\u200f",
    "cjk_and_accents": "é中文字😀ü€",
    "empty": "",
    "long": "x" * 20000 + "\u2028" + "y" * 20000,
}


@pytest.mark.parametrize("name", list(VECTORS))
def test_xhr_send_decodes_client_escaping(port, name):
    message = VECTORS[name]
    url = open_session(port)
    r = post(port, url + "/xhr_send", body=sockjs_payload([message, "end"]))
    assert r.status == 204, r
    r = poll(port, url)
    assert messages_of(r.text[:-1]) == [message, "end"]


@pytest.mark.parametrize("name", list(VECTORS))
def test_websocket_decodes_client_escaping(port, name):
    message = VECTORS[name]
    ws = ws_connect(port, new_session() + "/websocket")
    try:
        assert ws_recv(ws) == "o"
        ws.send("[" + sockjs_quote(message) + "]")  # sockjs-client's websocket send
        assert messages_of(ws_recv(ws)) == [message]
        ws.send(sockjs_quote(message))  # a single string is a message too
        assert messages_of(ws_recv(ws)) == [message]
    finally:
        ws.close()


@pytest.mark.parametrize("name", list(VECTORS))
def test_jsonp_send_decodes_client_escaping(port, name):
    message = VECTORS[name]
    url = new_session()
    assert get(port, url + "/jsonp?c=cb").status == 200
    # A browser form posts the textarea `d` URL-encoded (UTF-8, space as '+').
    body = urllib.parse.urlencode({"d": sockjs_payload([message]).decode("utf-8")})
    r = post(port, url + "/jsonp_send", body=body,
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.body) == (200, b"ok"), r
    r = get(port, url + "/jsonp?c=cb")
    m = re.fullmatch(rb'/\*\*/cb\((".*")\);\r\n', r.body, re.S)
    assert m, r.body[:100]
    assert messages_of(json.loads(m.group(1))) == [message]


def test_uppercase_hex_escapes(port):
    url = open_session(port)
    r = post(port, url + "/xhr_send", body='["\\u00E9\\u00e9\\uD83D\\uDE00\\uFEFF"]')
    assert r.status == 204, r
    assert messages_of(poll(port, url).text[:-1]) == ["éé😀\ufeff"]


def test_sockjs_quote_matches_sockjs_client():
    """The vectors are built the way sockjs-client 1.x escapes: check a few by hand."""
    assert sockjs_quote("a\u0300") == '"a\\u0300"'
    assert sockjs_quote("\U0001F600") == '"\\ud83d\\ude00"'
    assert sockjs_quote("\n\x00") == '"\\n\\u0000"'
    assert sockjs_quote("é") == '"é"'
    assert sockjs_quote("\uffff") == '"\\uffff"'
