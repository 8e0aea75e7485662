//! The SockJS transports on session URLs `{prefix}/{server}/{session}/{transport}`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use super::frame::{self, PayloadError};
use super::pages::{self, JAVASCRIPT, TEXT_PLAIN};
use super::session::{Next, Receiver, Session, ANOTHER_CONNECTION};
use super::{method_not_allowed, Service};
use crate::endpoint::{HandshakeRequest, Refusal};
use crate::origin::OriginPolicy;
use crate::transport::{AnyConnection, Inbound, CLOSE_LINGER};

/// Prelude of `xhr_streaming`: browsers deliver nothing of a streaming XHR before 2 KiB.
const XHR_PRELUDE_LEN: usize = 2048;
/// `htmlfile` head is padded past this many bytes (IE renders nothing before 1 KiB).
const HTMLFILE_MIN_LEN: usize = 1024;
/// Longest `c` (callback) parameter.
const MAX_CALLBACK_LEN: usize = 256;

pub(super) async fn handle(
    service: &Arc<Service>,
    session: &str,
    transport: &str,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    let receiving = match transport {
        "xhr" => Receiving::Xhr,
        "xhr_streaming" => Receiving::XhrStreaming,
        "eventsource" => Receiving::EventSource,
        "htmlfile" => Receiving::HtmlFile,
        "jsonp" => Receiving::Jsonp,
        "xhr_send" => return send(service, session, Sending::Xhr, request).await,
        "jsonp_send" => return send(service, session, Sending::Jsonp, request).await,
        "websocket" => return websocket(service, peer, request).await,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    receive(service, session, receiving, peer, request).await
}

/// Transports that carry frames to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiving {
    Xhr,
    XhrStreaming,
    EventSource,
    HtmlFile,
    Jsonp,
}

impl Receiving {
    fn name(self) -> &'static str {
        match self {
            Receiving::Xhr => "xhr",
            Receiving::XhrStreaming => "xhr_streaming",
            Receiving::EventSource => "eventsource",
            Receiving::HtmlFile => "htmlfile",
            Receiving::Jsonp => "jsonp",
        }
    }

    /// XHR transports are POSTs (with CORS preflight); the others are GETs.
    fn is_xhr(self) -> bool {
        matches!(self, Receiving::Xhr | Receiving::XhrStreaming)
    }

    /// Browsers read these cross-origin only with CORS headers (a script tag needs none).
    fn cors(self) -> bool {
        self != Receiving::Jsonp
    }

    fn streaming(self) -> bool {
        matches!(
            self,
            Receiving::XhrStreaming | Receiving::EventSource | Receiving::HtmlFile
        )
    }

    fn content_type(self) -> &'static str {
        match self {
            Receiving::Xhr | Receiving::XhrStreaming | Receiving::Jsonp => JAVASCRIPT,
            Receiving::EventSource => "text/event-stream;charset=UTF-8",
            Receiving::HtmlFile => "text/html;charset=UTF-8",
        }
    }

    fn prelude(self, callback: &str) -> Option<String> {
        match self {
            Receiving::XhrStreaming => {
                let mut prelude = "h".repeat(XHR_PRELUDE_LEN);
                prelude.push('\n');
                Some(prelude)
            }
            Receiving::EventSource => Some("\r\n".to_owned()),
            Receiving::HtmlFile => {
                let mut head = format!(
                    "<!doctype html>\n\
                     <html><head>\n  \
                     <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
                     <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
                     </head><body><h2>Don't panic!</h2>\n  \
                     <script>\n    \
                     document.domain = document.domain;\n    \
                     var c = parent.{callback};\n    \
                     c.start();\n    \
                     function p(d) {{c.message(d);}};\n    \
                     window.onload = function() {{c.stop();}};\n  \
                     </script>"
                );
                let padding = HTMLFILE_MIN_LEN.saturating_sub(head.len()) + 1;
                head.extend(std::iter::repeat_n(' ', padding));
                head.push_str("\r\n\r\n");
                Some(head)
            }
            Receiving::Xhr | Receiving::Jsonp => None,
        }
    }

    /// One frame as this transport writes it.
    fn format(self, frame: &str, callback: &str) -> String {
        match self {
            Receiving::Xhr | Receiving::XhrStreaming => format!("{frame}\n"),
            // sockjs-client runs `decodeURI` on every event: a bare `%` would throw (losing
            // the frame) or decode `%41` into `A`. JSON already escaped CR, LF and NUL.
            Receiving::EventSource => format!("data: {}\r\n\r\n", frame.replace('%', "%25")),
            // Inside `<script>`, `</script>` in a message would end the script and run the rest
            // as HTML on our origin: `<`, `>` and `&` go as JSON escapes.
            Receiving::HtmlFile => format!(
                "<script>\np({});\n</script>\r\n",
                html_safe(&frame::json_string(frame))
            ),
            // `/**/` keeps a response from being read as a Flash file (Rosetta Flash), as
            // Spring and later sockjs-node do.
            Receiving::Jsonp => format!("/**/{callback}({});\r\n", frame::json_string(frame)),
        }
    }
}

/// The percent-decoded bytes of field `name` of a form body (empty when absent). Bytes, not
/// text: invalid UTF-8 must reach the JSON parser and be refused, not become U+FFFD.
fn form_value(body: &[u8], name: &[u8]) -> Vec<u8> {
    body.split(|&b| b == b'&')
        .find_map(|pair| {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            (key == name).then_some(value)
        })
        .map(|value| {
            let plus_as_space: Vec<u8> = value
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            percent_encoding::percent_decode(&plus_as_space).collect()
        })
        .unwrap_or_default()
}

/// A JSON string literal made safe to embed in an HTML `<script>` element.
fn html_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Origin rules for every request of a session. Script and event-stream GETs carry no
/// `Origin` when same-origin, and classic script loads none at all; where origins are
/// restricted, a browser's `Sec-Fetch-Site` then tells a foreign page's request apart.
fn origin_allowed(service: &Service, headers: &HeaderMap) -> bool {
    if !service.core.origin_allowed(headers) {
        return false;
    }
    if service.core.origins == OriginPolicy::Any || headers.contains_key(header::ORIGIN) {
        return true;
    }
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        None | Some(b"same-origin" | b"none") => true,
        Some(_) => false,
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "origin not allowed\n").into_response()
}

fn server_error(text: &'static str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, TEXT_PLAIN)],
        text,
    )
        .into_response()
}

/// The `c` query parameter of `htmlfile` and `jsonp`: required, and a plain JavaScript name so
/// that it cannot inject script.
fn callback(request: &Request) -> Result<String, &'static str> {
    let value = request.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "c")
            .map(|(_, value)| value.into_owned())
    });
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err("\"callback\" parameter required");
    };
    let valid = value.len() <= MAX_CALLBACK_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err("invalid \"callback\" parameter");
    }
    Ok(value)
}

async fn receive(
    service: &Arc<Service>,
    id: &str,
    kind: Receiving,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    let method = request.method();
    if kind.is_xhr() {
        if method == Method::OPTIONS {
            return pages::options(request.headers(), "OPTIONS, POST");
        }
        if method != Method::POST {
            return method_not_allowed("OPTIONS, POST");
        }
    } else if method != Method::GET {
        return method_not_allowed("GET");
    }
    if !origin_allowed(service, request.headers()) {
        return forbidden();
    }
    let callback = match kind {
        Receiving::HtmlFile | Receiving::Jsonp => match callback(&request) {
            Ok(callback) => callback,
            Err(text) => return server_error(text),
        },
        _ => String::new(),
    };
    let session = match service.registry.get(id) {
        Some(session) => session,
        None => match open(service, id, kind.name(), peer, &request) {
            Ok(session) => session,
            Err(refusal) => return refusal.into_response(),
        },
    };

    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(kind.content_type()),
    );
    pages::no_cache(headers);
    if kind.cors() {
        pages::cors(request.headers(), headers);
    }
    pages::session_cookie(service, request.headers(), headers);

    let prelude = if kind.streaming() {
        kind.prelude(&callback)
    } else {
        None
    };
    let Some(mut receiver) = session.attach() else {
        let (code, reason) = ANOTHER_CONNECTION;
        let close = kind.format(&frame::close_frame(code, reason), &callback);
        *response.body_mut() = Body::from(prelude.unwrap_or_default() + &close);
        return response;
    };
    let heartbeat = service.options.heartbeat;
    if !kind.streaming() {
        let body = match receiver.next(heartbeat).await {
            Next::Frame(frame) | Next::Close(frame) => kind.format(&frame, &callback),
            Next::Heartbeat => kind.format(frame::HEARTBEAT, &callback),
        };
        receiver.finish();
        *response.body_mut() = Body::from(body);
        return response;
    }
    let stream = Streaming {
        receiver: Some(receiver),
        prelude,
        kind,
        callback,
        heartbeat,
        written: 0,
        limit: service.options.stream_bytes_limit,
    };
    *response.body_mut() = Body::from_stream(futures_util::stream::unfold(stream, Streaming::next));
    response
}

/// A new session for `id`, its application started. Runs the handshake checks.
fn open(
    service: &Arc<Service>,
    id: &str,
    transport: &'static str,
    peer: Option<SocketAddr>,
    request: &Request,
) -> Result<Arc<Session>, Refusal> {
    let handshake = HandshakeRequest {
        method: request.method(),
        uri: request.uri(),
        headers: request.headers(),
        peer,
        transport,
    };
    let admission = service.core.admit(&handshake)?;
    let (session, conn) = Session::new(service.options.http_message_cache_size);
    let (session, created) = service.registry.insert(id, session);
    if created {
        service
            .core
            .start(admission, AnyConnection::SockJs(conn), "sockjs");
    }
    Ok(session)
}

/// The state of one streaming response.
struct Streaming {
    /// `None` once the response is to end.
    receiver: Option<Receiver>,
    prelude: Option<String>,
    kind: Receiving,
    callback: String,
    heartbeat: Duration,
    written: usize,
    limit: usize,
}

impl Streaming {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Streaming)> {
        if let Some(prelude) = self.prelude.take() {
            return Some((Ok(Bytes::from(prelude)), self));
        }
        let receiver = self.receiver.as_mut()?;
        let (frame, last) = match receiver.next(self.heartbeat).await {
            Next::Frame(frame) => (frame, false),
            Next::Heartbeat => (frame::HEARTBEAT.to_owned(), false),
            Next::Close(frame) => (frame, true),
        };
        let chunk = self.kind.format(&frame, &self.callback);
        self.written += chunk.len();
        if last || self.written >= self.limit {
            // Ends the response; after a close the receiver is already unlinked.
            if let Some(receiver) = self.receiver.take() {
                receiver.finish();
            }
        }
        Some((Ok(Bytes::from(chunk)), self))
    }
}

/// Transports that carry messages from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    Xhr,
    Jsonp,
}

async fn send(service: &Arc<Service>, id: &str, kind: Sending, request: Request) -> Response {
    let method = request.method();
    if kind == Sending::Xhr && method == Method::OPTIONS {
        return pages::options(request.headers(), "OPTIONS, POST");
    }
    if method != Method::POST {
        return method_not_allowed(if kind == Sending::Xhr {
            "OPTIONS, POST"
        } else {
            "POST"
        });
    }
    if !origin_allowed(service, request.headers()) {
        return forbidden();
    }
    let Some(session) = service.registry.get(id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (parts, body) = request.into_parts();
    let limit = service.core.max_message;
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, "message too large\n").into_response();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return too_large();
    };
    let form = kind == Sending::Jsonp
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let messages = if form {
        frame::parse_send(&form_value(&body, b"d"))
    } else {
        frame::parse_send(&body)
    };
    let messages = match messages {
        Ok(messages) => messages,
        Err(e @ (PayloadError::Empty | PayloadError::BrokenJson)) => {
            tracing::debug!(session = id, error = %e, "SockJS send refused");
            return server_error(match e {
                PayloadError::Empty => "Payload expected.",
                PayloadError::BrokenJson => "Broken JSON encoding.",
            });
        }
    };
    for message in messages {
        let Some(inbound) = session.inbound() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if inbound
            .send(Inbound::Text(Bytes::from(message)))
            .await
            .is_err()
        {
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    let mut response = match kind {
        Sending::Xhr => StatusCode::NO_CONTENT.into_response(),
        Sending::Jsonp => "ok".into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(TEXT_PLAIN),
    );
    pages::no_cache(headers);
    if kind == Sending::Xhr {
        pages::cors(&parts.headers, headers);
    }
    pages::session_cookie(service, &parts.headers, headers);
    response
}

/// The `websocket` transport: SockJS framing over one WebSocket; the session lives as long
/// as the socket (ids may be reused).
async fn websocket(service: &Arc<Service>, peer: Option<SocketAddr>, request: Request) -> Response {
    if !service.options.websocket_enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    if request.method() != Method::GET {
        return method_not_allowed("GET");
    }
    let headers = request.headers();
    if !origin_allowed(service, headers) {
        return forbidden();
    }
    let upgrade_header = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade_header {
        return (
            StatusCode::BAD_REQUEST,
            "Can \"Upgrade\" only to \"WebSocket\".",
        )
            .into_response();
    }
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return (
            StatusCode::BAD_REQUEST,
            "\"Connection\" must be \"Upgrade\".",
        )
            .into_response();
    }
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let handshake = HandshakeRequest {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        peer,
        transport: "websocket-sockjs",
    };
    let admission = match service.core.admit(&handshake) {
        Ok(admission) => admission,
        Err(refusal) => return refusal.into_response(),
    };
    let (session, conn) = Session::new(service.options.http_message_cache_size);
    let heartbeat = service.options.heartbeat;
    let service = Arc::clone(service);
    service
        .core
        .configure(upgrade)
        .on_upgrade(move |socket| async move {
            service
                .core
                .start(admission, AnyConnection::SockJs(conn), "sockjs");
            pump(socket, &session, heartbeat).await;
        })
}

/// Moves frames between one WebSocket and its session until either side ends.
async fn pump(mut socket: WebSocket, session: &Arc<Session>, heartbeat: Duration) {
    let Some(mut receiver) = session.attach() else {
        return;
    };
    // Client messages waiting for room in the application's inbound queue. The socket is not
    // read while some wait, but frames keep flowing out, so neither side can block the other.
    let mut pending: VecDeque<String> = VecDeque::new();
    loop {
        let inbound = session.inbound();
        tokio::select! {
            next = receiver.next(heartbeat) => {
                let (text, last) = match next {
                    Next::Frame(frame) => (frame, false),
                    Next::Heartbeat => (frame::HEARTBEAT.to_owned(), false),
                    Next::Close(frame) => (frame, true),
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return; // dropping the attached receiver closes the session
                }
                if last {
                    let close = CloseFrame { code: 1000, reason: "".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
            }
            permit = async { inbound.as_ref()?.reserve().await.ok() }, if !pending.is_empty() => {
                match (permit, pending.pop_front()) {
                    (Some(permit), Some(message)) => permit.send(Inbound::Text(Bytes::from(message))),
                    // The application is gone; its close frame comes next.
                    _ => pending.clear(),
                }
            }
            message = socket.next(), if pending.is_empty() => match message {
                Some(Ok(Message::Text(text))) => {
                    if text.is_empty() {
                        continue;
                    }
                    match frame::parse_websocket(&text) {
                        Ok(messages) => pending.extend(messages),
                        Err(e) => {
                            // The protocol says: terminate abruptly.
                            tracing::debug!(error = %e, "SockJS websocket: broken message");
                            return;
                        }
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    if let Some(inbound) = &inbound {
                        let _ = inbound.try_send(Inbound::KeepAlive);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    tracing::debug!("SockJS websocket: binary message");
                    return;
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    // The client left: no one can receive a SockJS close frame. Completes the
                    // WebSocket close handshake (the reply is queued) and ends the session.
                    receiver.finish();
                    session.close(1000, "Normal closure");
                    let _ = tokio::time::timeout(CLOSE_LINGER, socket.close()).await;
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_per_transport() {
        let frame = r#"a["x"]"#;
        assert_eq!(Receiving::Xhr.format(frame, ""), "a[\"x\"]\n");
        assert_eq!(Receiving::XhrStreaming.format(frame, ""), "a[\"x\"]\n");
        assert_eq!(
            Receiving::EventSource.format(frame, ""),
            "data: a[\"x\"]\r\n\r\n"
        );
        assert_eq!(
            Receiving::HtmlFile.format(frame, "cb"),
            "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
        );
        assert_eq!(
            Receiving::Jsonp.format(frame, "cb"),
            "/**/cb(\"a[\\\"x\\\"]\");\r\n"
        );
    }

    #[test]
    fn eventsource_escapes_percent_for_decode_uri() {
        let frame = r#"a["100% sure, %41"]"#;
        assert_eq!(
            Receiving::EventSource.format(frame, ""),
            "data: a[\"100%25 sure, %2541\"]\r\n\r\n"
        );
    }

    #[test]
    fn htmlfile_frames_cannot_close_their_script() {
        let frame = r#"a["</script><script>alert(1)</script>&"]"#;
        let out = Receiving::HtmlFile.format(frame, "cb");
        assert_eq!(out.matches("</script>").count(), 1, "{out}");
        assert!(!out.contains("<script>alert"), "{out}");
        // Still the same string to JavaScript / JSON.
        let literal = out
            .strip_prefix("<script>\np(")
            .and_then(|s| s.strip_suffix(");\n</script>\r\n"))
            .expect("framing");
        let decoded: String = serde_json::from_str(literal).expect("a JSON string");
        assert_eq!(decoded, frame);
    }

    #[test]
    fn form_values_are_percent_decoded_bytes() {
        assert_eq!(form_value(b"d=%5B%22x%22%5D", b"d"), br#"["x"]"#);
        assert_eq!(form_value(b"p=p&d=a+b%2Bc", b"d"), b"a b+c");
        assert_eq!(form_value(b"d=%5B%22%FF%22%5D", b"d"), b"[\"\xff\"]");
        assert_eq!(form_value(b"d", b"d"), b"");
        assert_eq!(form_value(b"p=p", b"d"), b"");
        assert_eq!(form_value(b"", b"d"), b"");
        assert_eq!(
            frame::parse_send(&form_value(b"d=%5B%22%FF%22%5D", b"d")),
            Err(PayloadError::BrokenJson)
        );
    }

    #[test]
    fn htmlfile_prelude_is_padded_past_a_kilobyte() {
        let prelude = Receiving::HtmlFile.prelude("callback").expect("prelude");
        assert!(prelude.len() > HTMLFILE_MIN_LEN);
        assert!(prelude.contains("var c = parent.callback;"));
        assert!(prelude.ends_with("\r\n\r\n"));
        assert_eq!(
            Receiving::XhrStreaming.prelude("").map(|p| p.len()),
            Some(2049)
        );
    }
}
