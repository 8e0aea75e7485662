//! The floor under the echo benchmark: a bare axum WebSocket echo at `/echo`, with nothing of
//! stompede in the path (no endpoint admission, no session task, no handler channel), built on
//! the same axum and tungstenite as stompede and configured like its endpoint: `TCP_NODELAY`
//! on every accepted socket and a 4 KiB WebSocket read buffer.
//!
//! ```text
//! cargo run --release --example bare_ws_echo -- --bind 127.0.0.1:8082
//! stompede-loadgen echo --url ws://127.0.0.1:8082/echo
//! ```
//!
//! Compare with `/echo/websocket` of the `sockjs_test_server` example (stompede's raw WebSocket
//! path to a plain handler): the difference is what stompede's session layer costs.

use std::net::SocketAddr;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::any;
use axum::serve::ListenerExt;
use axum::Router;
use clap::Parser;

/// WebSocket read buffer per connection: the size stompede's endpoint uses (`endpoint.rs`),
/// where tungstenite's 128 KiB default cost 40-50% of a busy server's CPU in zero-filling.
const READ_BUFFER: usize = 4 * 1024;

/// A bare WebSocket echo server.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    bind: SocketAddr,
}

/// Upgrades and echoes.
async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(READ_BUFFER).on_upgrade(echo)
}

/// Sends every text and binary message back, one by one, until the client closes.
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        // axum answers pings itself; a close ends the loop when the stream ends.
        let data = matches!(message, Message::Text(_) | Message::Binary(_));
        if data && socket.send(message).await.is_err() {
            return;
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let app = Router::new().route("/echo", any(upgrade));
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    eprintln!(
        "bare WebSocket echo on ws://{}/echo",
        listener.local_addr()?
    );
    // As `Stompede::serve` does: a small echo must not wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("cannot set TCP_NODELAY: {e}");
        }
    });
    tokio::select! {
        result = axum::serve(listener, app) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
