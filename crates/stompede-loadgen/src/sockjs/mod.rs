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
//! - `broadcast`, `echo`: the scenarios (their arguments are in `crate::cli`, their figures in
//!   `crate::report`).

mod broadcast;
mod chunked;
pub(crate) mod client;
mod echo;
pub(crate) mod frame;
mod http;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::ValueEnum;
use tokio::task::JoinSet;
use tokio::time::{self, Instant};

use crate::setup::Pacer;

pub(crate) use broadcast::run as run_broadcast;
pub(crate) use echo::run as run_echo;

use client::{Endpoint, Receiver, Sender};

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

/// Opens `count` sessions, paced like the STOMP scenarios' connections ([`Pacer`]), each
/// complete when its `o` frame arrived. Returns them in index order.
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
    let mut pacer = Pacer::new(0);
    let mut opening = JoinSet::new();
    for index in 0..count {
        let endpoint = endpoint.clone();
        // A session stuck opening holds its permit: the deadline bounds this wait too.
        let Ok(permit) = time::timeout_at(deadline, pacer.ready()).await else {
            bail!("only {index} of {count} sessions started opening in time (--setup-timeout)")
        };
        opening.spawn(async move {
            let _permit = permit;
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

/// Closes every sender, bounded by [`CLOSE_TIMEOUT`] in all.
async fn close_all(senders: Vec<Sender>) {
    let _ = time::timeout(CLOSE_TIMEOUT, async {
        for mut sender in senders {
            sender.close().await;
        }
    })
    .await;
}
