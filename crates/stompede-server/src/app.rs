//! Application destinations: SEND to `/app/...` reaches Rust handlers registered by pattern,
//! Spring's `@MessageMapping` and `@SendTo`.
//!
//! ```no_run
//! use stompede_server::app::{Handlers, Reply, json};
//! #[derive(serde::Deserialize, serde::Serialize)]
//! struct Greeting { name: String }
//! let handlers = Handlers::new()
//!     // SEND /app/greet → reply to /topic/greet (the default, like Spring's @MessageMapping)
//!     .route("/greet", json(|_req, g: Greeting| async move { Reply::json(&g) }))
//!     // SEND /app/room/42 → reply to a destination the handler names (@SendTo)
//!     .route("/room/{id}", json(|req, g: Greeting| async move {
//!         Ok(Reply::json(&g)?.to(format!("/topic/room.{}", req.param("id").unwrap_or_default())))
//!     }))
//!     // SEND /app/whoami → only the sender's sessions, at /user/queue/whoami (@SendToUser)
//!     .route("/whoami", |req: stompede_server::app::AppRequest| async move {
//!         Ok(Reply::text(req.user().unwrap_or("anonymous")).to_user("/queue/whoami"))
//!     })
//!     // SUBSCRIBE /app/rooms → one MESSAGE straight back to that subscription (@SubscribeMapping)
//!     .subscribe("/rooms", |_req| async move { Reply::json(&["lobby", "rust"]) });
//! ```
//!
//! A handler's error reaches its sender as a MESSAGE on `/user/queue/errors` when the session
//! subscribes there (Spring's `@MessageExceptionHandler` with `@SendToUser("/queue/errors")`),
//! and as a STOMP ERROR (which ends the session) when it does not.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stompede_broker::{Broker, Destination, MessageId, Prefixes, Publish, SessionId};

use crate::auth::Principal;
use crate::endpoint::Attributes;
use crate::user::{UserDestination, UserRegistry};

/// A message sent to an application destination.
#[derive(Debug, Clone)]
pub struct AppRequest {
    /// The sending session.
    pub session: SessionId,
    /// The full destination, e.g. `/app/chat/message`.
    pub destination: String,
    /// The destination after the application prefix, e.g. `/chat/message`.
    pub path: String,
    /// Values of the route's `{name}` segments.
    pub params: Vec<(String, String)>,
    /// The SEND frame's headers (except `destination`, `receipt`, `transaction`, `content-length`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// What the handshake interceptors attached to the session (cookies, ...).
    pub attributes: Arc<Attributes>,
    /// Who the session is; `None` for anonymous sessions.
    pub principal: Option<Arc<Principal>>,
    /// Publishes to any broker destination.
    pub messaging: Messaging,
}

impl AppRequest {
    /// The sending user's name, if the session has a user.
    pub fn user(&self) -> Option<&str> {
        self.principal.as_deref().map(|p| p.name.as_str())
    }

    /// The value of route parameter `name` (`{name}` in the pattern).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Errors
    /// [`HandlerError::InvalidPayload`] when the body does not deserialize into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_slice(&self.body).map_err(|e| HandlerError::InvalidPayload(e.to_string()))
    }
}

/// What a handler sends back.
#[derive(Debug, Clone, Default)]
pub enum Reply {
    /// Nothing.
    #[default]
    None,
    /// A message to the broker.
    Send(Outgoing),
}

/// A message a handler publishes.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Where to.
    pub target: Target,
    /// Headers, e.g. `content-type`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// Where a handler's reply goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Target {
    /// For a SEND: the first topic prefix plus the request's path (Spring's default:
    /// `/app/chat/message` → `/topic/chat/message`). For a SUBSCRIBE: straight back to the
    /// subscription, once (Spring's `@SubscribeMapping`).
    #[default]
    Default,
    /// A broker destination, or a user destination `/user/NAME/...` (Spring's `@SendTo`).
    Destination(String),
    /// The sender's user destination, e.g. `/queue/answers` for `/user/queue/answers`
    /// (Spring's `@SendToUser`): every session of the sender's user, or only the sending
    /// session when `broadcast` is false or the session has no user.
    User {
        /// The destination under the user prefix.
        destination: String,
        /// Every session of the user, or only the sender's.
        broadcast: bool,
    },
}

impl Reply {
    /// A JSON reply (`content-type: application/json`) to the default destination.
    ///
    /// # Errors
    /// [`HandlerError::Failed`] when `value` cannot be serialized.
    pub fn json<T: Serialize>(value: &T) -> Result<Reply, HandlerError> {
        let body = serde_json::to_vec(value).map_err(|e| HandlerError::Failed(e.to_string()))?;
        Ok(Reply::Send(Outgoing {
            target: Target::Default,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: Bytes::from(body),
        }))
    }

    /// A plain-text reply to the default destination.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Send(Outgoing {
            target: Target::Default,
            headers: vec![(
                "content-type".to_owned(),
                "text/plain;charset=UTF-8".to_owned(),
            )],
            body: Bytes::from(text.into()),
        })
    }

    /// Sends the reply to `destination` instead of the default (Spring's `@SendTo`).
    pub fn to(self, destination: impl Into<String>) -> Reply {
        self.target(Target::Destination(destination.into()))
    }

    /// Sends the reply to the sender's user destination `destination` (e.g. `/queue/answers`,
    /// received on `/user/queue/answers`), on every session of the user (Spring's
    /// `@SendToUser`).
    pub fn to_user(self, destination: impl Into<String>) -> Reply {
        self.target(Target::User {
            destination: destination.into(),
            broadcast: true,
        })
    }

    /// As [`Reply::to_user`], but only to the session that sent the request
    /// (`@SendToUser(broadcast = false)`).
    pub fn to_session(self, destination: impl Into<String>) -> Reply {
        self.target(Target::User {
            destination: destination.into(),
            broadcast: false,
        })
    }

    fn target(self, target: Target) -> Reply {
        match self {
            Reply::None => Reply::None,
            Reply::Send(mut out) => {
                out.target = target;
                Reply::Send(out)
            }
        }
    }
}

/// Why a handler did not produce a reply. It reaches the sender as a STOMP ERROR frame.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The body is not what the handler expects.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// The handler refused the message, e.g. a field out of range.
    #[error("rejected: {0}")]
    Rejected(String),
    /// What the message asks for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The handler failed.
    #[error("handler failed: {0}")]
    Failed(String),
}

impl HandlerError {
    /// Short text for the ERROR frame's `message` header.
    pub fn error_frame_message(&self) -> &'static str {
        match self {
            HandlerError::InvalidPayload(_) => "invalid payload",
            HandlerError::Rejected(_) => "message rejected",
            HandlerError::NotFound(_) => "not found",
            HandlerError::Failed(_) => "handler failed",
        }
    }

    /// The detail: what the handler said.
    pub fn detail(&self) -> &str {
        match self {
            HandlerError::InvalidPayload(d)
            | HandlerError::Rejected(d)
            | HandlerError::NotFound(d)
            | HandlerError::Failed(d) => d,
        }
    }
}

/// Handles messages sent to one application route.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message. Runs on the sending session's task, so messages of one session are
    /// handled in order; spawn for long work.
    fn call(&self, request: AppRequest) -> BoxFuture<'static, Result<Reply, HandlerError>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(AppRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, HandlerError>> + Send + 'static,
{
    fn call(&self, request: AppRequest) -> BoxFuture<'static, Result<Reply, HandlerError>> {
        Box::pin(self(request))
    }
}

/// A handler whose body is deserialized from JSON into `T` first; a body that does not
/// deserialize is answered with [`HandlerError::InvalidPayload`] without calling `f`.
pub fn json<T, F, Fut>(f: F) -> impl Handler
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(AppRequest, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, HandlerError>> + Send + 'static,
{
    let f = Arc::new(f);
    move |request: AppRequest| {
        let f = Arc::clone(&f);
        async move {
            let payload = request.json::<T>()?;
            f(request, payload).await
        }
    }
}

/// Routes from application paths to handlers.
#[derive(Clone, Default)]
pub struct Handlers {
    routes: Vec<Route>,
    subscriptions: Vec<Route>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field(
                "send",
                &self
                    .routes
                    .iter()
                    .map(|r| &r.pattern.raw)
                    .collect::<Vec<_>>(),
            )
            .field(
                "subscribe",
                &self
                    .subscriptions
                    .iter()
                    .map(|r| &r.pattern.raw)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Values of a route's `{name}` segments, in order.
type Params = Vec<(String, String)>;

#[derive(Clone)]
struct Route {
    pattern: RoutePattern,
    handler: Arc<dyn Handler>,
}

impl Handlers {
    /// No routes.
    pub fn new() -> Handlers {
        Handlers::default()
    }

    /// Registers `handler` for `pattern`, a path after the application prefix: literal segments
    /// and `{name}` segments, e.g. `/chat/message`, `/room/{id}`. When several patterns match,
    /// the one with the fewest `{name}` segments wins, then the first registered.
    ///
    /// # Panics
    /// If `pattern` is malformed (not starting with `/`, an unclosed `{`, an empty name): a
    /// programming error caught at start-up.
    pub fn route(mut self, pattern: &str, handler: impl Handler) -> Handlers {
        self.routes.push(Route::new(pattern, handler));
        self
    }

    /// Registers `handler` for SUBSCRIBE to `pattern` under the application prefix (Spring's
    /// `@SubscribeMapping`): a client subscribing to `/app/rooms` gets the reply once, straight
    /// back on that subscription, with no broker subscription made. A reply with a target
    /// ([`Reply::to`], [`Reply::to_user`]) goes there instead. The request's body is empty and
    /// its headers are the SUBSCRIBE's.
    ///
    /// # Panics
    /// As [`Handlers::route`].
    pub fn subscribe(mut self, pattern: &str, handler: impl Handler) -> Handlers {
        self.subscriptions.push(Route::new(pattern, handler));
        self
    }

    /// Adds every route of `other`.
    pub fn merge(mut self, other: Handlers) -> Handlers {
        self.routes.extend(other.routes);
        self.subscriptions.extend(other.subscriptions);
        self
    }

    /// The SEND handler for `path` and its parameters.
    pub(crate) fn find(&self, path: &str) -> Option<(Arc<dyn Handler>, Params)> {
        best_route(&self.routes, path)
    }

    /// The SUBSCRIBE handler for `path` and its parameters.
    pub(crate) fn find_subscription(&self, path: &str) -> Option<(Arc<dyn Handler>, Params)> {
        best_route(&self.subscriptions, path)
    }
}

impl Route {
    fn new(pattern: &str, handler: impl Handler) -> Route {
        let pattern = RoutePattern::parse(pattern)
            .unwrap_or_else(|reason| panic!("invalid route pattern {pattern:?}: {reason}"));
        Route {
            pattern,
            handler: Arc::new(handler),
        }
    }
}

fn best_route(routes: &[Route], path: &str) -> Option<(Arc<dyn Handler>, Params)> {
    let mut best: Option<(&Route, Params)> = None;
    for route in routes {
        if let Some(params) = route.pattern.matches(path) {
            if best.as_ref().is_none_or(|(_, p)| params.len() < p.len()) {
                best = Some((route, params));
            }
        }
    }
    best.map(|(route, params)| (Arc::clone(&route.handler), params))
}

#[derive(Debug, Clone)]
struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl RoutePattern {
    fn parse(raw: &str) -> Result<RoutePattern, &'static str> {
        let rest = raw.strip_prefix('/').ok_or("must start with '/'")?;
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            if let Some(inner) = seg.strip_prefix('{') {
                let name = inner.strip_suffix('}').ok_or("unclosed '{'")?;
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err("parameter names must be non-empty");
                }
                segments.push(Segment::Param(name.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err("'{' and '}' only around a whole segment");
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(RoutePattern {
            raw: raw.to_owned(),
            segments,
        })
    }

    fn matches(&self, path: &str) -> Option<Params> {
        let rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        let mut parts = rest.split('/');
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((name.clone(), part.to_owned())),
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(params)
    }
}

/// Publishes to broker destinations and user destinations from anywhere in the application
/// (Spring's `SimpMessagingTemplate`): a handler, another task, an axum HTTP handler in the
/// same process. Cheap to clone.
///
/// ```no_run
/// # fn demo(messaging: stompede_server::app::Messaging) -> Result<(), stompede_server::app::SendError> {
/// messaging.send("/topic/news", Vec::new(), "hello")?;
/// // every session of bob subscribed to /user/queue/alerts
/// messaging.send_to_user("bob", "/queue/alerts", Vec::new(), "for bob")?;
/// // the same, written as a destination
/// messaging.send("/user/bob/queue/alerts", Vec::new(), "for bob")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Messaging {
    broker: Arc<dyn Broker>,
    prefixes: Arc<Prefixes>,
    users: Arc<UserRegistry>,
}

impl std::fmt::Debug for Messaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messaging").finish_non_exhaustive()
    }
}

/// Why [`Messaging`] could not publish.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Not a broker destination.
    #[error("invalid destination: {0}")]
    Destination(#[from] stompede_broker::DestinationError),
    /// Not a valid user destination.
    #[error("{0}")]
    UserDestination(#[from] crate::user::UserDestinationError),
    /// Application destinations are for clients, not for the server itself.
    #[error("cannot send to application destination {0}")]
    AppDestination(String),
    /// The broker refused.
    #[error("broker refused: {0}")]
    Broker(#[from] stompede_broker::BrokerError),
    /// The payload did not serialize.
    #[error("cannot serialize payload: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Messaging {
    /// A handle on `broker` with destinations parsed by `prefixes` and user destinations
    /// delivered through `users`.
    pub fn new(broker: Arc<dyn Broker>, prefixes: Prefixes, users: Arc<UserRegistry>) -> Messaging {
        Messaging {
            broker,
            prefixes: Arc::new(prefixes),
            users,
        }
    }

    /// Who is online.
    pub fn users(&self) -> &UserRegistry {
        &self.users
    }

    /// Publishes `body` with `headers` to `destination`: a topic, a queue, or a user
    /// destination `/user/NAME/queue/x`.
    ///
    /// # Errors
    /// An invalid or application destination, or a broker refusal (e.g. a full queue).
    pub fn send(
        &self,
        destination: &str,
        headers: Vec<(String, String)>,
        body: impl Into<Bytes>,
    ) -> Result<MessageId, SendError> {
        let prefix = self.users.prefix();
        if let Some(UserDestination::Named { user, suffix }) =
            UserDestination::parse(destination, prefix, true, &self.prefixes)?
        {
            return Ok(self
                .users
                .send_to_user(&user, &suffix, headers, body.into())
                .0);
        }
        let destination = Destination::parse(destination, &self.prefixes)?;
        if let Destination::App(_) = destination {
            return Err(SendError::AppDestination(destination.as_str().to_owned()));
        }
        Ok(self.broker.publish(Publish {
            destination,
            headers,
            body: body.into(),
        })?)
    }

    /// Publishes `value` as JSON.
    ///
    /// # Errors
    /// As [`Messaging::send`], or when `value` does not serialize.
    pub fn send_json<T: Serialize>(
        &self,
        destination: &str,
        value: &T,
    ) -> Result<MessageId, SendError> {
        self.send(destination, json_headers(), serde_json::to_vec(value)?)
    }

    /// Sends to `destination` (e.g. `/queue/alerts`) of every session of `user`, received by
    /// clients subscribed to `/user/queue/alerts`. Nothing happens when the user is offline.
    ///
    /// # Errors
    /// When `destination` is not a plain topic or queue destination.
    pub fn send_to_user(
        &self,
        user: &str,
        destination: &str,
        headers: Vec<(String, String)>,
        body: impl Into<Bytes>,
    ) -> Result<MessageId, SendError> {
        let full = format!("{}/{user}{destination}", self.users.prefix());
        self.send(&full, headers, body)
    }

    /// As [`Messaging::send_to_user`], the payload as JSON.
    ///
    /// # Errors
    /// As [`Messaging::send_to_user`], or when `value` does not serialize.
    pub fn send_to_user_json<T: Serialize>(
        &self,
        user: &str,
        destination: &str,
        value: &T,
    ) -> Result<MessageId, SendError> {
        self.send_to_user(
            user,
            destination,
            json_headers(),
            serde_json::to_vec(value)?,
        )
    }

    /// Sends to `destination` of one session (e.g. an anonymous one), received there on
    /// `/user{destination}`.
    ///
    /// # Errors
    /// When `destination` is not a plain topic or queue destination.
    pub fn send_to_session(
        &self,
        session: SessionId,
        destination: &str,
        headers: Vec<(String, String)>,
        body: impl Into<Bytes>,
    ) -> Result<MessageId, SendError> {
        let full = format!("{}{destination}", self.users.prefix());
        UserDestination::parse(&full, self.users.prefix(), false, &self.prefixes)?;
        Ok(self
            .users
            .send_to_session(session, destination, headers, body.into())
            .0)
    }
}

fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".to_owned(), "application/json".to_owned())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: AppRequest) -> futures_util::future::Ready<Result<Reply, HandlerError>> {
        futures_util::future::ready(Ok(Reply::None))
    }

    #[test]
    fn routes_match_literals_and_params() {
        type Case<'a> = (&'a str, &'a str, Option<&'a [(&'a str, &'a str)]>);
        let cases: &[Case<'_>] = &[
            ("/chat/message", "/chat/message", Some(&[])),
            ("/chat/message", "/chat/message/", None),
            ("/chat/message", "/chat", None),
            ("/room/{id}", "/room/42", Some(&[("id", "42")])),
            ("/room/{id}", "/room/", None),
            ("/room/{id}", "/room/42/x", None),
            ("/a/{x}/b/{y}", "/a/1/b/2", Some(&[("x", "1"), ("y", "2")])),
            ("/", "/", Some(&[])),
        ];
        for (pattern, path, expected) in cases {
            let p = RoutePattern::parse(pattern).expect("valid pattern");
            let got = p.matches(path);
            let expected = expected.map(|e| {
                e.iter()
                    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, expected, "{pattern} vs {path}");
        }
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["chat", "/room/{id", "/room/{}", "/room/x{id}"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_route_beats_parameter_route() {
        let handlers = Handlers::new()
            .route("/room/{id}", ok)
            .route("/room/lobby", ok);
        let (_, params) = handlers.find("/room/lobby").expect("matches");
        assert!(params.is_empty());
        let (_, params) = handlers.find("/room/7").expect("matches");
        assert_eq!(params, [("id".to_owned(), "7".to_owned())]);
        assert!(handlers.find("/nothing").is_none());
    }

    #[test]
    fn reply_to_overrides_destination() {
        let Reply::Send(out) = Reply::text("hi").to("/topic/x") else {
            panic!("expected a message");
        };
        assert_eq!(out.target, Target::Destination("/topic/x".to_owned()));
        assert!(matches!(Reply::None.to("/topic/x"), Reply::None));
    }
}
