//! The decoded form of a STOMP frame.

use bytes::Bytes;

use crate::Command;

/// A STOMP frame: a command, headers in wire order, and a body.
///
/// Header names and values are held unescaped. Repeated headers are kept, in
/// order; [`Frame::header`] returns the first, which is the one STOMP 1.2 says
/// to use. The body is arbitrary bytes and may contain NULs.
///
/// A `content-length` header is kept as it arrived but never trusted on the way
/// out: [`crate::encode`] writes the correct one itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    command: Command,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Builder form of [`Frame::push_header`]: appends a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Frame {
        self.push_header(name, value);
        self
    }

    /// Builder form of [`Frame::set_body`].
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    /// The command.
    pub fn command(&self) -> Command {
        self.command
    }

    /// The value of the first header called `name` (case-sensitive).
    ///
    /// STOMP 1.2, "Repeated Header Entries": only the first occurrence is used.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All headers in wire order, repeats included.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Appends a header after the existing ones. An existing header of the same
    /// name keeps precedence over it.
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Removes every header called `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| n != name);
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: Bytes) {
        self.body = body;
    }

    /// Splits the frame into command, headers (wire order) and body.
    pub fn into_parts(self) -> (Command, Vec<(String, String)>, Bytes) {
        (self.command, self.headers, self.body)
    }

    /// Assembles a frame from parts produced by the decoder.
    pub(crate) fn from_parts(
        command: Command,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Frame {
        Frame {
            command,
            headers,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_repeated_header_wins_and_all_are_kept() {
        let frame = Frame::new(Command::Message)
            .with_header("foo", "World")
            .with_header("foo", "Hello");
        assert_eq!(frame.header("foo"), Some("World"));
        assert_eq!(
            frame.headers().collect::<Vec<_>>(),
            [("foo", "World"), ("foo", "Hello")]
        );
    }

    #[test]
    fn header_lookup_is_case_sensitive() {
        let frame = Frame::new(Command::Send).with_header("Destination", "/a");
        assert_eq!(frame.header("destination"), None);
    }

    #[test]
    fn remove_header_removes_every_occurrence() {
        let mut frame = Frame::new(Command::Send)
            .with_header("a", "1")
            .with_header("b", "2")
            .with_header("a", "3");
        frame.remove_header("a");
        assert_eq!(frame.headers().collect::<Vec<_>>(), [("b", "2")]);
    }

    #[test]
    fn body_and_parts() {
        let mut frame = Frame::new(Command::Send).with_body("hi");
        assert_eq!(frame.body(), &Bytes::from_static(b"hi"));
        frame.set_body(Bytes::from_static(b"\0bin"));
        frame.push_header("x", "y");
        let (command, headers, body) = frame.into_parts();
        assert_eq!(command, Command::Send);
        assert_eq!(headers, [("x".to_owned(), "y".to_owned())]);
        assert_eq!(&body[..], b"\0bin");
    }
}
