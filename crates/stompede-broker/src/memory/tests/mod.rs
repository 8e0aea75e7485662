//! Behaviour of the in-memory broker, through the `Broker` trait.

mod acks;
mod queued_bytes;
mod queues;
mod topics;

use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::message::Delivery;
use crate::outbox::{Outbox, OutboxLimits, OutboxReceiver};
use crate::Prefixes;

fn dest(raw: &str) -> Destination {
    Destination::parse(raw, &Prefixes::default()).expect("valid destination")
}

struct Client {
    session: SessionId,
    outbox: Outbox,
    rx: OutboxReceiver,
}

fn client(session: u64) -> Client {
    client_with(session, OutboxLimits::default())
}

fn client_with(session: u64, limits: OutboxLimits) -> Client {
    let (outbox, rx) = Outbox::new(SessionId(session), limits);
    Client {
        session: SessionId(session),
        outbox,
        rx,
    }
}

impl Client {
    fn subscribe(
        &self,
        broker: &dyn Broker,
        id: &str,
        raw: &str,
        ack: AckMode,
    ) -> Result<(), BrokerError> {
        broker.subscribe(Subscription {
            session: self.session,
            id: id.into(),
            destination: dest(raw),
            ack,
            outbox: self.outbox.clone(),
        })
    }

    fn drain(&mut self) -> Vec<Delivery> {
        std::iter::from_fn(|| self.rx.try_recv()).collect()
    }

    fn bodies(&mut self) -> Vec<String> {
        self.drain().iter().map(body).collect()
    }
}

fn body(delivery: &Delivery) -> String {
    String::from_utf8_lossy(&delivery.message.body).into_owned()
}

fn send(broker: &dyn Broker, raw: &str, text: &str) -> Result<MessageId, BrokerError> {
    broker.publish(Publish {
        destination: dest(raw),
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Bytes::copy_from_slice(text.as_bytes()),
    })
}

/// What a message from [`send`] weighs: `text`, the `content-type` header and 64 bytes.
fn weight(text: &str) -> usize {
    text.len() + "content-type".len() + "text/plain".len() + 64
}

fn ack_id(delivery: &Delivery) -> &str {
    delivery.ack.as_ref().map_or("", AckId::as_str)
}

fn config(max_queue_len: usize, max_unacked: usize) -> MemoryConfig {
    MemoryConfig {
        max_queue_len,
        max_unacked,
        ..MemoryConfig::default()
    }
}

fn broker() -> MemoryBroker {
    MemoryBroker::new(MemoryConfig::default())
}

// ---- housekeeping ----

#[test]
fn idle_topics_and_queues_are_dropped() {
    let broker = broker();
    let mut c = client(1);
    for i in 0..100 {
        c.subscribe(
            &broker,
            &format!("t{i}"),
            &format!("/topic/{i}"),
            AckMode::Auto,
        )
        .expect("subscribe");
        c.subscribe(
            &broker,
            &format!("q{i}"),
            &format!("/queue/{i}"),
            AckMode::Client,
        )
        .expect("subscribe");
    }
    c.subscribe(&broker, "p", "/topic/*", AckMode::Auto)
        .expect("subscribe");
    let stats = broker.stats();
    assert_eq!(
        (stats.subscriptions, stats.topics, stats.queues),
        (201, 100, 100)
    );
    send(&broker, "/queue/5", "unacked").expect("publish");
    for i in 0..100 {
        broker
            .unsubscribe(c.session, &format!("t{i}").as_str().into())
            .expect("unsubscribe");
        broker
            .unsubscribe(c.session, &format!("q{i}").into())
            .expect("unsubscribe");
    }
    // The requeued message keeps its queue alive until someone takes it.
    let stats = broker.stats();
    assert_eq!(
        (
            stats.subscriptions,
            stats.topics,
            stats.queues,
            stats.queued_messages,
            stats.queued_bytes
        ),
        (1, 0, 1, 1, weight("unacked"))
    );
    let mut taker = client(2);
    taker
        .subscribe(&broker, "q", "/queue/5", AckMode::Auto)
        .expect("subscribe");
    assert_eq!(taker.bodies(), ["unacked"]);
    broker.session_gone(taker.session);
    broker.session_gone(c.session);
    let stats = broker.stats();
    assert_eq!(
        (
            stats.subscriptions,
            stats.topics,
            stats.queues,
            stats.queued_messages,
            stats.queued_bytes
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(c.bodies(), ["unacked"]);
}

#[test]
fn message_ids_are_unique() {
    let broker = broker();
    let other = MemoryBroker::new(MemoryConfig::default());
    let mut seen = HashSet::new();
    for _ in 0..1_000 {
        assert!(seen.insert(send(&broker, "/topic/t", "x").expect("publish")));
    }
    assert!(seen.insert(send(&other, "/topic/t", "x").expect("publish")));
}

#[test]
fn concurrent_publishers_and_subscribers_add_up() {
    const PUBLISHERS: usize = 3;
    const PER_PUBLISHER: usize = 500;
    const TOTAL: usize = PUBLISHERS * PER_PUBLISHER;
    let deadline = Instant::now() + Duration::from_secs(30);
    let broker = Arc::new(MemoryBroker::new(config(TOTAL, 8)));
    let big = OutboxLimits {
        max_bytes: usize::MAX / 2,
    };
    let mut topic_clients: Vec<Client> = (0..6).map(|s| client_with(s, big)).collect();
    for c in &topic_clients {
        c.subscribe(&*broker, "t", "/topic/load", AckMode::Auto)
            .expect("subscribe");
    }
    let acked = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (100..102)
        .map(|s| {
            let mut c = client_with(s, big);
            c.subscribe(&*broker, "q", "/queue/load", AckMode::ClientIndividual)
                .expect("subscribe");
            let (broker, acked) = (Arc::clone(&broker), Arc::clone(&acked));
            thread::spawn(move || {
                while acked.load(Ordering::SeqCst) < TOTAL {
                    assert!(Instant::now() < deadline, "consumers stalled");
                    match c.rx.try_recv() {
                        Some(d) => {
                            broker
                                .ack(c.session, AckRef::Delivery(ack_id(&d)))
                                .expect("ack own delivery");
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        None => thread::yield_now(),
                    }
                }
            })
        })
        .collect();
    let churn = {
        let broker = Arc::clone(&broker);
        thread::spawn(move || {
            for i in 0..300u64 {
                let c = client(1_000 + i);
                c.subscribe(&*broker, "a", "/topic/load", AckMode::Client)
                    .expect("subscribe");
                c.subscribe(&*broker, "b", "/topic/**", AckMode::Auto)
                    .expect("subscribe");
                c.subscribe(&*broker, "c", &format!("/queue/churn{i}"), AckMode::Auto)
                    .expect("subscribe");
                // Client mode: what it holds on leaving goes back to the queue.
                c.subscribe(&*broker, "d", "/queue/load", AckMode::Client)
                    .expect("subscribe");
                broker
                    .unsubscribe(c.session, &"d".into())
                    .expect("unsubscribe");
                broker.session_gone(c.session);
            }
        })
    };
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let broker = Arc::clone(&broker);
            thread::spawn(move || {
                for i in 0..PER_PUBLISHER {
                    send(&*broker, "/topic/load", "t").expect("topic publish");
                    send(&*broker, "/queue/load", &i.to_string()).expect("queue publish");
                }
            })
        })
        .collect();
    for handle in publishers.into_iter().chain([churn]).chain(consumers) {
        handle.join().expect("thread panicked");
    }
    for c in &mut topic_clients {
        assert_eq!(c.drain().len(), TOTAL);
    }
    assert_eq!(acked.load(Ordering::SeqCst), TOTAL);
    let stats = broker.stats();
    assert_eq!(stats.published, 2 * TOTAL as u64);
    assert!(stats.delivered >= (6 * TOTAL + TOTAL) as u64);
    assert_eq!(
        (
            stats.subscriptions,
            stats.topics,
            stats.queues,
            stats.queued_messages,
            stats.queued_bytes
        ),
        (8, 1, 1, 0, 0),
        "every queue message was acknowledged: no bytes held"
    );
}
