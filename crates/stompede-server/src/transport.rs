//! The one connection abstraction sessions run on: ordered inbound messages and an outbound
//! sink that can close with a code and reason. A raw WebSocket ([`WsConnection`]) and a SockJS
//! session ([`SockJsConnection`]) both implement it, so nothing above this module knows which
//! transport a client used.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, Stream};

pub use crate::sockjs::SockJsConnection;

/// How long writing a close (or completing the client's close handshake) may take before the
/// connection is dropped.
pub(crate) const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// One message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text message (valid UTF-8).
    Text(Bytes),
    /// A binary message (raw WebSocket only).
    Binary(Bytes),
    /// A transport-level keep-alive (WebSocket ping or pong): activity without data.
    KeepAlive,
}

impl Inbound {
    /// The message's bytes (empty for a keep-alive).
    pub fn into_bytes(self) -> Bytes {
        match self {
            Inbound::Text(data) | Inbound::Binary(data) => data,
            Inbound::KeepAlive => Bytes::new(),
        }
    }
}

/// One message to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Text: a text message when the bytes are UTF-8 (STOMP frames usually are), else a
    /// binary message on a raw WebSocket and lossy text on SockJS, which carries only text.
    Data(Bytes),
    /// A binary message; SockJS cannot carry one and fails the send.
    Binary(Bytes),
    /// Close the connection with a code and a reason.
    Close {
        /// WebSocket close code (see [`crate::error::close_code`]).
        code: u16,
        /// Human-readable reason, at most 123 bytes.
        reason: Cow<'static, str>,
    },
}

/// The transport failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The client sent a message over the transport's size limit; the connection can still
    /// carry an ERROR and a close.
    #[error("message over the transport's size limit")]
    TooLarge,
    /// The transport cannot carry this message (binary over SockJS).
    #[error("the transport cannot carry binary messages")]
    Unsupported,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// Anything else; the session ends without a close handshake.
    #[error("transport failed: {0}")]
    Failed(String),
}

/// What a session runs on: the client's messages in order, and a sink for messages to it. The
/// sink is bounded: it is not ready while the transport holds too much for a slow client.
///
/// A session polls the stream again only after the waker it last passed to `poll_next` was
/// woken (`session/gate.rs`), so the stream must wake that waker when it has something new,
/// whatever sink calls happened in between.
pub trait Connection:
    Stream<Item = Result<Inbound, TransportError>>
    + Sink<Outbound, Error = TransportError>
    + Send
    + Unpin
    + 'static
{
}

impl<T> Connection for T where
    T: Stream<Item = Result<Inbound, TransportError>>
        + Sink<Outbound, Error = TransportError>
        + Send
        + Unpin
        + 'static
{
}

/// A raw WebSocket as a [`Connection`]. STOMP frames go out as text messages when they are
/// valid UTF-8 (what browsers' STOMP clients expect) and as binary messages otherwise.
#[derive(Debug)]
pub struct WsConnection {
    socket: WebSocket,
}

impl WsConnection {
    /// Wraps an upgraded socket.
    pub fn new(socket: WebSocket) -> WsConnection {
        WsConnection { socket }
    }
}

impl Stream for WsConnection {
    type Item = Result<Inbound, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(Pin::new(&mut self.socket).poll_next(cx));
        Poll::Ready(match item {
            None | Some(Ok(Message::Close(_))) => None,
            Some(Ok(Message::Text(text))) => Some(Ok(Inbound::Text(Bytes::from(text)))),
            Some(Ok(Message::Binary(data))) => Some(Ok(Inbound::Binary(data))),
            // Pings are answered by the WebSocket layer; both count as activity.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Some(Ok(Inbound::KeepAlive)),
            Some(Err(e)) => Some(Err(ws_err(e))),
        })
    }
}

impl Sink<Outbound> for WsConnection {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_ready(cx).map_err(ws_err)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), Self::Error> {
        let message = match item {
            // Cloning `Bytes` only bumps a reference count.
            Outbound::Data(data) => match Utf8Bytes::try_from(data.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(data),
            },
            Outbound::Binary(data) => Message::Binary(data),
            Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
                code,
                reason: match reason {
                    Cow::Borrowed(reason) => Utf8Bytes::from_static(reason),
                    Cow::Owned(reason) => Utf8Bytes::from(reason),
                },
            })),
        };
        Pin::new(&mut self.socket)
            .start_send(message)
            .map_err(ws_err)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_flush(cx).map_err(ws_err)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_close(cx).map_err(ws_err)
    }
}

fn ws_err(e: axum::Error) -> TransportError {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) if matches!(*e, tungstenite::Error::Capacity(_)) => TransportError::TooLarge,
        Ok(e) => TransportError::Failed(e.to_string()),
        Err(e) => TransportError::Failed(e.to_string()),
    }
}

/// Either transport, so that one session type serves both without boxing.
#[derive(Debug)]
// One per session, owned by its task: boxing the WebSocket would add a pointer chase to every
// read and write for no memory saved.
#[allow(clippy::large_enum_variant)]
pub enum AnyConnection {
    /// A raw WebSocket.
    WebSocket(WsConnection),
    /// A SockJS session (any SockJS transport).
    SockJs(SockJsConnection),
}

impl Stream for AnyConnection {
    type Item = Result<Inbound, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            AnyConnection::WebSocket(c) => Pin::new(c).poll_next(cx),
            AnyConnection::SockJs(c) => Pin::new(c).poll_next(cx),
        }
    }
}

impl Sink<Outbound> for AnyConnection {
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.get_mut() {
            AnyConnection::WebSocket(c) => Pin::new(c).poll_ready(cx),
            AnyConnection::SockJs(c) => Pin::new(c).poll_ready(cx),
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Outbound) -> Result<(), Self::Error> {
        match self.get_mut() {
            AnyConnection::WebSocket(c) => Pin::new(c).start_send(item),
            AnyConnection::SockJs(c) => Pin::new(c).start_send(item),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.get_mut() {
            AnyConnection::WebSocket(c) => Pin::new(c).poll_flush(cx),
            AnyConnection::SockJs(c) => Pin::new(c).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.get_mut() {
            AnyConnection::WebSocket(c) => Pin::new(c).poll_close(cx),
            AnyConnection::SockJs(c) => Pin::new(c).poll_close(cx),
        }
    }
}
