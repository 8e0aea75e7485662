//! The `sockjs-broadcast` scenario: N sessions on a broadcast prefix; session 0 sends
//! timestamped messages, and the server sends each to every open session, session 0 included.
//!
//! Phases: open every session (bounded by `--setup-timeout`), send for warm-up + duration, let
//! in-flight deliveries drain (bounded by `--drain-timeout`), close, report. One task per
//! session receives; the sender is one more task.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::time::{self, Instant, MissedTickBehavior};

use super::client::{self, Endpoint, Failure, Receiver, Sender};
use super::frame::{self, Frame};
use super::{close_all, open_sessions};
use crate::cli::SockjsBroadcastArgs;
use crate::cpu::cpu_over_window;
use crate::payload::read_timestamp;
use crate::progress::Progress;
use crate::report::{
    BroadcastReport, Deliveries, Endings, Run, Sending, ServerCloses, SockjsCounts,
};
use crate::stats::{drain, Stats};

/// Messages sent between two flushes (and backlog checks) in max mode, and most messages in
/// one xhr_send.
const MAX_MODE_BATCH: u64 = 100;

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// The URL is invalid, or the sessions cannot all be opened within `--setup-timeout`. What
/// goes wrong after that (closes, bad frames, HTTP errors) is counted in the report.
pub(crate) async fn run(
    args: SockjsBroadcastArgs,
    shards: usize,
) -> anyhow::Result<BroadcastReport> {
    let endpoint = Arc::new(Endpoint::parse(&args.url)?);
    let stats = Arc::new(Stats::new(shards));
    eprintln!(
        "opening {} sessions to {} over {}",
        args.sessions,
        args.url,
        args.transport.as_str()
    );
    let deadline = Instant::now() + args.setup_timeout;
    let sessions = open_sessions(&endpoint, args.transport, args.sessions, deadline)
        .await
        .context("session setup failed")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = Vec::with_capacity(sessions.len());
    let mut receivers = Vec::with_capacity(sessions.len());
    for (index, (sender, receiver)) in sessions.into_iter().enumerate() {
        senders.push(sender);
        receivers.push(tokio::spawn(receive(
            index,
            receiver,
            stats.clone(),
            stop_rx.clone(),
        )));
    }
    // Session 0 sends; the others' senders stay idle until the close at the end.
    let mut sender = senders.swap_remove(0);

    let window = &args.window;
    let (start, _, measure_until) = stats.start_window(window.warmup, window.duration);
    eprintln!(
        "sending for {:?} (+{:?} warm-up)",
        window.duration, window.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let progress = Progress::new(stats.clone(), "delivered", "sessions", args.sessions)
        .sent("sent")
        .spawn();
    let plan = Plan {
        start,
        until: measure_until,
        rate: args.rate.max(0.0),
        size: args.size as usize,
        sessions: u64::from(args.sessions),
        max_backlog: u64::from(args.max_in_flight),
    };
    let send_failure = send(&mut sender, &plan, &stats).await;
    senders.push(sender);

    // Drain: every session still open should get every measured message.
    let drained = drain(window.drain_timeout, || {
        let alive = u64::from(args.sessions) - stats.closed_subscribers.load(Relaxed);
        let want = stats.sent_measured.load(Relaxed) * alive;
        let got =
            stats.delivered_measured.load(Relaxed) - stats.delivered_measured_closed.load(Relaxed);
        got >= want
    })
    .await;
    progress.abort();
    let _ = stop_tx.send(true);

    let mut endings = Endings::default();
    let mut closes = ServerCloses::default();
    if let Some(failure) = send_failure {
        let key = format!("sender-{}", failure.key());
        closes.add(key.clone(), &failure.reason(), None);
        endings.add(key, || format!("sender (session 0): {failure}"));
    }
    let sent_measured = stats.sent_measured.load(Relaxed);
    let mut deliveries = Deliveries {
        drained,
        ..Deliveries::default()
    };
    let mut alive = 0;
    let mut unmeasured = 0;
    let mut out_of_order = 0;
    let mut counts = SockjsCounts::default();
    for (index, handle) in receivers.into_iter().enumerate() {
        let report = handle.await.context("receiver task failed")?;
        deliveries.add_receiver(sent_measured, report.measured, report.ended.is_some());
        match &report.ended {
            None => alive += 1,
            Some(failure) => {
                closes.add(failure.key(), &failure.reason(), None);
                endings.add(failure.key(), || format!("session {index}: {failure}"));
            }
        }
        unmeasured += report.unmeasured;
        out_of_order += report.out_of_order;
        counts.heartbeats += report.heartbeats;
        counts.streaming_responses += report.responses;
    }
    close_all(senders).await;

    Ok(BroadcastReport {
        run: Run::finish(
            (args.url.clone(), Some(args.transport.as_str())),
            args.size,
            window,
            &stats,
            tool_cpu,
            shards,
        )
        .await,
        sessions: u64::from(args.sessions),
        sending: Sending {
            total: stats.sent.load(Relaxed),
            measured: sent_measured,
            wanted: args.rate,
        },
        sessions_alive: alive,
        delivered_per_sec: stats
            .delivered_per_sec(deliveries.received + deliveries.received_by_closed),
        deliveries,
        unmeasured,
        out_of_order,
        counts,
        endings,
        closes,
    })
}

/// What one receiving session saw.
#[derive(Debug, Default)]
struct ReceiverReport {
    /// Messages received.
    total: u64,
    /// Measured messages received.
    measured: u64,
    /// Messages outside the window or without our timestamp.
    unmeasured: u64,
    /// Messages stamped earlier than the previous one.
    out_of_order: u64,
    heartbeats: u64,
    /// xhr_streaming responses read.
    responses: u64,
    /// How the session ended, if it did before the run was over.
    ended: Option<Failure>,
}

/// One session's receiving side: counts and times messages until the run stops or the session
/// ends.
async fn receive(
    index: usize,
    mut receiver: Receiver,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> ReceiverReport {
    let shard = index % stats.shards();
    let mut report = ReceiverReport::default();
    let mut last_ts = 0;
    let failure = loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break None,
            raw = receiver.next_frame() => {
                let raw = match raw {
                    Ok(raw) => raw,
                    Err(failure) => break Some(failure),
                };
                match frame::parse(&raw) {
                    Ok(Frame::Messages(messages)) => {
                        for message in messages {
                            on_message(message.as_bytes(), &stats, shard, &mut last_ts, &mut report);
                        }
                    }
                    Ok(Frame::Heartbeat) => report.heartbeats += 1,
                    Ok(Frame::Open) => {
                        break Some(Failure::Protocol("a second `o` frame".to_owned()))
                    }
                    Ok(Frame::Close { code, reason }) => {
                        break Some(Failure::Closed { code, reason: reason.into_owned() })
                    }
                    Err(e) => {
                        break Some(Failure::Protocol(format!("{e}: {}", client::preview(&raw))))
                    }
                }
            }
        }
    };
    report.responses = receiver.responses();
    if let Some(failure) = failure {
        stats
            .delivered_measured_closed
            .fetch_add(report.measured, Relaxed);
        stats.delivered_closed.fetch_add(report.total, Relaxed);
        stats.closed_subscribers.fetch_add(1, Relaxed);
        stats.closed_connections.fetch_add(1, Relaxed);
        report.ended = Some(failure);
    }
    report
}

/// Counts one message and, if it belongs to the measured window, records its latency.
fn on_message(
    message: &[u8],
    stats: &Stats,
    shard: usize,
    last_ts: &mut u64,
    report: &mut ReceiverReport,
) {
    stats.delivered.fetch_add(1, Relaxed);
    report.total += 1;
    let Some(ts) = read_timestamp(message) else {
        report.unmeasured += 1;
        return;
    };
    if ts < *last_ts {
        report.out_of_order += 1;
    }
    *last_ts = ts;
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

/// When and how fast the sender sends.
#[derive(Debug)]
struct Plan {
    /// Sending starts, in nanoseconds since the stats base.
    start: u64,
    /// Sending stops (end of the measured window).
    until: u64,
    /// Messages per second; 0 for max mode.
    rate: f64,
    size: usize,
    sessions: u64,
    /// Max mode: most messages the average session may be behind.
    max_backlog: u64,
}

/// The sender: one message per SockJS send, at the planned rate or (max mode) as fast as the
/// backlog bound allows. Returns why it stopped early, if it did.
async fn send(sender: &mut Sender, plan: &Plan, stats: &Stats) -> Option<Failure> {
    let until = Instant::from_std(stats.instant_at(plan.until));
    let mut sent: u64 = 0;
    let mut batch = Vec::with_capacity(MAX_MODE_BATCH as usize);
    // Rate mode: send what the schedule says is due at each tick (a late tick catches up, so
    // the rate holds even when ticks are coarser than the message interval).
    let mut ticker = (plan.rate > 0.0).then(|| {
        let period = Duration::from_secs_f64((1.0 / plan.rate).max(0.001));
        let mut ticker = time::interval_at(Instant::from_std(stats.instant_at(plan.start)), period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        ticker
    });
    loop {
        let allowed = match &mut ticker {
            None => MAX_MODE_BATCH,
            Some(ticker) => {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = time::sleep_until(until) => break,
                }
                let elapsed = stats.now_ns().saturating_sub(plan.start) as f64 / 1e9;
                ((elapsed * plan.rate) as u64 + 1).saturating_sub(sent)
            }
        };
        // Rate mode sends what is due (one message, unless a tick came late) in one go; max
        // mode a batch. Over xhr-streaming a batch is one xhr_send, as sockjs-client sends.
        let mut left = allowed;
        while left > 0 {
            let ts = stats.now_ns();
            if ts >= plan.until {
                break;
            }
            // One timestamp for the batch: its messages leave together, and the receivers must
            // classify them (measured or not) as the sender counted them.
            batch.clear();
            for _ in 0..left.min(MAX_MODE_BATCH) {
                batch.push(client::stamped_message(plan.size, ts));
            }
            left -= batch.len() as u64;
            if let Err(failure) = sender.send(&batch).await {
                return Some(failure);
            }
            sent += batch.len() as u64;
            stats.sent.fetch_add(batch.len() as u64, Relaxed);
            if stats.is_measured(ts) {
                stats.sent_measured.fetch_add(batch.len() as u64, Relaxed);
            }
        }
        if let Err(failure) = sender.flush().await {
            return Some(failure);
        }
        if stats.now_ns() >= plan.until {
            break;
        }
        if ticker.is_none() {
            // Let the receivers (on this same thread with the default runtime) run, then wait
            // while they are too far behind: without this, max mode measures how much the
            // server buffers, not how fast it delivers.
            tokio::task::yield_now().await;
            while stats
                .backlog(plan.sessions)
                .is_some_and(|backlog| backlog > plan.max_backlog)
            {
                if stats.now_ns() >= plan.until {
                    return None;
                }
                time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    None
}
