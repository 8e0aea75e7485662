//! The `fanout` scenario: publishers SEND to one destination, every subscriber receives.
//!
//! Phases: open and subscribe every subscriber (bounded by `--setup-timeout`), open the
//! publishers, publish for warm-up + duration, let in-flight deliveries drain (bounded by
//! `--drain-timeout`), close everything, report. One task per connection; publishers have a
//! second task that reads their receipts (`crate::publish`).

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stompede_stomp::Command;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::{self, Instant};

use crate::cli::FanoutArgs;
use crate::conn::{self, Closed, Event, Options, Stomp, Target};
use crate::cpu::{cpu_over_window, window_cpu};
use crate::payload::read_timestamp;
use crate::publish::{self, Backlog, Plan};
use crate::report::{FanoutReport, Latency, StompErrors, ToolCpu};
use crate::setup::{self, Pacer, Ready};
use crate::stats::{duration_ns, Stats};
use crate::wire::RawFrame;

/// How long a connection waits for the server to take its close at the end.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// A subscriber or publisher cannot connect or subscribe within `--setup-timeout`. Everything
/// that goes wrong after that (closes, bad frames, ERROR frames) is counted in the report.
pub(crate) async fn run(args: FanoutArgs, shards: usize) -> anyhow::Result<FanoutReport> {
    let target = Arc::new(Target::new(
        args.target.transport,
        args.target.url.as_deref(),
    )?);
    let stats = Arc::new(Stats::new(shards));
    let destination: Arc<str> = Arc::from(args.destination.as_str());
    let (stop_tx, stop_rx) = watch::channel(false);
    let setup_deadline = Instant::now() + args.setup_timeout;

    // Subscribers first: every one must hold its subscription before the first SEND.
    eprintln!(
        "opening {} subscribers to {} over {} ({})",
        args.subscribers,
        target.url(),
        target.transport().as_str(),
        args.destination
    );
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let spawner = tokio::spawn(spawn_subscribers(
        args.subscribers,
        args.connections_per_second,
        SubscriberSetup {
            target: target.clone(),
            destination: destination.clone(),
            stats: stats.clone(),
            ready: ready_tx,
            stop: stop_rx,
        },
    ));
    if let Err(e) = setup::wait_ready(
        &mut ready_rx,
        u64::from(args.subscribers),
        setup_deadline,
        "subscribed",
    )
    .await
    {
        let _ = stop_tx.send(true);
        spawner.abort();
        return Err(e);
    }
    let subscribers = spawner.await.context("subscriber spawner failed")?;

    // Publishers: connected before the clock starts, so the warm-up is all publishing.
    let mut publisher_conns = Vec::with_capacity(args.publishers as usize);
    for index in 0..args.publishers {
        let stomp = time::timeout_at(setup_deadline, conn::open(&target, Options::default()))
            .await
            .map_err(|_| {
                anyhow::anyhow!("publisher {index}: no CONNECTED within the setup timeout")
            })?
            .with_context(|| format!("publisher {index}"))?;
        publisher_conns.push(stomp);
    }

    let start = stats.now_ns();
    let measure_from = start + duration_ns(args.warmup);
    let measure_until = measure_from + duration_ns(args.duration);
    stats.set_window(measure_from, measure_until);
    eprintln!(
        "publishing for {:?} (+{:?} warm-up)",
        args.duration, args.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let plan = Arc::new(Plan::new(
        start,
        measure_until,
        args.publishers,
        args.rate,
        args.size,
        false,
        args.max_in_flight,
        Backlog::PerSubscriber(u64::from(args.subscribers)),
    ));
    let publishers: Vec<_> = publisher_conns
        .into_iter()
        .enumerate()
        .map(|(index, stomp)| {
            tokio::spawn(publish::publish(
                index as u32,
                stomp,
                plan.clone(),
                destination.clone(),
                stats.clone(),
                None,
            ))
        })
        .collect();
    let progress = tokio::spawn(progress(stats.clone(), args.subscribers));

    let mut close_codes = BTreeMap::new();
    let mut errors = StompErrors::default();
    for handle in publishers {
        let report = handle.await.context("publisher task failed")?;
        if let Some(closed) = report.closed {
            *close_codes.entry(closed.to_string()).or_insert(0) += 1;
        }
        errors.merge(report.errors);
    }

    // Drain: every subscriber still connected should get every measured message.
    let drain_deadline = Instant::now() + args.drain_timeout;
    let drained = loop {
        let alive = u64::from(args.subscribers) - stats.closed_subscribers.load(Relaxed);
        let want = stats.sent_measured.load(Relaxed) * alive;
        let got =
            stats.delivered_measured.load(Relaxed) - stats.delivered_measured_closed.load(Relaxed);
        if got >= want {
            break true;
        }
        if Instant::now() >= drain_deadline {
            break false;
        }
        time::sleep(Duration::from_millis(10)).await;
    };
    progress.abort();
    let _ = stop_tx.send(true);

    let mut alive = 0;
    let mut delivered = 0;
    let mut delivered_to_closed = 0;
    let mut unmeasured = 0;
    for handle in subscribers {
        let report = handle.await.context("subscriber task failed")?;
        match report.closed {
            None => {
                alive += 1;
                delivered += report.measured;
            }
            Some(closed) => {
                *close_codes.entry(closed.to_string()).or_insert(0) += 1;
                delivered_to_closed += report.measured;
            }
        }
        unmeasured += report.unmeasured;
        errors.merge(report.errors);
    }

    let sent_measured = stats.sent_measured.load(Relaxed);
    let last = stats.last_delivery.load(Relaxed);
    let delivered_all = delivered + delivered_to_closed;
    let delivered_per_sec = if last > measure_from {
        delivered_all as f64 / ((last - measure_from) as f64 / 1e9)
    } else {
        0.0
    };
    Ok(FanoutReport {
        url: target.url().to_owned(),
        transport: target.transport(),
        subscribers: u64::from(args.subscribers),
        publishers: u64::from(args.publishers),
        size: u64::from(args.size),
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        sent: stats.sent.load(Relaxed),
        sent_measured,
        subscribers_alive: alive,
        expected: sent_measured * alive,
        delivered,
        delivered_to_closed,
        unmeasured_deliveries: unmeasured,
        delivered_per_sec,
        close_codes,
        errors,
        drained,
        latency: Latency::from_histogram(&stats.latency()),
        tool: ToolCpu {
            cores: window_cpu(&stats, tool_cpu).await,
            threads: shards,
        },
    })
}

/// What every subscriber task shares.
#[derive(Clone)]
struct SubscriberSetup {
    target: Arc<Target>,
    destination: Arc<str>,
    stats: Arc<Stats>,
    ready: Ready,
    /// Becomes `true` when the run is over.
    stop: watch::Receiver<bool>,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct SubscriberReport {
    /// MESSAGE frames received.
    total: u64,
    /// Measured MESSAGE frames received.
    measured: u64,
    /// MESSAGE frames outside the window or without our timestamp.
    unmeasured: u64,
    /// How the server ended the connection, if it did before the run was over.
    closed: Option<Closed>,
    errors: StompErrors,
}

/// Starts the subscriber tasks, paced by `per_second` or by a concurrency bound.
async fn spawn_subscribers(
    count: u32,
    per_second: u32,
    setup: SubscriberSetup,
) -> Vec<JoinHandle<SubscriberReport>> {
    let mut pacer = Pacer::new(per_second);
    let mut handles = Vec::with_capacity(count as usize);
    for index in 0..count {
        let permit = pacer.ready().await;
        handles.push(tokio::spawn(subscribe(index, setup.clone(), permit)));
    }
    handles
}

/// One subscriber: connect, SUBSCRIBE with a receipt, then count and time MESSAGE frames until
/// the run stops or the server closes the connection.
async fn subscribe(
    index: u32,
    setup: SubscriberSetup,
    permit: Option<OwnedSemaphorePermit>,
) -> SubscriberReport {
    let SubscriberSetup {
        target,
        destination,
        stats,
        ready,
        mut stop,
    } = setup;
    let Stomp {
        mut writer,
        mut reader,
        ..
    } = match conn::open_subscribed(
        &target,
        Options::default(),
        &destination,
        "auto",
        &[],
        u64::from(index),
    )
    .await
    {
        Ok((stomp, _)) => stomp,
        Err(e) => {
            let _ = ready.send(Err(
                anyhow::Error::new(e).context(format!("subscriber {index}"))
            ));
            return SubscriberReport::default();
        }
    };
    drop(permit);
    let _ = ready.send(Ok(()));
    drop(ready);

    let shard = index as usize % stats.shards();
    let mut report = SubscriberReport::default();
    // One wait for the stop, kept across rounds: a fresh `changed()` per frame cost ~9% of the
    // tool's CPU at max rate (perf: creating and dropping its `Notified`).
    let mut stopped = pin!(stop.changed());
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => {
                let _ = time::timeout(CLOSE_TIMEOUT, writer.close()).await;
                return report;
            }
            event = reader.next_event() => match event {
                Event::Frame(frame) => match frame.command() {
                    Command::Message => on_message(&frame, &stats, shard, &mut report),
                    Command::Error => {
                        report.errors.add(frame.header("message").map(|m| m.into_owned()));
                    }
                    _ => {}
                },
                Event::Closed(closed) => {
                    stats.delivered_measured_closed.fetch_add(report.measured, Relaxed);
                    stats.delivered_closed.fetch_add(report.total, Relaxed);
                    stats.closed_subscribers.fetch_add(1, Relaxed);
                    stats.closed_connections.fetch_add(1, Relaxed);
                    report.closed = Some(closed);
                    return report;
                }
            },
        }
    }
}

/// Counts one MESSAGE and, if it belongs to the measured window, records its latency.
fn on_message(frame: &RawFrame, stats: &Stats, shard: usize, report: &mut SubscriberReport) {
    stats.delivered.fetch_add(1, Relaxed);
    report.total += 1;
    let Some(ts) = read_timestamp(frame.body()) else {
        report.unmeasured += 1;
        return;
    };
    if !stats.is_measured(ts) {
        report.unmeasured += 1;
        return;
    }
    let now = stats.now_ns();
    report.measured += 1;
    stats.delivered_measured.fetch_add(1, Relaxed);
    stats.last_delivery.fetch_max(now, Relaxed);
    stats.record_latency(shard, now.saturating_sub(ts) / 1_000);
}

/// Prints one line per second on stderr until aborted.
async fn progress(stats: Arc<Stats>, subscribers: u32) {
    let start = Instant::now();
    let mut ticker = time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut sent, mut delivered) = (0, 0);
    loop {
        ticker.tick().await;
        let now_sent = stats.sent.load(Relaxed);
        let now_delivered = stats.delivered.load(Relaxed);
        eprintln!(
            "[{:>4}s {}] sent {}/s  delivered {}/s  p99 {}  closed {} (subscribers {}/{})",
            start.elapsed().as_secs(),
            stats.phase(),
            now_sent - sent,
            now_delivered - delivered,
            stats.p99_text(),
            stats.closed_connections.load(Relaxed),
            u64::from(subscribers) - stats.closed_subscribers.load(Relaxed),
            subscribers,
        );
        (sent, delivered) = (now_sent, now_delivered);
    }
}
