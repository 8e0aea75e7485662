//! One in-process run per scenario (and per transport where it matters) against a real
//! `Stompede` on 127.0.0.1:0, with small numbers and short windows. They check that the
//! figures add up — nothing lost, nothing duplicated, every session alive — never how fast
//! anything was.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use stompede_server::handler::{HandlerEndpoint, Message, MessageHandler, SessionHandle};
use stompede_server::sockjs::SockJsOptions;
use stompede_server::{Config, Stompede};

use crate::cli::{Cli, Scenario};

/// Longest a whole scenario run may take before the test fails (a hang, not a timing).
const RUN_BOUND: Duration = Duration::from_secs(60);

/// Sends every message back.
struct Echo;

impl MessageHandler for Echo {
    fn on_message(&self, session: &SessionHandle, message: Message) {
        let _ = match message {
            Message::Text(text) => session.send_text(text),
            Message::Binary(data) => session.send_binary(data),
        };
    }
}

/// The real server, with a raw WebSocket echo beside STOMP.
struct TestServer {
    addr: SocketAddr,
    server: Stompede,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    async fn start() -> TestServer {
        Self::start_with(Config::default()).await
    }

    async fn start_with(mut config: Config) -> TestServer {
        config.shutdown.grace = Duration::from_secs(1);
        config.web.root = String::new();
        let echo = HandlerEndpoint::new(Echo)
            .allowed_origins(["*"])
            .sockjs(SockJsOptions::default());
        let server = Stompede::new(config).endpoint("/echo", echo);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(server.clone().serve(listener));
        TestServer { addr, server, task }
    }

    /// The STOMP endpoint's URL for a transport.
    fn url(&self, transport: &str) -> String {
        if transport == "websocket" {
            format!("ws://{}/ws/websocket", self.addr)
        } else {
            format!("http://{}/ws", self.addr)
        }
    }

    async fn stop(self) {
        self.server.shutdown_token().cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// The scenario a command line (without the program name) selects.
fn scenario(args: &[&str]) -> Scenario {
    let mut argv = vec!["stompede-loadgen"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .scenario
}

const TRANSPORTS: [&str; 4] = [
    "websocket",
    "sockjs-websocket",
    "sockjs-xhr-streaming",
    "sockjs-xhr-polling",
];

#[tokio::test]
async fn fanout_loses_nothing_over_every_transport() {
    let server = TestServer::start().await;
    for transport in TRANSPORTS {
        let url = server.url(transport);
        let Scenario::Fanout(args) = scenario(&[
            "fanout",
            "--url",
            &url,
            "--transport",
            transport,
            "--subscribers",
            "4",
            "--rate",
            "200",
            "--warmup",
            "100ms",
            "--duration",
            "300ms",
        ]) else {
            panic!("fanout");
        };
        let report = tokio::time::timeout(RUN_BOUND, crate::fanout::run(args, 1))
            .await
            .expect("run ends")
            .expect("run succeeds");
        let json = report.to_json();
        assert!(report.sent_measured > 0, "{transport}: {json}");
        assert_eq!(report.subscribers_alive, 4, "{transport}: {json}");
        assert_eq!(report.loss(), 0, "{transport}: {json}");
        assert_eq!(
            report.delivered,
            report.sent_measured * 4,
            "{transport}: {json}"
        );
        assert!(report.drained, "{transport}: {json}");
        assert_eq!(report.errors.count, 0, "{transport}: {json}");
        assert_eq!(json["transport"], transport);
        assert!(report.latency.is_some());
    }
    server.stop().await;
}

#[tokio::test]
async fn fanout_max_mode_is_bounded_and_lossless() {
    let server = TestServer::start().await;
    let url = server.url("websocket");
    let Scenario::Fanout(args) = scenario(&[
        "fanout",
        "--url",
        &url,
        "--subscribers",
        "3",
        "--publishers",
        "2",
        "--rate",
        "0",
        "--max-in-flight",
        "50",
        "--warmup",
        "100ms",
        "--duration",
        "300ms",
    ]) else {
        panic!("fanout");
    };
    let report = tokio::time::timeout(RUN_BOUND, crate::fanout::run(args, 1))
        .await
        .expect("run ends")
        .expect("run succeeds");
    let json = report.to_json();
    assert!(report.sent_measured > 0, "{json}");
    assert_eq!(report.loss(), 0, "{json}");
    assert_eq!(report.connections_closed(), 0, "{json}");
    server.stop().await;
}

#[tokio::test]
async fn rooms_deliver_every_message_to_every_member() {
    let server = TestServer::start().await;
    for (transport, rate) in [
        ("websocket", "20"),
        ("websocket", "0"),
        ("sockjs-websocket", "20"),
        ("sockjs-xhr-streaming", "20"),
        ("sockjs-xhr-polling", "0"),
    ] {
        let url = server.url(transport);
        let Scenario::Rooms(args) = scenario(&[
            "rooms",
            "--url",
            &url,
            "--transport",
            transport,
            "--rooms",
            "2",
            "--users",
            "3",
            "--rate",
            rate,
            "--max-in-flight",
            "5",
            "--warmup",
            "100ms",
            "--duration",
            "300ms",
        ]) else {
            panic!("rooms");
        };
        let report = tokio::time::timeout(RUN_BOUND, crate::rooms::run(args, 1))
            .await
            .expect("run ends")
            .expect("run succeeds");
        let json = report.to_json();
        assert!(report.sent_measured > 0, "{transport} {rate}: {json}");
        assert_eq!(report.users_alive, 6, "{transport} {rate}: {json}");
        // Every member of the room, the sender included, gets every message.
        assert_eq!(
            report.expected,
            report.sent_measured * 3,
            "{transport} {rate}: {json}"
        );
        assert_eq!(report.loss(), 0, "{transport} {rate}: {json}");
        assert!(report.drained, "{transport} {rate}: {json}");
    }
    server.stop().await;
}

#[tokio::test]
async fn polling_users_keep_their_sessions_while_the_others_join() {
    // The server forgets a SockJS session without a poll in progress for 1 s, and joining
    // takes longer than that: users must poll while they wait for the start.
    let mut config = Config::default();
    config.sockjs.disconnect_delay = Duration::from_secs(1);
    let server = TestServer::start_with(config).await;
    let url = server.url("sockjs-xhr-polling");
    let Scenario::Rooms(args) = scenario(&[
        "rooms",
        "--url",
        &url,
        "--transport",
        "sockjs-xhr-polling",
        "--rooms",
        "1",
        "--users",
        "4",
        "--connections-per-second",
        "2",
        "--rate",
        "10",
        "--warmup",
        "100ms",
        "--duration",
        "300ms",
    ]) else {
        panic!("rooms");
    };
    let report = tokio::time::timeout(RUN_BOUND, crate::rooms::run(args, 1))
        .await
        .expect("run ends")
        .expect("run succeeds");
    let json = report.to_json();
    assert_eq!(report.users_alive, 4, "{json}");
    assert_eq!(report.loss(), 0, "{json}");
    server.stop().await;
}

#[tokio::test]
async fn queue_consumes_each_message_once() {
    let server = TestServer::start().await;
    for (transport, rate) in [
        ("websocket", "0"),
        ("websocket", "300"),
        ("sockjs-websocket", "0"),
        ("sockjs-xhr-streaming", "0"),
        ("sockjs-xhr-polling", "300"),
    ] {
        let url = server.url(transport);
        let Scenario::Queue(args) = scenario(&[
            "queue",
            "--url",
            &url,
            "--transport",
            transport,
            "--producers",
            "2",
            "--consumers",
            "3",
            "--rate",
            rate,
            "--prefetch",
            "10",
            "--max-in-flight",
            "200",
            "--destination",
            &format!("/queue/smoke-{transport}-{rate}"),
            "--warmup",
            "100ms",
            "--duration",
            "300ms",
        ]) else {
            panic!("queue");
        };
        let report = tokio::time::timeout(RUN_BOUND, crate::queue::run(args, 1))
            .await
            .expect("run ends")
            .expect("run succeeds");
        let json = report.to_json();
        assert!(report.produced_measured > 0, "{transport} {rate}: {json}");
        assert_eq!(report.loss(), 0, "{transport} {rate}: {json}");
        assert_eq!(report.duplicates, 0, "{transport} {rate}: {json}");
        assert_eq!(report.foreign, 0, "{transport} {rate}: {json}");
        assert_eq!(report.unackable, 0, "{transport} {rate}: {json}");
        assert!(report.acks >= report.consumed, "{transport} {rate}: {json}");
        assert_eq!(report.consumers_closed, 0, "{transport} {rate}: {json}");
        assert_eq!(
            report.unconfirmed_producers, 0,
            "{transport} {rate}: {json}"
        );
        assert!(report.drained, "{transport} {rate}: {json}");
    }
    server.stop().await;
}

#[tokio::test]
async fn echo_round_trips_come_back_equal() {
    let server = TestServer::start().await;
    let url = format!("ws://{}/echo/websocket", server.addr);
    let Scenario::Echo(args) = scenario(&[
        "echo",
        "--url",
        &url,
        "--connections",
        "5",
        "--size",
        "200",
        "--warmup",
        "100ms",
        "--duration",
        "300ms",
    ]) else {
        panic!("echo");
    };
    let report = tokio::time::timeout(RUN_BOUND, crate::echo::run(args, 1))
        .await
        .expect("run ends")
        .expect("run succeeds");
    let json = report.to_json();
    assert!(report.round_trips > 0, "{json}");
    assert_eq!(report.mismatches, 0, "{json}");
    assert_eq!(report.connections_alive, 5, "{json}");
    assert_eq!(report.endings.total(), 0, "{json}");
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_open_from_spread_addresses_and_stay() {
    let server = TestServer::start().await;
    for (transport, heartbeat) in [
        ("websocket", "0s"),
        ("sockjs-websocket", "200ms"),
        ("sockjs-xhr-streaming", "0s"),
        ("sockjs-xhr-polling", "0s"),
    ] {
        let url = server.url(transport);
        let pid = std::process::id().to_string();
        let Scenario::Idle(args) = scenario(&[
            "idle",
            "--url",
            &url,
            "--transport",
            transport,
            "--sessions",
            "12",
            "--hold",
            "300ms",
            "--heartbeat",
            heartbeat,
            "--server-pid",
            &pid,
        ]) else {
            panic!("idle");
        };
        let report = tokio::time::timeout(RUN_BOUND, crate::idle::run(args, 1))
            .await
            .expect("run ends")
            .expect("run succeeds");
        let json = report.to_json();
        assert_eq!(report.opened, 12, "{transport}: {json}");
        assert_eq!(report.failures.total(), 0, "{transport}: {json}");
        assert_eq!(report.alive, 12, "{transport}: {json}");
        assert_eq!(report.messages, 0, "{transport}: {json}");
        assert_eq!(json["source_addr_count"], 253, "{transport}: {json}");
        assert!(
            json["server_memory"]["rss_kib_end"]
                .as_u64()
                .is_some_and(|kib| kib > 0),
            "{transport}: {json}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn setup_failures_are_errors_not_hangs() {
    // Nothing listens on this port once the listener is dropped.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/ws/websocket", listener.local_addr().expect("addr"));
    drop(listener);
    let Scenario::Fanout(args) = scenario(&["fanout", "--url", &url, "--subscribers", "2"]) else {
        panic!("fanout");
    };
    let result = tokio::time::timeout(RUN_BOUND, crate::fanout::run(args, 1))
        .await
        .expect("run ends");
    assert!(result.is_err());
    let Scenario::Idle(args) =
        scenario(&["idle", "--url", &url, "--sessions", "3", "--hold", "0s"])
    else {
        panic!("idle");
    };
    let report = tokio::time::timeout(RUN_BOUND, crate::idle::run(args, 1))
        .await
        .expect("run ends")
        .expect("idle counts failures");
    assert_eq!(report.opened, 0);
    assert_eq!(report.failures.total(), 3);
    assert_eq!(
        report.failures.by_kind.get("connect-ConnectionRefused"),
        Some(&3),
        "{:?}",
        report.failures
    );
}
