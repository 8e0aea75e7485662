//! The client against a real stompede server on 127.0.0.1, on every transport: raw
//! WebSocket and SockJS websocket, xhr-streaming and xhr-polling.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use stompede_client::{AckMode, Client, Error, State, SubscribeOptions};

/// Runs a scenario `async fn name(kind: Kind)` once per transport, as four tests.
macro_rules! per_transport {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn websocket() {
                super::$name(Kind::WebSocket).await;
            }

            #[tokio::test]
            async fn sockjs_websocket() {
                super::$name(Kind::SockJsWebSocket).await;
            }

            #[tokio::test]
            async fn xhr_streaming() {
                super::$name(Kind::XhrStreaming).await;
            }

            #[tokio::test]
            async fn xhr_polling() {
                super::$name(Kind::XhrPolling).await;
            }
        }
    )*};
}

per_transport!(
    publish_and_subscribe_in_order,
    receipts_and_unsubscribe,
    queue_ack_and_nack_redeliver,
    transactions_commit_and_abort,
    heart_beats_keep_the_connection_alive,
    error_frames_reach_waiters_and_subscriptions,
    disconnect_ends_everything,
    reconnects_and_resubscribes,
);

async fn publish_and_subscribe_in_order(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let session = client.session().expect("connected");
    assert_eq!(session.version, stompede_client::Version::V1_2);
    assert_eq!(session.connection, 1);

    let mut sub = client
        .subscribe("/topic/order", SubscribeOptions::default())
        .await
        .expect("subscribe with receipt");
    let big: String = "0123456789abcdef".repeat(60 * 1024 / 16);
    let mut sent: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    sent.push("non-ASCII: café, 세계, 😀, \u{2028}, quote \" backslash \\".to_owned());
    sent.push("embedded\nnewlines\r\nand\ttabs".to_owned());
    sent.push(big.clone());
    sent.push("last".to_owned());
    for body in &sent {
        client
            .send("/topic/order", body.clone())
            .header("x-test", "yes")
            .content_type("text/plain;charset=utf-8")
            .await
            .expect("send");
    }
    let got = bodies(&mut sub, sent.len()).await;
    assert_eq!(got.len(), sent.len());
    for (i, (got, want)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(
            got,
            want,
            "message {i} (len {} vs {})",
            got.len(),
            want.len()
        );
    }

    client
        .send("/topic/order", "with headers: ü")
        .header("x-custom", "a:b\\c")
        .content_type("text/plain")
        .receipt()
        .await
        .expect("send with receipt");
    let message = next(&mut sub).await;
    assert_eq!(message.destination(), "/topic/order");
    assert_eq!(message.subscription(), Some(sub.id()));
    assert!(!message.message_id().is_empty());
    assert_eq!(message.content_type(), Some("text/plain"));
    assert_eq!(message.header("x-custom"), Some("a:b\\c"));
    assert_eq!(message.body_text(), Some("with headers: ü"));
    assert_eq!(message.body().len(), "with headers: ü".len());

    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

async fn receipts_and_unsubscribe(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let mut kept = client
        .subscribe("/topic/r", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let dropped = client
        .subscribe("/topic/r", SubscribeOptions::default().receipt(false))
        .await
        .expect("subscribe without receipt");
    let gone = client
        .subscribe("/topic/r", SubscribeOptions::default())
        .await
        .expect("subscribe");
    gone.unsubscribe().await.expect("unsubscribe with receipt");
    drop(dropped);

    // Receipts come back in order, each to its own sender.
    let sends = (0..10).map(|i| {
        let client = client.clone();
        async move { client.send("/topic/r", format!("r{i}")).receipt().await }
    });
    for result in futures_util::future::join_all(sends).await {
        result.expect("receipt");
    }
    let mut got = bodies(&mut kept, 10).await;
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

async fn queue_ack_and_nack_redeliver(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let mut jobs = client
        .subscribe(
            "/queue/jobs",
            SubscribeOptions::ack(AckMode::ClientIndividual),
        )
        .await
        .expect("subscribe");
    client
        .send("/queue/jobs", "job 1")
        .receipt()
        .await
        .expect("send");
    let first = next(&mut jobs).await;
    assert_eq!(first.body_text(), Some("job 1"));
    first.nack().receipt().await.expect("nack");
    let again = next(&mut jobs).await;
    assert_eq!(again.body_text(), Some("job 1"), "redelivered after NACK");
    again.ack().receipt().await.expect("ack");

    // Acknowledged: not redelivered. The marker proves the order.
    client
        .send("/queue/jobs", "job 2")
        .receipt()
        .await
        .expect("send");
    let second = next(&mut jobs).await;
    assert_eq!(second.body_text(), Some("job 2"));
    second.ack().await.expect("ack");

    // Client mode: one ACK covers the earlier messages too.
    let mut batch = client
        .subscribe("/queue/batch", SubscribeOptions::ack(AckMode::Client))
        .await
        .expect("subscribe");
    for i in 0..3 {
        client
            .send("/queue/batch", format!("b{i}"))
            .await
            .expect("send");
    }
    let got = {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next(&mut batch).await);
        }
        got
    };
    assert_eq!(
        got.iter()
            .map(|m| m.body_text().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["b0", "b1", "b2"]
    );
    got[2].ack().receipt().await.expect("cumulative ack");
    // Unsubscribing would redeliver unacknowledged messages; nothing is left to redeliver.
    batch.unsubscribe().await.expect("unsubscribe");
    let mut after = client
        .subscribe("/queue/batch", SubscribeOptions::default())
        .await
        .expect("subscribe");
    client
        .send("/queue/batch", "marker")
        .receipt()
        .await
        .expect("send");
    assert_eq!(bodies(&mut after, 1).await, ["marker"]);

    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

async fn transactions_commit_and_abort(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let mut sub = client
        .subscribe("/topic/tx", SubscribeOptions::default())
        .await
        .expect("subscribe");

    let aborted = client.begin().await.expect("begin");
    aborted.send("/topic/tx", "aborted 1").await.expect("send");
    aborted
        .send("/topic/tx", "aborted 2")
        .receipt()
        .await
        .expect("send in transaction");
    aborted.abort().await.expect("abort");

    let committed = client.begin().await.expect("begin");
    committed
        .send("/topic/tx", "committed 1")
        .await
        .expect("send");
    client
        .send("/topic/tx", "outside")
        .receipt()
        .await
        .expect("send outside");
    committed
        .send("/topic/tx", "committed 2")
        .await
        .expect("send");
    committed.commit().await.expect("commit");
    assert_eq!(
        bodies(&mut sub, 3).await,
        ["outside", "committed 1", "committed 2"]
    );

    // Dropping an open transaction aborts it.
    {
        let dropped = client.begin().await.expect("begin");
        dropped.send("/topic/tx", "dropped").await.expect("send");
    }
    client
        .send("/topic/tx", "marker")
        .receipt()
        .await
        .expect("send");
    assert_eq!(bodies(&mut sub, 1).await, ["marker"]);

    // ACK inside a transaction.
    let mut queue = client
        .subscribe(
            "/queue/tx",
            SubscribeOptions::ack(AckMode::ClientIndividual),
        )
        .await
        .expect("subscribe");
    client.send("/queue/tx", "work").await.expect("send");
    let work = next(&mut queue).await;
    let tx = client.begin().await.expect("begin");
    tx.ack(&work).receipt().await.expect("ack in transaction");
    tx.commit().await.expect("commit");

    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

async fn heart_beats_keep_the_connection_alive(kind: Kind) {
    let mut config = server_config();
    config.heartbeat.send = Duration::from_millis(200);
    config.heartbeat.receive = Duration::from_millis(200);
    // Generous on both sides, so that a loaded machine does not fail the test: what is
    // checked is that heart-beats flow, not how punctual they are.
    config.heartbeat.tolerance = 5.0;
    let server = TestServer::start(config).await;
    let mut client_config = client_config(&server, kind)
        .heart_beat(Duration::from_millis(100), Duration::from_millis(100));
    client_config.heart_beat_tolerance = 5.0;
    let client = Client::connect(client_config).await.expect("connect");
    let session = client.session().expect("connected");
    // Each side sends at the slower of its offer and the other's wish.
    assert_eq!(session.send_heart_beat, Some(Duration::from_millis(200)));
    assert_eq!(session.server_heart_beat, Some(Duration::from_millis(200)));
    let mut sub = client
        .subscribe("/topic/hb", SubscribeOptions::default())
        .await
        .expect("subscribe");
    // Quiet for many intervals, longer than either side tolerates silence: only heart-beats
    // travel, and they keep the connection up.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        matches!(client.state(), State::Connected(s) if s.connection == 1),
        "{:?}",
        client.state()
    );
    client
        .send("/topic/hb", "still here")
        .receipt()
        .await
        .expect("send after a quiet spell");
    assert_eq!(bodies(&mut sub, 1).await, ["still here"]);
    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

async fn error_frames_reach_waiters_and_subscriptions(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let mut sub = client
        .subscribe("/topic/e", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let result = client.send("/nowhere/x", "lost").receipt().await;
    let Err(Error::Server(error)) = result else {
        panic!("expected the server's ERROR, got {result:?}");
    };
    assert!(
        error.message().contains("destination"),
        "message header: {:?}",
        error.message()
    );
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(Error::Server(e)))) => assert_eq!(e.message(), error.message()),
        other => panic!("expected the ERROR on the subscription, got {other:?}"),
    }
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        other => panic!("expected the subscription to end, got {other:?}"),
    }
    let state = wait_state(&client, |s| matches!(s, State::Closed { .. })).await;
    let State::Closed { cause: Some(cause) } = state else {
        panic!("closed with a cause: {state:?}");
    };
    assert_eq!(
        cause.server_error().map(|e| e.message().to_owned()),
        Some(error.message().to_owned())
    );
    assert!(matches!(
        client.send("/topic/e", "after").await,
        Err(Error::Closed)
    ));
    server.shutdown().await;
}

async fn disconnect_ends_everything(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let mut sub = client
        .subscribe("/topic/d", SubscribeOptions::default())
        .await
        .expect("subscribe");
    if !matches!(kind, Kind::WebSocket) {
        // SockJS carries text only.
        let binary = client
            .send("/topic/d", Bytes::from_static(b"\xff\xfe"))
            .await;
        assert!(matches!(binary, Err(Error::NotText)), "{binary:?}");
    } else {
        let binary = Bytes::from_static(b"\x00\xff\x01binary");
        client
            .send("/topic/d", binary.clone())
            .receipt()
            .await
            .expect("binary body");
        assert_eq!(next(&mut sub).await.body(), &binary);
    }
    client.disconnect().await.expect("disconnect");
    assert!(matches!(client.state(), State::Closed { cause: None }));
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(None) => {}
        other => panic!("expected the subscription to end, got {other:?}"),
    }
    assert!(matches!(
        client.send("/topic/d", "x").await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        client
            .subscribe("/topic/d", SubscribeOptions::default())
            .await,
        Err(Error::Closed)
    ));
    client
        .disconnect()
        .await
        .expect("disconnecting twice is fine");
    server.shutdown().await;
}

async fn reconnects_and_resubscribes(kind: Kind) {
    let first = TestServer::start(server_config()).await;
    let addr = first.addr;
    let client = Client::connect(client_config(&first, kind).reconnect(quick_backoff()))
        .await
        .expect("connect");
    let mut topic = client
        .subscribe("/topic/news", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let mut queue = client
        .subscribe(
            "/queue/work",
            SubscribeOptions::ack(AckMode::ClientIndividual),
        )
        .await
        .expect("subscribe");
    client
        .send("/topic/news", "before")
        .receipt()
        .await
        .expect("send");
    assert_eq!(bodies(&mut topic, 1).await, ["before"]);
    client
        .send("/queue/work", "job before")
        .await
        .expect("send");
    let job = next(&mut queue).await;
    assert_eq!(job.connection(), 1);
    let open = client.begin().await.expect("begin");

    first.shutdown().await;
    let state = wait_state(&client, |s| matches!(s, State::Reconnecting { .. })).await;
    assert!(matches!(state, State::Reconnecting { .. }), "{state:?}");
    // While reconnecting, frames are refused rather than lost silently.
    if matches!(client.state(), State::Reconnecting { .. }) {
        assert!(matches!(
            client.send("/topic/news", "x").await,
            Err(Error::NotConnected)
        ));
    }
    // A subscription made while reconnecting is made once the connection is back.
    let late = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .subscribe("/topic/late", SubscribeOptions::default())
                .await
        })
    };

    let second = TestServer::start_on(server_config(), addr).await;
    let state = wait_state(
        &client,
        |s| matches!(s, State::Connected(s) if s.connection == 2),
    )
    .await;
    assert!(matches!(state, State::Connected(_)));
    let mut late = tokio::time::timeout(WAIT * 2, late)
        .await
        .expect("late subscription in time")
        .expect("task")
        .expect("late subscription made after reconnecting");

    // An acknowledgement or a transaction from the old connection is stale.
    assert!(matches!(job.ack().await, Err(Error::Stale)));
    assert!(matches!(
        open.send("/topic/news", "x").await,
        Err(Error::Stale)
    ));
    assert!(matches!(open.commit().await, Err(Error::Stale)));

    let publisher = connect(&second, Kind::WebSocket).await;
    publisher
        .send("/topic/news", "after")
        .receipt()
        .await
        .expect("publish");
    publisher
        .send("/topic/late", "late news")
        .receipt()
        .await
        .expect("publish");
    publisher
        .send("/queue/work", "job after")
        .receipt()
        .await
        .expect("publish");
    // The same streams go on.
    assert_eq!(bodies(&mut topic, 1).await, ["after"]);
    assert_eq!(bodies(&mut late, 1).await, ["late news"]);
    let job = next(&mut queue).await;
    assert_eq!(job.body_text(), Some("job after"));
    assert_eq!(job.connection(), 2);
    job.ack()
        .receipt()
        .await
        .expect("ack on the new connection");

    publisher.disconnect().await.expect("disconnect");
    client.disconnect().await.expect("disconnect");
    second.shutdown().await;
}

#[tokio::test]
async fn lost_connection_without_reconnect_closes_the_client() {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, Kind::WebSocket).await;
    let mut sub = client
        .subscribe("/topic/x", SubscribeOptions::default())
        .await
        .expect("subscribe");
    server.shutdown().await;
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(Error::ConnectionLost(_)))) => {}
        other => panic!("expected the loss on the subscription, got {other:?}"),
    }
    assert!(matches!(
        tokio::time::timeout(WAIT, sub.next()).await,
        Ok(None)
    ));
    let state = wait_state(&client, |s| matches!(s, State::Closed { .. })).await;
    assert!(
        matches!(state, State::Closed { cause: Some(_) }),
        "{state:?}"
    );
}

#[tokio::test]
async fn reconnection_gives_up_after_its_attempts() {
    let server = TestServer::start(server_config()).await;
    let client = Client::connect(
        client_config(&server, Kind::WebSocket).reconnect(quick_backoff().max_attempts(2)),
    )
    .await
    .expect("connect");
    server.shutdown().await;
    let state = wait_state(&client, |s| matches!(s, State::Closed { .. })).await;
    let State::Closed { cause: Some(cause) } = state else {
        panic!("{state:?}");
    };
    assert!(matches!(cause, Error::Transport(_)), "{cause:?}");
}

#[tokio::test]
async fn refused_connections_are_errors() {
    let server = TestServer::start(server_config()).await;
    let addr = server.addr;
    server.shutdown().await;
    for kind in [Kind::WebSocket, Kind::XhrStreaming] {
        let url = match kind {
            Kind::WebSocket => format!("ws://{addr}/ws/websocket"),
            _ => format!("http://{addr}/ws"),
        };
        let result = Client::connect(
            stompede_client::ClientConfig::new(url)
                .transport(transport(kind))
                .connect_timeout(WAIT),
        )
        .await;
        assert!(matches!(result, Err(Error::Transport(_))), "{result:?}");
    }
    for (url, kind) in [
        ("wss://127.0.0.1/ws", Kind::WebSocket),
        ("http://127.0.0.1/ws", Kind::WebSocket),
        ("https://127.0.0.1/ws", Kind::XhrPolling),
        ("ws://127.0.0.1/ws", Kind::XhrPolling),
    ] {
        let result =
            Client::connect(stompede_client::ClientConfig::new(url).transport(transport(kind)))
                .await;
        assert!(matches!(result, Err(Error::Config(_))), "{url}: {result:?}");
    }
}

#[tokio::test]
async fn sockjs_websocket_refused_when_the_server_disables_it() {
    let mut config = server_config();
    config.sockjs.websocket_enabled = false;
    let server = TestServer::start(config).await;
    let result = Client::connect(client_config(&server, Kind::SockJsWebSocket)).await;
    assert!(
        matches!(
            result,
            Err(Error::Transport(
                stompede_client::TransportError::WebSocketUnavailable
            ))
        ),
        "{result:?}"
    );
    // The HTTP transports still work.
    let client = connect(&server, Kind::XhrPolling).await;
    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

#[tokio::test]
async fn xhr_streaming_survives_the_stream_bytes_limit() {
    // A small limit makes the server end the streaming response every few messages; the
    // client reopens it and loses nothing.
    let mut config = server_config();
    config.sockjs.stream_bytes_limit = 4096;
    let server = TestServer::start(config).await;
    let client = connect(&server, Kind::XhrStreaming).await;
    let mut sub = client
        .subscribe("/topic/stream", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let body = "x".repeat(1000);
    let n = 200;
    let publisher = connect(&server, Kind::WebSocket).await;
    for i in 0..n {
        publisher
            .send("/topic/stream", format!("{i:04} {body}"))
            .await
            .expect("send");
    }
    let got = bodies(&mut sub, n).await;
    for (i, got) in got.iter().enumerate() {
        assert!(
            got.starts_with(&format!("{i:04} ")),
            "message {i}: {:.10}",
            got
        );
    }
    publisher.disconnect().await.expect("disconnect");
    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_subscriber_stalls_reading_without_losing_messages() {
    let server = TestServer::start(server_config()).await;
    let mut config = client_config(&server, Kind::WebSocket);
    config.subscription_capacity = 2;
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client
        .subscribe("/topic/slow", SubscribeOptions::default())
        .await
        .expect("subscribe");
    for i in 0..50 {
        client
            .send("/topic/slow", format!("{i}"))
            .await
            .expect("send");
    }
    // Nobody reads for a while: the client stops reading, heart-beats or not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = bodies(&mut sub, 50).await;
    assert_eq!(got, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_every_handle_disconnects() {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, Kind::WebSocket).await;
    let watcher = client.state_changes();
    drop(client);
    let mut watcher = watcher;
    let state = tokio::time::timeout(
        WAIT,
        watcher.wait_for(|s| matches!(s, State::Closed { .. })),
    )
    .await
    .expect("closed in time")
    .map(|s| s.clone());
    assert!(
        matches!(state, Ok(State::Closed { cause: None })),
        "{state:?}"
    );
    server.shutdown().await;
}

/// One client publishing a burst to a topic it subscribes to: its writes and its reads share
/// one connection, and neither may wait for the other (the server's writes to us block while
/// we do not read, and it does not read our frames meanwhile). Raw WebSocket is left out: the
/// server closes such a session as a slow consumer (its session loop reads the client's
/// frames before it writes its outbox, so a steady stream of SENDs starves the outbox).
async fn publish_to_own_subscription(kind: Kind) {
    let server = TestServer::start(server_config()).await;
    let client = connect(&server, kind).await;
    let mut sub = client
        .subscribe("/topic/echo", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let n = 10_000;
    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..n {
                client
                    .send("/topic/echo", format!("{i:0200}"))
                    .await
                    .expect("send");
            }
        })
    };
    for i in 0..n {
        let message = next(&mut sub).await;
        assert_eq!(message.body_text(), Some(format!("{i:0200}").as_str()));
    }
    publisher.await.expect("publisher");
    client.disconnect().await.expect("disconnect");
    server.shutdown().await;
}

mod publish_to_own_subscription {
    use super::*;

    #[tokio::test]
    async fn sockjs_websocket() {
        super::publish_to_own_subscription(Kind::SockJsWebSocket).await;
    }

    #[tokio::test]
    async fn xhr_streaming() {
        super::publish_to_own_subscription(Kind::XhrStreaming).await;
    }

    #[tokio::test]
    async fn xhr_polling() {
        super::publish_to_own_subscription(Kind::XhrPolling).await;
    }
}
