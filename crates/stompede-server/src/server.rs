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
use crate::auth::{AuthService, Authenticator};
use crate::authz::Authorizer;
use crate::config::Config;
use crate::endpoint::{
    self, Attributes, EndpointCore, HandshakeInterceptor, HandshakeRequest, Rejection, Runtime,
};
use crate::events::{Listeners, SessionEvents};
use crate::handler::HandlerEndpoint;
use crate::origin::OriginPolicy;
use crate::session::HandshakeToken;
use crate::sockjs::{self, SockJsOptions};
use crate::user::UserRegistry;
use crate::{api, chat, session};

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
    pub(crate) users: Arc<UserRegistry>,
    pub(crate) auth: AuthService,
    pub(crate) authz: Authorizer,
    pub(crate) listeners: Listeners,
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
        let chat = config
            .chat
            .enabled
            .then(|| chat::Chat::new(config.chat.locale));
        let mut server = Stompede::with_broker(config, broker, Handlers::new());
        if let Some(chat) = chat {
            server = server.handlers(chat.handlers()).events(chat);
        }
        server
    }

    /// A server on `broker` with exactly `handlers`.
    pub fn with_broker(config: Config, broker: Arc<dyn Broker>, handlers: Handlers) -> Stompede {
        let limits = Limits {
            max_frame_len: config.stomp.max_frame_len,
            max_headers: config.stomp.max_headers,
            max_header_len: config.stomp.max_header_len,
        };
        let prefixes = config.prefixes();
        let users = Arc::new(UserRegistry::new(config.broker.user_prefix.clone()));
        let messaging = Messaging::new(Arc::clone(&broker), prefixes.clone(), Arc::clone(&users));
        // `Config::load` validated both; a hand-built config that fails gets no users and no
        // anonymous access rather than a panic.
        let auth = config.auth.build().unwrap_or_else(|e| {
            tracing::error!(cause = %e, "invalid [auth] config: every CONNECT will be refused");
            AuthService::new(None, false)
        });
        let authz = Authorizer::new(&config.authorization).unwrap_or_else(|e| {
            tracing::error!(cause = %e, "invalid [authorization] config: denying everything");
            Authorizer::deny_all()
        });
        let shutdown = CancellationToken::new();
        let shared = Shared {
            limits,
            runtime: Runtime::new(config.server.max_connections, shutdown.clone()),
            prefixes,
            broker,
            handlers,
            messaging,
            users,
            auth,
            authz,
            listeners: Listeners::default(),
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

    /// Adds a listener for session events (connect, subscribe, unsubscribe, disconnect).
    ///
    /// # Panics
    /// As [`Stompede::handlers`].
    pub fn events(mut self, listener: impl SessionEvents) -> Stompede {
        self.shared_mut().listeners.push(Arc::new(listener));
        self
    }

    /// Replaces the authenticators the config defines (`[auth]` users and JWT) with
    /// `authenticator`; `anonymous` says whether sessions without credentials are allowed.
    ///
    /// # Panics
    /// As [`Stompede::handlers`].
    pub fn authenticator(mut self, authenticator: impl Authenticator, anonymous: bool) -> Stompede {
        self.shared_mut().auth = AuthService::new(Some(Arc::new(authenticator)), anonymous);
        self
    }

    /// Who is online: users, their sessions and subscriptions.
    pub fn users(&self) -> Arc<UserRegistry> {
        Arc::clone(&self.shared.users)
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
        // The handshake's token first, so interceptors see it; CONNECT authenticates it.
        let mut interceptors: Vec<Arc<dyn HandshakeInterceptor>> = vec![Arc::new(keep_token)];
        interceptors.extend(shared.interceptors.iter().cloned());
        let core = Arc::new(EndpointCore {
            origins: OriginPolicy::from_config(&config.endpoint.allowed_origins),
            interceptors,
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
            .merge(api::router(shared))
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

/// Keeps a token the handshake carries (query, cookie, `Authorization`) for CONNECT.
fn keep_token(
    request: &HandshakeRequest<'_>,
    attributes: &mut Attributes,
) -> Result<(), Rejection> {
    if let Some(token) = crate::auth::handshake_token(request) {
        attributes.insert(HandshakeToken(token));
    }
    Ok(())
}

/// The chat page (`index.html` of `web.root`) when there is one, else where the endpoints are.
async fn index(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let root = &shared.config.web.root;
    if !root.is_empty() {
        let page = std::path::Path::new(root).join("index.html");
        if let Ok(html) = tokio::fs::read(&page).await {
            return (
                [
                    (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (axum::http::header::CACHE_CONTROL, "no-cache"),
                ],
                html,
            )
                .into_response();
        }
    }
    endpoints(&shared).into_response()
}

fn endpoints(shared: &Shared) -> String {
    format!(
        "stompede {}\nSTOMP over WebSocket: ws://<this host>{path}/websocket\n\
         STOMP over SockJS: http://<this host>{path}\n",
        env!("CARGO_PKG_VERSION"),
        path = shared.config.endpoint.path
    )
}
