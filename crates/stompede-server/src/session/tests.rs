//! The session state machine over channels, with paused time: heart-beat and connect
//! deadlines are checked without sleeping.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio::sync::mpsc;

use super::*;
use crate::transport::Inbound;
use crate::{Config, Stompede};

/// A connection made of two channels.
struct ChannelConnection {
    inbound: mpsc::UnboundedReceiver<Bytes>,
    outbound: mpsc::UnboundedSender<Outbound>,
}

impl Stream for ChannelConnection {
    type Item = Result<Inbound, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inbound
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Inbound::Text(b))))
    }
}

impl Sink<Outbound> for ChannelConnection {
    type Error = TransportError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: Outbound) -> Result<(), Self::Error> {
        self.outbound
            .send(item)
            .map_err(|_| TransportError::Failed("test peer gone".into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

struct Peer {
    to_server: mpsc::UnboundedSender<Bytes>,
    from_server: mpsc::UnboundedReceiver<Outbound>,
    decoder: Decoder,
    buf: BytesMut,
}

impl Peer {
    fn send(&self, frame: &Frame) {
        let mut out = BytesMut::new();
        encode(frame, Version::V1_2, &mut out);
        self.to_server.send(out.freeze()).expect("session alive");
    }

    /// The next thing the session sends: a frame, a heart-beat (`None`) or a close code.
    async fn next(&mut self) -> Result<Option<Frame>, u16> {
        match self
            .from_server
            .recv()
            .await
            .expect("session sent something")
        {
            Outbound::Close { code, .. } => Err(code),
            Outbound::Data(data) if data.as_ref() == HEARTBEAT => Ok(None),
            Outbound::Binary(_) => panic!("STOMP sessions send text"),
            Outbound::Data(data) => {
                self.buf.extend_from_slice(&data);
                Ok(Some(
                    self.decoder
                        .decode(&mut self.buf)
                        .expect("valid frame")
                        .expect("whole frame"),
                ))
            }
        }
    }
}

fn start(config: Config) -> (Peer, tokio::task::JoinHandle<()>) {
    let shared = Stompede::new(config).shared();
    let (to_server, inbound) = mpsc::unbounded_channel();
    let (outbound, from_server) = mpsc::unbounded_channel();
    let conn = ChannelConnection { inbound, outbound };
    let task = tokio::spawn(run(conn, SessionId(1), Arc::default(), shared));
    let peer = Peer {
        to_server,
        from_server,
        decoder: Decoder::new(stompede_stomp::Limits::default()),
        buf: BytesMut::new(),
    };
    (peer, task)
}

fn connect(heart_beat: &str) -> Frame {
    Frame::new(Command::Connect)
        .with_header("accept-version", "1.2")
        .with_header("heart-beat", heart_beat)
}

#[tokio::test(start_paused = true)]
async fn silent_client_is_closed_after_heartbeat_window() {
    let (mut peer, session) = start(Config::default());
    // The client promises a beat every second; the server asks for one every 10 s.
    peer.send(&connect("1000,0"));
    let connected = peer.next().await.unwrap().unwrap();
    assert_eq!(connected.header("heart-beat"), Some("10000,10000"));
    let started = Instant::now();
    // It says nothing more; paused time jumps to the deadline: 2 x max(1 s, 10 s).
    assert_eq!(peer.next().await, Err(close_code::NOT_RELIABLE));
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    session.await.expect("session task");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_from_the_client_keep_the_session_open() {
    let (mut peer, session) = start(Config::default());
    peer.send(&connect("1000,0"));
    peer.next().await.unwrap();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        peer.to_server.send(Bytes::from_static(b"\n")).unwrap();
    }
    assert!(
        peer.from_server.try_recv().is_err(),
        "nothing sent, not closed"
    );
    drop(peer);
    session.await.expect("session task");
}

#[tokio::test(start_paused = true)]
async fn server_sends_heartbeats_when_idle() {
    let (mut peer, session) = start(Config::default());
    peer.send(&connect("0,1000"));
    peer.next().await.unwrap();
    let started = Instant::now();
    assert_eq!(peer.next().await, Ok(None));
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(peer.next().await, Ok(None));
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    drop(peer);
    session.await.expect("session task");
}

#[tokio::test(start_paused = true)]
async fn client_that_never_connects_is_closed() {
    let (mut peer, session) = start(Config::default());
    let started = Instant::now();
    // Bytes that never make a frame do not extend the deadline.
    peer.to_server.send(Bytes::from_static(b"CONN")).unwrap();
    assert_eq!(peer.next().await, Err(close_code::NOT_RELIABLE));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    session.await.expect("session task");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_disabled_by_zero() {
    let mut config = Config::default();
    config.heartbeat.send = Duration::ZERO;
    config.heartbeat.receive = Duration::ZERO;
    let (mut peer, session) = start(config);
    peer.send(&connect("1000,1000"));
    let connected = peer.next().await.unwrap().unwrap();
    assert_eq!(connected.header("heart-beat"), Some("0,0"));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(peer.from_server.try_recv().is_err(), "no beats, no close");
    drop(peer);
    session.await.expect("session task");
}

#[tokio::test(start_paused = true)]
async fn absurd_heartbeat_intervals_mean_never_not_a_panic() {
    let (mut peer, session) = start(Config::default());
    // u64::MAX milliseconds both ways: negotiated intervals overflow any Instant.
    peer.send(&connect("18446744073709551615,18446744073709551615"));
    let connected = peer.next().await.unwrap().unwrap();
    assert_eq!(connected.command(), Command::Connected);
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert!(peer.from_server.try_recv().is_err(), "no beats, no close");
    peer.send(&Frame::new(Command::Disconnect).with_header("receipt", "bye"));
    let receipt = peer.next().await.unwrap().unwrap();
    assert_eq!(receipt.header("receipt-id"), Some("bye"));
    assert_eq!(peer.next().await, Err(close_code::NORMAL));
    session.await.expect("session task did not panic");
}
