//! Plain message handlers (Spring's `WebSocketHandler`): no STOMP, just messages, at a path,
//! over a raw WebSocket and/or SockJS. Register a [`MessageHandler`] with a [`HandlerEndpoint`];
//! each session gets a [`SessionHandle`] that can send from any task.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::any;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use stompede_broker::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{Attributes, EndpointCore, HandshakeInterceptor, Runtime, SessionInfo};
use crate::error::close_code;
use crate::origin::OriginPolicy;
use crate::sockjs::{self, SockJsOptions};
use crate::transport::{AnyConnection, Inbound, Outbound, TransportError, CLOSE_LINGER};

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text (SockJS carries only text).
    Text(String),
    /// Binary (raw WebSocket only).
    Binary(Bytes),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseStatus {
    /// WebSocket close code: 1000 when the client closed, 1001 at shutdown, 4500 for a slow
    /// consumer, or what [`SessionHandle::close`] asked for.
    pub code: u16,
    /// Reason text.
    pub reason: Cow<'static, str>,
}

/// Handles the sessions of one endpoint. Callbacks run on the session's task, one at a time
/// per session: keep them short and spawn a task (with a cloned [`SessionHandle`]) for slow
/// work.
pub trait MessageHandler: Send + Sync + 'static {
    /// A session opened.
    fn on_open(&self, _session: &SessionHandle) {}
    /// A message arrived.
    fn on_message(&self, session: &SessionHandle, message: Message);
    /// The session ended; sends fail from now on.
    fn on_close(&self, _session: &SessionHandle, _status: &CloseStatus) {}
}

/// Why a send failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is closed (or closing).
    #[error("session closed")]
    Closed,
    /// Binary messages over SockJS, which carries only text.
    #[error("binary messages are not supported on SockJS sessions")]
    Unsupported,
    /// The client is not keeping up: over the send buffer limit; the session is being closed
    /// with 4500.
    #[error("send buffer size limit exceeded")]
    Overflow,
}

/// One session, as handlers see it. Cheap to clone; sends from any task or thread.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    info: SessionInfo,
    /// Messages for the client; `None` only wakes the session (to see `overflowed`).
    tx: mpsc::UnboundedSender<Option<Outbound>>,
    /// Bytes sent but not yet written to the transport.
    queued: AtomicUsize,
    limit: usize,
    overflowed: AtomicBool,
    open: AtomicBool,
    sockjs: bool,
}

impl SessionHandle {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.inner.info.id
    }

    /// `websocket` for a raw WebSocket, else the SockJS transport that opened the session.
    pub fn transport(&self) -> &'static str {
        self.inner.info.transport
    }

    /// What the handshake interceptors attached.
    pub fn attributes(&self) -> &Attributes {
        &self.inner.info.attributes
    }

    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// [`SendError::Closed`], or [`SendError::Overflow`] when the client is too far behind.
    pub fn send_text(&self, text: impl Into<String>) -> Result<(), SendError> {
        let text = text.into();
        self.push(text.len(), Outbound::Data(Bytes::from(text)))
    }

    /// Queues a binary message (raw WebSocket only).
    ///
    /// # Errors
    /// As [`SessionHandle::send_text`], and [`SendError::Unsupported`] on SockJS sessions.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        if self.inner.sockjs {
            return Err(SendError::Unsupported);
        }
        let data = data.into();
        self.push(data.len(), Outbound::Binary(data))
    }

    /// Closes the session with `code` (1000, or 3000-4999 for applications) and `reason`,
    /// after the messages already queued.
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        if self.inner.open.swap(false, Ordering::AcqRel) {
            let _ = self.inner.tx.send(Some(Outbound::Close {
                code,
                reason: reason.into(),
            }));
        }
    }

    fn push(&self, len: usize, message: Outbound) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::Closed);
        }
        let queued = self.inner.queued.fetch_add(len, Ordering::AcqRel) + len;
        if queued > self.inner.limit {
            self.inner.queued.fetch_sub(len, Ordering::AcqRel);
            self.inner.overflowed.store(true, Ordering::Release);
            // Wakes the session task, which closes the session.
            let _ = self.inner.tx.send(None);
            return Err(SendError::Overflow);
        }
        self.inner
            .tx
            .send(Some(message))
            .map_err(|_| SendError::Closed)
    }
}

/// Limits of a handler endpoint's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerLimits {
    /// Largest message a client may send, in bytes. Default: 64 KiB.
    pub max_message: usize,
    /// Bytes queued for one client before it is closed as a slow consumer (4500).
    /// Default: 512 KiB.
    pub send_buffer_size_limit: usize,
    /// Longest one write may take before the client is closed as a slow consumer.
    /// Default: 10s.
    pub send_time_limit: Duration,
}

impl Default for HandlerLimits {
    fn default() -> Self {
        HandlerLimits {
            max_message: 64 * 1024,
            send_buffer_size_limit: 512 * 1024,
            send_time_limit: Duration::from_secs(10),
        }
    }
}

/// A [`MessageHandler`] at a path: a raw WebSocket there, or a SockJS endpoint there (with the
/// raw WebSocket at `{path}/websocket`) after [`HandlerEndpoint::sockjs`].
///
/// ```no_run
/// use stompede_server::handler::{HandlerEndpoint, Message, MessageHandler, SessionHandle};
/// use stompede_server::sockjs::SockJsOptions;
///
/// struct Echo;
/// impl MessageHandler for Echo {
///     fn on_message(&self, session: &SessionHandle, message: Message) {
///         let _ = match message {
///             Message::Text(text) => session.send_text(text),
///             Message::Binary(data) => session.send_binary(data),
///         };
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let app = HandlerEndpoint::new(Echo).sockjs(SockJsOptions::default()).router("/echo");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
/// axum::serve(listener, app).await
/// # }
/// ```
#[derive(Clone)]
pub struct HandlerEndpoint {
    handler: Arc<dyn MessageHandler>,
    interceptors: Vec<Arc<dyn HandshakeInterceptor>>,
    allowed_origins: Vec<String>,
    sockjs: Option<SockJsOptions>,
    limits: HandlerLimits,
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for HandlerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerEndpoint")
            .field("allowed_origins", &self.allowed_origins)
            .field("sockjs", &self.sockjs)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HandlerEndpoint {
    /// An endpoint for `handler`: raw WebSocket, same-origin browsers only, default limits.
    pub fn new(handler: impl MessageHandler) -> HandlerEndpoint {
        HandlerEndpoint {
            handler: Arc::new(handler),
            interceptors: Vec::new(),
            allowed_origins: Vec::new(),
            sockjs: None,
            limits: HandlerLimits::default(),
            runtime: None,
        }
    }

    /// Adds a handshake interceptor (run in the order added).
    pub fn interceptor(mut self, interceptor: impl HandshakeInterceptor) -> HandlerEndpoint {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Browser origins allowed, as `endpoint.allowed_origins`: empty = same origin, `"*"` =
    /// any, else exact origins.
    pub fn allowed_origins(
        mut self,
        origins: impl IntoIterator<Item = impl Into<String>>,
    ) -> HandlerEndpoint {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Serves SockJS at the path (raw WebSocket at `{path}/websocket` when
    /// `websocket_enabled`).
    pub fn sockjs(mut self, options: SockJsOptions) -> HandlerEndpoint {
        self.sockjs = Some(options);
        self
    }

    /// Session limits.
    pub fn limits(mut self, limits: HandlerLimits) -> HandlerEndpoint {
        self.limits = limits;
        self
    }

    /// Shares a server's session bookkeeping (limit, shutdown, ids).
    pub(crate) fn with_runtime(mut self, runtime: Runtime) -> HandlerEndpoint {
        self.runtime = Some(runtime);
        self
    }

    /// The routes at `path`. Standalone endpoints (not added to a
    /// [`Stompede`](crate::Stompede)) allow 10,000 sessions and never shut down on their own.
    ///
    /// # Panics
    /// Outside a Tokio runtime (SockJS starts a task that expires idle sessions).
    pub fn router(self, path: &str) -> Router {
        let runtime = self
            .runtime
            .unwrap_or_else(|| Runtime::new(10_000, CancellationToken::new()));
        let handler = Arc::clone(&self.handler);
        let limits = self.limits.clone();
        let shutdown = runtime.shutdown.clone();
        let core = Arc::new(EndpointCore {
            origins: OriginPolicy::from_config(&self.allowed_origins),
            interceptors: self.interceptors,
            acceptor: Arc::new(move |conn, info| {
                Box::pin(drive(
                    conn,
                    info,
                    Arc::clone(&handler),
                    limits.clone(),
                    shutdown.clone(),
                ))
            }),
            runtime,
            max_message: self.limits.max_message,
            subprotocols: &[],
        });
        match self.sockjs {
            Some(options) => sockjs::router(path, options, core),
            None => Router::new()
                .route(path, any(crate::endpoint::raw_websocket))
                .with_state(core),
        }
    }
}

/// Runs one handler session: client messages to the handler, queued sends to the client.
async fn drive(
    mut conn: AnyConnection,
    info: SessionInfo,
    handler: Arc<dyn MessageHandler>,
    limits: HandlerLimits,
    shutdown: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sockjs = matches!(conn, AnyConnection::SockJs(_));
    let handle = SessionHandle {
        inner: Arc::new(HandleInner {
            info,
            tx,
            queued: AtomicUsize::new(0),
            limit: limits.send_buffer_size_limit,
            overflowed: AtomicBool::new(false),
            open: AtomicBool::new(true),
            sockjs,
        }),
    };
    tracing::debug!("handler session opened");
    handler.on_open(&handle);
    let status = loop {
        if handle.inner.overflowed.load(Ordering::Acquire) {
            break close(
                &mut conn,
                close_code::NOT_RELIABLE,
                "send buffer size limit exceeded",
            )
            .await;
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                let _ = write_queued(&mut conn, &mut rx, &handle, limits.send_time_limit).await;
                break close(&mut conn, close_code::AWAY, "server shutting down").await;
            }
            inbound = conn.next() => match inbound {
                Some(Ok(Inbound::Text(data))) => match String::from_utf8(data.to_vec()) {
                    Ok(text) => handler.on_message(&handle, Message::Text(text)),
                    Err(_) => break close(&mut conn, 1007, "invalid UTF-8").await,
                },
                Some(Ok(Inbound::Binary(data))) => handler.on_message(&handle, Message::Binary(data)),
                Some(Ok(Inbound::KeepAlive)) => {}
                Some(Err(TransportError::TooLarge)) => {
                    break close(&mut conn, close_code::TOO_BIG, "message too big").await;
                }
                Some(Err(_)) => break CloseStatus { code: 1006, reason: "connection failed".into() },
                None => {
                    // Completes the close handshake (the WebSocket layer queued the reply).
                    let _ = tokio::time::timeout(CLOSE_LINGER, conn.close()).await;
                    break CloseStatus { code: 1000, reason: "client closed".into() };
                }
            },
            Some(first) = rx.recv() => {
                match write_batch(&mut conn, first, &mut rx, &handle, limits.send_time_limit).await {
                    Ok(None) => {}
                    Ok(Some(status)) => break status,
                    Err(status) => break status,
                }
            }
        }
    };
    handle.inner.open.store(false, Ordering::Release);
    tracing::debug!(code = status.code, reason = %status.reason, "handler session closed");
    handler.on_close(&handle, &status);
}

/// Writes `first` and whatever else is queued, then flushes. `Ok(Some)` when a close was
/// written, `Err` when the client could not take it.
async fn write_batch(
    conn: &mut AnyConnection,
    first: Option<Outbound>,
    rx: &mut mpsc::UnboundedReceiver<Option<Outbound>>,
    handle: &SessionHandle,
    limit: Duration,
) -> Result<Option<CloseStatus>, CloseStatus> {
    let write = async {
        let mut next = Some(first);
        let mut batch = 0;
        while let Some(item) = next.take() {
            match item {
                // A wake-up: the loop checks `overflowed` next.
                None => {}
                Some(Outbound::Close { code, reason }) => {
                    conn.flush().await?;
                    let status = CloseStatus {
                        code,
                        reason: reason.clone(),
                    };
                    conn.send(Outbound::Close { code, reason }).await?;
                    return Ok(Some(status));
                }
                Some(message) => {
                    let len = match &message {
                        Outbound::Data(d) | Outbound::Binary(d) => d.len(),
                        Outbound::Close { .. } => 0,
                    };
                    conn.feed(message).await?;
                    handle.inner.queued.fetch_sub(len, Ordering::AcqRel);
                    batch += 1;
                }
            }
            if batch < 64 {
                next = rx.try_recv().ok();
            }
        }
        conn.flush().await?;
        Ok::<_, TransportError>(None)
    };
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(CloseStatus {
            code: 1006,
            reason: e.to_string().into(),
        }),
        Err(_) => Err(close(conn, close_code::NOT_RELIABLE, "send time limit exceeded").await),
    }
}

async fn write_queued(
    conn: &mut AnyConnection,
    rx: &mut mpsc::UnboundedReceiver<Option<Outbound>>,
    handle: &SessionHandle,
    limit: Duration,
) -> Result<(), CloseStatus> {
    while let Ok(first) = rx.try_recv() {
        if write_batch(conn, first, rx, handle, limit).await?.is_some() {
            break;
        }
    }
    Ok(())
}

async fn close(conn: &mut AnyConnection, code: u16, reason: &'static str) -> CloseStatus {
    let _ = tokio::time::timeout(
        CLOSE_LINGER,
        conn.send(Outbound::Close {
            code,
            reason: reason.into(),
        }),
    )
    .await;
    CloseStatus {
        code,
        reason: reason.into(),
    }
}
