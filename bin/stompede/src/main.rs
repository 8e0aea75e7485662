//! The stompede binary: arguments, config, tracing, signals. Everything else lives in the crates.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use stompede_server::{Config, Stompede};
use tokio_util::sync::CancellationToken;

/// A real-time messaging server: STOMP over WebSocket with an embedded broker.
///
/// By default it serves the chat demo on the embedded in-memory broker: clients connect to
/// ws://127.0.0.1:8080/ws/websocket (subprotocols v10.stomp, v11.stomp, v12.stomp), subscribe to
/// /topic/chat/room/{roomId} and send {type, roomId, sender, message} to /app/chat/message.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM.
    ///
    /// Configuration comes from the TOML file (every option is listed, with its default, by
    /// `stompede example-config`), then from environment variables named
    /// STOMPEDE__SECTION__KEY (e.g. STOMPEDE__HEARTBEAT__SEND=5s), then from flags.
    /// Log verbosity follows RUST_LOG (default: info).
    Serve {
        /// TOML configuration file.
        #[arg(long, short, env = "STOMPEDE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, overriding `server.bind` (default 127.0.0.1:8080).
        #[arg(long, short)]
        bind: Option<SocketAddr>,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "STOMPEDE_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Check a configuration file and the environment overrides, then exit.
    CheckConfig {
        /// TOML configuration file.
        #[arg(long, short, env = "STOMPEDE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print a configuration file with every option, its default and its meaning.
    ExampleConfig,
    /// Read a password from standard input (one line) and print its argon2id hash, the PHC
    /// string that `[[auth.users]] password` takes.
    ///
    /// E.g. `stompede hash-password < password.txt`; typed at a terminal, the password shows.
    HashPassword,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Serve {
            config,
            bind,
            log_format,
        } => {
            init_tracing(log_format);
            let mut config = Config::load(config.as_deref(), std::env::vars())?;
            if let Some(bind) = bind {
                config.server.bind = bind;
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(serve(config))
        }
        Command::CheckConfig { config } => {
            Config::load(config.as_deref(), std::env::vars())?;
            println!("configuration is valid");
            Ok(())
        }
        Command::ExampleConfig => {
            print!("{}", include_str!("../../../config/example.toml"));
            Ok(())
        }
        Command::HashPassword => {
            let password = read_password(std::io::stdin().lock())?;
            println!("{}", stompede_server::auth::hash_password(&password)?);
            Ok(())
        }
    }
}

/// The first line of `input`, without its line ending.
fn read_password(mut input: impl std::io::BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(password.to_owned())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Each session holds a socket; the usual soft limit of 1024 would refuse connections long
    // before `server.max_connections`.
    let open_files = raise_open_files();
    if let Some(limit) = open_files {
        let wanted = config.server.max_connections as u64 + 64;
        if limit < wanted {
            tracing::warn!(
                open_files = limit,
                max_connections = config.server.max_connections,
                "open-files limit is below server.max_connections; accepts will fail past it"
            );
        }
    }
    let bind = config.server.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let local = listener.local_addr()?;
    let endpoint = config.endpoint.path.clone();
    let server = Stompede::new(config);
    tokio::spawn(cancel_on_signal(server.shutdown_token()));
    tracing::info!(
        addr = %local,
        websocket = %format!("ws://{local}{endpoint}/websocket"),
        "listening"
    );
    server.serve(listener).await.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force
/// (`None`: unlimited or unknown).
#[cfg(unix)]
fn raise_open_files() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    // Linux caps an "unlimited" hard limit at fs.nr_open (1 Mi by default).
    let target = limit.maximum.unwrap_or(1 << 20);
    match limit.current {
        Some(current) if current < target => {
            let raised = Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            };
            Some(if setrlimit(Resource::Nofile, raised).is_ok() {
                target
            } else {
                current
            })
        }
        current => current,
    }
}

#[cfg(not(unix))]
fn raise_open_files() -> Option<u64> {
    None
}

async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(cause = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received, closing sessions");
    token.cancel();
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::read_password;

    #[test]
    fn password_is_the_first_line_without_its_ending() {
        let read = |input: &str| read_password(input.as_bytes()).ok();
        assert_eq!(read("hunter2\n").as_deref(), Some("hunter2"));
        assert_eq!(read("hunter2\r\n").as_deref(), Some("hunter2"));
        assert_eq!(read("hunter2").as_deref(), Some("hunter2"));
        assert_eq!(read(" spaced \nsecond line\n").as_deref(), Some(" spaced "));
        assert_eq!(read(""), None);
        assert_eq!(read("\n"), None);
        assert_eq!(read("\r\n"), None);
    }
}
