//! The SockJS scenarios: plain SockJS sessions (no STOMP) against a SockJS server's `/broadcast`
//! and `/echo` prefixes, over the websocket, xhr-streaming or xhr-polling transport, so that
//! stompede's SockJS layer can be measured against sockjs-node's in the same run. The session
//! client (`client`) also carries STOMP for the STOMP scenarios (`crate::conn`).
//!
//! # Layout
//!
//! - `chunked`, `http`: the HTTP/1.1 client side that xhr-streaming and xhr_send need (keep-alive,
//!   chunked bodies), written here because no HTTP client crate is a dependency.
//! - `frame`: SockJS frames (`o`, `h`, `a[...]`, `c[...]`), the xhr-streaming and xhr-polling
//!   body splitter, and the JSON strings that carry STOMP frames.
//! - `client`: one session, as a receiver and a sender.
//! - `broadcast`, `echo`: the scenarios. `report`: their figures.

mod broadcast;
mod chunked;
pub(crate) mod client;
mod echo;
pub(crate) mod frame;
mod http;
mod report;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, ValueEnum};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{self, Instant};

use crate::cli::parse_duration;
use crate::cpu::cpu_over_window;
use crate::report::Latency;
use crate::stats::Stats;

pub(crate) use broadcast::run as run_broadcast;
pub(crate) use echo::run as run_echo;

use client::{Endpoint, Receiver, Sender};

/// Sessions being opened at once, so that the server's accept backlog does not overflow into
/// SYN retries (which add whole seconds).
const MAX_CONCURRENT_OPENS: usize = 64;
/// How long a session waits for the server to take its close at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The SockJS transport a scenario's sessions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// `/{server}/{session}/websocket`: one WebSocket per session.
    Websocket,
    /// `/{server}/{session}/xhr_streaming` to receive (a new request each time the server ends
    /// one at its byte limit), `/xhr_send` to send: two keep-alive HTTP connections per session.
    XhrStreaming,
    /// `/{server}/{session}/xhr` to receive (one request per frame), `/xhr_send` to send: two
    /// keep-alive HTTP connections per session.
    XhrPolling,
}

impl Transport {
    /// The name used on the command line and in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::XhrStreaming => "xhr-streaming",
            Transport::XhrPolling => "xhr-polling",
        }
    }
}

/// Arguments of the `sockjs-broadcast` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct BroadcastArgs {
    /// SockJS endpoint whose every message goes to every open session (`/broadcast` of
    /// stompede's sockjs_test_server example and of benches/sockjs-node).
    #[arg(long, default_value = "http://127.0.0.1:8081/broadcast")]
    pub(crate) url: String,
    /// Transport of every session.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub(crate) transport: Transport,
    /// Sessions, all receiving; session 0 is also the sender (so each message is expected
    /// `--sessions` times, the sender's own copy included).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sessions: u32,
    /// Messages per second; 0 sends as fast as the backlog bound allows.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Message size in bytes. The message starts with its send timestamp, so at least 24.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(24..))]
    pub(crate) size: u32,
    /// Length of the measured window, after the warm-up (e.g. `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Sending time before the measured window; its messages are delivered but not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// With `--rate 0`: the sender pauses while the average session is this many messages
    /// behind it, so that max mode measures delivery rather than how much a server buffers
    /// (a deeper window adds queueing latency, not throughput).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: u32,
    /// How long the sessions may take to open (`o` frame received).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) setup_timeout: Duration,
    /// How long to wait after sending stops for deliveries still in flight.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
}

/// Arguments of the `sockjs-echo` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct EchoArgs {
    /// SockJS endpoint that sends every message back to its sender.
    #[arg(long, default_value = "http://127.0.0.1:8081/echo")]
    pub(crate) url: String,
    /// Transport of every session.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub(crate) transport: Transport,
    /// Sessions, each with one message in flight at a time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sessions: u32,
    /// Message size in bytes (at least 24: it starts with its send timestamp).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(24..))]
    pub(crate) size: u32,
    /// Length of the measured window, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Round trips before the measured window, not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// How long the sessions may take to open.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) setup_timeout: Duration,
    /// How long a round trip begun in the window may take to finish after it.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
}

/// Opens `count` sessions, at most [`MAX_CONCURRENT_OPENS`] at a time, each complete when its
/// `o` frame arrived. Returns them in index order.
///
/// # Errors
///
/// A session cannot be opened, or not all are open by `deadline`.
async fn open_sessions(
    endpoint: &Arc<Endpoint>,
    transport: Transport,
    count: u32,
    deadline: Instant,
) -> anyhow::Result<Vec<(Sender, Receiver)>> {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_OPENS));
    let mut opening = JoinSet::new();
    for index in 0..count {
        let endpoint = endpoint.clone();
        let permits = permits.clone();
        opening.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = permits.acquire_owned().await;
            let session = client::session_id(index);
            (
                index,
                client::open(&endpoint, transport, &session, None).await,
            )
        });
    }
    let mut sessions: Vec<Option<(Sender, Receiver)>> = (0..count).map(|_| None).collect();
    let mut open = 0u32;
    let mut ticker = time::interval_at(
        Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while open < count {
        tokio::select! {
            joined = opening.join_next() => match joined {
                Some(Ok((index, Ok(session)))) => {
                    sessions[index as usize] = Some(session);
                    open += 1;
                }
                Some(Ok((index, Err(failure)))) => {
                    bail!("session {index} could not open ({open} of {count} open): {failure}")
                }
                Some(Err(e)) => return Err(anyhow!(e).context("session opener failed")),
                None => bail!("openers ended early ({open} of {count} open)"),
            },
            _ = ticker.tick() => eprintln!("  open {open}/{count}"),
            () = time::sleep_until(deadline) => {
                bail!("only {open} of {count} sessions opened in time (--setup-timeout)")
            }
        }
    }
    eprintln!("  open {open}/{count}");
    Ok(sessions.into_iter().flatten().collect())
}

/// Prints one line per second on stderr until aborted: `what` is "delivered" or "echoed".
async fn progress(stats: Arc<Stats>, sessions: u32, what: &'static str) {
    let start = Instant::now();
    let mut ticker = time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut sent, mut delivered) = (0, 0);
    loop {
        ticker.tick().await;
        let now_sent = stats.sent.load(Relaxed);
        let now_delivered = stats.delivered.load(Relaxed);
        let (from, until) = stats.window();
        let now = stats.now_ns();
        let phase = if now < from {
            "warm-up"
        } else if now < until {
            "measure"
        } else {
            "drain"
        };
        let p99 = Latency::from_histogram(&stats.latency())
            .map_or_else(|| "-".to_owned(), |l| format!("{:.3} ms", l.p99));
        eprintln!(
            "[{:>4}s {phase}] sent {}/s  {what} {}/s  p99 {p99}  sessions {}/{sessions}",
            start.elapsed().as_secs(),
            now_sent - sent,
            now_delivered - delivered,
            u64::from(sessions) - stats.closed_subscribers.load(Relaxed),
        );
        (sent, delivered) = (now_sent, now_delivered);
    }
}

/// Closes every sender, bounded by [`CLOSE_TIMEOUT`] in all.
async fn close_all(senders: Vec<Sender>) {
    let _ = time::timeout(CLOSE_TIMEOUT, async {
        for mut sender in senders {
            sender.close().await;
        }
    })
    .await;
}
