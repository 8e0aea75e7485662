//! The `sockjs-echo` scenario: N sessions on an echo prefix, each sending one timestamped
//! message, waiting for it to come back, and sending the next: round trips per second and their
//! latency.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::Context;
use tokio::time::{self, Instant};

use super::client::{self, Endpoint, Failure, Receiver, Sender};
use super::frame::{self, Frame};
use super::{close_all, open_sessions};
use crate::cli::SockjsEchoArgs;
use crate::cpu::cpu_over_window;
use crate::progress::Progress;
use crate::report::{EchoEnd, EchoReport, EchoTally, EchoTotals, Run, SockjsCounts};
use crate::stats::Stats;

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// The URL is invalid, or the sessions cannot all be opened within `--setup-timeout`.
pub(crate) async fn run(args: SockjsEchoArgs, shards: usize) -> anyhow::Result<EchoReport> {
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

    let window = &args.window;
    let (_, _, measure_until) = stats.start_window(window.warmup, window.duration);
    // A round trip begun in the window may finish this late; later is a stall.
    let give_up = Instant::from_std(stats.instant_at(measure_until)) + window.drain_timeout;
    eprintln!(
        "echoing for {:?} (+{:?} warm-up)",
        window.duration, window.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let progress = Progress::new(stats.clone(), "echoed", "sessions", args.sessions)
        .sent("sent")
        .spawn();
    let size = args.size as usize;
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, (sender, receiver))| {
            tokio::spawn(echo(index, sender, receiver, stats.clone(), size, give_up))
        })
        .collect();

    let mut totals = EchoTotals::new();
    let mut counts = SockjsCounts::default();
    let mut senders = Vec::with_capacity(tasks.len());
    for (index, task) in tasks.into_iter().enumerate() {
        let (session, sender) = task.await.context("session task failed")?;
        counts.heartbeats += session.heartbeats;
        counts.streaming_responses += session.responses;
        totals.add(&format!("session {index}"), session.tally);
        senders.push(sender);
    }
    progress.abort();
    close_all(senders).await;

    Ok(EchoReport {
        scenario: "sockjs-echo",
        run: Run::finish(
            (args.url.clone(), Some(args.transport.as_str())),
            args.size,
            window,
            &stats,
            tool_cpu,
            shards,
        )
        .await,
        noun: "sessions",
        count: u64::from(args.sessions),
        sent: stats.sent.load(Relaxed),
        round_trips: stats.delivered_measured.load(Relaxed),
        totals,
        sockjs: Some(counts),
    })
}

/// What one session saw.
#[derive(Debug, Default)]
struct SessionReport {
    tally: EchoTally,
    heartbeats: u64,
    responses: u64,
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
    let tally = &mut report.tally;
    let ended = loop {
        let ts = stats.now_ns();
        if ts >= until {
            break None;
        }
        let message = [client::stamped_message(size, ts)];
        stats.sent.fetch_add(1, Relaxed);
        let measured = stats.is_measured(ts);
        tally.sent_measured += u64::from(measured);
        // Over xhr-streaming the echo may arrive before xhr_send's answer: wait for both at once.
        let sending = async {
            sender.send(&message).await?;
            sender.flush().await
        };
        let echoed = next_echo(&mut receiver, &mut report.heartbeats);
        let round_trip = async { tokio::try_join!(sending, echoed) };
        let echo = match time::timeout_at(give_up, round_trip).await {
            Ok(Ok(((), echo))) => echo,
            Ok(Err(failure)) => {
                break Some(EchoEnd::Closed {
                    key: failure.key(),
                    reason: failure.reason(),
                    detail: failure.to_string(),
                })
            }
            Err(_) => break Some(EchoEnd::Stalled),
        };
        let now = stats.now_ns();
        stats.delivered.fetch_add(1, Relaxed);
        tally.echoed_measured += u64::from(measured);
        if echo != message[0] {
            tally.mismatches += 1;
            if tally.mismatches == 1 {
                eprintln!(
                    "session {index}: echo differs from the message sent: {}",
                    client::preview(echo.as_bytes())
                );
            }
            continue;
        }
        if measured {
            stats.delivered_measured.fetch_add(1, Relaxed);
            stats.record_latency(shard, now.saturating_sub(ts) / 1_000);
        }
    };
    report.responses = receiver.responses();
    if let Some(ended) = ended {
        stats.closed_subscribers.fetch_add(1, Relaxed);
        if matches!(ended, EchoEnd::Closed { .. }) {
            stats.closed_connections.fetch_add(1, Relaxed);
        }
        report.tally.ended = Some(ended);
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
