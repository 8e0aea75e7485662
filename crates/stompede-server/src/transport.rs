//! The one connection abstraction sessions run on: ordered inbound messages and an outbound
//! sink that can close with a code and reason. A raw WebSocket is one implementation; SockJS
//! sessions will be another, so nothing above this module knows which transport a client used.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, Stream};

/// One message to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Bytes of one or more STOMP frames, or heart-beat EOLs.
    Data(Bytes),
    /// Close the connection with a code and a reason.
    Close {
        /// WebSocket close code (see [`crate::error::close_code`]).
        code: u16,
        /// Human-readable reason, at most 123 bytes.
        reason: &'static str,
    },
}

/// The transport failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The client sent a message over the transport's size limit; the connection can still
    /// carry an ERROR and a close.
    #[error("message over the transport's size limit")]
    TooLarge,
    /// Anything else; the session ends without a close handshake.
    #[error("transport failed: {0}")]
    Failed(String),
}

/// What a session runs on. Inbound items are the payloads of transport messages (possibly
/// empty, for transport-level keep-alives, which still count as activity).
pub trait Connection:
    Stream<Item = Result<Bytes, TransportError>>
    + Sink<Outbound, Error = TransportError>
    + Send
    + Unpin
    + 'static
{
}

impl<T> Connection for T where
    T: Stream<Item = Result<Bytes, TransportError>>
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
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(Pin::new(&mut self.socket).poll_next(cx));
        Poll::Ready(match item {
            None | Some(Ok(Message::Close(_))) => None,
            Some(Ok(Message::Text(text))) => Some(Ok(Bytes::from(text))),
            Some(Ok(Message::Binary(data))) => Some(Ok(data)),
            // Pings are answered by the WebSocket layer; both count as activity.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Some(Ok(Bytes::new())),
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
            Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
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
