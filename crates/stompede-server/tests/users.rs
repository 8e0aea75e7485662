//! Users end to end over real sockets: authenticators at CONNECT (config users, JWT from
//! CONNECT or the handshake), user destinations, replies to the sender, subscribe mappings,
//! handler errors on `/user/queue/errors`, authorization rules, the messaging handle, session
//! events and the HTTP publish API.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{body, Client, TestServer, WAIT};
use stompede_server::app::{AppRequest, HandlerError, Handlers, Reply};
use stompede_server::auth::{hash_password, JwtConfig, UserConfig};
use stompede_server::authz::{Action, Decision, RuleConfig};
use stompede_server::events::{SessionEvents, SessionRef};
use stompede_server::{Config, Stompede};
use stompede_stomp::{Command, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "a test secret of at least thirty-two bytes";
const API_KEY: &str = "test-api-key-0123456789";

fn config() -> Config {
    let mut config = common::test_config();
    config.auth.users = vec![
        UserConfig {
            name: "bob".to_owned(),
            password: hash_password("bob-pw").expect("hash"),
            roles: vec!["user".to_owned()],
        },
        UserConfig {
            name: "alice".to_owned(),
            password: hash_password("alice-pw").expect("hash"),
            roles: vec!["admin".to_owned()],
        },
    ];
    config.auth.jwt = Some(JwtConfig {
        secret: Some(SECRET.to_owned()),
        ..JwtConfig::default()
    });
    config.api.keys = vec![API_KEY.to_owned()];
    config
}

fn token(sub: &str, exp_from_now: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let claims = serde_json::json!({ "sub": sub, "exp": now + exp_from_now, "roles": ["user"] });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

fn connect_frame(headers: &[(&str, &str)]) -> Frame {
    let mut frame = Frame::new(Command::Connect)
        .with_header("accept-version", "1.2")
        .with_header("heart-beat", "0,0");
    for (name, value) in headers {
        frame.push_header(*name, *value);
    }
    frame
}

async fn login(server: &TestServer, user: &str, password: &str) -> Client {
    let mut client = Client::open(&server.url()).await;
    let reply = client
        .handshake(connect_frame(&[("login", user), ("passcode", password)]))
        .await;
    assert_eq!(reply.command(), Command::Connected, "{reply:?}");
    assert_eq!(reply.header("user-name"), Some(user));
    client
}

#[tokio::test]
async fn config_users_log_in_and_bad_credentials_are_refused() {
    let server = TestServer::start(config()).await;
    login(&server, "bob", "bob-pw").await;
    for (user, password) in [("bob", "wrong"), ("nobody", "bob-pw"), ("bob", "")] {
        let mut client = Client::open(&server.url()).await;
        let reply = client
            .handshake(connect_frame(&[("login", user), ("passcode", password)]))
            .await;
        assert_eq!(reply.command(), Command::Error, "{user}/{password}");
        assert_eq!(reply.header("message"), Some("authentication failed"));
        // The same answer whether or not the user exists.
        assert_eq!(body(&reply), "authentication failed: bad credentials");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn anonymous_access_is_a_config_choice() {
    let server = TestServer::start(config()).await;
    let mut client = Client::open(&server.url()).await;
    let reply = client.handshake(connect_frame(&[])).await;
    assert_eq!(reply.command(), Command::Connected);
    assert_eq!(reply.header("user-name"), None);
    server.shutdown().await;

    let mut config = config();
    config.auth.anonymous = false;
    let server = TestServer::start(config).await;
    let mut client = Client::open(&server.url()).await;
    let reply = client.handshake(connect_frame(&[])).await;
    assert_eq!(reply.command(), Command::Error);
    assert_eq!(reply.header("message"), Some("authentication failed"));
    server.shutdown().await;
}

#[tokio::test]
async fn jwt_from_connect_or_handshake_and_expiry_closes_the_session() {
    let server = TestServer::start(config()).await;
    // In CONNECT, as `passcode`-less `token` or as an Authorization header (stompjs connectHeaders).
    let good = token("carol", 3600);
    for header in ["token", "Authorization"] {
        let value = if header == "token" {
            good.clone()
        } else {
            format!("Bearer {good}")
        };
        let mut client = Client::open(&server.url()).await;
        let reply = client.handshake(connect_frame(&[(header, &value)])).await;
        assert_eq!(
            reply.header("user-name"),
            Some("carol"),
            "{header}: {reply:?}"
        );
    }
    // In the handshake URL, as browsers do (they cannot set WebSocket headers).
    let url = format!("{}?access_token={good}", server.url());
    let mut client = Client::open(&url).await;
    let reply = client.handshake(connect_frame(&[])).await;
    assert_eq!(reply.header("user-name"), Some("carol"));

    // Expired, forged, garbage: refused.
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": "mallory", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret entirely, thirty-two+"),
    )
    .expect("token");
    for bad in [
        token("carol", -60),
        other_key,
        "garbage".to_owned(),
        "x".repeat(8000),
    ] {
        let mut client = Client::open(&server.url()).await;
        let reply = client.handshake(connect_frame(&[("token", &bad)])).await;
        assert_eq!(reply.command(), Command::Error);
        assert_eq!(reply.header("message"), Some("authentication failed"));
    }

    // A token that expires while the session is open closes it with an ERROR.
    let mut client = Client::open(&server.url()).await;
    let short = token("dave", 2);
    let reply = client.handshake(connect_frame(&[("token", &short)])).await;
    assert_eq!(reply.header("user-name"), Some("dave"));
    let (error, code) = tokio::time::timeout(WAIT, client.expect_error())
        .await
        .expect("closed within WAIT");
    assert_eq!(error.header("message"), Some("credentials expired"));
    assert_eq!(code, Some(1008));
    server.shutdown().await;
}

#[tokio::test]
async fn user_destinations_reach_every_session_of_the_user_and_no_one_else() {
    let server = TestServer::start(config()).await;
    let mut bob1 = login(&server, "bob", "bob-pw").await;
    let mut bob2 = login(&server, "bob", "bob-pw").await;
    let mut alice = login(&server, "alice", "alice-pw").await;
    let mut anon = Client::connect(&server.url()).await;
    for client in [&mut bob1, &mut bob2, &mut alice, &mut anon] {
        client.subscribe("q", "/user/queue/x", "auto").await;
    }
    // A client sends to bob by name; so does the server's messaging handle.
    alice
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", "/user/bob/queue/x")
                .with_body("from alice"),
            "sent",
        )
        .await;
    server
        .server
        .messaging()
        .send_to_user("bob", "/queue/x", Vec::new(), "from the server")
        .expect("sent");
    for bob in [&mut bob1, &mut bob2] {
        let got = bob.messages(2).await;
        let bodies: Vec<String> = got.iter().map(body).collect();
        assert_eq!(bodies, ["from alice", "from the server"]);
        for m in &got {
            assert_eq!(m.header("destination"), Some("/user/queue/x"));
            assert_eq!(m.header("subscription"), Some("q"));
        }
    }
    // Nobody else got anything: a receipt comes back with nothing before it.
    for (n, other) in [&mut alice, &mut anon].into_iter().enumerate() {
        let receipt = format!("nothing-{n}");
        let before = other
            .send_with_receipt(
                Frame::new(Command::Send)
                    .with_header("destination", "/topic/unrelated")
                    .with_body("x"),
                &receipt,
            )
            .await;
        assert!(before.is_empty(), "{before:?}");
    }
    // The registry knows who is online.
    let users = server.server.users();
    assert_eq!(users.user_names(), ["alice", "bob"]);
    let bob = users.user("bob").expect("bob online");
    assert_eq!(bob.sessions.len(), 2);
    assert_eq!(
        bob.sessions[0].subscriptions,
        [("q".to_owned(), "/user/queue/x".to_owned())]
    );
    // After UNSUBSCRIBE, bob's session gets nothing more.
    bob1.send_with_receipt(
        Frame::new(Command::Unsubscribe).with_header("id", "q"),
        "unsub",
    )
    .await;
    alice.publish("/user/bob/queue/x", "again").await;
    assert_eq!(body(&bob2.messages(1).await[0]), "again");
    let before = bob1
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", "/topic/unrelated")
                .with_body("x"),
            "r",
        )
        .await;
    assert!(before.is_empty(), "{before:?}");
    // Hostile user destinations are ERRORs.
    let mut bad = login(&server, "bob", "bob-pw").await;
    bad.send(
        &Frame::new(Command::Subscribe)
            .with_header("id", "1")
            .with_header("destination", "/user/app/x"),
    )
    .await;
    let (error, _) = bad.expect_error().await;
    assert_eq!(error.header("message"), Some("invalid destination"));
    server.shutdown().await;
}

fn handlers() -> Handlers {
    Handlers::new()
        .route("/whoami", |req: AppRequest| async move {
            Ok(Reply::text(req.user().unwrap_or("anonymous")).to_user("/queue/whoami"))
        })
        .route("/only-me", |req: AppRequest| async move {
            Ok(Reply::text(req.user().unwrap_or("anonymous")).to_session("/queue/whoami"))
        })
        .route("/fail", |_req: AppRequest| async move {
            Err::<Reply, _>(HandlerError::Rejected("no thanks".to_owned()))
        })
        .subscribe("/snapshot", |req: AppRequest| async move {
            Ok(Reply::text(format!(
                "snapshot for {}",
                req.user().unwrap_or("anonymous")
            )))
        })
}

#[tokio::test]
async fn replies_to_the_sender_and_subscribe_mappings() {
    let server = TestServer::start_with(config(), handlers()).await;
    let mut bob1 = login(&server, "bob", "bob-pw").await;
    let mut bob2 = login(&server, "bob", "bob-pw").await;
    for bob in [&mut bob1, &mut bob2] {
        bob.subscribe("w", "/user/queue/whoami", "auto").await;
    }
    // @SendToUser: both of bob's sessions.
    bob1.publish("/app/whoami", "").await;
    assert_eq!(body(&bob1.messages(1).await[0]), "bob");
    assert_eq!(body(&bob2.messages(1).await[0]), "bob");
    // broadcast = false: only the sender's session.
    bob2.publish("/app/only-me", "").await;
    assert_eq!(body(&bob2.messages(1).await[0]), "bob");
    let before = bob1
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", "/topic/x")
                .with_body(""),
            "r",
        )
        .await;
    assert!(before.is_empty(), "{before:?}");

    // @SubscribeMapping: the reply comes straight back on the subscription, before its receipt.
    let got = bob1.subscribe("snap", "/app/snapshot", "auto").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].header("subscription"), Some("snap"));
    assert_eq!(got[0].header("destination"), Some("/app/snapshot"));
    assert_eq!(body(&got[0]), "snapshot for bob");
    // Clients unsubscribe from it like from any subscription (stompjs does); the id is reusable.
    let none = bob1
        .send_with_receipt(
            Frame::new(Command::Unsubscribe).with_header("id", "snap"),
            "unsnap",
        )
        .await;
    assert!(none.is_empty(), "{none:?}");
    let again = bob1.subscribe("snap", "/app/snapshot", "auto").await;
    assert_eq!(again.len(), 1, "{again:?}");
    // An application destination without a subscribe mapping is still an ERROR.
    bob2.send(
        &Frame::new(Command::Subscribe)
            .with_header("id", "x")
            .with_header("destination", "/app/whoami"),
    )
    .await;
    let (error, _) = bob2.expect_error().await;
    assert_eq!(error.header("message"), Some("invalid destination"));
    server.shutdown().await;
}

#[tokio::test]
async fn handler_errors_go_to_user_queue_errors_when_subscribed() {
    let server = TestServer::start_with(config(), handlers()).await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("e", "/user/queue/errors", "auto").await;
    client.publish("/app/fail", "").await;
    let error = &client.messages(1).await[0];
    assert_eq!(error.header("destination"), Some("/user/queue/errors"));
    let json: serde_json::Value = serde_json::from_str(&body(error)).expect("json");
    assert_eq!(json["error"], "message rejected");
    assert_eq!(json["detail"], "no thanks");
    assert_eq!(json["destination"], "/app/fail");
    // The session goes on.
    client.subscribe("t", "/topic/after", "auto").await;

    // Without that subscription the error ends the session, as before.
    let mut plain = Client::connect(&server.url()).await;
    plain.publish("/app/fail", "").await;
    let (error, _) = plain.expect_error().await;
    assert_eq!(error.header("message"), Some("message rejected"));
    server.shutdown().await;
}

fn rule(destination: &str, actions: &[Action], allow: &[&str]) -> RuleConfig {
    RuleConfig {
        destination: destination.to_owned(),
        actions: actions.to_vec(),
        allow: allow.iter().map(|a| (*a).to_owned()).collect(),
    }
}

#[tokio::test]
async fn authorization_rules_are_checked_on_every_frame() {
    let mut config = config();
    config.authorization.default = Decision::Allow;
    config.authorization.rules = vec![
        rule("/topic/admin/**", &[], &["role:admin"]),
        rule("/topic/announce", &[Action::Send], &["user:alice"]),
        rule(
            "/topic/members/**",
            &[Action::Subscribe],
            &["authenticated"],
        ),
    ];
    let server = TestServer::start(config).await;

    let mut alice = login(&server, "alice", "alice-pw").await;
    alice.subscribe("a", "/topic/admin/logs", "auto").await;
    alice.subscribe("b", "/topic/announce", "auto").await;
    let got = alice
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", "/topic/announce")
                .with_body("hello"),
            "sent",
        )
        .await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), ["hello"]);

    let denied: [(&str, Frame); 4] = [
        (
            "bob",
            Frame::new(Command::Subscribe)
                .with_header("id", "1")
                .with_header("destination", "/topic/admin/logs"),
        ),
        (
            "bob",
            Frame::new(Command::Send)
                .with_header("destination", "/topic/announce")
                .with_body("spoof"),
        ),
        (
            "",
            Frame::new(Command::Subscribe)
                .with_header("id", "1")
                .with_header("destination", "/topic/members/x"),
        ),
        // Inside a transaction, checked when the SEND arrives.
        (
            "bob",
            Frame::new(Command::Send)
                .with_header("destination", "/topic/admin/x")
                .with_header("transaction", "t")
                .with_body("x"),
        ),
    ];
    for (user, frame) in denied {
        let mut client = if user.is_empty() {
            Client::connect(&server.url()).await
        } else {
            login(&server, user, "bob-pw").await
        };
        client
            .send(&Frame::new(Command::Begin).with_header("transaction", "t"))
            .await;
        client.send(&frame).await;
        let (error, code) = client.expect_error().await;
        assert_eq!(error.header("message"), Some("access denied"), "{frame:?}");
        assert!(
            body(&error).contains("is not allowed for"),
            "{}",
            body(&error)
        );
        assert_eq!(code, Some(1008));
    }
    // Nothing reached alice's /topic/announce subscription from bob.
    let before = alice
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", "/topic/other")
                .with_body(""),
            "r",
        )
        .await;
    assert!(before.is_empty(), "{before:?}");
    // Authenticated users may subscribe to /topic/members/**.
    let mut bob = login(&server, "bob", "bob-pw").await;
    bob.subscribe("m", "/topic/members/x", "auto").await;
    server.shutdown().await;
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl SessionEvents for Recorder {
    fn on_connect(&self, s: SessionRef<'_>) {
        self.push(format!("connect {}", name(&s)));
    }
    fn on_subscribe(&self, s: SessionRef<'_>, id: &str, destination: &str) {
        self.push(format!("subscribe {} {id} {destination}", name(&s)));
    }
    fn on_unsubscribe(&self, s: SessionRef<'_>, id: &str, destination: &str) {
        self.push(format!("unsubscribe {} {id} {destination}", name(&s)));
    }
    fn on_disconnect(&self, s: SessionRef<'_>) {
        self.push(format!("disconnect {}", name(&s)));
    }
}

impl Recorder {
    fn push(&self, event: String) {
        self.0.lock().expect("lock").push(event);
    }
}

fn name(s: &SessionRef<'_>) -> String {
    s.principal
        .map_or("anonymous".to_owned(), |p| p.name.clone())
}

#[tokio::test]
async fn session_events_follow_the_session() {
    let recorder = Recorder::default();
    let server = TestServer::start_server(Stompede::new(config()).events(recorder.clone())).await;
    let mut bob = login(&server, "bob", "bob-pw").await;
    bob.subscribe("1", "/topic/a", "auto").await;
    bob.subscribe("2", "/user/queue/b", "auto").await;
    bob.send_with_receipt(Frame::new(Command::Unsubscribe).with_header("id", "1"), "u")
        .await;
    bob.send_with_receipt(Frame::new(Command::Disconnect), "bye")
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = recorder.0.lock().expect("lock").clone();
        if events.last().is_some_and(|e| e.starts_with("disconnect")) {
            assert_eq!(
                events,
                [
                    "connect bob",
                    "subscribe bob 1 /topic/a",
                    "subscribe bob 2 /user/queue/b",
                    "unsubscribe bob 1 /topic/a",
                    "disconnect bob",
                ]
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{events:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(server.server.users().user_names().is_empty());
    server.shutdown().await;
}

/// One HTTP/1.1 request on a fresh connection; the status and body of the answer.
async fn http(server: &TestServer, request: String) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("answer within WAIT")
        .expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn publish_request(key: Option<&str>, body: &str) -> String {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    format!(
        "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn http_publish_api_checks_the_key_and_delivers() {
    let server = TestServer::start(config()).await;
    let mut sub = Client::connect(&server.url()).await;
    sub.subscribe("n", "/topic/news", "auto").await;
    let mut bob = login(&server, "bob", "bob-pw").await;
    bob.subscribe("a", "/user/queue/alerts", "auto").await;

    let ok = r#"{"destination":"/topic/news","headers":{"content-type":"text/plain","x-source":"api"},"body":"extra!"}"#;
    let (status, answer) = http(&server, publish_request(Some(API_KEY), ok)).await;
    assert_eq!(status, 200, "{answer}");
    let json: serde_json::Value = serde_json::from_str(&answer).expect("json");
    let id = json["messageId"].as_str().expect("messageId");
    let got = &sub.messages(1).await[0];
    assert_eq!(body(got), "extra!");
    assert_eq!(got.header("message-id"), Some(id));
    assert_eq!(got.header("x-source"), Some("api"));

    let to_bob = r#"{"destination":"/user/bob/queue/alerts","body":"for bob"}"#;
    let (status, _) = http(&server, publish_request(Some(API_KEY), to_bob)).await;
    assert_eq!(status, 200);
    assert_eq!(body(&bob.messages(1).await[0]), "for bob");

    let cases: [(Option<&str>, String, u16); 8] = [
        (None, ok.to_owned(), 401),
        (Some("wrong-key-0123456789"), ok.to_owned(), 401),
        (Some(API_KEY), "{not json".to_owned(), 400),
        (
            Some(API_KEY),
            r#"{"destination":"/app/chat"}"#.to_owned(),
            400,
        ),
        (
            Some(API_KEY),
            r#"{"destination":"/nowhere"}"#.to_owned(),
            400,
        ),
        (
            Some(API_KEY),
            r#"{"destination":"/topic/x","headers":{"destination":"/topic/y"}}"#.to_owned(),
            400,
        ),
        (
            Some(API_KEY),
            r#"{"destination":"/topic/x","headers":{"a":"b\nc"}}"#.to_owned(),
            400,
        ),
        (
            Some(API_KEY),
            format!(
                r#"{{"destination":"/topic/x","body":"{}"}}"#,
                "x".repeat(70_000)
            ),
            413,
        ),
    ];
    for (key, request, want) in cases {
        let (status, answer) = http(&server, publish_request(key, &request)).await;
        assert_eq!(
            status,
            want,
            "{}: {answer}",
            &request[..request.len().min(80)]
        );
        let json: serde_json::Value = serde_json::from_str(&answer).expect("json error");
        assert!(json["error"].is_string(), "{answer}");
    }
    // None of the refused requests delivered anything.
    let before = sub
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", "/topic/other")
                .with_body(""),
            "r",
        )
        .await;
    assert!(before.is_empty(), "{before:?}");
    server.shutdown().await;

    // No key configured: no API.
    let mut config = config();
    config.api.keys.clear();
    let server = TestServer::start(config).await;
    let (status, _) = http(&server, publish_request(Some(API_KEY), ok)).await;
    assert_eq!(status, 404);
    server.shutdown().await;
}
