//! STOMP over SockJS's HTTP transports against a real server: sessions, limits, origins and
//! graceful shutdown. (The protocol itself is checked byte by byte by `tests/sockjs`, in Python,
//! against the SockJS test server.)

mod common;

use std::time::Duration;

use common::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request on a fresh connection; returns the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let status = head[9..12].parse().expect("status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

fn xhr_send_body(frames: &[&str]) -> String {
    serde_json::to_string(frames).expect("json")
}

/// Every STOMP frame in the `a[...]` frames of `body`.
fn stomp_frames(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix('a'))
        .flat_map(|array| serde_json::from_str::<Vec<String>>(array).expect("a[...] frame"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_over_xhr_polling_round_trip() {
    let server = TestServer::start(common::test_config()).await;
    let base = "/ws/000/poll1";
    let (status, body) = request(server.addr, "POST", &format!("{base}/xhr"), &[], "").await;
    assert_eq!((status, body.as_str()), (200, "o\n"));
    let frames = xhr_send_body(&[
        "CONNECT\naccept-version:1.2\nhost:h\nheart-beat:0,0\n\n\0",
        "SUBSCRIBE\nid:0\ndestination:/topic/t\n\n\0",
        "SEND\ndestination:/topic/t\nreceipt:r1\n\n안녕 \u{2028} 😀\0",
    ]);
    let (status, _) = request(
        server.addr,
        "POST",
        &format!("{base}/xhr_send"),
        &[],
        &frames,
    )
    .await;
    assert_eq!(status, 204);
    let mut received = Vec::new();
    while !received.iter().any(|f: &String| f.starts_with("RECEIPT")) {
        let (status, body) = request(server.addr, "POST", &format!("{base}/xhr"), &[], "").await;
        assert_eq!(status, 200);
        received.extend(stomp_frames(&body));
    }
    assert!(
        received[0].starts_with("CONNECTED\nversion:1.2\n"),
        "{received:?}"
    );
    let message = received
        .iter()
        .find(|f| f.starts_with("MESSAGE\n"))
        .expect("MESSAGE");
    assert!(message.ends_with("\n\n안녕 \u{2028} 😀\0"), "{message:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_gets_the_shutdown_close_frame() {
    let server = TestServer::start(common::test_config()).await;
    let addr = server.addr;
    let base = "/ws/000/shut1";
    assert_eq!(
        request(addr, "POST", &format!("{base}/xhr"), &[], "")
            .await
            .1,
        "o\n"
    );
    let connect = xhr_send_body(&["CONNECT\naccept-version:1.2\nhost:h\nheart-beat:0,0\n\n\0"]);
    request(addr, "POST", &format!("{base}/xhr_send"), &[], &connect).await;
    let connected = request(addr, "POST", &format!("{base}/xhr"), &[], "")
        .await
        .1;
    assert!(connected.starts_with("a[\"CONNECTED"), "{connected}");
    let poll =
        tokio::spawn(async move { request(addr, "POST", &format!("{base}/xhr"), &[], "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = server.server.shutdown_token();
    token.cancel();
    let (status, body) = tokio::time::timeout(WAIT, poll)
        .await
        .expect("in time")
        .expect("poll");
    assert_eq!(
        (status, body.as_str()),
        (200, "c[1001,\"server shutting down\"]\n")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_sessions_count_toward_the_connection_limit() {
    let mut config = common::test_config();
    config.server.max_connections = 1;
    config.sockjs.disconnect_delay = Duration::from_millis(200);
    let server = TestServer::start(config).await;
    let (status, _) = request(server.addr, "POST", "/ws/000/first/xhr", &[], "").await;
    assert_eq!(status, 200);
    let (status, body) = request(server.addr, "POST", "/ws/000/second/xhr", &[], "").await;
    assert_eq!((status, body.as_str()), (503, "too many connections\n"));
    // The first session expires without a receiver, then there is room again.
    let mut status = 503;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = request(server.addr, "POST", "/ws/000/third/xhr", &[], "")
            .await
            .0;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_are_checked_on_every_request() {
    let mut config = common::test_config();
    config.endpoint.allowed_origins = vec!["https://chat.example.com".into()];
    let server = TestServer::start(config).await;
    let addr = server.addr;
    let good = [("Origin", "https://chat.example.com")];
    let evil = [("Origin", "https://evil.example")];
    assert_eq!(
        request(addr, "POST", "/ws/000/o1/xhr", &good, "").await.0,
        200
    );
    assert_eq!(
        request(addr, "POST", "/ws/000/o1/xhr_send", &evil, "[\"x\"]")
            .await
            .0,
        403
    );
    assert_eq!(
        request(addr, "POST", "/ws/000/o2/xhr", &evil, "").await.0,
        403
    );
    assert_eq!(request(addr, "GET", "/ws/info", &evil, "").await.0, 403);
    assert_eq!(
        request(addr, "GET", "/ws/000/o3/eventsource", &evil, "")
            .await
            .0,
        403
    );
    // A foreign page's script tag carries no Origin, but the browser says where it came from.
    let cross_site = [("Sec-Fetch-Site", "cross-site")];
    assert_eq!(
        request(addr, "GET", "/ws/000/o4/jsonp?c=cb", &cross_site, "")
            .await
            .0,
        403
    );
    // Iframe transports are off where origins are a list.
    assert_eq!(
        request(addr, "GET", "/ws/iframe.html", &good, "").await.0,
        404
    );
    server.shutdown().await;
}
