//! STOMP over WebSocket against the real server on a real socket.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{body, Client, Event, TestServer};
use stompede_stomp::{Command, Frame};

fn send(destination: &str, body: &str) -> Frame {
    Frame::new(Command::Send)
        .with_header("destination", destination)
        .with_body(body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_negotiates_highest_common_version_and_subprotocol() {
    let server = TestServer::start(common::test_config()).await;
    let mut client = Client::open(&server.url()).await;
    assert_eq!(client.protocol.as_deref(), Some("v12.stomp"));
    let connected = client
        .handshake(
            Frame::new(Command::Connect)
                .with_header("accept-version", "1.0,1.1,1.2")
                .with_header("host", "localhost")
                .with_header("heart-beat", "0,0"),
        )
        .await;
    assert_eq!(connected.command(), Command::Connected);
    assert_eq!(connected.header("version"), Some("1.2"));
    assert_eq!(connected.header("heart-beat"), Some("10000,10000"));
    assert!(connected.header("server").unwrap().starts_with("stompede/"));
    assert!(connected.header("session").is_some());

    let mut client = Client::open(&server.url()).await;
    let connected = client
        .handshake(
            Frame::new(Command::Stomp)
                .with_header("accept-version", "1.1")
                .with_header("host", "x"),
        )
        .await;
    assert_eq!(connected.header("version"), Some("1.1"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_offering_no_or_other_subprotocols_are_accepted() {
    let server = TestServer::start(common::test_config()).await;
    let mut plain = Client::open_with(&server.url(), None, None).await.unwrap();
    assert_eq!(plain.protocol, None);
    let reply = plain
        .handshake(Frame::new(Command::Connect).with_header("accept-version", "1.2"))
        .await;
    assert_eq!(reply.command(), Command::Connected);

    let only10 = Client::open_with(&server.url(), Some("v10.stomp"), None)
        .await
        .unwrap();
    assert_eq!(only10.protocol.as_deref(), Some("v10.stomp"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_0_client_without_accept_version_gets_1_0() {
    let server = TestServer::start(common::test_config()).await;
    let mut client = Client::open(&server.url()).await;
    client.version = stompede_stomp::Version::V1_0;
    let reply = client.handshake(Frame::new(Command::Connect)).await;
    assert_eq!(reply.command(), Command::Connected);
    assert_eq!(
        reply.header("version"),
        None,
        "1.0 CONNECTED has no version"
    );
    // 1.0: SUBSCRIBE without id, backslashes are literal.
    client
        .send(
            &Frame::new(Command::Subscribe)
                .with_header("destination", "/topic/old")
                .with_header("receipt", "r1"),
        )
        .await;
    client.expect_receipt("r1").await;
    client
        .send(&send("/topic/old", "x").with_header("note", "a\\b"))
        .await;
    let msg = client.recv().await;
    assert_eq!(msg.header("subscription"), Some("/topic/old"));
    assert_eq!(msg.header("note"), Some("a\\b"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_version_gets_error_listing_supported_versions() {
    let server = TestServer::start(common::test_config()).await;
    let mut client = Client::open(&server.url()).await;
    client
        .send(&Frame::new(Command::Connect).with_header("accept-version", "2.0,3.1"))
        .await;
    let (error, code) = client.expect_error().await;
    assert_eq!(error.header("version"), Some("1.0,1.1,1.2"));
    assert_eq!(code, Some(1002));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_fans_out_with_headers_and_unique_message_ids() {
    let server = TestServer::start(common::test_config()).await;
    let mut subscribers = Vec::new();
    for i in 0..3 {
        let mut c = Client::connect(&server.url()).await;
        c.subscribe(&format!("s{i}"), "/topic/news", "auto").await;
        subscribers.push(c);
    }
    let mut publisher = Client::connect(&server.url()).await;
    for n in 0..5 {
        publisher
            .send(
                &send("/topic/news", &format!("item {n}"))
                    .with_header("content-type", "text/plain")
                    .with_header("x-trace", "abc:def")
                    .with_header("message-id", "forged"),
            )
            .await;
    }
    let mut ids = HashSet::new();
    for (i, sub) in subscribers.iter_mut().enumerate() {
        let messages = sub.messages(5).await;
        for (n, m) in messages.iter().enumerate() {
            assert_eq!(body(m), format!("item {n}"), "in order");
            assert_eq!(m.header("destination"), Some("/topic/news"));
            assert_eq!(m.header("subscription"), Some(format!("s{i}").as_str()));
            assert_eq!(m.header("content-type"), Some("text/plain"));
            assert_eq!(m.header("content-length"), Some("6"));
            assert_eq!(m.header("x-trace"), Some("abc:def"));
            let id = m.header("message-id").unwrap();
            assert_ne!(id, "forged");
            if i == 0 {
                ids.insert(id.to_owned());
            }
        }
    }
    assert_eq!(ids.len(), 5, "message ids are unique");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_subscriptions_match_like_spring() {
    let server = TestServer::start(common::test_config()).await;
    let mut c = Client::connect(&server.url()).await;
    c.subscribe("dot", "/topic/chat.*", "auto").await;
    c.subscribe("deep", "/topic/a/**", "auto").await;
    c.send(&send("/topic/chat.lobby", "1")).await;
    c.send(&send("/topic/a/b/c", "2")).await;
    c.send(&send("/topic/other", "3")).await;
    let receipt = c.send_with_receipt(send("/topic/a", "4"), "done").await;
    let got: Vec<(String, String)> = receipt
        .iter()
        .map(|m| (m.header("subscription").unwrap().to_owned(), body(m)))
        .collect();
    assert_eq!(
        got,
        [
            ("dot".to_owned(), "1".to_owned()),
            ("deep".to_owned(), "2".to_owned()),
            ("deep".to_owned(), "4".to_owned())
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_each_message_to_one_subscriber_round_robin() {
    let server = TestServer::start(common::test_config()).await;
    let mut publisher = Client::connect(&server.url()).await;
    // Held until someone subscribes.
    publisher
        .send_with_receipt(send("/queue/jobs", "early"), "r0")
        .await;
    let mut a = Client::connect(&server.url()).await;
    let mut early = a.subscribe("a", "/queue/jobs", "auto").await;
    if early.is_empty() {
        early = a.messages(1).await;
    }
    assert_eq!(body(&early[0]), "early");
    let mut b = Client::connect(&server.url()).await;
    b.subscribe("b", "/queue/jobs", "auto").await;
    for n in 0..10 {
        publisher.send(&send("/queue/jobs", &n.to_string())).await;
    }
    let from_a = a.messages(5).await;
    let from_b = b.messages(5).await;
    let mut all: Vec<u32> = from_a
        .iter()
        .chain(&from_b)
        .map(|m| body(m).parse().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..10).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert!(a.maybe_event(Duration::from_millis(200)).await.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_and_disconnect_redeliver_unacked_queue_messages() {
    let server = TestServer::start(common::test_config()).await;
    let mut a = Client::connect(&server.url()).await;
    a.subscribe("a", "/queue/work", "client-individual").await;
    let mut publisher = Client::connect(&server.url()).await;
    for n in 0..3 {
        publisher
            .send(&send("/queue/work", &format!("job{n}")))
            .await;
    }
    let got = a.messages(3).await;
    // ACK job0, NACK job1, leave job2 unacked.
    a.send(&Frame::new(Command::Ack).with_header("id", got[0].header("ack").unwrap()))
        .await;
    a.send(
        &Frame::new(Command::Nack)
            .with_header("id", got[1].header("ack").unwrap())
            .with_header("receipt", "n"),
    )
    .await;
    let redelivered = a.expect_receipt("n").await;
    let mut again = redelivered;
    if again.is_empty() {
        again = a.messages(1).await;
    }
    assert_eq!(body(&again[0]), "job1");
    assert_eq!(again[0].header("redelivered"), Some("true"));

    // A second subscriber; then `a` leaves without acking job1 (again) and job2.
    let mut b = Client::connect(&server.url()).await;
    b.subscribe("b", "/queue/work", "client").await;
    a.close_socket().await;
    let mut bodies: Vec<String> = b.messages(2).await.iter().map(body).collect();
    bodies.sort();
    assert_eq!(bodies, ["job1", "job2"], "nothing lost, job0 not repeated");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ack_is_cumulative() {
    let server = TestServer::start(common::test_config()).await;
    let mut a = Client::connect(&server.url()).await;
    a.subscribe("a", "/queue/cum", "client").await;
    let mut p = Client::connect(&server.url()).await;
    for n in 0..3 {
        p.send(&send("/queue/cum", &n.to_string())).await;
    }
    let got = a.messages(3).await;
    // Acking the second acks the first too; only the third comes back.
    a.send_with_receipt(
        Frame::new(Command::Ack).with_header("id", got[1].header("ack").unwrap()),
        "ack",
    )
    .await;
    a.send_with_receipt(
        Frame::new(Command::Unsubscribe).with_header("id", "a"),
        "unsub",
    )
    .await;
    let mut b = Client::connect(&server.url()).await;
    let mut back = b.subscribe("b", "/queue/cum", "auto").await;
    if back.is_empty() {
        back = b.messages(1).await;
    }
    assert_eq!(body(&back[0]), "2");
    assert!(b.maybe_event(Duration::from_millis(200)).await.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_hold_frames_until_commit_and_drop_them_on_abort() {
    let server = TestServer::start(common::test_config()).await;
    let mut sub = Client::connect(&server.url()).await;
    sub.subscribe("s", "/topic/tx", "auto").await;
    let mut p = Client::connect(&server.url()).await;
    p.send(&Frame::new(Command::Begin).with_header("transaction", "t1"))
        .await;
    p.send(&send("/topic/tx", "in-t1").with_header("transaction", "t1"))
        .await;
    p.send(&Frame::new(Command::Begin).with_header("transaction", "t2"))
        .await;
    p.send(&send("/topic/tx", "in-t2").with_header("transaction", "t2"))
        .await;
    p.send_with_receipt(send("/topic/tx", "outside"), "r").await;
    assert_eq!(body(&sub.recv().await), "outside");
    p.send_with_receipt(
        Frame::new(Command::Abort).with_header("transaction", "t2"),
        "abort",
    )
    .await;
    p.send_with_receipt(
        Frame::new(Command::Commit).with_header("transaction", "t1"),
        "commit",
    )
    .await;
    let m = sub.recv().await;
    assert_eq!(body(&m), "in-t1");
    assert_eq!(m.header("transaction"), None);
    assert!(sub.maybe_event(Duration::from_millis(200)).await.is_none());

    p.send(&Frame::new(Command::Commit).with_header("transaction", "nope"))
        .await;
    let (error, _) = p.expect_error().await;
    assert_eq!(error.header("message"), Some("invalid transaction"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_for_every_frame_that_asks_including_disconnect() {
    let server = TestServer::start(common::test_config()).await;
    let mut c = Client::connect(&server.url()).await;
    c.subscribe("s", "/topic/r", "auto").await;
    let before = c.send_with_receipt(send("/topic/r", "x"), "send-1").await;
    assert_eq!(before.len(), 1, "the message comes before the receipt");
    c.send(&Frame::new(Command::Disconnect).with_header("receipt", "bye"))
        .await;
    let (frames, code) = c.closed().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].command(), Command::Receipt);
    assert_eq!(frames[0].header("receipt-id"), Some("bye"));
    assert_eq!(code, Some(1000));
    server.shutdown().await;
}

/// Each bad input: an ERROR with a `message` header, the connection closed, and a bystander
/// session that keeps receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_error_and_close_and_harms_no_one_else() {
    let server = TestServer::start(common::test_config()).await;
    let mut bystander = Client::connect(&server.url()).await;
    bystander.subscribe("b", "/topic/calm", "auto").await;

    let oversized = {
        let mut f = b"SEND\ndestination:/topic/calm\n\n".to_vec();
        f.extend(std::iter::repeat_n(b'x', 70 * 1024));
        f.push(0);
        f
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "missing destination",
            b"SEND\n\nhi\0".to_vec(),
            "missing header",
        ),
        (
            "missing id",
            b"SUBSCRIBE\ndestination:/topic/x\n\n\0".to_vec(),
            "missing header",
        ),
        ("unknown command", b"FLY\n\n\0".to_vec(), ""),
        (
            "server command",
            b"MESSAGE\ndestination:/topic/x\n\n\0".to_vec(),
            "unexpected command",
        ),
        ("no colon", b"SEND\ndestination\n\n\0".to_vec(), ""),
        (
            "bad escape",
            b"SEND\ndestination:/topic/x\nh:\\t\n\n\0".to_vec(),
            "",
        ),
        (
            "invalid utf-8",
            b"SEND\ndestination:/topic/\xff\xfe\n\n\0".to_vec(),
            "",
        ),
        (
            "bad content-length",
            b"SEND\ndestination:/topic/x\ncontent-length:-1\n\n\0".to_vec(),
            "",
        ),
        (
            "unknown prefix",
            b"SEND\ndestination:/elsewhere/x\n\n\0".to_vec(),
            "invalid destination",
        ),
        (
            "bad ack mode",
            b"SUBSCRIBE\nid:1\ndestination:/topic/x\nack:sometimes\n\n\0".to_vec(),
            "invalid header",
        ),
        (
            "subscribe to app",
            b"SUBSCRIBE\nid:1\ndestination:/app/chat/message\n\n\0".to_vec(),
            "invalid destination",
        ),
        (
            "no handler",
            b"SEND\ndestination:/app/nothing\n\n{}\0".to_vec(),
            "no handler for destination",
        ),
        (
            "bad chat json",
            b"SEND\ndestination:/app/chat/message\n\n{not json\0".to_vec(),
            "invalid payload",
        ),
        ("unknown ack", b"ACK\nid:q-nope\n\n\0".to_vec(), ""),
        (
            "second connect",
            b"CONNECT\naccept-version:1.2\n\n\0".to_vec(),
            "already connected",
        ),
        ("oversized", oversized, "frame too large"),
    ];
    for (name, bytes, expected_message) in cases {
        let mut bad = Client::connect(&server.url()).await;
        bad.send_raw(&bytes).await;
        let (error, code) = bad.expect_error().await;
        if !expected_message.is_empty() {
            assert_eq!(
                error.header("message"),
                Some(expected_message),
                "{name}: {error:?}"
            );
        }
        assert!(
            matches!(code, Some(1002 | 1009)),
            "{name}: closed with {code:?}"
        );

        let mut p = Client::connect(&server.url()).await;
        p.send(&send("/topic/calm", name)).await;
        assert_eq!(
            body(&bystander.recv().await),
            name,
            "bystander unaffected by {name}"
        );
        p.close_socket().await;
    }

    // A WebSocket message over `endpoint.max_websocket_message` (1 MiB): the server stops
    // reading at the frame header and answers ERROR, then 1009. The rest of the message is
    // still unread when it drops the connection, so the kernel may reset it, even before the
    // client has finished sending or read the ERROR: a reset is the only other acceptable end.
    let mut huge = Client::connect(&server.url()).await;
    if huge.try_send_raw(&vec![b'x'; 2 << 20]).await.is_ok() {
        let (frames, code) = huge.closed().await;
        if let Some(error) = frames.first() {
            assert_eq!(error.command(), Command::Error);
            assert_eq!(error.header("message"), Some("frame too large"));
        }
        assert!(matches!(code, Some(1009) | None), "closed with {code:?}");
    }
    let mut p = Client::connect(&server.url()).await;
    p.send(&send("/topic/calm", "after huge")).await;
    assert_eq!(body(&bystander.recv().await), "after huge");

    // Before CONNECT, only CONNECT is accepted.
    let mut early = Client::open(&server.url()).await;
    early.send(&send("/topic/calm", "too early")).await;
    let (error, _) = early.expect_error().await;
    assert_eq!(error.header("message"), Some("not connected"));

    // One subscription past the limit; unsubscribing frees a slot.
    let mut many = Client::connect(&server.url()).await;
    for i in 0..1024 {
        many.send(
            &Frame::new(Command::Subscribe)
                .with_header("id", i.to_string())
                .with_header("destination", format!("/topic/many.{i}")),
        )
        .await;
    }
    many.send_with_receipt(Frame::new(Command::Unsubscribe).with_header("id", "0"), "u")
        .await;
    many.subscribe("again", "/topic/many.again", "auto").await;
    many.send(
        &Frame::new(Command::Subscribe)
            .with_header("id", "one-too-many")
            .with_header("destination", "/topic/many.x"),
    )
    .await;
    let (error, _) = many.expect_error().await;
    assert_eq!(error.header("message"), Some("too many subscriptions"));

    // Duplicate subscription id.
    let mut dup = Client::connect(&server.url()).await;
    dup.subscribe("same", "/topic/a", "auto").await;
    dup.send(
        &Frame::new(Command::Subscribe)
            .with_header("id", "same")
            .with_header("destination", "/topic/b")
            .with_header("receipt", "dup"),
    )
    .await;
    let (error, _) = dup.expect_error().await;
    assert_eq!(error.header("receipt-id"), Some("dup"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_may_be_batched_in_one_message_or_split_across_several() {
    let server = TestServer::start(common::test_config()).await;
    let mut c = Client::connect(&server.url()).await;
    c.send_raw(
        b"SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\0\n\nSEND\ndestination:/topic/b\n\none\0SEND\ndestination:/topic/b\ncontent-length:5\n\nt\0w\0o\0",
    )
    .await;
    let two = c.messages(2).await;
    assert_eq!(body(&two[0]), "one");
    assert_eq!(two[1].body().as_ref(), b"t\0w\0o");
    for part in [&b"SEND\ndestin"[..], b"ation:/topic/b\n", b"\nspl", b"it\0"] {
        c.send_raw(part).await;
    }
    assert_eq!(body(&c.recv().await), "split");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sends_heartbeats_and_closes_silent_clients() {
    let mut config = common::test_config();
    config.heartbeat.send = Duration::from_millis(100);
    config.heartbeat.receive = Duration::from_millis(100);
    config.heartbeat.tolerance = 2.0;
    let server = TestServer::start(config).await;

    // A client that wants heart-beats gets them.
    let mut listener = Client::open(&server.url()).await;
    let reply = listener
        .handshake(
            Frame::new(Command::Connect)
                .with_header("accept-version", "1.2")
                .with_header("heart-beat", "0,100"),
        )
        .await;
    assert_eq!(reply.header("heart-beat"), Some("100,100"));
    assert!(matches!(listener.next_event().await, Event::Heartbeat));

    // A client that promises heart-beats and keeps them stays; one that goes silent is closed.
    let mut silent = Client::open(&server.url()).await;
    silent
        .handshake(
            Frame::new(Command::Connect)
                .with_header("accept-version", "1.2")
                .with_header("heart-beat", "100,0"),
        )
        .await;
    let mut alive = Client::open(&server.url()).await;
    alive
        .handshake(
            Frame::new(Command::Connect)
                .with_header("accept-version", "1.2")
                .with_header("heart-beat", "100,0"),
        )
        .await;
    let (_, code) = tokio::join!(silent.closed(), async {
        for _ in 0..10 {
            alive.send_raw(b"\n").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .0;
    assert_eq!(code, Some(4500));
    alive.send(&send("/topic/hb", "still here")).await;
    alive
        .send_with_receipt(Frame::new(Command::Disconnect), "bye")
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_closed_and_others_get_everything() {
    let mut config = common::test_config();
    config.session.send_buffer_size_limit = 256 * 1024;
    config.session.send_time_limit = Duration::from_secs(1);
    let server = TestServer::start(config).await;
    // The slow subscriber never reads: its socket buffers fill, then its outbox.
    let mut slow = Client::connect(&server.url()).await;
    slow.subscribe("slow", "/topic/flood", "auto").await;
    let mut fast = Client::connect(&server.url()).await;
    fast.subscribe("fast", "/topic/flood", "auto").await;
    let mut publisher = Client::connect(&server.url()).await;
    let payload = "x".repeat(8 * 1024);
    // 32 MB: far past loopback socket buffers and the 256 KiB limit.
    let total = 4_000;
    // The fast subscriber reports progress; the publisher never gets more than 24 messages
    // (200 KiB) ahead of it, so it stays under the limit whatever the machine's speed.
    let (progress, mut seen) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        for n in 0..total {
            let m = match fast.next_event().await {
                Event::Frame(f) => f,
                other => panic!("fast subscriber at message {n}: {other:?}"),
            };
            assert_eq!(m.header("n"), Some(n.to_string().as_str()), "in order");
            progress.send_replace(n + 1);
        }
        fast
    });
    for n in 0..total {
        publisher
            .send(&send("/topic/flood", &payload).with_header("n", n.to_string()))
            .await;
        tokio::time::timeout(common::WAIT, seen.wait_for(|&got| got + 24 > n))
            .await
            .expect("fast subscriber keeps up")
            .expect("reader alive");
    }
    let mut fast = reader.await.expect("fast subscriber got every message");
    // Its socket is full, so the 4500 close frame may not get through: the server drops it.
    let (_, code) = slow.closed().await;
    assert!(matches!(code, Some(4500) | None), "closed with {code:?}");
    let mut sessions = server.server.session_count();
    for _ in 0..100 {
        if sessions == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        sessions = server.server.session_count();
    }
    assert_eq!(
        sessions, 2,
        "only the fast subscriber and the publisher remain"
    );
    fast.send_with_receipt(send("/topic/flood", "after"), "r")
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_handler_announces_entry_and_relays_talk() {
    let server = TestServer::start(common::test_config()).await;
    let mut alice = Client::connect(&server.url()).await;
    alice.subscribe("room", "/topic/chat/room/1", "auto").await;
    let mut bob = Client::connect(&server.url()).await;
    bob.subscribe("room", "/topic/chat/room/1", "auto").await;
    bob.send(
        &send(
            "/app/chat/message",
            r#"{"type":"ENTER","roomId":"1","sender":"bob","message":""}"#,
        )
        .with_header("content-type", "application/json"),
    )
    .await;
    bob.send(&send(
        "/app/chat/message",
        r#"{"type":"TALK","roomId":"1","sender":"bob","message":"안녕하세요"}"#,
    ))
    .await;
    for client in [&mut alice, &mut bob] {
        let messages = client.messages(2).await;
        let enter: serde_json::Value = serde_json::from_slice(messages[0].body()).unwrap();
        assert_eq!(enter["message"], "bob님이 입장했습니다.");
        assert_eq!(enter["type"], "ENTER");
        assert_eq!(messages[0].header("content-type"), Some("application/json"));
        assert_eq!(
            messages[0].header("destination"),
            Some("/topic/chat/room/1")
        );
        let talk: serde_json::Value = serde_json::from_slice(messages[1].body()).unwrap();
        assert_eq!(talk["message"], "안녕하세요");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_flushes_then_closes_with_1001() {
    let server = TestServer::start(common::test_config()).await;
    let mut c = Client::connect(&server.url()).await;
    c.subscribe("s", "/topic/last", "auto").await;
    let messaging = server.server.messaging();
    for n in 0..100 {
        messaging
            .send("/topic/last", vec![], n.to_string())
            .unwrap();
    }
    server.server.shutdown_token().cancel();
    let (frames, code) = c.closed().await;
    assert_eq!(
        frames.len(),
        100,
        "every queued message flushed before the close"
    );
    assert_eq!(code, Some(1001));
    let url = server.url();
    server.shutdown().await;
    assert!(
        Client::open_with(&url, None, None).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_publishing_fast_to_its_own_subscription_gets_every_message() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    const COUNT: usize = 20_000;
    let server = TestServer::start(common::test_config()).await;
    let (ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let frames = [
        "CONNECT\naccept-version:1.2\nhost:h\nheart-beat:0,0\n\n\0".to_owned(),
        "SUBSCRIBE\nid:0\ndestination:/topic/self\nreceipt:sub\n\n\0".to_owned(),
    ];
    for frame in frames {
        tx.send(Message::text(frame)).await.expect("send");
    }
    // Reads everything, concurrently with the writer, until all messages are in or the
    // connection ends.
    let reader = tokio::spawn(async move {
        let mut messages = 0;
        while messages < COUNT {
            match tokio::time::timeout(common::WAIT, rx.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    messages += text.matches("MESSAGE\n").count();
                }
                Ok(Some(Ok(Message::Close(frame)))) => return (messages, frame.map(|f| f.code)),
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        (messages, None)
    });
    let body = "x".repeat(100);
    for _ in 0..COUNT {
        let frame = format!("SEND\ndestination:/topic/self\n\n{body}\0");
        if tx.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    let (messages, close) = reader.await.expect("reader");
    assert_eq!(
        (messages, close),
        (COUNT, None),
        "closed as a slow consumer?"
    );
    server.shutdown().await;
}
