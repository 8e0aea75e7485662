//! STOMP transactions: SEND, ACK and NACK frames naming a `transaction` are held until COMMIT
//! (then applied in order) or ABORT (then dropped). Bounded in count and bytes.

use std::collections::HashMap;

use stompede_stomp::Frame;

/// Misuse of BEGIN/COMMIT/ABORT or of a `transaction` header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransactionError {
    /// BEGIN of a transaction that is already open.
    #[error("{0} is already open")]
    AlreadyOpen(String),
    /// COMMIT, ABORT or a frame naming a transaction that is not open.
    #[error("{0} is not open")]
    Unknown(String),
    /// Too many open transactions.
    #[error("limit of {limit} open transactions reached")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// Too many bytes held in open transactions.
    #[error("open transactions hold more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// The open transactions of one session.
#[derive(Debug)]
pub(crate) struct Transactions {
    open: HashMap<String, Vec<Frame>>,
    bytes: usize,
    max_open: usize,
    max_bytes: usize,
}

impl Transactions {
    pub(crate) fn new(max_open: usize, max_bytes: usize) -> Transactions {
        Transactions {
            open: HashMap::new(),
            bytes: 0,
            max_open,
            max_bytes,
        }
    }

    pub(crate) fn begin(&mut self, id: &str) -> Result<(), TransactionError> {
        if self.open.contains_key(id) {
            return Err(TransactionError::AlreadyOpen(id.to_owned()));
        }
        if self.open.len() >= self.max_open {
            return Err(TransactionError::TooMany {
                limit: self.max_open,
            });
        }
        self.open.insert(id.to_owned(), Vec::new());
        Ok(())
    }

    /// Holds `frame` in transaction `id`.
    pub(crate) fn hold(&mut self, id: &str, frame: Frame) -> Result<(), TransactionError> {
        let weight = frame_weight(&frame);
        let frames = self
            .open
            .get_mut(id)
            .ok_or_else(|| TransactionError::Unknown(id.to_owned()))?;
        if self.bytes + weight > self.max_bytes {
            return Err(TransactionError::TooLarge {
                limit: self.max_bytes,
            });
        }
        self.bytes += weight;
        frames.push(frame);
        Ok(())
    }

    /// Closes transaction `id`, returning its frames in the order they arrived.
    pub(crate) fn commit(&mut self, id: &str) -> Result<Vec<Frame>, TransactionError> {
        let frames = self
            .open
            .remove(id)
            .ok_or_else(|| TransactionError::Unknown(id.to_owned()))?;
        self.bytes -= frames.iter().map(frame_weight).sum::<usize>();
        Ok(frames)
    }

    pub(crate) fn abort(&mut self, id: &str) -> Result<(), TransactionError> {
        self.commit(id).map(drop)
    }
}

fn frame_weight(frame: &Frame) -> usize {
    frame.body().len()
        + frame
            .headers()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum::<usize>()
        + 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use stompede_stomp::Command;

    fn send(body: &'static str) -> Frame {
        Frame::new(Command::Send)
            .with_header("destination", "/topic/x")
            .with_body(body)
    }

    #[test]
    fn commit_returns_frames_in_order() {
        let mut tx = Transactions::new(4, 1 << 20);
        tx.begin("t1").unwrap();
        tx.hold("t1", send("a")).unwrap();
        tx.hold("t1", send("b")).unwrap();
        let frames = tx.commit("t1").unwrap();
        let bodies: Vec<_> = frames.iter().map(|f| f.body().clone()).collect();
        assert_eq!(bodies, ["a", "b"]);
        assert_eq!(tx.bytes, 0);
        assert_eq!(tx.commit("t1"), Err(TransactionError::Unknown("t1".into())));
    }

    #[test]
    fn misuse_is_reported() {
        let mut tx = Transactions::new(1, 100);
        assert_eq!(tx.abort("x"), Err(TransactionError::Unknown("x".into())));
        assert_eq!(
            tx.hold("x", send("a")),
            Err(TransactionError::Unknown("x".into()))
        );
        tx.begin("a").unwrap();
        assert_eq!(
            tx.begin("a"),
            Err(TransactionError::AlreadyOpen("a".into()))
        );
        assert_eq!(tx.begin("b"), Err(TransactionError::TooMany { limit: 1 }));
        let big = Frame::new(Command::Send).with_body(vec![0u8; 200]);
        assert_eq!(
            tx.hold("a", big),
            Err(TransactionError::TooLarge { limit: 100 })
        );
        tx.abort("a").unwrap();
        tx.begin("b").unwrap();
    }
}
