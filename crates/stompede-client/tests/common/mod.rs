//! Test harness: the real stompede server on 127.0.0.1 and helpers to drive the client
//! against it. Every wait is bounded (`WAIT`), so a broken client fails a test instead of
//! hanging it.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use stompede_client::{
    Backoff, Client, ClientConfig, Message, SockJsTransport, State, Subscription, Transport,
};
use stompede_server::{Config, Stompede};

/// Longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The transports every scenario runs on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    WebSocket,
    SockJsWebSocket,
    XhrStreaming,
    XhrPolling,
}

pub struct TestServer {
    pub addr: SocketAddr,
    server: Stompede,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(config, listener)
    }

    /// A server on `addr`, which a previous server just left.
    pub async fn start_on(config: Config, addr: SocketAddr) -> TestServer {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => return Self::serve(config, listener),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        }
    }

    fn serve(config: Config, listener: tokio::net::TcpListener) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let server = Stompede::new(config);
        let task = tokio::spawn(server.clone().serve(listener));
        TestServer { addr, server, task }
    }

    /// The URL `kind` connects to.
    pub fn url(&self, kind: Kind) -> String {
        match kind {
            Kind::WebSocket => format!("ws://{}/ws/websocket", self.addr),
            _ => format!("http://{}/ws", self.addr),
        }
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

/// The server's defaults, minus the static files and with a short grace period.
pub fn server_config() -> Config {
    let mut config = Config::default();
    config.web.root = String::new();
    config.shutdown.grace = Duration::from_secs(2);
    config
}

pub fn transport(kind: Kind) -> Transport {
    match kind {
        Kind::WebSocket => Transport::WebSocket,
        Kind::SockJsWebSocket => Transport::SockJs(SockJsTransport::WebSocket),
        Kind::XhrStreaming => Transport::SockJs(SockJsTransport::XhrStreaming),
        Kind::XhrPolling => Transport::SockJs(SockJsTransport::XhrPolling),
    }
}

pub fn client_config(server: &TestServer, kind: Kind) -> ClientConfig {
    ClientConfig::new(server.url(kind))
        .transport(transport(kind))
        .receipt_timeout(WAIT)
        .connect_timeout(WAIT)
}

pub async fn connect(server: &TestServer, kind: Kind) -> Client {
    Client::connect(client_config(server, kind))
        .await
        .expect("connect")
}

/// A backoff short enough for tests.
pub fn quick_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(50), Duration::from_millis(500))
}

/// The next item of `subscription`, which must be a message.
pub async fn next(subscription: &mut Subscription) -> Message {
    match tokio::time::timeout(WAIT, subscription.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(Some(Err(e))) => panic!("subscription error: {e:?}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no message within {WAIT:?}"),
    }
}

/// The next `n` messages' bodies as text.
pub async fn bodies(subscription: &mut Subscription, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let message = next(subscription).await;
        out.push(message.body_text().expect("utf-8 body").to_owned());
    }
    out
}

/// Waits (bounded) until `client` is in a state `f` accepts; returns it.
pub async fn wait_state(client: &Client, f: impl FnMut(&State) -> bool) -> State {
    let mut states = client.state_changes();
    let state = tokio::time::timeout(WAIT * 2, states.wait_for(f))
        .await
        .expect("state reached in time")
        .expect("state watch open");
    state.clone()
}

/// Checks that nothing arrives on `subscription` for a short while (a bound, not a timing
/// assertion: used after a marker message proved the order).
pub async fn nothing_within(subscription: &mut Subscription, within: Duration) {
    if let Ok(item) = tokio::time::timeout(within, subscription.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}
