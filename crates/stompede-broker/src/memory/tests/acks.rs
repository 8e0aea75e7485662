//! Looking up ACK and NACK references.

use super::*;

#[test]
fn unknown_acks_are_rejected() {
    let broker = broker();
    let mut owner = client(1);
    let stranger = client(2);
    owner
        .subscribe(&broker, "s", "/queue/q", AckMode::Client)
        .expect("subscribe");
    stranger
        .subscribe(&broker, "s", "/queue/other", AckMode::Client)
        .expect("subscribe");
    send(&broker, "/queue/q", "a").expect("publish");
    let got = owner.drain();
    let cases = [
        (stranger.session, ack_id(&got[0])),
        (SessionId(77), ack_id(&got[0])),
        (owner.session, "q999999"),
        (owner.session, "nonsense"),
        (owner.session, "t"),
        (owner.session, ""),
    ];
    for (session, id) in cases {
        let err = broker
            .ack(session, AckRef::Delivery(id))
            .expect_err("unknown");
        assert!(
            matches!(err, BrokerError::UnknownAck(ref i) if i == id),
            "{id}"
        );
        assert!(broker.nack(session, AckRef::Delivery(id)).is_err(), "{id}");
    }
    broker
        .ack(owner.session, AckRef::Delivery(ack_id(&got[0])))
        .expect("the owner can");
}

#[test]
fn auto_mode_queue_deliveries_have_no_ack() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "s", "/queue/q", AckMode::Auto)
        .expect("subscribe");
    let id = send(&broker, "/queue/q", "a").expect("publish");
    assert!(c.drain()[0].ack.is_none());
    let sub = SubscriptionId::from("s");
    let r = AckRef::Message {
        subscription: Some(&sub),
        message_id: id.as_str(),
    };
    assert!(matches!(
        broker.ack(c.session, r),
        Err(BrokerError::UnknownAck(_))
    ));
}

#[test]
fn stomp11_ack_names_message_and_subscription() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "a", "/queue/a", AckMode::ClientIndividual)
        .expect("subscribe");
    c.subscribe(&broker, "b", "/queue/b", AckMode::ClientIndividual)
        .expect("subscribe");
    let id = send(&broker, "/queue/a", "x").expect("publish");
    assert_eq!(c.drain().len(), 1);
    let (a, b) = (SubscriptionId::from("a"), SubscriptionId::from("b"));
    let wrong = AckRef::Message {
        subscription: Some(&b),
        message_id: id.as_str(),
    };
    assert!(broker.ack(c.session, wrong).is_err());
    let unknown_sub = SubscriptionId::from("zz");
    let unknown = AckRef::Message {
        subscription: Some(&unknown_sub),
        message_id: id.as_str(),
    };
    assert!(broker.ack(c.session, unknown).is_err());
    let right = AckRef::Message {
        subscription: Some(&a),
        message_id: id.as_str(),
    };
    broker.ack(c.session, right).expect("ack by message id");
    assert!(broker.ack(c.session, right).is_err(), "already acked");
}

#[test]
fn stomp10_ack_searches_every_subscription_of_the_session() {
    let broker = broker();
    let mut c = client(1);
    c.subscribe(&broker, "a", "/queue/a", AckMode::Client)
        .expect("subscribe");
    c.subscribe(&broker, "b", "/queue/b", AckMode::Client)
        .expect("subscribe");
    let id = send(&broker, "/queue/b", "x").expect("publish");
    assert_eq!(c.drain().len(), 1);
    let r = AckRef::Message {
        subscription: None,
        message_id: id.as_str(),
    };
    broker.nack(c.session, r).expect("nack by message id");
    let again = c.drain();
    assert!(again[0].redelivered);
    broker.ack(c.session, r).expect("ack the redelivery");
    assert!(broker.ack(c.session, r).is_err());
    // With a client-mode topic subscription, an untracked message id may be a topic message.
    c.subscribe(&broker, "t", "/topic/t", AckMode::Client)
        .expect("subscribe");
    let topic_id = send(&broker, "/topic/t", "y").expect("publish");
    let r = AckRef::Message {
        subscription: None,
        message_id: topic_id.as_str(),
    };
    broker.ack(c.session, r).expect("topic message accepted");
}
