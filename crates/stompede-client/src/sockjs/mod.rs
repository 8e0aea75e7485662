//! The SockJS 0.3.3 client side: what Spring's `SockJsClient` does, for the websocket,
//! xhr-streaming and xhr-polling transports.
//!
//! A session starts with `GET {base}/info` (is the websocket transport offered?), then talks
//! to `{base}/{server}/{session}/{transport}` with a random server number and session id.
//! The server's first frame is `o`; then `a[...]` carries messages, `h` heartbeats, and
//! `c[code,"reason"]` ends the session. The client sends JSON arrays of strings: as websocket
//! messages, or in `xhr_send` POSTs.
//!
//! # Layout
//! - `frame.rs`: parsing server frames, encoding client messages. Pure.
//! - `lines.rs`: cutting an XHR response body into frames. Pure.
//! - `http.rs`: the HTTP requests (hyper): `/info`, the receiving task of the XHR transports,
//!   `xhr_send`, and the session cookie.
//! - here: [`connect`], and the session's two halves as the transport layer sees them.

mod frame;
mod http;
mod lines;

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

pub use frame::FrameError;
use frame::SockJsFrame;

use crate::config::SockJsTransport;
use crate::error::{Error, TransportError};
use crate::random;
use crate::transport::websocket::{self, Ws};

/// A SockJS URL prefix, split for building session URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base {
    /// `host:port`.
    authority: String,
    /// The path without a trailing `/`, e.g. `/ws` (or empty).
    path: String,
}

impl Base {
    /// Parses `http://host[:port]/prefix`.
    pub(crate) fn parse(url: &str) -> Result<Base, Error> {
        let invalid = |why: &str| Error::Config(format!("invalid SockJS url {url:?}: {why}"));
        let uri: hyper::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(invalid("TLS is not supported")),
            _ => return Err(invalid("the scheme must be http")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user info is not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query is not supported"));
        }
        Ok(Base {
            authority: authority.as_str().to_owned(),
            path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `http://host/prefix{suffix}`.
    pub(crate) fn http(&self, suffix: &str) -> String {
        format!("http://{}{}{}", self.authority, self.path, suffix)
    }

    /// `ws://host/prefix{suffix}`.
    pub(crate) fn ws(&self, suffix: &str) -> String {
        format!("ws://{}{}{}", self.authority, self.path, suffix)
    }
}

/// `/{server}/{session}`: a server number of three digits and a session id of 16 characters,
/// random.
fn session_path() -> String {
    format!(
        "/{:03}/{}",
        random::next_u64() % 1000,
        random::alphanumeric(16)
    )
}

/// Opens a SockJS session at `url` on `transport`, returning its two halves once the
/// server's `o` frame arrived. `max_frame_len` bounds one SockJS frame. Not bounded in time:
/// the caller is.
pub(crate) async fn connect(
    url: &str,
    transport: SockJsTransport,
    max_frame_len: usize,
) -> Result<(SockJsReader, SockJsWriter), Error> {
    let base = Base::parse(url)?;
    let http = http::Http::new();
    let info = http.info(&base.http("/info")).await?;
    let session = session_path();
    let (reader, writer) = match transport {
        SockJsTransport::WebSocket => {
            if !info.websocket {
                return Err(TransportError::WebSocketUnavailable.into());
            }
            let url = base.ws(&format!("{session}/websocket"));
            let (sink, stream) = websocket::open(&url, &[], max_frame_len).await?.split();
            (ReaderInner::WebSocket(stream), WriterInner::WebSocket(sink))
        }
        SockJsTransport::XhrStreaming | SockJsTransport::XhrPolling => {
            let (receiver, sender) =
                http::open(http, &base.http(&session), transport, max_frame_len);
            (ReaderInner::Http(receiver), WriterInner::Http(sender))
        }
    };
    let mut reader = SockJsReader {
        inner: reader,
        pending: VecDeque::new(),
    };
    loop {
        match reader.inner.next_frame().await? {
            SockJsFrame::Open => break,
            // The xhr-streaming prelude comes before the open frame.
            SockJsFrame::Heartbeat => {}
            SockJsFrame::Close { code, reason } => {
                return Err(TransportError::Closed { code, reason }.into())
            }
            SockJsFrame::Messages(_) => {
                return Err(TransportError::SockJs(FrameError::ExpectedOpen).into())
            }
        }
    }
    tracing::debug!(
        transport = transport.as_str(),
        session,
        "SockJS session open"
    );
    Ok((reader, SockJsWriter { inner: writer }))
}

/// The receiving half of an open SockJS session.
#[derive(Debug)]
pub(crate) struct SockJsReader {
    inner: ReaderInner,
    /// Messages of an `a[...]` frame not yet handed out.
    pending: VecDeque<String>,
}

#[derive(Debug)]
enum ReaderInner {
    WebSocket(SplitStream<Ws>),
    Http(http::HttpReceiver),
}

impl ReaderInner {
    /// The next frame from the server. Cancel-safe.
    async fn next_frame(&mut self) -> Result<SockJsFrame, TransportError> {
        match self {
            ReaderInner::WebSocket(stream) => match websocket::next_message(stream).await? {
                Message::Text(text) => Ok(frame::parse(&text)?),
                _ => Err(FrameError::Binary.into()),
            },
            ReaderInner::Http(receiver) => receiver.next_frame().await,
        }
    }
}

impl SockJsReader {
    /// The next message's bytes; empty for a heartbeat. Cancel-safe: a frame's messages are
    /// queued before any is returned.
    pub(crate) async fn recv(&mut self) -> Result<Bytes, TransportError> {
        if let Some(message) = self.pending.pop_front() {
            return Ok(Bytes::from(message));
        }
        match self.inner.next_frame().await? {
            SockJsFrame::Open => Err(FrameError::UnexpectedOpen.into()),
            SockJsFrame::Heartbeat => Ok(Bytes::new()),
            SockJsFrame::Messages(messages) => {
                self.pending.extend(messages);
                Ok(self
                    .pending
                    .pop_front()
                    .map(Bytes::from)
                    .unwrap_or_default())
            }
            SockJsFrame::Close { code, reason } => Err(TransportError::Closed { code, reason }),
        }
    }

    /// Whether the session runs over a WebSocket (whose close the server answers).
    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self.inner, ReaderInner::WebSocket(_))
    }
}

/// The sending half of an open SockJS session.
#[derive(Debug)]
pub(crate) struct SockJsWriter {
    inner: WriterInner,
}

#[derive(Debug)]
enum WriterInner {
    WebSocket(SplitSink<Ws, Message>),
    Http(http::HttpSender),
}

impl SockJsWriter {
    /// Sends frames as one JSON array: one websocket message or one `xhr_send` request.
    ///
    /// # Errors
    ///
    /// [`Error::NotText`] for a frame that is not UTF-8 (nothing is sent);
    /// [`Error::Transport`] if sending failed.
    pub(crate) async fn write(&mut self, frames: &[Bytes]) -> Result<(), Error> {
        let texts = frames
            .iter()
            .map(|f| std::str::from_utf8(f).map_err(|_| Error::NotText))
            .collect::<Result<Vec<&str>, Error>>()?;
        let body = frame::encode_messages(&texts);
        match &mut self.inner {
            WriterInner::WebSocket(sink) => sink
                .send(Message::text(body))
                .await
                .map_err(TransportError::websocket)?,
            WriterInner::Http(sender) => sender.send(body).await?,
        }
        Ok(())
    }

    /// Closes the websocket (the server answers on the reading half). An HTTP session needs
    /// nothing: the server ends it once its client is gone.
    pub(crate) async fn close(&mut self) {
        if let WriterInner::WebSocket(sink) = &mut self.inner {
            let _ = sink.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let base = Base::parse("http://127.0.0.1:8080/ws/").expect("valid");
        assert_eq!(base.http("/info"), "http://127.0.0.1:8080/ws/info");
        assert_eq!(
            base.ws("/1/a/websocket"),
            "ws://127.0.0.1:8080/ws/1/a/websocket"
        );
        let root = Base::parse("http://example.com").expect("valid");
        assert_eq!(root.http("/info"), "http://example.com/info");
        for bad in [
            "https://example.com/ws",
            "ws://example.com/ws",
            "example.com/ws",
            "http:///ws",
            "http://u:p@example.com/ws",
            "http://example.com/ws?x=1",
            "",
        ] {
            assert!(matches!(Base::parse(bad), Err(Error::Config(_))), "{bad:?}");
        }
    }

    #[test]
    fn session_paths_look_like_sockjs_client_ones() {
        let path = session_path();
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts.len(), 3, "{path}");
        assert_eq!(parts[1].len(), 3);
        assert!(parts[1].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(parts[2].len(), 16);
        assert_ne!(session_path(), path);
    }
}
