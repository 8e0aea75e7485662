//! Opening one STOMP connection: the transport, then CONNECT and its answer.

use std::time::Duration;

use bytes::BytesMut;
use stompede_stomp::{encode, Command, Decoder, Frame, HeartBeat, Version};

use crate::config::ClientConfig;
use crate::error::{Error, ProtocolError, ServerError};
use crate::transport::Link;

/// What CONNECTED told about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The negotiated STOMP version (1.0 when CONNECTED names none).
    pub version: Version,
    /// CONNECTED's `session` header.
    pub id: Option<String>,
    /// CONNECTED's `server` header.
    pub server: Option<String>,
    /// How often the client sends heart-beats (`None`: never).
    pub send_heart_beat: Option<Duration>,
    /// How often the server promised heart-beats (`None`: never).
    pub server_heart_beat: Option<Duration>,
    /// 1 for the first connection, then one more after each reconnection.
    pub connection: u64,
}

/// One open STOMP connection, after CONNECTED.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) link: Link,
    pub(crate) decoder: Decoder,
    /// Bytes received and not yet decoded (frames right behind CONNECTED, a partial frame).
    pub(crate) buf: BytesMut,
    pub(crate) session: Session,
    /// Longest the server may stay silent: its heart-beat interval times the tolerance.
    pub(crate) expect_within: Option<Duration>,
}

/// The versions offered, in `accept-version`.
const ACCEPT_VERSION: &str = "1.0,1.1,1.2";

/// Opens the transport and runs the CONNECT handshake, within `config.connect_timeout`.
pub(crate) async fn establish(config: &ClientConfig, connection: u64) -> Result<Connection, Error> {
    let frame = connect_frame(config);
    tokio::time::timeout(config.connect_timeout, handshake(config, frame, connection))
        .await
        .unwrap_or(Err(Error::ConnectTimeout(config.connect_timeout)))
}

async fn handshake(
    config: &ClientConfig,
    connect: Frame,
    connection: u64,
) -> Result<Connection, Error> {
    let mut link = Link::open(config).await?;
    let mut out = BytesMut::new();
    // CONNECT is never escaped, whatever the version.
    encode(&connect, Version::V1_2, &mut out);
    link.send(vec![out.freeze()]).await?;

    let mut decoder = Decoder::new(config.limits);
    let mut buf = BytesMut::new();
    let reply = loop {
        if let Some(frame) = decoder.decode(&mut buf).map_err(ProtocolError::from)? {
            break frame;
        }
        let chunk = link.recv().await?;
        buf.extend_from_slice(&chunk);
    };
    let connected = on_connected(
        reply,
        config.heart_beat,
        config.heart_beat_tolerance,
        connection,
    )?;
    decoder.set_version(connected.session.version);
    tracing::debug!(
        version = %connected.session.version,
        session = connected.session.id.as_deref().unwrap_or(""),
        server = connected.session.server.as_deref().unwrap_or(""),
        "STOMP connected"
    );
    Ok(Connection {
        link,
        decoder,
        buf,
        session: connected.session,
        expect_within: connected.expect_within,
    })
}

/// The CONNECT frame for `config`.
pub(crate) fn connect_frame(config: &ClientConfig) -> Frame {
    let mut frame = Frame::new(Command::Connect).with_header("accept-version", ACCEPT_VERSION);
    if let Some(host) = &config.host {
        frame.push_header("host", host.as_str());
    }
    if let Some(login) = &config.login {
        frame.push_header("login", login.as_str());
    }
    if let Some(passcode) = &config.passcode {
        frame.push_header("passcode", passcode.as_str());
    }
    frame.push_header("heart-beat", config.heart_beat.to_header());
    for (name, value) in &config.headers {
        frame.push_header(name.as_str(), value.as_str());
    }
    frame
}

/// The parts of CONNECTED the driver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connected {
    pub(crate) session: Session,
    pub(crate) expect_within: Option<Duration>,
}

/// Reads the server's answer to CONNECT.
pub(crate) fn on_connected(
    frame: Frame,
    ours: HeartBeat,
    tolerance: f64,
    connection: u64,
) -> Result<Connected, Error> {
    match frame.command() {
        Command::Connected => {}
        Command::Error => return Err(Error::Server(ServerError::new(frame))),
        other => return Err(ProtocolError::ExpectedConnected(other).into()),
    }
    let version = match frame.header("version") {
        None => Version::V1_0,
        Some(v) => Version::parse(v).ok_or_else(|| ProtocolError::Version(v.to_owned()))?,
    };
    let theirs = match frame.header("heart-beat") {
        None => HeartBeat::default(),
        Some(h) => HeartBeat::parse(h).map_err(|_| ProtocolError::HeartBeat(h.to_owned()))?,
    };
    let (send_every, expect_every) = HeartBeat::negotiate(ours, theirs);
    let tolerance = if tolerance.is_finite() {
        tolerance.max(1.0)
    } else {
        2.0
    };
    let expect_within = expect_every
        .map(|d| Duration::try_from_secs_f64(d.as_secs_f64() * tolerance).unwrap_or(Duration::MAX));
    Ok(Connected {
        session: Session {
            version,
            id: frame.header("session").map(str::to_owned),
            server: frame.header("server").map(str::to_owned),
            send_heart_beat: send_every,
            server_heart_beat: expect_every,
            connection,
        },
        expect_within,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn hb(send: u64, receive: u64) -> HeartBeat {
        HeartBeat {
            send: ms(send),
            receive: ms(receive),
        }
    }

    #[test]
    fn connect_frame_carries_the_config() {
        let config = ClientConfig::new("ws://127.0.0.1:15674/ws")
            .credentials("guest", "guest")
            .host("/")
            .heart_beat(ms(1000), ms(2000))
            .header("client-id", "x");
        let frame = connect_frame(&config);
        assert_eq!(frame.command(), Command::Connect);
        assert_eq!(
            frame.headers().collect::<Vec<_>>(),
            [
                ("accept-version", "1.0,1.1,1.2"),
                ("host", "/"),
                ("login", "guest"),
                ("passcode", "guest"),
                ("heart-beat", "1000,2000"),
                ("client-id", "x"),
            ]
        );
        let plain = connect_frame(&ClientConfig::new("ws://127.0.0.1/ws"));
        assert_eq!(
            plain.headers().collect::<Vec<_>>(),
            [
                ("accept-version", "1.0,1.1,1.2"),
                ("heart-beat", "10000,10000")
            ]
        );
    }

    #[test]
    fn connected_negotiates_version_and_heart_beats() {
        let frame = Frame::new(Command::Connected)
            .with_header("version", "1.2")
            .with_header("heart-beat", "500,3000")
            .with_header("session", "s-1")
            .with_header("server", "stompede/0.1.0");
        let connected = on_connected(frame, hb(1000, 1000), 2.0, 1).expect("valid");
        assert_eq!(connected.session.version, Version::V1_2);
        assert_eq!(connected.session.id.as_deref(), Some("s-1"));
        assert_eq!(connected.session.server.as_deref(), Some("stompede/0.1.0"));
        // We send every max(1000, 3000); the server every max(500, 1000), tolerated twice.
        assert_eq!(connected.session.send_heart_beat, Some(ms(3000)));
        assert_eq!(connected.session.server_heart_beat, Some(ms(1000)));
        assert_eq!(connected.expect_within, Some(ms(2000)));
    }

    #[test]
    fn connected_defaults_to_stomp_1_0_without_heart_beats() {
        let connected =
            on_connected(Frame::new(Command::Connected), hb(1000, 1000), 2.0, 3).expect("valid");
        assert_eq!(connected.session.version, Version::V1_0);
        assert_eq!(connected.session.send_heart_beat, None);
        assert_eq!(connected.expect_within, None);
        assert_eq!(connected.session.connection, 3);
    }

    #[test]
    fn bad_answers_are_typed_errors() {
        let error = Frame::new(Command::Error)
            .with_header("message", "access refused")
            .with_body("bad login");
        match on_connected(error, hb(0, 0), 2.0, 1) {
            Err(Error::Server(e)) => {
                assert_eq!(e.message(), "access refused");
                assert_eq!(e.body_text(), Some("bad login"));
            }
            other => panic!("{other:?}"),
        }
        let cases = [
            (
                Frame::new(Command::Message),
                ProtocolError::ExpectedConnected(Command::Message),
            ),
            (
                Frame::new(Command::Connected).with_header("version", "2.0"),
                ProtocolError::Version("2.0".to_owned()),
            ),
            (
                Frame::new(Command::Connected).with_header("heart-beat", "x,1"),
                ProtocolError::HeartBeat("x,1".to_owned()),
            ),
        ];
        for (frame, want) in cases {
            match on_connected(frame, hb(0, 0), 2.0, 1) {
                Err(Error::Protocol(got)) => assert_eq!(got, want),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn absurd_tolerance_is_tamed() {
        let frame = Frame::new(Command::Connected)
            .with_header("version", "1.2")
            .with_header("heart-beat", "1000,0");
        for (tolerance, want) in [(f64::NAN, 2000), (0.1, 1000), (3.0, 3000)] {
            let connected = on_connected(frame.clone(), hb(0, 1000), tolerance, 1).expect("valid");
            assert_eq!(connected.expect_within, Some(ms(want)), "{tolerance}");
        }
    }
}
