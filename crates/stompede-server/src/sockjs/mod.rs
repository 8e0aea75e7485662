//! The SockJS protocol 0.3.3 (what `sockjs-client` 1.x speaks), server side: the greeting,
//! `/info`, `iframe.html`, and every transport — `websocket`, `xhr` + `xhr_send`,
//! `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp` + `jsonp_send` — under any prefix, plus
//! the raw WebSocket at `{prefix}/websocket`. Sessions outlive the requests that carry them
//! (module `session`); the application sees each one as a [`SockJsConnection`], exactly like a raw
//! WebSocket.

mod frame;
mod pages;
mod session;
mod transport;

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};

use session::Registry;
pub use session::SockJsConnection;

use crate::config::SockJsConfig;
use crate::endpoint::EndpointCore;

/// Per-endpoint SockJS options; [`SockJsOptions::default`] has Spring's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockJsOptions {
    /// Offer the `websocket` transport (and the raw `{prefix}/websocket`).
    pub websocket_enabled: bool,
    /// Report `cookie_needed` and set `JSESSIONID` on HTTP transports.
    pub session_cookie_needed: bool,
    /// Heartbeat frame after this long without other frames.
    pub heartbeat: Duration,
    /// Close a session that had no receiving request for this long.
    pub disconnect_delay: Duration,
    /// Bytes of frames on one streaming response before it ends.
    pub stream_bytes_limit: usize,
    /// Messages held for the client between polls before the sender waits.
    pub http_message_cache_size: usize,
    /// `sockjs.min.js` for `iframe.html`.
    pub client_library_url: String,
}

impl Default for SockJsOptions {
    fn default() -> Self {
        SockJsOptions::from(&SockJsConfig::default())
    }
}

impl From<&SockJsConfig> for SockJsOptions {
    fn from(config: &SockJsConfig) -> Self {
        SockJsOptions {
            websocket_enabled: config.websocket_enabled,
            session_cookie_needed: config.session_cookie_needed,
            heartbeat: config.heartbeat,
            disconnect_delay: config.disconnect_delay,
            stream_bytes_limit: config.stream_bytes_limit,
            http_message_cache_size: config.http_message_cache_size.max(1),
            client_library_url: config.client_library_url.clone(),
        }
    }
}

/// One SockJS endpoint.
#[derive(Debug)]
pub(crate) struct Service {
    prefix: String,
    options: SockJsOptions,
    iframe: pages::Iframe,
    registry: Registry,
    core: Arc<EndpointCore>,
}

/// Routes for a SockJS endpoint at `prefix` (no trailing slash), running sessions with `core`.
/// Starts the task that expires idle sessions; it ends with the server's shutdown.
pub(crate) fn router(prefix: &str, options: SockJsOptions, core: Arc<EndpointCore>) -> Router {
    let service = Arc::new(Service {
        prefix: prefix.to_owned(),
        iframe: pages::Iframe::new(&options.client_library_url),
        options,
        registry: Registry::default(),
        core,
    });
    tokio::spawn(sweep(Arc::downgrade(&service)));
    Router::new()
        .route(prefix, any(handle))
        .route(&format!("{prefix}/"), any(handle))
        .route(&format!("{prefix}/{{*rest}}"), any(handle))
        .with_state(service)
}

/// Expires sessions without a receiver for the disconnect delay; at shutdown, closes them all
/// so that their applications end. Ends with the server, or when the router is dropped.
async fn sweep(service: Weak<Service>) {
    let Some((delay, shutdown)) = service.upgrade().map(|service| {
        (
            service.options.disconnect_delay,
            service.core.runtime.shutdown.clone(),
        )
    }) else {
        return;
    };
    let mut tick = tokio::time::interval((delay / 2).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let Some(service) = service.upgrade() else {
                    return;
                };
                let expired = service.registry.sweep(delay);
                if expired > 0 {
                    tracing::debug!(expired, open = service.registry.len(), "SockJS sessions expired");
                }
            }
        }
    }
    if let Some(service) = service.upgrade() {
        service.registry.close_all(1001, "server shutting down");
    }
}

/// What a path under the prefix names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Greeting,
    Info,
    Iframe,
    RawWebSocket,
    Session {
        session: &'a str,
        transport: &'a str,
    },
    NotFound,
}

/// Longest server or session id segment.
const MAX_ID_LEN: usize = 256;

fn route(rest: &str) -> Route<'_> {
    match rest {
        "" | "/" => return Route::Greeting,
        "/info" => return Route::Info,
        "/websocket" => return Route::RawWebSocket,
        _ => {}
    }
    if let Some(name) = rest.strip_prefix("/iframe") {
        let valid = name.strip_suffix(".html").is_some_and(|version| {
            version
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"-._".contains(&b))
        });
        return if valid {
            Route::Iframe
        } else {
            Route::NotFound
        };
    }
    let mut parts = rest.strip_prefix('/').unwrap_or("").split('/');
    let (Some(server), Some(session), Some(transport), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::NotFound;
    };
    let id_ok = |s: &str| !s.is_empty() && s.len() <= MAX_ID_LEN && !s.contains('.');
    if !id_ok(server) || !id_ok(session) || transport.is_empty() {
        return Route::NotFound;
    }
    Route::Session { session, transport }
}

async fn handle(
    State(service): State<Arc<Service>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(service.prefix.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match route(rest) {
        Route::Greeting => pages::greeting(request.method()),
        Route::Info => pages::info(&service, &request),
        Route::Iframe => pages::iframe(&service, &request),
        Route::RawWebSocket => {
            if !service.options.websocket_enabled {
                return StatusCode::NOT_FOUND.into_response();
            }
            let (mut parts, _body) = request.into_parts();
            let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
            service
                .core
                .raw_websocket(&parts.method, &parts.uri, &parts.headers, peer, upgrade)
        }
        Route::Session { session, transport } => {
            let session = session.to_owned();
            let transport = transport.to_owned();
            transport::handle(&service, &session, &transport, peer, request).await
        }
        Route::NotFound => StatusCode::NOT_FOUND.into_response(),
    }
}

/// 405 with `Allow` and no body, as the protocol asks.
fn method_not_allowed(allow: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::METHOD_NOT_ALLOWED)
        .header(axum::http::header::ALLOW, allow)
        .body(Body::empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(""), Route::Greeting);
        assert_eq!(route("/"), Route::Greeting);
        assert_eq!(route("/info"), Route::Info);
        assert_eq!(route("/websocket"), Route::RawWebSocket);
        for iframe in [
            "/iframe.html",
            "/iframe-a.html",
            "/iframe-.html",
            "/iframe-0.1.2.html",
            "/iframe-0.1.2abc-dirty.2144.html",
        ] {
            assert_eq!(route(iframe), Route::Iframe, "{iframe}");
        }
        for not_found in [
            "/a",
            "/a.html",
            "//",
            "///",
            "/a/a",
            "/a/a/",
            "/iframe.htm",
            "/iframe",
            "/IFRAME.HTML",
            "/iframe.HTML",
            "/iframe.xml",
            "/iframe-/.html",
            "/a./a/xhr",
            "/a/a./xhr",
            "/./././xhr",
            "//xhr",
            "///xhr",
            "/a/a/a/xhr",
            "/a//xhr",
        ] {
            assert_eq!(route(not_found), Route::NotFound, "{not_found}");
        }
        assert_eq!(
            route("/000/abc_d-e%20/xhr"),
            Route::Session {
                session: "abc_d-e%20",
                transport: "xhr"
            }
        );
        let long = format!("/000/{}/xhr", "s".repeat(MAX_ID_LEN + 1));
        assert_eq!(route(&long), Route::NotFound);
    }
}
