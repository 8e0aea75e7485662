//! The client's errors. Every one is `Clone`: one ERROR frame or one lost connection is
//! reported to every waiting receipt and every subscription.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stompede_stomp::{Command, DecodeError, Frame};

pub use crate::sockjs::FrameError;

/// Anything a client operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`ClientConfig`](crate::ClientConfig) cannot work, e.g. an unsupported URL scheme.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The WebSocket or HTTP transport failed or was closed.
    #[error("transport failed")]
    Transport(#[from] TransportError),
    /// The server sent an ERROR frame (and closes the connection after it).
    #[error("server error: {}", .0.message())]
    Server(ServerError),
    /// The server broke the STOMP protocol.
    #[error("protocol violation by the server")]
    Protocol(#[from] ProtocolError),
    /// The transport or the CONNECT handshake took longer than
    /// [`ClientConfig::connect_timeout`](crate::ClientConfig::connect_timeout).
    #[error("connecting took longer than {0:?}")]
    ConnectTimeout(Duration),
    /// The server sent nothing, not even a heart-beat, for this long.
    #[error("no heart-beat from the server for {0:?}")]
    HeartBeatTimeout(Duration),
    /// No RECEIPT arrived within [`ClientConfig::receipt_timeout`](crate::ClientConfig::receipt_timeout).
    #[error("no receipt within {0:?}")]
    ReceiptTimeout(Duration),
    /// The connection ended before the operation completed; the cause is the source.
    #[error("connection lost")]
    ConnectionLost(#[source] Arc<Error>),
    /// The client is reconnecting; the frame was not sent.
    #[error("not connected (reconnecting)")]
    NotConnected,
    /// The client was disconnected or its connection ended for good.
    #[error("client is closed")]
    Closed,
    /// The message (or transaction) belongs to an earlier connection; the server has
    /// forgotten it and redelivers unacknowledged messages anyway.
    #[error("belongs to an earlier connection")]
    Stale,
    /// SockJS carries text only and this frame's body is not UTF-8.
    #[error("body is not utf-8, which SockJS cannot carry")]
    NotText,
}

/// Why a transport failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A socket error.
    #[error("i/o error")]
    Io(#[source] Arc<std::io::Error>),
    /// A WebSocket handshake or protocol error.
    #[error("websocket error")]
    WebSocket(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// An HTTP request of a SockJS HTTP transport failed.
    #[error("http request failed")]
    Http(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// An HTTP request of a SockJS HTTP transport got an unexpected status.
    #[error("http status {status} from {url}")]
    Status {
        /// The status code.
        status: u16,
        /// The request's URL.
        url: String,
    },
    /// The SockJS `/info` response is not what the protocol says.
    #[error("invalid SockJS info response: {0}")]
    Info(&'static str),
    /// The SockJS server does not offer the websocket transport (`/info` says so).
    #[error("the SockJS server does not offer the websocket transport")]
    WebSocketUnavailable,
    /// The server sent something that is not SockJS.
    #[error("invalid SockJS frame")]
    SockJs(#[from] FrameError),
    /// The server closed the connection (WebSocket close frame or SockJS `c` frame).
    #[error("closed by the server ({code} {reason:?})")]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The connection ended without a close frame.
    #[error("connection ended")]
    Ended,
}

impl TransportError {
    pub(crate) fn websocket(e: tokio_tungstenite::tungstenite::Error) -> TransportError {
        match e {
            tokio_tungstenite::tungstenite::Error::Io(io) => TransportError::Io(Arc::new(io)),
            tokio_tungstenite::tungstenite::Error::ConnectionClosed
            | tokio_tungstenite::tungstenite::Error::AlreadyClosed => TransportError::Ended,
            other => TransportError::WebSocket(Arc::new(other)),
        }
    }
}

/// The server broke the STOMP protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The bytes are not a STOMP frame.
    #[error("undecodable frame")]
    Decode(#[from] DecodeError),
    /// The first frame was neither CONNECTED nor ERROR.
    #[error("expected CONNECTED, got {0:?}")]
    ExpectedConnected(Command),
    /// A frame the server must not send at this point (a client command, a second CONNECTED).
    #[error("unexpected {0:?} frame")]
    UnexpectedCommand(Command),
    /// A frame lacks a header it must carry.
    #[error("{command:?} frame without a {header:?} header")]
    MissingHeader {
        /// The frame's command.
        command: Command,
        /// The missing header.
        header: &'static str,
    },
    /// CONNECTED names a version the client did not offer.
    #[error("unsupported version {0:?}")]
    Version(String),
    /// CONNECTED carries a malformed `heart-beat` header.
    #[error("invalid heart-beat header {0:?}")]
    HeartBeat(String),
}

/// An ERROR frame: the server's explanation of why it closes the connection.
///
/// Cheap to clone: the frame is shared.
#[derive(Clone)]
pub struct ServerError {
    frame: Arc<Frame>,
}

impl ServerError {
    pub(crate) fn new(frame: Frame) -> ServerError {
        ServerError {
            frame: Arc::new(frame),
        }
    }

    /// The `message` header: a short description (empty when the server sent none).
    pub fn message(&self) -> &str {
        self.frame.header("message").unwrap_or_default()
    }

    /// The `receipt-id` header: the receipt of the frame that caused the error, if any.
    pub fn receipt_id(&self) -> Option<&str> {
        self.frame.header("receipt-id")
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.frame.header(name)
    }

    /// Every header, in wire order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.frame.headers()
    }

    /// The body: often a longer description.
    pub fn body(&self) -> &Bytes {
        self.frame.body()
    }

    /// The body as text, if it is UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(self.frame.body()).ok()
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("message", &self.message())
            .field("receipt_id", &self.receipt_id())
            .field("body", &String::from_utf8_lossy(self.body()))
            .finish()
    }
}

impl Error {
    /// The ERROR frame behind this error, directly or as the cause of a lost connection.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Server(e) => Some(e),
            Error::ConnectionLost(cause) => cause.server_error(),
            _ => None,
        }
    }
}
