//! Topic fan-out: one 100-byte message published to a topic with 1 000 and 10 000
//! subscribers, each with its own outbox.
//!
//! Only `publish` is timed (`iter_custom`): after each publish the receivers are drained
//! outside the measured time, so outboxes never overflow and each iteration starts alike.
//! Throughput counts deliveries.
//!
//! `cargo bench -p stompede-broker --bench fanout -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stompede_broker::{
    AckMode, Broker, Destination, MemoryBroker, MemoryConfig, Outbox, OutboxLimits, OutboxReceiver,
    Prefixes, Publish, SessionId, Subscription,
};

fn topic() -> Destination {
    Destination::parse("/topic/bench.fanout", &Prefixes::default()).expect("valid destination")
}

fn broker_with(subscribers: u64) -> (MemoryBroker, Vec<OutboxReceiver>) {
    let broker = MemoryBroker::new(MemoryConfig::default());
    let mut receivers = Vec::new();
    for session in 0..subscribers {
        let (outbox, rx) = Outbox::new(SessionId(session), OutboxLimits::default());
        broker
            .subscribe(Subscription {
                session: SessionId(session),
                id: "sub-0".into(),
                destination: topic(),
                ack: AckMode::Auto,
                outbox,
            })
            .expect("fresh subscription");
        receivers.push(rx);
    }
    (broker, receivers)
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    let body = Bytes::from(vec![b'x'; 100]);
    let headers = vec![("content-type".to_owned(), "text/plain".to_owned())];
    for subscribers in [1_000u64, 10_000] {
        let (broker, mut receivers) = broker_with(subscribers);
        group.throughput(Throughput::Elements(subscribers));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let publish = Publish {
                        destination: topic(),
                        headers: headers.clone(),
                        body: body.clone(),
                    };
                    let started = Instant::now();
                    let id = broker.publish(publish).expect("topic publish");
                    timed += started.elapsed();
                    black_box(id);
                    for rx in &mut receivers {
                        while let Some(delivery) = rx.try_recv() {
                            black_box(delivery);
                        }
                    }
                }
                timed
            });
        });
        assert_eq!(
            broker.stats().delivered,
            broker.stats().published * subscribers
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
