"""Session URLs `{prefix}/{server}/{session}/{transport}` (sockjs-protocol 0.3.3: SessionURLs)
and the method rules of each transport."""

import uuid

import pytest

from sockjs_client import assert_cors, get, options, poll, post, request, send

# Each transport and the one method it answers (besides OPTIONS where allowed).
TRANSPORT_METHODS = {
    "xhr": "POST",
    "xhr_send": "POST",
    "xhr_streaming": "POST",
    "eventsource": "GET",
    "htmlfile": "GET",
    "jsonp": "GET",
    "jsonp_send": "POST",
    "websocket": "GET",
}


@pytest.mark.parametrize("session_part", ["/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20",
                                          "/0/" + "s" * 256, "/" + "s" * 256 + "/0"])
def test_any_server_and_session_value(port, session_part):
    r = poll(port, "/echo" + session_part)
    assert (r.status, r.body) == (200, b"o\n"), r


@pytest.mark.parametrize("session_part", ["//", "/a./a", "/a/a.", "/./.", "/", "///", "/a", "/a/",
                                          "//a", "/a/b/c", "/../a"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_invalid_session_paths_are_404(port, session_part, method):
    r = request(port, method, "/echo" + session_part + "/xhr")
    assert r.status == 404, r


@pytest.mark.parametrize("transport", ["xhr", "xhr_send", "xhr_streaming", "eventsource",
                                       "htmlfile", "jsonp", "jsonp_send", "websocket"])
@pytest.mark.parametrize("session_part", ["/0/" + "s" * 257, "/" + "s" * 257 + "/0",
                                          "/0/" + "s" * 4096])
def test_overlong_ids_are_404(port, transport, session_part):
    method = TRANSPORT_METHODS[transport]
    r = request(port, method, f"/echo{session_part}/{transport}?c=cb",
                body=b'["x"]' if method == "POST" else None)
    assert r.status == 404, r


@pytest.mark.parametrize("transport", ["nope", "xhr_sendx", "XHR", "xhr/", "websocket/",
                                       "jsonp.js", ""])
def test_unknown_transport_is_404(port, transport):
    url = f"/echo/000/{uuid.uuid4()}/{transport}"
    assert get(port, url).status == 404
    assert post(port, url).status == 404


def test_server_id_is_ignored(port):
    session = str(uuid.uuid4())
    r = poll(port, f"/echo/000/{session}")
    assert (r.status, r.body) == (200, b"o\n"), r
    r = send(port, f"/echo/000/{session}", ["a"])
    assert (r.status, r.body) == (204, b""), r
    r = poll(port, f"/echo/999/{session}")
    assert (r.status, r.body) == (200, b'a["a"]\n'), r


@pytest.mark.parametrize("transport,method", [
    (transport, method)
    for transport, own in TRANSPORT_METHODS.items()
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"]
    if method != own
])
def test_wrong_method_is_405(port, transport, method):
    r = request(port, method, f"/echo/000/{uuid.uuid4()}/{transport}?c=cb",
                body=b"" if method != "GET" else None)
    assert r.status == 405, r
    allow = r.header("Allow")
    assert allow and TRANSPORT_METHODS[transport] in [m.strip() for m in allow.split(",")], r
    assert r.body == b"", r
    assert r.header("Content-Type") is None, r


@pytest.mark.parametrize("transport", ["xhr", "xhr_send", "xhr_streaming"])
def test_options_on_transports(port, transport):
    for origin in [None, "test", "null", "http://foo.example"]:
        r = options(port, f"/echo/abc/abc/{transport}",
                    headers={"Origin": origin} if origin else {})
        assert r.status == 204, r
        assert r.body == b"", r
        assert r.header("Cache-Control") == "public, max-age=31536000", r
        assert r.header("Expires"), r
        assert r.header("Access-Control-Max-Age") == "31536000", r
        assert r.header("Access-Control-Allow-Methods") == "OPTIONS, POST", r
        assert_cors(r, origin)


@pytest.mark.parametrize("transport", ["xhr", "xhr_send", "xhr_streaming"])
def test_options_echoes_request_headers(port, transport):
    r = options(port, f"/echo/abc/abc/{transport}",
                headers={"Origin": "http://foo.example",
                         "Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "content-type, x-requested-with"})
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Headers") == "content-type, x-requested-with", r
