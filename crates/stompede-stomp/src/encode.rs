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
/// [`Frame`] holding them, without building one: a server fanning one message out to many
/// subscriptions writes each MESSAGE from shared parts and allocates nothing per subscriber.
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
    let escaping = Escaping::for_frame(version, command);
    let headers = headers.into_iter();
    let command = command.as_str();
    let headers_len: usize = headers
        .clone()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum();
    // content-length line: 15 + up to 20 digits + LF.
    dst.reserve(command.len() + headers_len + 36 + 1 + body.len() + 1 + 1);

    dst.put_slice(command.as_bytes());
    dst.put_u8(b'\n');
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
    if !body.is_empty() {
        dst.put_slice(b"content-length:");
        put_decimal(dst, body.len());
        dst.put_u8(b'\n');
    }
    dst.put_u8(b'\n');
    dst.put_slice(body);
    dst.put_u8(0);
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
