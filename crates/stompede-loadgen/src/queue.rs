//! The `queue` scenario: work distribution. P producers SEND to one queue at a rate or as fast
//! as a bound on unconsumed messages allows; C consumers subscribe with `ack:client-individual`
//! and a prefetch header, and ACK every message.
//!
//! Each body carries `producer.sequence` (see `payload`), so consumers tell a first delivery
//! from a duplicate (a redelivery of a message some consumer already saw) with one bit per
//! message, and loss is produced − consumed, counted on first deliveries only.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use bytes::BytesMut;
use stompede_stomp::{encode_parts, Command, Version};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::{self, Instant};

use crate::cli::QueueArgs;
use crate::conn::{self, Closed, Event, Options, Stomp, Target, Writer};
use crate::cpu::cpu_over_window;
use crate::fanout::CLOSE_TIMEOUT;
use crate::payload::{read_tag, read_timestamp};
use crate::progress::Progress;
use crate::publish::{self, Backlog, Plan};
use crate::report::{Deliveries, QueueReport, Run, Sending, ServerCloses, StompErrors};
use crate::setup::{self, Ready};
use crate::stats::{drain, Stats};
use crate::wire::RawFrame;

/// Which messages some consumer has received: one bit per (producer, sequence).
#[derive(Debug)]
pub(crate) struct Seen {
    /// SENDs each producer has started (a sequence at or past it is not ours).
    produced: Vec<Arc<AtomicU64>>,
    bits: Mutex<Vec<Vec<u64>>>,
}

/// How a delivery relates to what was consumed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sighting {
    /// The first delivery of this message.
    First,
    /// A message some consumer already received.
    Duplicate,
    /// No tag of one of our producers' messages.
    Foreign,
}

impl Seen {
    /// For `producers` producers, none of whose messages were seen.
    pub(crate) fn new(producers: u32) -> Seen {
        Seen {
            produced: (0..producers).map(|_| Arc::default()).collect(),
            bits: Mutex::new(vec![Vec::new(); producers as usize]),
        }
    }

    /// The counter producer `index` bumps before each SEND.
    pub(crate) fn counter(&self, index: u32) -> Option<Arc<AtomicU64>> {
        self.produced.get(index as usize).cloned()
    }

    /// Records a delivery of the message tagged `tag`.
    pub(crate) fn sight(&self, tag: Option<(u32, u64)>) -> Sighting {
        let Some((producer, seq)) = tag else {
            return Sighting::Foreign;
        };
        let Some(produced) = self.produced.get(producer as usize) else {
            return Sighting::Foreign;
        };
        // The bitmap grows only as far as the producer really sent, whatever the tag says.
        if seq >= produced.load(Relaxed) {
            return Sighting::Foreign;
        }
        let mut bits = self.bits.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bits) = bits.get_mut(producer as usize) else {
            return Sighting::Foreign;
        };
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if bits[word] & mask != 0 {
            return Sighting::Duplicate;
        }
        bits[word] |= mask;
        Sighting::First
    }
}

/// Counters only consumers touch.
#[derive(Debug, Default)]
struct ConsumerCounts {
    duplicates: AtomicU64,
    redelivered: AtomicU64,
    foreign: AtomicU64,
    /// MESSAGE frames without an `ack` header (so they could not be acknowledged).
    unackable: AtomicU64,
    acks: AtomicU64,
}

/// What every consumer task shares.
#[derive(Clone)]
struct Shared {
    target: Arc<Target>,
    destination: Arc<str>,
    prefetch: Option<(Arc<str>, u32)>,
    stats: Arc<Stats>,
    seen: Arc<Seen>,
    counts: Arc<ConsumerCounts>,
    ready: Ready,
    stop: watch::Receiver<bool>,
}

/// What one consumer saw.
#[derive(Debug, Default)]
struct ConsumerReport {
    /// First deliveries this consumer received (all, warm-up included).
    consumed: u64,
    closed: Option<Closed>,
    errors: StompErrors,
}

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// A consumer or producer cannot connect (or subscribe) within `--setup-timeout`. What goes
/// wrong after that is counted in the report.
pub(crate) async fn run(args: QueueArgs, shards: usize) -> anyhow::Result<QueueReport> {
    let target = Arc::new(Target::new(
        args.target.transport,
        args.target.url.as_deref(),
    )?);
    let stats = Arc::new(Stats::new(shards));
    let seen = Arc::new(Seen::new(args.producers));
    let counts = Arc::new(ConsumerCounts::default());
    let destination: Arc<str> = Arc::from(args.destination.as_str());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let deadline = Instant::now() + args.open.setup_timeout;
    eprintln!(
        "opening {} consumers and {} producers to {} over {} ({})",
        args.consumers,
        args.producers,
        target.url(),
        target.transport().as_str(),
        args.destination
    );
    let shared = Shared {
        target: target.clone(),
        destination: destination.clone(),
        prefetch: (args.prefetch > 0)
            .then(|| (Arc::from(args.prefetch_header.as_str()), args.prefetch)),
        stats: stats.clone(),
        seen: seen.clone(),
        counts: counts.clone(),
        ready: ready_tx,
        stop: stop_rx,
    };
    let spawner = tokio::spawn(setup::spawn_paced(
        args.consumers,
        args.open.connections_per_second,
        move |index, permit| tokio::spawn(consume(index, shared.clone(), permit)),
    ));
    let consumers =
        setup::spawned_ready(spawner, &mut ready_rx, u64::from(args.consumers), deadline).await?;
    let producer_conns = setup::open_senders(&target, args.producers, deadline, "producer").await?;

    let window = &args.window;
    let (start, _, measure_until) = stats.start_window(window.warmup, window.duration);
    eprintln!(
        "publishing for {:?} (+{:?} warm-up)",
        window.duration, window.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let progress = Progress::new(stats.clone(), "consumed", "consumers", args.consumers)
        .sent("produced")
        .extra({
            let counts = counts.clone();
            move |stats| {
                let backlog = stats
                    .sent
                    .load(Relaxed)
                    .saturating_sub(stats.delivered.load(Relaxed));
                let duplicates = counts.duplicates.load(Relaxed);
                format!("backlog {backlog}  duplicates {duplicates}")
            }
        })
        .spawn();
    let plan = Arc::new(Plan::new(
        start,
        measure_until,
        args.producers,
        args.rate,
        args.size,
        true,
        args.max_in_flight,
        Backlog::Total,
    ));
    let producers: Vec<_> = producer_conns
        .into_iter()
        .enumerate()
        .map(|(index, stomp)| {
            let index = index as u32;
            tokio::spawn(publish::publish(
                index,
                stomp,
                plan.clone(),
                destination.clone(),
                stats.clone(),
                seen.counter(index),
            ))
        })
        .collect();
    let mut closes = ServerCloses::default();
    let mut errors = StompErrors::default();
    let mut unconfirmed_producers = 0;
    for handle in producers {
        let report = handle.await.context("producer task failed")?;
        if let Some(closed) = &report.closed {
            closes.add_stomp(Some("producer"), closed, &report.errors);
        }
        if !report.confirmed {
            unconfirmed_producers += 1;
        }
        errors.merge(report.errors);
    }

    // Drain: every measured message should be consumed once.
    let drained = drain(window.drain_timeout, || {
        stats.delivered_measured.load(Relaxed) >= stats.sent_measured.load(Relaxed)
    })
    .await;
    progress.abort();
    let _ = stop_tx.send(true);

    let mut per_consumer = Vec::with_capacity(consumers.len());
    let mut consumers_closed = 0;
    for handle in consumers {
        let report = handle.await.context("consumer task failed")?;
        if let Some(closed) = &report.closed {
            consumers_closed += 1;
            closes.add_stomp(Some("consumer"), closed, &report.errors);
        }
        per_consumer.push(report.consumed);
        errors.merge(report.errors);
    }
    // Each measured message is owed once to the queue, whichever consumer takes it.
    let deliveries = Deliveries {
        expected: stats.sent_measured.load(Relaxed),
        received: stats.delivered_measured.load(Relaxed),
        drained,
        ..Deliveries::default()
    };
    Ok(QueueReport {
        run: Run::finish(
            (target.url().to_owned(), Some(target.transport().as_str())),
            args.size,
            window,
            &stats,
            tool_cpu,
            shards,
        )
        .await,
        destination: args.destination,
        producers: u64::from(args.producers),
        consumers: u64::from(args.consumers),
        prefetch: args.prefetch,
        producing: Sending {
            total: stats.sent.load(Relaxed),
            measured: deliveries.expected,
            wanted: args.rate,
        },
        consumed: stats.delivered.load(Relaxed),
        consumed_per_sec: stats.delivered_per_sec(deliveries.received),
        deliveries,
        duplicates: counts.duplicates.load(Relaxed),
        redelivered: counts.redelivered.load(Relaxed),
        foreign: counts.foreign.load(Relaxed),
        unackable: counts.unackable.load(Relaxed),
        acks: counts.acks.load(Relaxed),
        per_consumer_min: per_consumer.iter().copied().min().unwrap_or(0),
        per_consumer_max: per_consumer.iter().copied().max().unwrap_or(0),
        consumers_closed,
        unconfirmed_producers,
        closes,
        errors,
    })
}

/// One consumer: subscribe, then take, time and ACK messages until the run stops.
async fn consume(
    index: u32,
    shared: Shared,
    permit: Option<OwnedSemaphorePermit>,
) -> ConsumerReport {
    let mut report = ConsumerReport::default();
    let extra: Vec<(&str, String)> = shared
        .prefetch
        .iter()
        .map(|(name, n)| (&**name, n.to_string()))
        .collect();
    let opened = conn::open_subscribed(
        &shared.target,
        Options::default(),
        &shared.destination,
        "client-individual",
        &extra,
        u64::from(index),
    )
    .await;
    let (
        Stomp {
            mut writer, reader, ..
        },
        before,
    ) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let _ = shared.ready.send(Err(
                anyhow::Error::new(e).context(format!("consumer {index}"))
            ));
            return report;
        }
    };
    drop(permit);
    let _ = shared.ready.send(Ok(()));
    let mut stop = shared.stop.clone();
    let shard = index as usize % shared.stats.shards();
    let mut scratch = BytesMut::with_capacity(4096);

    // Messages a queue handed over before the SUBSCRIBE receipt (left from an earlier run, or
    // sent as soon as the subscription existed) are taken like any other.
    for frame in &before {
        on_frame(
            frame,
            &shared,
            shard,
            &mut writer,
            &mut scratch,
            &mut report,
        )
        .await;
    }
    let mut read = pin!(reader.into_next_event());
    // One wait for the stop, kept across rounds: a fresh `changed()` per frame cost ~9% of the
    // tool's CPU at max rate (perf: creating and dropping its `Notified`).
    let mut stopped = pin!(stop.changed());
    let closed = 'run: loop {
        // A write error means the connection is gone; the reader will say how it ended.
        let _ = writer.flush().await;
        tokio::select! {
            biased;
            _ = &mut stopped => break None,
            (mut reader, event) = &mut read => {
                let mut event = Some(event);
                while let Some(next) = event.take().or_else(|| reader.buffered()) {
                    match next {
                        Event::Frame(frame) => {
                            on_frame(&frame, &shared, shard, &mut writer, &mut scratch, &mut report).await;
                        }
                        Event::Closed(closed) => break 'run Some(closed),
                    }
                }
                read.set(reader.into_next_event());
            }
        }
    };
    match closed {
        Some(closed) => {
            shared.stats.closed_subscribers.fetch_add(1, Relaxed);
            shared.stats.closed_connections.fetch_add(1, Relaxed);
            report.closed = Some(closed);
        }
        None => {
            let _ = time::timeout(CLOSE_TIMEOUT, writer.close()).await;
        }
    }
    report
}

/// Takes one frame: a MESSAGE is ACKed (queued on `writer`), checked against what was already
/// consumed, and timed if it is a first delivery in the window.
async fn on_frame(
    frame: &RawFrame,
    shared: &Shared,
    shard: usize,
    writer: &mut Writer,
    scratch: &mut BytesMut,
    report: &mut ConsumerReport,
) {
    match frame.command() {
        Command::Message => {}
        Command::Error => {
            report
                .errors
                .add(frame.header("message").map(|m| m.into_owned()));
            return;
        }
        _ => return,
    }
    let counts = &shared.counts;
    match frame.header("ack") {
        Some(ack) => {
            encode_parts(Command::Ack, [("id", &*ack)], b"", Version::V1_2, scratch);
            // A write error means the connection is gone; the reader reports how.
            if writer.feed_encoded(scratch).await.is_ok() {
                counts.acks.fetch_add(1, Relaxed);
            }
        }
        None => {
            counts.unackable.fetch_add(1, Relaxed);
        }
    }
    if frame.header("redelivered").as_deref() == Some("true") {
        counts.redelivered.fetch_add(1, Relaxed);
    }
    let body = frame.body();
    match shared.seen.sight(read_tag(body)) {
        Sighting::First => {}
        Sighting::Duplicate => {
            counts.duplicates.fetch_add(1, Relaxed);
            return;
        }
        Sighting::Foreign => {
            counts.foreign.fetch_add(1, Relaxed);
            return;
        }
    }
    let stats = &shared.stats;
    report.consumed += 1;
    stats.delivered.fetch_add(1, Relaxed);
    let Some(ts) = read_timestamp(body).filter(|&ts| stats.is_measured(ts)) else {
        return;
    };
    let now = stats.now_ns();
    stats.delivered_measured.fetch_add(1, Relaxed);
    stats.last_delivery.fetch_max(now, Relaxed);
    stats.record_latency(shard, now.saturating_sub(ts) / 1_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sightings_tell_first_deliveries_from_duplicates() {
        let seen = Seen::new(2);
        let produced = seen.counter(1).expect("producer 1");
        produced.store(200, Relaxed);
        assert_eq!(seen.sight(Some((1, 130))), Sighting::First);
        assert_eq!(seen.sight(Some((1, 130))), Sighting::Duplicate);
        assert_eq!(seen.sight(Some((1, 0))), Sighting::First);
        assert_eq!(seen.sight(Some((1, 199))), Sighting::First);
        assert_eq!(
            seen.sight(Some((1, 200))),
            Sighting::Foreign,
            "not sent yet"
        );
        assert_eq!(
            seen.sight(Some((0, 0))),
            Sighting::Foreign,
            "producer 0 sent nothing"
        );
        assert_eq!(seen.sight(Some((2, 0))), Sighting::Foreign, "no producer 2");
        assert_eq!(seen.sight(None), Sighting::Foreign);
        assert!(seen.counter(2).is_none());
        // A hostile tag cannot make the bitmap grow past what was sent.
        assert_eq!(seen.sight(Some((1, u64::MAX))), Sighting::Foreign);
        let bits = seen.bits.lock().expect("not poisoned");
        assert!(bits[1].len() <= 4);
    }
}
