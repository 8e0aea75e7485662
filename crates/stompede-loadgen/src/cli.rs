//! Command-line arguments.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::conn::Transport;
use crate::net::SourceAddrs;
use crate::payload::MIN_TAGGED_SIZE;
use crate::sockjs::Transport as SockjsTransport;

/// Load generator for stompede: STOMP 1.2 over WebSocket and SockJS, plain SockJS, and raw
/// WebSocket echo.
///
/// Every scenario prints a progress line on stderr each second, a human summary on stderr at
/// the end, and one JSON object on stdout for scripts. Losses are always reported, and so is
/// the tool's own CPU use: when it nears a full core, throughput figures are lower bounds.
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
    /// Chat rooms: R rooms × U users; every user subscribes to `/topic/room.<r>` and SENDs to
    /// it at `--rate` messages per second. Each message is expected by all U users of its room,
    /// the sender's own copy included.
    Rooms(RoomsArgs),
    /// Work distribution: P producers SEND to one queue; C consumers subscribe with
    /// `ack:client-individual` and a prefetch header and ACK every message. Reports consumed
    /// messages per second, latency, loss (produced − consumed) and duplicates.
    Queue(QueueArgs),
    /// Raw WebSocket echo: N connections, each sending a message, waiting for its echo and
    /// sending the next (no STOMP, no SockJS): round trips per second and their latency.
    Echo(EchoArgs),
    /// Idle sessions: open N STOMP sessions (CONNECT + one SUBSCRIBE), hold them, report how
    /// many opened or failed and, with `--server-pid`, the server's memory per session.
    Idle(IdleArgs),
    /// SockJS broadcast: N sessions on a broadcast prefix, session 0 also sending timestamped
    /// messages that the server sends to every session (session 0 included).
    ///
    /// Plain SockJS (no STOMP), over the websocket or xhr-streaming transport, for comparing
    /// SockJS servers. Reports deliveries per second, loss and end-to-end latency of the
    /// messages sent during `--duration` (after `--warmup`).
    SockjsBroadcast(SockjsBroadcastArgs),
    /// SockJS echo: N sessions each sending a message, waiting for its echo, and sending the
    /// next; reports round trips per second and their latency.
    SockjsEcho(SockjsEchoArgs),
}

/// Where the STOMP scenarios connect, and how.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// URL of the STOMP endpoint: `ws://…/ws/websocket` for `--transport websocket` (the
    /// default), the SockJS endpoint `http://…/ws` for the sockjs-* transports.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// How STOMP reaches the server: a raw WebSocket, or SockJS over its websocket,
    /// xhr-streaming or xhr-polling transport.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub(crate) transport: Transport,
}

/// Arguments of the `fanout` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
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
    /// Bound on messages in flight. Every 100th SEND carries a `receipt` header, and a
    /// publisher pauses while this many of its SENDs are unconfirmed. With `--rate 0`,
    /// publishers also pause while the average subscriber is this many messages behind, so
    /// that max mode measures delivery throughput rather than the server's slow-consumer limit
    /// (a deeper window adds queueing latency, not throughput).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: u32,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
    #[command(flatten)]
    pub(crate) open: OpenArgs,
}

/// Arguments of the `rooms` scenario.
#[derive(Debug, Clone, Args)]
// A thousand users take longer to join than a few subscribers.
#[command(mut_arg("setup_timeout", |a| a.default_value("60s")))]
pub(crate) struct RoomsArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Chat rooms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rooms: u32,
    /// Users per room (each one connection that subscribes and sends).
    #[arg(long, alias = "room-size", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) users: u32,
    /// Messages per second each user sends; 0 sends as fast as `--max-in-flight` allows.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rate: f64,
    /// Message body size in bytes (it starts with the send time and the sender's tag).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(i64::from(MIN_TAGGED_SIZE)..))]
    pub(crate) size: u32,
    /// Topic prefix: room `r` is `<prefix><r>`.
    #[arg(long, default_value = "/topic/room.")]
    pub(crate) room_prefix: String,
    /// With `--rate 0`: most of a user's own messages not yet delivered back to it.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: u32,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
    #[command(flatten)]
    pub(crate) open: OpenArgs,
}

/// Arguments of the `queue` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct QueueArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Producer connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) producers: u32,
    /// Consumer connections.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) consumers: u32,
    /// The queue.
    #[arg(long, default_value = "/queue/work")]
    pub(crate) destination: String,
    /// Messages per second across all producers; 0 sends as fast as `--max-in-flight` allows.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Message body size in bytes (it starts with the send time and the producer's tag).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(i64::from(MIN_TAGGED_SIZE)..))]
    pub(crate) size: u32,
    /// Unacknowledged messages per consumer, sent as the `--prefetch-header` header of
    /// SUBSCRIBE (0: not sent). stompede takes its limit from `broker.max_unacked` instead.
    #[arg(long, default_value_t = 100)]
    pub(crate) prefetch: u32,
    /// Name of the prefetch header (RabbitMQ's `prefetch-count` by default).
    #[arg(long, default_value = "prefetch-count")]
    pub(crate) prefetch_header: String,
    /// Bound on work in flight: every 100th SEND asks for a receipt and a producer pauses
    /// while this many SENDs are unconfirmed; with `--rate 0`, producers also pause while
    /// this many messages are produced and not yet consumed.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: u32,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
    #[command(flatten)]
    pub(crate) open: OpenArgs,
}

/// Arguments of the `echo` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct EchoArgs {
    /// WebSocket URL that echoes every message: `/echo/websocket` of the sockjs_test_server
    /// example, or `/echo` of the bare_ws_echo example.
    #[arg(long, default_value = "ws://127.0.0.1:8081/echo/websocket")]
    pub(crate) url: String,
    /// Connections, each with one message in flight at a time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connections: u32,
    /// Message size in bytes (at least 24: it starts with its send timestamp).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(24..))]
    pub(crate) size: u32,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
    #[command(flatten)]
    pub(crate) open: OpenArgs,
}

/// Arguments of the `idle` scenario.
#[derive(Debug, Clone, Args)]
// Tens of thousands of sessions take minutes to open; those not open by then count as failed.
#[command(mut_arg("setup_timeout", |a| a.default_value("300s")))]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Sessions to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sessions: u32,
    /// How long to hold them once all are open (or failed).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) hold: Duration,
    /// Heart-beat asked for both ways in CONNECT (`heart-beat:h,h`); 0 turns them off.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub(crate) heartbeat: Duration,
    /// The destination every session subscribes to (nobody publishes to it).
    #[arg(long, default_value = "/topic/idle")]
    pub(crate) destination: String,
    /// Source addresses to bind, round robin: `A-B` (an IPv4 range), `none`, or `auto`
    /// (127.0.0.2-127.0.0.254 when the target is a loopback address, so that more sessions
    /// fit than one address has ephemeral ports; else none).
    #[arg(long, default_value = "auto")]
    pub(crate) source_addrs: SourceAddrs,
    /// The server's PID: its resident memory (/proc/PID/status VmRSS) is read before the first
    /// session, once all are open, and at the end of the hold.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    #[command(flatten)]
    pub(crate) open: OpenArgs,
}

/// The measured window, shared by every scenario that sends: a warm-up whose messages are
/// delivered but not counted, the window, and a drain for what is still in flight after it.
#[derive(Debug, Clone, Args)]
pub(crate) struct WindowArgs {
    /// Length of the measured window, after the warm-up (e.g. `10s`, `500ms`, `2m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Sending before the measured window; its messages are delivered but not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// How long to wait after sending stops for deliveries (or a round trip begun in the
    /// window) still in flight; what has not arrived by then is reported as in flight.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
}

/// How connections are opened before the run.
#[derive(Debug, Clone, Args)]
pub(crate) struct OpenArgs {
    /// New connections per second; 0 opens them as fast as possible (at most 64 handshakes
    /// at a time).
    #[arg(long, default_value_t = 0)]
    pub(crate) connections_per_second: u32,
    /// How long the connections may take to open (and subscribe).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) setup_timeout: Duration,
}

/// Arguments of the `sockjs-broadcast` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct SockjsBroadcastArgs {
    /// SockJS endpoint whose every message goes to every open session (`/broadcast` of
    /// stompede's sockjs_test_server example and of benches/sockjs-node).
    #[arg(long, default_value = "http://127.0.0.1:8081/broadcast")]
    pub(crate) url: String,
    /// Transport of every session.
    #[arg(long, value_enum, default_value_t = SockjsTransport::Websocket)]
    pub(crate) transport: SockjsTransport,
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
    /// With `--rate 0`: the sender pauses while the average session is this many messages
    /// behind it, so that max mode measures delivery rather than how much a server buffers
    /// (a deeper window adds queueing latency, not throughput).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: u32,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
    /// How long the sessions may take to open (`o` frame received).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) setup_timeout: Duration,
}

/// Arguments of the `sockjs-echo` scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct SockjsEchoArgs {
    /// SockJS endpoint that sends every message back to its sender.
    #[arg(long, default_value = "http://127.0.0.1:8081/echo")]
    pub(crate) url: String,
    /// Transport of every session.
    #[arg(long, value_enum, default_value_t = SockjsTransport::Websocket)]
    pub(crate) transport: SockjsTransport,
    /// Sessions, each with one message in flight at a time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sessions: u32,
    /// Message size in bytes (at least 24: it starts with its send timestamp).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(24..))]
    pub(crate) size: u32,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
    /// How long the sessions may take to open.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) setup_timeout: Duration,
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
        assert_eq!(args.window.duration, Duration::from_secs(3));
        assert_eq!(args.window.warmup, Duration::from_secs(2));
        assert_eq!(args.window.drain_timeout, Duration::from_secs(5));
        assert_eq!(args.open.setup_timeout, Duration::from_secs(30));
        assert_eq!(args.target.transport, Transport::Websocket);
        assert!(Cli::try_parse_from(["stompede-loadgen", "fanout", "--size", "8"]).is_err());
    }

    #[test]
    fn stomp_scenarios_take_every_transport() {
        for transport in [
            "websocket",
            "sockjs-websocket",
            "sockjs-xhr-streaming",
            "sockjs-xhr-polling",
        ] {
            for scenario in ["fanout", "rooms", "queue", "idle"] {
                let cli =
                    Cli::try_parse_from(["stompede-loadgen", scenario, "--transport", transport])
                        .unwrap_or_else(|e| panic!("{scenario} {transport}: {e}"));
                let target = match cli.scenario {
                    Scenario::Fanout(a) => a.target,
                    Scenario::Rooms(a) => a.target,
                    Scenario::Queue(a) => a.target,
                    Scenario::Idle(a) => a.target,
                    other => panic!("{other:?}"),
                };
                assert_eq!(target.transport.as_str(), transport);
            }
        }
        assert!(Cli::try_parse_from(["stompede-loadgen", "rooms", "--transport", "xhr"]).is_err());
    }

    #[test]
    fn new_scenarios_parse_and_check_their_bounds() {
        let cli = Cli::try_parse_from([
            "stompede-loadgen",
            "rooms",
            "--rooms",
            "3",
            "--users",
            "4",
            "--rate",
            "0.5",
        ])
        .expect("valid rooms");
        let Scenario::Rooms(rooms) = cli.scenario else {
            panic!("rooms");
        };
        assert_eq!((rooms.rooms, rooms.users, rooms.rate), (3, 4, 0.5));
        assert_eq!(rooms.open.setup_timeout, Duration::from_secs(60));
        let cli = Cli::try_parse_from(["stompede-loadgen", "rooms", "--room-size", "7"])
            .expect("--room-size is --users");
        assert!(matches!(
            cli.scenario,
            Scenario::Rooms(RoomsArgs { users: 7, .. })
        ));
        let cli = Cli::try_parse_from([
            "stompede-loadgen",
            "queue",
            "--producers",
            "2",
            "--consumers",
            "5",
            "--prefetch",
            "0",
        ])
        .expect("valid queue");
        let Scenario::Queue(queue) = cli.scenario else {
            panic!("queue");
        };
        assert_eq!(
            (queue.producers, queue.consumers, queue.prefetch),
            (2, 5, 0)
        );
        assert_eq!(queue.prefetch_header, "prefetch-count");
        let cli = Cli::try_parse_from([
            "stompede-loadgen",
            "idle",
            "--sessions",
            "20000",
            "--hold",
            "1m",
            "--heartbeat",
            "30s",
            "--source-addrs",
            "127.0.0.2-127.0.0.100",
            "--server-pid",
            "1234",
        ])
        .expect("valid idle");
        let Scenario::Idle(idle) = cli.scenario else {
            panic!("idle");
        };
        assert_eq!(idle.sessions, 20_000);
        assert_eq!(idle.hold, Duration::from_secs(60));
        assert_eq!(idle.server_pid, Some(1234));
        assert_eq!(idle.open.setup_timeout, Duration::from_secs(300));
        assert_eq!(idle.source_addrs.to_string(), "127.0.0.2-127.0.0.100");
        let cli = Cli::try_parse_from(["stompede-loadgen", "echo", "--connections", "7"])
            .expect("valid echo");
        assert!(matches!(
            cli.scenario,
            Scenario::Echo(EchoArgs { connections: 7, .. })
        ));
        for bad in [
            &["stompede-loadgen", "rooms", "--users", "0"][..],
            &["stompede-loadgen", "rooms", "--size", "55"][..],
            &["stompede-loadgen", "queue", "--size", "40"][..],
            &["stompede-loadgen", "queue", "--consumers", "0"][..],
            &[
                "stompede-loadgen",
                "idle",
                "--source-addrs",
                "10.0.0.9-10.0.0.1",
            ][..],
            &["stompede-loadgen", "idle", "--server-pid", "-1"][..],
            &["stompede-loadgen", "echo", "--size", "23"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
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
