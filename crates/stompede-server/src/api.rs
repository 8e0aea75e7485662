//! `POST /api/publish`: publishing for backends that do not speak STOMP.
//!
//! ```text
//! POST /api/publish
//! Authorization: Bearer <key from [api] keys>        (or X-Api-Key: <key>)
//! Content-Type: application/json
//!
//! {"destination": "/topic/news", "headers": {"content-type": "text/plain"}, "body": "hello"}
//! ```
//! answers `200 {"messageId": "..."}`. The destination is a topic, a queue or a user
//! destination (`/user/bob/queue/x`); never an application destination. Errors are JSON
//! `{"error": "..."}` with 400 (malformed request, bad destination or header), 401 (no or wrong
//! key), 413 (body over `stomp.max_frame_len`), 503 (a queue or the broker is full).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use stompede_broker::BrokerError;

use crate::app::SendError;
use crate::server::Shared;

/// Headers a publisher may not set: the server writes them on every MESSAGE.
const RESERVED: [&str; 8] = [
    "destination",
    "message-id",
    "subscription",
    "ack",
    "receipt",
    "transaction",
    "content-length",
    "redelivered",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    destination: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
}

/// The API's routes; 404 when no key is configured.
pub(crate) fn router(shared: &Arc<Shared>) -> Router {
    if shared.config.api.keys.is_empty() {
        return Router::new().route(
            "/api/publish",
            axum::routing::any(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "the publish API is off: no [api] keys configured",
                )
            }),
        );
    }
    // Room for the JSON around a body of the largest frame a client could send.
    let limit = shared.config.stomp.max_frame_len.saturating_mul(2);
    Router::new()
        .route("/api/publish", post(publish))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::clone(shared))
}

async fn publish(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&shared.config.api.keys, &headers) {
        let mut response = error(StatusCode::UNAUTHORIZED, "missing or invalid API key");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let request: PublishRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    if request.body.len() > shared.config.stomp.max_frame_len {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "body over stomp.max_frame_len ({} bytes)",
                shared.config.stomp.max_frame_len
            ),
        );
    }
    if request.headers.len() > shared.config.stomp.max_headers {
        return error(StatusCode::BAD_REQUEST, "too many headers");
    }
    let mut message_headers = Vec::with_capacity(request.headers.len());
    for (name, value) in request.headers {
        if let Err(reason) = check_header(&name, &value, shared.config.stomp.max_header_len) {
            return error(StatusCode::BAD_REQUEST, &reason);
        }
        message_headers.push((name, value));
    }
    match shared
        .messaging
        .send(&request.destination, message_headers, request.body)
    {
        Ok(id) => Json(serde_json::json!({ "messageId": id.as_str() })).into_response(),
        Err(SendError::Broker(
            e @ (BrokerError::QueueFull { .. } | BrokerError::BrokerFull { .. }),
        )) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

fn check_header(name: &str, value: &str, max_len: usize) -> Result<(), String> {
    if name.is_empty() || name.contains([':', '\r', '\n', '\0']) {
        return Err(format!("invalid header name {name:?}"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("header {name:?} is set by the server"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(format!(
            "header {name:?}: value contains a line break or NUL"
        ));
    }
    if name.len() + value.len() + 1 > max_len {
        return Err(format!("header {name:?} over stomp.max_header_len"));
    }
    Ok(())
}

/// Whether the request presents one of `keys`, compared in constant time.
fn authorized(keys: &[String], headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let Some(presented) = presented else {
        return false;
    };
    // Every key is compared, so timing does not tell which one nearly matched.
    keys.iter().fold(false, |found, key| {
        found | same(key.as_bytes(), presented.trim().as_bytes())
    })
}

/// Constant-time equality for equal lengths (a key's length is not secret enough to hide).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn keys_are_checked_from_either_header() {
        let keys = vec!["k".repeat(20), "second-key-0123456789".to_owned()];
        let mut headers = HeaderMap::new();
        assert!(!authorized(&keys, &headers));
        headers.insert(
            "x-api-key",
            HeaderValue::from_static("second-key-0123456789"),
        );
        assert!(authorized(&keys, &headers));
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", "k".repeat(20));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer).expect("ascii"),
        );
        assert!(authorized(&keys, &headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(!authorized(&keys, &headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic a2V5"),
        );
        assert!(!authorized(&keys, &headers));
    }

    #[test]
    fn headers_are_checked() {
        assert!(check_header("content-type", "text/plain", 100).is_ok());
        for (name, value) in [
            ("", "x"),
            ("a:b", "x"),
            ("a\nb", "x"),
            ("x", "a\nb"),
            ("x", "a\0b"),
            ("destination", "/topic/x"),
            ("message-id", "1"),
            ("x", &"v".repeat(200)),
        ] {
            assert!(
                check_header(name, value, 100).is_err(),
                "{name:?}: {value:?}"
            );
        }
    }
}
