//! The `fanout` scenario: publishers SEND to one destination, every subscriber receives.
//!
//! Phases: open and subscribe every subscriber (bounded by `--setup-timeout`), open the
//! publishers, publish for warm-up + duration, let in-flight deliveries drain (bounded by
//! `--drain-timeout`), close everything, report. One task per connection; publishers have a
//! second task that reads their receipts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use futures_util::SinkExt;
use stompede_stomp::{encode, Command, Frame, Version};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::FanoutArgs;
use crate::conn::{frame_message, text_message, Closed, Connection, Event, WsStream};
use crate::payload::{read_timestamp, write_timestamp};
use crate::report::{FanoutReport, Latency};
use crate::stats::{duration_ns, Stats};

/// Handshakes in progress at once when `--connections-per-second` is 0, so that the server's
/// accept backlog does not overflow into SYN retries (which add whole seconds).
const MAX_CONCURRENT_HANDSHAKES: usize = 64;
/// A publisher asks for a receipt on every this many SENDs (fewer if `--max-in-flight` is lower).
const RECEIPT_EVERY: u32 = 100;
/// Receipt id of the DISCONNECT that ends a publisher: its receipt proves every SEND before it
/// was processed.
const DISCONNECT_RECEIPT: &str = "disconnect";
/// How long a connection waits for the server to answer its close frame at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Subscription id used by every subscriber (each has one subscription on its own session).
const SUBSCRIPTION_ID: &str = "0";

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// A subscriber or publisher cannot connect or subscribe within `--setup-timeout`. Everything
/// that goes wrong after that (closes, bad frames, ERROR frames) is counted in the report.
pub(crate) async fn run(args: FanoutArgs, shards: usize) -> anyhow::Result<FanoutReport> {
    let stats = Arc::new(Stats::new(shards));
    let url: Arc<str> = Arc::from(args.url.as_str());
    let destination: Arc<str> = Arc::from(args.destination.as_str());
    let (stop_tx, stop_rx) = watch::channel(false);
    let setup_deadline = Instant::now() + args.setup_timeout;

    // Subscribers first: every one must hold its subscription before the first SEND.
    eprintln!(
        "opening {} subscribers to {} ({})",
        args.subscribers, args.url, args.destination
    );
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let spawner = tokio::spawn(spawn_subscribers(
        args.subscribers,
        args.connections_per_second,
        SubscriberSetup {
            url: url.clone(),
            destination: destination.clone(),
            stats: stats.clone(),
            ready: ready_tx,
            stop: stop_rx,
        },
    ));
    let mut ready = 0u32;
    let mut ticker = time::interval_at(
        Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while ready < args.subscribers {
        tokio::select! {
            msg = ready_rx.recv() => match msg {
                Some(Ok(())) => ready += 1,
                Some(Err(e)) => {
                    let _ = stop_tx.send(true);
                    return Err(e.context(format!(
                        "subscriber setup failed ({ready} of {} ready)",
                        args.subscribers
                    )));
                }
                None => bail!("subscriber tasks ended early ({ready} of {} ready)", args.subscribers),
            },
            _ = ticker.tick() => eprintln!("  subscribed {ready}/{}", args.subscribers),
            () = time::sleep_until(setup_deadline) => {
                let _ = stop_tx.send(true);
                bail!(
                    "only {ready} of {} subscribers connected and subscribed within {:?}",
                    args.subscribers,
                    args.setup_timeout
                );
            }
        }
    }
    let subscribers = spawner.await.context("subscriber spawner failed")?;
    eprintln!("  subscribed {ready}/{}", args.subscribers);

    // Publishers: connected before the clock starts, so the warm-up is all publishing.
    let mut publisher_conns = Vec::with_capacity(args.publishers as usize);
    for index in 0..args.publishers {
        let conn = time::timeout_at(setup_deadline, Connection::open(&url))
            .await
            .map_err(|_| {
                anyhow::anyhow!("publisher {index}: no CONNECTED within the setup timeout")
            })?
            .with_context(|| format!("publisher {index}"))?;
        publisher_conns.push(conn);
    }

    let start = stats.now_ns();
    let measure_from = start + duration_ns(args.warmup);
    let measure_until = measure_from + duration_ns(args.duration);
    stats.set_window(measure_from, measure_until);
    eprintln!(
        "publishing for {:?} (+{:?} warm-up)",
        args.duration, args.warmup
    );
    let plan = Arc::new(PublishPlan::new(&args, start, measure_until));
    let publishers: Vec<_> = publisher_conns
        .into_iter()
        .enumerate()
        .map(|(index, conn)| {
            tokio::spawn(publish(
                index as u32,
                conn,
                plan.clone(),
                destination.clone(),
                stats.clone(),
            ))
        })
        .collect();
    let progress = tokio::spawn(progress(stats.clone(), args.subscribers));

    let mut close_codes = BTreeMap::new();
    let mut stomp_errors = 0;
    let mut first_error = None;
    for handle in publishers {
        let report = handle.await.context("publisher task failed")?;
        if let Some(closed) = report.closed {
            *close_codes.entry(closed.to_string()).or_insert(0) += 1;
        }
        stomp_errors += report.stomp_errors;
        first_error = first_error.or(report.first_error);
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
        stomp_errors += report.stomp_errors;
        first_error = first_error.or(report.first_error);
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
        url: args.url,
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
        stomp_errors,
        first_error,
        drained,
        latency: Latency::from_histogram(&stats.latency()),
    })
}

/// What every subscriber task shares.
#[derive(Clone)]
struct SubscriberSetup {
    url: Arc<str>,
    destination: Arc<str>,
    stats: Arc<Stats>,
    /// One message per subscriber: subscribed, or why not.
    ready: mpsc::UnboundedSender<anyhow::Result<()>>,
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
    stomp_errors: u64,
    first_error: Option<String>,
}

/// Starts the subscriber tasks, paced by `per_second` or by a handshake limit.
async fn spawn_subscribers(
    count: u32,
    per_second: u32,
    setup: SubscriberSetup,
) -> Vec<JoinHandle<SubscriberReport>> {
    let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    let mut pace = (per_second > 0).then(|| {
        let mut pace = time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
        pace.set_missed_tick_behavior(MissedTickBehavior::Burst);
        pace
    });
    let mut handles = Vec::with_capacity(count as usize);
    for index in 0..count {
        let permit = match &mut pace {
            Some(pace) => {
                pace.tick().await;
                None
            }
            // The semaphore is never closed, so acquiring only waits.
            None => handshakes.clone().acquire_owned().await.ok(),
        };
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
        url,
        destination,
        stats,
        ready,
        mut stop,
    } = setup;
    let mut conn = match open_subscription(&url, &destination, index).await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = ready.send(Err(e.context(format!("subscriber {index}"))));
            return SubscriberReport::default();
        }
    };
    drop(permit);
    let _ = ready.send(Ok(()));
    drop(ready);

    let shard = index as usize % stats.shards();
    let mut report = SubscriberReport::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {
                let _ = time::timeout(CLOSE_TIMEOUT, conn.close()).await;
                return report;
            }
            event = conn.next_event() => match event {
                Event::Frame(frame) => match frame.command() {
                    Command::Message => on_message(&frame, &stats, shard, &mut report),
                    Command::Error => {
                        report.stomp_errors += 1;
                        if report.first_error.is_none() {
                            report.first_error = frame.header("message").map(str::to_owned);
                        }
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

/// Connects and subscribes to `destination`, returning once the SUBSCRIBE receipt is in.
async fn open_subscription(
    url: &str,
    destination: &str,
    index: u32,
) -> anyhow::Result<Connection<WsStream>> {
    let mut conn = Connection::open(url).await?;
    let receipt = format!("subscribe-{index}");
    let subscribe = Frame::new(Command::Subscribe)
        .with_header("id", SUBSCRIPTION_ID)
        .with_header("destination", destination)
        .with_header("ack", "auto")
        .with_header("receipt", receipt.as_str());
    conn.send_frame(&subscribe)
        .await
        .context("cannot send SUBSCRIBE")?;
    loop {
        match conn.next_event().await {
            Event::Frame(frame) => match frame.command() {
                Command::Receipt if frame.header("receipt-id") == Some(receipt.as_str()) => {
                    return Ok(conn)
                }
                Command::Error => bail!(
                    "SUBSCRIBE refused: {}",
                    frame.header("message").unwrap_or("(no message)")
                ),
                // A MESSAGE from an earlier run's straggler, or a receipt we did not ask for.
                _ => {}
            },
            Event::Closed(closed) => {
                bail!("connection closed before the SUBSCRIBE receipt ({closed})")
            }
        }
    }
}

/// Counts one MESSAGE and, if it belongs to the measured window, records its latency.
fn on_message(frame: &Frame, stats: &Stats, shard: usize, report: &mut SubscriberReport) {
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

/// When and how fast publishers send; the same for all of them.
#[derive(Debug)]
struct PublishPlan {
    /// Publishing starts, in nanoseconds since the stats base.
    start: u64,
    /// Publishing stops (end of the measured window).
    until: u64,
    publishers: u32,
    /// Messages per second per publisher; 0 for as fast as possible.
    rate_each: f64,
    size: usize,
    receipt_every: u64,
    /// Most receipts a publisher may be waiting for.
    receipt_window: u64,
    /// Subscriber connections, for the delivery backlog.
    subscribers: u64,
    /// Max mode only: most messages the average subscriber may be behind the publishers.
    max_backlog: u64,
}

impl PublishPlan {
    fn new(args: &FanoutArgs, start: u64, until: u64) -> PublishPlan {
        let receipt_every = RECEIPT_EVERY.min(args.max_in_flight);
        PublishPlan {
            start,
            until,
            publishers: args.publishers,
            rate_each: args.rate.max(0.0) / f64::from(args.publishers),
            size: args.size as usize,
            receipt_every: u64::from(receipt_every),
            receipt_window: u64::from((args.max_in_flight / receipt_every).max(1)),
            subscribers: u64::from(args.subscribers),
            max_backlog: u64::from(args.max_in_flight),
        }
    }
}

/// What one publisher saw.
#[derive(Debug, Default)]
struct PublisherReport {
    /// How the server ended the connection, if it did before the publisher was done.
    closed: Option<Closed>,
    stomp_errors: u64,
    first_error: Option<String>,
}

/// State a publisher's writer shares with its receipt reader.
#[derive(Debug, Default)]
struct Receipts {
    /// RECEIPT frames received for SENDs.
    acked: AtomicU64,
    /// The DISCONNECT receipt arrived, or the connection is gone.
    done: AtomicBool,
    /// Woken on every receipt and at the end.
    notify: Notify,
}

/// The SEND frame of a publisher, encoded once: each message copies it and writes its
/// timestamp over the body, so the hot path does not build a `Frame`.
struct SendTemplate {
    bytes: BytesMut,
    body_at: usize,
}

impl SendTemplate {
    fn new(destination: &str, size: usize) -> SendTemplate {
        let frame = send_frame(destination, None, vec![b'x'; size]);
        let mut bytes = BytesMut::new();
        encode(&frame, Version::V1_2, &mut bytes);
        // The encoded frame ends with the body and the NUL terminator.
        let body_at = bytes.len() - 1 - size;
        SendTemplate { bytes, body_at }
    }

    /// Appends a SEND stamped `ts` to `out`.
    fn stamp_into(&self, ts: u64, out: &mut BytesMut) {
        let at = out.len() + self.body_at;
        out.extend_from_slice(&self.bytes);
        let end = out.len() - 1;
        // `--size` is at least 24, more than a u64's 20 digits and one pad byte.
        write_timestamp(&mut out[at..end], ts);
    }
}

/// A SEND to `destination`, with a `receipt` header if given.
fn send_frame(destination: &str, receipt: Option<String>, body: Vec<u8>) -> Frame {
    let frame = Frame::new(Command::Send)
        .with_header("destination", destination)
        .with_header("content-type", "text/plain");
    match receipt {
        Some(receipt) => frame.with_header("receipt", receipt),
        None => frame,
    }
    .with_body(body)
}

/// One publisher: SEND as the plan says, with a bounded number of unconfirmed SENDs, then
/// DISCONNECT with a receipt.
async fn publish(
    index: u32,
    conn: Connection<WsStream>,
    plan: Arc<PublishPlan>,
    destination: Arc<str>,
    stats: Arc<Stats>,
) -> PublisherReport {
    let (mut sink, mut reader) = conn.split();
    let receipts = Arc::new(Receipts::default());
    let read_task = tokio::spawn({
        let receipts = receipts.clone();
        let stats = stats.clone();
        async move {
            let mut report = PublisherReport::default();
            loop {
                match reader.next_event().await {
                    Event::Frame(frame) => match frame.command() {
                        Command::Receipt
                            if frame.header("receipt-id") == Some(DISCONNECT_RECEIPT) =>
                        {
                            break;
                        }
                        Command::Receipt => {
                            receipts.acked.fetch_add(1, Relaxed);
                            receipts.notify.notify_one();
                        }
                        Command::Error => {
                            report.stomp_errors += 1;
                            if report.first_error.is_none() {
                                report.first_error = frame.header("message").map(str::to_owned);
                            }
                        }
                        _ => {}
                    },
                    Event::Closed(closed) => {
                        stats.closed_connections.fetch_add(1, Relaxed);
                        report.closed = Some(closed);
                        break;
                    }
                }
            }
            receipts.done.store(true, Relaxed);
            receipts.notify.notify_one();
            report
        }
    });

    let template = SendTemplate::new(&destination, plan.size);
    let mut scratch = BytesMut::with_capacity(64 * 1024);
    let until = Instant::from_std(stats.instant_at(plan.until));
    let mut sent: u64 = 0;
    let mut receipts_asked: u64 = 0;
    // Rate mode: stagger the publishers over one period; send what the schedule says is due at
    // each tick (a late tick catches up, so the rate holds even when ticks are coarser than the
    // message interval).
    let mut pacing = (plan.rate_each > 0.0).then(|| {
        let period = Duration::from_secs_f64((1.0 / plan.rate_each).max(0.001));
        let offset = period.mul_f64(f64::from(index) / f64::from(plan.publishers));
        let first = Instant::from_std(stats.instant_at(plan.start));
        let mut ticker = time::interval_at(first + offset, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        (ticker, plan.start + duration_ns(offset))
    });

    'publishing: loop {
        let allowed = match &mut pacing {
            None => u64::MAX,
            Some((ticker, origin)) => {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = time::sleep_until(until) => break 'publishing,
                }
                let elapsed = stats.now_ns().saturating_sub(*origin) as f64 / 1e9;
                let due = (elapsed * plan.rate_each) as u64 + 1;
                due.saturating_sub(sent)
            }
        };
        let mut batch = 0;
        while batch < allowed {
            if receipts.done.load(Relaxed) {
                break 'publishing;
            }
            if receipts_asked - receipts.acked.load(Relaxed) >= plan.receipt_window {
                if sink.flush().await.is_err() {
                    break 'publishing;
                }
                tokio::select! {
                    () = receipts.notify.notified() => continue,
                    () = time::sleep_until(until) => break 'publishing,
                }
            }
            let ts = stats.now_ns();
            if ts >= plan.until {
                break 'publishing;
            }
            let with_receipt = (sent + 1) % plan.receipt_every == 0;
            let message = if with_receipt {
                let mut body = vec![b'x'; plan.size];
                write_timestamp(&mut body, ts);
                let receipt = format!("send-{}", receipts_asked);
                frame_message(&send_frame(&destination, Some(receipt), body), &mut scratch)
            } else {
                template.stamp_into(ts, &mut scratch);
                text_message(&mut scratch)
            };
            if sink.feed(message).await.is_err() {
                break 'publishing;
            }
            sent += 1;
            batch += 1;
            stats.sent.fetch_add(1, Relaxed);
            if stats.is_measured(ts) {
                stats.sent_measured.fetch_add(1, Relaxed);
            }
            if with_receipt {
                receipts_asked += 1;
                if sink.flush().await.is_err() {
                    break 'publishing;
                }
                // Max mode never waits on a timer: let subscribers (on this same thread with
                // the default runtime) run between batches.
                tokio::task::yield_now().await;
                if pacing.is_none() {
                    // A receipt only says the server accepted the SEND, not that it delivered
                    // it: without this, max mode outruns the fan-out and measures nothing but
                    // slow-consumer closes. The bound is `max_backlog` × subscribers
                    // deliveries of work queued, so a millisecond timer is fine-grained enough.
                    while stats
                        .backlog(plan.subscribers)
                        .is_some_and(|backlog| backlog > plan.max_backlog)
                    {
                        if receipts.done.load(Relaxed) || stats.now_ns() >= plan.until {
                            break 'publishing;
                        }
                        time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }

    // DISCONNECT with a receipt: when it comes back, the server has handled every SEND.
    if !receipts.done.load(Relaxed) {
        let disconnect = Frame::new(Command::Disconnect).with_header("receipt", DISCONNECT_RECEIPT);
        if sink
            .send(frame_message(&disconnect, &mut scratch))
            .await
            .is_ok()
        {
            let _ = time::timeout(CLOSE_TIMEOUT, async {
                while !receipts.done.load(Relaxed) {
                    receipts.notify.notified().await;
                }
            })
            .await;
        }
    }
    let _ = time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(None))).await;
    if receipts.done.load(Relaxed) {
        // The reader has returned (it sets `done` last), so this does not wait.
        if let Ok(report) = read_task.await {
            return report;
        }
    } else {
        eprintln!("publisher {index}: no DISCONNECT receipt within {CLOSE_TIMEOUT:?}");
        read_task.abort();
    }
    PublisherReport::default()
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
        let (from, _) = stats.window();
        let phase = if stats.now_ns() < from {
            "warm-up"
        } else {
            "measure"
        };
        let p99 = Latency::from_histogram(&stats.latency())
            .map_or_else(|| "-".to_owned(), |l| format!("{:.3} ms", l.p99));
        eprintln!(
            "[{:>4}s {phase}] sent {}/s  delivered {}/s  p99 {p99}  closed {} (subscribers {}/{})",
            start.elapsed().as_secs(),
            now_sent - sent,
            now_delivered - delivered,
            stats.closed_connections.load(Relaxed),
            u64::from(subscribers) - stats.closed_subscribers.load(Relaxed),
            subscribers,
        );
        (sent, delivered) = (now_sent, now_delivered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stompede_stomp::{Decoder, Limits};

    #[test]
    fn template_sends_decode_with_their_timestamp() {
        let template = SendTemplate::new("/topic/bench", 100);
        let mut out = BytesMut::new();
        template.stamp_into(123_456_789, &mut out);
        template.stamp_into(42, &mut out);
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(Version::V1_2);
        for want in [123_456_789, 42] {
            let frame = decoder
                .decode(&mut out)
                .expect("valid frame")
                .expect("complete frame");
            assert_eq!(frame.command(), Command::Send);
            assert_eq!(frame.header("destination"), Some("/topic/bench"));
            assert_eq!(frame.body().len(), 100);
            assert_eq!(read_timestamp(frame.body()), Some(want));
        }
        assert!(out.is_empty());
    }
}
