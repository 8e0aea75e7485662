//! The `sockjs-echo` scenario: N sessions on an echo prefix, each sending one timestamped
//! message, waiting for it to come back, and sending the next: round trips per second and their
//! latency.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::Context;
use tokio::time::{self, Instant};

use super::client::{self, Endpoint, Failure, Receiver, Sender};
use super::frame::{self, Frame};
use super::report::EchoReport;
use super::{close_all, cpu_over_window, open_sessions, progress, EchoArgs};
use crate::report::{Endings, Latency, ToolCpu};
use crate::stats::{duration_ns, Stats};

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// The URL is invalid, or the sessions cannot all be opened within `--setup-timeout`.
pub(crate) async fn run(args: EchoArgs, shards: usize) -> anyhow::Result<EchoReport> {
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

    let start = stats.now_ns();
    let measure_from = start + duration_ns(args.warmup);
    let measure_until = measure_from + duration_ns(args.duration);
    stats.set_window(measure_from, measure_until);
    // A round trip begun in the window may finish this late; later is a stall.
    let give_up = Instant::from_std(stats.instant_at(measure_until)) + args.drain_timeout;
    eprintln!(
        "echoing for {:?} (+{:?} warm-up)",
        args.duration, args.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let progress = tokio::spawn(progress(stats.clone(), args.sessions, "echoed"));
    let size = args.size as usize;
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, (sender, receiver))| {
            tokio::spawn(echo(index, sender, receiver, stats.clone(), size, give_up))
        })
        .collect();

    let mut endings = Endings::default();
    let mut senders = Vec::with_capacity(tasks.len());
    let mut mismatches = 0;
    let mut heartbeats = 0;
    let mut streaming_responses = 0;
    let mut alive = 0;
    for task in tasks {
        let (report, sender) = task.await.context("session task failed")?;
        if report.ended.by_kind.is_empty() {
            alive += 1;
        }
        mismatches += report.mismatches;
        heartbeats += report.heartbeats;
        streaming_responses += report.responses;
        endings.merge(report.ended);
        senders.push(sender);
    }
    progress.abort();
    close_all(senders).await;

    Ok(EchoReport {
        url: args.url,
        transport: args.transport,
        sessions: u64::from(args.sessions),
        size: u64::from(args.size),
        duration: args.duration,
        warmup: args.warmup,
        round_trips: stats.delivered_measured.load(Relaxed),
        sent: stats.sent.load(Relaxed),
        mismatches,
        sessions_alive: alive,
        heartbeats,
        streaming_responses,
        endings,
        latency: Latency::from_histogram(&stats.latency()),
        tool: ToolCpu {
            // A run that ended before its window did has no figure for the window; otherwise
            // the sampler is due now (or already done).
            cores: if stats.now_ns() >= measure_until {
                tool_cpu.await.ok().flatten()
            } else {
                tool_cpu.abort();
                None
            },
            threads: shards,
        },
    })
}

/// What one session saw.
#[derive(Debug, Default)]
struct SessionReport {
    mismatches: u64,
    heartbeats: u64,
    responses: u64,
    /// How the session ended early, if it did (at most one entry).
    ended: Endings,
}

/// One session: send, wait for the echo, repeat until the window is over.
async fn echo(
    index: usize,
    mut sender: Sender,
    mut receiver: Receiver,
    stats: Arc<Stats>,
    size: usize,
    give_up: Instant,
) -> (SessionReport, Sender) {
    let shard = index % stats.shards();
    let (_, until) = stats.window();
    let mut report = SessionReport::default();
    let failure = loop {
        let ts = stats.now_ns();
        if ts >= until {
            break None;
        }
        let message = [client::stamped_message(size, ts)];
        stats.sent.fetch_add(1, Relaxed);
        // Over xhr-streaming the echo may arrive before xhr_send's answer: wait for both at once.
        let sending = async {
            sender.send(&message).await?;
            sender.flush().await
        };
        let echoed = next_echo(&mut receiver, &mut report.heartbeats);
        let round_trip = async { tokio::try_join!(sending, echoed) };
        let echo = match time::timeout_at(give_up, round_trip).await {
            Ok(Ok(((), echo))) => echo,
            Ok(Err(failure)) => break Some(failure),
            Err(_) => {
                break Some(Failure::Protocol(
                    "no echo before the drain timeout".to_owned(),
                ))
            }
        };
        let now = stats.now_ns();
        stats.delivered.fetch_add(1, Relaxed);
        if echo != message[0] {
            report.mismatches += 1;
            if report.mismatches == 1 {
                eprintln!(
                    "session {index}: echo differs from the message sent: {}",
                    client::preview(echo.as_bytes())
                );
            }
            continue;
        }
        if stats.is_measured(ts) {
            stats.delivered_measured.fetch_add(1, Relaxed);
            stats.record_latency(shard, now.saturating_sub(ts) / 1_000);
        }
    };
    report.responses = receiver.responses();
    if let Some(failure) = failure {
        stats.closed_subscribers.fetch_add(1, Relaxed);
        report
            .ended
            .add(failure.key(), || format!("session {index}: {failure}"));
    }
    (report, sender)
}

/// The next message from the server, skipping heartbeats. With one message in flight, a frame
/// carries exactly one.
async fn next_echo(receiver: &mut Receiver, heartbeats: &mut u64) -> Result<String, Failure> {
    loop {
        let raw = receiver.next_frame().await?;
        match frame::parse(&raw) {
            Ok(Frame::Heartbeat) => *heartbeats += 1,
            Ok(Frame::Messages(mut messages)) if messages.len() == 1 => {
                return Ok(messages.swap_remove(0).into_owned())
            }
            Ok(Frame::Messages(messages)) => {
                return Err(Failure::Protocol(format!(
                    "{} messages in one frame with one in flight: {}",
                    messages.len(),
                    client::preview(&raw)
                )))
            }
            Ok(Frame::Open) => return Err(Failure::Protocol("a second `o` frame".to_owned())),
            Ok(Frame::Close { code, reason }) => {
                return Err(Failure::Closed {
                    code,
                    reason: reason.into_owned(),
                })
            }
            Err(e) => return Err(Failure::Protocol(format!("{e}: {}", client::preview(&raw)))),
        }
    }
}
