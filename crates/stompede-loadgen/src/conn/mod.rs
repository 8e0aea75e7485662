//! One STOMP 1.2 client connection over any transport a browser uses: a raw WebSocket, or a
//! SockJS session over websocket, xhr-streaming or xhr-polling. It opens as a [`Writer`] and a
//! [`Reader`], so that one task can read while another writes.
//!
//! Reading goes through [`wire::Scanner`](crate::wire::Scanner): frames are located in the
//! received bytes, not parsed into header maps. Over SockJS the JSON strings are unescaped
//! straight into the scanner's buffer, and outgoing frames are escaped into one reused buffer.
//!
//! This file: transports, targets, opening and subscribing. `halves.rs`: the [`Reader`] and
//! [`Writer`] of an open connection, and how a connection ends ([`Closed`]).

mod halves;

pub(crate) use halves::{Closed, Event, Reader, Writer};

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use futures_util::StreamExt;
use stompede_stomp::{Command, Frame, HeartBeat};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::sockjs::client::{self as sockjs, Endpoint, Failure};
use crate::wire::RawFrame;

/// The WebSocket stream of one client connection.
pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The sub-protocol offered in the WebSocket handshake (STOMP 1.2 only).
const SUBPROTOCOL: &str = "v12.stomp";

/// Bytes read from the socket at once. tungstenite zero-fills this much of its buffer before
/// every read: at its 128 KiB default that memset was 60% of the client's CPU time (perf, 1,000
/// subscribers at 10 msgs/s). Our frames are ~200 bytes, so 8 KiB still takes dozens per read.
const READ_BUFFER: usize = 8 * 1024;

/// Numbers SockJS sessions so that their ids differ.
static SESSIONS: AtomicU32 = AtomicU32::new(0);

/// How a STOMP connection reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Transport {
    /// A raw WebSocket (`ws://host/ws/websocket`), one STOMP frame per text message.
    #[default]
    Websocket,
    /// SockJS (`http://host/ws`) over its websocket transport.
    SockjsWebsocket,
    /// SockJS over xhr-streaming (receive) and xhr_send (send): two HTTP connections.
    SockjsXhrStreaming,
    /// SockJS over xhr-polling (one request per received frame) and xhr_send.
    SockjsXhrPolling,
}

impl Transport {
    /// The name used on the command line and in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::SockjsWebsocket => "sockjs-websocket",
            Transport::SockjsXhrStreaming => "sockjs-xhr-streaming",
            Transport::SockjsXhrPolling => "sockjs-xhr-polling",
        }
    }

    /// The SockJS transport, for the SockJS ones.
    fn sockjs(self) -> Option<crate::sockjs::Transport> {
        match self {
            Transport::Websocket => None,
            Transport::SockjsWebsocket => Some(crate::sockjs::Transport::Websocket),
            Transport::SockjsXhrStreaming => Some(crate::sockjs::Transport::XhrStreaming),
            Transport::SockjsXhrPolling => Some(crate::sockjs::Transport::XhrPolling),
        }
    }

    /// TCP connections one session holds.
    pub(crate) fn sockets(self) -> u64 {
        match self {
            Transport::Websocket | Transport::SockjsWebsocket => 1,
            Transport::SockjsXhrStreaming | Transport::SockjsXhrPolling => 2,
        }
    }

    /// The URL used when none is given: stompede's endpoint on its default port.
    pub(crate) fn default_url(self) -> &'static str {
        match self {
            Transport::Websocket => "ws://127.0.0.1:8080/ws/websocket",
            _ => "http://127.0.0.1:8080/ws",
        }
    }
}

/// Where the connections of a run go, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    transport: Transport,
    url: String,
    host: String,
    kind: TargetKind,
}

#[derive(Debug, Clone)]
enum TargetKind {
    /// A raw WebSocket endpoint at `host:port`.
    Ws { authority: String },
    /// A SockJS endpoint.
    SockJs(Arc<Endpoint>),
}

impl Target {
    /// Checks `url` (or the transport's default) against `transport`: `ws://host:port/path`
    /// for websocket, `http://host:port/prefix` for the SockJS transports.
    ///
    /// # Errors
    ///
    /// The URL does not parse or has the wrong scheme (TLS is not supported).
    pub(crate) fn new(transport: Transport, url: Option<&str>) -> anyhow::Result<Target> {
        let url = url.unwrap_or(transport.default_url()).to_owned();
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid URL {url}: {e}"))?;
        let Some(host) = uri.host().map(str::to_owned) else {
            anyhow::bail!("URL {url} has no host");
        };
        let kind = match transport.sockjs() {
            None => {
                if uri.scheme_str() != Some("ws") {
                    anyhow::bail!(
                        "--transport websocket wants a ws:// URL (such as {}), not {url}",
                        Transport::Websocket.default_url()
                    );
                }
                let port = uri.port_u16().unwrap_or(80);
                TargetKind::Ws {
                    authority: format!("{host}:{port}"),
                }
            }
            Some(_) => TargetKind::SockJs(Arc::new(Endpoint::parse(&url).map_err(|e| {
                e.context(format!(
                    "--transport {} wants the SockJS endpoint's http:// URL (such as {})",
                    transport.as_str(),
                    transport.default_url()
                ))
            })?)),
        };
        Ok(Target {
            transport,
            url,
            host,
            kind,
        })
    }

    /// The URL connections go to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The transport.
    pub(crate) fn transport(&self) -> Transport {
        self.transport
    }

    /// The host part of the URL.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }
}

/// How to open one connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// The `heart-beat` header of CONNECT (0,0 by default: none either way).
    pub(crate) heart_beat: HeartBeat,
    /// Source address of the connection's sockets; the kernel chooses when `None`.
    pub(crate) source: Option<IpAddr>,
}

/// An open STOMP session.
pub(crate) struct Stomp {
    /// The sending half.
    pub(crate) writer: Writer,
    /// The receiving half.
    pub(crate) reader: Reader,
    /// How often the client must send a heart-beat, as negotiated (`None`: never).
    pub(crate) heartbeat_every: Option<Duration>,
}

impl Stomp {
    /// Sends `subscribe` (which carries a `receipt` header with the value `receipt`) and waits
    /// for that receipt. Returns the MESSAGE frames that arrived first (a queue hands held
    /// messages over as soon as the subscription exists).
    ///
    /// # Errors
    ///
    /// The server answers with ERROR or the connection ends first.
    pub(crate) async fn subscribe(
        &mut self,
        subscribe: &Frame,
        receipt: &str,
    ) -> Result<Vec<RawFrame>, OpenError> {
        self.writer
            .send_frame(subscribe)
            .await
            .map_err(OpenError::Closed)?;
        let mut before = Vec::new();
        loop {
            match self.reader.next_event().await {
                Event::Frame(frame) => match frame.command() {
                    Command::Receipt if frame.header("receipt-id").as_deref() == Some(receipt) => {
                        return Ok(before)
                    }
                    Command::Error => {
                        return Err(OpenError::Refused(
                            frame
                                .header("message")
                                .map_or_else(|| "(no message)".to_owned(), |m| m.into_owned()),
                        ))
                    }
                    Command::Message => before.push(frame),
                    // A receipt we did not ask for.
                    _ => {}
                },
                Event::Closed(closed) => return Err(OpenError::Closed(closed)),
            }
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The TCP connection failed (or its source address could not be bound).
    Connect(io::Error),
    /// The WebSocket handshake failed, with the HTTP status if there was one.
    Handshake(Option<u16>, String),
    /// The SockJS session did not open.
    SockJs(Failure),
    /// The server answered CONNECT (or SUBSCRIBE) with ERROR.
    Refused(String),
    /// The server answered CONNECT with another frame.
    Unexpected(Command),
    /// The connection ended before CONNECTED (or the SUBSCRIBE receipt).
    Closed(Closed),
    /// Not open by the setup deadline.
    Timeout,
}

impl OpenError {
    /// The key under which reports count this kind of failure.
    pub(crate) fn key(&self) -> String {
        match self {
            OpenError::Connect(e) => format!("connect-{:?}", e.kind()),
            OpenError::Handshake(Some(status), _) => format!("http-{status}"),
            OpenError::Handshake(None, _) => "handshake".to_owned(),
            OpenError::SockJs(failure) => format!("sockjs-{}", failure.key()),
            OpenError::Refused(_) => "refused".to_owned(),
            OpenError::Unexpected(_) => "unexpected-frame".to_owned(),
            OpenError::Closed(closed) => format!("closed-{closed}"),
            OpenError::Timeout => "setup-timeout".to_owned(),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Connect(e) => write!(f, "cannot connect: {e}"),
            OpenError::Handshake(_, detail) => write!(f, "WebSocket handshake failed: {detail}"),
            OpenError::SockJs(failure) => write!(f, "SockJS session did not open: {failure}"),
            OpenError::Refused(message) => write!(f, "server answered with ERROR: {message}"),
            OpenError::Unexpected(command) => write!(f, "expected CONNECTED, got {command}"),
            OpenError::Closed(closed) => write!(f, "connection closed during setup ({closed})"),
            OpenError::Timeout => f.write_str("not open within --setup-timeout"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Opens a connection to `target`, sends CONNECT (1.2, `options.heart_beat`) and waits for
/// CONNECTED.
///
/// # Errors
///
/// See [`OpenError`].
pub(crate) async fn open(target: &Target, options: Options) -> Result<Stomp, OpenError> {
    let (mut writer, mut reader) = match &target.kind {
        TargetKind::Ws { authority } => open_ws(&target.url, authority, options.source).await?,
        TargetKind::SockJs(endpoint) => {
            let transport = target
                .transport
                .sockjs()
                .unwrap_or(crate::sockjs::Transport::Websocket);
            let session = sockjs::session_id(SESSIONS.fetch_add(1, Relaxed));
            let (sender, receiver) = sockjs::open(endpoint, transport, &session, options.source)
                .await
                .map_err(OpenError::SockJs)?;
            let xhr = transport != crate::sockjs::Transport::Websocket;
            (Writer::sockjs(sender, xhr), Reader::sockjs(receiver))
        }
    };
    let connect = Frame::new(Command::Connect)
        .with_header("accept-version", "1.2")
        .with_header("host", target.host.as_str())
        .with_header("heart-beat", options.heart_beat.to_header());
    writer
        .send_frame(&connect)
        .await
        .map_err(OpenError::Closed)?;
    match reader.next_event().await {
        Event::Frame(frame) if frame.command() == Command::Connected => {
            let theirs = frame
                .header("heart-beat")
                .and_then(|h| HeartBeat::parse(&h).ok())
                .unwrap_or_default();
            let (heartbeat_every, _) = HeartBeat::negotiate(options.heart_beat, theirs);
            Ok(Stomp {
                writer,
                reader,
                heartbeat_every,
            })
        }
        Event::Frame(frame) if frame.command() == Command::Error => Err(OpenError::Refused(
            frame
                .header("message")
                .map_or_else(|| "(no message)".to_owned(), |m| m.into_owned()),
        )),
        Event::Frame(frame) => Err(OpenError::Unexpected(frame.command())),
        Event::Closed(closed) => Err(OpenError::Closed(closed)),
    }
}

/// Subscription id of [`open_subscribed`] (each connection has one subscription).
pub(crate) const SUBSCRIPTION_ID: &str = "0";

/// Opens a connection and subscribes to `destination` with `ack` and `extra` headers,
/// returning once the SUBSCRIBE receipt is in, with the messages that came before it.
///
/// # Errors
///
/// The connection or the subscription fails.
pub(crate) async fn open_subscribed(
    target: &Target,
    options: Options,
    destination: &str,
    ack: &str,
    extra: &[(&str, String)],
    index: u64,
) -> Result<(Stomp, Vec<RawFrame>), OpenError> {
    let mut stomp = open(target, options).await?;
    let receipt = format!("subscribe-{index}");
    let mut subscribe = Frame::new(Command::Subscribe)
        .with_header("id", SUBSCRIPTION_ID)
        .with_header("destination", destination)
        .with_header("ack", ack)
        .with_header("receipt", receipt.as_str());
    for (name, value) in extra {
        subscribe = subscribe.with_header(*name, value.as_str());
    }
    let before = stomp.subscribe(&subscribe, &receipt).await?;
    Ok((stomp, before))
}

/// The WebSocket handshake, offering `v12.stomp`, on a socket from `source`.
async fn open_ws(
    url: &str,
    authority: &str,
    source: Option<IpAddr>,
) -> Result<(Writer, Reader), OpenError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| OpenError::Handshake(None, e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let stream = crate::net::connect(authority, source)
        .await
        .map_err(OpenError::Connect)?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _response) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .map_err(|e| match e {
        WsError::Http(response) => OpenError::Handshake(
            Some(response.status().as_u16()),
            format!("status {}", response.status()),
        ),
        other => OpenError::Handshake(None, other.to_string()),
    })?;
    let (sink, stream) = ws.split();
    Ok((Writer::websocket(sink), Reader::websocket(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_match_the_transport() {
        let t = Target::new(Transport::Websocket, None).expect("default URL");
        assert_eq!(t.url(), "ws://127.0.0.1:8080/ws/websocket");
        assert!(matches!(&t.kind, TargetKind::Ws { authority } if authority == "127.0.0.1:8080"));
        let t = Target::new(Transport::SockjsXhrPolling, Some("http://localhost:9/ws/"))
            .expect("SockJS URL");
        assert_eq!(t.host(), "localhost");
        assert_eq!(t.transport().as_str(), "sockjs-xhr-polling");
        for (transport, bad) in [
            (Transport::Websocket, "http://127.0.0.1:8080/ws"),
            (Transport::Websocket, "wss://127.0.0.1/ws/websocket"),
            (Transport::Websocket, "ws:///nohost"),
            (
                Transport::SockjsWebsocket,
                "ws://127.0.0.1:8080/ws/websocket",
            ),
            (
                Transport::SockjsXhrStreaming,
                "http://127.0.0.1:8080/ws?x=1",
            ),
            (Transport::SockjsXhrStreaming, "not a url"),
        ] {
            assert!(Target::new(transport, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sockjs_failures_keep_their_codes() {
        let rows = [
            (
                Failure::Closed {
                    code: 4500,
                    reason: "slow".to_owned(),
                },
                "4500",
            ),
            (Failure::WsClosed(Some(1001)), "1001"),
            (Failure::WsClosed(None), "no-code"),
            (
                Failure::Status {
                    request: "xhr",
                    status: 404,
                },
                "http-404",
            ),
            (Failure::Eof, "eof"),
            (Failure::Protocol("x".to_owned()), "bad-frame"),
            (Failure::Io("x".to_owned()), "transport-error"),
        ];
        for (failure, want) in rows {
            assert_eq!(Closed::from(failure).to_string(), want);
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            OpenError::Connect(refused).key(),
            "connect-ConnectionRefused"
        );
        let closed = Closed::Code {
            code: 1002,
            reason: "protocol error".to_owned(),
        };
        assert_eq!(closed.reason(), "1002 protocol error");
        assert_eq!(OpenError::Closed(closed).key(), "closed-1002");
        assert_eq!(Closed::Eof.reason(), "eof");
    }
}
