//! What every endpoint shares, whatever runs behind it (STOMP or a plain message handler) and
//! whichever transport a client uses: the handshake (allowed origins, handshake interceptors,
//! the connection limit), session ids, and tracked session tasks for graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::future::BoxFuture;
use stompede_broker::SessionId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::origin::OriginPolicy;
use crate::transport::{AnyConnection, WsConnection};

/// WebSocket read buffer per session. tungstenite zero-fills its read buffer up to this size
/// on every read attempt, and a session polls its socket each time it wakes to deliver: the
/// 128 KiB default cost 40-50% of the server's CPU in a 1 -> 1,000 fan-out (perf). It is also
/// memory held by every idle session.
const READ_BUFFER: usize = 4 * 1024;

/// Values a handshake interceptor attaches to a session (a user, cookies, headers), typed.
pub type Attributes = axum::http::Extensions;

/// The HTTP request that opens a session: the WebSocket upgrade, or the SockJS request that
/// creates the session.
#[derive(Debug)]
pub struct HandshakeRequest<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request URI.
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The client's address, when the server knows it.
    pub peer: Option<SocketAddr>,
    /// `websocket` (raw) or the SockJS transport (`xhr_streaming`, `websocket-sockjs`, ...).
    pub transport: &'static str,
}

impl<'a> HandshakeRequest<'a> {
    /// The value of cookie `name`, if the request carries it.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        cookie(self.headers, name)
    }
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A refused handshake: the HTTP status and a reason for the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status of the refusal, e.g. 401 or 403.
    pub status: StatusCode,
    /// Text for the response body (and the log).
    pub reason: String,
}

impl Rejection {
    /// A refusal with `status`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Rejection {
        Rejection {
            status,
            reason: reason.into(),
        }
    }

    /// 401 Unauthorized.
    pub fn unauthorized(reason: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::UNAUTHORIZED, reason)
    }

    /// 403 Forbidden.
    pub fn forbidden(reason: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::FORBIDDEN, reason)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.reason)).into_response()
    }
}

/// Runs before a session opens (Spring's `HandshakeInterceptor`): refuses the handshake, or
/// attaches attributes the session sees later. Interceptors run in the order they were added;
/// the first refusal wins.
pub trait HandshakeInterceptor: Send + Sync + 'static {
    /// Inspects the request; returns `Err` to refuse it.
    ///
    /// # Errors
    /// The [`Rejection`] sent to the client instead of opening a session.
    fn before_handshake(
        &self,
        request: &HandshakeRequest<'_>,
        attributes: &mut Attributes,
    ) -> Result<(), Rejection>;
}

impl<F> HandshakeInterceptor for F
where
    F: Fn(&HandshakeRequest<'_>, &mut Attributes) -> Result<(), Rejection> + Send + Sync + 'static,
{
    fn before_handshake(
        &self,
        request: &HandshakeRequest<'_>,
        attributes: &mut Attributes,
    ) -> Result<(), Rejection> {
        self(request, attributes)
    }
}

/// Who a session is: what the application may know about it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Server-assigned id, unique in this process.
    pub id: SessionId,
    /// `websocket` for a raw WebSocket, else the SockJS transport that opened the session.
    pub transport: &'static str,
    /// The client's address, when known.
    pub peer: Option<SocketAddr>,
    /// What the handshake interceptors attached.
    pub attributes: Arc<Attributes>,
}

/// Runs one session to its end.
pub(crate) type Acceptor =
    Arc<dyn Fn(AnyConnection, SessionInfo) -> BoxFuture<'static, ()> + Send + Sync>;

/// Session bookkeeping shared by every endpoint of one server.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    pub(crate) sessions: TaskTracker,
    pub(crate) shutdown: CancellationToken,
    connections: Arc<Semaphore>,
    max_connections: usize,
    next_session: Arc<AtomicU64>,
}

impl Runtime {
    pub(crate) fn new(max_connections: usize, shutdown: CancellationToken) -> Runtime {
        Runtime {
            sessions: TaskTracker::new(),
            shutdown,
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            next_session: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// Why a handshake did not pass [`EndpointCore::admit`].
#[derive(Debug)]
pub(crate) enum Refusal {
    /// 503: shutting down, or the connection limit.
    Unavailable(&'static str),
    /// An interceptor refused.
    Rejected(Rejection),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unavailable(text) => (StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
            Refusal::Rejected(rejection) => rejection.into_response(),
        }
    }
}

/// A handshake that passed: the session may start.
#[derive(Debug)]
pub(crate) struct Admission {
    permit: OwnedSemaphorePermit,
    attributes: Attributes,
    peer: Option<SocketAddr>,
    transport: &'static str,
}

/// One endpoint: its origin policy, interceptors and what runs its sessions.
pub(crate) struct EndpointCore {
    pub(crate) origins: OriginPolicy,
    pub(crate) interceptors: Vec<Arc<dyn HandshakeInterceptor>>,
    pub(crate) acceptor: Acceptor,
    pub(crate) runtime: Runtime,
    /// Largest message a client may send, in bytes.
    pub(crate) max_message: usize,
    /// WebSocket subprotocols offered, in order of preference.
    pub(crate) subprotocols: &'static [&'static str],
}

impl std::fmt::Debug for EndpointCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointCore")
            .field("origins", &self.origins)
            .field("interceptors", &self.interceptors.len())
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

impl EndpointCore {
    /// Whether the request's `Origin` may use this endpoint.
    pub(crate) fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        self.origins
            .allows(headers.get(header::ORIGIN), headers.get(header::HOST))
    }

    /// The checks before a session opens: shutdown, interceptors, the connection limit. The
    /// origin is checked by the caller (SockJS checks it on every request, not only this one).
    pub(crate) fn admit(&self, request: &HandshakeRequest<'_>) -> Result<Admission, Refusal> {
        if self.runtime.shutdown.is_cancelled() {
            return Err(Refusal::Unavailable("shutting down\n"));
        }
        let mut attributes = Attributes::new();
        for interceptor in &self.interceptors {
            if let Err(rejection) = interceptor.before_handshake(request, &mut attributes) {
                tracing::debug!(
                    status = %rejection.status,
                    reason = %rejection.reason,
                    peer = ?request.peer,
                    "handshake refused by an interceptor"
                );
                return Err(Refusal::Rejected(rejection));
            }
        }
        let Ok(permit) = Arc::clone(&self.runtime.connections).try_acquire_owned() else {
            tracing::warn!(
                limit = self.runtime.max_connections,
                "handshake refused: connection limit"
            );
            return Err(Refusal::Unavailable("too many connections\n"));
        };
        Ok(Admission {
            permit,
            attributes,
            peer: request.peer,
            transport: request.transport,
        })
    }

    /// Starts the session on `conn` as a tracked task, holding the connection permit until
    /// it ends.
    pub(crate) fn start(&self, admission: Admission, conn: AnyConnection, protocol: &str) {
        let id = SessionId(self.runtime.next_session.fetch_add(1, Ordering::Relaxed));
        let Admission {
            permit,
            attributes,
            peer,
            transport,
        } = admission;
        let span = tracing::info_span!("session", %id, transport, protocol, peer = ?peer);
        let info = SessionInfo {
            id,
            transport,
            peer,
            attributes: Arc::new(attributes),
        };
        let session = (self.acceptor)(conn, info);
        self.runtime.sessions.spawn(
            async move {
                session.await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// A raw WebSocket handshake: origin, admission, then the upgrade.
    pub(crate) fn raw_websocket(
        self: &Arc<Self>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    ) -> Response {
        if !self.origin_allowed(headers) {
            tracing::debug!(origin = ?headers.get(header::ORIGIN), ?peer, "handshake refused: origin not allowed");
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        }
        let upgrade = match upgrade {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        let request = HandshakeRequest {
            method,
            uri,
            headers,
            peer,
            transport: "websocket",
        };
        let admission = match self.admit(&request) {
            Ok(admission) => admission,
            Err(refusal) => return refusal.into_response(),
        };
        let upgrade = self
            .configure(upgrade)
            .protocols(self.subprotocols.iter().copied());
        let protocol = upgrade
            .selected_protocol()
            .and_then(|p| p.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let core = Arc::clone(self);
        upgrade.on_upgrade(move |socket| async move {
            let conn = AnyConnection::WebSocket(WsConnection::new(socket));
            core.start(admission, conn, &protocol);
        })
    }

    /// Buffer and size limits of every WebSocket of this endpoint.
    pub(crate) fn configure(&self, upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
        upgrade
            .read_buffer_size(READ_BUFFER)
            .max_message_size(self.max_message)
            .max_frame_size(self.max_message)
    }
}

/// Route handler for a raw WebSocket endpoint.
pub(crate) async fn raw_websocket(
    State(core): State<Arc<EndpointCore>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let (mut parts, _body) = request.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
    core.raw_websocket(&parts.method, &parts.uri, &parts.headers, peer, upgrade)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; JSESSIONID=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "JSESSIONID"), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(cookie(&HeaderMap::new(), "a"), None);
    }
}
