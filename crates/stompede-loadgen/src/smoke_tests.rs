//! One in-process run per scenario (and per transport where it matters) against a real
//! `Stompede` on 127.0.0.1:0, with small numbers and short windows. They check that the
//! figures add up — nothing lost, nothing duplicated, every session alive — never how fast
//! anything was. The saturating runs shrink the server's send buffer until it closes slow
//! consumers, and check that the report accounts for every one of them.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use stompede_server::handler::{HandlerEndpoint, Message, MessageHandler, SessionHandle};
use stompede_server::sockjs::SockJsOptions;
use stompede_server::{Config, Stompede};

use crate::cli::{Cli, Scenario};
use crate::report::Deliveries;

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

/// The server's reason for closing a slow consumer, as the reports name it.
const SLOW_CONSUMER: &str = "4500 send buffer size limit exceeded";

/// A server that closes a session as a slow consumer as soon as two deliveries wait for it.
async fn saturated_server() -> TestServer {
    let mut config = Config::default();
    // An empty outbox takes one delivery of any size; a second one waiting overflows it.
    config.session.send_buffer_size_limit = 1;
    TestServer::start_with(config).await
}

/// Awaits a scenario run, bounded by [`RUN_BOUND`] (a hang, not a timing).
async fn finish<T>(run: impl Future<Output = anyhow::Result<T>>) -> T {
    tokio::time::timeout(RUN_BOUND, run)
        .await
        .expect("run ends")
        .expect("run succeeds")
}

/// The scenario a command line (without the program name) selects.
fn scenario(args: &[&str]) -> Scenario {
    let mut argv = vec!["stompede-loadgen"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .scenario
}

/// Below saturation: nothing lost, nothing in flight, nobody closed by the server, and the
/// JSON line says the same.
fn assert_lossless(deliveries: &Deliveries, json: &serde_json::Value) {
    assert_eq!(deliveries.lost(), 0, "{json}");
    assert!(deliveries.drained, "{json}");
    assert_eq!(
        (deliveries.expected_by_closed, deliveries.received_by_closed),
        (0, 0),
        "{json}"
    );
    for key in ["lost", "in_flight", "lost_to_closes", "expected_by_closed"] {
        assert_eq!(json[key], 0, "{key}: {json}");
    }
    assert_eq!(json["received"], json["expected"], "{json}");
    assert_eq!(json["server_closes"]["total"], 0, "{json}");
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
        let report = finish(crate::fanout::run(args, 1)).await;
        let json = report.to_json();
        assert!(report.sending.measured > 0, "{transport}: {json}");
        assert_eq!(report.subscribers_alive, 4, "{transport}: {json}");
        assert_lossless(&report.deliveries, &json);
        assert_eq!(
            report.deliveries.received,
            report.sending.measured * 4,
            "{transport}: {json}"
        );
        assert_eq!(report.errors.count, 0, "{transport}: {json}");
        assert_eq!(json["transport"], transport);
        assert!(report.run.latency.is_some());
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
    let report = finish(crate::fanout::run(args, 1)).await;
    let json = report.to_json();
    assert!(report.sending.measured > 0, "{json}");
    assert_lossless(&report.deliveries, &json);
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
        let report = finish(crate::rooms::run(args, 1)).await;
        let json = report.to_json();
        assert!(report.sending.measured > 0, "{transport} {rate}: {json}");
        assert_eq!(report.users_alive, 6, "{transport} {rate}: {json}");
        // Every member of the room, the sender included, gets every message.
        assert_eq!(
            report.deliveries.expected,
            report.sending.measured * 3,
            "{transport} {rate}: {json}"
        );
        assert_lossless(&report.deliveries, &json);
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
    let report = finish(crate::rooms::run(args, 1)).await;
    let json = report.to_json();
    assert_eq!(report.users_alive, 4, "{json}");
    assert_lossless(&report.deliveries, &json);
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
            // Long enough that a starved CI core still produces inside the window.
            "--duration",
            "1s",
        ]) else {
            panic!("queue");
        };
        let report = finish(crate::queue::run(args, 1)).await;
        let json = report.to_json();
        assert!(report.producing.measured > 0, "{transport} {rate}: {json}");
        assert_lossless(&report.deliveries, &json);
        assert_eq!(report.duplicates, 0, "{transport} {rate}: {json}");
        assert_eq!(report.foreign, 0, "{transport} {rate}: {json}");
        assert_eq!(report.unackable, 0, "{transport} {rate}: {json}");
        assert!(report.acks >= report.consumed, "{transport} {rate}: {json}");
        assert_eq!(report.consumers_closed, 0, "{transport} {rate}: {json}");
        assert_eq!(
            report.unconfirmed_producers, 0,
            "{transport} {rate}: {json}"
        );
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
    let report = finish(crate::echo::run(args, 1)).await;
    let json = report.to_json();
    assert!(report.round_trips > 0, "{json}");
    assert_eq!(report.totals.mismatches, 0, "{json}");
    assert_eq!(report.totals.alive, 5, "{json}");
    assert_eq!(report.totals.endings.total(), 0, "{json}");
    assert_lossless(&report.totals.deliveries, &json);
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
        let report = finish(crate::idle::run(args, 1)).await;
        let json = report.to_json();
        assert_eq!(report.opened, 12, "{transport}: {json}");
        assert_eq!(report.failures.total(), 0, "{transport}: {json}");
        assert_eq!(report.alive, 12, "{transport}: {json}");
        assert_eq!(report.messages, 0, "{transport}: {json}");
        assert_lossless(&report.deliveries(), &json);
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

#[tokio::test]
async fn fanout_counts_the_slow_consumers_the_server_closes() {
    let server = saturated_server().await;
    for transport in TRANSPORTS {
        let url = server.url(transport);
        // Max mode: a publisher's burst of SENDs reaches every subscriber's outbox before any
        // subscriber's session can write the first one out, so every subscriber overflows.
        let Scenario::Fanout(args) = scenario(&[
            "fanout",
            "--url",
            &url,
            "--transport",
            transport,
            "--subscribers",
            "3",
            "--rate",
            "0",
            "--warmup",
            "100ms",
            "--duration",
            "300ms",
            "--drain-timeout",
            "1s",
        ]) else {
            panic!("fanout");
        };
        let report = finish(crate::fanout::run(args, 1)).await;
        let json = report.to_json();
        let d = &report.deliveries;
        let closed = report.subscribers_closed();
        assert!(closed > 0, "{transport}: {json}");
        // Every close is the publisher's subscribers', for the one reason, in both forms.
        assert_eq!(
            report.closes.by_reason.get(SLOW_CONSUMER),
            Some(&closed),
            "{transport}: {json}"
        );
        assert_eq!(report.closes.total(), closed, "{transport}: {json}");
        assert_eq!(
            json["server_closes"]["by_reason"][SLOW_CONSUMER], closed,
            "{transport}: {json}"
        );
        assert_eq!(json["subscribers_closed"], closed, "{transport}: {json}");
        // The closed subscribers move to the closed side of the account, whole: nothing they
        // were owed hides as a smaller expectation.
        let sent = report.sending.measured;
        assert_eq!(d.expected_by_closed, sent * closed, "{transport}: {json}");
        assert_eq!(
            d.expected + d.expected_by_closed,
            sent * 3,
            "{transport}: {json}"
        );
        assert!(d.lost_to_closes() >= 0, "{transport}: {json}");
        assert_eq!(
            json["lost_to_closes"], json["loss_closed"],
            "{transport}: {json}"
        );
        // What open subscribers miss is only ever what the drain was still waiting for.
        assert_eq!(d.lost(), i128::from(d.in_flight()), "{transport}: {json}");
        assert!(
            report.summary().contains(SLOW_CONSUMER),
            "{transport}: {}",
            report.summary()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn rooms_and_queues_count_slow_consumer_closes_too() {
    let server = saturated_server().await;
    let url = server.url("websocket");
    let Scenario::Rooms(args) = scenario(&[
        "rooms",
        "--url",
        &url,
        "--rooms",
        "1",
        "--users",
        "3",
        "--rate",
        "0",
        "--warmup",
        "100ms",
        "--duration",
        "300ms",
        "--drain-timeout",
        "500ms",
    ]) else {
        panic!("rooms");
    };
    let report = finish(crate::rooms::run(args, 1)).await;
    let json = report.to_json();
    let closed = report.users() - report.users_alive;
    assert!(closed > 0, "{json}");
    assert_eq!(
        report.closes.by_reason.get(SLOW_CONSUMER),
        Some(&closed),
        "{json}"
    );
    assert_eq!(json["users_closed"], closed, "{json}");
    assert_eq!(json["server_closes"]["total"], closed, "{json}");
    assert_eq!(
        report.deliveries.lost(),
        i128::from(report.deliveries.in_flight()),
        "{json}"
    );

    // A queue hands a closed consumer's messages back, so what no consumer took is still in
    // the server (in flight), not lost to the closes.
    let Scenario::Queue(args) = scenario(&[
        "queue",
        "--url",
        &url,
        "--producers",
        "1",
        "--consumers",
        "2",
        "--rate",
        "0",
        "--destination",
        "/queue/smoke-saturated",
        "--warmup",
        "100ms",
        "--duration",
        "300ms",
        "--drain-timeout",
        "500ms",
    ]) else {
        panic!("queue");
    };
    let report = finish(crate::queue::run(args, 1)).await;
    let json = report.to_json();
    assert!(report.consumers_closed > 0, "{json}");
    assert_eq!(
        report.closes.by_reason.get(SLOW_CONSUMER),
        Some(&report.consumers_closed),
        "{json}"
    );
    assert_eq!(
        json["close_codes"]["consumer-4500"], report.consumers_closed,
        "{json}"
    );
    assert_eq!(json["lost_to_closes"], 0, "{json}");
    assert_eq!(
        report.deliveries.lost(),
        i128::from(report.deliveries.in_flight()),
        "{json}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_scenario_reports_the_same_account_keys() {
    let server = TestServer::start().await;
    let stomp = server.url("websocket");
    let echo_url = format!("ws://{}/echo/websocket", server.addr);
    let sockjs_echo = format!("http://{}/echo", server.addr);
    let window = ["--warmup", "50ms", "--duration", "100ms"];
    fn with<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
        [head, tail].concat()
    }
    let mut lines = Vec::new();
    if let Scenario::Fanout(args) = scenario(&with(
        &["fanout", "--url", &stomp, "--subscribers", "2"],
        &window,
    )) {
        lines.push(finish(crate::fanout::run(args, 1)).await.to_json());
    }
    if let Scenario::Rooms(args) = scenario(&with(
        &["rooms", "--url", &stomp, "--rooms", "1", "--users", "2"],
        &window,
    )) {
        lines.push(finish(crate::rooms::run(args, 1)).await.to_json());
    }
    if let Scenario::Queue(args) = scenario(&with(
        &[
            "queue",
            "--url",
            &stomp,
            "--consumers",
            "2",
            "--destination",
            "/queue/keys",
        ],
        &window,
    )) {
        lines.push(finish(crate::queue::run(args, 1)).await.to_json());
    }
    if let Scenario::Echo(args) = scenario(&with(
        &["echo", "--url", &echo_url, "--connections", "2"],
        &window,
    )) {
        lines.push(finish(crate::echo::run(args, 1)).await.to_json());
    }
    if let Scenario::SockjsEcho(args) = scenario(&with(
        &["sockjs-echo", "--url", &sockjs_echo, "--sessions", "2"],
        &window,
    )) {
        lines.push(finish(crate::sockjs::run_echo(args, 1)).await.to_json());
    }
    if let Scenario::Idle(args) = scenario(&[
        "idle",
        "--url",
        &stomp,
        "--sessions",
        "2",
        "--hold",
        "100ms",
    ]) {
        lines.push(finish(crate::idle::run(args, 1)).await.to_json());
    }
    assert_eq!(lines.len(), 6);
    for json in &lines {
        for key in [
            "expected",
            "received",
            "lost",
            "in_flight",
            "expected_by_closed",
            "received_by_closed",
            "lost_to_closes",
            "drained",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
        assert!(json["server_closes"]["total"].is_u64(), "{json}");
        assert!(json["server_closes"]["by_reason"].is_object(), "{json}");
        assert_eq!(json["lost"], 0, "{json}");
        assert!(!json.to_string().contains('\n'));
    }
    server.stop().await;
}
