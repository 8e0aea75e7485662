//! The client against a real RabbitMQ with the Web-STOMP plugin.
//!
//! Start one with `bash scripts/rabbitmq.sh start` (it prints the URL), then run with
//! `STOMPEDE_RABBITMQ_WS=ws://127.0.0.1:15674/ws`. Without that variable every test here
//! says it was skipped and passes.

mod common;

use std::time::Duration;

use common::{bodies, next, WAIT};
use futures_util::StreamExt;
use stompede_client::{AckMode, Client, ClientConfig, Error, SubscribeOptions, Version};

fn rabbitmq_url(test: &str) -> Option<String> {
    match std::env::var("STOMPEDE_RABBITMQ_WS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "{test}: skipped: STOMPEDE_RABBITMQ_WS is not set (start a broker with \
                 `bash scripts/rabbitmq.sh start`)"
            );
            None
        }
    }
}

fn config(url: &str) -> ClientConfig {
    ClientConfig::new(url)
        .credentials("guest", "guest")
        .receipt_timeout(WAIT)
        .connect_timeout(WAIT)
}

/// A name no earlier run used: queues outlive connections.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn connects_with_login_and_refuses_a_bad_one() {
    let Some(url) = rabbitmq_url("connects_with_login_and_refuses_a_bad_one") else {
        return;
    };
    let client = Client::connect(config(&url)).await.expect("connect");
    let session = client.session().expect("connected");
    assert_eq!(session.version, Version::V1_2);
    assert!(
        session
            .server
            .as_deref()
            .is_some_and(|s| s.starts_with("RabbitMQ")),
        "{session:?}"
    );
    client.disconnect().await.expect("disconnect");

    // RabbitMQ reads `host` as the virtual host: "/" is its default one, the URL's host
    // name is none.
    let client = Client::connect(config(&url).host("/"))
        .await
        .expect("connect");
    client.disconnect().await.expect("disconnect");
    let refused = Client::connect(config(&url).host("127.0.0.1")).await;
    match refused {
        Err(Error::Server(e)) => assert!(!e.message().is_empty(), "{e:?}"),
        other => panic!("expected an ERROR frame, got {other:?}"),
    }

    let refused = Client::connect(config(&url).credentials("guest", "wrong")).await;
    match refused {
        Err(Error::Server(e)) => assert!(!e.message().is_empty(), "{e:?}"),
        other => panic!("expected an ERROR frame, got {other:?}"),
    }
}

#[tokio::test]
async fn topic_publish_and_subscribe() {
    let Some(url) = rabbitmq_url("topic_publish_and_subscribe") else {
        return;
    };
    let client = Client::connect(config(&url)).await.expect("connect");
    let destination = format!("/topic/{}", unique("stompede.news"));
    let mut sub = client
        .subscribe(&destination, SubscribeOptions::default())
        .await
        .expect("subscribe with receipt");
    let mut sent: Vec<String> = (0..10).map(|i| format!("news {i}")).collect();
    sent.push("non-ASCII: café, 세계, 😀".to_owned());
    sent.push("y".repeat(60 * 1024));
    for body in &sent {
        client
            .send(&destination, body.clone())
            .content_type("text/plain")
            .await
            .expect("send");
    }
    client
        .send(&destination, "last")
        .header("x-custom", "value")
        .receipt()
        .await
        .expect("send with receipt");
    sent.push("last".to_owned());
    assert_eq!(bodies(&mut sub, sent.len()).await, sent);

    sub.unsubscribe().await.expect("unsubscribe");
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn queue_ack_and_nack() {
    let Some(url) = rabbitmq_url("queue_ack_and_nack") else {
        return;
    };
    let client = Client::connect(config(&url)).await.expect("connect");
    let destination = format!("/queue/{}", unique("stompede-jobs"));
    let mut jobs = client
        .subscribe(
            &destination,
            SubscribeOptions::ack(AckMode::ClientIndividual),
        )
        .await
        .expect("subscribe");
    client
        .send(&destination, "job 1")
        .receipt()
        .await
        .expect("send");
    let first = next(&mut jobs).await;
    assert_eq!(first.body_text(), Some("job 1"));
    assert!(first.header("ack").is_some(), "{first:?}");
    first.nack().receipt().await.expect("nack");
    let again = next(&mut jobs).await;
    assert_eq!(again.body_text(), Some("job 1"));
    assert_eq!(again.header("redelivered"), Some("true"));
    again.ack().receipt().await.expect("ack");

    // Acknowledged: the next message is the next job, not a redelivery.
    client
        .send(&destination, "job 2")
        .receipt()
        .await
        .expect("send");
    let second = next(&mut jobs).await;
    assert_eq!(second.body_text(), Some("job 2"));
    second.ack().receipt().await.expect("ack");
    client.disconnect().await.expect("disconnect");

    // Client mode: one cumulative ACK.
    let client = Client::connect(config(&url)).await.expect("connect");
    let destination = format!("/queue/{}", unique("stompede-batch"));
    let mut batch = client
        .subscribe(&destination, SubscribeOptions::ack(AckMode::Client))
        .await
        .expect("subscribe");
    for i in 0..3 {
        client
            .send(&destination, format!("b{i}"))
            .await
            .expect("send");
    }
    let mut last = None;
    for i in 0..3 {
        let m = next(&mut batch).await;
        assert_eq!(m.body_text(), Some(format!("b{i}").as_str()));
        last = Some(m);
    }
    last.expect("three messages")
        .ack()
        .receipt()
        .await
        .expect("cumulative ack");
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn transactions() {
    let Some(url) = rabbitmq_url("transactions") else {
        return;
    };
    let client = Client::connect(config(&url)).await.expect("connect");
    let destination = format!("/queue/{}", unique("stompede-tx"));
    let mut sub = client
        .subscribe(
            &destination,
            SubscribeOptions::ack(AckMode::ClientIndividual),
        )
        .await
        .expect("subscribe");

    // RabbitMQ runs a transaction's frames, receipts included, only at COMMIT: no receipt
    // is asked for inside one.
    let aborted = client.begin().await.expect("begin");
    aborted
        .send(&destination, "aborted")
        .await
        .expect("send in transaction");
    aborted.abort().await.expect("abort");

    let committed = client.begin().await.expect("begin");
    committed
        .send(&destination, "committed")
        .await
        .expect("send");
    client
        .send(&destination, "outside")
        .receipt()
        .await
        .expect("send outside");
    committed.commit().await.expect("commit");
    let got = [next(&mut sub).await, next(&mut sub).await];
    assert_eq!(
        got.iter()
            .map(|m| m.body_text().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["outside", "committed"]
    );

    // ACKs inside a transaction.
    let tx = client.begin().await.expect("begin");
    for m in &got {
        tx.ack(m).await.expect("ack in transaction");
    }
    tx.commit().await.expect("commit");
    // Nothing is redelivered.
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("nothing should be redelivered, got {item:?}");
    }
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn heart_beats_and_errors() {
    let Some(url) = rabbitmq_url("heart_beats_and_errors") else {
        return;
    };
    let client = Client::connect(
        config(&url).heart_beat(Duration::from_millis(1000), Duration::from_millis(1000)),
    )
    .await
    .expect("connect");
    let session = client.session().expect("connected");
    assert!(session.send_heart_beat.is_some(), "{session:?}");
    assert!(session.server_heart_beat.is_some(), "{session:?}");
    let mut sub = client
        .subscribe(
            &format!("/topic/{}", unique("stompede.hb")),
            SubscribeOptions::default(),
        )
        .await
        .expect("subscribe");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(client.session().is_some(), "{:?}", client.state());

    // RabbitMQ refuses an unknown destination type with an ERROR.
    let result = client.send("/nowhere/x", "lost").receipt().await;
    match result {
        Err(e) => {
            let server = e.server_error().expect("the server's ERROR");
            assert!(!server.message().is_empty(), "{server:?}");
        }
        Ok(()) => panic!("RabbitMQ accepted a SEND to /nowhere"),
    }
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(Error::Server(_)))) | Ok(None) => {}
        other => panic!("expected the ERROR on the subscription, got {other:?}"),
    }
    let _ = client.disconnect().await;
}
