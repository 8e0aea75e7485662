//! STOMP over one WebSocket: each frame one message (text when it is UTF-8, binary
//! otherwise); frames from the server may be split over or batched in messages.

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{Error, TransportError};

/// A client WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `url`, offering `subprotocols` (none if empty), accepting messages of
/// at most `max_message` bytes.
///
/// # Errors
///
/// [`Error::Config`] for a URL that is not `ws://`; [`Error::Transport`] if the connection or
/// the handshake fails.
pub(crate) async fn open(
    url: &str,
    subprotocols: &[String],
    max_message: usize,
) -> Result<Ws, Error> {
    if !url.starts_with("ws://") {
        return Err(Error::Config(format!(
            "websocket url must start with ws:// (TLS is not supported): {url:?}"
        )));
    }
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::Config(format!("invalid websocket url {url:?}: {e}")))?;
    if !subprotocols.is_empty() {
        let offer = HeaderValue::from_str(&subprotocols.join(", "))
            .map_err(|_| Error::Config(format!("invalid subprotocols {subprotocols:?}")))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offer);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(TransportError::websocket)?;
    Ok(ws)
}

/// The next message of `stream` that carries data (text or binary). Cancel-safe.
pub(crate) async fn next_message(stream: &mut SplitStream<Ws>) -> Result<Message, TransportError> {
    loop {
        match stream.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => return Ok(message),
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(frame) => TransportError::Closed {
                        code: u16::from(frame.code),
                        reason: frame.reason.as_str().to_owned(),
                    },
                    None => TransportError::Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                })
            }
            // Pings are answered by tungstenite itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(e)) => return Err(TransportError::websocket(e)),
            None => return Err(TransportError::Ended),
        }
    }
}

/// Splits a WebSocket carrying STOMP frames.
pub(crate) fn split(ws: Ws) -> (WsWriter, WsReader) {
    let (sink, stream) = ws.split();
    (WsWriter { sink }, WsReader { stream })
}

/// Receiving half of STOMP over a raw WebSocket.
#[derive(Debug)]
pub(crate) struct WsReader {
    stream: SplitStream<Ws>,
}

impl WsReader {
    pub(crate) async fn recv(&mut self) -> Result<Bytes, TransportError> {
        Ok(match next_message(&mut self.stream).await? {
            Message::Text(text) => Bytes::from(text),
            Message::Binary(bytes) => bytes,
            // `next_message` returns data messages only.
            _ => Bytes::new(),
        })
    }
}

/// Sending half of STOMP over a raw WebSocket.
#[derive(Debug)]
pub(crate) struct WsWriter {
    sink: SplitSink<Ws, Message>,
}

impl WsWriter {
    /// Sends each frame as one message, flushing once.
    pub(crate) async fn write(&mut self, frames: &[Bytes]) -> Result<(), TransportError> {
        for frame in frames {
            let message = match Utf8Bytes::try_from(frame.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(frame.clone()),
            };
            self.sink
                .feed(message)
                .await
                .map_err(TransportError::websocket)?;
        }
        self.sink.flush().await.map_err(TransportError::websocket)
    }

    /// Sends a close frame; the server's reply arrives on the reading half.
    pub(crate) async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}
