//! Assembles config, broker, handlers and endpoints into an axum [`Router`], and serves it with
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use stompede_broker::{Broker, MemoryBroker, MemoryConfig, Prefixes};
use stompede_stomp::Limits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

use crate::app::{Handlers, Messaging};
use crate::config::Config;
use crate::endpoint::{self, EndpointCore, HandshakeInterceptor, Runtime};
use crate::handler::HandlerEndpoint;
use crate::origin::OriginPolicy;
use crate::sockjs::{self, SockJsOptions};
use crate::{chat, session};

/// STOMP subprotocols, in the server's order of preference.
const SUBPROTOCOLS: &[&str] = &["v12.stomp", "v11.stomp", "v10.stomp"];

/// What every session of one server shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) limits: Limits,
    pub(crate) prefixes: Prefixes,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) handlers: Handlers,
    pub(crate) messaging: Messaging,
    pub(crate) shutdown: CancellationToken,
    runtime: Runtime,
    interceptors: Vec<Arc<dyn HandshakeInterceptor>>,
    endpoints: Vec<(String, HandlerEndpoint)>,
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
            .field("sessions", &self.shared.runtime.sessions.len())
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
        let shutdown = CancellationToken::new();
        let shared = Shared {
            limits,
            runtime: Runtime::new(config.server.max_connections, shutdown.clone()),
            prefixes,
            broker,
            handlers,
            messaging,
            shutdown,
            interceptors: Vec::new(),
            endpoints: Vec::new(),
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
        let shared = self.shared_mut();
        shared.handlers = std::mem::take(&mut shared.handlers).merge(handlers);
        self
    }

    /// Adds a handshake interceptor to the STOMP endpoint (WebSocket and SockJS): it can refuse
    /// a handshake or attach attributes that application handlers see in
    /// [`AppRequest::attributes`](crate::app::AppRequest::attributes).
    ///
    /// # Panics
    /// As [`Stompede::handlers`].
    pub fn interceptor(mut self, interceptor: impl HandshakeInterceptor) -> Stompede {
        self.shared_mut().interceptors.push(Arc::new(interceptor));
        self
    }

    /// Serves a plain [`MessageHandler`](crate::handler::MessageHandler) endpoint at `path`
    /// beside STOMP, sharing the connection limit and graceful shutdown.
    ///
    /// # Panics
    /// As [`Stompede::handlers`].
    pub fn endpoint(mut self, path: &str, endpoint: HandlerEndpoint) -> Stompede {
        self.shared_mut()
            .endpoints
            .push((path.to_owned(), endpoint));
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared)
            .expect("configure the server before cloning it or taking its router")
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

    /// Number of open sessions (STOMP and plain handlers, every transport).
    pub fn session_count(&self) -> usize {
        self.shared.runtime.sessions.len()
    }

    /// The server's routes: the STOMP endpoint at `endpoint.path` (SockJS there, raw WebSocket
    /// at `{path}/websocket`), the handler endpoints, `/healthz`, and the files of `web.root`.
    ///
    /// # Panics
    /// Outside a Tokio runtime (SockJS endpoints start a task that expires idle sessions).
    pub fn router(&self) -> Router {
        let shared = &self.shared;
        let config = &shared.config;
        let stomp = Arc::clone(shared);
        let core = Arc::new(EndpointCore {
            origins: OriginPolicy::from_config(&config.endpoint.allowed_origins),
            interceptors: shared.interceptors.clone(),
            acceptor: Arc::new(move |conn, info| {
                Box::pin(session::run(
                    conn,
                    info.id,
                    info.attributes,
                    Arc::clone(&stomp),
                ))
            }),
            runtime: shared.runtime.clone(),
            max_message: config.endpoint.max_websocket_message,
            subprotocols: SUBPROTOCOLS,
        });
        let path = config.endpoint.path.as_str();
        let mut router = if config.sockjs.enabled {
            sockjs::router(path, SockJsOptions::from(&config.sockjs), core)
        } else {
            Router::new().route(
                &format!("{path}/websocket"),
                axum::routing::any(endpoint::raw_websocket).with_state(core),
            )
        };
        for (path, endpoint) in &shared.endpoints {
            let endpoint = endpoint.clone().with_runtime(shared.runtime.clone());
            router = router.merge(endpoint.router(path));
        }
        router = router
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/", get(index).with_state(Arc::clone(shared)));
        if !config.web.root.is_empty() {
            router = router.fallback_service(ServeDir::new(&config.web.root));
        }
        router
    }

    /// Serves [`Stompede::router`] on `listener` until the shutdown token is cancelled, then
    /// stops accepting, lets sessions flush and close with 1001, and waits for them at most
    /// `shutdown.grace`.
    ///
    /// # Errors
    /// When accepting connections fails.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.warn_about_missing_assets();
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
        let sessions = &self.shared.runtime.sessions;
        sessions.close();
        let grace = self.shared.config.shutdown.grace;
        if tokio::time::timeout(grace, sessions.wait()).await.is_err() {
            tracing::warn!(
                remaining = sessions.len(),
                "grace period over, dropping sessions"
            );
        }
        Ok(())
    }
}

impl Stompede {
    /// The iframe transports need `sockjs.min.js`; by default it is a file of `web.root`,
    /// which `scripts/build-web.sh` fills from npm.
    fn warn_about_missing_assets(&self) {
        let config = &self.shared.config;
        let url = &config.sockjs.client_library_url;
        if !config.sockjs.enabled || config.web.root.is_empty() || !url.starts_with('/') {
            return;
        }
        let file = std::path::Path::new(&config.web.root).join(url.trim_start_matches('/'));
        if !file.is_file() {
            tracing::warn!(
                file = %file.display(),
                "sockjs-client is missing: the SockJS iframe transports will fail until \
                 `bash scripts/build-web.sh` installs it (or sockjs.client_library_url points \
                 elsewhere)"
            );
        }
    }
}

async fn index(State(shared): State<Arc<Shared>>) -> String {
    format!(
        "stompede {}\nSTOMP over WebSocket: ws://<this host>{path}/websocket\n\
         STOMP over SockJS: http://<this host>{path}\n",
        env!("CARGO_PKG_VERSION"),
        path = shared.config.endpoint.path
    )
}
