//! Queues: round robin, holding, limits, ACK/NACK, requeueing, prefetch.

use super::*;

#[test]
fn queue_round_robins_across_three_subscribers() {
    let broker = broker();
    let mut clients: Vec<Client> = (0..3).map(client).collect();
    for c in &clients {
        c.subscribe(&broker, "q", "/queue/jobs", AckMode::Auto)
            .expect("subscribe");
    }
    for i in 0..9 {
        send(&broker, "/queue/jobs", &i.to_string()).expect("publish");
    }
    assert_eq!(clients[0].bodies(), ["0", "3", "6"]);
    assert_eq!(clients[1].bodies(), ["1", "4", "7"]);
    assert_eq!(clients[2].bodies(), ["2", "5", "8"]);
    assert_eq!(broker.stats().delivered, 9);
}

#[test]
fn queue_holds_messages_until_a_subscriber_arrives() {
    let broker = broker();
    for i in 0..3 {
        send(&broker, "/queue/jobs", &i.to_string()).expect("publish");
    }
    let stats = broker.stats();
    assert_eq!((stats.queues, stats.queued_messages), (1, 3));
    let mut c = client(1);
    c.subscribe(&broker, "q", "/queue/jobs", AckMode::Auto)
        .expect("subscribe");
    assert_eq!(c.bodies(), ["0", "1", "2"]);
    assert_eq!(broker.stats().queued_messages, 0);
}

#[test]
fn full_queue_rejects_publish_until_drained() {
    let broker = MemoryBroker::new(config(2, 10));
    send(&broker, "/queue/q", "a").expect("room");
    send(&broker, "/queue/q", "b").expect("room");
    let err = send(&broker, "/queue/q", "c").expect_err("full");
    assert!(matches!(
        err,
        BrokerError::QueueFull { ref queue, limit: 2 } if queue.as_str() == "/queue/q"
    ));
    assert_eq!(err.error_frame_message(), "queue full");
    assert_eq!(broker.stats().queued_messages, 2);
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    send(&broker, "/queue/q", "d").expect("delivered straight away");
    assert_eq!(c.bodies(), ["a", "b", "d"]);
}

#[test]
fn zero_length_queue_only_accepts_what_it_can_deliver() {
    let broker = MemoryBroker::new(config(0, 10));
    assert!(matches!(
        send(&broker, "/queue/q", "a"),
        Err(BrokerError::QueueFull { limit: 0, .. })
    ));
    assert_eq!(
        broker.stats().queues,
        0,
        "a refused publish leaves no queue"
    );
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    send(&broker, "/queue/q", "b").expect("a subscriber takes it");
    assert_eq!(c.bodies(), ["b"]);
}

#[test]
fn client_ack_is_cumulative() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    for i in 0..3 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    let got = c.drain();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|d| ack_id(d).starts_with('q')));
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[1])))
        .expect("ack");
    // The first went with the second.
    assert!(matches!(
        broker.ack(c.session, AckRef::Delivery(ack_id(&got[0]))),
        Err(BrokerError::UnknownAck(id)) if id == ack_id(&got[0])
    ));
    // The third is still outstanding: unsubscribing hands it to the next subscriber.
    let mut other = client(2);
    other
        .subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    broker
        .unsubscribe(c.session, &"s".into())
        .expect("unsubscribe");
    let again = other.drain();
    assert_eq!(again.iter().map(body).collect::<Vec<_>>(), ["2"]);
    assert!(again[0].redelivered);
}

#[test]
fn client_individual_ack_acknowledges_one_delivery() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::ClientIndividual)
        .expect("subscribe");
    for i in 0..3 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    let got = c.drain();
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[1])))
        .expect("ack");
    assert!(broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[1])))
        .is_err());
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[0])))
        .expect("first still outstanding");
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[2])))
        .expect("third still outstanding");
}

#[test]
fn nack_redelivers_with_redelivered_flag() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::ClientIndividual)
        .expect("subscribe");
    let id = send(&broker, "/queue/q", "job").expect("publish");
    let first = c.drain();
    assert!(!first[0].redelivered);
    broker
        .nack(c.session, AckRef::Delivery(ack_id(&first[0])))
        .expect("nack");
    let second = c.drain();
    assert_eq!(second.len(), 1);
    assert!(second[0].redelivered);
    assert_eq!(second[0].message.id, id);
    assert_ne!(ack_id(&second[0]), ack_id(&first[0]), "a fresh ack id");
    assert!(broker
        .ack(c.session, AckRef::Delivery(ack_id(&first[0])))
        .is_err());
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&second[0])))
        .expect("ack redelivery");
}

#[test]
fn client_nack_is_cumulative_and_keeps_order() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    for i in 0..3 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    let got = c.drain();
    broker
        .nack(c.session, AckRef::Delivery(ack_id(&got[1])))
        .expect("nack");
    let again = c.drain();
    assert_eq!(again.iter().map(body).collect::<Vec<_>>(), ["0", "1"]);
    assert!(again.iter().all(|d| d.redelivered));
    // The third delivery was not NACKed and is still outstanding.
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[2])))
        .expect("third outstanding");
}

#[test]
fn unsubscribe_requeues_unacked_in_order_to_another_subscriber() {
    let broker = broker();
    let mut first = client(1);
    first
        .subscribe(&broker, "s", "/queue/q", AckMode::ClientIndividual)
        .expect("subscribe");
    for i in 0..3 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    let mut second = client(2);
    second
        .subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    // Round robin: the first subscriber's turn again.
    send(&broker, "/queue/q", "3").expect("publish");
    let got = first.drain();
    assert_eq!(got.len(), 4);
    broker
        .ack(first.session, AckRef::Delivery(ack_id(&got[2])))
        .expect("ack");
    broker
        .unsubscribe(first.session, &"s".into())
        .expect("unsubscribe");
    let moved = second.drain();
    let bodies: Vec<_> = moved.iter().map(body).collect();
    assert_eq!(bodies, ["0", "1", "3"]);
    assert!(moved.iter().all(|d| d.redelivered));
    assert!(broker
        .ack(first.session, AckRef::Delivery(ack_id(&got[0])))
        .is_err());
}

#[test]
fn session_gone_requeues_unacked_and_drops_its_subscriptions() {
    let broker = broker();
    let mut leaving = client(1);
    leaving
        .subscribe(&broker, "q", "/queue/q", AckMode::Client)
        .expect("subscribe");
    leaving
        .subscribe(&broker, "t", "/topic/t", AckMode::Auto)
        .expect("subscribe");
    leaving
        .subscribe(&broker, "p", "/topic/**", AckMode::Auto)
        .expect("subscribe");
    for i in 0..2 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    assert_eq!(leaving.drain().len(), 2);
    let mut staying = client(2);
    staying
        .subscribe(&broker, "q", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    broker.session_gone(leaving.session);
    let moved = staying.drain();
    assert_eq!(moved.iter().map(body).collect::<Vec<_>>(), ["0", "1"]);
    assert!(moved.iter().all(|d| d.redelivered));
    send(&broker, "/topic/t", "x").expect("publish");
    assert!(leaving.drain().is_empty());
    assert_eq!(broker.stats().subscriptions, 1);
    broker.session_gone(leaving.session); // twice is harmless
}

#[test]
fn prefetch_limit_holds_messages_until_acked() {
    let broker = MemoryBroker::new(config(100, 2));
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::ClientIndividual)
        .expect("subscribe");
    for i in 0..5 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    let got = c.drain();
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), ["0", "1"]);
    assert_eq!(broker.stats().queued_messages, 3);
    broker
        .ack(c.session, AckRef::Delivery(ack_id(&got[0])))
        .expect("ack");
    assert_eq!(c.bodies(), ["2"]);
    assert_eq!(broker.stats().queued_messages, 2);
}

#[test]
fn subscriber_at_prefetch_limit_is_skipped_in_round_robin() {
    let broker = MemoryBroker::new(config(100, 1));
    let mut a = client(1);
    let mut b = client(2);
    a.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    b.subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    for i in 0..3 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    assert_eq!(a.bodies(), ["0"]);
    let from_b = b.drain();
    assert_eq!(from_b.iter().map(body).collect::<Vec<_>>(), ["1"]);
    broker
        .ack(b.session, AckRef::Delivery(ack_id(&from_b[0])))
        .expect("ack");
    // `a` is next in turn but full, so `b` gets it.
    assert_eq!(b.bodies(), ["2"]);
    assert!(a.drain().is_empty());
}

#[test]
fn queue_skips_slow_and_gone_subscribers_and_holds_when_none_can_take() {
    let broker = broker();
    let slow = client_with(1, OutboxLimits { max_bytes: 100 });
    let gone = client(2);
    let mut fast = client(3);
    for c in [&slow, &gone, &fast] {
        c.subscribe(&broker, "s", "/queue/q", AckMode::ClientIndividual)
            .expect("subscribe");
    }
    drop(gone.rx);
    // Overflow the slow one through a topic.
    slow.subscribe(&broker, "t", "/topic/t", AckMode::Auto)
        .expect("subscribe");
    for _ in 0..2 {
        send(&broker, "/topic/t", "x").expect("publish");
    }
    assert!(slow.outbox.is_overflowed());
    for i in 0..4 {
        send(&broker, "/queue/q", &i.to_string()).expect("publish");
    }
    let got = fast.drain();
    assert_eq!(
        got.iter().map(body).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    // Nobody else can take messages: they wait in order.
    broker.session_gone(fast.session);
    send(&broker, "/queue/q", "4").expect("publish");
    assert_eq!(broker.stats().queued_messages, 5);
    let mut late = client(4);
    late.subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    assert_eq!(late.bodies(), ["0", "1", "2", "3", "4"]);
}
