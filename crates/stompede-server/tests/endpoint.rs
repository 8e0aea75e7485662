//! The WebSocket endpoint: handshake, origins, connection limit.

mod common;

use common::{Client, TestServer};
use stompede_stomp::{Command, Frame};

fn handshake_status(err: tokio_tungstenite::tungstenite::Error) -> u16 {
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_only_by_default() {
    let server = TestServer::start(common::test_config()).await;
    let own = format!("http://{}", server.addr);
    Client::open_with(&server.url(), None, Some(&own))
        .await
        .expect("same origin accepted");
    let err = Client::open_with(&server.url(), None, Some("http://evil.example"))
        .await
        .err()
        .expect("foreign origin refused");
    assert_eq!(handshake_status(err), 403);
    // No Origin header: not a browser, accepted.
    Client::open_with(&server.url(), None, None)
        .await
        .expect("no origin accepted");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_and_wildcard() {
    let mut config = common::test_config();
    config.endpoint.allowed_origins = vec!["https://chat.example.com".into()];
    let server = TestServer::start(config).await;
    Client::open_with(&server.url(), None, Some("https://chat.example.com"))
        .await
        .expect("listed origin accepted");
    let own = format!("http://{}", server.addr);
    let err = Client::open_with(&server.url(), None, Some(&own))
        .await
        .err()
        .unwrap();
    assert_eq!(handshake_status(err), 403, "a list replaces same-origin");
    server.shutdown().await;

    let mut config = common::test_config();
    config.endpoint.allowed_origins = vec!["*".into()];
    let server = TestServer::start(config).await;
    Client::open_with(&server.url(), None, Some("http://anything.example"))
        .await
        .expect("any origin accepted");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_refuses_with_503_and_frees_on_close() {
    let mut config = common::test_config();
    config.server.max_connections = 2;
    let server = TestServer::start(config).await;
    let a = Client::connect(&server.url()).await;
    let _b = Client::connect(&server.url()).await;
    let err = Client::open_with(&server.url(), None, None)
        .await
        .err()
        .unwrap();
    assert_eq!(handshake_status(err), 503);
    a.close_socket().await;
    // The slot frees once the server has seen the close; retry a bounded number of times.
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(c) = Client::open_with(&server.url(), None, None).await {
            admitted = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut c = admitted.expect("a slot frees after a client leaves");
    let reply = c
        .handshake(Frame::new(Command::Connect).with_header("accept-version", "1.2"))
        .await;
    assert_eq!(reply.command(), Command::Connected);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_websocket_path_is_refused() {
    let server = TestServer::start(common::test_config()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /ws/websocket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 400") || response.starts_with("HTTP/1.1 426"),
        "{response}"
    );
    server.shutdown().await;
}
