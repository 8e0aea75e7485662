//! The static parts of a SockJS endpoint (greeting, `/info`, `iframe.html`) and the headers
//! every transport shares: CORS, caching, the `JSESSIONID` cookie.

use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{method_not_allowed, Service};
use crate::endpoint::cookie;
use crate::origin::OriginPolicy;

/// A year, for what may be cached.
const ONE_YEAR: Duration = Duration::from_secs(31_536_000);
pub(crate) const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";
pub(crate) const JAVASCRIPT: &str = "application/javascript;charset=UTF-8";
pub(crate) const NO_CACHE: &str = "no-store, no-cache, must-revalidate, max-age=0";

/// `GET {prefix}` and `{prefix}/`.
pub(crate) fn greeting(method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET");
    }
    ([(header::CONTENT_TYPE, TEXT_PLAIN)], "Welcome to SockJS!\n").into_response()
}

/// `GET /info`: what the server supports; OPTIONS for CORS preflight.
pub(crate) fn info(service: &Service, request: &Request) -> Response {
    let headers = request.headers();
    if !service.core.origin_allowed(headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    if request.method() == Method::OPTIONS {
        return options(headers, "OPTIONS, GET");
    }
    if request.method() != Method::GET {
        return method_not_allowed("OPTIONS, GET");
    }
    let body = serde_json::json!({
        "websocket": service.options.websocket_enabled,
        "cookie_needed": service.options.session_cookie_needed,
        "origins": ["*:*"],
        "entropy": entropy(),
    });
    let mut response = (
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response();
    no_cache(response.headers_mut());
    cors(headers, response.headers_mut());
    response
}

/// A random number in 0..2^32 for the browser's random generator.
fn entropy() -> u32 {
    // Each `RandomState` is seeded afresh; its output is not predictable from outside.
    let hash = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
    // Truncation intended: any 32 bits of the hash.
    #[allow(clippy::cast_possible_truncation)]
    let value = hash as u32;
    value
}

/// `iframe.html`, rendered once per endpoint.
#[derive(Debug)]
pub(crate) struct Iframe {
    body: String,
    etag: HeaderValue,
}

impl Iframe {
    pub(crate) fn new(client_library_url: &str) -> Iframe {
        let url = html_attribute(client_library_url);
        let body = format!(
            "<!DOCTYPE html>\n\
             <html>\n\
             <head>\n  \
             <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
             <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  \
             <script>\n    \
             document.domain = document.domain;\n    \
             _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};\n  \
             </script>\n  \
             <script src=\"{url}\"></script>\n\
             </head>\n\
             <body>\n  \
             <h2>Don't panic!</h2>\n  \
             <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n\
             </body>\n\
             </html>\n"
        );
        // A stable digest of the content (SipHash with fixed keys): the same page always has
        // the same ETag, across restarts too.
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new();
        body.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Iframe { body, etag }
    }
}

/// `"`, `<`, `>`, `&` escaped for an attribute value.
fn html_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /iframe*.html`. Refused (404) where origins are restricted to a list, since a foreign
/// page could otherwise frame it; same-origin endpoints serve it with `X-Frame-Options`.
pub(crate) fn iframe(service: &Service, request: &Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return method_not_allowed("GET");
    }
    let frame_options = match service.core.origins {
        OriginPolicy::Any => None,
        OriginPolicy::SameOrigin => Some("SAMEORIGIN"),
        OriginPolicy::List(_) => {
            tracing::debug!(
                "iframe.html refused: iframe transports are off when origins are restricted"
            );
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let iframe = &service.iframe;
    let not_modified = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == iframe.etag || tag.trim() == "*");
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
            iframe.body.clone(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, iframe.etag.clone());
    cache_for_a_year(headers);
    if let Some(value) = frame_options {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static(value));
    }
    response
}

/// 204 for a CORS preflight of a transport or `/info`.
pub(crate) fn options(request: &HeaderMap, methods: &'static str) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, methods)
        .header(header::ACCESS_CONTROL_MAX_AGE, ONE_YEAR.as_secs())
        .body(Body::empty())
        .unwrap_or_default();
    cache_for_a_year(response.headers_mut());
    cors(request, response.headers_mut());
    response
}

fn cache_for_a_year(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    let expires = httpdate::fmt_http_date(SystemTime::now() + ONE_YEAR);
    if let Ok(value) = HeaderValue::from_str(&expires) {
        headers.insert(header::EXPIRES, value);
    }
}

/// Forbids caching (transports requested with GET, and POSTs that iOS 6 cached).
pub(crate) fn no_cache(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
}

/// CORS answer to the request's `Origin` (already checked against the endpoint's policy):
/// the origin itself with credentials, or `*` when there is none (or it is `null`, which
/// browsers would read as a refusal).
pub(crate) fn cors(request: &HeaderMap, headers: &mut HeaderMap) {
    match request.get(header::ORIGIN) {
        Some(origin) if origin != "null" => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        _ => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        if !requested.is_empty() {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
    }
}

/// `JSESSIONID=<the request's, or dummy>; Path=/` for load balancers with sticky sessions.
pub(crate) fn session_cookie(service: &Service, request: &HeaderMap, headers: &mut HeaderMap) {
    if !service.options.session_cookie_needed {
        return;
    }
    let value = cookie(request, "JSESSIONID").unwrap_or("dummy");
    if let Ok(value) = HeaderValue::from_str(&format!("JSESSIONID={value}; Path=/")) {
        headers.insert(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iframe_page_is_the_protocols_and_escapes_the_url() {
        let page = Iframe::new("/vendor/sockjs.min.js");
        assert!(page
            .body
            .starts_with("<!DOCTYPE html>\n<html>\n<head>\n  <meta"));
        assert!(page
            .body
            .contains("  <script src=\"/vendor/sockjs.min.js\"></script>\n</head>"));
        assert!(page
            .body
            .contains("_sockjs_onload = function(){SockJS.bootstrap_iframe();};"));
        assert_eq!(page.etag, Iframe::new("/vendor/sockjs.min.js").etag);
        assert_ne!(page.etag, Iframe::new("/other.js").etag);
        let hostile = Iframe::new("x\"></script><script>alert(1)</script>");
        assert!(!hostile.body.contains("<script>alert"));
    }

    #[test]
    fn entropy_varies() {
        let values: std::collections::HashSet<u32> = (0..16).map(|_| entropy()).collect();
        assert!(values.len() > 1);
    }
}
