//! The `idle` scenario: open N STOMP sessions (CONNECT and one SUBSCRIBE each), hold them for a
//! while with heart-beats off or long, and report how many opened, how many failed and why,
//! how many the server closed, and — given the server's PID — its resident memory before and
//! after, so that a script can compute memory per session.
//!
//! Each socket is bound to a source address taken round robin from a range (by default
//! 127.0.0.2–127.0.0.254 for a loopback target): every address has its own ephemeral ports, so
//! tens of thousands of sessions fit where one address would run out near 28,000. The open
//! files limit is raised at start (`limits.rs`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stompede_stomp::{Command, HeartBeat};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::{self, Instant, Interval, MissedTickBehavior};

use crate::cli::IdleArgs;
use crate::conn::{self, Closed, Event, OpenError, Options, Stomp, Target};
use crate::cpu::{cpu_over_window, window_cpu};
use crate::fanout::CLOSE_TIMEOUT;
use crate::memory::{self, Resident};
use crate::net;
use crate::report::{Endings, IdleReport, ServerCloses, ServerMemory, StompErrors, ToolCpu};
use crate::setup::Pacer;
use crate::stats::{duration_ns, Stats};

/// Counters the progress line reads.
#[derive(Debug, Default)]
struct Counts {
    opened: AtomicU64,
    failed: AtomicU64,
    closed: AtomicU64,
}

/// What every session task shares.
#[derive(Clone)]
struct Shared {
    target: Arc<Target>,
    destination: Arc<str>,
    heart_beat: HeartBeat,
    counts: Arc<Counts>,
    /// Sessions not open by then give up (`--setup-timeout`).
    deadline: Instant,
    /// One message per session once its opening is over.
    opened: mpsc::UnboundedSender<Result<(), OpenError>>,
    stop: watch::Receiver<bool>,
}

/// What one session saw while held.
#[derive(Debug, Default)]
struct SessionReport {
    /// Whether it opened (and subscribed).
    opened: bool,
    closed: Option<Closed>,
    messages: u64,
    heartbeats_sent: u64,
    errors: StompErrors,
}

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// Only an invalid URL: sessions that fail to open are counted, not fatal.
pub(crate) async fn run(args: IdleArgs, shards: usize) -> anyhow::Result<IdleReport> {
    let target = Arc::new(Target::new(
        args.target.transport,
        args.target.url.as_deref(),
    )?);
    let sources = args.source_addrs.resolve(target.host());
    let stats = Arc::new(Stats::new(shards));
    let counts = Arc::new(Counts::default());
    let heart_beat = HeartBeat {
        send: args.heartbeat,
        receive: args.heartbeat,
    };
    let server_before = args.server_pid.and_then(|pid| memory::resident(Some(pid)));
    if let (Some(pid), None) = (args.server_pid, server_before) {
        eprintln!("warning: cannot read /proc/{pid}/status; no server memory figures");
    }
    eprintln!(
        "opening {} sessions to {} over {} (source addresses: {})",
        args.sessions,
        target.url(),
        target.transport().as_str(),
        sources.map_or_else(
            || "the kernel's choice".to_owned(),
            |(first, last)| format!("{first}-{last}")
        )
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let open_started = Instant::now();
    let deadline = open_started + args.open.setup_timeout;
    let shared = Shared {
        target: target.clone(),
        destination: Arc::from(args.destination.as_str()),
        heart_beat,
        counts: counts.clone(),
        deadline,
        opened: opened_tx,
        stop: stop_rx,
    };
    let spawner = tokio::spawn(spawn_sessions(
        args.sessions,
        args.open.connections_per_second,
        sources,
        shared,
    ));

    // Opening: every attempt ends in success or failure, or the deadline passes.
    let mut failures = Endings::default();
    let mut done = 0u64;
    let mut ticker = time::interval_at(
        open_started + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while done < u64::from(args.sessions) {
        tokio::select! {
            result = opened_rx.recv() => match result {
                Some(Ok(())) => done += 1,
                Some(Err(e)) => {
                    done += 1;
                    failures.add(e.key(), || e.to_string());
                }
                None => break,
            },
            _ = ticker.tick() => eprintln!(
                "  opened {}  failed {}  closed {}  of {}",
                counts.opened.load(Relaxed),
                counts.failed.load(Relaxed),
                counts.closed.load(Relaxed),
                args.sessions
            ),
            // Sessions still opening give up at the deadline too, and say so on the channel.
            () = time::sleep_until(deadline + Duration::from_secs(1)) => break,
        }
    }
    let open_time = open_started.elapsed();
    // Never started: the spawner stopped at the deadline.
    for _ in done..u64::from(args.sessions) {
        failures.add("setup-timeout".to_owned(), || {
            format!(
                "not opened within --setup-timeout ({:?})",
                args.open.setup_timeout
            )
        });
    }
    let opened = counts.opened.load(Relaxed);
    eprintln!(
        "  opened {opened} of {} in {:.1}s; {} failed",
        args.sessions,
        open_time.as_secs_f64(),
        failures.total()
    );
    let server_after_open = args.server_pid.and_then(|pid| memory::resident(Some(pid)));

    // Holding: the window is the hold, so the tool's CPU is measured over it.
    let start = stats.now_ns();
    stats.set_window(start, start + duration_ns(args.hold));
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    // Scripts wait for "sessions open" to start sampling the server.
    eprintln!("{opened} sessions open; holding for {:?}", args.hold);
    let hold_start = Instant::now();
    let hold_end = hold_start + args.hold;
    let mut ticker = time::interval_at(
        Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            () = time::sleep_until(hold_end) => break,
            _ = ticker.tick() => {
                let closed = counts.closed.load(Relaxed);
                eprintln!(
                    "[hold {:>4}s] sessions {} open, {closed} closed by the server{}",
                    hold_start.elapsed().as_secs(),
                    opened.saturating_sub(closed),
                    args.server_pid
                        .and_then(|pid| memory::resident(Some(pid)))
                        .map_or_else(String::new, |r| format!("; server RSS {} MiB", r.rss_kib / 1024)),
                );
            }
        }
    }
    let server_end = args.server_pid.and_then(|pid| memory::resident(Some(pid)));
    let tool_memory = memory::resident(None);
    let tool = ToolCpu {
        cores: window_cpu(&stats, tool_cpu).await,
        threads: shards,
    };

    eprintln!("closing");
    let _ = stop_tx.send(true);
    let tasks = spawner.await.context("session spawner failed")?;
    let mut closes = ServerCloses::default();
    let mut errors = StompErrors::default();
    let (mut alive, mut messages, mut heartbeats_sent) = (0, 0, 0);
    for task in tasks {
        let report = match time::timeout(CLOSE_TIMEOUT * 2, task).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => return Err(anyhow::anyhow!(e).context("session task failed")),
            // A session stuck closing is not worth waiting for; it was open all the same.
            Err(_) => continue,
        };
        if !report.opened {
            continue;
        }
        match &report.closed {
            None => alive += 1,
            Some(closed) => closes.add_stomp(None, closed, &report.errors),
        }
        messages += report.messages;
        heartbeats_sent += report.heartbeats_sent;
        errors.merge(report.errors);
    }

    Ok(IdleReport {
        url: target.url().to_owned(),
        transport: target.transport(),
        sessions: u64::from(args.sessions),
        opened,
        failures,
        open_time,
        hold: args.hold,
        heartbeat: args.heartbeat,
        source_addrs: sources.map(|range| (range, net::range_len(range))),
        alive,
        closes,
        messages,
        heartbeats_sent,
        errors,
        server: args.server_pid.map(|pid| ServerMemory {
            pid,
            before: server_before,
            after_open: server_after_open,
            end: server_end,
        }),
        tool_rss_kib: tool_memory.map(|r: Resident| r.rss_kib),
        tool,
    })
}

/// Starts the session tasks, paced like connection attempts, each from its source address.
async fn spawn_sessions(
    count: u32,
    per_second: u32,
    sources: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
    shared: Shared,
) -> Vec<JoinHandle<SessionReport>> {
    let mut pacer = Pacer::new(per_second);
    let mut stop = shared.stop.clone();
    let mut handles = Vec::with_capacity(count as usize);
    for index in 0..count {
        let permit = tokio::select! {
            permit = pacer.ready() => permit,
            _ = stop.changed() => break,
            () = time::sleep_until(shared.deadline) => break,
        };
        let source = sources.map(|range| net::nth_source(range, u64::from(index)));
        handles.push(tokio::spawn(session(index, source, shared.clone(), permit)));
    }
    handles
}

/// One session: open and subscribe, then hold (answering nothing, sending heart-beats if
/// negotiated) until the run stops.
async fn session(
    index: u32,
    source: Option<std::net::IpAddr>,
    shared: Shared,
    permit: Option<OwnedSemaphorePermit>,
) -> SessionReport {
    let mut report = SessionReport::default();
    let mut stop = shared.stop.clone();
    let options = Options {
        heart_beat: shared.heart_beat,
        source,
    };
    let opening = conn::open_subscribed(
        &shared.target,
        options,
        &shared.destination,
        "auto",
        &[],
        u64::from(index),
    );
    let opened = tokio::select! {
        opened = opening => opened,
        _ = stop.changed() => return report,
        () = time::sleep_until(shared.deadline) => {
            shared.counts.failed.fetch_add(1, Relaxed);
            let _ = shared.opened.send(Err(OpenError::Timeout));
            return report;
        }
    };
    drop(permit);
    let Stomp {
        mut writer,
        reader,
        heartbeat_every,
    } = match opened {
        Ok((stomp, _)) => {
            shared.counts.opened.fetch_add(1, Relaxed);
            let _ = shared.opened.send(Ok(()));
            stomp
        }
        Err(e) => {
            shared.counts.failed.fetch_add(1, Relaxed);
            let _ = shared.opened.send(Err(e));
            return report;
        }
    };
    report.opened = true;
    // Half the negotiated interval, so that timer slack never makes a beat late.
    let mut beat = heartbeat_every.map(|every| {
        let period = (every / 2).max(Duration::from_millis(1));
        let mut beat = time::interval_at(Instant::now() + period, period);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        beat
    });
    let mut read = std::pin::pin!(reader.into_next_event());
    let mut stopped = std::pin::pin!(stop.changed());
    let closed = loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break None,
            (reader, event) = &mut read => {
                match event {
                    Event::Frame(frame) => match frame.command() {
                        Command::Message => report.messages += 1,
                        Command::Error => report.errors.add(frame.header("message").map(|m| m.into_owned())),
                        _ => {}
                    },
                    Event::Closed(closed) => break Some(closed),
                }
                read.set(reader.into_next_event());
            }
            () = tick_or_never(&mut beat) => {
                if writer.send_heartbeat().await.is_ok() {
                    report.heartbeats_sent += 1;
                }
            }
        }
    };
    match closed {
        Some(closed) => {
            shared.counts.closed.fetch_add(1, Relaxed);
            report.closed = Some(closed);
        }
        None => {
            let _ = time::timeout(CLOSE_TIMEOUT, writer.close()).await;
        }
    }
    report
}

/// The next heart-beat tick; never without heart-beats.
async fn tick_or_never(beat: &mut Option<Interval>) {
    match beat {
        Some(beat) => {
            beat.tick().await;
        }
        None => std::future::pending().await,
    }
}
