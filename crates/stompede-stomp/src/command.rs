//! The STOMP commands, client and server side.

/// A STOMP command: the first line of every frame.
///
/// Commands are matched exactly and case-sensitively, as the spec requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session (the STOMP 1.0 spelling).
    Connect,
    /// Client: open a session (the STOMP 1.1+ spelling, not understood by 1.0 servers).
    Stomp,
    /// Server: the session is open; carries the negotiated version.
    Connected,
    /// Client: publish a message to a destination.
    Send,
    /// Client: start receiving messages from a destination.
    Subscribe,
    /// Client: stop a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: reject a message (1.1+).
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll back a transaction.
    Abort,
    /// Client: close the session gracefully.
    Disconnect,
    /// Server: a message delivered to a subscription.
    Message,
    /// Server: confirms that a frame carrying a `receipt` header was processed.
    Receipt,
    /// Server: something went wrong; the server closes the connection after it.
    Error,
}

impl Command {
    /// Every command, in declaration order.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Connected,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The wire spelling, e.g. `"CONNECT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses the wire spelling. Exact and case-sensitive: `b"send"` is `None`.
    pub fn from_bytes(b: &[u8]) -> Option<Command> {
        Some(match b {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"CONNECTED" => Command::Connected,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Whether header names and values of this command are sent unescaped.
    ///
    /// STOMP 1.2, "Value Encoding": CONNECT and CONNECTED frames do not escape,
    /// to stay readable by 1.0 peers before the version is negotiated. The
    /// spec names only those two; a STOMP frame comes from a 1.1+ client and is
    /// escaped like any other frame.
    pub(crate) fn is_raw(self) -> bool {
        matches!(self, Command::Connect | Command::Connected)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_spelling() {
        for command in Command::ALL {
            assert_eq!(
                Command::from_bytes(command.as_str().as_bytes()),
                Some(command)
            );
        }
    }

    #[test]
    fn commands_are_case_sensitive_and_exact() {
        for bad in [
            &b"send"[..],
            b"Send",
            b"SEND ",
            b" SEND",
            b"SEND\r",
            b"",
            b"SENDX",
        ] {
            assert_eq!(Command::from_bytes(bad), None, "{bad:?}");
        }
    }
}
