//! Where frames from the server go: MESSAGE to its subscription, RECEIPT to its waiter,
//! ERROR to everyone. Pure bookkeeping, no I/O: the driver acts on what [`Router::on_frame`]
//! returns.

use std::collections::{BTreeMap, HashMap};

use stompede_stomp::{Command, Frame, Version};
use tokio::sync::mpsc;

use crate::client::Waiter;
use crate::error::{Error, ProtocolError, ServerError};
use crate::message::{AckContext, Message};
use crate::subscription::AckMode;

/// One active subscription.
#[derive(Debug)]
pub(crate) struct Route {
    /// The SUBSCRIBE frame, without a receipt header: sent again after a reconnection.
    pub(crate) frame: Frame,
    pub(crate) ack: AckMode,
    pub(crate) tx: mpsc::Sender<Result<Message, Error>>,
    /// A subscribe call made while reconnecting, waiting for the SUBSCRIBE's receipt.
    pub(crate) waiter: Option<Waiter>,
}

impl Route {
    fn destination(&self) -> Option<&str> {
        self.frame.header("destination")
    }
}

/// What a receipt id stands for.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A frame whose sender waits.
    Caller(Waiter),
    /// A SUBSCRIBE, first or (`restoring`) after a reconnection.
    Subscribe {
        waiter: Option<Waiter>,
        restoring: bool,
    },
    /// The DISCONNECT.
    Disconnect,
}

/// What the driver must do with a frame.
#[derive(Debug)]
pub(crate) enum Routed {
    /// Hand `message` to subscription `id`.
    Deliver { id: String, message: Message },
    /// A MESSAGE for a subscription that is gone (unsubscribed while it was on its way).
    Unrouted,
    /// The receipt of `Pending`, already forgotten by the router.
    Receipt(Pending),
    /// A receipt nobody waits for (its waiter timed out).
    UnknownReceipt,
    /// The server reports an error and closes the connection.
    Error(ServerError),
}

/// Subscriptions and receipts of one client.
#[derive(Debug)]
pub(crate) struct Router {
    /// Ordered by id, so that subscriptions are restored in a stable order.
    routes: BTreeMap<String, Route>,
    receipts: HashMap<String, Pending>,
    /// Receipts of re-SUBSCRIBEs still awaited after a reconnection.
    restoring: usize,
    /// Size of `receipts` at which waiters that gave up are forgotten.
    prune_at: usize,
}

/// `receipts` is pruned of waiters that gave up (timed out) once it holds this many: a
/// server may never answer some receipts (RabbitMQ, inside an aborted transaction).
const PRUNE_AT: usize = 1024;

impl Default for Router {
    fn default() -> Router {
        Router {
            routes: BTreeMap::new(),
            receipts: HashMap::new(),
            restoring: 0,
            prune_at: PRUNE_AT,
        }
    }
}

impl Router {
    pub(crate) fn add(&mut self, id: String, route: Route) {
        self.routes.insert(id, route);
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Route> {
        self.routes.remove(id)
    }

    pub(crate) fn route(&self, id: &str) -> Option<&Route> {
        self.routes.get(id)
    }

    pub(crate) fn routes_mut(&mut self) -> impl Iterator<Item = (&String, &mut Route)> {
        self.routes.iter_mut()
    }

    pub(crate) fn take_routes(&mut self) -> BTreeMap<String, Route> {
        std::mem::take(&mut self.routes)
    }

    /// Remembers that `receipt` stands for `pending`.
    pub(crate) fn expect(&mut self, receipt: String, pending: Pending) {
        if let Pending::Subscribe {
            restoring: true, ..
        } = pending
        {
            self.restoring += 1;
        }
        self.receipts.insert(receipt, pending);
        if self.receipts.len() >= self.prune_at {
            self.receipts.retain(|_, pending| match pending {
                Pending::Caller(waiter) => !waiter.is_closed(),
                Pending::Subscribe { waiter, restoring } => {
                    *restoring || waiter.as_ref().is_some_and(|w| !w.is_closed())
                }
                Pending::Disconnect => true,
            });
            self.prune_at = (self.receipts.len() * 2).max(PRUNE_AT);
        }
    }

    /// Receipts awaited.
    #[cfg(test)]
    fn awaited(&self) -> usize {
        self.receipts.len()
    }

    /// Re-SUBSCRIBE receipts still awaited.
    pub(crate) fn restoring(&self) -> usize {
        self.restoring
    }

    /// Routes one frame from the server. `context` is the connection's (its `mode` is
    /// replaced by the subscription's).
    pub(crate) fn on_frame(
        &mut self,
        frame: Frame,
        context: &AckContext,
    ) -> Result<Routed, ProtocolError> {
        match frame.command() {
            Command::Message => {
                let id =
                    match frame.header("subscription") {
                        Some(id) => id.to_owned(),
                        // STOMP 1.0 servers may leave it out: go by destination.
                        None if context.version == Version::V1_0 => {
                            let destination = frame.header("destination");
                            match self.routes.iter().find(|(_, r)| {
                                destination.is_some() && r.destination() == destination
                            }) {
                                Some((id, _)) => id.clone(),
                                None => return Ok(Routed::Unrouted),
                            }
                        }
                        None => {
                            return Err(ProtocolError::MissingHeader {
                                command: Command::Message,
                                header: "subscription",
                            })
                        }
                    };
                let mode = match self.routes.get(&id) {
                    Some(route) => route.ack,
                    None => {
                        // Still check it: a malformed MESSAGE is malformed whoever it is for.
                        Message::new(frame, context.clone())?;
                        return Ok(Routed::Unrouted);
                    }
                };
                let context = AckContext {
                    mode,
                    ..context.clone()
                };
                Ok(Routed::Deliver {
                    id,
                    message: Message::new(frame, context)?,
                })
            }
            Command::Receipt => {
                let id = frame
                    .header("receipt-id")
                    .ok_or(ProtocolError::MissingHeader {
                        command: Command::Receipt,
                        header: "receipt-id",
                    })?;
                Ok(match self.receipts.remove(id) {
                    Some(pending) => {
                        if let Pending::Subscribe {
                            restoring: true, ..
                        } = pending
                        {
                            self.restoring -= 1;
                        }
                        Routed::Receipt(pending)
                    }
                    None => Routed::UnknownReceipt,
                })
            }
            Command::Error => Ok(Routed::Error(ServerError::new(frame))),
            other => Err(ProtocolError::UnexpectedCommand(other)),
        }
    }

    /// Fails every waiting receipt: the one named by the ERROR `error` (if any) with the
    /// error itself, the others with [`Error::ConnectionLost`] caused by it.
    pub(crate) fn fail_receipts(&mut self, error: &Error) {
        let culprit = error
            .server_error()
            .and_then(|e| e.receipt_id())
            .map(str::to_owned);
        let lost = match error {
            Error::ConnectionLost(_) | Error::Closed => error.clone(),
            other => Error::ConnectionLost(std::sync::Arc::new(other.clone())),
        };
        for (id, pending) in self.receipts.drain() {
            let result = if culprit.as_deref() == Some(id.as_str()) {
                error.clone()
            } else {
                lost.clone()
            };
            let waiter = match pending {
                Pending::Caller(w) => Some(w),
                Pending::Subscribe { waiter, .. } => waiter,
                Pending::Disconnect => None,
            };
            if let Some(waiter) = waiter {
                let _ = waiter.send(Err(result));
            }
        }
        self.restoring = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use tokio::sync::oneshot;

    use super::*;

    fn context(version: Version) -> AckContext {
        AckContext {
            shared: Weak::new(),
            mode: AckMode::Auto,
            version,
            connection: 1,
        }
    }

    fn route(destination: &str, ack: AckMode) -> (Route, mpsc::Receiver<Result<Message, Error>>) {
        let (tx, rx) = mpsc::channel(4);
        let frame = Frame::new(Command::Subscribe).with_header("destination", destination);
        (
            Route {
                frame,
                ack,
                tx,
                waiter: None,
            },
            rx,
        )
    }

    fn message(subscription: Option<&str>) -> Frame {
        let mut frame = Frame::new(Command::Message)
            .with_header("destination", "/topic/a")
            .with_header("message-id", "m-1")
            .with_body("hi");
        if let Some(s) = subscription {
            frame.push_header("subscription", s);
        }
        frame
    }

    #[test]
    fn messages_go_to_their_subscription_with_its_ack_mode() {
        let mut router = Router::default();
        let (r, _rx) = route("/topic/a", AckMode::Client);
        router.add("sub-1".to_owned(), r);
        match router.on_frame(message(Some("sub-1")), &context(Version::V1_2)) {
            Ok(Routed::Deliver { id, message }) => {
                assert_eq!(id, "sub-1");
                assert_eq!(message.context().mode, AckMode::Client);
                assert_eq!(message.body_text(), Some("hi"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            router.on_frame(message(Some("sub-2")), &context(Version::V1_2)),
            Ok(Routed::Unrouted)
        ));
    }

    #[test]
    fn stomp_1_0_messages_without_subscription_go_by_destination() {
        let mut router = Router::default();
        let (r, _rx) = route("/topic/a", AckMode::Auto);
        router.add("sub-1".to_owned(), r);
        assert!(matches!(
            router.on_frame(message(None), &context(Version::V1_0)),
            Ok(Routed::Deliver { id, .. }) if id == "sub-1"
        ));
        let other = message(None);
        let mut other = other.clone();
        other.remove_header("destination");
        other.push_header("destination", "/topic/b");
        assert!(matches!(
            router.on_frame(other, &context(Version::V1_0)),
            Ok(Routed::Unrouted)
        ));
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        let mut router = Router::default();
        let (r, _rx) = route("/topic/a", AckMode::Auto);
        router.add("sub-1".to_owned(), r);
        let ctx = context(Version::V1_2);
        let mut no_id = message(Some("sub-1"));
        no_id.remove_header("message-id");
        let mut unrouted_no_destination = message(Some("nobody"));
        unrouted_no_destination.remove_header("destination");
        let cases = [
            (
                message(None),
                ProtocolError::MissingHeader {
                    command: Command::Message,
                    header: "subscription",
                },
            ),
            (
                no_id,
                ProtocolError::MissingHeader {
                    command: Command::Message,
                    header: "message-id",
                },
            ),
            (
                unrouted_no_destination,
                ProtocolError::MissingHeader {
                    command: Command::Message,
                    header: "destination",
                },
            ),
            (
                Frame::new(Command::Receipt),
                ProtocolError::MissingHeader {
                    command: Command::Receipt,
                    header: "receipt-id",
                },
            ),
            (
                Frame::new(Command::Connected),
                ProtocolError::UnexpectedCommand(Command::Connected),
            ),
            (
                Frame::new(Command::Send),
                ProtocolError::UnexpectedCommand(Command::Send),
            ),
            (
                Frame::new(Command::Subscribe),
                ProtocolError::UnexpectedCommand(Command::Subscribe),
            ),
        ];
        for (frame, want) in cases {
            match router.on_frame(frame.clone(), &ctx) {
                Err(got) => assert_eq!(got, want, "{frame:?}"),
                Ok(other) => panic!("{frame:?} routed as {other:?}"),
            }
        }
    }

    #[test]
    fn receipts_are_answered_once() {
        let mut router = Router::default();
        let (tx, _rx) = oneshot::channel();
        router.expect("r-1".to_owned(), Pending::Caller(tx));
        let receipt = Frame::new(Command::Receipt).with_header("receipt-id", "r-1");
        let ctx = context(Version::V1_2);
        assert!(matches!(
            router.on_frame(receipt.clone(), &ctx),
            Ok(Routed::Receipt(Pending::Caller(_)))
        ));
        assert!(matches!(
            router.on_frame(receipt, &ctx),
            Ok(Routed::UnknownReceipt)
        ));
    }

    #[test]
    fn restoring_counts_resubscribe_receipts() {
        let mut router = Router::default();
        router.expect(
            "r-1".to_owned(),
            Pending::Subscribe {
                waiter: None,
                restoring: true,
            },
        );
        router.expect(
            "r-2".to_owned(),
            Pending::Subscribe {
                waiter: None,
                restoring: true,
            },
        );
        assert_eq!(router.restoring(), 2);
        let ctx = context(Version::V1_2);
        let receipt = Frame::new(Command::Receipt).with_header("receipt-id", "r-2");
        assert!(router.on_frame(receipt, &ctx).is_ok());
        assert_eq!(router.restoring(), 1);
        router.fail_receipts(&Error::Closed);
        assert_eq!(router.restoring(), 0);
    }

    #[test]
    fn receipts_nobody_waits_for_are_pruned() {
        let mut router = Router::default();
        let mut kept = Vec::new();
        for i in 0..PRUNE_AT {
            let (tx, rx) = oneshot::channel();
            if i % 2 == 0 {
                kept.push(rx); // still waiting
            } else {
                drop(rx); // gave up
            }
            router.expect(format!("r-{i}"), Pending::Caller(tx));
        }
        assert_eq!(router.awaited(), PRUNE_AT / 2);
        assert_eq!(kept.len(), PRUNE_AT / 2);
    }

    #[tokio::test]
    async fn an_error_fails_its_culprit_directly_and_the_rest_as_lost() {
        let mut router = Router::default();
        let (culprit_tx, culprit_rx) = oneshot::channel();
        let (other_tx, other_rx) = oneshot::channel();
        let (sub_tx, sub_rx) = oneshot::channel();
        router.expect("r-1".to_owned(), Pending::Caller(culprit_tx));
        router.expect("r-2".to_owned(), Pending::Caller(other_tx));
        router.expect(
            "r-3".to_owned(),
            Pending::Subscribe {
                waiter: Some(sub_tx),
                restoring: false,
            },
        );
        let error = Frame::new(Command::Error)
            .with_header("message", "invalid destination")
            .with_header("receipt-id", "r-1");
        let Ok(Routed::Error(server)) = router.on_frame(error, &context(Version::V1_2)) else {
            panic!("an ERROR is routed as an error");
        };
        assert_eq!(server.message(), "invalid destination");
        router.fail_receipts(&Error::Server(server));
        match culprit_rx.await {
            Ok(Err(Error::Server(e))) => assert_eq!(e.message(), "invalid destination"),
            other => panic!("{other:?}"),
        }
        for rx in [other_rx, sub_rx] {
            match rx.await {
                Ok(Err(e @ Error::ConnectionLost(_))) => {
                    assert_eq!(
                        e.server_error().map(ServerError::message),
                        Some("invalid destination")
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
