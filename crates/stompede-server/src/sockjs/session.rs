//! SockJS sessions: they outlive the HTTP requests that carry them. A session holds the
//! messages waiting for the client, lets one receiving request at a time take them, ends the
//! application's stream when the client goes away, and is the [`SockJsConnection`] the
//! application runs on.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::frame;
use crate::transport::{Inbound, Outbound, TransportError};

/// Inbound messages buffered for the application before senders wait.
const INBOUND_CAPACITY: usize = 64;

/// Close frame for a receiving request the client aborted.
pub(crate) const INTERRUPTED: (u16, &str) = (1002, "Connection interrupted");
/// Close frame for a second receiving request.
pub(crate) const ANOTHER_CONNECTION: (u16, &str) = (2010, "Another connection still open");
/// Close frame when the application drops its connection without closing it.
const NORMAL: (u16, &str) = (1000, "Normal closure");

/// One SockJS session.
#[derive(Debug)]
pub(crate) struct Session {
    state: Mutex<State>,
    /// Wakes the attached receiver: messages or a close arrived.
    wake_receiver: Notify,
    cache_size: usize,
}

#[derive(Debug)]
struct State {
    /// JSON-encoded messages waiting for a receiver.
    queue: VecDeque<String>,
    /// The open frame is still owed to the first receiver.
    open_pending: bool,
    /// The close frame, once closed; served to every later receiver.
    closed: Option<String>,
    /// A receiving request is attached.
    receiver: bool,
    /// Since when no receiver is attached.
    idle_since: Instant,
    /// The application's inbound stream; dropped to end it.
    inbound: Option<mpsc::Sender<Inbound>>,
    /// The application waits for room in `queue`.
    writer: Option<Waker>,
}

impl State {
    /// Closes after the messages already queued.
    fn close(&mut self, code: u16, reason: &str) {
        if self.closed.is_none() {
            self.closed = Some(frame::close_frame(code, reason));
        }
        self.inbound = None;
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }
}

impl Session {
    /// A new session and the connection the application runs on.
    pub(crate) fn new(cache_size: usize) -> (Arc<Session>, SockJsConnection) {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let session = Arc::new(Session {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                open_pending: true,
                closed: None,
                receiver: false,
                idle_since: Instant::now(),
                inbound: Some(tx),
                writer: None,
            }),
            wake_receiver: Notify::new(),
            cache_size,
        });
        let conn = SockJsConnection {
            session: Arc::clone(&session),
            inbound: rx,
        };
        (session, conn)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (every update is a single assignment or
        // a queue operation), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Attaches a receiving request. A closed session gives a receiver that yields its close
    /// frame; a session with a receiver already attached gives `None`.
    pub(crate) fn attach(self: &Arc<Self>) -> Option<Receiver> {
        let mut state = self.state();
        if state.closed.is_none() {
            if state.receiver {
                return None;
            }
            state.receiver = true;
        }
        Some(Receiver {
            session: Arc::clone(self),
            attached: state.closed.is_none(),
        })
    }

    /// Where messages from the client go; `None` once the session is closed.
    pub(crate) fn inbound(&self) -> Option<mpsc::Sender<Inbound>> {
        self.state().inbound.clone()
    }

    /// Closes the session with a close frame for the client.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        self.state().close(code, reason);
        self.wake_receiver.notify_one();
    }

    /// Closes the session if no receiver was attached for `delay`; returns whether it is
    /// closed and can be forgotten.
    fn expire(&self, delay: Duration, now: Instant) -> bool {
        let mut state = self.state();
        if state.receiver || now.saturating_duration_since(state.idle_since) < delay {
            return false;
        }
        // Nobody is listening: the frame is only for the record.
        state.queue.clear();
        state.open_pending = false;
        state.close(INTERRUPTED.0, INTERRUPTED.1);
        true
    }
}

/// What a receiving request writes next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// `o` or `a[...]`.
    Frame(String),
    /// Nothing to send for a heartbeat interval: send `h`.
    Heartbeat,
    /// The session is closed: send this `c[...]` frame and end the request.
    Close(String),
}

/// The receiving request attached to a session. Dropped without [`Receiver::finish`] (the
/// client aborted the request), it closes the session with 1002.
#[derive(Debug)]
pub(crate) struct Receiver {
    session: Arc<Session>,
    attached: bool,
}

impl Receiver {
    /// Waits for the next frame, or a heartbeat interval. Cancel-safe.
    pub(crate) async fn next(&mut self, heartbeat: Duration) -> Next {
        // A configured heartbeat too large for an `Instant` means never.
        let now = Instant::now();
        let deadline = now
            .checked_add(heartbeat)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        loop {
            {
                let mut state = self.session.state();
                if state.open_pending {
                    state.open_pending = false;
                    return Next::Frame(frame::OPEN.to_owned());
                }
                if !state.queue.is_empty() {
                    let frame = frame::array_frame(state.queue.iter().map(String::as_str));
                    state.queue.clear();
                    if let Some(writer) = state.writer.take() {
                        writer.wake();
                    }
                    return Next::Frame(frame);
                }
                if let Some(close) = &state.closed {
                    let close = close.clone();
                    if self.attached {
                        // Unlink now, so that the next request gets this frame rather than
                        // "another connection still open".
                        state.receiver = false;
                        state.idle_since = Instant::now();
                        self.attached = false;
                    }
                    return Next::Close(close);
                }
            }
            tokio::select! {
                () = self.session.wake_receiver.notified() => {}
                () = tokio::time::sleep_until(deadline) => return Next::Heartbeat,
            }
        }
    }

    /// The request ended normally: detach, and start the disconnect delay.
    pub(crate) fn finish(mut self) {
        self.detach(false);
    }

    fn detach(&mut self, aborted: bool) {
        if !self.attached {
            return;
        }
        self.attached = false;
        let mut state = self.session.state();
        state.receiver = false;
        state.idle_since = Instant::now();
        if aborted {
            // Undefined what reached the client: drop the rest rather than guess.
            state.queue.clear();
            state.open_pending = false;
            state.close(INTERRUPTED.0, INTERRUPTED.1);
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.detach(true);
    }
}

/// The sessions of one SockJS endpoint, by session id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Registry {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().get(id).cloned()
    }

    /// Stores a new session unless the id is taken (by a concurrent request); returns the
    /// session stored under `id`.
    pub(crate) fn insert(&self, id: &str, session: Arc<Session>) -> (Arc<Session>, bool) {
        let mut map = self.map();
        if let Some(existing) = map.get(id) {
            return (Arc::clone(existing), false);
        }
        map.insert(id.to_owned(), Arc::clone(&session));
        (session, true)
    }

    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }

    /// Closes and forgets the sessions without a receiver for `delay`.
    pub(crate) fn sweep(&self, delay: Duration) -> usize {
        let now = Instant::now();
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, session| !session.expire(delay, now));
        before - map.len()
    }

    /// Closes every session (server shutdown).
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        for session in self.map().values() {
            session.close(code, reason);
        }
    }
}

/// A SockJS session as a [`Connection`](crate::transport::Connection): the client's messages
/// in order, and a sink bounded by `sockjs.http_message_cache_size` messages.
#[derive(Debug)]
pub struct SockJsConnection {
    session: Arc<Session>,
    inbound: mpsc::Receiver<Inbound>,
}

impl Stream for SockJsConnection {
    type Item = Result<Inbound, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inbound.poll_recv(cx).map(|item| item.map(Ok))
    }
}

impl Sink<Outbound> for SockJsConnection {
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let mut state = self.session.state();
        if state.closed.is_some() {
            return Poll::Ready(Err(TransportError::Closed));
        }
        if state.queue.len() >= self.session.cache_size {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Outbound) -> Result<(), Self::Error> {
        match item {
            Outbound::Data(data) => {
                let text = String::from_utf8_lossy(&data);
                if let Cow::Owned(_) = text {
                    tracing::debug!("non-UTF-8 message sent over SockJS as lossy text");
                }
                let message = frame::json_string(&text);
                let mut state = self.session.state();
                if state.closed.is_some() {
                    return Err(TransportError::Closed);
                }
                state.queue.push_back(message);
            }
            Outbound::Binary(_) => return Err(TransportError::Unsupported),
            Outbound::Close { code, reason } => self.session.state().close(code, &reason),
        }
        self.session.wake_receiver.notify_one();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Queued messages belong to the session; a receiver takes them.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.session.close(NORMAL.0, NORMAL.1);
        Poll::Ready(Ok(()))
    }
}

impl Drop for SockJsConnection {
    fn drop(&mut self) {
        self.session.close(NORMAL.0, NORMAL.1);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};

    use super::*;

    const HB: Duration = Duration::from_secs(25);

    #[tokio::test(start_paused = true)]
    async fn first_receiver_gets_open_then_messages_in_order() {
        let (session, mut conn) = Session::new(100);
        let mut rx = session.attach().expect("free");
        assert_eq!(rx.next(HB).await, Next::Frame("o".to_owned()));
        conn.send(Outbound::Data("a".into())).await.unwrap();
        conn.send(Outbound::Data("b\n".into())).await.unwrap();
        assert_eq!(rx.next(HB).await, Next::Frame(r#"a["a","b\n"]"#.to_owned()));
        rx.finish();
        // Cached between receivers.
        conn.send(Outbound::Data("c".into())).await.unwrap();
        let mut rx = session.attach().expect("free again");
        assert_eq!(rx.next(HB).await, Next::Frame(r#"a["c"]"#.to_owned()));
        rx.finish();
    }

    #[tokio::test(start_paused = true)]
    async fn idle_receiver_gets_a_heartbeat() {
        let (session, _conn) = Session::new(100);
        let mut rx = session.attach().expect("free");
        assert_eq!(rx.next(HB).await, Next::Frame("o".to_owned()));
        let started = Instant::now();
        assert_eq!(rx.next(HB).await, Next::Heartbeat);
        assert_eq!(started.elapsed(), HB);
        rx.finish();
    }

    #[tokio::test(start_paused = true)]
    async fn one_receiver_at_a_time() {
        let (session, _conn) = Session::new(100);
        let rx = session.attach().expect("free");
        assert!(session.attach().is_none());
        rx.finish();
        assert!(session.attach().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_receiver_closes_with_1002_and_ends_the_app_stream() {
        let (session, mut conn) = Session::new(100);
        drop(session.attach().expect("free"));
        assert!(conn.next().await.is_none());
        let mut rx = session
            .attach()
            .expect("closed sessions serve their close frame");
        assert_eq!(
            rx.next(HB).await,
            Next::Close(r#"c[1002,"Connection interrupted"]"#.to_owned())
        );
        assert!(matches!(
            conn.send(Outbound::Data("x".into())).await,
            Err(TransportError::Closed)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn app_close_is_served_to_every_later_receiver() {
        let (session, mut conn) = Session::new(100);
        conn.send(Outbound::Close {
            code: 3000,
            reason: "Go away!".into(),
        })
        .await
        .unwrap();
        let mut rx = session
            .attach()
            .expect("closed sessions serve their close frame");
        assert_eq!(rx.next(HB).await, Next::Frame("o".to_owned()));
        for _ in 0..3 {
            assert_eq!(
                rx.next(HB).await,
                Next::Close(r#"c[3000,"Go away!"]"#.to_owned())
            );
            rx = session
                .attach()
                .expect("closed sessions serve their close frame");
        }
        assert!(
            conn.next().await.is_none(),
            "closing ends the app's inbound stream"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn messages_sent_before_a_close_are_delivered_first() {
        let (session, mut conn) = Session::new(100);
        conn.send(Outbound::Data("ERROR".into())).await.unwrap();
        conn.send(Outbound::Close {
            code: 1002,
            reason: "bad".into(),
        })
        .await
        .unwrap();
        let mut rx = session.attach().expect("free");
        assert_eq!(rx.next(HB).await, Next::Frame("o".to_owned()));
        assert_eq!(rx.next(HB).await, Next::Frame(r#"a["ERROR"]"#.to_owned()));
        assert_eq!(
            rx.next(HB).await,
            Next::Close(r#"c[1002,"bad"]"#.to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn full_cache_makes_the_sender_wait_until_a_receiver_drains_it() {
        let (session, mut conn) = Session::new(2);
        conn.send(Outbound::Data("1".into())).await.unwrap();
        conn.send(Outbound::Data("2".into())).await.unwrap();
        let third = tokio::time::timeout(
            Duration::from_secs(1),
            conn.send(Outbound::Data("3".into())),
        );
        assert!(
            third.await.is_err(),
            "the sink is not ready while the cache is full"
        );
        let mut rx = session.attach().expect("free");
        assert_eq!(rx.next(HB).await, Next::Frame("o".to_owned()));
        assert_eq!(rx.next(HB).await, Next::Frame(r#"a["1","2"]"#.to_owned()));
        conn.send(Outbound::Data("3".into())).await.unwrap();
        assert_eq!(rx.next(HB).await, Next::Frame(r#"a["3"]"#.to_owned()));
        rx.finish();
    }

    #[tokio::test(start_paused = true)]
    async fn binary_is_refused_and_invalid_utf8_sent_lossy() {
        let (session, mut conn) = Session::new(10);
        assert!(matches!(
            conn.send(Outbound::Binary(vec![1, 2].into())).await,
            Err(TransportError::Unsupported)
        ));
        conn.send(Outbound::Data(vec![b'a', 0xff].into()))
            .await
            .unwrap();
        let mut rx = session.attach().expect("free");
        rx.next(HB).await;
        // U+FFFD is in a range SockJS escapes.
        assert_eq!(rx.next(HB).await, Next::Frame(r#"a["a\ufffd"]"#.to_owned()));
        rx.finish();
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_forgets_sessions_idle_past_the_delay() {
        let registry = Registry::default();
        let (idle, mut idle_conn) = Session::new(10);
        let (busy, _busy_conn) = Session::new(10);
        registry.insert("idle", idle);
        let (busy, created) = registry.insert("busy", busy);
        assert!(created);
        let rx = busy.attach().expect("free");
        let delay = Duration::from_secs(5);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(registry.sweep(delay), 0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(registry.sweep(delay), 1);
        assert!(registry.get("idle").is_none());
        assert!(
            registry.get("busy").is_some(),
            "a session with a receiver stays"
        );
        assert!(idle_conn.next().await.is_none(), "the app sees the end");
        rx.finish();
    }

    #[tokio::test(start_paused = true)]
    async fn client_messages_reach_the_app_in_order() {
        let (session, mut conn) = Session::new(10);
        let tx = session.inbound().expect("open");
        tx.send(Inbound::Text("1".into())).await.unwrap();
        tx.send(Inbound::Text("2".into())).await.unwrap();
        assert_eq!(
            conn.next().await.unwrap().unwrap(),
            Inbound::Text("1".into())
        );
        assert_eq!(
            conn.next().await.unwrap().unwrap(),
            Inbound::Text("2".into())
        );
        drop(conn);
        assert!(
            session.inbound().is_none(),
            "a dropped app closes the session"
        );
    }
}
