//! The connection under STOMP: a raw WebSocket or a SockJS session, the same to the driver.
//!
//! A [`Link`] is split in two halves so that writing never stops reading. The driver reads
//! through [`Link::recv`]; writes go through a small queue to a writer task that owns the
//! sending half (a WebSocket sink, or the `xhr_send` requests). A client that blocked on a
//! write while the server blocked on writing to it would deadlock them both: the server
//! cannot read our frames while its own writes are stuck, and we would not read its frames
//! while ours are stuck.
//!
//! `recv` yields what one message carried (possibly part of a frame, or several), or an
//! empty chunk when the server only showed it is alive (a SockJS heartbeat). Every end of
//! the link, clean or not, and every failure of the writer, is an error from `recv`: the
//! driver decides whether it expected it.

pub(crate) mod websocket;

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{ClientConfig, Transport};
use crate::error::{Error, TransportError};
use crate::sockjs::{self, SockJsReader, SockJsWriter};

/// Batches the writer may hold before the driver waits (while still reading).
const WRITE_QUEUE: usize = 4;
/// Bytes of queued batches merged into one write.
const MERGE_BYTES: usize = 256 * 1024;
/// How long a polite close may take: our queued frames out, the server's close back.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Write {
    /// Send these encoded frames, in order.
    Frames(Vec<Bytes>),
    /// Send what is queued, then close the sending side.
    Close,
}

/// One open transport.
#[derive(Debug)]
pub(crate) struct Link {
    reader: Reader,
    writer: mpsc::Sender<Write>,
    /// The writer's failure, once; `None` after it was reported or the writer ended cleanly.
    failed: Option<oneshot::Receiver<Error>>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Reader {
    WebSocket(websocket::WsReader),
    SockJs(SockJsReader),
}

/// The sending half, owned by the writer task.
#[derive(Debug)]
pub(crate) enum Writer {
    WebSocket(websocket::WsWriter),
    SockJs(SockJsWriter),
}

impl Writer {
    async fn write(&mut self, frames: Vec<Bytes>) -> Result<(), Error> {
        match self {
            Writer::WebSocket(w) => Ok(w.write(&frames).await?),
            Writer::SockJs(w) => w.write(&frames).await,
        }
    }

    async fn close(&mut self) {
        match self {
            Writer::WebSocket(w) => w.close().await,
            Writer::SockJs(w) => w.close().await,
        }
    }
}

impl Link {
    /// Opens the transport `config` names. Not bounded in time: the caller is.
    pub(crate) async fn open(config: &ClientConfig) -> Result<Link, Error> {
        let (reader, writer) = match config.transport {
            Transport::WebSocket => {
                let ws = websocket::open(
                    &config.url,
                    &config.subprotocols,
                    config.limits.max_frame_len,
                )
                .await?;
                let (writer, reader) = websocket::split(ws);
                (Reader::WebSocket(reader), Writer::WebSocket(writer))
            }
            Transport::SockJs(kind) => {
                let (reader, writer) =
                    sockjs::connect(&config.url, kind, config.limits.max_frame_len).await?;
                (Reader::SockJs(reader), Writer::SockJs(writer))
            }
        };
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let (failed_tx, failed) = oneshot::channel();
        let task = tokio::spawn(run_writer(writer, rx, failed_tx));
        Ok(Link {
            reader,
            writer: tx,
            failed: Some(failed),
            task,
        })
    }

    /// The next chunk of STOMP bytes (empty: a sign of life only), or why there is none.
    /// Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Result<Bytes, Error> {
        loop {
            let Some(failed) = self.failed.as_mut() else {
                return Ok(self.reader.recv().await?);
            };
            tokio::select! {
                biased;
                chunk = self.reader.recv() => return Ok(chunk?),
                failure = failed => {
                    self.failed = None;
                    if let Ok(error) = failure {
                        return Err(error);
                    }
                    // The writer ended cleanly (after a close): only reading is left.
                }
            }
        }
    }

    /// The writer's queue: `reserve` on it waits (cancel-safe) for room for one batch while
    /// the writer is busy, and fails once the writer is gone.
    pub(crate) fn writer(&self) -> mpsc::Sender<Write> {
        self.writer.clone()
    }

    /// Why the writer is gone, once its queue refused a batch.
    pub(crate) fn writer_failure(&mut self) -> Error {
        match self.failed.take().map(|mut f| f.try_recv()) {
            Some(Ok(error)) => error,
            _ => TransportError::Ended.into(),
        }
    }

    /// Queues frames, waiting for room. For the handshake, where nothing else is read.
    pub(crate) async fn send(&mut self, frames: Vec<Bytes>) -> Result<(), Error> {
        match self.writer.send(Write::Frames(frames)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.writer_failure()),
        }
    }

    /// Queues a heart-beat unless the writer is busy (then the server hears from us anyway).
    pub(crate) fn heartbeat(&self, beat: Bytes) {
        let _ = self.writer.try_send(Write::Frames(vec![beat]));
    }

    /// Ends the transport politely: queued frames go out, then a close, and the server's
    /// side of the close is awaited briefly.
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if self.writer.send(Write::Close).await.is_ok() {
                let _ = (&mut self.task).await;
            }
            if self.reader.is_websocket() {
                while self.reader.recv().await.is_ok() {}
            }
        })
        .await;
    }
}

impl Reader {
    async fn recv(&mut self) -> Result<Bytes, TransportError> {
        match self {
            Reader::WebSocket(r) => r.recv().await,
            Reader::SockJs(r) => r.recv().await,
        }
    }

    /// Whether a close is answered by the server (WebSocket), not just dropped (HTTP).
    fn is_websocket(&self) -> bool {
        match self {
            Reader::WebSocket(_) => true,
            Reader::SockJs(r) => r.is_websocket(),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The writer task: batches in order until the queue closes, a close is asked for, or a
/// write fails (reported through `failed`).
async fn run_writer(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Write>,
    failed: oneshot::Sender<Error>,
) {
    let mut next = rx.recv().await;
    while let Some(write) = next.take() {
        let Write::Frames(mut frames) = write else {
            writer.close().await;
            return;
        };
        // What queued up meanwhile goes in the same write (one flush, one POST), within a
        // budget: a SockJS server refuses too large an `xhr_send` body.
        let mut bytes: usize = frames.iter().map(Bytes::len).sum();
        while bytes < MERGE_BYTES {
            match rx.try_recv() {
                Ok(Write::Frames(more)) => {
                    bytes += more.iter().map(Bytes::len).sum::<usize>();
                    frames.extend(more);
                }
                Ok(close) => {
                    next = Some(close);
                    break;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = writer.write(frames).await {
            let _ = failed.send(e);
            return;
        }
        if next.is_none() {
            next = rx.recv().await;
        }
    }
}
