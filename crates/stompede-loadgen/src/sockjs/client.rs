//! One SockJS client session over the websocket, xhr-streaming or xhr-polling transport, split
//! into a [`Receiver`] (frames from the server) and a [`Sender`] (messages to it), as
//! sockjs-client drives them.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::frame::{self, Frame, StreamFrames};
use super::http::{self, BodyDecoder, HttpConn};
use super::Transport;
use crate::payload::write_timestamp;
use crate::report::close_reason;

/// The server id in session URLs. Servers ignore it (it is for load balancers).
const SERVER_ID: &str = "000";
/// Content type of xhr_send bodies, as sockjs-client sends them.
const SEND_CONTENT_TYPE: &str = "text/plain;charset=UTF-8";
/// Bytes read from a WebSocket at once (tungstenite zero-fills its read buffer; see `conn/mod.rs`).
const WS_READ_BUFFER: usize = 8 * 1024;

/// The WebSocket stream of one session.
type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A SockJS endpoint: `http://host:port/prefix`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    /// The prefix path without a trailing slash, e.g. `/broadcast`.
    prefix: String,
}

impl Endpoint {
    /// Parses the endpoint URL given on the command line.
    ///
    /// # Errors
    ///
    /// Not an `http://host:port/prefix` URL (https is not supported, nor a query).
    pub(crate) fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid endpoint URL {url}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("endpoint URL {url} must start with http://");
        }
        let Some(host) = uri.host() else {
            bail!("endpoint URL {url} has no host");
        };
        if uri.query().is_some() {
            bail!("endpoint URL {url} must not have a query");
        }
        let port = uri.port_u16().unwrap_or(80);
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Endpoint {
            authority: format!("{host}:{port}"),
            prefix,
        })
    }

    /// The path of `transport` for `session`.
    fn path(&self, session: &str, transport: &str) -> String {
        format!("{}/{SERVER_ID}/{session}/{transport}", self.prefix)
    }
}

/// A random session id per session, as sockjs-client draws them (no two runs share one).
pub(crate) fn session_id(index: u32) -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(index);
    format!("{:016x}{index}", hasher.finish())
}

/// How a session ended, seen from the client.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The server sent `c[code,"reason"]`.
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// An HTTP request of the session got this status.
    Status {
        /// `xhr_streaming`, `xhr_send` or `websocket`.
        request: &'static str,
        /// The status code.
        status: u16,
    },
    /// The WebSocket was closed (with this close code) without a SockJS close frame.
    WsClosed(Option<u16>),
    /// The connection ended without a close frame.
    Eof,
    /// The server sent something that is not SockJS or HTTP.
    Protocol(String),
    /// A socket error.
    Io(String),
}

impl Failure {
    /// The key under which the report counts this kind of ending.
    pub(crate) fn key(&self) -> String {
        match self {
            Failure::Closed { code, .. } => format!("c{code}"),
            Failure::Status { request, status } => format!("{request}-{status}"),
            Failure::WsClosed(Some(code)) => format!("ws-{code}"),
            Failure::WsClosed(None) => "ws-no-code".to_owned(),
            Failure::Eof => "eof".to_owned(),
            Failure::Protocol(_) => "protocol-error".to_owned(),
            Failure::Io(_) => "io-error".to_owned(),
        }
    }

    /// How reports name this ending among the server's closes: a close code with its reason
    /// (`4500 send buffer size limit exceeded`, the same as over STOMP), else the key.
    pub(crate) fn reason(&self) -> String {
        match self {
            Failure::Closed { code, reason } => close_reason(*code, reason),
            Failure::WsClosed(Some(code)) => close_reason(*code, ""),
            other => other.key(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Closed { code, reason } => {
                write!(f, "closed by the server: {code} {reason:?}")
            }
            Failure::Status { request, status } => write!(f, "{request} answered {status}"),
            Failure::WsClosed(Some(code)) => write!(f, "WebSocket closed with {code}"),
            Failure::WsClosed(None) => f.write_str("WebSocket closed without a code"),
            Failure::Eof => f.write_str("connection ended without a close frame"),
            Failure::Protocol(detail) => write!(f, "protocol error: {detail}"),
            Failure::Io(detail) => write!(f, "i/o error: {detail}"),
        }
    }
}

impl From<http::ConnError> for Failure {
    fn from(e: http::ConnError) -> Self {
        match e {
            http::ConnError::Io(e) => Failure::Io(e.to_string()),
            http::ConnError::Eof => Failure::Eof,
            http::ConnError::Http(e) => Failure::Protocol(e.to_string()),
        }
    }
}

impl From<frame::StreamError> for Failure {
    fn from(e: frame::StreamError) -> Self {
        Failure::Protocol(e.to_string())
    }
}

/// Opens a session: connects the receiving side (from `source`, if given) and waits for the
/// `o` frame.
///
/// # Errors
///
/// The connection or handshake fails, or the first frame is not `o`.
pub(crate) async fn open(
    endpoint: &Arc<Endpoint>,
    transport: Transport,
    session: &str,
    source: Option<IpAddr>,
) -> Result<(Sender, Receiver), Failure> {
    let (sender, mut receiver) = match transport {
        Transport::Websocket => {
            let url = format!(
                "ws://{}{}",
                endpoint.authority,
                endpoint.path(session, "websocket")
            );
            let config = WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER);
            let stream = crate::net::connect(&endpoint.authority, source)
                .await
                .map_err(|e| Failure::Io(e.to_string()))?;
            let (ws, _response) = tokio_tungstenite::client_async_with_config(
                url.as_str(),
                MaybeTlsStream::Plain(stream),
                Some(config),
            )
            .await
            .map_err(|e| match e {
                WsError::Http(response) => Failure::Status {
                    request: "websocket",
                    status: response.status().as_u16(),
                },
                WsError::Io(e) => Failure::Io(e.to_string()),
                other => Failure::Protocol(format!("WebSocket handshake: {other}")),
            })?;
            let (sink, stream) = ws.split();
            (Sender::Ws(sink), Receiver::Ws(stream))
        }
        Transport::XhrStreaming | Transport::XhrPolling => {
            let polling = transport == Transport::XhrPolling;
            let path = endpoint.path(session, if polling { "xhr" } else { "xhr_streaming" });
            (
                Sender::Xhr(XhrSender {
                    endpoint: endpoint.clone(),
                    path: endpoint.path(session, "xhr_send"),
                    source,
                    conn: None,
                }),
                Receiver::Xhr(Box::new(XhrReceiver {
                    endpoint: endpoint.clone(),
                    request: http::request("POST", &path, &endpoint.authority, None, b""),
                    source,
                    polling,
                    conn: None,
                    body: None,
                    frames: if polling {
                        StreamFrames::without_prelude()
                    } else {
                        StreamFrames::new()
                    },
                    responses: 0,
                })),
            )
        }
    };
    let first = receiver.next_frame().await?;
    match frame::parse(&first) {
        Ok(Frame::Open) => Ok((sender, receiver)),
        Ok(Frame::Close { code, reason }) => Err(Failure::Closed {
            code,
            reason: reason.into_owned(),
        }),
        Ok(_) => Err(Failure::Protocol(format!(
            "first frame is not `o`: {}",
            preview(&first)
        ))),
        Err(e) => Err(Failure::Protocol(format!("{e}: {}", preview(&first)))),
    }
}

/// The start of a frame, for error messages.
pub(crate) fn preview(frame: &[u8]) -> String {
    let cut = &frame[..frame.len().min(80)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if frame.len() > cut.len() {
        text.push('…');
    }
    text
}

/// The receiving side of a session.
pub(crate) enum Receiver {
    /// The WebSocket's reading half: one frame per text message.
    Ws(SplitStream<WsStream>),
    /// Successive xhr_streaming or xhr (polling) requests.
    Xhr(Box<XhrReceiver>),
}

impl Receiver {
    /// The next frame from the server, unparsed.
    ///
    /// Not cancel-safe for xhr-streaming and xhr-polling (a request may be half written):
    /// cancel only to end the session.
    ///
    /// # Errors
    ///
    /// The connection ends or breaks, or the server sends something that is not a frame.
    pub(crate) async fn next_frame(&mut self) -> Result<Bytes, Failure> {
        match self {
            Receiver::Ws(stream) => loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => return Ok(Bytes::from(text)),
                    Some(Ok(Message::Binary(_))) => {
                        return Err(Failure::Protocol("binary WebSocket message".to_owned()))
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        return Err(Failure::WsClosed(frame.map(|f| f.code.into())))
                    }
                    Some(Err(
                        WsError::ConnectionClosed
                        | WsError::AlreadyClosed
                        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                    ))
                    | None => return Err(Failure::Eof),
                    Some(Err(WsError::Io(e))) => return Err(Failure::Io(e.to_string())),
                    Some(Err(e)) => return Err(Failure::Protocol(e.to_string())),
                }
            },
            Receiver::Xhr(xhr) => xhr.next_frame().await,
        }
    }

    /// Responses opened so far (xhr-streaming and xhr-polling; 0 for websocket).
    pub(crate) fn responses(&self) -> u64 {
        match self {
            Receiver::Ws(_) => 0,
            Receiver::Xhr(xhr) => xhr.responses,
        }
    }
}

/// The xhr-streaming receiver: one POST whose chunked response carries frames until the server
/// ends it at its byte limit, then the next POST, on the same connection while the server keeps
/// it alive. The xhr-polling receiver is the same with a response per frame and no prelude.
pub(crate) struct XhrReceiver {
    endpoint: Arc<Endpoint>,
    /// The encoded xhr_streaming (or xhr) request, sent as is each time.
    request: Vec<u8>,
    source: Option<IpAddr>,
    polling: bool,
    conn: Option<HttpConn>,
    /// The body of the response being read, and whether the connection stays open after it.
    body: Option<(BodyDecoder, bool)>,
    frames: StreamFrames,
    responses: u64,
}

impl XhrReceiver {
    async fn next_frame(&mut self) -> Result<Bytes, Failure> {
        loop {
            // Frames already received come first, also after their response has ended.
            if let Some(frame) = self.frames.next_frame()? {
                return Ok(frame);
            }
            let (Some((body, keep_alive)), Some(conn)) = (&mut self.body, &mut self.conn) else {
                self.start_response().await?;
                continue;
            };
            if conn.read_body(body, self.frames.buffer()).await? {
                // The server ended the response: its byte limit was reached (the protocol's
                // normal course: ask again at once) or the session closed (a `c` frame was the
                // last one, and the caller stops reading).
                if !*keep_alive {
                    self.conn = None;
                }
                self.body = None;
            }
        }
    }

    /// Sends the next xhr_streaming (or xhr) request and reads its head.
    async fn start_response(&mut self) -> Result<(), Failure> {
        self.frames.next_response()?;
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(
                HttpConn::connect(&self.endpoint.authority, self.source)
                    .await
                    .map_err(|e| Failure::Io(e.to_string()))?,
            ),
        };
        conn.send(&self.request)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let head = conn.read_head().await?;
        self.responses += 1;
        if head.status != 200 {
            return Err(Failure::Status {
                request: if self.polling { "xhr" } else { "xhr_streaming" },
                status: head.status,
            });
        }
        self.body = Some((BodyDecoder::new(head.body), head.keep_alive));
        Ok(())
    }
}

/// The sending side of a session.
pub(crate) enum Sender {
    /// The WebSocket's writing half: one text message per send.
    Ws(SplitSink<WsStream, Message>),
    /// xhr_send requests, one at a time.
    Xhr(XhrSender),
}

impl Sender {
    /// Sends `messages` the way sockjs-client does: over websocket one text message
    /// (`["…"]`) per message, queued until the next [`Sender::flush`] (or until the queue is
    /// full); over xhr-streaming all of them in one xhr_send request (sockjs-client batches
    /// what was queued while its previous xhr_send was in flight), returning once the server
    /// answered.
    ///
    /// # Errors
    ///
    /// The connection fails, or xhr_send answers anything but 2xx.
    pub(crate) async fn send(&mut self, messages: &[String]) -> Result<(), Failure> {
        match self {
            Sender::Ws(sink) => {
                for message in messages {
                    let json = json_array(std::slice::from_ref(message));
                    sink.feed(Message::Text(json.into()))
                        .await
                        .map_err(ws_send_failure)?;
                }
                Ok(())
            }
            Sender::Xhr(xhr) => xhr.send(json_array(messages).as_bytes()).await,
        }
    }

    /// Queues one text message (a JSON array of strings, built by the caller) on the
    /// WebSocket, or sends it as one xhr_send request and waits for the answer.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub(crate) async fn feed_json(&mut self, json: Utf8Bytes) -> Result<(), Failure> {
        match self {
            Sender::Ws(sink) => sink
                .feed(Message::Text(json))
                .await
                .map_err(ws_send_failure),
            Sender::Xhr(xhr) => xhr.send(json.as_bytes()).await,
        }
    }

    /// Writes out what [`Sender::send`] queued.
    ///
    /// # Errors
    ///
    /// The WebSocket cannot be written.
    pub(crate) async fn flush(&mut self) -> Result<(), Failure> {
        match self {
            Sender::Ws(sink) => sink.flush().await.map_err(ws_send_failure),
            Sender::Xhr(_) => Ok(()),
        }
    }

    /// Ends the session from the client side (a WebSocket close frame; nothing for xhr, whose
    /// session the server forgets after its disconnect delay).
    pub(crate) async fn close(&mut self) {
        if let Sender::Ws(sink) = self {
            let _ = sink.send(Message::Close(None)).await;
        }
    }
}

fn ws_send_failure(e: WsError) -> Failure {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Failure::Eof,
        WsError::Io(e) => Failure::Io(e.to_string()),
        other => Failure::Protocol(other.to_string()),
    }
}

/// xhr_send requests on one keep-alive connection, opened at the first send.
pub(crate) struct XhrSender {
    endpoint: Arc<Endpoint>,
    path: String,
    source: Option<IpAddr>,
    conn: Option<HttpConn>,
}

impl XhrSender {
    async fn send(&mut self, json: &[u8]) -> Result<(), Failure> {
        let request = http::request(
            "POST",
            &self.path,
            &self.endpoint.authority,
            Some(SEND_CONTENT_TYPE),
            json,
        );
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(
                HttpConn::connect(&self.endpoint.authority, self.source)
                    .await
                    .map_err(|e| Failure::Io(e.to_string()))?,
            ),
        };
        conn.send(&request)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let head = conn.read_head().await?;
        conn.skip_body(&mut BodyDecoder::new(head.body)).await?;
        if !head.keep_alive {
            self.conn = None;
        }
        if !(200..300).contains(&head.status) {
            return Err(Failure::Status {
                request: "xhr_send",
                status: head.status,
            });
        }
        Ok(())
    }
}

/// A message of `size` bytes stamped with `ts` (see `payload.rs`): ASCII digits, then `x`.
pub(crate) fn stamped_message(size: usize, ts: u64) -> String {
    let mut body = vec![b'x'; size];
    // `size` is at least 24 (checked by the arguments), more than 20 digits and a pad byte.
    write_timestamp(&mut body, ts);
    String::from_utf8(body).expect("digits and x are ASCII")
}

/// `messages` as the JSON array of strings that a SockJS send carries.
pub(crate) fn json_array(messages: &[String]) -> String {
    // Serializing strings into a String cannot fail.
    serde_json::to_string(messages).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::read_timestamp;

    #[test]
    fn endpoints_parse_and_build_session_paths() {
        let e = Endpoint::parse("http://127.0.0.1:18081/broadcast/").expect("valid");
        assert_eq!(e.authority, "127.0.0.1:18081");
        assert_eq!(e.path("abc", "xhr_send"), "/broadcast/000/abc/xhr_send");
        let e = Endpoint::parse("http://localhost/a/b/echo").expect("valid");
        assert_eq!(e.authority, "localhost:80");
        assert_eq!(e.path("s", "websocket"), "/a/b/echo/000/s/websocket");
        for bad in [
            "ws://h:1/echo",
            "https://h/echo",
            "http://h:1/echo?x=1",
            "not a url",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_ids_differ_and_have_no_dots() {
        let a = session_id(1);
        let b = session_id(1);
        assert_ne!(a, b);
        assert!(!a.contains('.') && !a.is_empty() && a.len() <= 256);
    }

    #[test]
    fn stamped_messages_go_out_as_json_arrays() {
        let message = stamped_message(30, 1234);
        assert_eq!(message, "1234xxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_eq!(read_timestamp(message.as_bytes()), Some(1234));
        let json = json_array(&[message.clone(), "q\"\n".to_owned()]);
        let parsed: Vec<String> = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(parsed, [message, "q\"\n".to_owned()]);
    }

    /// A scripted HTTP server: for each accepted connection, for each request on it, reads the
    /// request (head and `Content-Length` body) and writes the next canned response, in pieces.
    /// Returns the requests it saw.
    async fn scripted_server(
        listener: tokio::net::TcpListener,
        connections: Vec<Vec<Vec<&'static [u8]>>>,
    ) -> Vec<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut seen = Vec::new();
        for responses in connections {
            let (mut socket, _) = listener.accept().await.expect("client connects");
            let mut buf = Vec::new();
            for pieces in responses {
                let request = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|n| n.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            let request =
                                String::from_utf8_lossy(&buf[..end + 4 + length]).into_owned();
                            buf.drain(..end + 4 + length);
                            break request;
                        }
                    }
                    let mut chunk = [0u8; 1024];
                    let n = socket.read(&mut chunk).await.expect("read request");
                    assert!(n > 0, "client closed early");
                    buf.extend_from_slice(&chunk[..n]);
                };
                seen.push(request);
                for piece in pieces {
                    socket.write_all(piece).await.expect("write response");
                    socket.flush().await.expect("flush response");
                    tokio::task::yield_now().await;
                }
            }
        }
        seen
    }

    const STREAM_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/javascript; charset=UTF-8\r\n\
                                 Transfer-Encoding: chunked\r\n\r\n";

    fn prelude_chunk() -> &'static [u8] {
        let mut chunk = format!("{:x}\r\n", frame::PRELUDE_LEN + 1).into_bytes();
        chunk.extend(std::iter::repeat_n(b'h', frame::PRELUDE_LEN));
        chunk.extend_from_slice(b"\n\r\n");
        Vec::leak(chunk)
    }

    fn messages(raw: &[u8]) -> Vec<String> {
        match frame::parse(raw) {
            Ok(Frame::Messages(m)) => m.into_iter().map(|m| m.into_owned()).collect(),
            other => panic!("{:?}: {other:?}", preview(raw)),
        }
    }

    #[tokio::test]
    async fn xhr_streaming_reconnects_when_a_response_ends_and_loses_nothing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(scripted_server(
            listener,
            vec![
                // First connection: two responses, kept alive between them.
                vec![
                    // The session opens; a frame split across chunks and across writes.
                    vec![
                        STREAM_HEAD,
                        prelude_chunk(),
                        b"2\r\no\n\r\n4\r\na[\"1\r\n",
                        b"3\r\n\"]\n\r\n0\r\n\r\n",
                    ],
                    // The next response ends the connection.
                    vec![
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
                        prelude_chunk(),
                        b"d\r\na[\"2\",\"3\"]\nh\n\r\n0\r\n\r\n",
                    ],
                ],
                // Second connection: the session is closed.
                vec![vec![
                    STREAM_HEAD,
                    prelude_chunk(),
                    b"13\r\nc[3000,\"Go away!\"]\n\r\n0\r\n\r\n",
                ]],
            ],
        ));
        let endpoint = Arc::new(Endpoint::parse(&format!("http://{addr}/echo")).expect("url"));
        let (_sender, mut receiver) = open(&endpoint, Transport::XhrStreaming, "s1", None)
            .await
            .expect("the session opens");
        let frame = receiver.next_frame().await.expect("first message");
        assert_eq!(messages(&frame), ["1"]);
        let frame = receiver.next_frame().await.expect("after the reconnect");
        assert_eq!(messages(&frame), ["2", "3"]);
        let frame = receiver.next_frame().await.expect("heartbeat");
        assert!(matches!(frame::parse(&frame), Ok(Frame::Heartbeat)));
        let frame = receiver.next_frame().await.expect("close frame");
        assert!(matches!(
            frame::parse(&frame),
            Ok(Frame::Close { code: 3000, .. })
        ));
        assert_eq!(receiver.responses(), 3);
        let requests = server.await.expect("server task");
        assert_eq!(requests.len(), 3);
        for request in requests {
            assert!(
                request.starts_with("POST /echo/000/s1/xhr_streaming HTTP/1.1\r\n"),
                "{request}"
            );
        }
    }

    #[tokio::test]
    async fn xhr_polling_asks_again_after_every_response() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(scripted_server(
            listener,
            vec![
                vec![
                    vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no\n"],
                    // A frame split across writes, then a chunked response with two frames.
                    vec![
                        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\na[\"x\",",
                        b"\"y\"]\n",
                    ],
                    vec![
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                        b"4\r\nh\na[\r\n5\r\n\"z\"]\n\r\n0\r\n\r\n",
                    ],
                ],
                // A new connection after the close: the session is gone.
                vec![vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]],
            ],
        ));
        let endpoint = Arc::new(Endpoint::parse(&format!("http://{addr}/ws")).expect("url"));
        let (_sender, mut receiver) = open(&endpoint, Transport::XhrPolling, "p1", None)
            .await
            .expect("the session opens");
        let frame = receiver.next_frame().await.expect("first poll");
        assert_eq!(messages(&frame), ["x", "y"]);
        let frame = receiver.next_frame().await.expect("heartbeat");
        assert!(matches!(frame::parse(&frame), Ok(Frame::Heartbeat)));
        let frame = receiver.next_frame().await.expect("same response");
        assert_eq!(messages(&frame), ["z"]);
        let failure = receiver.next_frame().await.expect_err("404");
        assert_eq!(failure.key(), "xhr-404");
        assert_eq!(receiver.responses(), 4);
        let requests = server.await.expect("server task");
        assert_eq!(requests.len(), 4);
        for request in requests {
            assert!(
                request.starts_with("POST /ws/000/p1/xhr HTTP/1.1\r\n"),
                "{request}"
            );
        }
    }

    #[tokio::test]
    async fn xhr_streaming_reports_a_response_cut_inside_a_frame() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(scripted_server(
            listener,
            vec![vec![vec![
                STREAM_HEAD,
                prelude_chunk(),
                b"2\r\no\n\r\n3\r\na[\"\r\n0\r\n\r\n",
            ]]],
        ));
        let endpoint = Arc::new(Endpoint::parse(&format!("http://{addr}/echo")).expect("url"));
        let (_sender, mut receiver) = open(&endpoint, Transport::XhrStreaming, "s2", None)
            .await
            .expect("the session opens");
        let failure = receiver.next_frame().await.expect_err("cut frame");
        assert!(matches!(failure, Failure::Protocol(_)), "{failure}");
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn xhr_send_posts_json_and_reports_bad_statuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(scripted_server(
            listener,
            vec![vec![
                vec![b"HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n\r\n"],
                vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"],
            ]],
        ));
        let endpoint = Arc::new(Endpoint::parse(&format!("http://{addr}/echo")).expect("url"));
        let mut sender = Sender::Xhr(XhrSender {
            endpoint: endpoint.clone(),
            path: endpoint.path("s3", "xhr_send"),
            source: None,
            conn: None,
        });
        sender
            .send(&["a".to_owned(), "b\"".to_owned()])
            .await
            .expect("204 is success");
        let failure = sender.send(&["c".to_owned()]).await.expect_err("404");
        assert_eq!(failure.key(), "xhr_send-404");
        let requests = server.await.expect("server task");
        assert!(requests[0].starts_with("POST /echo/000/s3/xhr_send HTTP/1.1\r\n"));
        assert!(
            requests[0].ends_with("\r\n\r\n[\"a\",\"b\\\"\"]"),
            "{}",
            requests[0]
        );
    }
}
