//! Test harness: the real server on 127.0.0.1:0 and a small STOMP-over-WebSocket client built on
//! the project's own codec. Every wait is bounded (`WAIT`), so a broken server fails a test
//! instead of hanging it; no test asserts a timing.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use stompede_server::app::Handlers;
use stompede_server::{Config, Stompede};
use stompede_stomp::{encode, Command, Decoder, Frame, Limits, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Stompede,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        Self::start_server(Stompede::new(config)).await
    }

    pub async fn start_with(config: Config, handlers: Handlers) -> TestServer {
        Self::start_server(Stompede::new(config).handlers(handlers)).await
    }

    pub async fn start_server(server: Stompede) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(server.clone().serve(listener));
        TestServer { addr, server, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws/websocket", self.addr)
    }

    /// Cancels the shutdown token and waits for `serve` to return.
    pub async fn shutdown(self) {
        self.server.shutdown_token().cancel();
        tokio::time::timeout(WAIT * 2, self.task)
            .await
            .expect("server stops within the grace period")
            .expect("server task")
            .expect("serve result");
    }
}

/// A config with small limits so tests run fast.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.shutdown.grace = Duration::from_secs(5);
    config
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    ws: Ws,
    decoder: Decoder,
    buf: BytesMut,
    pub version: Version,
    /// Subprotocol the server selected.
    pub protocol: Option<String>,
}

/// What a read produced.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    Heartbeat,
    Closed(Option<u16>),
}

impl Client {
    /// Opens a WebSocket offering the three STOMP subprotocols.
    pub async fn open(url: &str) -> Client {
        Self::open_with(url, Some("v10.stomp, v11.stomp, v12.stomp"), None)
            .await
            .expect("websocket handshake")
    }

    /// Opens a WebSocket with the given subprotocol offer and Origin header.
    pub async fn open_with(
        url: &str,
        protocols: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(p) = protocols {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
        }
        if let Some(o) = origin {
            request
                .headers_mut()
                .insert("Origin", o.parse().expect("header"));
        }
        let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("handshake within WAIT")?;
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().expect("ascii").to_owned());
        Ok(Client {
            ws,
            decoder: Decoder::new(Limits {
                max_frame_len: 64 << 20,
                ..Limits::default()
            }),
            buf: BytesMut::new(),
            version: Version::V1_2,
            protocol,
        })
    }

    /// Opens, sends CONNECT (1.2, no heart-beats), and expects CONNECTED.
    pub async fn connect(url: &str) -> Client {
        let mut client = Self::open(url).await;
        let connected = client
            .handshake(
                Frame::new(Command::Connect)
                    .with_header("accept-version", "1.2")
                    .with_header("host", "localhost")
                    .with_header("heart-beat", "0,0"),
            )
            .await;
        assert_eq!(connected.command(), Command::Connected, "{connected:?}");
        client
    }

    /// Sends `connect` and returns the reply (CONNECTED or ERROR).
    pub async fn handshake(&mut self, connect: Frame) -> Frame {
        self.send(&connect).await;
        let reply = self.recv().await;
        if reply.command() == Command::Connected {
            // CONNECTED without `version` is the STOMP 1.0 answer.
            let v = reply
                .header("version")
                .and_then(Version::parse)
                .unwrap_or(Version::V1_0);
            self.version = v;
            self.decoder.set_version(v);
        }
        reply
    }

    pub async fn send(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        encode(frame, self.version, &mut out);
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes).await.expect("websocket send");
    }

    /// Sends one WebSocket message; the error if the server reset the connection meanwhile.
    pub async fn try_send_raw(
        &mut self,
        bytes: &[u8],
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let message = match std::str::from_utf8(bytes) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(bytes.to_vec()),
        };
        self.ws.send(message).await
    }

    /// The next frame; heart-beats are skipped. Panics if the connection closes or nothing
    /// arrives within `WAIT`.
    pub async fn recv(&mut self) -> Frame {
        loop {
            match self.next_event().await {
                Event::Frame(f) => return f,
                Event::Heartbeat => {}
                Event::Closed(code) => {
                    panic!("connection closed ({code:?}) while expecting a frame")
                }
            }
        }
    }

    /// The next frame, heart-beat or close, within `WAIT`.
    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.next_event_unbounded())
            .await
            .expect("server answered within WAIT")
    }

    /// Like `next_event`, but `None` if nothing arrives within `within` (for "nothing comes"
    /// checks: a bound, never a timing assertion on the server).
    pub async fn maybe_event(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.next_event_unbounded())
            .await
            .ok()
    }

    async fn next_event_unbounded(&mut self) -> Event {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .expect("server frames decode")
            {
                return Event::Frame(frame);
            }
            match self.ws.next().await {
                None => return Event::Closed(None),
                Some(Err(_)) => return Event::Closed(None),
                Some(Ok(Message::Close(frame))) => {
                    return Event::Closed(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(Message::Text(t))) => {
                    if t.as_str().bytes().all(|b| b == b'\n' || b == b'\r') && self.buf.is_empty() {
                        return Event::Heartbeat;
                    }
                    self.buf.extend_from_slice(t.as_bytes());
                }
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Reads until the server closes; returns the close code. Frames before it are returned too.
    pub async fn closed(&mut self) -> (Vec<Frame>, Option<u16>) {
        let mut frames = Vec::new();
        loop {
            match self.next_event().await {
                Event::Frame(f) => frames.push(f),
                Event::Heartbeat => {}
                Event::Closed(code) => return (frames, code),
            }
        }
    }

    /// Expects an ERROR frame followed by the close; returns the ERROR.
    pub async fn expect_error(&mut self) -> (Frame, Option<u16>) {
        let (frames, code) = self.closed().await;
        let error = frames
            .into_iter()
            .find(|f| f.command() == Command::Error)
            .expect("an ERROR frame before the close");
        assert!(
            error.header("message").is_some(),
            "ERROR has a message header"
        );
        (error, code)
    }

    /// SUBSCRIBE with a receipt, waiting for it; returns messages that arrived before the
    /// receipt (a queue hands held messages over as soon as the subscription exists).
    pub async fn subscribe(&mut self, id: &str, destination: &str, ack: &str) -> Vec<Frame> {
        let receipt = format!("sub-{id}");
        self.send(
            &Frame::new(Command::Subscribe)
                .with_header("id", id)
                .with_header("destination", destination)
                .with_header("ack", ack)
                .with_header("receipt", receipt.as_str()),
        )
        .await;
        self.expect_receipt(&receipt).await
    }

    /// SEND with a receipt, waiting for it (messages that arrive first are returned).
    pub async fn send_with_receipt(&mut self, frame: Frame, receipt: &str) -> Vec<Frame> {
        self.send(&frame.with_header("receipt", receipt)).await;
        self.expect_receipt(receipt).await
    }

    /// Reads until RECEIPT `receipt`; returns the frames before it.
    pub async fn expect_receipt(&mut self, receipt: &str) -> Vec<Frame> {
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame.command() == Command::Receipt {
                assert_eq!(frame.header("receipt-id"), Some(receipt));
                return before;
            }
            assert_ne!(
                frame.command(),
                Command::Error,
                "unexpected ERROR: {frame:?}"
            );
            before.push(frame);
        }
    }

    pub async fn publish(&mut self, destination: &str, body: &str) {
        self.send(
            &Frame::new(Command::Send)
                .with_header("destination", destination)
                .with_body(body.to_owned()),
        )
        .await;
    }

    /// Reads `n` MESSAGE frames.
    pub async fn messages(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let frame = self.recv().await;
            assert_eq!(frame.command(), Command::Message, "{frame:?}");
            out.push(frame);
        }
        out
    }

    pub async fn close_socket(mut self) {
        let _ = self.ws.close(None).await;
    }
}

pub fn body(frame: &Frame) -> String {
    String::from_utf8(frame.body().to_vec()).expect("utf-8 body")
}

pub fn close_code(code: CloseCode) -> u16 {
    u16::from(code)
}
