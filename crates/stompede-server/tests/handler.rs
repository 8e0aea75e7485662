//! Plain message handlers and handshake interceptors, over real sockets: raw WebSocket and
//! SockJS's websocket transport, beside the STOMP endpoint of the same server.

mod common;

use std::time::Duration;

use common::{TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use stompede_server::app::{AppRequest, HandlerError, Handlers, Reply};
use stompede_server::endpoint::{Attributes, HandshakeRequest, Rejection};
use stompede_server::handler::{
    CloseStatus, HandlerEndpoint, HandlerLimits, Message, MessageHandler, SessionHandle,
};
use stompede_server::sockjs::SockJsOptions;
use stompede_server::Stompede;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// The user an interceptor found in the `x-user` header.
#[derive(Debug, Clone)]
struct User(String);

fn require_user(
    request: &HandshakeRequest<'_>,
    attributes: &mut Attributes,
) -> Result<(), Rejection> {
    let user = request
        .headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Rejection::unauthorized("x-user header required"))?;
    attributes.insert(User(user.to_owned()));
    Ok(())
}

/// Greets with the user, echoes, and reports how sessions ended.
struct Greeter {
    closed: mpsc::UnboundedSender<CloseStatus>,
}

impl MessageHandler for Greeter {
    fn on_open(&self, session: &SessionHandle) {
        let user = session
            .attributes()
            .get::<User>()
            .map_or("?", |u| u.0.as_str());
        let _ = session.send_text(format!("hello {user} over {}", session.transport()));
        // Sends from another task.
        let handle = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = handle.send_text("tick");
        });
    }

    fn on_message(&self, session: &SessionHandle, message: Message) {
        let result = match message {
            Message::Text(text) if text == "flood" => {
                let chunk = "x".repeat(1024);
                (0..200).try_for_each(|_| session.send_text(chunk.clone()))
            }
            Message::Text(text) if text == "binary" => session.send_binary(vec![1u8, 2, 3]),
            Message::Text(text) if text == "bye" => {
                session.close(4000, "bye");
                Ok(())
            }
            Message::Text(text) => session.send_text(text),
            Message::Binary(data) => session.send_binary(data),
        };
        if let Err(e) = result {
            let _ = session.send_text(format!("send failed: {e}"));
        }
    }

    fn on_close(&self, _session: &SessionHandle, status: &CloseStatus) {
        let _ = self.closed.send(status.clone());
    }
}

struct Fixture {
    server: TestServer,
    closed: mpsc::UnboundedReceiver<CloseStatus>,
}

async fn start() -> Fixture {
    let (tx, closed) = mpsc::unbounded_channel();
    let limits = HandlerLimits {
        send_buffer_size_limit: 64 * 1024,
        ..HandlerLimits::default()
    };
    let raw = HandlerEndpoint::new(Greeter { closed: tx.clone() })
        .interceptor(require_user)
        .limits(limits.clone());
    let sockjs = HandlerEndpoint::new(Greeter { closed: tx })
        .interceptor(require_user)
        .limits(limits)
        .sockjs(SockJsOptions::default());
    let handlers = Handlers::new().route("/whoami", |request: AppRequest| async move {
        let user = request.attributes.get::<User>().map(|u| u.0.clone());
        Ok::<_, HandlerError>(Reply::text(user.unwrap_or_default()))
    });
    let server = Stompede::new(common::test_config())
        .handlers(handlers)
        .interceptor(require_user)
        .endpoint("/raw", raw)
        .endpoint("/sock", sockjs);
    Fixture {
        server: TestServer::start_server(server).await,
        closed,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str, user: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if let Some(user) = user {
        request
            .headers_mut()
            .insert("x-user", user.parse().expect("header value"));
    }
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")?;
    Ok(ws)
}

async fn next(ws: &mut Ws) -> WsMessage {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("message in time")
        .expect("stream open")
        .expect("message")
}

async fn text(ws: &mut Ws) -> String {
    match next(ws).await {
        WsMessage::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn status_of(err: tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interceptor_attributes_reach_a_raw_handler_which_echoes_text_and_binary() {
    let mut f = start().await;
    let url = format!("ws://{}/raw", f.server.addr);
    let err = open(&url, None).await.expect_err("refused without a user");
    assert_eq!(status_of(err), 401);

    let mut ws = open(&url, Some("kim")).await.expect("accepted");
    assert_eq!(text(&mut ws).await, "hello kim over websocket");
    assert_eq!(text(&mut ws).await, "tick");
    ws.send(WsMessage::text("안녕")).await.expect("send");
    assert_eq!(text(&mut ws).await, "안녕");
    ws.send(WsMessage::binary(vec![0u8, 255, 1]))
        .await
        .expect("send");
    assert_eq!(next(&mut ws).await, WsMessage::binary(vec![0u8, 255, 1]));
    ws.send(WsMessage::text("binary")).await.expect("send");
    assert_eq!(next(&mut ws).await, WsMessage::binary(vec![1u8, 2, 3]));

    ws.send(WsMessage::text("bye")).await.expect("send");
    match next(&mut ws).await {
        WsMessage::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected close, got {other:?}"),
    }
    let status = tokio::time::timeout(WAIT, f.closed.recv())
        .await
        .expect("on_close")
        .expect("status");
    assert_eq!(status.code, 4000);
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_websocket_transport_frames_handler_messages() {
    let mut f = start().await;
    let url = format!("ws://{}/sock/000/abc/websocket", f.server.addr);
    let err = open(&url, None).await.expect_err("refused without a user");
    assert_eq!(status_of(err), 401);

    let mut ws = open(&url, Some("lee")).await.expect("accepted");
    assert_eq!(text(&mut ws).await, "o");
    assert_eq!(
        text(&mut ws).await,
        r#"a["hello lee over websocket-sockjs"]"#
    );
    assert_eq!(text(&mut ws).await, r#"a["tick"]"#);
    ws.send(WsMessage::text(r#"["one","two\u2028"]"#))
        .await
        .expect("send");
    let mut got = String::new();
    while got.matches('"').count() < 4 {
        got.push_str(&text(&mut ws).await);
    }
    assert!(
        got.contains(r#""one""#) && got.contains(r#""two\u2028""#),
        "{got}"
    );
    ws.send(WsMessage::text(r#""\u0001""#)).await.expect("send");
    assert_eq!(text(&mut ws).await, r#"a["\u0001"]"#);
    // SockJS carries text only.
    ws.send(WsMessage::text(r#""binary""#)).await.expect("send");
    assert_eq!(
        text(&mut ws).await,
        r#"a["send failed: binary messages are not supported on SockJS sessions"]"#
    );

    ws.send(WsMessage::text(r#""bye""#)).await.expect("send");
    assert_eq!(text(&mut ws).await, r#"c[4000,"bye"]"#);
    let status = tokio::time::timeout(WAIT, f.closed.recv())
        .await
        .expect("on_close")
        .expect("status");
    assert_eq!(status.code, 4000);
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_as_a_slow_consumer() {
    let mut f = start().await;
    let url = format!("ws://{}/raw", f.server.addr);
    let mut ws = open(&url, Some("slow")).await.expect("accepted");
    // 200 KiB at once against a 64 KiB send buffer.
    ws.send(WsMessage::text("flood")).await.expect("send");
    let status = tokio::time::timeout(WAIT, f.closed.recv())
        .await
        .expect("on_close")
        .expect("status");
    assert_eq!(status.code, 4500, "{status:?}");
    let mut close = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(WAIT, ws.next()).await {
        if let WsMessage::Close(frame) = message {
            close = frame.map(|f| f.code);
            break;
        }
    }
    assert_eq!(close, Some(CloseCode::from(4500)));
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_sessions_close_with_1001_at_shutdown() {
    let mut f = start().await;
    let url = format!("ws://{}/raw", f.server.addr);
    let mut ws = open(&url, Some("park")).await.expect("accepted");
    assert_eq!(text(&mut ws).await, "hello park over websocket");
    f.server.server.shutdown_token().cancel();
    let status = tokio::time::timeout(WAIT, f.closed.recv())
        .await
        .expect("on_close")
        .expect("status");
    assert_eq!(status.code, 1001);
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_over_sockjs_websocket_sees_interceptor_attributes() {
    let f = start().await;
    let url = format!("ws://{}/ws/000/s1/websocket", f.server.addr);
    let err = open(&url, None).await.expect_err("refused without a user");
    assert_eq!(status_of(err), 401);
    let mut ws = open(&url, Some("choi")).await.expect("accepted");
    assert_eq!(text(&mut ws).await, "o");
    let frames = serde_json::to_string(&[
        "CONNECT\naccept-version:1.2\nhost:h\n\n\0",
        "SUBSCRIBE\nid:0\ndestination:/topic/whoami\n\n\0",
        "SEND\ndestination:/app/whoami\nreceipt:r\n\n\0",
    ])
    .expect("json");
    ws.send(WsMessage::text(frames)).await.expect("send");
    let mut received = Vec::new();
    while !received.iter().any(|m: &String| m.starts_with("RECEIPT")) {
        let frame = text(&mut ws).await;
        if frame == "h" {
            continue;
        }
        let messages: Vec<String> =
            serde_json::from_str(frame.strip_prefix('a').expect("a frame")).expect("json array");
        received.extend(messages);
    }
    assert!(received[0].starts_with("CONNECTED\n"), "{received:?}");
    let message = received
        .iter()
        .find(|m| m.starts_with("MESSAGE\n"))
        .expect("the handler's reply");
    assert!(message.ends_with("\n\nchoi\0"), "{message:?}");
    f.server.shutdown().await;
}
