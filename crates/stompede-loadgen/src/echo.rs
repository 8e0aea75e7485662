//! The `echo` scenario: N raw WebSocket connections to an echo URL, each sending a timestamped
//! text message, waiting for it to come back, and sending the next: round trips per second and
//! their latency. No STOMP and no SockJS framing: this is the floor under every other figure
//! (stompede's `/echo/websocket` of the SockJS test server against the bare axum echo in
//! `crates/stompede-server/examples/bare_ws_echo.rs`). Over SockJS, `sockjs-echo` does the same.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio::time::{self, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::MaybeTlsStream;

use crate::cli::EchoArgs;
use crate::conn::WsStream;
use crate::cpu::cpu_over_window;
use crate::fanout::CLOSE_TIMEOUT;
use crate::payload::write_timestamp;
use crate::progress::Progress;
use crate::report::{close_reason, EchoEnd, EchoReport, EchoTally, EchoTotals, Run};
use crate::setup::Pacer;
use crate::stats::Stats;

/// Bytes read from the socket at once (tungstenite zero-fills its read buffer; see `conn/mod.rs`).
const READ_BUFFER: usize = 8 * 1024;

/// Runs the scenario and returns its report.
///
/// # Errors
///
/// The URL is invalid, or a connection cannot be opened within `--setup-timeout`. What goes
/// wrong after that is counted in the report.
pub(crate) async fn run(args: EchoArgs, shards: usize) -> anyhow::Result<EchoReport> {
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("invalid URL {}", args.url))?;
    if uri.scheme_str() != Some("ws") {
        anyhow::bail!("echo wants a ws:// URL, not {}", args.url);
    }
    let host = uri
        .host()
        .ok_or_else(|| anyhow!("URL {} has no host", args.url))?;
    let authority = Arc::<str>::from(format!("{host}:{}", uri.port_u16().unwrap_or(80)));
    let stats = Arc::new(Stats::new(shards));
    eprintln!("opening {} connections to {}", args.connections, args.url);

    let deadline = Instant::now() + args.open.setup_timeout;
    let mut pacer = Pacer::new(args.open.connections_per_second);
    let mut opening = JoinSet::new();
    for index in 0..args.connections {
        let permit = pacer.ready().await;
        let (url, authority) = (args.url.clone(), authority.clone());
        opening.spawn(async move {
            let ws = open(&url, &authority).await;
            drop(permit);
            (index, ws)
        });
    }
    let mut sockets: Vec<Option<WsStream>> = (0..args.connections).map(|_| None).collect();
    let mut open_count = 0;
    while open_count < args.connections {
        let joined = time::timeout_at(deadline, opening.join_next())
            .await
            .map_err(|_| {
                anyhow!(
                    "only {open_count} of {} connections opened in time",
                    args.connections
                )
            })?;
        match joined {
            Some(Ok((index, Ok(ws)))) => {
                sockets[index as usize] = Some(ws);
                open_count += 1;
            }
            Some(Ok((index, Err(e)))) => {
                return Err(e.context(format!("connection {index} ({open_count} open)")))
            }
            Some(Err(e)) => return Err(anyhow!(e).context("connection opener failed")),
            None => anyhow::bail!("openers ended early"),
        }
    }
    eprintln!("  open {open_count}/{}", args.connections);

    let window = &args.window;
    let (_, _, measure_until) = stats.start_window(window.warmup, window.duration);
    // A round trip begun in the window may finish this late; later is a stall.
    let give_up = Instant::from_std(stats.instant_at(measure_until)) + window.drain_timeout;
    eprintln!(
        "echoing for {:?} (+{:?} warm-up)",
        window.duration, window.warmup
    );
    let tool_cpu = tokio::spawn(cpu_over_window(stats.clone()));
    let progress = Progress::new(
        stats.clone(),
        "round trips",
        "connections",
        args.connections,
    )
    .spawn();
    let size = args.size as usize;
    let tasks: Vec<_> = sockets
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, ws)| tokio::spawn(echo(index, ws, stats.clone(), size, give_up)))
        .collect();
    let mut totals = EchoTotals::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let tally = task.await.context("connection task failed")?;
        totals.add(&format!("connection {index}"), tally);
    }
    progress.abort();
    Ok(EchoReport {
        scenario: "echo",
        run: Run::finish(
            (args.url.clone(), None),
            args.size,
            window,
            &stats,
            tool_cpu,
            shards,
        )
        .await,
        noun: "connections",
        count: u64::from(args.connections),
        sent: stats.sent.load(Relaxed),
        round_trips: stats.delivered_measured.load(Relaxed),
        totals,
        sockjs: None,
    })
}

/// A WebSocket to `url` (no sub-protocol) over a TCP connection to `authority`.
async fn open(url: &str, authority: &str) -> anyhow::Result<WsStream> {
    let request = url.into_client_request().context("invalid WebSocket URL")?;
    let stream = crate::net::connect(authority, None)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .context("WebSocket handshake failed")?;
    Ok(ws)
}

/// One connection: send, wait for the echo, repeat until the window is over.
async fn echo(
    index: usize,
    mut ws: WsStream,
    stats: Arc<Stats>,
    size: usize,
    give_up: Instant,
) -> EchoTally {
    let shard = index % stats.shards();
    let (_, until) = stats.window();
    let mut tally = EchoTally::default();
    let mut scratch = BytesMut::with_capacity(size);
    let ended = loop {
        let ts = stats.now_ns();
        if ts >= until {
            break None;
        }
        scratch.resize(size, b'x');
        // `--size` is at least 24: room for the digits and a padding byte.
        write_timestamp(&mut scratch, ts);
        let sent = scratch.split().freeze();
        // Digits and `x` are ASCII, so this is always text.
        let Ok(text) = Utf8Bytes::try_from(sent.clone()) else {
            break Some(closed("not-utf8", "not-utf8", "message is not UTF-8"));
        };
        stats.sent.fetch_add(1, Relaxed);
        let measured = stats.is_measured(ts);
        tally.sent_measured += u64::from(measured);
        let round_trip = async {
            ws.send(Message::Text(text))
                .await
                .map_err(|e| closed("send-error", "send-error", &e.to_string()))?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(echo))) => return Ok(echo.as_bytes() == &sent[..]),
                    Some(Ok(Message::Binary(echo))) => return Ok(echo == sent),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        let (key, reason) = frame.map_or_else(
                            || ("no-code".to_owned(), "no-code".to_owned()),
                            |f| {
                                let code = u16::from(f.code);
                                (code.to_string(), close_reason(code, &f.reason))
                            },
                        );
                        let detail = format!("closed by the server ({reason})");
                        return Err(closed(&key, &reason, &detail));
                    }
                    Some(Err(e)) => {
                        return Err(closed("transport-error", "transport-error", &e.to_string()))
                    }
                    None => return Err(closed("eof", "eof", "connection ended")),
                }
            }
        };
        let equal = match time::timeout_at(give_up, round_trip).await {
            Ok(Ok(equal)) => equal,
            Ok(Err(ended)) => break Some(ended),
            Err(_) => break Some(EchoEnd::Stalled),
        };
        let now = stats.now_ns();
        stats.delivered.fetch_add(1, Relaxed);
        tally.echoed_measured += u64::from(measured);
        if !equal {
            tally.mismatches += 1;
            continue;
        }
        if measured {
            stats.delivered_measured.fetch_add(1, Relaxed);
            stats.record_latency(shard, now.saturating_sub(ts) / 1_000);
        }
    };
    match ended {
        Some(ended) => {
            stats.closed_subscribers.fetch_add(1, Relaxed);
            if matches!(ended, EchoEnd::Closed { .. }) {
                stats.closed_connections.fetch_add(1, Relaxed);
            }
            tally.ended = Some(ended);
        }
        None => {
            let _ = time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
        }
    }
    tally
}

/// A connection the server closed (or that broke).
fn closed(key: &str, reason: &str, detail: &str) -> EchoEnd {
    EchoEnd::Closed {
        key: key.to_owned(),
        reason: reason.to_owned(),
        detail: detail.to_owned(),
    }
}
