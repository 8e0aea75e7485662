//! `stompede-loadgen`: a load generator for stompede, STOMP 1.2 over WebSocket.
//!
//! It owns the client side of a benchmark: opening many connections, publishing timestamped
//! messages at a fixed or maximal rate, timing every delivery end to end (HDR histogram), and
//! reporting throughput, loss and server-initiated closes (slow-consumer 4500 included) as a
//! human summary on stderr and one JSON line on stdout.
//!
//! It deliberately does not depend on the server crates: it speaks the wire protocol through
//! `stompede-stomp` only, as any other client would. It is meant to run pinned to a core other
//! than the server's, so by default everything runs on one current-thread runtime.
//!
//! # Layout
//!
//! - `cli`: arguments. `cpu`: the tool's own CPU time. `conn`: one STOMP connection over
//!   WebSocket. `payload`: timestamped bodies. `stats`: shared counters and histograms.
//!   `report`: the final figures.
//! - One file per scenario: `fanout` (publishers to one topic, many subscribers).
//! - `sockjs`: plain SockJS sessions (broadcast and echo), with the HTTP/1.1 client that the
//!   xhr-streaming transport needs.

mod cli;
mod conn;
mod cpu;
mod fanout;
mod limits;
mod payload;
mod report;
mod sockjs;
mod stats;

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

fn run(cli: Cli) -> anyhow::Result<()> {
    let connections = match &cli.scenario {
        Scenario::Fanout(args) => u64::from(args.subscribers) + u64::from(args.publishers),
        // xhr-streaming takes two connections per session (receiving and sending).
        Scenario::SockjsBroadcast(args) => 2 * u64::from(args.sessions),
        Scenario::SockjsEcho(args) => 2 * u64::from(args.sessions),
    };
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

    match cli.scenario {
        Scenario::Fanout(args) => {
            let report = runtime.block_on(fanout::run(args, threads))?;
            eprint!("{}", report.summary());
            println!("{}", report.to_json());
        }
        Scenario::SockjsBroadcast(args) => {
            let report = runtime.block_on(sockjs::run_broadcast(args, threads))?;
            eprint!("{}", report.summary());
            println!("{}", report.to_json());
        }
        Scenario::SockjsEcho(args) => {
            let report = runtime.block_on(sockjs::run_echo(args, threads))?;
            eprint!("{}", report.summary());
            println!("{}", report.to_json());
        }
    }
    // Connections still closing are not worth waiting for.
    runtime.shutdown_background();
    Ok(())
}
