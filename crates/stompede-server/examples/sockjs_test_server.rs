//! The SockJS test server every SockJS implementation ships, for the protocol test suite and
//! WebSocket conformance (Autobahn) runs:
//!
//! ```text
//! cargo run --release --example sockjs_test_server -- --bind 127.0.0.1:8081
//! ```
//!
//! Prefixes: `/echo`, `/close` (closes each new session with 3000 "Go away!"),
//! `/disabled_websocket_echo`, `/cookie_needed_echo`, `/amplify` (message `n` → `'x' * 2^n`),
//! `/broadcast` (each message to every open session). Raw WebSocket echo: `/echo/websocket`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use clap::Parser;
use stompede_broker::SessionId;
use stompede_server::handler::{
    HandlerEndpoint, HandlerLimits, Message, MessageHandler, SessionHandle,
};
use stompede_server::sockjs::SockJsOptions;

/// The SockJS protocol test server.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: SocketAddr,
    /// Heartbeat frame after this long without frames.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// Close sessions without a receiving request for this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    disconnect_delay: Duration,
    /// Bytes per streaming response (the protocol tests expect 4096).
    #[arg(long, default_value_t = 4096)]
    stream_bytes_limit: usize,
    /// Largest message a client may send, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message: usize,
    /// `sockjs.min.js` for iframe.html.
    #[arg(long, default_value = "/vendor/sockjs.min.js")]
    client_library_url: String,
}

/// Sends every message back.
struct Echo;

impl MessageHandler for Echo {
    fn on_message(&self, session: &SessionHandle, message: Message) {
        let _ = match message {
            Message::Text(text) => session.send_text(text),
            Message::Binary(data) => session.send_binary(data),
        };
    }
}

/// Closes every new session.
struct Close;

impl MessageHandler for Close {
    fn on_open(&self, session: &SessionHandle) {
        session.close(3000, "Go away!");
    }

    fn on_message(&self, _session: &SessionHandle, _message: Message) {}
}

/// Message `n` → `'x' * 2^n`.
struct Amplify;

impl MessageHandler for Amplify {
    fn on_message(&self, session: &SessionHandle, message: Message) {
        let n = match &message {
            Message::Text(text) => text.trim().parse::<u32>().ok(),
            Message::Binary(_) => None,
        }
        .filter(|n| (1..=18).contains(n))
        .unwrap_or(1);
        let _ = session.send_text("x".repeat(1 << n));
    }
}

/// Each message to every open session.
#[derive(Default)]
struct Broadcast {
    sessions: Mutex<HashMap<SessionId, SessionHandle>>,
}

impl Broadcast {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MessageHandler for Broadcast {
    fn on_open(&self, session: &SessionHandle) {
        self.sessions().insert(session.id(), session.clone());
    }

    fn on_message(&self, _session: &SessionHandle, message: Message) {
        let Message::Text(text) = message else {
            return;
        };
        let sessions: Vec<SessionHandle> = self.sessions().values().cloned().collect();
        for session in sessions {
            let _ = session.send_text(text.clone());
        }
    }

    fn on_close(&self, session: &SessionHandle, _status: &stompede_server::handler::CloseStatus) {
        self.sessions().remove(&session.id());
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = SockJsOptions {
        heartbeat: args.heartbeat,
        disconnect_delay: args.disconnect_delay,
        stream_bytes_limit: args.stream_bytes_limit,
        client_library_url: args.client_library_url.clone(),
        session_cookie_needed: false,
        ..SockJsOptions::default()
    };
    let limits = HandlerLimits {
        max_message: args.max_message,
        // Autobahn echoes messages of up to 16 MiB.
        send_buffer_size_limit: args.max_message.saturating_mul(2),
        ..HandlerLimits::default()
    };
    let serve = |handler: HandlerEndpoint, options: SockJsOptions, path: &str| {
        handler
            .allowed_origins(["*"])
            .limits(limits.clone())
            .sockjs(options)
            .router(path)
    };
    let no_websocket = SockJsOptions {
        websocket_enabled: false,
        ..options.clone()
    };
    let cookie_needed = SockJsOptions {
        session_cookie_needed: true,
        ..options.clone()
    };
    let app = Router::new()
        .merge(serve(HandlerEndpoint::new(Echo), options.clone(), "/echo"))
        .merge(serve(
            HandlerEndpoint::new(Close),
            options.clone(),
            "/close",
        ))
        .merge(serve(
            HandlerEndpoint::new(Echo),
            no_websocket,
            "/disabled_websocket_echo",
        ))
        .merge(serve(
            HandlerEndpoint::new(Echo),
            cookie_needed,
            "/cookie_needed_echo",
        ))
        .merge(serve(
            HandlerEndpoint::new(Amplify),
            options.clone(),
            "/amplify",
        ))
        .merge(serve(
            HandlerEndpoint::new(Broadcast::default()),
            options,
            "/broadcast",
        ));
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "SockJS test server listening");
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    // Frames go out as soon as they are written: with Nagle's algorithm a small streaming
    // chunk waits for the client's delayed ACK (~40 ms), as `Stompede::serve` also avoids.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
        }
    });
    // A test fixture: on a signal it exits at once rather than waiting for streaming requests.
    tokio::select! {
        result = axum::serve(listener, app) => result,
        () = signal() => Ok(()),
    }
}

async fn signal() {
    #[cfg(unix)]
    if let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
