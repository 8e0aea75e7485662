//! Errors of the server layer.

use stompede_broker::{BrokerError, DestinationError};
use stompede_stomp::{Command, DecodeError};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Invalid TOML, an unknown key, or a value of the wrong type.
    #[error("invalid config")]
    Parse(#[source] toml::de::Error),
    /// A malformed `STOMPEDE__…` environment override.
    #[error("invalid environment override {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// Why.
        reason: String,
    },
    /// A value outside what the server can work with.
    #[error("invalid config value {key}: {reason}")]
    Invalid {
        /// The dotted key, e.g. `stomp.max_frame_len`.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// Why a STOMP session ends with an ERROR frame. Each variant knows the ERROR frame's `message`
/// header ([`SessionError::error_frame_message`]); its `Display` goes into the frame's body.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The bytes were not a STOMP frame.
    #[error("invalid frame: {0}")]
    Decode(#[from] DecodeError),
    /// A frame other than CONNECT/STOMP arrived before CONNECT.
    #[error("expected CONNECT or STOMP, got {0:?}")]
    NotConnected(Command),
    /// A second CONNECT.
    #[error("session is already connected")]
    AlreadyConnected,
    /// No version in `accept-version` is supported.
    #[error("supported versions are 1.0, 1.1 and 1.2, client accepts {0:?}")]
    UnsupportedVersion(String),
    /// A frame only a server sends.
    #[error("{0:?} frames are sent by servers, not clients")]
    ServerCommand(Command),
    /// A required header is absent.
    #[error("{command:?} frame needs a '{header}' header")]
    MissingHeader {
        /// The frame.
        command: Command,
        /// The header.
        header: &'static str,
    },
    /// A header's value is not acceptable.
    #[error("invalid '{header}' header: {reason}")]
    InvalidHeader {
        /// The header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// The destination could not be parsed or is not served.
    #[error("invalid destination: {0}")]
    Destination(#[from] DestinationError),
    /// The broker refused.
    #[error("{0}")]
    Broker(#[from] BrokerError),
    /// The session holds as many subscriptions as it may.
    #[error("limit of {limit} subscriptions per session reached")]
    TooManySubscriptions {
        /// The limit.
        limit: usize,
    },
    /// Application destinations cannot be subscribed to.
    #[error("cannot subscribe to application destination {0}")]
    SubscribeToApp(String),
    /// No handler is registered for an application destination.
    #[error("no handler for {0}")]
    NoHandler(String),
    /// A handler rejected the message.
    #[error("{0}")]
    Handler(#[from] crate::app::HandlerError),
    /// Transaction misuse.
    #[error("transaction {0}")]
    Transaction(#[from] crate::session::TransactionError),
    /// An invalid `/user/...` destination.
    #[error("{0}")]
    UserDestination(#[from] crate::user::UserDestinationError),
    /// CONNECT's credentials (or the handshake's token) were refused.
    #[error("authentication failed: {0}")]
    Auth(#[from] crate::auth::AuthError),
    /// The session's token expired.
    #[error("the session's credentials expired")]
    Expired,
    /// Authorization refused a SEND or SUBSCRIBE.
    #[error("{0}")]
    Denied(#[from] crate::authz::Denied),
}

impl SessionError {
    /// Short text for the ERROR frame's `message` header.
    pub fn error_frame_message(&self) -> &'static str {
        match self {
            SessionError::Decode(e) => e.error_frame_message(),
            SessionError::NotConnected(_) => "not connected",
            SessionError::AlreadyConnected => "already connected",
            SessionError::UnsupportedVersion(_) => "unsupported protocol version",
            SessionError::ServerCommand(_) => "unexpected command",
            SessionError::MissingHeader { .. } => "missing header",
            SessionError::InvalidHeader { .. } => "invalid header",
            SessionError::Destination(_) => "invalid destination",
            SessionError::Broker(e) => e.error_frame_message(),
            SessionError::TooManySubscriptions { .. } => "too many subscriptions",
            SessionError::SubscribeToApp(_) => "invalid destination",
            SessionError::NoHandler(_) => "no handler for destination",
            SessionError::Handler(e) => e.error_frame_message(),
            SessionError::Transaction(_) => "invalid transaction",
            SessionError::UserDestination(_) => "invalid destination",
            SessionError::Auth(_) => "authentication failed",
            SessionError::Expired => "credentials expired",
            SessionError::Denied(_) => "access denied",
        }
    }

    /// The WebSocket close code that follows the ERROR frame.
    pub fn close_code(&self) -> u16 {
        match self {
            SessionError::Decode(DecodeError::FrameTooLarge { .. }) => close_code::TOO_BIG,
            SessionError::Auth(_) | SessionError::Expired | SessionError::Denied(_) => {
                close_code::POLICY
            }
            _ => close_code::PROTOCOL,
        }
    }
}

/// WebSocket close codes the server uses.
pub mod close_code {
    /// DISCONNECT, or the client closed.
    pub const NORMAL: u16 = 1000;
    /// Server shutting down.
    pub const AWAY: u16 = 1001;
    /// After an ERROR frame for a protocol violation.
    pub const PROTOCOL: u16 = 1002;
    /// After an ERROR frame for refused credentials, expired credentials or a denied frame.
    pub const POLICY: u16 = 1008;
    /// After an ERROR frame for an oversized frame.
    pub const TOO_BIG: u16 = 1009;
    /// The session cannot be served reliably: slow consumer or missed heart-beats
    /// (Spring's `CloseStatus.SESSION_NOT_RELIABLE`).
    pub const NOT_RELIABLE: u16 = 4500;
}
