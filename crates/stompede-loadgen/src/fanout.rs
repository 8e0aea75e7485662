//! The `fanout` scenario: publishers SEND to one destination, every subscriber receives.
//!
//! Phases: open and subscribe every subscriber (bounded by `--setup-timeout`), open the
//! publishers, publish for warm-up + duration, let in-flight deliveries drain (bounded by
//! `--drain-timeout`), close everything, report. One task per connection; publishers have a
//! second task that reads their receipts (`crate::publish`).

use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stompede_stomp::Command;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::{self, Instant};

use crate::cli::FanoutArgs;
use crate::conn::{self, Closed, Event, Options, Stomp, Target};
use crate::cpu::cpu_over_window;
use crate::payload::read_timestamp;
use crate::progress::Progress;
use crate::publish::{self, Backlog, Plan};
use crate::report::{Deliveries, FanoutReport, Run, Sending, ServerCloses, StompErrors};
use crate::setup::{self, Ready};
use crate::stats::{drain, Stats};
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
    let setup_deadline = Instant::now() + args.open.setup_timeout;

    // Subscribers first: every one must hold its subscription before the first SEND.
    eprintln!(
        "opening {} subscribers to {} over {} ({})",
        args.subscribers,
        target.url(),
        target.transport().as_str(),
        args.destination
    );
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let setup = SubscriberSetup {
        target: target.clone(),
        destination: destination.clone(),
        stats: stats.clone(),
        ready: ready_tx,
        stop: stop_rx,
    };
    let spawner = tokio::spawn(setup::spawn_paced(
        args.subscribers,
        args.open.connections_per_second,
        move |index, permit| tokio::spawn(subscribe(index, setup.clone(), permit)),
    ));
    let subscribers = setup::spawned_ready(
        spawner,
        &mut ready_rx,
        u64::from(args.subscribers),
        setup_deadline,
    )
    .await?;
    // Publishers: connected before the clock starts, so the warm-up is all publishing.
    let publisher_conns =
        setup::open_senders(&target, args.publishers, setup_deadline, "publisher").await?;

    let window = &args.window;
    let (start, _, measure_until) = stats.start_window(window.warmup, window.duration);
    eprintln!(
        "publishing for {:?} (+{:?} warm-up)",
        window.duration, window.warmup
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
    let progress = Progress::new(stats.clone(), "delivered", "subscribers", args.subscribers)
        .sent("sent")
        .spawn();

    let mut closes = ServerCloses::default();
    let mut errors = StompErrors::default();
    for handle in publishers {
        let report = handle.await.context("publisher task failed")?;
        if let Some(closed) = &report.closed {
            closes.add_stomp(None, closed, &report.errors);
        }
        errors.merge(report.errors);
    }

    // Drain: every subscriber still connected should get every measured message.
    let drained = drain(window.drain_timeout, || {
        let alive = u64::from(args.subscribers) - stats.closed_subscribers.load(Relaxed);
        let want = stats.sent_measured.load(Relaxed) * alive;
        let got =
            stats.delivered_measured.load(Relaxed) - stats.delivered_measured_closed.load(Relaxed);
        got >= want
    })
    .await;
    progress.abort();
    let _ = stop_tx.send(true);

    let sent_measured = stats.sent_measured.load(Relaxed);
    let mut deliveries = Deliveries {
        drained,
        ..Deliveries::default()
    };
    let mut alive = 0;
    let mut unmeasured = 0;
    for handle in subscribers {
        let report = handle.await.context("subscriber task failed")?;
        deliveries.add_receiver(sent_measured, report.measured, report.closed.is_some());
        match &report.closed {
            None => alive += 1,
            Some(closed) => closes.add_stomp(None, closed, &report.errors),
        }
        unmeasured += report.unmeasured;
        errors.merge(report.errors);
    }

    Ok(FanoutReport {
        run: Run::finish(
            (target.url().to_owned(), Some(target.transport().as_str())),
            args.size,
            window,
            &stats,
            tool_cpu,
            shards,
        )
        .await,
        subscribers: u64::from(args.subscribers),
        publishers: u64::from(args.publishers),
        sending: Sending {
            total: stats.sent.load(Relaxed),
            measured: sent_measured,
            wanted: args.rate,
        },
        subscribers_alive: alive,
        delivered_per_sec: stats
            .delivered_per_sec(deliveries.received + deliveries.received_by_closed),
        deliveries,
        unmeasured_deliveries: unmeasured,
        closes,
        errors,
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
