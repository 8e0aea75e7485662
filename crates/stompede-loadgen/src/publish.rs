//! Publishers: connections that SEND timestamped messages to one destination at a planned rate
//! or as fast as a bound on work in flight allows, shared by the `fanout` and `queue` scenarios.
//!
//! Every 100th SEND asks for a receipt, and a publisher pauses while too many are unconfirmed.
//! In max mode it also pauses while the receivers are too far behind (the plan's [`Backlog`]),
//! so that max mode measures delivery rather than how much the server buffers. At the end it
//! sends DISCONNECT with a receipt: when that comes back, the server has handled every SEND.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use stompede_stomp::{encode, Command, Frame, Version};
use tokio::sync::Notify;
use tokio::time::{self, Instant, MissedTickBehavior};

use crate::conn::{Closed, Event, Stomp};
use crate::payload::{write_tag, write_timestamp};
use crate::report::StompErrors;
use crate::stats::{duration_ns, Stats};

/// A publisher asks for a receipt on every this many SENDs (fewer if the window is smaller).
const RECEIPT_EVERY: u32 = 100;
/// Receipt id of the DISCONNECT that ends a publisher.
const DISCONNECT_RECEIPT: &str = "disconnect";
/// How long a publisher waits for its DISCONNECT receipt and for the close at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What "too far behind" means in max mode.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backlog {
    /// Topic: each of this many subscribers gets every message; pause while the average live
    /// subscriber is more than `max_in_flight` messages behind.
    PerSubscriber(u64),
    /// Queue: each message is consumed once; pause while more than `max_in_flight` messages
    /// are sent and not yet consumed (`Stats::delivered` counts unique consumptions).
    Total,
}

/// When and how fast publishers send; the same for all of them.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Publishing starts, in nanoseconds since the stats base.
    pub(crate) start: u64,
    /// Publishing stops (end of the measured window).
    pub(crate) until: u64,
    pub(crate) publishers: u32,
    /// Messages per second per publisher; 0 for as fast as possible.
    pub(crate) rate_each: f64,
    pub(crate) size: usize,
    /// Whether bodies carry the `publisher.sequence` tag.
    pub(crate) tagged: bool,
    receipt_every: u64,
    /// Most receipts a publisher may be waiting for.
    receipt_window: u64,
    backlog: Backlog,
    /// Max mode only: the bound on the backlog.
    max_backlog: u64,
}

impl Plan {
    /// A plan for `publishers` sending `rate` messages a second in all (0: max mode) from
    /// `start` until `until`, with at most `max_in_flight` unconfirmed or undelivered.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        start: u64,
        until: u64,
        publishers: u32,
        rate: f64,
        size: u32,
        tagged: bool,
        max_in_flight: u32,
        backlog: Backlog,
    ) -> Plan {
        let max_in_flight = max_in_flight.max(1);
        let receipt_every = RECEIPT_EVERY.min(max_in_flight);
        Plan {
            start,
            until,
            publishers,
            rate_each: rate.max(0.0) / f64::from(publishers.max(1)),
            size: size as usize,
            tagged,
            receipt_every: u64::from(receipt_every),
            receipt_window: u64::from((max_in_flight / receipt_every).max(1)),
            backlog,
            max_backlog: u64::from(max_in_flight),
        }
    }

    /// Whether the receivers are too far behind for max mode to send more.
    fn behind(&self, stats: &Stats) -> bool {
        match self.backlog {
            Backlog::PerSubscriber(subscribers) => stats
                .backlog(subscribers)
                .is_some_and(|backlog| backlog > self.max_backlog),
            Backlog::Total => {
                let consumed = stats.delivered.load(Relaxed);
                stats.sent.load(Relaxed).saturating_sub(consumed) > self.max_backlog
            }
        }
    }
}

/// What one publisher saw.
#[derive(Debug, Default)]
pub(crate) struct PublisherReport {
    /// How the server ended the connection, if it did before the publisher was done.
    pub(crate) closed: Option<Closed>,
    pub(crate) errors: StompErrors,
    /// Whether the DISCONNECT receipt came back: every SEND was handled.
    pub(crate) confirmed: bool,
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
/// timestamp (and tag) over the body, so the hot path builds no `Frame`.
pub(crate) struct SendTemplate {
    bytes: BytesMut,
    body_at: usize,
}

impl SendTemplate {
    /// A SEND of a `size`-byte body to `destination`, with `receipt` if given.
    pub(crate) fn new(destination: &str, size: usize, receipt: Option<&str>) -> SendTemplate {
        let mut frame = Frame::new(Command::Send)
            .with_header("destination", destination)
            .with_header("content-type", "text/plain");
        if let Some(receipt) = receipt {
            frame = frame.with_header("receipt", receipt);
        }
        let frame = frame.with_body(vec![b'x'; size]);
        let mut bytes = BytesMut::new();
        encode(&frame, Version::V1_2, &mut bytes);
        // The encoded frame ends with the body and the NUL terminator.
        let body_at = bytes.len() - 1 - size;
        SendTemplate { bytes, body_at }
    }

    /// Appends a SEND stamped `ts` (and tagged `sender.seq` if given) to `out`.
    pub(crate) fn stamp_into(&self, ts: u64, tag: Option<(u32, u64)>, out: &mut BytesMut) {
        let at = out.len() + self.body_at;
        out.extend_from_slice(&self.bytes);
        let end = out.len() - 1;
        let body = &mut out[at..end];
        // Sizes are checked by the arguments: at least 24 bytes, 56 when tagged.
        write_timestamp(body, ts);
        if let Some((sender, seq)) = tag {
            write_tag(body, sender, seq);
        }
    }
}

/// One publisher: SEND as the plan says, with a bounded number of unconfirmed SENDs, then
/// DISCONNECT with a receipt. `sent_by` counts this publisher's SENDs before each is written
/// (receivers use it to tell our sequence numbers from garbage).
pub(crate) async fn publish(
    index: u32,
    stomp: Stomp,
    plan: Arc<Plan>,
    destination: Arc<str>,
    stats: Arc<Stats>,
    sent_by: Option<Arc<AtomicU64>>,
) -> PublisherReport {
    let Stomp {
        mut writer,
        mut reader,
        ..
    } = stomp;
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
                            if frame.header("receipt-id").as_deref()
                                == Some(DISCONNECT_RECEIPT) =>
                        {
                            report.confirmed = true;
                            break;
                        }
                        Command::Receipt => {
                            receipts.acked.fetch_add(1, Relaxed);
                            receipts.notify.notify_one();
                        }
                        Command::Error => {
                            report
                                .errors
                                .add(frame.header("message").map(|m| m.into_owned()));
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

    let destination = &*destination;
    let template = SendTemplate::new(destination, plan.size, None);
    let tag = |seq: u64| plan.tagged.then_some((index, seq));
    let mut scratch = BytesMut::with_capacity(64 * 1024);
    let until = Instant::from_std(stats.instant_at(plan.until));
    let mut sent: u64 = 0;
    let mut receipts_asked: u64 = 0;
    // Rate mode: stagger the publishers over one period; send what the schedule says is due at
    // each tick (a late tick catches up, so the rate holds even when ticks are coarser than the
    // message interval).
    let mut pacing = (plan.rate_each > 0.0).then(|| {
        let period = Duration::from_secs_f64((1.0 / plan.rate_each).max(0.001));
        let offset = period.mul_f64(f64::from(index) / f64::from(plan.publishers.max(1)));
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
                if writer.flush().await.is_err() {
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
            if with_receipt {
                let receipt = format!("send-{receipts_asked}");
                SendTemplate::new(destination, plan.size, Some(&receipt)).stamp_into(
                    ts,
                    tag(sent),
                    &mut scratch,
                );
            } else {
                template.stamp_into(ts, tag(sent), &mut scratch);
            }
            if let Some(sent_by) = &sent_by {
                sent_by.fetch_add(1, Relaxed);
            }
            stats.sent.fetch_add(1, Relaxed);
            if stats.is_measured(ts) {
                stats.sent_measured.fetch_add(1, Relaxed);
            }
            if writer.feed_encoded(&mut scratch).await.is_err() {
                // Counted before the write (receivers may see it at once), so uncounted now.
                stats.sent.fetch_sub(1, Relaxed);
                if stats.is_measured(ts) {
                    stats.sent_measured.fetch_sub(1, Relaxed);
                }
                break 'publishing;
            }
            sent += 1;
            batch += 1;
            if with_receipt {
                receipts_asked += 1;
                if writer.flush().await.is_err() {
                    break 'publishing;
                }
                // Max mode never waits on a timer: let receivers (on this same thread with
                // the default runtime) run between batches.
                tokio::task::yield_now().await;
                if pacing.is_none() {
                    // A receipt only says the server accepted the SEND, not that it delivered
                    // it: without this, max mode outruns delivery and measures nothing but
                    // slow-consumer closes. The bound is in messages, so a millisecond timer
                    // is fine-grained enough.
                    while plan.behind(&stats) {
                        if receipts.done.load(Relaxed) || stats.now_ns() >= plan.until {
                            break 'publishing;
                        }
                        time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        if writer.flush().await.is_err() {
            break;
        }
    }

    // DISCONNECT with a receipt: when it comes back, the server has handled every SEND.
    if !receipts.done.load(Relaxed) {
        let disconnect = Frame::new(Command::Disconnect).with_header("receipt", DISCONNECT_RECEIPT);
        if writer.send_frame(&disconnect).await.is_ok() {
            let _ = time::timeout(CLOSE_TIMEOUT, async {
                while !receipts.done.load(Relaxed) {
                    receipts.notify.notified().await;
                }
            })
            .await;
        }
    }
    let _ = time::timeout(CLOSE_TIMEOUT, writer.close()).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{read_tag, read_timestamp};
    use stompede_stomp::{Decoder, Limits};

    #[test]
    fn template_sends_decode_with_their_timestamp_and_tag() {
        let template = SendTemplate::new("/topic/bench", 100, None);
        let with_receipt = SendTemplate::new("/queue/work", 64, Some("send-3"));
        let mut out = BytesMut::new();
        template.stamp_into(123_456_789, None, &mut out);
        with_receipt.stamp_into(42, Some((2, 9)), &mut out);
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(Version::V1_2);
        let frame = decoder
            .decode(&mut out)
            .expect("valid frame")
            .expect("complete frame");
        assert_eq!(frame.command(), Command::Send);
        assert_eq!(frame.header("destination"), Some("/topic/bench"));
        assert_eq!(frame.body().len(), 100);
        assert_eq!(read_timestamp(frame.body()), Some(123_456_789));
        assert_eq!(read_tag(frame.body()), None);
        let frame = decoder
            .decode(&mut out)
            .expect("valid frame")
            .expect("complete frame");
        assert_eq!(frame.header("receipt"), Some("send-3"));
        assert_eq!(frame.body().len(), 64);
        assert_eq!(read_timestamp(frame.body()), Some(42));
        assert_eq!(read_tag(frame.body()), Some((2, 9)));
        assert!(out.is_empty());
    }

    #[test]
    fn a_queue_backlog_counts_unconsumed_messages() {
        let plan = Plan::new(0, 1, 1, 0.0, 100, true, 10, Backlog::Total);
        let stats = Stats::new(1);
        stats.sent.store(15, Relaxed);
        stats.delivered.store(5, Relaxed);
        assert!(!plan.behind(&stats));
        stats.sent.store(16, Relaxed);
        assert!(plan.behind(&stats));
        stats.delivered.store(20, Relaxed);
        assert!(!plan.behind(&stats), "more consumed than sent saturates");
    }
}
