//! The background task that owns the connection: one per client.
//!
//! It runs one `select!` over the handles' commands, the transport, room in the transport's
//! writer queue (while frames wait to go out), the subscription that is full (if one is),
//! and timers: our heart-beat, the server's silence, and the receipt awaited while
//! disconnecting or restoring subscriptions. Commands gather into a batch (one WebSocket
//! flush or one `xhr_send`) while the writer is busy; reading never waits for writing. When
//! the connection is lost it fails the waiting receipts, then either closes the client or,
//! with reconnection on, backs off, reconnects, and subscribes every active subscription
//! again before reporting [`State::Connected`].

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use stompede_stomp::{encode, Command, Frame, Version, HEARTBEAT};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::{next_id, Cmd, Shared, State, Waiter};
use crate::config::{Backoff, ClientConfig};
use crate::connection::{self, Connection};
use crate::error::{Error, ProtocolError};
use crate::message::{AckContext, Message};
use crate::random;
use crate::router::{Pending, Route, Routed, Router};
use crate::subscription::AckMode;
use crate::transport::{Link, Write};

/// Most commands written in one batch.
const BATCH_FRAMES: usize = 64;
/// Bytes read from the transport in one turn when more is ready.
const READ_AHEAD: usize = 256 * 1024;
/// Stop adding commands to a batch past this many body bytes: a SockJS server refuses
/// `xhr_send` bodies past its message limit (1 MiB on stompede, by default).
const BATCH_BYTES: usize = 256 * 1024;

pub(crate) struct Driver {
    config: Arc<ClientConfig>,
    commands: mpsc::Receiver<Cmd>,
    state: watch::Sender<State>,
    ids: Arc<AtomicU64>,
    shared: Weak<Shared>,
    router: Router,
}

/// How serving one connection ended.
enum Ended {
    /// Disconnected on purpose (or every handle is gone); `result` goes to `done`.
    Closed {
        done: Vec<Waiter>,
        result: Result<(), Error>,
    },
    /// The connection failed.
    Lost(Error),
}

/// How reconnecting ended.
enum Reconnected {
    Yes(Box<Connection>),
    GaveUp(Error),
    /// Disconnect asked for (or every handle gone) meanwhile.
    Stopped(Vec<Waiter>),
}

/// A DISCONNECT awaiting its receipt.
struct Closing {
    done: Vec<Waiter>,
    deadline: Instant,
}

/// A message for a subscription whose buffer is full: reading stops until it has room.
struct Blocked {
    id: String,
    tx: mpsc::Sender<Result<Message, Error>>,
    item: Result<Message, Error>,
}

impl Driver {
    pub(crate) fn new(
        config: ClientConfig,
        commands: mpsc::Receiver<Cmd>,
        state: watch::Sender<State>,
        ids: Arc<AtomicU64>,
        shared: Weak<Shared>,
    ) -> Driver {
        Driver {
            config: Arc::new(config),
            commands,
            state,
            ids,
            shared,
            router: Router::default(),
        }
    }

    pub(crate) async fn run(mut self, mut conn: Connection) {
        loop {
            let ended = self.serve(&mut conn).await;
            match ended {
                Ended::Closed { done, result } => {
                    conn.link.close().await;
                    tracing::info!("STOMP client disconnected");
                    self.finish(None);
                    for waiter in done {
                        let _ = waiter.send(result.clone());
                    }
                    return;
                }
                Ended::Lost(cause) => {
                    // Nothing polite to wait for on a failed connection: drop it at once.
                    let next = conn.session.connection + 1;
                    drop(conn);
                    tracing::info!(error = %cause, "STOMP connection lost");
                    self.router.fail_receipts(&cause);
                    let Some(backoff) = self.config.reconnect.clone() else {
                        self.finish(Some(cause));
                        return;
                    };
                    match self.reconnect(&backoff, cause, next).await {
                        Reconnected::Yes(new) => conn = *new,
                        Reconnected::GaveUp(cause) => {
                            tracing::info!(error = %cause, "STOMP client gave up reconnecting");
                            self.finish(Some(cause));
                            return;
                        }
                        Reconnected::Stopped(done) => {
                            self.finish(None);
                            for waiter in done {
                                let _ = waiter.send(Ok(()));
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    fn next_id(&self) -> String {
        next_id(&self.ids, "r-")
    }

    /// Serves one connection until it ends.
    async fn serve(&mut self, conn: &mut Connection) -> Ended {
        let session = conn.session.clone();
        let context = AckContext {
            shared: self.shared.clone(),
            mode: AckMode::Auto,
            version: session.version,
            connection: session.connection,
        };
        let mut outbox: Vec<Frame> = Vec::new();
        let mut restore_deadline = None;
        if session.connection > 1 {
            self.restore(&mut outbox);
            if self.router.restoring() == 0 {
                self.state.send_replace(State::Connected(session.clone()));
            } else {
                restore_deadline = Some(Instant::now() + self.config.receipt_timeout);
            }
        }
        let mut last_read = Instant::now();
        let mut last_write = Instant::now();
        let mut blocked: Option<Blocked> = None;
        let mut closing: Option<Closing> = None;
        // A transport error met while reading ahead, acted on once the frames read before
        // it (an ERROR, say) are handled.
        let mut failed: Option<Error> = None;
        // Our own handle on the writer's queue, so that waiting for room in it does not
        // borrow the link, which is read meanwhile.
        let writer = conn.link.writer();
        loop {
            // Frames already received come first; a full subscription stops them.
            while blocked.is_none() {
                let frame = match conn.decoder.decode(&mut conn.buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => return Ended::Lost(ProtocolError::Decode(e).into()),
                };
                tracing::debug!(command = ?frame.command(), "frame received");
                let routed = match self.router.on_frame(frame, &context) {
                    Ok(routed) => routed,
                    Err(e) => return Ended::Lost(e.into()),
                };
                match routed {
                    Routed::Deliver { id, message } => {
                        blocked = self.deliver(id, Ok(message), closing.is_some(), &mut outbox);
                    }
                    Routed::Unrouted => tracing::debug!("MESSAGE for a subscription that is gone"),
                    Routed::UnknownReceipt => tracing::debug!("RECEIPT nobody waits for"),
                    Routed::Receipt(Pending::Caller(waiter)) => {
                        let _ = waiter.send(Ok(()));
                    }
                    Routed::Receipt(Pending::Subscribe { waiter, restoring }) => {
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(Ok(()));
                        }
                        if restoring && self.router.restoring() == 0 {
                            restore_deadline = None;
                            tracing::info!(
                                connection = session.connection,
                                "STOMP subscriptions restored"
                            );
                            self.state.send_replace(State::Connected(session.clone()));
                        }
                    }
                    Routed::Receipt(Pending::Disconnect) => {
                        return Ended::Closed {
                            done: closing.map(|c| c.done).unwrap_or_default(),
                            result: Ok(()),
                        };
                    }
                    Routed::Error(error) => {
                        tracing::warn!(message = error.message(), "STOMP ERROR from the server");
                        let error = Error::Server(error);
                        for (_, route) in self.router.routes_mut() {
                            let _ = route.tx.try_send(Err(error.clone()));
                        }
                        if let Some(closing) = closing {
                            return Ended::Closed {
                                done: closing.done,
                                result: Err(error),
                            };
                        }
                        return Ended::Lost(error);
                    }
                }
            }

            if blocked.is_none() {
                if let Some(e) = failed.take() {
                    return self.on_transport_end(e, closing);
                }
            }

            let outbox_bytes: usize = outbox.iter().map(|f| f.body().len()).sum();
            let accepting =
                closing.is_none() && outbox.len() < BATCH_FRAMES && outbox_bytes < BATCH_BYTES;
            let heartbeat_at = session.send_heart_beat.map(|every| last_write + every);
            let silence_deadline = conn
                .expect_within
                .filter(|_| blocked.is_none())
                .map(|within| last_read + within);
            let closing_deadline = closing.as_ref().map(|c| c.deadline);
            tokio::select! {
                command = self.commands.recv(), if accepting => {
                    let Some(command) = command else {
                        // Every handle is gone: leave politely, without waiting for a receipt.
                        outbox.push(Frame::new(Command::Disconnect));
                        if let Ok(Ok(permit)) = tokio::time::timeout(self.config.receipt_timeout, writer.reserve()).await {
                            permit.send(Write::Frames(encode_all(session.version, &mut outbox)));
                        }
                        return Ended::Closed { done: Vec::new(), result: Ok(()) };
                    };
                    self.on_command(command, session.connection, &mut outbox, &mut closing);
                    // Whatever else is queued joins the batch.
                    let mut bytes = outbox.iter().map(|f| f.body().len()).sum::<usize>();
                    while closing.is_none() && outbox.len() < BATCH_FRAMES && bytes < BATCH_BYTES {
                        let Ok(command) = self.commands.try_recv() else { break };
                        self.on_command(command, session.connection, &mut outbox, &mut closing);
                        bytes = outbox.iter().map(|f| f.body().len()).sum();
                    }
                    if closing.is_some() {
                        // The application is leaving: what it did not read is not waited for.
                        blocked = None;
                    }
                }
                permit = writer.reserve(), if !outbox.is_empty() => match permit {
                    Ok(permit) => {
                        permit.send(Write::Frames(encode_all(session.version, &mut outbox)));
                        last_write = Instant::now();
                    }
                    // The writer failed; reading tells why.
                    Err(_) => failed = Some(conn.link.writer_failure()),
                },
                reserved = reserve(blocked.as_ref().map(|b| b.tx.clone())), if blocked.is_some() => {
                    if let Some(b) = blocked.take() {
                        match reserved {
                            Ok(permit) => { permit.send(b.item); }
                            Err(()) => self.drop_route(&b.id, &mut outbox),
                        }
                    }
                    // The server was not silent while we did not read.
                    last_read = Instant::now();
                }
                chunk = conn.link.recv(), if blocked.is_none() => match chunk {
                    Ok(bytes) => {
                        last_read = Instant::now();
                        conn.buf.extend_from_slice(&bytes);
                        // Take what else has arrived, as a batch of commands is written in
                        // one go: reading one message per turn would fall behind a busy
                        // server, which then closes us as a slow consumer.
                        failed = read_ready(&mut conn.link, &mut conn.buf).err();
                    }
                    Err(e) => return self.on_transport_end(e, closing),
                },
                () = sleep_until(heartbeat_at) => {
                    conn.link.heartbeat(Bytes::from_static(HEARTBEAT));
                    last_write = Instant::now();
                }
                () = sleep_until(silence_deadline) => {
                    return Ended::Lost(Error::HeartBeatTimeout(conn.expect_within.unwrap_or_default()));
                }
                () = sleep_until(closing_deadline) => {
                    let done = closing.map(|c| c.done).unwrap_or_default();
                    return Ended::Closed {
                        done,
                        result: Err(Error::ReceiptTimeout(self.config.receipt_timeout)),
                    };
                }
                () = sleep_until(restore_deadline) => {
                    return Ended::Lost(Error::ReceiptTimeout(self.config.receipt_timeout));
                }
            }
        }
    }

    /// The transport ended (or failed).
    fn on_transport_end(&self, error: Error, closing: Option<Closing>) -> Ended {
        match closing {
            Some(closing) => {
                // The server may close right after the DISCONNECT's receipt, or instead of
                // sending it: either way we are disconnected.
                tracing::debug!(error = %error, "transport ended while disconnecting");
                Ended::Closed {
                    done: closing.done,
                    result: Ok(()),
                }
            }
            None => Ended::Lost(error),
        }
    }

    /// Hands `item` to subscription `id`. Returns it as blocked if the subscription's buffer
    /// is full (unless `closing`: then it is dropped).
    fn deliver(
        &mut self,
        id: String,
        item: Result<Message, Error>,
        closing: bool,
        outbox: &mut Vec<Frame>,
    ) -> Option<Blocked> {
        let route = self.router.route(&id)?;
        match route.tx.try_send(item) {
            Ok(()) => None,
            Err(TrySendError::Full(item)) => {
                if closing {
                    return None;
                }
                Some(Blocked {
                    tx: route.tx.clone(),
                    id,
                    item,
                })
            }
            Err(TrySendError::Closed(_)) => {
                self.drop_route(&id, outbox);
                None
            }
        }
    }

    /// The subscription's stream is gone without an UNSUBSCRIBE reaching us: send one.
    fn drop_route(&mut self, id: &str, outbox: &mut Vec<Frame>) {
        if self.router.remove(id).is_some() {
            outbox.push(Frame::new(Command::Unsubscribe).with_header("id", id));
        }
    }

    /// A command while connected.
    fn on_command(
        &mut self,
        command: Cmd,
        connection: u64,
        outbox: &mut Vec<Frame>,
        closing: &mut Option<Closing>,
    ) {
        match command {
            Cmd::Frame {
                frame,
                receipt,
                connection: only_on,
            } => {
                if only_on.is_some_and(|c| c != connection) {
                    if let Some((_, waiter)) = receipt {
                        let _ = waiter.send(Err(Error::Stale));
                    }
                    return;
                }
                if let Some((id, waiter)) = receipt {
                    self.router.expect(id, Pending::Caller(waiter));
                }
                outbox.push(frame);
            }
            Cmd::Subscribe {
                id,
                frame,
                ack,
                tx,
                receipt,
            } => {
                let mut wire = frame.clone();
                if receipt.is_some() {
                    let receipt_id = self.next_id();
                    wire.push_header("receipt", receipt_id.as_str());
                    self.router.expect(
                        receipt_id,
                        Pending::Subscribe {
                            waiter: receipt,
                            restoring: false,
                        },
                    );
                }
                self.router.add(
                    id,
                    Route {
                        frame,
                        ack,
                        tx,
                        waiter: None,
                    },
                );
                outbox.push(wire);
            }
            Cmd::Unsubscribe { id, receipt } => {
                if self.router.remove(&id).is_none() {
                    // Already unsubscribed (its stream was found closed).
                    if let Some(waiter) = receipt {
                        let _ = waiter.send(Ok(()));
                    }
                    return;
                }
                let mut frame = Frame::new(Command::Unsubscribe).with_header("id", id.as_str());
                if let Some(waiter) = receipt {
                    let receipt_id = self.next_id();
                    frame.push_header("receipt", receipt_id.as_str());
                    self.router.expect(receipt_id, Pending::Caller(waiter));
                }
                outbox.push(frame);
            }
            Cmd::Disconnect { done } => {
                if let Some(closing) = closing {
                    closing.done.push(done);
                    return;
                }
                let receipt_id = self.next_id();
                outbox.push(
                    Frame::new(Command::Disconnect).with_header("receipt", receipt_id.as_str()),
                );
                self.router.expect(receipt_id, Pending::Disconnect);
                *closing = Some(Closing {
                    done: vec![done],
                    deadline: Instant::now() + self.config.receipt_timeout,
                });
            }
        }
    }

    /// A command while not connected. Returns the waiter of a disconnect request.
    fn on_command_offline(&mut self, command: Cmd) -> Option<Waiter> {
        match command {
            Cmd::Frame { receipt, .. } => {
                tracing::debug!("frame dropped while reconnecting");
                if let Some((_, waiter)) = receipt {
                    let _ = waiter.send(Err(Error::NotConnected));
                }
                None
            }
            Cmd::Subscribe {
                id,
                frame,
                ack,
                tx,
                receipt,
            } => {
                // Made when the connection is back, with the others.
                self.router.add(
                    id,
                    Route {
                        frame,
                        ack,
                        tx,
                        waiter: receipt,
                    },
                );
                None
            }
            Cmd::Unsubscribe { id, receipt } => {
                self.router.remove(&id);
                if let Some(waiter) = receipt {
                    let _ = waiter.send(Ok(()));
                }
                None
            }
            Cmd::Disconnect { done } => Some(done),
        }
    }

    /// SUBSCRIBEs every route again, each with a receipt.
    fn restore(&mut self, outbox: &mut Vec<Frame>) {
        let mut pending = Vec::new();
        for (_, route) in self.router.routes_mut() {
            let receipt_id = next_id(&self.ids, "r-");
            outbox.push(
                route
                    .frame
                    .clone()
                    .with_header("receipt", receipt_id.as_str()),
            );
            pending.push((receipt_id, route.waiter.take()));
        }
        for (receipt_id, waiter) in pending {
            self.router.expect(
                receipt_id,
                Pending::Subscribe {
                    waiter,
                    restoring: true,
                },
            );
        }
    }

    /// Backs off and reconnects until it works, the attempts run out, or the application
    /// disconnects. Commands keep being answered meanwhile.
    async fn reconnect(
        &mut self,
        backoff: &Backoff,
        mut cause: Error,
        connection: u64,
    ) -> Reconnected {
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            if backoff.max_attempts.is_some_and(|max| attempt > max) {
                return Reconnected::GaveUp(cause);
            }
            self.state.send_replace(State::Reconnecting {
                attempt,
                cause: cause.clone(),
            });
            let delay = backoff.delay(attempt, random::unit());
            tracing::debug!(attempt, ?delay, "reconnecting");
            let config = Arc::clone(&self.config);
            let attempt_future = async move {
                tokio::time::sleep(delay).await;
                connection::establish(&config, connection).await
            };
            tokio::pin!(attempt_future);
            let result = loop {
                tokio::select! {
                    result = &mut attempt_future => break result,
                    command = self.commands.recv() => match command {
                        None => return Reconnected::Stopped(Vec::new()),
                        Some(command) => {
                            if let Some(done) = self.on_command_offline(command) {
                                return Reconnected::Stopped(vec![done]);
                            }
                        }
                    },
                }
            };
            match result {
                Ok(conn) => {
                    tracing::info!(attempt, connection, "STOMP client reconnected");
                    return Reconnected::Yes(Box::new(conn));
                }
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "reconnection attempt failed");
                    cause = e;
                }
            }
        }
    }

    /// Closes the client for good: waiters and subscriptions learn why, and later commands
    /// find the queue closed.
    fn finish(&mut self, cause: Option<Error>) {
        let error = match &cause {
            None => Error::Closed,
            Some(cause) => Error::ConnectionLost(Arc::new(cause.clone())),
        };
        self.router.fail_receipts(&error);
        for (_, route) in self.router.take_routes() {
            // An ERROR was already delivered as such; anything else ends the stream with
            // the loss. Dropping the sender ends the stream.
            if cause
                .as_ref()
                .is_some_and(|c| !matches!(c, Error::Server(_)))
            {
                let _ = route.tx.try_send(Err(error.clone()));
            }
            if let Some(waiter) = route.waiter {
                let _ = waiter.send(Err(error.clone()));
            }
        }
        self.state.send_replace(State::Closed { cause });
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            let waiter = match command {
                Cmd::Frame { receipt, .. } => receipt.map(|(_, w)| w),
                Cmd::Subscribe { receipt, .. } | Cmd::Unsubscribe { receipt, .. } => receipt,
                Cmd::Disconnect { done } => {
                    let _ = done.send(Ok(()));
                    None
                }
            };
            if let Some(waiter) = waiter {
                let _ = waiter.send(Err(Error::Closed));
            }
        }
    }
}

/// Encodes and empties `outbox`, one buffer per frame.
fn encode_all(version: Version, outbox: &mut Vec<Frame>) -> Vec<Bytes> {
    let mut buf = BytesMut::new();
    outbox
        .drain(..)
        .map(|frame| {
            tracing::debug!(command = ?frame.command(), "frame sent");
            encode(&frame, version, &mut buf);
            buf.split().freeze()
        })
        .collect()
}

/// Appends to `buf` what `link` has ready without waiting, up to [`READ_AHEAD`] bytes.
/// An error is returned only once `buf` holds everything read before it.
fn read_ready(link: &mut Link, buf: &mut BytesMut) -> Result<(), Error> {
    while buf.len() < READ_AHEAD {
        // `Link::recv` is cancel-safe: dropping it when nothing is ready loses nothing.
        match link.recv().now_or_never() {
            Some(Ok(bytes)) => buf.extend_from_slice(&bytes),
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(())
}

/// Room in `tx`'s channel, or `Err` if its receiver is gone. Pending forever for `None`.
async fn reserve(
    tx: Option<mpsc::Sender<Result<Message, Error>>>,
) -> Result<mpsc::OwnedPermit<Result<Message, Error>>, ()> {
    match tx {
        Some(tx) => tx.reserve_owned().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; forever for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
