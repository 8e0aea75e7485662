//! The `rooms` scenario: R chat rooms × U users. Each user subscribes to its room's topic and
//! SENDs to it at a per-user rate; every message is expected by the U users of the room, the
//! sender's own copy included (the sender subscribes like everyone else, and the server
//! delivers to every subscription of the topic).
//!
//! One task per user both sends and receives: the read in progress is a future kept across
//! the loop (never cancelled, which the xhr transports need), and sending happens between
//! reads. In max mode (`--rate 0`) a user sends while fewer than `--max-in-flight` of its own
//! messages have not come back to it: the own copy closes the loop.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::BytesMut;
use stompede_stomp::Command;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::{self, Instant, Interval, MissedTickBehavior};

use crate::cli::RoomsArgs;
use crate::conn::{self, Closed, Event, Options, Stomp, Target, Writer};
use crate::cpu::cpu_over_window;
use crate::fanout::CLOSE_TIMEOUT;
use crate::payload::{read_tag, read_timestamp};
use crate::progress::Progress;
use crate::publish::SendTemplate;
use crate::report::{Deliveries, RoomsReport, Run, Sending, ServerCloses, StompErrors};
use crate::setup::{self, Ready};
use crate::stats::{drain, duration_ns, Stats};
use crate::wire::RawFrame;

/// Per-room counters.
#[derive(Debug, Default)]
struct Room {
    /// Messages sent to the room in the measured window.
    sent_measured: AtomicU64,
    /// Users of the room the server closed.
    closed: AtomicU64,
}

/// When and how fast users send, published to every user task when sending starts.
#[derive(Debug)]
struct Plan {
    start: u64,
    until: u64,
    /// Messages per second per user; 0 for max mode.
    rate: f64,
    /// Max mode: most of a user's own messages not yet back.
    max_in_flight: u64,
    users: u32,
}

/// What every user task shares.
#[derive(Clone)]
struct Shared {
    target: Arc<Target>,
    prefix: Arc<str>,
    size: usize,
    stats: Arc<Stats>,
    rooms: Arc<[Room]>,
    ready: Ready,
    start: watch::Receiver<Option<Arc<Plan>>>,
    stop: watch::Receiver<bool>,
}

/// What one user saw.
#[derive(Debug, Default)]
struct UserReport {
    room: u32,
    sent: u64,
    /// Measured messages received.
    measured: u64,
    /// Messages outside the window or without our timestamp.
    unmeasured: u64,
    closed: Option<Closed>,
    errors: StompErrors,
}

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// A user cannot connect or subscribe within `--setup-timeout`. What goes wrong after that is
/// counted in the report.
pub(crate) async fn run(args: RoomsArgs, shards: usize) -> anyhow::Result<RoomsReport> {
    let target = Arc::new(Target::new(
        args.target.transport,
        args.target.url.as_deref(),
    )?);
    let stats = Arc::new(Stats::new(shards));
    let rooms: Arc<[Room]> = (0..args.rooms).map(|_| Room::default()).collect();
    let users = args.rooms * args.users;
    let (start_tx, start_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    eprintln!(
        "opening {} rooms × {} users to {} over {}",
        args.rooms,
        args.users,
        target.url(),
        target.transport().as_str()
    );
    let shared = Shared {
        target: target.clone(),
        prefix: Arc::from(args.room_prefix.as_str()),
        size: args.size as usize,
        stats: stats.clone(),
        rooms: rooms.clone(),
        ready: ready_tx,
        start: start_rx,
        stop: stop_rx,
    };
    let deadline = Instant::now() + args.open.setup_timeout;
    // Room by room: user `index` is in room `index / users`.
    let per_room = args.users;
    let spawner = tokio::spawn(setup::spawn_paced(
        users,
        args.open.connections_per_second,
        move |index, permit| tokio::spawn(user(index, index / per_room, shared.clone(), permit)),
    ));
    let tasks = setup::spawned_ready(spawner, &mut ready_rx, u64::from(users), deadline).await?;

    let window = &args.window;
    let (start, _, measure_until) = stats.start_window(window.warmup, window.duration);
    eprintln!(
        "publishing for {:?} (+{:?} warm-up)",
        window.duration, window.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let progress = Progress::new(stats.clone(), "delivered", "users", users)
        .sent("sent")
        .spawn();
    let _ = start_tx.send(Some(Arc::new(Plan {
        start,
        until: measure_until,
        rate: args.rate.max(0.0),
        max_in_flight: u64::from(args.max_in_flight),
        users,
    })));
    time::sleep_until(Instant::from_std(stats.instant_at(measure_until))).await;

    // Drain: every user still connected should get every measured message of its room.
    let per_room = u64::from(args.users);
    let drained = drain(window.drain_timeout, || {
        let want: u64 = rooms
            .iter()
            .map(|r| r.sent_measured.load(Relaxed) * (per_room - r.closed.load(Relaxed)))
            .sum();
        let got =
            stats.delivered_measured.load(Relaxed) - stats.delivered_measured_closed.load(Relaxed);
        got >= want
    })
    .await;
    progress.abort();
    let _ = stop_tx.send(true);

    let mut closes = ServerCloses::default();
    let mut errors = StompErrors::default();
    let mut deliveries = Deliveries {
        drained,
        ..Deliveries::default()
    };
    let (mut alive, mut unmeasured) = (0, 0);
    for task in tasks {
        let report = task.await.context("user task failed")?;
        // Every user is owed every measured message of its room.
        let owed = rooms[report.room as usize].sent_measured.load(Relaxed);
        deliveries.add_receiver(owed, report.measured, report.closed.is_some());
        match &report.closed {
            None => alive += 1,
            Some(closed) => closes.add_stomp(None, closed, &report.errors),
        }
        unmeasured += report.unmeasured;
        errors.merge(report.errors);
    }
    Ok(RoomsReport {
        run: Run::finish(
            (target.url().to_owned(), Some(target.transport().as_str())),
            args.size,
            window,
            &stats,
            tool_cpu,
            shards,
        )
        .await,
        rooms: u64::from(args.rooms),
        users_per_room: per_room,
        rate_per_user: args.rate,
        sending: Sending {
            total: stats.sent.load(Relaxed),
            measured: stats.sent_measured.load(Relaxed),
            wanted: args.rate * f64::from(users),
        },
        users_alive: alive,
        delivered_per_sec: stats
            .delivered_per_sec(deliveries.received + deliveries.received_by_closed),
        deliveries,
        unmeasured,
        closes,
        errors,
    })
}

/// One user: join the room, then send and receive until the run stops.
async fn user(
    index: u32,
    room: u32,
    shared: Shared,
    permit: Option<OwnedSemaphorePermit>,
) -> UserReport {
    let Shared {
        target,
        prefix,
        size,
        stats,
        rooms,
        ready,
        mut start,
        mut stop,
    } = shared;
    let mut report = UserReport {
        room,
        ..UserReport::default()
    };
    let destination = format!("{prefix}{room}");
    let opened = conn::open_subscribed(
        &target,
        Options::default(),
        &destination,
        "auto",
        &[],
        u64::from(index),
    )
    .await;
    let Stomp {
        mut writer, reader, ..
    } = match opened {
        Ok((stomp, _)) => stomp,
        Err(e) => {
            let _ = ready.send(Err(anyhow::Error::new(e).context(format!("user {index}"))));
            return report;
        }
    };
    drop(permit);
    let _ = ready.send(Ok(()));
    drop(ready);
    // Read from now on, also while waiting for the others: over xhr-polling a session without
    // a poll in progress is closed by the server after its disconnect delay (5 s by default),
    // and opening a thousand users can take longer.
    let mut read = pin!(reader.into_next_event());
    let mut stopped = pin!(stop.changed());
    let plan = loop {
        tokio::select! {
            biased;
            _ = &mut stopped => return report,
            plan = start.wait_for(Option::is_some) => match plan.as_deref().ok().cloned().flatten() {
                Some(plan) => break plan,
                None => return report,
            },
            (reader, event) = &mut read => {
                match event {
                    Event::Closed(closed) => {
                        user_closed(&stats, &rooms[room as usize], &mut report, closed);
                        return report;
                    }
                    // Nothing is sent before the start; an ERROR is counted.
                    Event::Frame(frame) => {
                        if frame.command() == Command::Error {
                            report.errors.add(frame.header("message").map(|m| m.into_owned()));
                        }
                    }
                }
                read.set(reader.into_next_event());
            }
        }
    };

    let shard = index as usize % stats.shards();
    let mut sender = Sender {
        index,
        template: SendTemplate::new(&destination, size, None),
        scratch: BytesMut::with_capacity(4096),
        sent: 0,
        own_back: 0,
        room: &rooms[room as usize],
        stats: &stats,
        plan: &plan,
    };
    let mut ticker = (plan.rate > 0.0).then(|| {
        let period = Duration::from_secs_f64(1.0 / plan.rate);
        let offset = period.mul_f64(f64::from(index) / f64::from(plan.users.max(1)));
        let mut ticker = time::interval_at(
            Instant::from_std(stats.instant_at(plan.start)) + offset,
            period,
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        (ticker, plan.start + duration_ns(offset))
    });
    let until = time::sleep_until(Instant::from_std(stats.instant_at(plan.until)));
    let mut until = pin!(until);
    let mut sending = true;
    if ticker.is_none() && sender.burst(&mut writer).await.is_err() {
        sending = false;
    }
    let closed = loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break None,
            (mut reader, event) = &mut read => {
                let mut event = Some(event);
                let mut closed = None;
                // Everything already received, then one flush.
                while let Some(next) = event.take().or_else(|| reader.buffered()) {
                    match next {
                        Event::Frame(frame) => {
                            on_frame(&frame, &mut sender, shard, &mut report);
                        }
                        Event::Closed(c) => {
                            closed = Some(c);
                            break;
                        }
                    }
                }
                if closed.is_some() {
                    break closed;
                }
                read.set(reader.into_next_event());
                if sending && ticker.is_none() && sender.burst(&mut writer).await.is_err() {
                    sending = false;
                }
            }
            () = tick_or_never(&mut ticker), if sending => {
                let origin = ticker.as_ref().map_or(plan.start, |(_, origin)| *origin);
                let elapsed = stats.now_ns().saturating_sub(origin) as f64 / 1e9;
                let due = (elapsed * plan.rate) as u64 + 1;
                if sender.send_due(&mut writer, due).await.is_err() {
                    sending = false;
                }
            }
            () = &mut until, if sending => {
                sending = false;
                let _ = writer.flush().await;
            }
        }
    };
    report.sent = sender.sent;
    match closed {
        Some(closed) => user_closed(&stats, &rooms[room as usize], &mut report, closed),
        None => {
            let _ = time::timeout(CLOSE_TIMEOUT, writer.close()).await;
        }
    }
    report
}

/// Accounts for a user the server closed (or whose connection broke).
fn user_closed(stats: &Stats, room: &Room, report: &mut UserReport, closed: Closed) {
    stats
        .delivered_measured_closed
        .fetch_add(report.measured, Relaxed);
    stats.closed_subscribers.fetch_add(1, Relaxed);
    stats.closed_connections.fetch_add(1, Relaxed);
    room.closed.fetch_add(1, Relaxed);
    report.closed = Some(closed);
}

/// The next tick of a rate-mode ticker; never in max mode.
async fn tick_or_never(ticker: &mut Option<(Interval, u64)>) {
    match ticker {
        Some((ticker, _)) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A user's sending side.
struct Sender<'a> {
    index: u32,
    template: SendTemplate,
    scratch: BytesMut,
    sent: u64,
    /// Own messages received back.
    own_back: u64,
    room: &'a Room,
    stats: &'a Stats,
    plan: &'a Plan,
}

impl Sender<'_> {
    /// Queues one message; `false` once the window is over.
    async fn send_one(&mut self, writer: &mut Writer) -> Result<bool, Closed> {
        let ts = self.stats.now_ns();
        if ts >= self.plan.until {
            return Ok(false);
        }
        self.template
            .stamp_into(ts, Some((self.index, self.sent)), &mut self.scratch);
        self.sent += 1;
        self.stats.sent.fetch_add(1, Relaxed);
        if self.stats.is_measured(ts) {
            self.stats.sent_measured.fetch_add(1, Relaxed);
            self.room.sent_measured.fetch_add(1, Relaxed);
        }
        writer.feed_encoded(&mut self.scratch).await?;
        Ok(true)
    }

    /// Rate mode: sends until `due` messages in all are sent.
    async fn send_due(&mut self, writer: &mut Writer, due: u64) -> Result<(), Closed> {
        while self.sent < due {
            if !self.send_one(writer).await? {
                break;
            }
        }
        writer.flush().await
    }

    /// Max mode: sends while fewer than `max_in_flight` own messages are out.
    async fn burst(&mut self, writer: &mut Writer) -> Result<(), Closed> {
        let mut any = false;
        while self.sent - self.own_back.min(self.sent) < self.plan.max_in_flight {
            if !self.send_one(writer).await? {
                break;
            }
            any = true;
        }
        if any {
            writer.flush().await?;
        }
        Ok(())
    }
}

/// Counts one frame: a MESSAGE is timed if it belongs to the window, and noted if it is the
/// user's own.
fn on_frame(frame: &RawFrame, sender: &mut Sender<'_>, shard: usize, report: &mut UserReport) {
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
    let stats = sender.stats;
    stats.delivered.fetch_add(1, Relaxed);
    let body = frame.body();
    if read_tag(body).is_some_and(|(from, _)| from == sender.index) {
        sender.own_back += 1;
    }
    let Some(ts) = read_timestamp(body).filter(|&ts| stats.is_measured(ts)) else {
        report.unmeasured += 1;
        return;
    };
    let now = stats.now_ns();
    report.measured += 1;
    stats.delivered_measured.fetch_add(1, Relaxed);
    stats.last_delivery.fetch_max(now, Relaxed);
    stats.record_latency(shard, now.saturating_sub(ts) / 1_000);
}
