//! The two halves of an open STOMP connection: the [`Reader`] (frames located by the wire
//! scanner, over a WebSocket or a SockJS receiver) and the [`Writer`] (frames queued and
//! flushed, over a WebSocket or SockJS), and [`Closed`], how a connection ended.

use std::fmt;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use stompede_stomp::{encode, Frame, Limits, Version};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::WsStream;
use crate::report::close_reason;
use crate::sockjs::client::{self as sockjs, Failure};
use crate::sockjs::frame as sockjs_frame;
use crate::wire::{RawFrame, Scanner};

/// Over xhr, frames queue into one xhr_send body until this many bytes, or the next flush.
const XHR_BATCH_BYTES: usize = 64 * 1024;

/// Why a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Closed {
    /// The server closed with this code and reason: a WebSocket close frame, or a SockJS
    /// `c[code,reason]` (4500: slow consumer).
    Code {
        /// The close code.
        code: u16,
        /// The close reason (may be empty).
        reason: String,
    },
    /// The server sent a WebSocket close frame without a code.
    NoCode,
    /// An HTTP request of a SockJS session got this status.
    Status(u16),
    /// The TCP stream ended without a close frame.
    Eof,
    /// A transport or WebSocket protocol error.
    Transport,
    /// The server sent bytes that are not STOMP (or SockJS) frames.
    BadFrame,
    /// A SockJS `o` frame in the middle of a session: the server had forgotten the session (no
    /// receiving request for its disconnect delay) and opened a new one under the same id.
    Reopened,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Code { code, .. } => write!(f, "{code}"),
            Closed::NoCode => f.write_str("no-code"),
            Closed::Status(status) => write!(f, "http-{status}"),
            Closed::Eof => f.write_str("eof"),
            Closed::Transport => f.write_str("transport-error"),
            Closed::BadFrame => f.write_str("bad-frame"),
            Closed::Reopened => f.write_str("sockjs-reopened"),
        }
    }
}

impl Closed {
    /// How reports name this ending among the server's closes: the code with its reason
    /// (`4500 send buffer size limit exceeded`), else the `Display` form (`eof`, `http-404`).
    pub(crate) fn reason(&self) -> String {
        match self {
            Closed::Code { code, reason } => close_reason(*code, reason),
            other => other.to_string(),
        }
    }
}

impl From<Failure> for Closed {
    fn from(failure: Failure) -> Closed {
        match failure {
            Failure::Closed { code, reason } => Closed::Code { code, reason },
            Failure::WsClosed(Some(code)) => Closed::Code {
                code,
                reason: String::new(),
            },
            Failure::WsClosed(None) => Closed::NoCode,
            Failure::Status { status, .. } => Closed::Status(status),
            Failure::Eof => Closed::Eof,
            Failure::Protocol(_) => Closed::BadFrame,
            Failure::Io(_) => Closed::Transport,
        }
    }
}

fn ws_closed(e: &WsError) -> Closed {
    match e {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Closed::Eof,
        _ => Closed::Transport,
    }
}

/// What the next read produced.
#[derive(Debug)]
pub(crate) enum Event {
    /// A complete STOMP frame.
    Frame(RawFrame),
    /// The connection is over; no more events follow.
    Closed(Closed),
}

enum Inbound {
    Ws(SplitStream<WsStream>),
    SockJs(sockjs::Receiver),
}

/// The receiving half of a connection.
pub(crate) struct Reader {
    inbound: Inbound,
    scanner: Scanner,
}

impl Reader {
    fn new(inbound: Inbound) -> Reader {
        Reader {
            inbound,
            scanner: Scanner::new(Limits::default()),
        }
    }

    /// The reading half of a raw WebSocket.
    pub(super) fn websocket(stream: SplitStream<WsStream>) -> Reader {
        Reader::new(Inbound::Ws(stream))
    }

    /// The receiving side of a SockJS session.
    pub(super) fn sockjs(receiver: sockjs::Receiver) -> Reader {
        Reader::new(Inbound::SockJs(receiver))
    }

    /// The next STOMP frame, or how the connection ended.
    ///
    /// Cancel-safe over websocket and sockjs-websocket (a partly received frame stays
    /// buffered). Over the xhr transports a request may be half written: cancel only to stop.
    pub(crate) async fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.buffered() {
                return event;
            }
            if let Err(closed) = self.fill().await {
                return Event::Closed(closed);
            }
        }
    }

    /// [`Reader::next_event`] as a future that owns the reader and hands it back: a read that
    /// can stay in progress across rounds of a `select!` loop, as the xhr transports need,
    /// while the loop does other things (sending, heart-beats) in between.
    pub(crate) async fn into_next_event(mut self) -> (Reader, Event) {
        let event = self.next_event().await;
        (self, event)
    }

    /// A frame already received, without waiting; `None` if none is complete.
    pub(crate) fn buffered(&mut self) -> Option<Event> {
        match self.scanner.next_frame() {
            Ok(Some(frame)) => Some(Event::Frame(frame)),
            Ok(None) => None,
            Err(_) => Some(Event::Closed(Closed::BadFrame)),
        }
    }

    /// Reads from the transport until some STOMP bytes arrived.
    async fn fill(&mut self) -> Result<(), Closed> {
        match &mut self.inbound {
            Inbound::Ws(stream) => loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        self.scanner.push(Bytes::from(text));
                        return Ok(());
                    }
                    Some(Ok(Message::Binary(data))) => {
                        self.scanner.push(data);
                        return Ok(());
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(Some(frame)))) => {
                        return Err(Closed::Code {
                            code: frame.code.into(),
                            reason: frame.reason.to_string(),
                        })
                    }
                    Some(Ok(Message::Close(None))) => return Err(Closed::NoCode),
                    Some(Err(e)) => return Err(ws_closed(&e)),
                    None => return Err(Closed::Eof),
                }
            },
            Inbound::SockJs(receiver) => loop {
                let raw = receiver.next_frame().await.map_err(Closed::from)?;
                match raw.first() {
                    Some(b'a') => {
                        return self
                            .scanner
                            .push_with(|buf| sockjs_frame::messages_into(&raw, buf))
                            .map(|_| ())
                            .map_err(|_| Closed::BadFrame);
                    }
                    Some(b'h') if raw.len() == 1 => {}
                    Some(b'o') if raw.len() == 1 => return Err(Closed::Reopened),
                    Some(b'c') => {
                        return Err(match sockjs_frame::parse(&raw) {
                            Ok(sockjs_frame::Frame::Close { code, reason }) => Closed::Code {
                                code,
                                reason: reason.into_owned(),
                            },
                            _ => Closed::BadFrame,
                        })
                    }
                    _ => return Err(Closed::BadFrame),
                }
            },
        }
    }
}

enum Outbound {
    Ws(SplitSink<WsStream, Message>),
    SockJs {
        sender: sockjs::Sender,
        /// xhr_send (batched until flush) rather than one WebSocket message per frame.
        xhr: bool,
        /// The JSON array being built.
        batch: BytesMut,
        /// Frames in `batch` (xhr only).
        batched: usize,
    },
}

/// The sending half of a connection. Frames are queued by `feed_*` and written by
/// [`Writer::flush`] (or when a buffer fills).
pub(crate) struct Writer {
    outbound: Outbound,
    scratch: BytesMut,
}

impl Writer {
    fn new(outbound: Outbound) -> Writer {
        Writer {
            outbound,
            scratch: BytesMut::with_capacity(4096),
        }
    }

    /// The writing half of a raw WebSocket.
    pub(super) fn websocket(sink: SplitSink<WsStream, Message>) -> Writer {
        Writer::new(Outbound::Ws(sink))
    }

    /// The sending side of a SockJS session; `xhr` batches frames into xhr_send requests.
    pub(super) fn sockjs(sender: sockjs::Sender, xhr: bool) -> Writer {
        Writer::new(Outbound::SockJs {
            sender,
            xhr,
            batch: BytesMut::new(),
            batched: 0,
        })
    }

    /// Queues the encoded frame in `encoded` (taken, leaving it empty; once the frame is
    /// written its allocation comes back to `encoded`, so steady-state sending does not
    /// allocate).
    ///
    /// # Errors
    ///
    /// The connection is gone.
    pub(crate) async fn feed_encoded(&mut self, encoded: &mut BytesMut) -> Result<(), Closed> {
        let flush_now = match &mut self.outbound {
            Outbound::Ws(sink) => {
                let bytes = encoded.split().freeze();
                let message = match Utf8Bytes::try_from(bytes.clone()) {
                    Ok(text) => Message::Text(text),
                    // Only a non-UTF-8 header or body could get here; servers take binary too.
                    Err(_) => Message::Binary(bytes),
                };
                return sink.feed(message).await.map_err(|e| ws_closed(&e));
            }
            Outbound::SockJs {
                sender,
                xhr: false,
                batch,
                ..
            } => {
                batch.extend_from_slice(b"[");
                sockjs_frame::json_string_into(encoded, batch);
                batch.extend_from_slice(b"]");
                encoded.clear();
                let json =
                    Utf8Bytes::try_from(batch.split().freeze()).map_err(|_| Closed::BadFrame)?;
                return sender.feed_json(json).await.map_err(Closed::from);
            }
            Outbound::SockJs {
                xhr: true,
                batch,
                batched,
                ..
            } => {
                batch.extend_from_slice(if *batched == 0 { b"[" } else { b"," });
                sockjs_frame::json_string_into(encoded, batch);
                encoded.clear();
                *batched += 1;
                batch.len() >= XHR_BATCH_BYTES
            }
        };
        if flush_now {
            self.flush().await?;
        }
        Ok(())
    }

    /// Encodes and queues one frame.
    ///
    /// # Errors
    ///
    /// The connection is gone.
    pub(crate) async fn feed_frame(&mut self, frame: &Frame) -> Result<(), Closed> {
        let mut scratch = std::mem::take(&mut self.scratch);
        encode(frame, Version::V1_2, &mut scratch);
        let result = self.feed_encoded(&mut scratch).await;
        self.scratch = scratch;
        result
    }

    /// Encodes, queues and flushes one frame.
    ///
    /// # Errors
    ///
    /// The connection is gone.
    pub(crate) async fn send_frame(&mut self, frame: &Frame) -> Result<(), Closed> {
        self.feed_frame(frame).await?;
        self.flush().await
    }

    /// Sends a heart-beat (one EOL) at once.
    ///
    /// # Errors
    ///
    /// The connection is gone.
    pub(crate) async fn send_heartbeat(&mut self) -> Result<(), Closed> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.extend_from_slice(stompede_stomp::HEARTBEAT);
        let result = self.feed_encoded(&mut scratch).await;
        self.scratch = scratch;
        result?;
        self.flush().await
    }

    /// Writes out what was queued: over xhr, one xhr_send request with every queued frame,
    /// returning once the server answered.
    ///
    /// # Errors
    ///
    /// The connection is gone, or xhr_send was refused.
    pub(crate) async fn flush(&mut self) -> Result<(), Closed> {
        match &mut self.outbound {
            Outbound::Ws(sink) => sink.flush().await.map_err(|e| ws_closed(&e)),
            Outbound::SockJs {
                sender, xhr: false, ..
            } => sender.flush().await.map_err(Closed::from),
            Outbound::SockJs {
                sender,
                xhr: true,
                batch,
                batched,
            } => {
                if *batched == 0 {
                    return Ok(());
                }
                batch.extend_from_slice(b"]");
                *batched = 0;
                let json =
                    Utf8Bytes::try_from(batch.split().freeze()).map_err(|_| Closed::BadFrame)?;
                sender.feed_json(json).await.map_err(Closed::from)
            }
        }
    }

    /// Ends the connection from the client side: a WebSocket close frame (nothing over xhr,
    /// whose session the server forgets after its disconnect delay). Errors are ignored: the
    /// run is over.
    pub(crate) async fn close(&mut self) {
        match &mut self.outbound {
            Outbound::Ws(sink) => {
                let _ = sink.send(Message::Close(None)).await;
            }
            Outbound::SockJs { sender, .. } => sender.close().await,
        }
    }
}
