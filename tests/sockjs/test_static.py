"""The greeting, /info and the iframe page (sockjs-protocol 0.3.3: BaseUrlGreeting, InfoTest,
IframePage)."""

import json

import pytest

from sockjs_client import (
    IFRAME_PAGE,
    assert_cors,
    assert_not_cached,
    assert_options,
    get,
    options,
    request,
)

PREFIXES = ["/echo", "/close", "/disabled_websocket_echo", "/cookie_needed_echo", "/amplify",
            "/broadcast"]


# --- greeting


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("slash", ["", "/"])
def test_greeting(port, prefix, slash):
    r = get(port, prefix + slash)
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/plain;charset=UTF-8", r
    assert r.body == b"Welcome to SockJS!\n"
    assert r.all("Set-Cookie") == [], r


@pytest.mark.parametrize("suffix", ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/",
                                    "/a/a/a/a", "/info/x", "/iframe.html/x"])
def test_other_paths_are_404(port, suffix):
    assert get(port, "/echo" + suffix).status == 404


def test_unknown_prefix_is_404(port):
    assert get(port, "/nope").status == 404
    assert get(port, "/nope/info").status == 404


# --- /info


@pytest.mark.parametrize("prefix,websocket,cookie_needed", [
    ("/echo", True, False),
    ("/close", True, False),
    ("/amplify", True, False),
    ("/broadcast", True, False),
    ("/disabled_websocket_echo", False, False),
    ("/cookie_needed_echo", True, True),
])
def test_info(port, prefix, websocket, cookie_needed):
    r = get(port, prefix + "/info")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json;charset=UTF-8", r
    assert_not_cached(r)
    assert_cors(r)
    assert r.all("Set-Cookie") == [], r
    data = json.loads(r.body)
    assert set(data) == {"entropy", "origins", "cookie_needed", "websocket"}, data
    assert data["websocket"] is websocket
    assert data["cookie_needed"] is cookie_needed
    assert data["origins"] == ["*:*"]
    assert isinstance(data["entropy"], int) and 0 <= data["entropy"] <= 2**32 - 1, data


def test_info_cors_echoes_origin(port):
    r = get(port, "/echo/info", headers={"Origin": "http://foo.example"})
    assert_cors(r, "http://foo.example")
    r = get(port, "/echo/info", headers={"Origin": "null"})
    assert_cors(r, "null")


def test_info_entropy_differs(port):
    values = {json.loads(get(port, "/echo/info").body)["entropy"] for _ in range(5)}
    assert len(values) == 5, values


def test_info_options(port):
    assert_options(port, "/echo/info", "OPTIONS, GET")


def test_info_options_null_origin_gets_star(port):
    r = options(port, "/echo/info", headers={"Origin": "null"})
    assert r.status == 204, r
    assert r.body == b""
    assert r.header("Access-Control-Allow-Origin") == "*", r


def test_info_options_echoes_request_headers(port):
    r = options(port, "/echo/info", headers={"Origin": "http://a.example",
                                              "Access-Control-Request-Headers": "x-a, x-b"})
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Headers") == "x-a, x-b", r


def test_info_wrong_method(port):
    r = request(port, "DELETE", "/echo/info")
    assert r.status in (404, 405), r


# --- iframe


def assert_iframe(r, url="/vendor/sockjs.min.js"):
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/html;charset=UTF-8", r
    assert r.header("Cache-Control") == "public, max-age=31536000", r
    assert r.header("Expires"), r
    assert r.header("ETag"), r
    assert r.header("Last-Modified") is None, r
    assert r.all("Set-Cookie") == [], r
    assert r.text.strip() == IFRAME_PAGE.replace("{url}", url), r.text


@pytest.mark.parametrize("name", ["iframe.html", "iframe-a.html", "iframe-.html",
                                  "iframe-0.1.2.html", "iframe-0.1.2abc-dirty.2144.html",
                                  "iframe1.6.1.html", "iframe_x.html"])
def test_iframe(port, name):
    assert_iframe(get(port, "/echo/" + name))


@pytest.mark.parametrize("query", ["iframe-a.html?t=1234", "iframe-0.1.2.html?t=123414",
                                   "iframe-0.1.2abc-dirty.2144.html?t=qweqweq123"])
def test_iframe_with_query(port, query):
    assert_iframe(get(port, "/echo/" + query))


def test_iframe_on_cookie_needed_has_no_cookie(port):
    assert_iframe(get(port, "/cookie_needed_echo/iframe.html"))


@pytest.mark.parametrize("name", ["iframe.htm", "iframe", "IFRAME.HTML", "IFRAME", "iframe.HTML",
                                  "iframe.xml", "iframe-/.html", "iframe-A.html", "iframe%20.html",
                                  "iframe+.html", "xiframe.html"])
def test_iframe_invalid_names(port, name):
    assert get(port, "/echo/" + name).status == 404


def test_iframe_etag_and_304(port):
    r1 = get(port, "/echo/iframe.html")
    r2 = get(port, "/echo/iframe-1.2.3.html")
    etag = r1.header("ETag")
    assert etag and etag == r2.header("ETag"), (r1, r2)
    r = get(port, "/echo/iframe.html", headers={"If-None-Match": etag})
    assert r.status == 304, r
    assert r.body == b"", r
    assert r.header("Content-Type") is None, r
    r = get(port, "/echo/iframe.html", headers={"If-None-Match": '"something-else"'})
    assert_iframe(r)


def test_iframe_client_library_url_flag(small):
    assert_iframe(get(small.port, "/echo/iframe.html"),
                  url="https://cdn.example/sockjs-1.6.1.js")

