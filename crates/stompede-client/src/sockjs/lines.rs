//! Splitting an XHR response body into SockJS frames: one frame per `\n`-terminated line, the
//! body arriving in chunks that may cut a line (or a UTF-8 character) anywhere.

use bytes::{Buf, BytesMut};

use super::frame::FrameError;

/// Incremental line splitter with a bound on the line length.
#[derive(Debug)]
pub(crate) struct Lines {
    buf: BytesMut,
    /// Bytes of `buf` already searched for `\n`: a long line arriving in many chunks is
    /// scanned once, not once per chunk.
    scanned: usize,
    limit: usize,
}

impl Lines {
    /// A splitter refusing lines (without their `\n`) longer than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Lines {
        Lines {
            buf: BytesMut::new(),
            scanned: 0,
            limit,
        }
    }

    /// Appends a chunk of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line, without its `\n`; `None` until one is complete.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLong`] as soon as a line is known to exceed the limit (before it is
    /// complete), [`FrameError::NotUtf8`] for a complete line that is not UTF-8.
    pub(crate) fn next_line(&mut self) -> Result<Option<String>, FrameError> {
        let Some(offset) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.limit {
                return Err(FrameError::TooLong { limit: self.limit });
            }
            return Ok(None);
        };
        let end = self.scanned + offset;
        self.scanned = 0;
        if end > self.limit {
            return Err(FrameError::TooLong { limit: self.limit });
        }
        let line = self.buf.split_to(end);
        self.buf.advance(1); // the '\n'
        String::from_utf8(line.to_vec())
            .map(Some)
            .map_err(|_| FrameError::NotUtf8)
    }

    /// Checks that the body ended between lines.
    ///
    /// # Errors
    ///
    /// [`FrameError::Truncated`] if part of a line is buffered.
    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(lines: &mut Lines) -> Result<Vec<String>, FrameError> {
        let mut out = Vec::new();
        while let Some(line) = lines.next_line()? {
            out.push(line);
        }
        Ok(out)
    }

    #[test]
    fn lines_survive_every_split_point() {
        let body = "hhhh\no\na[\"caf\u{e9} \u{c138}\u{acc4}\"]\nh\nc[3000,\"bye\"]\n";
        let want = ["hhhh", "o", "a[\"café 세계\"]", "h", "c[3000,\"bye\"]"];
        for cut in 0..=body.len() {
            let mut lines = Lines::new(1024);
            let mut got = Vec::new();
            lines.push(&body.as_bytes()[..cut]);
            got.extend(all_lines(&mut lines).expect("valid"));
            lines.push(&body.as_bytes()[cut..]);
            got.extend(all_lines(&mut lines).expect("valid"));
            assert_eq!(got, want, "cut at {cut}");
            assert_eq!(lines.finish(), Ok(()));
        }
    }

    #[test]
    fn byte_at_a_time() {
        let body = "o\na[\"x\"]\n";
        let mut lines = Lines::new(64);
        let mut got = Vec::new();
        for b in body.bytes() {
            lines.push(&[b]);
            got.extend(all_lines(&mut lines).expect("valid"));
        }
        assert_eq!(got, ["o", "a[\"x\"]"]);
    }

    #[test]
    fn an_endless_line_is_refused_before_it_is_complete() {
        let mut lines = Lines::new(8);
        lines.push(b"a[\"12345");
        assert_eq!(lines.next_line(), Ok(None));
        lines.push(b"6789");
        assert_eq!(lines.next_line(), Err(FrameError::TooLong { limit: 8 }));
    }

    #[test]
    fn a_complete_line_over_the_limit_is_refused() {
        let mut lines = Lines::new(4);
        lines.push(b"hhhhh\n");
        assert_eq!(lines.next_line(), Err(FrameError::TooLong { limit: 4 }));
        let mut lines = Lines::new(4);
        lines.push(b"hhhh\n");
        assert_eq!(lines.next_line(), Ok(Some("hhhh".to_owned())));
    }

    #[test]
    fn invalid_utf8_and_truncation_are_errors() {
        let mut lines = Lines::new(64);
        lines.push(b"a[\"\xff\"]\n");
        assert_eq!(lines.next_line(), Err(FrameError::NotUtf8));
        let mut lines = Lines::new(64);
        lines.push(b"o\na[\"x");
        assert_eq!(lines.next_line(), Ok(Some("o".to_owned())));
        assert_eq!(lines.next_line(), Ok(None));
        assert_eq!(lines.finish(), Err(FrameError::Truncated));
    }

    #[test]
    fn empty_lines_are_returned_for_the_parser_to_refuse() {
        let mut lines = Lines::new(64);
        lines.push(b"\n\n");
        assert_eq!(
            all_lines(&mut lines),
            Ok(vec![String::new(), String::new()])
        );
    }
}
