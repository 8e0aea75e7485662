//! One STOMP 1.2 client connection over WebSocket: handshake, frames in, frames out.

use std::fmt;

use anyhow::{bail, Context};
use bytes::BytesMut;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use stompede_stomp::{encode, Command, Decoder, Frame, Limits, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The WebSocket stream of one client connection.
pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sub-protocol offered in the handshake (STOMP 1.2 only).
const SUBPROTOCOL: &str = "v12.stomp";

/// Bytes read from the socket at once. tungstenite zero-fills this much of its buffer before
/// every read: at its 128 KiB default that memset was 60% of the client's CPU time (perf, 1,000
/// subscribers at 10 msgs/s). Our frames are ~200 bytes, so 8 KiB still takes dozens per read.
const READ_BUFFER: usize = 8 * 1024;

/// Why a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Closed {
    /// The server sent a WebSocket close frame with this code (4500: slow consumer).
    Code(u16),
    /// The server sent a close frame without a code.
    NoCode,
    /// The TCP stream ended without a close frame.
    Eof,
    /// A transport or WebSocket protocol error.
    Transport,
    /// The server sent bytes that are not a STOMP frame.
    BadFrame,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Code(code) => write!(f, "{code}"),
            Closed::NoCode => f.write_str("no-code"),
            Closed::Eof => f.write_str("eof"),
            Closed::Transport => f.write_str("transport-error"),
            Closed::BadFrame => f.write_str("bad-frame"),
        }
    }
}

/// What the next read produced.
#[derive(Debug)]
pub(crate) enum Event {
    /// A complete STOMP frame.
    Frame(Frame),
    /// The connection is over; no more events follow.
    Closed(Closed),
}

/// The STOMP side of a WebSocket: decodes inbound messages into frames, encodes outbound ones.
///
/// `S` is the whole [`WsStream`] or one half of it after [`Connection::split`].
pub(crate) struct Connection<S> {
    ws: S,
    decoder: Decoder,
    inbound: BytesMut,
    outbound: BytesMut,
}

impl Connection<WsStream> {
    /// Opens a WebSocket to `url` offering `v12.stomp`, sends CONNECT (1.2, no heart-beats)
    /// and waits for CONNECTED.
    ///
    /// # Errors
    ///
    /// The handshake fails, or the server answers CONNECT with anything but CONNECTED.
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        let mut request = url
            .into_client_request()
            .with_context(|| format!("invalid WebSocket URL {url}"))?;
        let host = request.uri().host().unwrap_or("localhost").to_owned();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        // Nagle off: a fan-out benchmark measures latency, and writes are batched by hand.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                .await
                .with_context(|| format!("WebSocket handshake with {url} failed"))?;
        let mut conn = Connection {
            ws,
            decoder: Decoder::new(Limits::default()),
            inbound: BytesMut::with_capacity(4096),
            outbound: BytesMut::with_capacity(4096),
        };
        conn.decoder.set_version(Version::V1_2);
        let connect = Frame::new(Command::Connect)
            .with_header("accept-version", "1.2")
            .with_header("host", host)
            .with_header("heart-beat", "0,0");
        conn.send_frame(&connect)
            .await
            .context("cannot send CONNECT")?;
        match conn.next_event().await {
            Event::Frame(frame) if frame.command() == Command::Connected => Ok(conn),
            Event::Frame(frame) if frame.command() == Command::Error => bail!(
                "server refused CONNECT: {}",
                frame.header("message").unwrap_or("(no message)")
            ),
            Event::Frame(frame) => bail!("expected CONNECTED, got {}", frame.command()),
            Event::Closed(closed) => bail!("connection closed before CONNECTED ({closed})"),
        }
    }

    /// Splits into a sending half and a reading connection, so that a publisher can read
    /// receipts in one task while it writes in another.
    pub(crate) fn split(
        self,
    ) -> (
        SplitSink<WsStream, Message>,
        Connection<SplitStream<WsStream>>,
    ) {
        let (sink, stream) = self.ws.split();
        let conn = Connection {
            ws: stream,
            decoder: self.decoder,
            inbound: self.inbound,
            outbound: self.outbound,
        };
        (sink, conn)
    }

    /// Sends a WebSocket close frame and waits briefly for the server's; errors are ignored
    /// because the run is over.
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

impl<S> Connection<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    /// The next STOMP frame, or how the connection ended.
    ///
    /// Cancel-safe: a partly received frame stays buffered in `self`.
    pub(crate) async fn next_event(&mut self) -> Event {
        loop {
            match self.decoder.decode(&mut self.inbound) {
                Ok(Some(frame)) => return Event::Frame(frame),
                Ok(None) => {}
                Err(_) => return Event::Closed(Closed::BadFrame),
            }
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => self.inbound.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(data))) => self.inbound.extend_from_slice(&data),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Event::Closed(Closed::Code(frame.code.into()))
                }
                Some(Ok(Message::Close(None))) => return Event::Closed(Closed::NoCode),
                Some(Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                ))
                | None => return Event::Closed(Closed::Eof),
                Some(Err(_)) => return Event::Closed(Closed::Transport),
            }
        }
    }
}

impl<S> Connection<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    /// Encodes and sends one frame, flushing it.
    ///
    /// # Errors
    ///
    /// The WebSocket cannot be written.
    pub(crate) async fn send_frame(&mut self, frame: &Frame) -> Result<(), WsError> {
        let message = frame_message(frame, &mut self.outbound);
        self.ws.send(message).await
    }
}

/// Encodes `frame` as a text WebSocket message, as browsers' STOMP clients send them.
///
/// `scratch` is reused between calls: once the previous message has been written and dropped,
/// its allocation comes back, so steady-state sending does not allocate.
pub(crate) fn frame_message(frame: &Frame, scratch: &mut BytesMut) -> Message {
    encode(frame, Version::V1_2, scratch);
    text_message(scratch)
}

/// Turns the bytes in `scratch` (an encoded frame) into a text message, leaving `scratch` empty.
pub(crate) fn text_message(scratch: &mut BytesMut) -> Message {
    let bytes = scratch.split().freeze();
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        // Only a non-UTF-8 header or body could get here; the server takes binary too.
        Err(_) => Message::Binary(bytes),
    }
}
