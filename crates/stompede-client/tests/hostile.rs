//! Misbehaving servers on real sockets: a scripted WebSocket peer and scripted SockJS HTTP
//! endpoints send what no correct server sends. The client must turn each into a typed
//! error (and a closed client), never a panic or a hang.

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use common::{wait_state, WAIT};
use futures_util::{SinkExt, StreamExt};
use stompede_client::{
    Client, ClientConfig, Error, FrameError, Limits, ProtocolError, SockJsTransport, State,
    SubscribeOptions, Transport, TransportError,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Peer = WebSocketStream<TcpStream>;

/// A one-connection WebSocket server running `script`; returns its URL.
async fn ws_server<F, Fut>(script: F) -> String
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        script(ws).await;
    });
    format!("ws://{addr}/ws")
}

/// Reads the client's CONNECT and answers `reply`.
async fn handshake(ws: &mut Peer, reply: &str) {
    let connect = ws.next().await;
    assert!(
        matches!(&connect, Some(Ok(Message::Text(t))) if t.starts_with("CONNECT\n")),
        "{connect:?}"
    );
    ws.send(Message::text(reply)).await.expect("send");
}

const CONNECTED: &str = "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0";

/// The scripted peer answers no subprotocol, so the client offers none.
fn config(url: &str) -> ClientConfig {
    let mut config = ClientConfig::new(url)
        .heart_beat(Duration::ZERO, Duration::ZERO)
        .connect_timeout(WAIT)
        .receipt_timeout(WAIT);
    config.subprotocols.clear();
    config
}

/// Connects, then waits for the client to close on its own; returns why.
async fn closed_because(config: ClientConfig) -> Error {
    let client = Client::connect(config).await.expect("connect");
    let state = wait_state(&client, |s| matches!(s, State::Closed { .. })).await;
    match state {
        State::Closed { cause: Some(cause) } => cause,
        other => panic!("closed without a cause: {other:?}"),
    }
}

#[tokio::test]
async fn unknown_command_after_connected() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        let _ = ws.send(Message::text("HELLO\n\n\0")).await;
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let cause = closed_because(config(&url)).await;
    assert!(
        matches!(
            cause,
            Error::Protocol(ProtocolError::Decode(
                stompede_stomp::DecodeError::UnknownCommand { .. }
            ))
        ),
        "{cause:?}"
    );
}

#[tokio::test]
async fn client_commands_from_the_server_are_refused() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        let _ = ws.send(Message::text("SEND\ndestination:/x\n\n\0")).await;
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let cause = closed_because(config(&url)).await;
    assert!(
        matches!(
            cause,
            Error::Protocol(ProtocolError::UnexpectedCommand(
                stompede_stomp::Command::Send
            ))
        ),
        "{cause:?}"
    );
}

#[tokio::test]
async fn receipt_without_id() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        let _ = ws.send(Message::text("RECEIPT\n\n\0")).await;
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let cause = closed_because(config(&url)).await;
    assert!(
        matches!(
            cause,
            Error::Protocol(ProtocolError::MissingHeader {
                header: "receipt-id",
                ..
            })
        ),
        "{cause:?}"
    );
}

#[tokio::test]
async fn silent_server_misses_its_heart_beats() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, "CONNECTED\nversion:1.2\nheart-beat:100,0\n\n\0").await;
        // Promised a heart-beat every 100 ms; sends nothing.
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let cause =
        closed_because(config(&url).heart_beat(Duration::ZERO, Duration::from_millis(100))).await;
    assert!(
        matches!(cause, Error::HeartBeatTimeout(d) if d == Duration::from_millis(200)),
        "{cause:?}"
    );
}

#[tokio::test]
async fn an_oversized_frame_in_pieces_is_refused() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        let _ = ws
            .send(Message::text(
                "MESSAGE\ndestination:/x\nmessage-id:1\nsubscription:s\n\n",
            ))
            .await;
        for _ in 0..10 {
            if ws.send(Message::text("x".repeat(500))).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let mut config = config(&url);
    config.limits = Limits {
        max_frame_len: 2048,
        ..Limits::default()
    };
    let cause = closed_because(config).await;
    assert!(
        matches!(
            cause,
            Error::Protocol(ProtocolError::Decode(
                stompede_stomp::DecodeError::FrameTooLarge { limit: 2048 }
            ))
        ),
        "{cause:?}"
    );
}

#[tokio::test]
async fn frames_split_anywhere_are_reassembled() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        // The SUBSCRIBE (with its receipt) comes next.
        let Some(Ok(Message::Text(subscribe))) = ws.next().await else {
            return;
        };
        let receipt = subscribe
            .lines()
            .find_map(|l| l.strip_prefix("receipt:"))
            .unwrap_or_default()
            .to_owned();
        let id = subscribe
            .lines()
            .find_map(|l| l.strip_prefix("id:"))
            .unwrap_or_default()
            .to_owned();
        let wire = format!(
            "RECEIPT\nreceipt-id:{receipt}\n\n\0\n\nMESSAGE\ndestination:/x\nmessage-id:1\nsubscription:{id}\ncontent-length:5\n\na\0b\u{e9}\0MESSAGE\ndestination:/x\nmessage-id:2\nsubscription:{id}\n\nsecond\0"
        );
        // One byte per WebSocket message (binary, so a split character is no problem).
        for b in wire.as_bytes() {
            if ws.send(Message::binary(vec![*b])).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let client = Client::connect(config(&url)).await.expect("connect");
    let mut sub = client
        .subscribe("/x", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let first = common::next(&mut sub).await;
    assert_eq!(first.body(), &Bytes::from_static("a\0bé".as_bytes()));
    let second = common::next(&mut sub).await;
    assert_eq!(second.body_text(), Some("second"));
}

#[tokio::test]
async fn wrong_first_frame_and_refused_connect() {
    let url = ws_server(|mut ws| async move {
        handshake(
            &mut ws,
            "MESSAGE\ndestination:/x\nmessage-id:1\nsubscription:s\n\n\0",
        )
        .await;
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let result = Client::connect(config(&url)).await;
    assert!(
        matches!(
            result,
            Err(Error::Protocol(ProtocolError::ExpectedConnected(
                stompede_stomp::Command::Message
            )))
        ),
        "{result:?}"
    );

    let url = ws_server(|mut ws| async move {
        handshake(
            &mut ws,
            "ERROR\nmessage:access refused\ncontent-type:text/plain\n\nbad passcode\0",
        )
        .await;
    })
    .await;
    match Client::connect(config(&url)).await {
        Err(Error::Server(e)) => {
            assert_eq!(e.message(), "access refused");
            assert_eq!(e.body_text(), Some("bad passcode"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn no_answer_to_connect_times_out() {
    let url = ws_server(|mut ws| async move {
        let _ = ws.next().await;
        tokio::time::sleep(WAIT).await;
    })
    .await;
    let result = Client::connect(config(&url).connect_timeout(Duration::from_millis(300))).await;
    assert!(
        matches!(result, Err(Error::ConnectTimeout(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_server_ignoring_the_offered_subprotocols_is_refused() {
    let url = ws_server(|_ws| async move {}).await;
    let mut config = config(&url);
    config.subprotocols = vec!["v12.stomp".to_owned()];
    let result = Client::connect(config).await;
    assert!(
        matches!(result, Err(Error::Transport(TransportError::WebSocket(_)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_dropped_socket_closes_the_client() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        // Half a frame, then the TCP connection goes away without a close frame.
        let _ = ws.send(Message::text("MESSAGE\ndestination:/x\n")).await;
    })
    .await;
    let cause = closed_because(config(&url)).await;
    assert!(matches!(cause, Error::Transport(_)), "{cause:?}");
}

#[tokio::test]
async fn pending_receipts_fail_when_the_connection_drops() {
    let url = ws_server(|mut ws| async move {
        handshake(&mut ws, CONNECTED).await;
        // Takes the SEND, never answers its receipt, and goes away.
        let _ = ws.next().await;
        let _ = ws.close(None).await;
    })
    .await;
    let client = Client::connect(
        config(&url).reconnect(
            stompede_client::Backoff::new(Duration::from_millis(10), Duration::from_millis(10))
                .max_attempts(1),
        ),
    )
    .await
    .expect("connect");
    let result = client.send("/queue/a", "x").receipt().await;
    match result {
        Err(Error::ConnectionLost(cause)) => {
            assert!(matches!(*cause, Error::Transport(_)), "{cause:?}")
        }
        other => panic!("expected a lost connection, got {other:?}"),
    }
    // One attempt, refused: the client gives up and says why.
    let state = wait_state(&client, |s| matches!(s, State::Closed { .. })).await;
    assert!(
        matches!(
            state,
            State::Closed {
                cause: Some(Error::Transport(_))
            }
        ),
        "{state:?}"
    );
}

// --- SockJS ---------------------------------------------------------------------------

/// A scripted SockJS endpoint at `/ws`: `/info` answers `info`; the receiving transport
/// answers each request with the next of `responses` (then `c[3000,"done"]`; [`SLOW`] is a
/// heartbeat after a long wait); `xhr_send`
/// answers `send_status`.
async fn sockjs_server(info: &str, responses: Vec<String>, send_status: StatusCode) -> String {
    let info = info.to_owned();
    let responses = Arc::new(Mutex::new(responses.into_iter()));
    let receive = move || {
        let responses = Arc::clone(&responses);
        async move {
            let next = responses
                .lock()
                .map(|mut r| r.next())
                .unwrap_or_default()
                .unwrap_or_else(|| "c[3000,\"done\"]\n".to_owned());
            if next == SLOW {
                tokio::time::sleep(WAIT).await;
                return Body::from("h\n");
            }
            Body::from(next)
        }
    };
    let app = Router::new()
        .route("/ws/info", get(move || async move { info }))
        .route(
            "/ws/{server}/{session}/xhr_streaming",
            post(receive.clone()),
        )
        .route("/ws/{server}/{session}/xhr", post(receive))
        .route(
            "/ws/{server}/{session}/xhr_send",
            post(move || async move { send_status.into_response() }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/ws")
}

/// A response that comes late (a poll with nothing to say).
const SLOW: &str = "slow";
const INFO: &str = r#"{"websocket":false,"cookie_needed":false,"origins":["*:*"],"entropy":1}"#;
const CONNECTED_FRAME: &str = r#"a["CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\u0000"]"#;

fn sockjs_config(url: &str, transport: SockJsTransport) -> ClientConfig {
    config(url).transport(Transport::SockJs(transport))
}

#[tokio::test]
async fn sockjs_bad_info_is_refused() {
    for info in ["not json", "[]", r#"{"websocket":"yes"}"#] {
        let url = sockjs_server(info, Vec::new(), StatusCode::NO_CONTENT).await;
        let result = Client::connect(sockjs_config(&url, SockJsTransport::XhrPolling)).await;
        assert!(
            matches!(result, Err(Error::Transport(TransportError::Info(_)))),
            "{info}: {result:?}"
        );
    }
}

#[tokio::test]
async fn sockjs_broken_frames_close_the_client() {
    let cases: Vec<(SockJsTransport, Vec<String>, FrameError)> = vec![
        (
            SockJsTransport::XhrStreaming,
            vec![format!(
                "{}\no\n{CONNECTED_FRAME}\na[broken\n",
                "h".repeat(2048)
            )],
            FrameError::BadArray,
        ),
        (
            SockJsTransport::XhrPolling,
            vec![
                "o\n".to_owned(),
                format!("{CONNECTED_FRAME}\n"),
                "z\n".to_owned(),
            ],
            FrameError::UnknownType('z'),
        ),
        (
            SockJsTransport::XhrPolling,
            vec![
                "o\n".to_owned(),
                format!("{CONNECTED_FRAME}\n"),
                "o\n".to_owned(),
            ],
            FrameError::UnexpectedOpen,
        ),
        (
            SockJsTransport::XhrPolling,
            vec![
                "o\n".to_owned(),
                format!("{CONNECTED_FRAME}\n"),
                String::new(),
            ],
            FrameError::Truncated,
        ),
        (
            SockJsTransport::XhrStreaming,
            vec![format!("o\n{CONNECTED_FRAME}\na[\"{}", "x".repeat(5000))],
            FrameError::TooLong { limit: 4096 },
        ),
        (
            SockJsTransport::XhrPolling,
            vec![
                "o\n".to_owned(),
                format!("{CONNECTED_FRAME}\n"),
                "a[\"x\"]".to_owned(),
            ],
            FrameError::Truncated,
        ),
    ];
    for (transport, responses, want) in cases {
        let url = sockjs_server(INFO, responses, StatusCode::NO_CONTENT).await;
        let mut config = sockjs_config(&url, transport);
        config.limits.max_frame_len = 4096;
        let cause = closed_because(config).await;
        match cause {
            Error::Transport(TransportError::SockJs(got)) => assert_eq!(got, want),
            other => panic!("{transport:?} expected {want:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sockjs_session_refused_or_closed() {
    // The first frame is not `o`.
    let url = sockjs_server(
        INFO,
        vec![format!("{CONNECTED_FRAME}\n")],
        StatusCode::NO_CONTENT,
    )
    .await;
    let result = Client::connect(sockjs_config(&url, SockJsTransport::XhrPolling)).await;
    assert!(
        matches!(
            result,
            Err(Error::Transport(TransportError::SockJs(
                FrameError::ExpectedOpen
            )))
        ),
        "{result:?}"
    );
    // The session is closed at once.
    let url = sockjs_server(
        INFO,
        vec!["c[3000,\"Go away!\"]\n".to_owned()],
        StatusCode::NO_CONTENT,
    )
    .await;
    let result = Client::connect(sockjs_config(&url, SockJsTransport::XhrPolling)).await;
    assert!(
        matches!(
            &result,
            Err(Error::Transport(TransportError::Closed { code: 3000, reason })) if reason == "Go away!"
        ),
        "{result:?}"
    );
    // The websocket transport is not offered.
    let url = sockjs_server(INFO, Vec::new(), StatusCode::NO_CONTENT).await;
    let result = Client::connect(sockjs_config(&url, SockJsTransport::WebSocket)).await;
    assert!(
        matches!(
            result,
            Err(Error::Transport(TransportError::WebSocketUnavailable))
        ),
        "{result:?}"
    );
    // xhr_send refused.
    let url = sockjs_server(
        INFO,
        vec!["o\n".to_owned(), SLOW.to_owned()],
        StatusCode::NOT_FOUND,
    )
    .await;
    let result = Client::connect(sockjs_config(&url, SockJsTransport::XhrPolling)).await;
    assert!(
        matches!(
            result,
            Err(Error::Transport(TransportError::Status { status: 404, .. }))
        ),
        "{result:?}"
    );
}
