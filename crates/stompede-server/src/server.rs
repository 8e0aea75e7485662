//! Assembles config, broker, handlers and endpoints into an axum [`Router`], and serves it with
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Extension, Router};
use stompede_broker::{Broker, MemoryBroker, MemoryConfig, Prefixes, SessionId};
use stompede_stomp::Limits;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::app::{Handlers, Messaging};
use crate::config::Config;
use crate::origin::OriginPolicy;
use crate::transport::WsConnection;
use crate::{chat, session};

/// WebSocket read buffer per session.
const READ_BUFFER: usize = 4 * 1024;

/// STOMP subprotocols, in the server's order of preference.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// What every session of one server shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) limits: Limits,
    pub(crate) prefixes: Prefixes,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) handlers: Handlers,
    pub(crate) messaging: Messaging,
    pub(crate) shutdown: CancellationToken,
    origins: OriginPolicy,
    sessions: TaskTracker,
    connections: Arc<Semaphore>,
    next_session: AtomicU64,
}

/// A stompede server: build it, take its [`Router`] (to serve yourself, merged into your own
/// application) or let it [`serve`](Stompede::serve) a listener.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use stompede_server::{Config, Stompede};
/// let server = Stompede::new(Config::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// server.serve(listener).await
/// # }
/// ```
#[derive(Clone)]
pub struct Stompede {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Stompede {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stompede")
            .field("sessions", &self.shared.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Stompede {
    /// A server on the embedded in-memory broker with the handlers the config enables (the
    /// chat demo by default).
    pub fn new(config: Config) -> Stompede {
        let broker = Arc::new(MemoryBroker::new(MemoryConfig {
            max_queue_len: config.broker.max_queue_len,
            max_queued_bytes: config.broker.max_queued_bytes,
            max_unacked: config.broker.max_unacked,
        }));
        let handlers = if config.chat.enabled {
            chat::handlers(config.chat.locale)
        } else {
            Handlers::new()
        };
        Stompede::with_broker(config, broker, handlers)
    }

    /// A server on `broker` with exactly `handlers`.
    pub fn with_broker(config: Config, broker: Arc<dyn Broker>, handlers: Handlers) -> Stompede {
        let limits = Limits {
            max_frame_len: config.stomp.max_frame_len,
            max_headers: config.stomp.max_headers,
            max_header_len: config.stomp.max_header_len,
        };
        let prefixes = config.prefixes();
        let messaging = Messaging::new(Arc::clone(&broker), prefixes.clone());
        let shared = Shared {
            limits,
            origins: OriginPolicy::from_config(&config.endpoint.allowed_origins),
            connections: Arc::new(Semaphore::new(config.server.max_connections)),
            prefixes,
            broker,
            handlers,
            messaging,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            next_session: AtomicU64::new(1),
            config,
        };
        Stompede {
            shared: Arc::new(shared),
        }
    }

    /// Adds application handlers (beside those already registered).
    ///
    /// # Panics
    /// If called after the router was taken or the server cloned (the handlers are shared).
    pub fn handlers(mut self, handlers: Handlers) -> Stompede {
        let shared = Arc::get_mut(&mut self.shared)
            .expect("add handlers before cloning the server or taking its router");
        shared.handlers = std::mem::take(&mut shared.handlers).merge(handlers);
        self
    }

    /// Publishes to broker destinations from anywhere in the application.
    pub fn messaging(&self) -> Messaging {
        self.shared.messaging.clone()
    }

    /// The token that starts a graceful shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    #[cfg(test)]
    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.len()
    }

    /// The server's routes: `{endpoint.path}/websocket` (raw WebSocket STOMP endpoint) and
    /// `/healthz`.
    pub fn router(&self) -> Router {
        let path = format!("{}/websocket", self.shared.config.endpoint.path);
        Router::new()
            .route(&path, get(websocket))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/", get(index))
            .with_state(Arc::clone(&self.shared))
    }

    /// Serves [`Stompede::router`] on `listener` until the shutdown token is cancelled, then
    /// stops accepting, lets sessions flush and close with 1001, and waits for them at most
    /// `shutdown.grace`.
    ///
    /// # Errors
    /// When accepting connections fails.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let token = self.shared.shutdown.clone();
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        // Sessions batch their writes and flush once per batch; Nagle's algorithm would only
        // hold small frames (receipts, heart-beats, chat lines) back behind delayed ACKs.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await?;
        self.shared.sessions.close();
        let grace = self.shared.config.shutdown.grace;
        if tokio::time::timeout(grace, self.shared.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.shared.sessions.len(),
                "grace period over, dropping sessions"
            );
        }
        Ok(())
    }
}

async fn index(State(shared): State<Arc<Shared>>) -> String {
    format!(
        "stompede {}\nSTOMP over WebSocket: ws://<this host>{}/websocket\n",
        env!("CARGO_PKG_VERSION"),
        shared.config.endpoint.path
    )
}

async fn websocket(
    State(shared): State<Arc<Shared>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let origin = headers.get(header::ORIGIN);
    if !shared.origins.allows(origin, headers.get(header::HOST)) {
        tracing::debug!(?origin, ?peer, "handshake refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
        tracing::warn!(
            limit = shared.config.server.max_connections,
            "handshake refused: connection limit"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let max_message = shared.config.endpoint.max_websocket_message;
    let upgrade = upgrade
        .protocols(SUBPROTOCOLS)
        // tungstenite zero-fills its read buffer up to this size on every read attempt, and a
        // session polls its socket each time it wakes to deliver: the 128 KiB default cost
        // 40-50% of the server's CPU in a 1 -> 1,000 fan-out (perf). It is also memory held
        // by every idle session.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(max_message)
        .max_frame_size(max_message);
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let id = SessionId(shared.next_session.fetch_add(1, Ordering::Relaxed));
    let span = tracing::info_span!("session", %id, transport = "websocket", protocol, peer = ?peer);
    upgrade.on_upgrade(move |socket| {
        let tracker = shared.sessions.clone();
        tracker.track_future(
            async move {
                session::run(WsConnection::new(socket), id, shared).await;
                drop(permit);
            }
            .instrument(span),
        )
    })
}
