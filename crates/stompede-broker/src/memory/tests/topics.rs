//! Topic fan-out, patterns, subscription errors, slow subscribers.

use super::*;

#[test]
fn topic_message_reaches_every_subscriber_once() {
    let broker = broker();
    let mut clients: Vec<Client> = (0..5).map(client).collect();
    for c in &clients {
        c.subscribe(&broker, "sub-0", "/topic/chat", AckMode::Auto)
            .expect("subscribe");
    }
    let id = send(&broker, "/topic/chat", "hello").expect("publish");
    for c in &mut clients {
        let got = c.drain();
        assert_eq!(got.len(), 1);
        let d = &got[0];
        assert_eq!(body(d), "hello");
        assert_eq!(d.subscription.as_str(), "sub-0");
        assert_eq!(d.message.id, id);
        assert_eq!(d.message.destination.as_str(), "/topic/chat");
        assert_eq!(
            d.message.headers,
            [("content-type".into(), "text/plain".into())]
        );
        assert!(d.ack.is_none());
        assert!(!d.redelivered);
    }
    let stats = broker.stats();
    assert_eq!((stats.published, stats.delivered), (1, 5));
}

#[test]
fn pattern_subscriptions_receive_matching_topics() {
    let broker = broker();
    let mut star = client(1);
    let mut deep = client(2);
    let mut exact = client(3);
    star.subscribe(&broker, "s", "/topic/chat.*", AckMode::Auto)
        .expect("subscribe");
    deep.subscribe(&broker, "s", "/topic/**", AckMode::Auto)
        .expect("subscribe");
    exact
        .subscribe(&broker, "s", "/topic/chat.lobby", AckMode::Auto)
        .expect("subscribe");
    send(&broker, "/topic/chat.lobby", "a").expect("publish");
    send(&broker, "/topic/news/today", "b").expect("publish");
    assert_eq!(star.bodies(), ["a"]);
    assert_eq!(deep.bodies(), ["a", "b"]);
    assert_eq!(exact.bodies(), ["a"]);
}

#[test]
fn each_matching_subscription_of_a_session_gets_its_own_delivery() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "exact", "/topic/a.b", AckMode::Auto)
        .expect("subscribe");
    c.subscribe(&broker, "pattern", "/topic/a.*", AckMode::Auto)
        .expect("subscribe");
    send(&broker, "/topic/a.b", "x").expect("publish");
    let mut subs: Vec<String> = c
        .drain()
        .iter()
        .map(|d| d.subscription.to_string())
        .collect();
    subs.sort();
    assert_eq!(subs, ["exact", "pattern"]);
}

#[test]
fn no_delivery_after_unsubscribe() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "t", "/topic/a", AckMode::Auto)
        .expect("subscribe");
    c.subscribe(&broker, "p", "/topic/*", AckMode::Auto)
        .expect("subscribe");
    c.subscribe(&broker, "q", "/queue/a", AckMode::Auto)
        .expect("subscribe");
    for id in ["t", "p", "q"] {
        broker
            .unsubscribe(c.session, &id.into())
            .expect("unsubscribe");
    }
    send(&broker, "/topic/a", "x").expect("publish");
    send(&broker, "/queue/a", "y").expect("publish");
    assert!(c.drain().is_empty());
    assert!(matches!(
        broker.unsubscribe(c.session, &"t".into()),
        Err(BrokerError::UnknownSubscription(id)) if id.as_str() == "t"
    ));
    assert!(matches!(
        broker.unsubscribe(SessionId(99), &"t".into()),
        Err(BrokerError::UnknownSubscription(_))
    ));
}

#[test]
fn duplicate_subscription_id_is_rejected_within_a_session() {
    let broker = broker();
    let (a, b) = (client(1), client(2));
    a.subscribe(&broker, "sub", "/topic/x", AckMode::Auto)
        .expect("subscribe");
    let err = a
        .subscribe(&broker, "sub", "/queue/y", AckMode::Auto)
        .expect_err("duplicate");
    assert!(matches!(err, BrokerError::DuplicateSubscription(ref id) if id.as_str() == "sub"));
    assert_eq!(err.error_frame_message(), "duplicate subscription id");
    b.subscribe(&broker, "sub", "/topic/x", AckMode::Auto)
        .expect("other session may reuse the id");
    broker
        .unsubscribe(a.session, &"sub".into())
        .expect("unsubscribe");
    a.subscribe(&broker, "sub", "/topic/x", AckMode::Auto)
        .expect("id free again");
    assert_eq!(broker.stats().subscriptions, 2);
}

#[test]
fn non_broker_and_pattern_destinations_are_rejected() {
    let broker = broker();
    let c = client(1);
    assert!(matches!(
        c.subscribe(&broker, "a", "/app/chat", AckMode::Auto),
        Err(BrokerError::NotBrokerDestination(p)) if p == "/chat"
    ));
    assert!(matches!(
        c.subscribe(&broker, "b", "/queue/jobs.*", AckMode::Auto),
        Err(BrokerError::PatternOnQueue(q)) if q == "/queue/jobs.*"
    ));
    assert!(matches!(
        send(&broker, "/app/chat", "x"),
        Err(BrokerError::NotBrokerDestination(_))
    ));
    assert!(matches!(
        send(&broker, "/topic/a.*", "x"),
        Err(BrokerError::PatternNotAllowed(t)) if t == "/topic/a.*"
    ));
    assert!(matches!(
        send(&broker, "/queue/a?", "x"),
        Err(BrokerError::PatternNotAllowed(_))
    ));
    // A refused subscription leaves nothing behind, so its id stays free.
    c.subscribe(&broker, "a", "/topic/chat", AckMode::Auto)
        .expect("id unused");
    let stats = broker.stats();
    assert_eq!(
        (stats.subscriptions, stats.queues, stats.published),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn slow_topic_subscriber_does_not_stop_delivery_to_others() {
    let broker = broker();
    // 100-byte bodies weigh 100 + 22 (header) + 64 = 186 bytes: one fits, two do not.
    let mut slow = client_with(1, OutboxLimits { max_bytes: 300 });
    let mut fast = client(2);
    slow.subscribe(&broker, "s", "/topic/t", AckMode::Auto)
        .expect("subscribe");
    fast.subscribe(&broker, "s", "/topic/t", AckMode::Auto)
        .expect("subscribe");
    let text = "x".repeat(100);
    for _ in 0..5 {
        send(&broker, "/topic/t", &text).expect("publish never fails on a slow subscriber");
    }
    slow.rx.overflowed().await;
    assert_eq!(slow.drain().len(), 1);
    assert_eq!(fast.drain().len(), 5);
    assert!(slow.outbox.is_overflowed());
    assert_eq!(broker.stats().delivered, 6);
}

#[test]
fn topic_deliveries_in_client_mode_carry_acceptable_ack_ids() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "s", "/topic/t", AckMode::Client)
        .expect("subscribe");
    send(&broker, "/topic/t", "a").expect("publish");
    send(&broker, "/topic/t", "b").expect("publish");
    let got = c.drain();
    let (first, second) = (ack_id(&got[0]), ack_id(&got[1]));
    assert!(first.starts_with('t') && second.starts_with('t'));
    assert_ne!(first, second);
    broker
        .ack(c.session, AckRef::Delivery(first))
        .expect("topic ack accepted");
    broker
        .nack(c.session, AckRef::Delivery(second))
        .expect("topic nack accepted");
    // Not stored, so a NACK redelivers nothing.
    assert!(c.drain().is_empty());
    let sub = SubscriptionId::from("s");
    let by_message = AckRef::Message {
        subscription: Some(&sub),
        message_id: got[0].message.id.as_str(),
    };
    broker.ack(c.session, by_message).expect("1.1 topic ack");
}
