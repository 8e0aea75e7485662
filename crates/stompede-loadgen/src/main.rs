//! `stompede-loadgen`: a load generator for stompede, STOMP 1.2 over WebSocket and SockJS.
//!
//! It owns the client side of a benchmark: opening many connections, publishing timestamped
//! messages at a fixed or maximal rate, timing every delivery end to end (HDR histogram), and
//! reporting throughput, loss and server-initiated closes (slow-consumer 4500 included) as a
//! human summary on stderr and one JSON line on stdout, with the tool's own CPU use so that a
//! tool-bound figure is read as the lower bound it is.
//!
//! It deliberately does not depend on the server crates: it speaks the wire protocol through
//! `stompede-stomp` only, as any other client would. It is meant to run pinned to a core other
//! than the server's, so by default everything runs on one current-thread runtime.
//!
//! # Layout
//!
//! - `cli`: arguments. `cpu`, `memory`: CPU time and resident memory from procfs. `limits`:
//!   the open files limit. `payload`: timestamped, tagged bodies. `stats`: shared counters and
//!   histograms, the measured window and the drain. `progress`: the once-a-second line.
//!   `report`: the final figures, one file per scenario, with the loss account every scenario
//!   reports alike (`report/account.rs`).
//! - `net`: TCP connects from chosen source addresses. `setup`: pacing connection attempts and
//!   waiting for them. `wire`: STOMP frames located in received bytes (the light receive path).
//!   `conn`: one STOMP connection over WebSocket or SockJS (websocket, xhr-streaming,
//!   xhr-polling). `publish`: publishers shared by `fanout` and `queue`.
//! - One file per STOMP scenario: `fanout` (publishers to one topic, many subscribers), `rooms`
//!   (chat rooms), `queue` (work distribution with client acks), `idle` (many quiet sessions).
//!   `echo`: raw WebSocket round trips.
//! - `sockjs`: plain SockJS sessions (broadcast and echo), with the HTTP/1.1 client that the
//!   xhr transports need; its session client also carries STOMP for `conn`.

mod cli;
mod conn;
mod cpu;
mod echo;
mod fanout;
mod idle;
mod limits;
mod memory;
mod net;
mod payload;
mod progress;
mod publish;
mod queue;
mod report;
mod rooms;
mod setup;
mod sockjs;
mod stats;
mod wire;

#[cfg(test)]
mod smoke_tests;

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

use crate::cli::{Cli, Scenario};

/// File descriptors kept free beyond one per connection (stdio, the runtime's own).
const SPARE_FILES: u64 = 32;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line with the causes, not the Debug form and its backtrace: this is for
            // whoever reads the benchmark script's output.
            eprintln!("stompede-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sockets a run holds at most.
fn sockets_needed(scenario: &Scenario) -> u64 {
    match scenario {
        Scenario::Fanout(args) => {
            (u64::from(args.subscribers) + u64::from(args.publishers))
                * args.target.transport.sockets()
        }
        Scenario::Rooms(args) => {
            u64::from(args.rooms) * u64::from(args.users) * args.target.transport.sockets()
        }
        Scenario::Queue(args) => {
            (u64::from(args.producers) + u64::from(args.consumers))
                * args.target.transport.sockets()
        }
        Scenario::Echo(args) => u64::from(args.connections),
        Scenario::Idle(args) => u64::from(args.sessions) * args.target.transport.sockets(),
        // The SockJS scenarios' xhr transports take two connections per session.
        Scenario::SockjsBroadcast(args) => 2 * u64::from(args.sessions),
        Scenario::SockjsEcho(args) => 2 * u64::from(args.sessions),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let connections = sockets_needed(&cli.scenario);
    let open_files = limits::raise_open_files();
    if let Some(limit) = open_files {
        if limit < connections + SPARE_FILES {
            bail!(
                "{connections} connections need about {} open files but RLIMIT_NOFILE allows \
                 {limit}; raise the hard limit (ulimit -Hn)",
                connections + SPARE_FILES
            );
        }
    }

    let threads = usize::from(cli.threads);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;

    let (summary, json) = match cli.scenario {
        Scenario::Fanout(args) => {
            let report = runtime.block_on(fanout::run(args, threads))?;
            (report.summary(), report.to_json())
        }
        Scenario::Rooms(args) => {
            let report = runtime.block_on(rooms::run(args, threads))?;
            (report.summary(), report.to_json())
        }
        Scenario::Queue(args) => {
            let report = runtime.block_on(queue::run(args, threads))?;
            (report.summary(), report.to_json())
        }
        Scenario::Echo(args) => {
            let report = runtime.block_on(echo::run(args, threads))?;
            (report.summary(), report.to_json())
        }
        Scenario::Idle(args) => {
            let report = runtime.block_on(idle::run(args, threads))?;
            (report.summary(), report.to_json())
        }
        Scenario::SockjsBroadcast(args) => {
            let report = runtime.block_on(sockjs::run_broadcast(args, threads))?;
            (report.summary(), report.to_json())
        }
        Scenario::SockjsEcho(args) => {
            let report = runtime.block_on(sockjs::run_echo(args, threads))?;
            (report.summary(), report.to_json())
        }
    };
    eprint!("{summary}");
    println!("{json}");
    // Connections still closing are not worth waiting for.
    runtime.shutdown_background();
    Ok(())
}
