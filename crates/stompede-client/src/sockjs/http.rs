//! The HTTP side of SockJS, on hyper's client: `/info`, the receiving requests of the XHR
//! transports (a task per session), `xhr_send`, and the session cookie.
//!
//! The receiving task owns the only request on the receiving URL, so frames reach the driver
//! in order; xhr-streaming reopens its request whenever the server ends it (at the stream
//! bytes limit), xhr-polling after every frame. The server keeps what it could not send
//! meanwhile, so nothing is lost between two requests. A bounded channel between task and
//! driver stops the task reading when the driver does not keep up.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::frame::{self, FrameError, SockJsFrame};
use super::lines::Lines;
use crate::config::SockJsTransport;
use crate::error::TransportError;

/// Largest `/info` response read.
const MAX_INFO_LEN: usize = 64 * 1024;
/// Largest `xhr_send` response body read (it should be empty).
const MAX_SEND_RESPONSE_LEN: usize = 4 * 1024;
/// Most cookies kept for a session, and the longest one.
const MAX_COOKIES: usize = 16;
const MAX_COOKIE_LEN: usize = 4096;
/// Frames the receiving task may read ahead of the driver.
const FRAME_QUEUE: usize = 16;

/// An HTTP client for one SockJS session, with its cookies. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    cookies: Arc<Mutex<Cookies>>,
}

/// What `/info` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Info {
    /// Whether the websocket transport is offered.
    pub(super) websocket: bool,
}

impl Info {
    /// Parses an `/info` body: a JSON object with a boolean `websocket`.
    pub(super) fn parse(body: &[u8]) -> Result<Info, TransportError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| TransportError::Info("not JSON"))?;
        let object = value
            .as_object()
            .ok_or(TransportError::Info("not a JSON object"))?;
        let websocket = object
            .get("websocket")
            .and_then(serde_json::Value::as_bool)
            .ok_or(TransportError::Info("no boolean \"websocket\""))?;
        Ok(Info { websocket })
    }
}

impl Http {
    pub(super) fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
            cookies: Arc::new(Mutex::new(Cookies::default())),
        }
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<Response<Incoming>, TransportError> {
        let mut builder = Request::builder().method(method).uri(url);
        let cookie = self.cookies().header();
        if let Some(cookie) = cookie {
            builder = builder.header(COOKIE, cookie);
        }
        if body.is_some() {
            builder = builder.header(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
        }
        let request = builder
            .body(Full::new(body.map(Bytes::from).unwrap_or_default()))
            .map_err(|e| TransportError::Http(Arc::new(e)))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| TransportError::Http(Arc::new(e)))?;
        self.cookies()
            .store(response.headers().get_all(SET_COOKIE).iter());
        Ok(response)
    }

    fn cookies(&self) -> std::sync::MutexGuard<'_, Cookies> {
        // Nothing panics while holding the lock; if something did, the jar is still usable.
        self.cookies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET {base}/info`.
    pub(super) async fn info(&self, url: &str) -> Result<Info, TransportError> {
        let response = self.request(Method::GET, url, None).await?;
        expect_status(&response, url, &[200])?;
        let body = read_bounded(response.into_body(), MAX_INFO_LEN)
            .await?
            .ok_or(TransportError::Info("response too large"))?;
        Info::parse(&body)
    }
}

fn expect_status(
    response: &Response<Incoming>,
    url: &str,
    expected: &[u16],
) -> Result<(), TransportError> {
    let status = response.status().as_u16();
    if expected.contains(&status) {
        Ok(())
    } else {
        Err(TransportError::Status {
            status,
            url: url.to_owned(),
        })
    }
}

/// The whole body, or `None` if it is longer than `limit`.
async fn read_bounded(mut body: Incoming, limit: usize) -> Result<Option<Vec<u8>>, TransportError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TransportError::Http(Arc::new(e)))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out))
}

/// Opens a SockJS session on an XHR transport: starts receiving on
/// `{session_url}/{transport}` (the first frame is the server's answer to opening the
/// session) and returns both halves.
pub(super) fn open(
    http: Http,
    session_url: &str,
    transport: SockJsTransport,
    max_frame_len: usize,
) -> (HttpReceiver, HttpSender) {
    let (tx, frames) = mpsc::channel(FRAME_QUEUE);
    let receive_url = format!("{session_url}/{}", transport.as_str());
    let task = tokio::spawn(receive(http.clone(), receive_url, tx, max_frame_len));
    (
        HttpReceiver { frames, task },
        HttpSender {
            http,
            send_url: format!("{session_url}/xhr_send"),
        },
    )
}

/// The receiving half of an XHR session: frames from the receiving task.
#[derive(Debug)]
pub(super) struct HttpReceiver {
    frames: mpsc::Receiver<Result<SockJsFrame, TransportError>>,
    task: JoinHandle<()>,
}

impl HttpReceiver {
    /// The next frame. Cancel-safe.
    pub(super) async fn next_frame(&mut self) -> Result<SockJsFrame, TransportError> {
        self.frames
            .recv()
            .await
            .unwrap_or(Err(TransportError::Ended))
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        // The server ends a session whose client is gone after its disconnect delay.
        self.task.abort();
    }
}

/// The sending half of an XHR session.
#[derive(Debug)]
pub(super) struct HttpSender {
    http: Http,
    send_url: String,
}

impl HttpSender {
    /// `POST xhr_send` with a JSON array of messages.
    pub(super) async fn send(&self, body: String) -> Result<(), TransportError> {
        let response = self
            .http
            .request(Method::POST, &self.send_url, Some(body))
            .await?;
        expect_status(&response, &self.send_url, &[200, 204])?;
        // Read the (empty) body so that the connection can carry the next request.
        read_bounded(response.into_body(), MAX_SEND_RESPONSE_LEN).await?;
        Ok(())
    }
}

/// The receiving task: request after request until the session closes, the driver stops
/// listening, or something fails (reported as the last item).
async fn receive(
    http: Http,
    url: String,
    tx: mpsc::Sender<Result<SockJsFrame, TransportError>>,
    max_frame_len: usize,
) {
    loop {
        match receive_one(&http, &url, &tx, max_frame_len).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// One receiving request. `Ok(true)`: the response ended normally and the next one is due.
async fn receive_one(
    http: &Http,
    url: &str,
    tx: &mpsc::Sender<Result<SockJsFrame, TransportError>>,
    max_frame_len: usize,
) -> Result<bool, TransportError> {
    let response = http.request(Method::POST, url, None).await?;
    expect_status(&response, url, &[200])?;
    let mut body = response.into_body();
    let mut lines = Lines::new(max_frame_len);
    let mut frames = 0usize;
    while let Some(chunk) = body.frame().await {
        let chunk = chunk.map_err(|e| TransportError::Http(Arc::new(e)))?;
        let Ok(data) = chunk.into_data() else {
            continue; // trailers
        };
        lines.push(&data);
        while let Some(line) = lines.next_line()? {
            let frame = frame::parse(&line)?;
            frames += 1;
            let closed = matches!(frame, SockJsFrame::Close { .. });
            if tx.send(Ok(frame)).await.is_err() || closed {
                return Ok(false);
            }
        }
    }
    lines.finish()?;
    if frames == 0 {
        // Every SockJS response carries at least one frame; an empty one, answered at once,
        // would make this loop spin.
        return Err(FrameError::Truncated.into());
    }
    Ok(true)
}

/// The cookies a session's responses set (`JSESSIONID` for sticky load balancing), sent back
/// on its later requests. Bounded; attributes (path, expiry) are ignored: they all belong to
/// one session URL.
#[derive(Debug, Default)]
struct Cookies {
    pairs: Vec<(String, String)>,
}

impl Cookies {
    fn store<'a>(&mut self, set_cookies: impl Iterator<Item = &'a HeaderValue>) {
        for value in set_cookies {
            let Some((name, value)) = parse_set_cookie(value.as_bytes()) else {
                continue;
            };
            if let Some(pair) = self.pairs.iter_mut().find(|(n, _)| *n == name) {
                pair.1 = value;
            } else if self.pairs.len() < MAX_COOKIES {
                self.pairs.push((name, value));
            }
        }
    }

    fn header(&self) -> Option<HeaderValue> {
        if self.pairs.is_empty() {
            return None;
        }
        let joined = self
            .pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&joined).ok()
    }
}

/// `name=value` of a `Set-Cookie` header, or `None` if it is not a cookie we can send back.
fn parse_set_cookie(header: &[u8]) -> Option<(String, String)> {
    if header.len() > MAX_COOKIE_LEN {
        return None;
    }
    let text = std::str::from_utf8(header).ok()?;
    let pair = text.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    let token = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    let cookie_value = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && !b",;\\\"".contains(&b))
    };
    (!name.is_empty() && token(name) && cookie_value(value))
        .then(|| (name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_parsing() {
        let spring =
            br#"{"entropy":-1193346326,"origins":["*:*"],"cookie_needed":true,"websocket":true}"#;
        assert_eq!(Info::parse(spring).ok(), Some(Info { websocket: true }));
        assert_eq!(
            Info::parse(br#"{"websocket":false}"#).ok(),
            Some(Info { websocket: false })
        );
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"websocket\":\"yes\"}",
            b"{\"websocket\":true",
            b"\xff",
        ] {
            assert!(
                matches!(Info::parse(bad), Err(TransportError::Info(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn set_cookie_parsing() {
        assert_eq!(
            parse_set_cookie(b"JSESSIONID=abc123; Path=/; HttpOnly"),
            Some(("JSESSIONID".to_owned(), "abc123".to_owned()))
        );
        assert_eq!(
            parse_set_cookie(b"JSESSIONID=dummy"),
            Some(("JSESSIONID".to_owned(), "dummy".to_owned()))
        );
        assert_eq!(
            parse_set_cookie(b"a="),
            Some(("a".to_owned(), String::new()))
        );
        for bad in [
            &b"novalue"[..],
            b"=x",
            b"a b=c",
            b"a=b c",
            b"a=\"q\"",
            b"a=\xff",
        ] {
            assert_eq!(parse_set_cookie(bad), None, "{bad:?}");
        }
        assert_eq!(parse_set_cookie(&[b'a'; MAX_COOKIE_LEN + 1]), None);
    }

    #[test]
    fn cookie_jar_replaces_and_is_bounded() {
        let mut jar = Cookies::default();
        assert_eq!(jar.header(), None);
        let values: Vec<HeaderValue> = ["JSESSIONID=1", "lb=x; Path=/", "JSESSIONID=2"]
            .into_iter()
            .map(HeaderValue::from_static)
            .collect();
        jar.store(values.iter());
        assert_eq!(
            jar.header(),
            Some(HeaderValue::from_static("JSESSIONID=2; lb=x"))
        );
        let many: Vec<HeaderValue> = (0..100)
            .map(|i| HeaderValue::from_str(&format!("c{i}=v")).expect("valid"))
            .collect();
        jar.store(many.iter());
        assert_eq!(jar.pairs.len(), MAX_COOKIES);
    }
}
