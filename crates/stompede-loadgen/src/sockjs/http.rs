//! Just enough of an HTTP/1.1 client for the SockJS HTTP transports: one request at a time on
//! a keep-alive TCP connection, responses framed by `Content-Length`, chunked coding, or the
//! end of the connection, read incrementally so that a streaming body can be consumed as it
//! arrives.
//!
//! Everything read from the server is checked and bounded; nothing here trusts a length or a
//! line until it has been validated.

use std::fmt;
use std::io;
use std::net::IpAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::chunked::{ChunkedDecoder, ChunkedError};

/// Largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in one response head.
const MAX_HEADERS: usize = 100;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// A malformed or unsupported response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// No end of the head within [`MAX_HEAD`] bytes, or more than [`MAX_HEADERS`] fields.
    HeadTooLarge,
    /// The status line is not `HTTP/1.x NNN reason`.
    BadStatusLine,
    /// A header line without a colon, with a bad name, or folded.
    BadHeader,
    /// A `Content-Length` that is not a number, or two that differ.
    BadContentLength,
    /// A transfer coding other than a final `chunked`.
    UnsupportedTransferEncoding,
    /// A `101 Switching Protocols` to a plain request.
    UnexpectedUpgrade,
    /// The chunked body is malformed.
    Chunked(ChunkedError),
    /// The connection ended before the body did.
    TruncatedBody,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge => f.write_str("response head too large"),
            HttpError::BadStatusLine => f.write_str("invalid status line"),
            HttpError::BadHeader => f.write_str("invalid header line"),
            HttpError::BadContentLength => f.write_str("invalid content-length"),
            HttpError::UnsupportedTransferEncoding => f.write_str("unsupported transfer-encoding"),
            HttpError::UnexpectedUpgrade => f.write_str("unexpected 101 response"),
            HttpError::Chunked(e) => write!(f, "chunked body: {e}"),
            HttpError::TruncatedBody => f.write_str("connection ended inside the body"),
        }
    }
}

impl From<ChunkedError> for HttpError {
    fn from(e: ChunkedError) -> Self {
        HttpError::Chunked(e)
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// No body (204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The parts of a response head that the client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// Status code.
    pub(crate) status: u16,
    /// How the body is delimited.
    pub(crate) body: BodyKind,
    /// Whether the connection may carry another request after this response.
    pub(crate) keep_alive: bool,
}

/// Parses a response head from the start of `buf`. Returns the head and its length in bytes,
/// or `None` if the head is not complete yet.
///
/// # Errors
///
/// The head is malformed, too large, or announces a body framing we cannot read.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let Some(end) = find(&buf[..buf.len().min(MAX_HEAD)], b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    let head = &buf[..end];
    let parts = head.split(|&b| b == b'\n').count();
    let mut lines = head.split(|&b| b == b'\n').enumerate().map(|(i, line)| {
        // Every line but the last ended with CRLF (the last one's CRLF is in the terminator).
        // A bare LF leaves a line without its CR, or a stray CR in it: rejected below.
        if i + 1 < parts {
            line.strip_suffix(b"\r").unwrap_or(b"\r")
        } else {
            line
        }
    });
    let status_line = lines.next().ok_or(HttpError::BadStatusLine)?;
    let (http10, status) = parse_status_line(status_line)?;

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = http10;
    for (count, line) in lines.enumerate() {
        if count >= MAX_HEADERS {
            return Err(HttpError::HeadTooLarge);
        }
        if line.contains(&b'\r') {
            return Err(HttpError::BadHeader);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::BadHeader)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            // Also rejects obsolete line folding (a line starting with whitespace).
            return Err(HttpError::BadHeader);
        }
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(HttpError::BadContentLength)?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HttpError::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            // Codings apply in order; only a final `chunked` delimits the body.
            let last = value.rsplit(|&b| b == b',').next().map(trim);
            chunked = last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    close = false;
                }
            }
        }
    }
    if transfer_encoding && !chunked {
        return Err(HttpError::UnsupportedTransferEncoding);
    }
    let body = if status == 101 {
        return Err(HttpError::UnexpectedUpgrade);
    } else if status < 200 || status == 204 || status == 304 {
        BodyKind::Empty
    } else if chunked {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3).
        BodyKind::Chunked
    } else {
        match content_length {
            Some(0) => BodyKind::Empty,
            Some(n) => BodyKind::Length(n),
            None => {
                close = true;
                BodyKind::UntilClose
            }
        }
    };
    Ok(Some((
        ResponseHead {
            status,
            body,
            keep_alive: !close,
        },
        end + 4,
    )))
}

/// Parses `HTTP/1.1 204 No Content`; returns whether it is HTTP/1.0, and the status.
fn parse_status_line(line: &[u8]) -> Result<(bool, u16), HttpError> {
    let http10 = if line.starts_with(b"HTTP/1.1 ") {
        false
    } else if line.starts_with(b"HTTP/1.0 ") {
        true
    } else {
        return Err(HttpError::BadStatusLine);
    };
    let rest = &line[9..];
    if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadStatusLine);
    }
    if rest.len() > 3 && rest[3] != b' ' {
        return Err(HttpError::BadStatusLine);
    }
    let status = rest[..3]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(HttpError::BadStatusLine);
    }
    Ok((http10, status))
}

/// A non-empty run of decimal digits that fits in a `u64`.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `text` without leading and trailing spaces and tabs.
fn trim(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &text[start..end]
}

/// First position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response body, whatever its framing.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    kind: BodyKind,
    remaining: u64,
    chunked: ChunkedDecoder,
}

impl BodyDecoder {
    /// A decoder for a body announced as `kind`.
    pub(crate) fn new(kind: BodyKind) -> BodyDecoder {
        BodyDecoder {
            kind,
            remaining: match kind {
                BodyKind::Length(n) => n,
                _ => 0,
            },
            chunked: ChunkedDecoder::new(),
        }
    }

    /// Moves body bytes from `input` to `out`; `Ok(true)` once the body is complete (bytes after
    /// it stay in `input`).
    ///
    /// # Errors
    ///
    /// The chunked framing is malformed.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, HttpError> {
        match self.kind {
            BodyKind::Empty => Ok(true),
            BodyKind::Length(_) => {
                // `take` fits in usize: it is at most `input.len()`.
                let take = self.remaining.min(input.len() as u64) as usize;
                out.extend_from_slice(&input[..take]);
                input.advance(take);
                self.remaining -= take as u64;
                Ok(self.remaining == 0)
            }
            BodyKind::Chunked => Ok(self.chunked.decode(input, out)?),
            BodyKind::UntilClose => {
                out.extend_from_slice(input);
                input.clear();
                Ok(false)
            }
        }
    }

    /// The connection ended: fine only for a body delimited by the close.
    ///
    /// # Errors
    ///
    /// [`HttpError::TruncatedBody`] for any other framing.
    pub(crate) fn on_eof(&self) -> Result<(), HttpError> {
        match self.kind {
            BodyKind::UntilClose => Ok(()),
            _ => Err(HttpError::TruncatedBody),
        }
    }
}

/// Why a request on an [`HttpConn`] failed.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The socket failed.
    Io(io::Error),
    /// The server closed the connection before a complete response head.
    Eof,
    /// The response is malformed.
    Http(HttpError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o error: {e}"),
            ConnError::Eof => f.write_str("connection closed before the response"),
            ConnError::Http(e) => write!(f, "bad response: {e}"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl From<HttpError> for ConnError {
    fn from(e: HttpError) -> Self {
        ConnError::Http(e)
    }
}

/// One client TCP connection speaking HTTP/1.1, one request at a time.
#[derive(Debug)]
pub(crate) struct HttpConn {
    stream: TcpStream,
    /// Bytes read but not yet consumed as a head or body.
    input: BytesMut,
}

impl HttpConn {
    /// Connects to `addr` (`host:port`) with Nagle off, from `source` if given.
    ///
    /// # Errors
    ///
    /// The connection is refused or fails.
    pub(crate) async fn connect(addr: &str, source: Option<IpAddr>) -> io::Result<HttpConn> {
        let stream = crate::net::connect(addr, source).await?;
        Ok(HttpConn {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK),
        })
    }

    /// Writes a complete request (see [`request`]).
    ///
    /// # Errors
    ///
    /// The socket cannot be written.
    pub(crate) async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    /// Reads the next final response head, skipping interim (1xx) responses.
    ///
    /// # Errors
    ///
    /// The connection fails or ends first, or the head is malformed.
    pub(crate) async fn read_head(&mut self) -> Result<ResponseHead, ConnError> {
        loop {
            if let Some((head, len)) = parse_head(&self.input)? {
                self.input.advance(len);
                if head.status >= 200 {
                    return Ok(head);
                }
                continue;
            }
            if self.fill().await? == 0 {
                return Err(ConnError::Eof);
            }
        }
    }

    /// Appends the next body bytes to `out`: returns `Ok(true)` once the body is complete,
    /// `Ok(false)` after at least one byte was added.
    ///
    /// # Errors
    ///
    /// The connection fails, ends inside the body, or the body framing is malformed.
    pub(crate) async fn read_body(
        &mut self,
        body: &mut BodyDecoder,
        out: &mut BytesMut,
    ) -> Result<bool, ConnError> {
        loop {
            let before = out.len();
            if body.decode(&mut self.input, out)? {
                return Ok(true);
            }
            if out.len() > before {
                return Ok(false);
            }
            if self.fill().await? == 0 {
                body.on_eof()?;
                return Ok(true);
            }
        }
    }

    /// Reads and discards the rest of a body.
    ///
    /// # Errors
    ///
    /// As [`HttpConn::read_body`].
    pub(crate) async fn skip_body(&mut self, body: &mut BodyDecoder) -> Result<(), ConnError> {
        let mut sink = BytesMut::new();
        while !self.read_body(body, &mut sink).await? {
            sink.clear();
        }
        Ok(())
    }

    /// One read from the socket into `input`; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        self.input.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.input).await
    }
}

/// An HTTP/1.1 request with a body (`Content-Length` framed).
pub(crate) fn request(
    method: &str,
    path: &str,
    host: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + path.len() + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    if let Some(content_type) = content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(content_type.as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<(ResponseHead, usize)>, HttpError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn heads_of_sockjs_responses_parse() {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: application/javascript; charset=UTF-8\r\n\
                    Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\nrest";
        let (h, len) = head(text).expect("valid").expect("complete");
        assert_eq!(
            h,
            ResponseHead {
                status: 200,
                body: BodyKind::Chunked,
                keep_alive: true
            }
        );
        assert_eq!(&text[len..], "rest");

        let (h, _) = head("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(
            h.body,
            BodyKind::Empty,
            "a 204 has no body whatever it says"
        );

        let (h, _) = head("HTTP/1.1 404 Not Found\r\ncontent-length:  9 \r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!((h.status, h.body), (404, BodyKind::Length(9)));

        let (h, _) = head("HTTP/1.1 200\r\nConnection: Upgrade, close\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(h.body, BodyKind::UntilClose);
        assert!(!h.keep_alive);

        let (h, _) = head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert!(!h.keep_alive, "HTTP/1.0 closes unless told otherwise");
        let (h, _) = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert!(h.keep_alive);
    }

    #[test]
    fn transfer_encoding_beats_content_length() {
        let (h, _) = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        )
        .expect("valid")
        .expect("complete");
        assert_eq!(h.body, BodyKind::Chunked);
    }

    #[test]
    fn partial_heads_wait_for_more() {
        let full = "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n";
        for end in 0..full.len() {
            assert_eq!(head(&full[..end]), Ok(None), "{end}");
        }
    }

    #[test]
    fn hostile_heads_are_rejected() {
        let rows = [
            ("HTTP/2 200 OK\r\n\r\n", HttpError::BadStatusLine),
            ("HTTP/1.1 200 OK\nA: b\r\n\r\n", HttpError::BadStatusLine),
            ("HTTP/1.1 20 OK\r\n\r\n", HttpError::BadStatusLine),
            ("HTTP/1.1 2000 OK\r\n\r\n", HttpError::BadStatusLine),
            ("HTTP/1.1 999 X\r\n\r\n", HttpError::BadStatusLine),
            ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", HttpError::BadHeader),
            (
                "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                "HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                "HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                HttpError::UnexpectedUpgrade,
            ),
        ];
        for (text, want) in rows {
            assert_eq!(head(text), Err(want), "{text:?}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(head(&huge), Err(HttpError::HeadTooLarge));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(head(&many), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut decoder = BodyDecoder::new(BodyKind::Length(5));
        let mut input = BytesMut::from(&b"hel"[..]);
        let mut out = BytesMut::new();
        assert_eq!(decoder.decode(&mut input, &mut out), Ok(false));
        input.extend_from_slice(b"loHTTP");
        assert_eq!(decoder.decode(&mut input, &mut out), Ok(true));
        assert_eq!(&out[..], b"hello");
        assert_eq!(&input[..], b"HTTP");
        assert_eq!(decoder.on_eof(), Err(HttpError::TruncatedBody));
        assert_eq!(BodyDecoder::new(BodyKind::UntilClose).on_eof(), Ok(()));
    }

    #[test]
    fn requests_carry_host_type_and_length() {
        let r = request(
            "POST",
            "/echo/000/ab/xhr_send",
            "127.0.0.1:9",
            Some("text/plain"),
            b"[\"x\"]",
        );
        assert_eq!(
            String::from_utf8(r).expect("ascii"),
            "POST /echo/000/ab/xhr_send HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: text/plain\r\n\
             Content-Length: 5\r\n\r\n[\"x\"]"
        );
    }
}
