//! Frame encoding.

use bytes::{BufMut, BytesMut};

use crate::escape::{escape_into, Escaping, Part};
use crate::{Command, Frame, Version};

/// A heart-beat: one EOL, sent when the connection has been idle for the
/// negotiated interval.
pub const HEARTBEAT: &[u8] = b"\n";

/// Appends the wire form of `frame` to `dst`.
///
/// Header names and values are escaped per `version`; CONNECT and CONNECTED
/// frames never are (STOMP 1.2, "Value Encoding"). Any `content-length` header
/// in `frame` is ignored and the correct one is written, after the other
/// headers, whenever the body is non-empty; so a body may hold NULs. Lines end
/// in LF.
///
/// Where a version has no escape for an octet, a header cannot carry it
/// faithfully. A value ending in CR (1.0, 1.1, CONNECT, CONNECTED) has its line
/// ended with CRLF so that the decoder keeps the CR. Unescaped frames cannot
/// represent a LF in a name or value, nor a `:` in a name: those are written
/// as the 1.1 escapes `\n` and `\c` rather than break the frame, which the peer
/// reads literally.
pub fn encode(frame: &Frame, version: Version, dst: &mut BytesMut) {
    encode_parts(frame.command(), frame.headers(), frame.body(), version, dst);
}

/// Appends the wire form of a frame given by its parts, exactly as [`encode`] would for a
/// [`Frame`] holding them, without building one.
pub fn encode_parts<'a, I>(
    command: Command,
    headers: I,
    body: &[u8],
    version: Version,
    dst: &mut BytesMut,
) where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone,
{
    encode_head(command, headers, version, dst);
    encode_tail(command, [], body, version, dst);
}

/// Appends the start of a frame: its command line and `headers`, escaped as [`encode`] would.
/// [`encode_tail`] completes it.
///
/// The two halves may be encoded apart and joined later: a server fanning one message out to
/// many subscriptions encodes the MESSAGE's shared headers and body once with [`encode_tail`]
/// and writes only each subscription's own headers in front of those bytes.
pub fn encode_head<'a, I>(command: Command, headers: I, version: Version, dst: &mut BytesMut)
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone,
{
    let headers = headers.into_iter();
    let name = command.as_str();
    dst.reserve(name.len() + 1 + encoded_len(headers.clone()));
    dst.put_slice(name.as_bytes());
    dst.put_u8(b'\n');
    put_headers(dst, headers, Escaping::for_frame(version, command));
}

/// Appends the end of a frame begun by [`encode_head`] for the same `command` and `version`:
/// more headers, the `content-length` of a non-empty body, the blank line, the body and the
/// closing NUL.
pub fn encode_tail<'a, I>(
    command: Command,
    headers: I,
    body: &[u8],
    version: Version,
    dst: &mut BytesMut,
) where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone,
{
    let headers = headers.into_iter();
    // content-length line: 15 + up to 20 digits + LF.
    dst.reserve(encoded_len(headers.clone()) + 36 + 1 + body.len() + 1);
    put_headers(dst, headers, Escaping::for_frame(version, command));
    if !body.is_empty() {
        dst.put_slice(b"content-length:");
        put_decimal(dst, body.len());
        dst.put_u8(b'\n');
    }
    dst.put_u8(b'\n');
    dst.put_slice(body);
    dst.put_u8(0);
}

/// Bytes `headers` take unescaped, with their colons and LFs: what to reserve.
fn encoded_len<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    headers
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum()
}

fn put_headers<'a>(
    dst: &mut BytesMut,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    escaping: Escaping,
) {
    for (name, value) in headers {
        if name == "content-length" {
            continue;
        }
        escape_into(dst, name, escaping, Part::Name);
        dst.put_u8(b':');
        escape_into(dst, value, escaping, Part::Value);
        if dst.last() == Some(&b'\r') {
            // The decoder takes "\r\n" as one EOL; "\r\r\n" keeps the value's CR.
            dst.put_slice(b"\r\n");
        } else {
            dst.put_u8(b'\n');
        }
    }
}

fn put_decimal(dst: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20]; // usize::MAX has 20 decimal digits
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[start..]);
}

#[cfg(test)]
mod tests;
