//! Session lifecycle events (Spring's `SessionConnectedEvent`, `SessionSubscribeEvent`,
//! `SessionUnsubscribeEvent`, `SessionDisconnectEvent`): for presence, member lists, audit.
//!
//! Listeners run on the session's task, synchronously and in order: keep them short (update a
//! map, publish through [`crate::app::Messaging`]); spawn for anything slow.

use std::sync::Arc;

use stompede_broker::SessionId;

use crate::app::Messaging;
use crate::auth::Principal;

/// The session an event is about.
#[derive(Debug, Clone, Copy)]
pub struct SessionRef<'a> {
    /// The session.
    pub id: SessionId,
    /// Its user, if it has one.
    pub principal: Option<&'a Principal>,
    /// To publish from the listener (presence updates, announcements).
    pub messaging: &'a Messaging,
}

/// Receives session events. Every method has an empty default.
pub trait SessionEvents: Send + Sync + 'static {
    /// After CONNECTED was sent.
    fn on_connect(&self, _session: SessionRef<'_>) {}
    /// After a SUBSCRIBE took effect (also for user destinations; not for application
    /// destinations, which make no subscription). `destination` as the client wrote it.
    fn on_subscribe(&self, _session: SessionRef<'_>, _id: &str, _destination: &str) {}
    /// After an UNSUBSCRIBE took effect.
    fn on_unsubscribe(&self, _session: SessionRef<'_>, _id: &str, _destination: &str) {}
    /// Once, when a connected session ends for any reason (DISCONNECT, error, dropped
    /// connection, shutdown). Its subscriptions are gone by then; no unsubscribe events are
    /// sent for them.
    fn on_disconnect(&self, _session: SessionRef<'_>) {}
}

/// Every registered listener, called in registration order.
#[derive(Clone, Default)]
pub(crate) struct Listeners(Vec<Arc<dyn SessionEvents>>);

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Listeners").field(&self.0.len()).finish()
    }
}

impl Listeners {
    pub(crate) fn push(&mut self, listener: Arc<dyn SessionEvents>) {
        self.0.push(listener);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn connect(&self, session: SessionRef<'_>) {
        self.0.iter().for_each(|l| l.on_connect(session));
    }

    pub(crate) fn subscribe(&self, session: SessionRef<'_>, id: &str, destination: &str) {
        self.0
            .iter()
            .for_each(|l| l.on_subscribe(session, id, destination));
    }

    pub(crate) fn unsubscribe(&self, session: SessionRef<'_>, id: &str, destination: &str) {
        self.0
            .iter()
            .for_each(|l| l.on_unsubscribe(session, id, destination));
    }

    pub(crate) fn disconnect(&self, session: SessionRef<'_>) {
        self.0.iter().for_each(|l| l.on_disconnect(session));
    }
}
