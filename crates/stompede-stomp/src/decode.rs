//! Incremental, bounded frame decoding.
//!
//! Decoding has two passes over a frame. [`Decoder`] first *scans* the
//! buffered bytes for the frame's end, remembering how far it got so that a
//! frame arriving in many pieces is scanned once, not once per piece. The scan
//! checks every limit as early as it can be sure of a violation, and never
//! looks past `max_frame_len` bytes. Only a complete frame is then *parsed*:
//! header lines are unescaped and validated, and the body becomes a zero-copy
//! slice of the frame's bytes.
//!
//! Errors depend only on the bytes, never on how they were split into reads:
//! each check runs at a fixed point in the byte stream, in stream order.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use crate::escape::{unescape, Escaping};
use crate::{Command, DecodeError, Frame, Version};

/// The longest command line reported in [`DecodeError::UnknownCommand`]; a
/// longer unterminated line is rejected as soon as this many bytes are buffered.
const MAX_COMMAND_LINE: usize = 32;

/// Bounds on what one frame may make the decoder buffer and allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest frame, counting the command line, headers, body and the
    /// terminating NUL (not the heart-beat EOLs around it). Default: 64 KiB.
    pub max_frame_len: usize,
    /// Most header lines in one frame, repeats included. Default: 64.
    pub max_headers: usize,
    /// Longest header line, without its EOL, before unescaping. Default: 8 KiB.
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_len: 64 * 1024,
            max_headers: 64,
            max_header_len: 8 * 1024,
        }
    }
}

/// Incremental STOMP frame decoder for one connection.
///
/// Keeps state between calls only as far as needed: the negotiated version
/// (for unescaping) and how far into a partly received frame it has scanned.
/// Feed it the same growing buffer on every call.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    version: Version,
    scan: Scan,
}

/// Progress through the frame at the start of the buffer. Offsets are from
/// the frame's first byte, which is the buffer's first byte.
#[derive(Debug, Clone, Default)]
struct Scan {
    /// Bytes already examined: the next search for LF or NUL starts here.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// The command, once its line is complete.
    command: Option<Command>,
    /// Start of the first header line (just past the command line's EOL).
    headers_start: usize,
    /// Header lines seen so far.
    header_count: usize,
    /// Whether a `content-length` header has been seen: only the first counts.
    content_length_seen: bool,
    /// The first `content-length`, if any.
    content_length: Option<usize>,
    /// Start of the blank line ending the headers and start of the body, once seen.
    body_start: Option<(usize, usize)>,
}

/// Where the parts of a complete frame lie in its bytes.
#[derive(Debug)]
struct Bounds {
    command: Command,
    headers: Range<usize>,
    header_count: usize,
    body: Range<usize>,
    /// The whole frame, NUL included.
    len: usize,
}

impl Decoder {
    /// A decoder applying STOMP 1.2 escaping rules until told otherwise.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            version: Version::V1_2,
            scan: Scan::default(),
        }
    }

    /// Sets the version whose escaping rules apply, once CONNECT negotiation is
    /// done: 1.0 unescapes nothing; 1.1 unescapes `\n`, `\c`, `\\`; 1.2 also `\r`.
    /// CONNECT and CONNECTED frames are never unescaped.
    pub fn set_version(&mut self, v: Version) {
        self.version = v;
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decodes one frame from `buf`, consuming exactly its bytes, plus any
    /// heart-beat EOLs before it.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a frame (kept, and not
    /// scanned again next time) or only heart-beat EOLs (consumed).
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`]. The stream cannot be resynchronised after one: send
    /// an ERROR frame if you like, then close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.scan.pos == 0 {
            skip_heartbeats(buf);
            // A lone CR may be the first half of a CRLF heart-beat.
            if buf.is_empty() || buf[..] == b"\r"[..] {
                return Ok(None);
            }
        }
        let bounds = match self.frame_len(buf) {
            Ok(Some(bounds)) => bounds,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.scan = Scan::default();
                return Err(e);
            }
        };
        self.scan = Scan::default();
        let escaping = Escaping::for_frame(self.version, bounds.command);
        parse(buf.split_to(bounds.len).freeze(), &bounds, escaping).map(Some)
    }

    /// Scans on from where the last call stopped. `Ok(Some(_))` once the whole
    /// frame is in `buf`; `Ok(None)` if more bytes are needed.
    fn frame_len(&mut self, buf: &[u8]) -> Result<Option<Bounds>, DecodeError> {
        let limits = self.limits;
        // Whatever lies past the limit cannot belong to an acceptable frame.
        let view = buf.get(..limits.max_frame_len).unwrap_or(buf);
        let scan = &mut self.scan;

        let command = match scan.command {
            Some(command) => command,
            None => {
                let Some(eol) = find(b'\n', view, scan.pos) else {
                    scan.pos = view.len();
                    if line_len_at_least(view) > MAX_COMMAND_LINE {
                        return Err(unknown_command(view));
                    }
                    return incomplete(buf, limits);
                };
                let command = parse_command(strip_cr(view.get(..eol).unwrap_or_default()))?;
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
                if line_len_at_least(pending) > limits.max_header_len {
                    return Err(DecodeError::HeaderTooLong {
                        limit: limits.max_header_len,
                    });
                }
                return incomplete(buf, limits);
            };
            let line = strip_cr(view.get(scan.line_start..eol).unwrap_or_default());
            if line.is_empty() {
                scan.body_start = Some((scan.line_start, eol + 1));
            } else {
                scan_header_line(scan, line, limits)?;
            }
            scan.pos = eol + 1;
            scan.line_start = eol + 1;
        }
        let Some((headers_end, body_start)) = scan.body_start else {
            return Ok(None); // unreachable: the loop above ran until this was set
        };

        let body_end = match scan.content_length {
            Some(len) => {
                // Checked as soon as the headers are in, before any body is buffered.
                let Some(end) = body_start
                    .checked_add(len)
                    .filter(|end| *end < limits.max_frame_len)
                else {
                    return Err(DecodeError::FrameTooLarge {
                        limit: limits.max_frame_len,
                    });
                };
                match view.get(end) {
                    None => return incomplete(buf, limits),
                    Some(0) => end,
                    Some(_) => return Err(DecodeError::MissingNul),
                }
            }
            None => {
                let from = scan.pos.max(body_start);
                match find(0, view, from) {
                    Some(end) => end,
                    None => {
                        scan.pos = view.len();
                        return incomplete(buf, limits);
                    }
                }
            }
        };
        Ok(Some(Bounds {
            command,
            headers: scan.headers_start..headers_end,
            header_count: scan.header_count,
            body: body_start..body_end,
            len: body_end + 1,
        }))
    }
}

/// Checks one complete, non-blank header line (EOL stripped) against the
/// limits, and picks up the first `content-length`.
fn scan_header_line(scan: &mut Scan, line: &[u8], limits: Limits) -> Result<(), DecodeError> {
    if line.len() > limits.max_header_len {
        return Err(DecodeError::HeaderTooLong {
            limit: limits.max_header_len,
        });
    }
    scan.header_count += 1;
    if scan.header_count > limits.max_headers {
        return Err(DecodeError::TooManyHeaders {
            limit: limits.max_headers,
        });
    }
    let (name, value) = split_header(line)?;
    // Comparing raw bytes is exact in every version: no escape sequence
    // produces a character of "content-length" or a digit.
    if !scan.content_length_seen && name == b"content-length" {
        scan.content_length_seen = true;
        scan.content_length = Some(parse_content_length(value)?);
    }
    Ok(())
}

/// An incomplete frame: more bytes are needed, unless the limit is already reached.
fn incomplete(buf: &[u8], limits: Limits) -> Result<Option<Bounds>, DecodeError> {
    if buf.len() >= limits.max_frame_len {
        // The first max_frame_len bytes did not end the frame, so it is longer.
        Err(DecodeError::FrameTooLarge {
            limit: limits.max_frame_len,
        })
    } else {
        Ok(None)
    }
}

/// Parses a complete frame located by the scan.
fn parse(frame: Bytes, bounds: &Bounds, escaping: Escaping) -> Result<Frame, DecodeError> {
    let mut headers = Vec::with_capacity(bounds.header_count);
    let region = frame.get(bounds.headers.clone()).unwrap_or_default();
    // The region is a run of complete lines, each ending in LF.
    for line in region.split_inclusive(|&b| b == b'\n') {
        let line = strip_cr(line.strip_suffix(b"\n").unwrap_or(line));
        let (name, value) = split_header(line)?;
        headers.push((unescape(name, escaping)?, unescape(value, escaping)?));
    }
    let body = frame.slice(bounds.body.clone());
    Ok(Frame::from_parts(bounds.command, headers, body))
}

fn parse_command(line: &[u8]) -> Result<Command, DecodeError> {
    if line.len() > MAX_COMMAND_LINE {
        return Err(unknown_command(line));
    }
    if let Some(command) = Command::from_bytes(line) {
        return Ok(command);
    }
    match std::str::from_utf8(line) {
        Ok(s) => Err(DecodeError::UnknownCommand {
            command: s.to_owned(),
        }),
        Err(_) => Err(DecodeError::InvalidUtf8),
    }
}

fn unknown_command(line: &[u8]) -> DecodeError {
    let shown = line.get(..MAX_COMMAND_LINE).unwrap_or(line);
    DecodeError::UnknownCommand {
        command: String::from_utf8_lossy(shown).into_owned(),
    }
}

/// Splits a header line at its first colon. A value may hold further colons:
/// 1.0 has no way to escape them, and later versions mean the same thing.
fn split_header(line: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let colon = memchr::memchr(b':', line).ok_or(DecodeError::MissingColon)?;
    let name = line.get(..colon).unwrap_or_default();
    let value = line.get(colon + 1..).unwrap_or_default();
    Ok((name, value))
}

/// A decimal octet count; no sign, no spaces, must fit in `usize`.
fn parse_content_length(value: &[u8]) -> Result<usize, DecodeError> {
    if value.is_empty() {
        return Err(DecodeError::InvalidContentLength);
    }
    value.iter().try_fold(0usize, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(DecodeError::InvalidContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(b - b'0')))
            .ok_or(DecodeError::InvalidContentLength)
    })
}

/// Drops heart-beats: any run of LF and CRLF.
fn skip_heartbeats(buf: &mut BytesMut) {
    let mut n = 0;
    loop {
        match (buf.get(n), buf.get(n + 1)) {
            (Some(b'\n'), _) => n += 1,
            (Some(b'\r'), Some(b'\n')) => n += 2,
            _ => break,
        }
    }
    buf.advance(n);
}

fn find(needle: u8, haystack: &[u8], from: usize) -> Option<usize> {
    let tail = haystack.get(from..)?;
    memchr::memchr(needle, tail).map(|i| from + i)
}

/// EOL is LF or CRLF, in every version.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The least length, without EOL, that an unterminated line can end up with:
/// a trailing CR may yet turn out to be half of a CRLF.
fn line_len_at_least(pending: &[u8]) -> usize {
    strip_cr(pending).len()
}

#[cfg(test)]
mod tests;
