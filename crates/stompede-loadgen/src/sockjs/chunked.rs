//! Incremental decoder of the HTTP/1.1 chunked transfer coding (RFC 9112 §7.1).
//!
//! Streaming SockJS responses (xhr-streaming) are chunked, and one TCP read may hold part of a
//! chunk-size line, several chunks, or the end of one response and the start of the next. The
//! decoder consumes exactly the bytes of one body from its input and leaves what follows.

use std::fmt;

use bytes::{Buf, BytesMut};

/// Longest chunk-size line (with extensions) or trailer line accepted, CRLF included.
const MAX_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is malformed. After one, the connection is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkedError {
    /// A chunk-size line that is not hex digits (optionally followed by `;extensions`).
    BadSize,
    /// A chunk size that does not fit in 64 bits.
    SizeOverflow,
    /// A chunk-size or trailer line longer than [`MAX_LINE`], or trailers past [`MAX_TRAILERS`].
    LineTooLong,
    /// A line ended with a bare LF, or chunk data not followed by CRLF.
    MissingCrlf,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkedError::BadSize => "invalid chunk size line",
            ChunkedError::SizeOverflow => "chunk size overflows",
            ChunkedError::LineTooLong => "chunk size or trailer line too long",
            ChunkedError::MissingCrlf => "chunk line or data not ended by CRLF",
        })
    }
}

/// Where the decoder is within the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes one chunked body.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub(crate) fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            trailer_bytes: 0,
        }
    }

    /// Moves body bytes from `input` to `out`, consuming the chunk framing. Returns `Ok(true)`
    /// once the last chunk and the trailers are consumed; bytes after them stay in `input`.
    /// `Ok(false)` means `input` is exhausted (or holds only part of a line): read more.
    ///
    /// # Errors
    ///
    /// The framing is malformed; the decoder must not be used again.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, ChunkedError> {
        loop {
            match self.state {
                State::Done => return Ok(true),
                State::Size => {
                    let Some(line) = take_line(input)? else {
                        return Ok(false);
                    };
                    let size = parse_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(remaining) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    // `take` fits in usize: it is at most `input.len()`.
                    let take = remaining.min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..take]);
                    input.advance(take);
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    if input.len() < 2 {
                        // A lone byte that is already wrong need not wait for the next.
                        if input.first().is_some_and(|&b| b != b'\r') {
                            return Err(ChunkedError::MissingCrlf);
                        }
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    input.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let Some(line) = take_line(input)? else {
                        return Ok(false);
                    };
                    self.trailer_bytes += line.len() + 2;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(ChunkedError::LineTooLong);
                    }
                    if line.is_empty() {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line from `input`, without its CRLF; `None` if the line is not
/// complete yet.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, ChunkedError> {
    let Some(lf) = input.iter().take(MAX_LINE).position(|&b| b == b'\n') else {
        return if input.len() >= MAX_LINE {
            Err(ChunkedError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    if lf == 0 || input[lf - 1] != b'\r' {
        return Err(ChunkedError::MissingCrlf);
    }
    let mut line = input.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// Parses `1a3f` or `1a3f;name=value` (optional whitespace before `;`).
fn parse_size(line: &[u8]) -> Result<u64, ChunkedError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits_end == 0 {
        return Err(ChunkedError::BadSize);
    }
    let rest = &line[digits_end..];
    let rest_trimmed = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |i| &rest[i..]);
    if !rest_trimmed.is_empty() && rest_trimmed[0] != b';' {
        return Err(ChunkedError::BadSize);
    }
    let mut size: u64 = 0;
    for &b in &line[..digits_end] {
        // Only hex digits get here, so `to_digit` succeeds.
        let digit = u64::from(char::from(b).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or(ChunkedError::SizeOverflow)?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns the body, whether it completed,
    /// and what was left after it.
    fn decode_in_steps(
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, bool, Vec<u8>), ChunkedError> {
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut fed = 0;
        while fed < input.len() {
            let end = (fed + step.max(1)).min(input.len());
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            if decoder.decode(&mut buf, &mut out)? {
                let mut rest = buf.to_vec();
                rest.extend_from_slice(&input[fed..]);
                return Ok((out.to_vec(), true, rest));
            }
        }
        Ok((out.to_vec(), false, buf.to_vec()))
    }

    #[test]
    fn whole_and_split_bodies_decode_alike() {
        let input = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\nHTTP/1.1 200 OK";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, done, rest) = decode_in_steps(input, step).expect("valid");
            assert_eq!(body, b"hello, world", "step {step}");
            assert!(done, "step {step}");
            assert_eq!(rest, b"HTTP/1.1 200 OK", "step {step}");
        }
    }

    #[test]
    fn sizes_are_hex_of_any_case_and_trailers_are_skipped() {
        let mut data = format!("{:X}\r\n", 26).into_bytes();
        data.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz\r\n");
        data.extend_from_slice(b"0000 ;last\r\nX-Trailer: 1\r\n\r\n");
        let (body, done, rest) = decode_in_steps(&data, 5).expect("valid");
        assert_eq!(body, b"abcdefghijklmnopqrstuvwxyz");
        assert!(done);
        assert!(rest.is_empty());
    }

    #[test]
    fn an_unfinished_body_asks_for_more() {
        let (body, done, rest) = decode_in_steps(b"a\r\n01234", 2).expect("valid so far");
        assert_eq!(body, b"01234");
        assert!(!done);
        assert!(rest.is_empty());
        let (body, done, _) = decode_in_steps(b"3\r\nabc\r\n0\r\n", 1).expect("valid so far");
        assert_eq!(body, b"abc");
        assert!(!done, "the empty line after the last chunk is missing");
    }

    #[test]
    fn hostile_framing_is_rejected() {
        let rows: [(&[u8], ChunkedError); 9] = [
            (b"\r\n", ChunkedError::BadSize),
            (b"g\r\n", ChunkedError::BadSize),
            (b"-1\r\n", ChunkedError::BadSize),
            (b"5 x\r\n", ChunkedError::BadSize),
            (b"5\n", ChunkedError::MissingCrlf),
            (b"3\r\nabcX\r\n", ChunkedError::MissingCrlf),
            (b"3\r\nabc\n\n", ChunkedError::MissingCrlf),
            (b"10000000000000000\r\n", ChunkedError::SizeOverflow),
            (b"0\r\nX: 1\n", ChunkedError::MissingCrlf),
        ];
        for (input, want) in rows {
            for step in [1, input.len()] {
                let got = decode_in_steps(input, step);
                assert_eq!(
                    got,
                    Err(want.clone()),
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn endless_lines_are_bounded() {
        let long = vec![b'1'; MAX_LINE + 10];
        assert_eq!(decode_in_steps(&long, 100), Err(ChunkedError::LineTooLong));
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"X-Pad: 0123456789\r\n");
        }
        assert_eq!(
            decode_in_steps(&trailers, 512),
            Err(ChunkedError::LineTooLong)
        );
    }

    #[test]
    fn a_huge_declared_chunk_streams_without_buffering() {
        let mut decoder = ChunkedDecoder::new();
        let mut input = BytesMut::from(&b"ffffffff\r\n"[..]);
        let mut out = BytesMut::new();
        assert_eq!(decoder.decode(&mut input, &mut out), Ok(false));
        input.extend_from_slice(&[b'z'; 1000]);
        assert_eq!(decoder.decode(&mut input, &mut out), Ok(false));
        assert_eq!(out.len(), 1000);
        assert!(input.is_empty());
    }
}
