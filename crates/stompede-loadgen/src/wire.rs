//! STOMP frames as the load tool reads them: located in the received bytes and left there.
//!
//! The codec crate's `Decoder` parses every header of every frame into an owned `String` pair:
//! for a MESSAGE that is a `Vec` and about a dozen allocations the tool never looks at, and
//! `perf` of a max-rate fan-out showed decoding, unescaping and `malloc` dominating the tool's
//! profile. Here a frame is a reference-counted slice of the bytes the socket delivered plus
//! where its command, headers and body lie; a header is found (and unescaped) only when asked
//! for, and the timestamp is read straight from the body.
//!
//! The scanner is bounded like the codec (frame length, header count, header length, from
//! [`Limits`]) and incremental: a frame split across reads is scanned once, from where the
//! previous read stopped, and bytes are copied only when a frame is split.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use stompede_stomp::{Command, Limits};

/// Longest command line accepted (the longest command, `UNSUBSCRIBE`, is 11 bytes).
const MAX_COMMAND_LINE: usize = 32;

/// Why the bytes from the server are not STOMP frames. After one, the connection is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The first line is not a known command.
    UnknownCommand,
    /// A header line without a colon.
    MissingColon,
    /// More header lines than the limit allows.
    TooManyHeaders,
    /// A header line longer than the limit.
    HeaderTooLong,
    /// A frame longer than the limit.
    FrameTooLarge,
    /// A `content-length` that is not a decimal number.
    BadContentLength,
    /// The byte after a `content-length` body is not NUL.
    MissingNul,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScanError::UnknownCommand => "unknown command",
            ScanError::MissingColon => "header line without a colon",
            ScanError::TooManyHeaders => "too many headers",
            ScanError::HeaderTooLong => "header line too long",
            ScanError::FrameTooLarge => "frame too large",
            ScanError::BadContentLength => "invalid content-length",
            ScanError::MissingNul => "no NUL after the content-length body",
        })
    }
}

/// One complete frame: its bytes and where its parts lie in them.
#[derive(Debug, Clone)]
pub(crate) struct RawFrame {
    bytes: Bytes,
    command: Command,
    /// The header lines, each ending with its EOL.
    headers: Range<usize>,
    body: Range<usize>,
}

impl RawFrame {
    /// The command.
    pub(crate) fn command(&self) -> Command {
        self.command
    }

    /// The body, without the NUL that ends the frame.
    pub(crate) fn body(&self) -> &[u8] {
        self.bytes.get(self.body.clone()).unwrap_or_default()
    }

    /// The value of the first header called `name` (the one that counts, as in the spec),
    /// unescaped; `None` if there is none or its value is not valid UTF-8 or STOMP 1.2
    /// escaping. `name` must need no escaping (every name the tool asks for).
    pub(crate) fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let region = self.bytes.get(self.headers.clone()).unwrap_or_default();
        region
            .split(|&b| b == b'\n')
            .map(strip_cr)
            .find_map(|line| {
                let colon = memchr::memchr(b':', line)?;
                (line.get(..colon) == Some(name.as_bytes())).then(|| line.get(colon + 1..))?
            })
            .and_then(|raw| unescape(raw, self.command))
    }
}

/// Undoes STOMP 1.2 value escaping (none for CONNECTED, which is never escaped).
fn unescape(raw: &[u8], command: Command) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(raw).ok()?;
    if command == Command::Connected || !text.contains('\\') {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            'c' => ':',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(Cow::Owned(out))
}

/// Progress through the frame at the start of the pending bytes, so that a frame arriving in
/// pieces is scanned once. Offsets are from the frame's first byte.
#[derive(Debug, Clone, Default)]
struct Scan {
    /// Next byte to examine.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
    command: Option<Command>,
    headers_start: usize,
    header_count: usize,
    content_length_seen: bool,
    content_length: Option<usize>,
    /// End of the header lines and start of the body, once the blank line is in.
    body_start: Option<(usize, usize)>,
}

/// Where a complete frame's parts lie.
struct Bounds {
    command: Command,
    headers: Range<usize>,
    body: Range<usize>,
    /// The whole frame, NUL included.
    len: usize,
}

/// Splits the byte stream from the server into [`RawFrame`]s, skipping heart-beat EOLs.
///
/// Pending bytes live in `ready` (a slice of what was pushed, not copied) until a frame turns
/// out to be incomplete; then its bytes move to `partial` and later bytes are appended there.
#[derive(Debug)]
pub(crate) struct Scanner {
    limits: Limits,
    ready: Bytes,
    partial: BytesMut,
    scan: Scan,
}

impl Scanner {
    /// A scanner enforcing `limits`.
    pub(crate) fn new(limits: Limits) -> Scanner {
        Scanner {
            limits,
            ready: Bytes::new(),
            partial: BytesMut::new(),
            scan: Scan::default(),
        }
    }

    /// Adds received bytes. When nothing is pending (the usual case: the server sends whole
    /// frames per message) they are not copied; frames become slices of them.
    pub(crate) fn push(&mut self, data: Bytes) {
        if self.ready.is_empty() && self.partial.is_empty() {
            self.ready = data;
        } else {
            self.push_with(|buf| buf.extend_from_slice(&data));
        }
    }

    /// Adds received bytes by letting `fill` append them to the pending buffer: SockJS
    /// unescapes its JSON strings straight into it.
    pub(crate) fn push_with<R>(&mut self, fill: impl FnOnce(&mut BytesMut) -> R) -> R {
        self.stash();
        let result = fill(&mut self.partial);
        self.ready = self.partial.split().freeze();
        result
    }

    /// Moves pending bytes from `ready` to `partial` (only one of them holds any).
    fn stash(&mut self) {
        if !self.ready.is_empty() {
            self.partial.extend_from_slice(&self.ready);
            self.ready = Bytes::new();
        }
    }

    /// Bytes received but not yet returned as frames.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.ready.len() + self.partial.len()
    }

    /// The next complete frame; `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// The bytes are not a frame within the limits; the pending bytes are dropped.
    pub(crate) fn next_frame(&mut self) -> Result<Option<RawFrame>, ScanError> {
        if self.scan.pos == 0 {
            let beats = heartbeat_len(&self.ready);
            self.ready.advance(beats);
            // A lone CR may be the first half of a CRLF heart-beat.
            if self.ready.is_empty() || self.ready[..] == b"\r"[..] {
                self.stash();
                return Ok(None);
            }
        }
        match scan(&mut self.scan, &self.ready, self.limits) {
            Ok(Some(bounds)) => {
                self.scan = Scan::default();
                let bytes = self.ready.split_to(bounds.len);
                Ok(Some(RawFrame {
                    bytes,
                    command: bounds.command,
                    headers: bounds.headers,
                    body: bounds.body,
                }))
            }
            Ok(None) => {
                self.stash();
                Ok(None)
            }
            Err(e) => {
                self.scan = Scan::default();
                self.ready = Bytes::new();
                self.partial.clear();
                Err(e)
            }
        }
    }
}

/// Leading heart-beats: any run of LF and CRLF.
fn heartbeat_len(buf: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match (buf.get(n), buf.get(n + 1)) {
            (Some(b'\n'), _) => n += 1,
            (Some(b'\r'), Some(b'\n')) => n += 2,
            _ => return n,
        }
    }
}

/// Scans on from where `scan` stopped; `Ok(Some(_))` once the frame at the start of `buf` is
/// complete.
fn scan(scan: &mut Scan, buf: &[u8], limits: Limits) -> Result<Option<Bounds>, ScanError> {
    // Whatever lies past the limit cannot belong to an acceptable frame.
    let view = buf.get(..limits.max_frame_len).unwrap_or(buf);
    let command = match scan.command {
        Some(command) => command,
        None => {
            let Some(eol) = find(b'\n', view, scan.pos) else {
                scan.pos = view.len();
                if strip_cr(view).len() > MAX_COMMAND_LINE {
                    return Err(ScanError::UnknownCommand);
                }
                return incomplete(buf, limits);
            };
            let line = strip_cr(view.get(..eol).unwrap_or_default());
            let command = Command::from_bytes(line).ok_or(ScanError::UnknownCommand)?;
            scan.command = Some(command);
            scan.pos = eol + 1;
            scan.line_start = eol + 1;
            scan.headers_start = eol + 1;
            command
        }
    };
    while scan.body_start.is_none() {
        let Some(eol) = find(b'\n', view, scan.pos) else {
            scan.pos = view.len();
            let pending = view.get(scan.line_start..).unwrap_or_default();
            if strip_cr(pending).len() > limits.max_header_len {
                return Err(ScanError::HeaderTooLong);
            }
            return incomplete(buf, limits);
        };
        let line = strip_cr(view.get(scan.line_start..eol).unwrap_or_default());
        if line.is_empty() {
            scan.body_start = Some((scan.line_start, eol + 1));
        } else {
            header_line(scan, line, limits)?;
        }
        scan.pos = eol + 1;
        scan.line_start = eol + 1;
    }
    let Some((headers_end, body_start)) = scan.body_start else {
        return Ok(None); // unreachable: the loop above ran until this was set
    };
    let body_end = match scan.content_length {
        Some(len) => {
            let Some(end) = body_start
                .checked_add(len)
                .filter(|end| *end < limits.max_frame_len)
            else {
                return Err(ScanError::FrameTooLarge);
            };
            match view.get(end) {
                None => return incomplete(buf, limits),
                Some(0) => end,
                Some(_) => return Err(ScanError::MissingNul),
            }
        }
        None => match find(0, view, scan.pos.max(body_start)) {
            Some(end) => end,
            None => {
                scan.pos = view.len();
                return incomplete(buf, limits);
            }
        },
    };
    Ok(Some(Bounds {
        command,
        headers: scan.headers_start..headers_end,
        body: body_start..body_end,
        len: body_end + 1,
    }))
}

/// Checks one complete header line and picks up the first `content-length`.
fn header_line(scan: &mut Scan, line: &[u8], limits: Limits) -> Result<(), ScanError> {
    if line.len() > limits.max_header_len {
        return Err(ScanError::HeaderTooLong);
    }
    scan.header_count += 1;
    if scan.header_count > limits.max_headers {
        return Err(ScanError::TooManyHeaders);
    }
    let colon = memchr::memchr(b':', line).ok_or(ScanError::MissingColon)?;
    if !scan.content_length_seen && line.get(..colon) == Some(b"content-length") {
        scan.content_length_seen = true;
        let value = line.get(colon + 1..).unwrap_or_default();
        scan.content_length = Some(parse_length(value).ok_or(ScanError::BadContentLength)?);
    }
    Ok(())
}

/// A decimal count: digits only, fitting in `usize`.
fn parse_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then_some(())?;
        n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

/// More bytes are needed, unless the limit is already reached.
fn incomplete(buf: &[u8], limits: Limits) -> Result<Option<Bounds>, ScanError> {
    if buf.len() >= limits.max_frame_len {
        Err(ScanError::FrameTooLarge)
    } else {
        Ok(None)
    }
}

fn find(needle: u8, haystack: &[u8], from: usize) -> Option<usize> {
    let tail = haystack.get(from..)?;
    memchr::memchr(needle, tail).map(|i| from + i)
}

/// EOL is LF or CRLF.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stompede_stomp::{encode, Frame, Version};

    fn limits() -> Limits {
        Limits {
            max_frame_len: 1024,
            max_headers: 8,
            max_header_len: 128,
        }
    }

    /// Feeds `input` in pieces of `step` bytes and collects the frames.
    fn frames(input: &[u8], step: usize) -> Result<Vec<RawFrame>, ScanError> {
        let mut scanner = Scanner::new(limits());
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            scanner.push(Bytes::copy_from_slice(piece));
            while let Some(frame) = scanner.next_frame()? {
                out.push(frame);
            }
        }
        Ok(out)
    }

    fn message_bytes() -> Vec<u8> {
        let frame = Frame::new(Command::Message)
            .with_header("destination", "/topic/a")
            .with_header("message-id", "7")
            .with_header("subscription", "0")
            .with_header("ack", "a:b\\c\nd")
            .with_body(&b"123xx\0yy"[..]);
        let mut out = BytesMut::new();
        encode(&frame, Version::V1_2, &mut out);
        out.to_vec()
    }

    #[test]
    fn frames_decode_whatever_the_split() {
        let mut stream = b"\n\r\n".to_vec();
        stream.extend_from_slice(&message_bytes());
        stream.extend_from_slice(b"\nRECEIPT\r\nreceipt-id:r-1\r\n\r\n\0\n");
        stream.extend_from_slice(b"ERROR\nmessage:bad\nmessage:second\n\nno length\0");
        for step in [1, 2, 3, 7, 64, stream.len()] {
            let got = frames(&stream, step).expect("valid stream");
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(got[0].command(), Command::Message);
            assert_eq!(got[0].body(), b"123xx\0yy");
            assert_eq!(got[0].header("ack").as_deref(), Some("a:b\\c\nd"));
            assert_eq!(got[0].header("message-id").as_deref(), Some("7"));
            assert_eq!(got[0].header("missing"), None);
            assert_eq!(got[1].command(), Command::Receipt);
            assert_eq!(got[1].header("receipt-id").as_deref(), Some("r-1"));
            assert!(got[1].body().is_empty());
            assert_eq!(
                got[2].header("message").as_deref(),
                Some("bad"),
                "first wins"
            );
            assert_eq!(got[2].body(), b"no length");
        }
    }

    #[test]
    fn connected_headers_are_not_unescaped() {
        let got = frames(b"CONNECTED\nversion:1.2\nserver:a\\b\n\n\0", 5).expect("valid");
        assert_eq!(got[0].header("server").as_deref(), Some("a\\b"));
        assert_eq!(got[0].header("version").as_deref(), Some("1.2"));
    }

    #[test]
    fn bad_escapes_and_utf8_read_as_absent() {
        let got = frames(b"MESSAGE\na:x\\t\nb:\xff\nc:ok\\\n\n\0", 4).expect("frame is valid");
        assert_eq!(got[0].header("a"), None);
        assert_eq!(got[0].header("b"), None);
        assert_eq!(got[0].header("c"), None, "a trailing lone backslash");
    }

    #[test]
    fn hostile_frames_are_rejected() {
        let long_header = format!("MESSAGE\nx:{}\n\n\0", "a".repeat(200));
        let many = format!("MESSAGE\n{}\n\0", "a:b\n".repeat(9));
        let huge_body = format!("MESSAGE\n\n{}", "z".repeat(2000));
        let rows: Vec<(&[u8], ScanError)> = vec![
            (b"HELLO\n\n\0", ScanError::UnknownCommand),
            (b"message\n\n\0", ScanError::UnknownCommand),
            (&[b'M'; 40], ScanError::UnknownCommand),
            (b"MESSAGE\nno colon\n\n\0", ScanError::MissingColon),
            (long_header.as_bytes(), ScanError::HeaderTooLong),
            (many.as_bytes(), ScanError::TooManyHeaders),
            (huge_body.as_bytes(), ScanError::FrameTooLarge),
            (
                b"MESSAGE\ncontent-length:-1\n\n\0",
                ScanError::BadContentLength,
            ),
            (
                b"MESSAGE\ncontent-length:\n\n\0",
                ScanError::BadContentLength,
            ),
            (
                b"MESSAGE\ncontent-length:99999999999999999999999\n\n\0",
                ScanError::BadContentLength,
            ),
            (
                b"MESSAGE\ncontent-length:2000\n\n",
                ScanError::FrameTooLarge,
            ),
            (b"MESSAGE\ncontent-length:2\n\nabc\0", ScanError::MissingNul),
        ];
        for (input, want) in rows {
            for step in [1, 5, input.len()] {
                assert_eq!(
                    frames(input, step).map(|f| f.len()),
                    Err(want),
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn a_long_header_is_refused_before_its_end_arrives() {
        let mut scanner = Scanner::new(limits());
        scanner.push(Bytes::from_static(b"MESSAGE\nx:"));
        assert_eq!(scanner.next_frame().map(|f| f.is_some()), Ok(false));
        scanner.push(Bytes::from(vec![b'a'; 200]));
        assert_eq!(
            scanner.next_frame().map(|f| f.is_some()),
            Err(ScanError::HeaderTooLong)
        );
        assert_eq!(scanner.pending(), 0, "the bad bytes are dropped");
    }

    #[test]
    fn whole_frames_are_not_copied() {
        let data = Bytes::from(message_bytes());
        let start = data.as_ptr();
        let mut scanner = Scanner::new(limits());
        scanner.push(data);
        let frame = scanner.next_frame().expect("valid").expect("complete");
        assert_eq!(frame.bytes.as_ptr(), start);
        assert_eq!(scanner.pending(), 0);
    }

    #[test]
    fn push_with_appends_after_pending_bytes() {
        let whole = message_bytes();
        let (head, tail) = whole.split_at(20);
        let mut scanner = Scanner::new(limits());
        scanner.push(Bytes::copy_from_slice(head));
        assert!(scanner.next_frame().expect("valid so far").is_none());
        scanner.push_with(|buf| buf.extend_from_slice(tail));
        let frame = scanner.next_frame().expect("valid").expect("complete");
        assert_eq!(frame.body(), b"123xx\0yy");
        assert!(scanner.next_frame().expect("nothing left").is_none());
    }

    #[test]
    fn heartbeats_alone_are_consumed() {
        let mut scanner = Scanner::new(limits());
        scanner.push(Bytes::from_static(b"\n\r\n\n\r"));
        assert!(scanner.next_frame().expect("valid").is_none());
        scanner.push(Bytes::from_static(b"\nRECEIPT\nreceipt-id:1\n\n\0"));
        let frame = scanner.next_frame().expect("valid").expect("complete");
        assert_eq!(frame.command(), Command::Receipt);
    }
}
