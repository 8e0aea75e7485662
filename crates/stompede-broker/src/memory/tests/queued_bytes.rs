//! The broker-wide bound on queued bytes (`MemoryConfig::max_queued_bytes`).

use super::*;

fn bytes_config(max_queued_bytes: usize, max_unacked: usize) -> MemoryConfig {
    MemoryConfig {
        max_queued_bytes,
        ..config(100, max_unacked)
    }
}

#[test]
fn default_limit_is_256_mib() {
    assert_eq!(MemoryConfig::default().max_queued_bytes, 268_435_456);
}

#[test]
fn publish_past_the_byte_limit_fails_across_queues_while_topics_still_work() {
    let limit = 3 * weight("x");
    let broker = MemoryBroker::new(bytes_config(limit, 10));
    for queue in ["/queue/a", "/queue/b", "/queue/c"] {
        send(&broker, queue, "x").expect("room");
    }
    let stats = broker.stats();
    assert_eq!((stats.queued_messages, stats.queued_bytes), (3, limit));
    let err = send(&broker, "/queue/d", "x").expect_err("broker full");
    assert!(matches!(err, BrokerError::BrokerFull { limit: l } if l == limit));
    assert_eq!(err.error_frame_message(), "broker full");
    assert_eq!(
        err.to_string(),
        format!("broker would hold more than {limit} bytes of queued messages")
    );
    // The bound is on the total: the queue with room is refused too, and nothing is left.
    assert!(matches!(
        send(&broker, "/queue/a", "x"),
        Err(BrokerError::BrokerFull { .. })
    ));
    let stats = broker.stats();
    assert_eq!(
        (stats.queues, stats.queued_messages, stats.queued_bytes),
        (3, 3, limit)
    );
    // Even a queue whose auto subscriber would take the message at once.
    let mut taker = client(1);
    taker
        .subscribe(&broker, "s", "/queue/e", AckMode::Auto)
        .expect("subscribe");
    assert!(matches!(
        send(&broker, "/queue/e", "x"),
        Err(BrokerError::BrokerFull { .. })
    ));
    assert!(taker.drain().is_empty());
    // Topics hold nothing and are not bounded by it.
    let mut listener = client(2);
    listener
        .subscribe(&broker, "t", "/topic/t", AckMode::Auto)
        .expect("subscribe");
    send(&broker, "/topic/t", "news").expect("topic publish");
    send(&broker, "/topic/nobody", "news").expect("topic publish");
    assert_eq!(listener.bodies(), ["news"]);
    assert_eq!(broker.stats().queued_bytes, limit);
}

#[test]
fn a_message_weighs_body_headers_and_overhead() {
    let broker = broker();
    let body = Bytes::from(vec![b'z'; 64 * 1024]);
    broker
        .publish(Publish {
            destination: dest("/queue/big"),
            headers: vec![("a".into(), "bc".into()), ("custom".into(), String::new())],
            body,
        })
        .expect("publish");
    assert_eq!(broker.stats().queued_bytes, 64 * 1024 + 3 + 6 + 64);
}

#[test]
fn auto_delivery_releases_bytes_so_publishing_works_again() {
    let limit = 2 * weight("x");
    let broker = MemoryBroker::new(bytes_config(limit, 10));
    send(&broker, "/queue/q", "x").expect("room");
    send(&broker, "/queue/q", "x").expect("room");
    assert!(send(&broker, "/queue/q", "x").is_err());
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    assert_eq!(c.bodies(), ["x", "x"]);
    assert_eq!(broker.stats().queued_bytes, 0);
    for _ in 0..5 {
        send(&broker, "/queue/q", "y").expect("delivered straight away");
    }
    assert_eq!(c.bodies().len(), 5);
    assert_eq!(broker.stats().queued_bytes, 0);
}

#[test]
fn unacked_deliveries_count_until_acked() {
    let w = weight("x");
    let broker = MemoryBroker::new(bytes_config(3 * w, 10));
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    for _ in 0..3 {
        send(&broker, "/queue/q", "x").expect("room");
    }
    let got = c.drain();
    assert_eq!(got.len(), 3);
    let stats = broker.stats();
    assert_eq!(
        (stats.queued_messages, stats.queued_bytes),
        (0, 3 * w),
        "delivered, not acknowledged: still held"
    );
    assert!(matches!(
        send(&broker, "/queue/q", "x"),
        Err(BrokerError::BrokerFull { .. })
    ));
    // Client mode: the second ACK settles the first two.
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[1])))
        .expect("ack");
    assert_eq!(broker.stats().queued_bytes, w);
    send(&broker, "/queue/q", "x").expect("room again");
    send(&broker, "/queue/q", "x").expect("room again");
    let more = c.drain();
    assert_eq!(more.len(), 2);
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&more[1])))
        .expect("ack the rest");
    assert_eq!(broker.stats().queued_bytes, 0);
}

#[test]
fn queue_full_refusal_gives_its_bytes_back() {
    let broker = MemoryBroker::new(MemoryConfig {
        max_queued_bytes: 10 * weight("x"),
        ..config(1, 10)
    });
    send(&broker, "/queue/q", "x").expect("room");
    assert!(matches!(
        send(&broker, "/queue/q", "x"),
        Err(BrokerError::QueueFull { limit: 1, .. })
    ));
    assert_eq!(broker.stats().queued_bytes, weight("x"));
}

#[test]
fn requeueing_at_the_limit_never_drops_a_message() {
    let w = weight("0");
    let broker = MemoryBroker::new(bytes_config(2 * w, 10));
    let mut leaving = client(1);
    leaving
        .subscribe(&broker, "s", "/queue/q", AckMode::ClientIndividual)
        .expect("subscribe");
    send(&broker, "/queue/q", "0").expect("room");
    send(&broker, "/queue/q", "1").expect("room");
    let got = leaving.drain();
    assert!(send(&broker, "/queue/q", "2").is_err(), "full");
    // NACK puts the message back and it is redelivered: it needs no room, it has it.
    broker
        .nack(leaving.session, AckRef::Delivery(ack_id(&got[0])))
        .expect("nack");
    let again = leaving.drain();
    assert_eq!(again.iter().map(body).collect::<Vec<_>>(), ["0"]);
    assert!(again[0].redelivered);
    assert_eq!(broker.stats().queued_bytes, 2 * w);
    // Disconnecting with both unacknowledged: both wait in the queue, still counted.
    broker.session_gone(leaving.session);
    let stats = broker.stats();
    assert_eq!((stats.queued_messages, stats.queued_bytes), (2, 2 * w));
    assert!(send(&broker, "/queue/q", "2").is_err(), "still full");
    let mut late = client(2);
    late.subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    let moved = late.drain();
    assert_eq!(moved.iter().map(body).collect::<Vec<_>>(), ["1", "0"]);
    assert!(moved.iter().all(|d| d.redelivered));
    assert_eq!(broker.stats().queued_bytes, 0);
    send(&broker, "/queue/q", "2").expect("room again");
}

#[test]
fn unsubscribe_requeue_past_prefetch_keeps_bytes_and_messages() {
    let w = weight("0");
    let broker = MemoryBroker::new(bytes_config(3 * w, 1));
    let mut a = client(1);
    let mut b = client(2);
    a.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    b.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    for i in 0..3 {
        send(&broker, "/queue/q", &i.to_string()).expect("room");
    }
    assert_eq!(a.bodies(), ["0"]);
    let from_b = b.drain();
    assert_eq!(from_b.iter().map(body).collect::<Vec<_>>(), ["1"]);
    // "2" waits (both at prefetch 1); `a` leaves, so "0" goes back in front of it.
    broker
        .unsubscribe(a.session, &"s".into())
        .expect("unsubscribe");
    let stats = broker.stats();
    assert_eq!((stats.queued_messages, stats.queued_bytes), (2, 3 * w));
    broker
        .ack(b.session, AckRef::Delivery(ack_id(&from_b[0])))
        .expect("ack");
    let next = b.drain();
    assert_eq!(next.iter().map(body).collect::<Vec<_>>(), ["0"]);
    assert_eq!(broker.stats().queued_bytes, 2 * w);
}
