//! Users and user destinations, as Spring users know them.
//!
//! A client subscribes to `/user/queue/x`; anything sent to user `bob` at
//! `/user/bob/queue/x` reaches every session of bob subscribed there, and no other session. The
//! MESSAGE frames carry the destination the client subscribed to (`/user/queue/x`). A session
//! without a user (anonymous) has user destinations of its own, reachable by the server
//! (a handler's reply to its sender) but not by name.
//!
//! The [`UserRegistry`] knows who is online: each user's sessions and their subscriptions.
//! User destinations are delivered by the registry straight into the sessions' outboxes; the
//! broker never sees them, so they need no queue and leave nothing behind when a session ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use stompede_broker::{
    Delivery, Destination, Message, MessageId, Name, Outbox, Prefixes, SessionId, SubscriptionId,
};

/// Where a `/user/...` destination points, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDestination {
    /// `/user/queue/x` as a client subscribes to it: the suffix (`/queue/x`).
    Own(String),
    /// `/user/bob/queue/x` as a sender names it: the user and the suffix.
    Named {
        /// The user name.
        user: String,
        /// The destination under the user, e.g. `/queue/x`.
        suffix: String,
    },
}

/// Why a user destination is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDestinationError {
    /// `/user/` with nothing after it, or an empty user name.
    #[error("user destination {0} names no destination")]
    Incomplete(String),
    /// The part after the user is not a topic or queue destination.
    #[error("user destination {destination}: {reason}")]
    Invalid {
        /// The destination as given.
        destination: String,
        /// Why.
        reason: String,
    },
}

impl UserDestination {
    /// Parses `raw` if it starts with `prefix` (at a `/` boundary). `Ok(None)` when it does
    /// not. `named` says whether a user name follows the prefix (what senders write) or the
    /// destination itself (what subscribers write).
    ///
    /// # Errors
    /// When the part after the prefix (and user) is not a plain topic or queue destination:
    /// no pattern, no application destination.
    pub fn parse(
        raw: &str,
        prefix: &str,
        named: bool,
        prefixes: &Prefixes,
    ) -> Result<Option<UserDestination>, UserDestinationError> {
        let Some(rest) = raw.strip_prefix(prefix) else {
            return Ok(None);
        };
        if !rest.starts_with('/') {
            return Ok(None);
        }
        let (user, suffix) = if named {
            let rest = &rest[1..];
            match rest.split_once('/') {
                Some((user, _)) if !user.is_empty() => (Some(user), &rest[user.len()..]),
                _ => return Err(UserDestinationError::Incomplete(raw.to_owned())),
            }
        } else {
            (None, rest)
        };
        let invalid = |reason: String| UserDestinationError::Invalid {
            destination: raw.to_owned(),
            reason,
        };
        match Destination::parse(suffix, prefixes) {
            Ok(Destination::App(_)) => {
                return Err(invalid("an application destination".to_owned()))
            }
            Ok(_) if suffix.contains(['*', '?']) => return Err(invalid("a pattern".to_owned())),
            Ok(_) => {}
            Err(e) => return Err(invalid(e.to_string())),
        }
        let suffix = suffix.to_owned();
        Ok(Some(match user {
            Some(user) => UserDestination::Named {
                user: user.to_owned(),
                suffix,
            },
            None => UserDestination::Own(suffix),
        }))
    }
}

/// A user online: the name and each session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The principal's name.
    pub name: String,
    /// Its sessions, oldest first.
    pub sessions: Vec<UserSession>,
}

/// One session of a user and what it subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// The session.
    pub id: SessionId,
    /// Subscription id and destination as the client wrote it.
    pub subscriptions: Vec<(String, String)>,
}

/// Who is online, and delivery to user destinations. Shared by every session of a server;
/// reach it through [`Stompede::users`](crate::Stompede::users) or a
/// [`Messaging`](crate::app::Messaging) handle.
#[derive(Debug)]
pub struct UserRegistry {
    prefix: String,
    state: Mutex<State>,
    next_message: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<SessionId, Entry>,
    users: HashMap<Arc<str>, Vec<SessionId>>,
}

#[derive(Debug)]
struct Entry {
    user: Option<Arc<str>>,
    outbox: Outbox,
    /// Every subscription, as the client named it: broker destinations and user ones.
    subscriptions: Vec<(SubscriptionId, Name)>,
}

impl UserRegistry {
    /// An empty registry for destinations under `prefix` (e.g. `/user`).
    pub fn new(prefix: impl Into<String>) -> UserRegistry {
        UserRegistry {
            prefix: prefix.into(),
            state: Mutex::default(),
            next_message: AtomicU64::new(1),
        }
    }

    /// The user destination prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover the data all the same.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Names of the users online, sorted.
    pub fn user_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.state().users.keys().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    /// One user's sessions and subscriptions, if online.
    pub fn user(&self, name: &str) -> Option<UserInfo> {
        let state = self.state();
        let sessions = state.users.get(name)?;
        Some(UserInfo {
            name: name.to_owned(),
            sessions: sessions
                .iter()
                .filter_map(|id| {
                    state.sessions.get(id).map(|entry| UserSession {
                        id: *id,
                        subscriptions: entry
                            .subscriptions
                            .iter()
                            .map(|(s, d)| (s.as_str().to_owned(), d.as_str().to_owned()))
                            .collect(),
                    })
                })
                .collect(),
        })
    }

    /// Number of connected sessions (with a user or anonymous).
    pub fn session_count(&self) -> usize {
        self.state().sessions.len()
    }

    pub(crate) fn connect(&self, session: SessionId, user: Option<Arc<str>>, outbox: Outbox) {
        let mut state = self.state();
        if let Some(user) = &user {
            state
                .users
                .entry(Arc::clone(user))
                .or_default()
                .push(session);
        }
        state.sessions.insert(
            session,
            Entry {
                user,
                outbox,
                subscriptions: Vec::new(),
            },
        );
    }

    pub(crate) fn subscribe(&self, session: SessionId, id: SubscriptionId, destination: Name) {
        if let Some(entry) = self.state().sessions.get_mut(&session) {
            entry.subscriptions.push((id, destination));
        }
    }

    /// Forgets a subscription; its destination if there was one.
    pub(crate) fn unsubscribe(&self, session: SessionId, id: &SubscriptionId) -> Option<Name> {
        let mut state = self.state();
        let entry = state.sessions.get_mut(&session)?;
        let at = entry.subscriptions.iter().position(|(s, _)| s == id)?;
        Some(entry.subscriptions.swap_remove(at).1)
    }

    /// Whether `session` holds subscription `id` (any destination).
    pub(crate) fn has_subscription(&self, session: SessionId, id: &SubscriptionId) -> bool {
        self.state()
            .sessions
            .get(&session)
            .is_some_and(|entry| entry.subscriptions.iter().any(|(s, _)| s == id))
    }

    /// A fresh id for a message the server writes itself.
    pub(crate) fn next_message_id(&self) -> MessageId {
        let n = self.next_message.fetch_add(1, Ordering::Relaxed);
        MessageId::from(format!("u-{n}"))
    }

    /// The destination of `session`'s subscription `id`, as the client wrote it.
    pub(crate) fn destination_of(&self, session: SessionId, id: &SubscriptionId) -> Option<Name> {
        let state = self.state();
        let entry = state.sessions.get(&session)?;
        let (_, destination) = entry.subscriptions.iter().find(|(s, _)| s == id)?;
        Some(destination.clone())
    }

    pub(crate) fn disconnect(&self, session: SessionId) {
        let mut state = self.state();
        let Some(entry) = state.sessions.remove(&session) else {
            return;
        };
        if let Some(user) = entry.user {
            if let Some(sessions) = state.users.get_mut(&user) {
                sessions.retain(|s| *s != session);
                if sessions.is_empty() {
                    state.users.remove(&user);
                }
            }
        }
    }

    /// Whether `session` subscribes to its own `/user{suffix}`.
    pub(crate) fn has_own_subscription(&self, session: SessionId, suffix: &str) -> bool {
        let own = format!("{}{suffix}", self.prefix);
        self.state()
            .sessions
            .get(&session)
            .is_some_and(|entry| entry.subscriptions.iter().any(|(_, d)| d.as_str() == own))
    }

    /// Sends to `/user{suffix}` of every session of `user`. Returns the message id and how
    /// many subscriptions it reached (zero when the user is offline or not subscribed: like a
    /// topic with no subscriber, the message is dropped).
    pub fn send_to_user(
        &self,
        user: &str,
        suffix: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> (MessageId, usize) {
        let message = self.message(suffix, headers, body);
        let state = self.state();
        let reached = state.users.get(user).map_or(0, |sessions| {
            sessions
                .iter()
                .filter_map(|s| state.sessions.get(s))
                .map(|entry| deliver(entry, &message))
                .sum()
        });
        (message.id.clone(), reached)
    }

    /// Sends to `/user{suffix}` of one session (Spring's `@SendToUser(broadcast = false)`, and
    /// how anonymous sessions get replies).
    pub fn send_to_session(
        &self,
        session: SessionId,
        suffix: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> (MessageId, usize) {
        let message = self.message(suffix, headers, body);
        let reached = self
            .state()
            .sessions
            .get(&session)
            .map_or(0, |entry| deliver(entry, &message));
        (message.id.clone(), reached)
    }

    fn message(&self, suffix: &str, headers: Vec<(String, String)>, body: Bytes) -> Arc<Message> {
        let destination = Name::from(format!("{}{suffix}", self.prefix).as_str());
        Arc::new(Message::new(
            self.next_message_id(),
            destination,
            headers,
            body,
        ))
    }
}

/// Offers `message` to each subscription of `entry` on its destination; how many took it. A
/// full outbox closes its session (the session sees the overflow), as for broker deliveries.
fn deliver(entry: &Entry, message: &Arc<Message>) -> usize {
    entry
        .subscriptions
        .iter()
        .filter(|(_, d)| *d == message.destination)
        .filter(|(id, _)| {
            entry
                .outbox
                .offer(Delivery {
                    subscription: id.clone(),
                    message: Arc::clone(message),
                    ack: None,
                    redelivered: false,
                })
                .is_ok()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use stompede_broker::OutboxLimits;

    use super::*;

    fn parse(raw: &str, named: bool) -> Result<Option<UserDestination>, UserDestinationError> {
        UserDestination::parse(raw, "/user", named, &Prefixes::default())
    }

    #[test]
    fn user_destinations_parse() {
        assert_eq!(
            parse("/user/queue/x", false),
            Ok(Some(UserDestination::Own("/queue/x".to_owned())))
        );
        assert_eq!(
            parse("/user/bob/queue/x", true),
            Ok(Some(UserDestination::Named {
                user: "bob".to_owned(),
                suffix: "/queue/x".to_owned()
            }))
        );
        assert_eq!(parse("/users/queue/x", false), Ok(None));
        assert_eq!(parse("/topic/x", true), Ok(None));
        for bad in ["/user/", "/user/bob", "/user//queue/x"] {
            assert!(parse(bad, true).is_err(), "{bad}");
        }
        for bad in ["/user/queue/*", "/user/app/x", "/user/nowhere/x", "/user/"] {
            assert!(parse(bad, false).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn every_session_of_the_user_and_no_one_else() {
        let registry = UserRegistry::new("/user");
        let limits = OutboxLimits { max_bytes: 1 << 20 };
        let mut receivers = Vec::new();
        for (n, user) in [
            (1, Some("bob")),
            (2, Some("bob")),
            (3, Some("alice")),
            (4, None),
        ] {
            let (outbox, rx) = Outbox::new(SessionId(n), limits);
            registry.connect(SessionId(n), user.map(Arc::from), outbox);
            registry.subscribe(SessionId(n), "sub".into(), Name::from("/user/queue/x"));
            registry.subscribe(SessionId(n), "other".into(), Name::from("/user/queue/y"));
            receivers.push(rx);
        }
        let (_, reached) = registry.send_to_user("bob", "/queue/x", Vec::new(), "hi".into());
        assert_eq!(reached, 2);
        for (i, rx) in receivers.iter_mut().enumerate() {
            let got = rx.try_recv();
            if i < 2 {
                let d = got.expect("bob's sessions get it");
                assert_eq!(d.message.destination.as_str(), "/user/queue/x");
                assert_eq!(d.subscription.as_str(), "sub");
                assert_eq!(&d.message.body[..], b"hi");
            } else {
                assert!(got.is_none(), "session {i} must not get bob's message");
            }
        }
        assert_eq!(registry.user_names(), ["alice", "bob"]);
        assert_eq!(registry.user("bob").map(|u| u.sessions.len()), Some(2));

        let (_, reached) =
            registry.send_to_session(SessionId(4), "/queue/y", Vec::new(), "a".into());
        assert_eq!(reached, 1);
        assert!(receivers[3].try_recv().is_some());

        registry.disconnect(SessionId(1));
        registry.disconnect(SessionId(2));
        assert_eq!(registry.user_names(), ["alice"]);
        let (_, reached) = registry.send_to_user("bob", "/queue/x", Vec::new(), "x".into());
        assert_eq!(reached, 0);
        assert_eq!(
            registry.unsubscribe(SessionId(3), &"sub".into()),
            Some(Name::from("/user/queue/x"))
        );
        assert_eq!(registry.unsubscribe(SessionId(3), &"sub".into()), None);
    }
}
