//! One STOMP session: one task, one poll loop over the client's messages, the session's outbox,
//! heart-beat timers and shutdown. Generic over the [`Connection`] it runs on.

mod gate;
mod transaction;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use stompede_broker::{
    AckMode, AckRef, BrokerError, Delivery, Destination, Message, Name, Outbox, OutboxLimits,
    OutboxReceiver, Publish, SessionId, Subscription, SubscriptionId,
};
use stompede_stomp::{
    encode, encode_head, encode_tail, Command, DecodeError, Decoder, Frame, HeartBeat, Version,
    HEARTBEAT,
};
use tokio::time::error::Elapsed;
use tokio::time::{sleep_until, Instant};

use gate::Gate;
pub use transaction::TransactionError;
use transaction::Transactions;

use crate::app::{AppRequest, HandlerError, Outgoing, Reply, SendError, Target};
use crate::auth::{Credentials, Principal};
use crate::authz::Action;
use crate::endpoint::Attributes;
use crate::error::{close_code, SessionError};
use crate::events::SessionRef;
use crate::server::Shared;
use crate::transport::{Connection, Inbound, Outbound, TransportError, CLOSE_LINGER};
use crate::user::UserDestination;

/// Versions the server speaks, lowest first.
const VERSIONS: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];
/// Deliveries written per flush at most, so one busy session cannot starve its own reads.
const MAX_BATCH: usize = 64;
/// Where handler errors go when the session subscribes to its `/user` + this.
const ERRORS_QUEUE: &str = "/queue/errors";
/// Headers a client may not set on a message others receive: the server writes them.
const SERVER_HEADERS: [&str; 8] = [
    "destination",
    "message-id",
    "subscription",
    "ack",
    "receipt",
    "transaction",
    "content-length",
    "redelivered",
];

/// A token presented in the handshake (query, cookie, `Authorization`), attached to the
/// session's attributes and used at CONNECT when the frame carries no credentials.
#[derive(Debug, Clone)]
pub(crate) struct HandshakeToken(pub(crate) String);

/// Where a SEND goes.
enum SendTarget {
    Broker(Destination),
    User { user: String, suffix: String },
}

/// How a session ended.
#[derive(Debug)]
enum End {
    /// The client closed the connection.
    ClientClosed,
    /// The client sent DISCONNECT.
    Disconnected,
    /// The client broke the protocol; an ERROR frame was sent.
    Error(SessionError),
    /// The server is shutting down.
    Shutdown,
    /// The client could not keep up with its messages.
    SlowConsumer(&'static str),
    /// The client stopped sending heart-beats, or never sent CONNECT.
    Silent,
    /// The connection failed.
    Transport(TransportError),
}

/// What woke the session's loop.
enum Event {
    Shutdown,
    /// The client's next message, or the end of its messages.
    Inbound(Option<Result<Inbound, TransportError>>),
    Delivery(Delivery),
    RecvTimer,
    SendTimer,
}

/// What the loop does after a frame.
enum Flow {
    Continue,
    Disconnect,
    /// Writing the reply failed.
    Ended(End),
}

/// Runs one session on `conn` until it ends, then releases its broker state.
pub(crate) async fn run<C: Connection>(
    conn: C,
    id: SessionId,
    attributes: Arc<Attributes>,
    shared: Arc<Shared>,
) {
    let (outbox, outbox_rx) = Outbox::new(
        id,
        OutboxLimits {
            max_bytes: shared.config.session.send_buffer_size_limit,
        },
    );
    let mut session = Session {
        id,
        attributes,
        decoder: Decoder::new(shared.limits),
        inbuf: BytesMut::new(),
        scratch: BytesMut::new(),
        outbox,
        outbox_rx,
        version: None,
        transactions: Transactions::new(
            shared.config.stomp.max_transactions,
            shared.config.stomp.max_transaction_bytes,
        ),
        subscriptions: 0,
        principal: None,
        expires: None,
        send_every: None,
        expect_within: None,
        opened: Instant::now(),
        last_received: Instant::now(),
        last_sent: Instant::now(),
        conn,
        shared,
    };
    tracing::debug!("session opened");
    let end = session.serve().await;
    session.shared.broker.session_gone(id);
    if session.version.is_some() {
        session.shared.users.disconnect(id);
        session.shared.listeners.disconnect(SessionRef {
            id,
            principal: session.principal.as_deref(),
            messaging: &session.shared.messaging,
        });
    }
    match &end {
        End::ClientClosed | End::Disconnected | End::Shutdown => {
            tracing::debug!(reason = ?end, "session closed");
        }
        End::Error(e) => tracing::debug!(cause = %e, "session closed after ERROR"),
        End::SlowConsumer(why) => tracing::info!(reason = why, "slow consumer closed"),
        End::Silent => tracing::debug!("silent client closed"),
        End::Transport(e) => tracing::debug!(cause = %e, "connection failed"),
    }
}

struct Session<C> {
    id: SessionId,
    /// What the handshake interceptors attached.
    attributes: Arc<Attributes>,
    conn: C,
    shared: Arc<Shared>,
    decoder: Decoder,
    /// Inbound bytes not yet decoded (a partial frame).
    inbuf: BytesMut,
    /// Encoding space for outbound frames.
    scratch: BytesMut,
    outbox: Outbox,
    outbox_rx: OutboxReceiver,
    /// Negotiated version; `None` until CONNECT.
    version: Option<Version>,
    transactions: Transactions,
    /// Subscriptions the session holds, bounded by `stomp.max_subscriptions`.
    subscriptions: usize,
    /// Who the session is, from CONNECT; `None` for anonymous sessions.
    principal: Option<Arc<Principal>>,
    /// When the session's credentials expire (a token's `exp`).
    expires: Option<Instant>,
    send_every: Option<Duration>,
    expect_within: Option<Duration>,
    opened: Instant,
    last_received: Instant,
    last_sent: Instant,
}

impl<C: Connection> Session<C> {
    async fn serve(&mut self) -> End {
        // Timers are reset lazily: when one fires early because of activity since it was set,
        // it is pushed to the new deadline instead of being reset on every message.
        let recv_timer = sleep_until(self.recv_deadline());
        let send_timer = sleep_until(far_future());
        // One registration for the whole session, not one per loop turn.
        let shutdown = self.shared.shutdown.clone().cancelled_owned();
        tokio::pin!(recv_timer, send_timer, shutdown);
        let gate = Gate::new();
        loop {
            // An outbox overflows only while it holds deliveries, so the session is awake (its
            // outbox branch is ready) and sees the flag here without a wake-up of its own.
            if self.outbox.is_overflowed() {
                self.close(close_code::NOT_RELIABLE, "send buffer size limit exceeded")
                    .await;
                return End::SlowConsumer("send buffer size limit exceeded");
            }
            // In this order (shutdown first); the sources other than the outbox only when
            // one of them woke the task (`gate.rs`).
            let event = poll_fn(|cx| {
                let quiet = gate.open(cx);
                let mut qcx = gate.context();
                if quiet {
                    if shutdown.as_mut().poll(&mut qcx).is_ready() {
                        gate.rearm();
                        return Poll::Ready(Event::Shutdown);
                    }
                    if let Poll::Ready(inbound) = self.conn.poll_next_unpin(&mut qcx) {
                        gate.rearm();
                        return Poll::Ready(Event::Inbound(inbound));
                    }
                }
                // `None` cannot happen while the session holds an `Outbox` of its own.
                if let Poll::Ready(Some(delivery)) = self.outbox_rx.poll_recv(cx) {
                    if quiet {
                        gate.rearm();
                    }
                    return Poll::Ready(Event::Delivery(delivery));
                }
                if quiet {
                    if recv_timer.as_mut().poll(&mut qcx).is_ready() {
                        gate.rearm();
                        return Poll::Ready(Event::RecvTimer);
                    }
                    if send_timer.as_mut().poll(&mut qcx).is_ready() {
                        gate.rearm();
                        return Poll::Ready(Event::SendTimer);
                    }
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Shutdown => {
                    let _ = self.flush_outbox().await;
                    self.close(close_code::AWAY, "server shutting down").await;
                    return End::Shutdown;
                }
                Event::Inbound(inbound) => {
                    let bytes = match inbound {
                        None => {
                            // Completes the close handshake (the WebSocket layer queued the
                            // reply to the client's close).
                            let _ = tokio::time::timeout(CLOSE_LINGER, self.conn.close()).await;
                            return End::ClientClosed;
                        }
                        Some(Err(TransportError::TooLarge)) => {
                            let limit = self.shared.config.endpoint.max_websocket_message;
                            let error = SessionError::Decode(DecodeError::FrameTooLarge { limit });
                            return Box::pin(self.fail(error, None)).await;
                        }
                        Some(Err(e)) => return End::Transport(e),
                        Some(Ok(inbound)) => inbound.into_bytes(),
                    };
                    self.last_received = Instant::now();
                    let was_connected = self.version.is_some();
                    // Boxed: handling a frame (an application handler's future among others)
                    // is the session's largest state, and an idle session should not carry
                    // room for it.
                    if let Some(end) = Box::pin(self.on_client_bytes(&bytes)).await {
                        return end;
                    }
                    if !was_connected && self.version.is_some() {
                        recv_timer.as_mut().reset(self.recv_deadline());
                        send_timer.as_mut().reset(self.send_deadline());
                    }
                    // A client that keeps sending must still get its messages: its socket is
                    // polled first, so while inbound data is always ready the outbox would
                    // never be, and would overflow although the client reads everything.
                    if let Some(delivery) = self.outbox_rx.try_recv() {
                        if let Err(end) = self.write_deliveries(Some(delivery), None).await {
                            return end;
                        }
                    }
                }
                Event::Delivery(delivery) => {
                    if let Err(end) = self.write_deliveries(Some(delivery), None).await {
                        return end;
                    }
                }
                Event::RecvTimer => {
                    if self.expires.is_some_and(|at| at <= Instant::now()) {
                        tracing::info!(session = %self.id, "credentials expired, closing");
                        return Box::pin(self.fail(SessionError::Expired, None)).await;
                    }
                    let deadline = self.recv_deadline();
                    if deadline <= Instant::now() {
                        self.close(close_code::NOT_RELIABLE, "no heart-beat from client")
                            .await;
                        return End::Silent;
                    }
                    recv_timer.as_mut().reset(deadline);
                }
                Event::SendTimer => {
                    let deadline = self.send_deadline();
                    if deadline <= Instant::now() {
                        if let Err(end) = self
                            .write(Outbound::Data(Bytes::from_static(HEARTBEAT)))
                            .await
                        {
                            return end;
                        }
                        send_timer.as_mut().reset(self.send_deadline());
                    } else {
                        send_timer.as_mut().reset(deadline);
                    }
                }
            }
        }
    }

    fn recv_deadline(&self) -> Instant {
        let heartbeat = match (self.version, self.expect_within) {
            (None, _) => after(self.opened, self.shared.config.session.connect_timeout),
            (Some(_), Some(within)) => after(self.last_received, within),
            (Some(_), None) => far_future(),
        };
        self.expires.map_or(heartbeat, |at| at.min(heartbeat))
    }

    fn session_ref(&self) -> SessionRef<'_> {
        SessionRef {
            id: self.id,
            principal: self.principal.as_deref(),
            messaging: &self.shared.messaging,
        }
    }

    /// Who presented CONNECT: a principal a handshake interceptor attached, else CONNECT's
    /// `login`/`passcode`, else a token in CONNECT (`token`, or `Authorization: Bearer`), else
    /// the handshake's token; none of these is an anonymous session, if allowed.
    async fn authenticate(&mut self, frame: &Frame) -> Result<Option<Principal>, SessionError> {
        if let Some(principal) = self.attributes.get::<Principal>() {
            return Ok(Some(principal.clone()));
        }
        let credentials = self.credentials(frame);
        let auth = self.shared.auth.clone();
        Ok(auth.authenticate(credentials).await?)
    }

    fn credentials(&self, frame: &Frame) -> Option<Credentials> {
        let token = || {
            frame
                .header("token")
                .or_else(|| {
                    frame
                        .header("Authorization")
                        .or_else(|| frame.header("authorization"))
                        .and_then(|v| v.strip_prefix("Bearer "))
                })
                .map(str::to_owned)
                .or_else(|| self.attributes.get::<HandshakeToken>().map(|t| t.0.clone()))
        };
        match (frame.header("login"), frame.header("passcode")) {
            (Some(login), Some(passcode)) if !login.is_empty() => Some(Credentials::Login {
                login: login.to_owned(),
                passcode: passcode.to_owned(),
            }),
            _ => token().map(Credentials::Token),
        }
    }

    fn send_deadline(&self) -> Instant {
        self.send_every
            .map_or_else(far_future, |every| after(self.last_sent, every))
    }

    /// Decodes and handles every complete frame in `bytes`; `Some` when the session must end.
    async fn on_client_bytes(&mut self, bytes: &Bytes) -> Option<End> {
        self.inbuf.extend_from_slice(bytes);
        loop {
            let frame = match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return None,
                Err(e) => return Some(self.fail(SessionError::Decode(e), None).await),
            };
            tracing::debug!(command = ?frame.command(), "frame received");
            let receipt = frame.header("receipt").map(str::to_owned);
            match self.on_client_frame(frame).await {
                Ok(Flow::Continue) => {
                    if let Some(receipt) = receipt {
                        if let Err(end) = self.send_receipt(receipt).await {
                            return Some(end);
                        }
                    }
                }
                Ok(Flow::Disconnect) => {
                    if let Some(receipt) = receipt {
                        if let Err(end) = self.send_receipt(receipt).await {
                            return Some(end);
                        }
                    }
                    self.close(close_code::NORMAL, "disconnected").await;
                    return Some(End::Disconnected);
                }
                Ok(Flow::Ended(end)) => return Some(end),
                Err(e) => return Some(self.fail(e, receipt).await),
            }
        }
    }

    async fn on_client_frame(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let command = frame.command();
        let Some(version) = self.version else {
            return match command {
                Command::Connect | Command::Stomp => self.on_connect(&frame).await,
                other => Err(SessionError::NotConnected(other)),
            };
        };
        match command {
            Command::Connect | Command::Stomp => Err(SessionError::AlreadyConnected),
            Command::Send => self.on_send(frame).await,
            Command::Subscribe => self.on_subscribe(&frame, version).await,
            Command::Unsubscribe => self.on_unsubscribe(&frame, version),
            Command::Ack | Command::Nack => self.on_ack(frame, version),
            Command::Begin => {
                self.transactions.begin(required(&frame, "transaction")?)?;
                Ok(Flow::Continue)
            }
            Command::Commit => {
                let frames = self.transactions.commit(required(&frame, "transaction")?)?;
                for mut held in frames {
                    held.remove_header("transaction");
                    let flow = match held.command() {
                        Command::Send => self.on_send(held).await?,
                        _ => self.on_ack(held, version)?,
                    };
                    if let Flow::Ended(end) = flow {
                        return Ok(Flow::Ended(end));
                    }
                }
                Ok(Flow::Continue)
            }
            Command::Abort => {
                self.transactions.abort(required(&frame, "transaction")?)?;
                Ok(Flow::Continue)
            }
            Command::Disconnect => Ok(Flow::Disconnect),
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                Err(SessionError::ServerCommand(command))
            }
        }
    }

    async fn on_connect(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        let accept = frame.header("accept-version");
        let version = Version::negotiate(accept, &VERSIONS)
            .ok_or_else(|| SessionError::UnsupportedVersion(accept.unwrap_or("1.0").to_owned()))?;
        let principal = self.authenticate(frame).await.inspect_err(|e| {
            tracing::info!(session = %self.id, cause = %e, "CONNECT refused");
        })?;
        if let Some(at) = principal.as_ref().and_then(|p| p.expires_at) {
            let left = at
                .duration_since(std::time::SystemTime::now())
                .map_err(|_| SessionError::Expired)?;
            self.expires = Some(after(Instant::now(), left));
        }
        self.principal = principal.map(Arc::new);
        let theirs = match frame.header("heart-beat") {
            Some(value) => HeartBeat::parse(value).map_err(|e| SessionError::InvalidHeader {
                header: "heart-beat",
                reason: e.to_string(),
            })?,
            None => HeartBeat::default(),
        };
        let config = &self.shared.config.heartbeat;
        let ours = HeartBeat {
            send: config.send,
            receive: config.receive,
        };
        let (send_every, expect_every) = HeartBeat::negotiate(ours, theirs);
        self.send_every = send_every;
        self.expect_within = expect_every.map(|every| every.mul_f64(config.tolerance));
        self.version = Some(version);
        self.decoder.set_version(version);
        tracing::debug!(
            version = version.as_str(),
            ?send_every,
            ?expect_every,
            "connected"
        );

        let mut connected = Frame::new(Command::Connected);
        if version != Version::V1_0 {
            connected.push_header("version", version.as_str());
        }
        connected.push_header("heart-beat", ours.to_header());
        connected.push_header("server", self.shared.config.stomp.server_name.clone());
        connected.push_header("session", self.id.to_string());
        if let Some(principal) = &self.principal {
            connected.push_header("user-name", principal.name.clone());
        }
        if let Err(end) = self.send_frame(&connected).await {
            return Ok(Flow::Ended(end));
        }
        let user = self.principal.as_ref().map(|p| Arc::from(p.name.as_str()));
        self.shared
            .users
            .connect(self.id, user, self.outbox.clone());
        self.shared.listeners.connect(self.session_ref());
        Ok(Flow::Continue)
    }

    /// Checks `destination` against the authorization rules.
    fn authorize(&self, action: Action, destination: &str) -> Result<(), SessionError> {
        let authz = &self.shared.authz;
        if authz.allows_everything() {
            return Ok(());
        }
        authz
            .check(action, destination, self.principal.as_deref())
            .map_err(|denied| {
                tracing::info!(session = %self.id, %denied, "access denied");
                SessionError::Denied(denied)
            })
    }

    async fn on_send(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let raw = required(&frame, "destination")?;
        self.authorize(Action::Send, raw)?;
        let user_prefix = self.shared.users.prefix();
        let target = match UserDestination::parse(raw, user_prefix, true, &self.shared.prefixes)? {
            Some(UserDestination::Named { user, suffix }) => SendTarget::User { user, suffix },
            Some(UserDestination::Own(_)) | None => {
                SendTarget::Broker(Destination::parse(raw, &self.shared.prefixes)?)
            }
        };
        if let Some(tx) = frame.header("transaction") {
            let tx = tx.to_owned();
            self.transactions.hold(&tx, frame)?;
            return Ok(Flow::Continue);
        }
        let raw = raw.to_owned();
        let (_, headers, body) = frame.into_parts();
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .filter(|(name, _)| !SERVER_HEADERS.contains(&name.as_str()))
            .collect();
        let destination = match target {
            SendTarget::User { user, suffix } => {
                self.shared
                    .users
                    .send_to_user(&user, &suffix, headers, body);
                return Ok(Flow::Continue);
            }
            SendTarget::Broker(destination) => destination,
        };
        match destination {
            Destination::App(path) => {
                let path = path.as_str().to_owned();
                self.dispatch_app(raw, path, headers, body).await?;
            }
            destination => {
                self.shared.broker.publish(Publish {
                    destination,
                    headers,
                    body,
                })?;
            }
        }
        Ok(Flow::Continue)
    }

    async fn dispatch_app(
        &mut self,
        destination: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<(), SessionError> {
        let (handler, params) = self
            .shared
            .handlers
            .find(&path)
            .ok_or_else(|| SessionError::NoHandler(destination.clone()))?;
        let request = self.app_request(destination, path, params, headers, body);
        let default = format!(
            "{}{}",
            self.shared
                .config
                .broker
                .topic_prefixes
                .first()
                .map_or("/topic", String::as_str),
            request.path
        );
        let raw = request.destination.clone();
        match handler.call(request).await {
            Ok(Reply::None) => Ok(()),
            Ok(Reply::Send(out)) => self.deliver_reply(out, Some(&default)),
            Err(error) => self.handler_failed(&raw, error),
        }
    }

    fn app_request(
        &self,
        destination: String,
        path: String,
        params: Vec<(String, String)>,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> AppRequest {
        AppRequest {
            session: self.id,
            destination,
            path,
            params,
            headers,
            body,
            attributes: Arc::clone(&self.attributes),
            principal: self.principal.clone(),
            messaging: self.shared.messaging.clone(),
        }
    }

    /// Sends a handler's reply where it asks; `default` is where [`Target::Default`] goes
    /// (`None` for a subscription's reply, which the caller delivers itself).
    fn deliver_reply(&self, out: Outgoing, default: Option<&str>) -> Result<(), SessionError> {
        let failed = |target: &str, e: SendError| match e {
            SendError::Broker(e) => SessionError::Broker(e),
            e => HandlerError::Failed(format!("reply destination {target}: {e}")).into(),
        };
        match out.target {
            Target::Default => {
                let Some(target) = default else {
                    return Ok(());
                };
                self.shared
                    .messaging
                    .send(target, out.headers, out.body)
                    .map_err(|e| failed(target, e))?;
            }
            Target::Destination(target) => {
                self.shared
                    .messaging
                    .send(&target, out.headers, out.body)
                    .map_err(|e| failed(&target, e))?;
            }
            Target::User {
                destination,
                broadcast,
            } => {
                let users = &self.shared.users;
                let full = format!("{}{destination}", users.prefix());
                UserDestination::parse(&full, users.prefix(), false, &self.shared.prefixes)
                    .map_err(|e| HandlerError::Failed(format!("reply destination: {e}")))?;
                match (&self.principal, broadcast) {
                    (Some(p), true) => {
                        users.send_to_user(&p.name, &destination, out.headers, out.body)
                    }
                    _ => users.send_to_session(self.id, &destination, out.headers, out.body),
                };
            }
        }
        Ok(())
    }

    /// A handler's error goes to the sender's `/user/queue/errors` when it subscribes there
    /// (the session goes on); otherwise it is the session's ERROR.
    fn handler_failed(&self, destination: &str, error: HandlerError) -> Result<(), SessionError> {
        let users = &self.shared.users;
        if !users.has_own_subscription(self.id, ERRORS_QUEUE) {
            return Err(error.into());
        }
        tracing::debug!(session = %self.id, cause = %error, "handler error to /user/queue/errors");
        let body = serde_json::json!({
            "error": error.error_frame_message(),
            "detail": error.detail(),
            "destination": destination,
        });
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        users.send_to_session(
            self.id,
            ERRORS_QUEUE,
            headers,
            Bytes::from(body.to_string()),
        );
        Ok(())
    }

    async fn on_subscribe(
        &mut self,
        frame: &Frame,
        version: Version,
    ) -> Result<Flow, SessionError> {
        let raw = required(frame, "destination")?;
        // STOMP 1.0 made `id` optional; the destination then names the subscription.
        let id = match (frame.header("id"), version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => raw,
            (None, _) => {
                return Err(SessionError::MissingHeader {
                    command: Command::Subscribe,
                    header: "id",
                })
            }
        };
        let ack =
            AckMode::parse(frame.header("ack")).ok_or_else(|| SessionError::InvalidHeader {
                header: "ack",
                reason: "expected auto, client or client-individual".to_owned(),
            })?;
        self.authorize(Action::Subscribe, raw)?;
        let users = &self.shared.users;
        let own = UserDestination::parse(raw, users.prefix(), false, &self.shared.prefixes)?;
        let destination = match own {
            Some(_) => None,
            None => Some(Destination::parse(raw, &self.shared.prefixes)?),
        };
        if let Some(Destination::App(path)) = &destination {
            return self.subscribe_app(frame, raw, id, path.as_str()).await;
        }
        let limit = self.shared.config.stomp.max_subscriptions;
        if self.subscriptions >= limit {
            return Err(SessionError::TooManySubscriptions { limit });
        }
        let id = SubscriptionId::from(id);
        if users.has_subscription(self.id, &id) {
            return Err(BrokerError::DuplicateSubscription(id.clone()).into());
        }
        if let Some(destination) = destination {
            self.shared.broker.subscribe(Subscription {
                session: self.id,
                id: id.clone(),
                destination,
                ack,
                outbox: self.outbox.clone(),
            })?;
        }
        users.subscribe(self.id, id.clone(), Name::from(raw));
        self.subscriptions += 1;
        if !self.shared.listeners.is_empty() {
            self.shared
                .listeners
                .subscribe(self.session_ref(), id.as_str(), raw);
        }
        Ok(Flow::Continue)
    }

    /// SUBSCRIBE to an application destination: its subscribe handler's reply comes straight
    /// back on this subscription, once (Spring's `@SubscribeMapping`).
    async fn subscribe_app(
        &mut self,
        frame: &Frame,
        raw: &str,
        id: &str,
        path: &str,
    ) -> Result<Flow, SessionError> {
        let Some((handler, params)) = self.shared.handlers.find_subscription(path) else {
            return Err(SessionError::SubscribeToApp(raw.to_owned()));
        };
        // Kept (and counted) until UNSUBSCRIBE, which clients send for it like for any other.
        let limit = self.shared.config.stomp.max_subscriptions;
        if self.subscriptions >= limit {
            return Err(SessionError::TooManySubscriptions { limit });
        }
        let sub = SubscriptionId::from(id);
        if self.shared.users.has_subscription(self.id, &sub) {
            return Err(BrokerError::DuplicateSubscription(sub).into());
        }
        self.shared
            .users
            .subscribe(self.id, sub.clone(), Name::from(raw));
        self.subscriptions += 1;
        let headers = frame
            .headers()
            .filter(|(name, _)| !SERVER_HEADERS.contains(name) && *name != "id" && *name != "ack")
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let request = self.app_request(
            raw.to_owned(),
            path.to_owned(),
            params,
            headers,
            Bytes::new(),
        );
        let out = match handler.call(request).await {
            Ok(Reply::None) => return Ok(Flow::Continue),
            Ok(Reply::Send(out)) => out,
            Err(error) => {
                self.handler_failed(raw, error)?;
                return Ok(Flow::Continue);
            }
        };
        if out.target != Target::Default {
            self.deliver_reply(out, None)?;
            return Ok(Flow::Continue);
        }
        let message = Message::new(
            self.shared.users.next_message_id(),
            Name::from(raw),
            out.headers,
            out.body,
        )
        .delivered_once();
        // Into the session's own outbox, so a RECEIPT for the SUBSCRIBE follows it.
        let _ = self.outbox.offer(Delivery {
            subscription: sub,
            message: Arc::new(message),
            ack: None,
            redelivered: false,
        });
        Ok(Flow::Continue)
    }

    fn on_unsubscribe(&mut self, frame: &Frame, version: Version) -> Result<Flow, SessionError> {
        let id = match (frame.header("id"), version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => required(frame, "id")?,
        };
        let id = SubscriptionId::from(id);
        let users = &self.shared.users;
        let destination = users
            .destination_of(self.id, &id)
            .ok_or_else(|| BrokerError::UnknownSubscription(id.clone()))?;
        // User destinations and one-shot application subscriptions are not the broker's.
        let at_broker = matches!(
            Destination::parse(destination.as_str(), &self.shared.prefixes),
            Ok(Destination::Topic(_) | Destination::Queue(_))
        );
        if at_broker {
            self.shared.broker.unsubscribe(self.id, &id)?;
        }
        users.unsubscribe(self.id, &id);
        // The broker only knows subscriptions this session counted in; saturate all the same.
        self.subscriptions = self.subscriptions.saturating_sub(1);
        if !self.shared.listeners.is_empty() {
            self.shared.listeners.unsubscribe(
                self.session_ref(),
                id.as_str(),
                destination.as_str(),
            );
        }
        Ok(Flow::Continue)
    }

    fn on_ack(&mut self, frame: Frame, version: Version) -> Result<Flow, SessionError> {
        if let Some(tx) = frame.header("transaction") {
            let tx = tx.to_owned();
            self.transactions.hold(&tx, frame)?;
            return Ok(Flow::Continue);
        }
        let subscription = frame.header("subscription").map(SubscriptionId::from);
        // 1.2 names the delivery by `id` (the MESSAGE's `ack` header); 1.0/1.1 by `message-id`.
        let reference = match (frame.header("id"), frame.header("message-id"), version) {
            (Some(id), _, Version::V1_2) => AckRef::Delivery(id),
            (_, Some(message_id), _) => AckRef::Message {
                subscription: subscription.as_ref(),
                message_id,
            },
            _ => {
                return Err(SessionError::MissingHeader {
                    command: frame.command(),
                    header: if version == Version::V1_2 {
                        "id"
                    } else {
                        "message-id"
                    },
                })
            }
        };
        if frame.command() == Command::Ack {
            self.shared.broker.ack(self.id, reference)?;
        } else {
            self.shared.broker.nack(self.id, reference)?;
        }
        Ok(Flow::Continue)
    }

    /// Sends the ERROR frame for `error`, closes, and says how the session ended.
    async fn fail(&mut self, error: SessionError, receipt: Option<String>) -> End {
        tracing::debug!(cause = %error, "client error");
        let mut frame = Frame::new(Command::Error)
            .with_header("message", error.error_frame_message())
            .with_header("content-type", "text/plain;charset=utf-8");
        if let Some(receipt) = receipt {
            frame.push_header("receipt-id", receipt);
        }
        if let SessionError::UnsupportedVersion(_) = error {
            frame.push_header("version", "1.0,1.1,1.2");
        }
        frame.set_body(Bytes::from(error.to_string()));
        if let Err(end) = self.send_frame(&frame).await {
            return end;
        }
        self.close(error.close_code(), "protocol error").await;
        End::Error(error)
    }

    async fn send_receipt(&mut self, receipt: String) -> Result<(), End> {
        let frame = Frame::new(Command::Receipt).with_header("receipt-id", receipt);
        self.send_frame(&frame).await
    }

    /// Sends a frame of the server's own after everything already queued for the client, so a
    /// RECEIPT follows the messages its frame caused.
    async fn send_frame(&mut self, frame: &Frame) -> Result<(), End> {
        self.write_deliveries(None, Some(frame)).await
    }

    /// Writes `first`, whatever else is queued (up to a batch), and `own`, then flushes once.
    async fn write_deliveries(
        &mut self,
        first: Option<Delivery>,
        own: Option<&Frame>,
    ) -> Result<(), End> {
        let limit = self.shared.config.session.send_time_limit;
        let version = self.version.unwrap_or(Version::V1_2);
        let mut pending = first;
        let result = within(limit, async {
            let mut written = 0;
            loop {
                let delivery = match pending.take() {
                    Some(d) => d,
                    None if own.is_some() || written < MAX_BATCH => match self.outbox_rx.try_recv()
                    {
                        Some(d) => d,
                        None => break,
                    },
                    None => break,
                };
                written += 1;
                encode_delivery(&delivery, version, &mut self.scratch);
                let data = self.scratch.split().freeze();
                self.conn.feed(Outbound::Data(data)).await?;
            }
            if let Some(frame) = own {
                encode(frame, version, &mut self.scratch);
                let data = self.scratch.split().freeze();
                self.conn.feed(Outbound::Data(data)).await?;
            }
            self.conn.flush().await
        })
        .await;
        self.after_write(result).await
    }

    async fn flush_outbox(&mut self) -> Result<(), End> {
        while let Some(delivery) = self.outbox_rx.try_recv() {
            self.write_deliveries(Some(delivery), None).await?;
        }
        Ok(())
    }

    async fn write(&mut self, item: Outbound) -> Result<(), End> {
        let limit = self.shared.config.session.send_time_limit;
        let result = within(limit, self.conn.send(item)).await;
        self.after_write(result).await
    }

    async fn after_write(
        &mut self,
        result: Result<Result<(), TransportError>, Elapsed>,
    ) -> Result<(), End> {
        match result {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(e)) => Err(End::Transport(e)),
            Err(_) => {
                // The socket is stuck; a close frame could not get through either.
                Err(End::SlowConsumer("send time limit exceeded"))
            }
        }
    }

    /// Sends a close frame and waits briefly for the client's close reply, reading and
    /// discarding what it still sends, so the kernel does not reset the connection with our
    /// last frames unread.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let conn = &mut self.conn;
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            if conn
                .send(Outbound::Close {
                    code,
                    reason: reason.into(),
                })
                .await
                .is_ok()
            {
                while let Some(Ok(_)) = conn.next().await {}
            }
        })
        .await;
    }
}

/// Writes the MESSAGE frame for one delivery. The message's parts are shared by every
/// subscription it goes to; only `subscription`, `ack` and `redelivered` differ, and nothing is
/// allocated per delivery.
fn encode_delivery(delivery: &Delivery, version: Version, dst: &mut BytesMut) {
    let message = &delivery.message;
    // The subscription's own headers first, then what every delivery shares, encoded once.
    let subscription = [("subscription", delivery.subscription.as_str())];
    let ack = delivery.ack.as_ref().map(|ack| ("ack", ack.as_str()));
    let redelivered = delivery.redelivered.then_some(("redelivered", "true"));
    let own = subscription.into_iter().chain(ack).chain(redelivered);
    encode_head(Command::Message, own, version, dst);
    let shared = message.encoded(version as u8, |message| {
        let mut tail = BytesMut::new();
        encode_shared(message, version, &mut tail);
        tail.freeze()
    });
    match shared {
        Some(tail) => dst.extend_from_slice(tail),
        None => encode_shared(message, version, dst),
    }
}

/// The headers and body of a MESSAGE that are the same in every delivery of it.
fn encode_shared(message: &Message, version: Version, dst: &mut BytesMut) {
    let fixed = [
        ("destination", message.destination.as_str()),
        ("message-id", message.id.as_str()),
    ];
    let custom = message
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()));
    let headers = fixed.into_iter().chain(custom);
    encode_tail(Command::Message, headers, &message.body, version, dst);
}

/// `tokio::time::timeout`, with the timer armed only if `future` does not finish at its first
/// poll: a write to a socket with room completes at once, and arming a timer for every batch
/// of a fan-out cost about 2% of the server's cycles (`perf`).
async fn within<F: Future>(limit: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    match poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => tokio::time::timeout(limit, future).await,
    }
}

fn required<'f>(frame: &'f Frame, header: &'static str) -> Result<&'f str, SessionError> {
    frame.header(header).ok_or(SessionError::MissingHeader {
        command: frame.command(),
        header,
    })
}

/// `start + interval`, or never when that does not fit in an `Instant`: a client may ask for
/// heart-beats every `u64::MAX` milliseconds (times the tolerance), and `Instant + Duration`
/// panics wherever the platform's `Instant` cannot hold the sum.
fn after(start: Instant, interval: Duration) -> Instant {
    start.checked_add(interval).unwrap_or_else(far_future)
}

fn far_future() -> Instant {
    // About 30 years: never, without overflowing Instant arithmetic.
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
mod tests;
