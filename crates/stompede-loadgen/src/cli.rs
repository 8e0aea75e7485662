//! Command-line arguments.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Load generator for stompede: STOMP 1.2 over WebSocket.
///
/// Every scenario prints a progress line on stderr each second, a human summary on stderr at
/// the end, and one JSON object on stdout for scripts.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Cli {
    /// Runtime worker threads. 1 (the default) runs everything on one current-thread runtime,
    /// which is what a load generator pinned to one core (`taskset -c 1`) wants.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: u16,
    /// The scenario to run.
    #[command(subcommand)]
    pub(crate) scenario: Scenario,
}

/// What load to generate.
#[derive(Debug, Subcommand)]
pub(crate) enum Scenario {
    /// Broadcast: P publishers SEND to one topic that S subscribers receive.
    ///
    /// Each message body starts with its send time, so every delivery yields an end-to-end
    /// latency. Publishing runs for `--warmup` and then `--duration`; only messages sent during
    /// `--duration` (the measured window) are counted in the report.
    Fanout(FanoutArgs),
    /// SockJS broadcast: N sessions on a broadcast prefix, session 0 also sending timestamped
    /// messages that the server sends to every session (session 0 included).
    ///
    /// Plain SockJS (no STOMP), over the websocket or xhr-streaming transport, for comparing
    /// SockJS servers. Reports deliveries per second, loss and end-to-end latency of the
    /// messages sent during `--duration` (after `--warmup`).
    SockjsBroadcast(crate::sockjs::BroadcastArgs),
    /// SockJS echo: N sessions each sending a message, waiting for its echo, and sending the
    /// next; reports round trips per second and their latency.
    SockjsEcho(crate::sockjs::EchoArgs),
}

/// Arguments of the `fanout` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    /// WebSocket URL of the STOMP endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws/websocket")]
    pub(crate) url: String,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) subscribers: u32,
    /// Publisher connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) publishers: u32,
    /// Destination every subscriber subscribes to and every publisher sends to.
    #[arg(long, default_value = "/topic/bench")]
    pub(crate) destination: String,
    /// Message body size in bytes. The body starts with the send timestamp, so at least 24.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(24..))]
    pub(crate) size: u32,
    /// Messages per second across all publishers; 0 sends as fast as the in-flight window allows.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Length of the measured window, after the warm-up (e.g. `10s`, `500ms`, `2m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Publishing time before the measured window; its messages are delivered but not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// New subscriber connections per second; 0 opens them as fast as possible (at most 64
    /// handshakes at a time).
    #[arg(long, default_value_t = 0)]
    pub(crate) connections_per_second: u32,
    /// Bound on messages in flight. Every 100th SEND carries a `receipt` header, and a
    /// publisher pauses while this many of its SENDs are unconfirmed. With `--rate 0`,
    /// publishers also pause while the average subscriber is this many messages behind, so
    /// that max mode measures delivery throughput rather than the server's slow-consumer limit
    /// (a deeper window adds queueing latency, not throughput).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: u32,
    /// How long subscribers may take to connect and get their SUBSCRIBE receipt.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) setup_timeout: Duration,
    /// How long to wait after publishing stops for deliveries still in flight.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
}

/// Parses `1.5s`, `250ms`, `2m`, `100us` or a bare number of seconds.
///
/// # Errors
///
/// A message for clap when the text is not a non-negative number with one of those units.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s or 500ms"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use us, ms, s or m)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        let rows = [
            ("10s", Duration::from_secs(10)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("3", Duration::from_secs(3)),
            ("250us", Duration::from_micros(250)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in rows {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in ["", "s", "10h", "-1s", "1.2.3s", "ten"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn fanout_command_line_parses() {
        let cli = Cli::try_parse_from([
            "stompede-loadgen",
            "fanout",
            "--url",
            "ws://127.0.0.1:18080/ws/websocket",
            "--subscribers",
            "10",
            "--rate",
            "100",
            "--duration",
            "3s",
            "--threads",
            "2",
        ])
        .expect("valid command line");
        assert_eq!(cli.threads, 2);
        let Scenario::Fanout(args) = cli.scenario else {
            panic!("fanout parses as the fanout scenario");
        };
        assert_eq!(args.subscribers, 10);
        assert_eq!(args.duration, Duration::from_secs(3));
        assert_eq!(args.warmup, Duration::from_secs(2));
        assert!(Cli::try_parse_from(["stompede-loadgen", "fanout", "--size", "8"]).is_err());
    }

    #[test]
    fn sockjs_command_lines_parse() {
        let cli = Cli::try_parse_from([
            "stompede-loadgen",
            "sockjs-broadcast",
            "--url",
            "http://127.0.0.1:18081/broadcast",
            "--transport",
            "xhr-streaming",
            "--sessions",
            "10",
            "--rate",
            "0",
        ])
        .expect("valid command line");
        let Scenario::SockjsBroadcast(args) = cli.scenario else {
            panic!("sockjs-broadcast parses as the broadcast scenario");
        };
        assert_eq!(args.sessions, 10);
        assert_eq!(args.transport, crate::sockjs::Transport::XhrStreaming);
        let cli = Cli::try_parse_from(["stompede-loadgen", "sockjs-echo", "--duration", "1s"])
            .expect("valid command line");
        assert!(matches!(cli.scenario, Scenario::SockjsEcho(_)));
        for bad in [
            &["stompede-loadgen", "sockjs-echo", "--transport", "xhr"][..],
            &["stompede-loadgen", "sockjs-broadcast", "--sessions", "0"][..],
            &["stompede-loadgen", "sockjs-broadcast", "--size", "10"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
