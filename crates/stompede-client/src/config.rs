//! How to connect: [`ClientConfig`], the transports, and the reconnection [`Backoff`].

use std::time::Duration;

use stompede_stomp::{HeartBeat, Limits};

/// Everything [`Client::connect`](crate::Client::connect) needs. Start from
/// [`ClientConfig::new`] and change what differs from the defaults:
///
/// ```
/// use std::time::Duration;
/// use stompede_client::{Backoff, ClientConfig, SockJsTransport, Transport};
///
/// let config = ClientConfig::new("http://127.0.0.1:8080/ws")
///     .transport(Transport::SockJs(SockJsTransport::XhrStreaming))
///     .credentials("guest", "guest")
///     .heart_beat(Duration::from_secs(10), Duration::from_secs(10))
///     .reconnect(Backoff::default());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `ws://host:port/path` for [`Transport::WebSocket`] (stompede: `ws://host/ws/websocket`);
    /// `http://host:port/prefix` for [`Transport::SockJs`] (stompede: `http://host/ws`). TLS
    /// (`wss`, `https`) is not supported.
    pub url: String,
    /// How frames travel. Default: [`Transport::WebSocket`].
    pub transport: Transport,
    /// CONNECT's `login` header. Default: none.
    pub login: Option<String>,
    /// CONNECT's `passcode` header. Default: none.
    pub passcode: Option<String>,
    /// CONNECT's `host` header: the virtual host (RabbitMQ knows `/`). Default: none, the
    /// header is left out as `@stomp/stompjs` does, and servers use their default (STOMP 1.2
    /// calls the header required, but RabbitMQ refuses a URL's host name as an unknown
    /// virtual host, and stompede ignores it).
    pub host: Option<String>,
    /// The heart-beats offered in CONNECT: `send` is how often the client can send one,
    /// `receive` how often it wants one from the server (zero: none). Default: 10 s both ways.
    pub heart_beat: HeartBeat,
    /// The connection is considered lost when the server is silent for this many times the
    /// negotiated server heart-beat interval. Default: 2.0.
    pub heart_beat_tolerance: f64,
    /// More CONNECT headers, after the ones above.
    pub headers: Vec<(String, String)>,
    /// WebSocket subprotocols offered (raw WebSocket only; SockJS offers none). Empty: the
    /// header is not sent, for servers that do not negotiate one. Default: `v12.stomp`,
    /// `v11.stomp`, `v10.stomp`.
    pub subprotocols: Vec<String>,
    /// Longest the transport plus the CONNECT/CONNECTED exchange may take. Default: 10 s.
    pub connect_timeout: Duration,
    /// Longest to wait for a RECEIPT. Default: 10 s.
    pub receipt_timeout: Duration,
    /// Reconnect after losing the connection, re-subscribing every active subscription.
    /// Default: none (a lost connection closes the client).
    pub reconnect: Option<Backoff>,
    /// Messages buffered per subscription before the client stops reading from the server
    /// until the application catches up. Default: 256.
    pub subscription_capacity: usize,
    /// Bounds on frames from the server; [`Limits::max_frame_len`] also bounds a SockJS frame
    /// and a WebSocket message. Default: 16 MiB frames, 256 headers of 16 KiB.
    pub limits: Limits,
}

impl ClientConfig {
    /// The defaults, connecting to `url`.
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            transport: Transport::WebSocket,
            login: None,
            passcode: None,
            host: None,
            heart_beat: HeartBeat {
                send: Duration::from_secs(10),
                receive: Duration::from_secs(10),
            },
            heart_beat_tolerance: 2.0,
            headers: Vec::new(),
            subprotocols: ["v12.stomp", "v11.stomp", "v10.stomp"]
                .map(str::to_owned)
                .to_vec(),
            connect_timeout: Duration::from_secs(10),
            receipt_timeout: Duration::from_secs(10),
            reconnect: None,
            subscription_capacity: 256,
            limits: Limits {
                max_frame_len: 16 << 20,
                max_headers: 256,
                max_header_len: 16 << 10,
            },
        }
    }

    /// Sets [`ClientConfig::transport`].
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> ClientConfig {
        self.transport = transport;
        self
    }

    /// Sets [`ClientConfig::login`] and [`ClientConfig::passcode`].
    #[must_use]
    pub fn credentials(
        mut self,
        login: impl Into<String>,
        passcode: impl Into<String>,
    ) -> ClientConfig {
        self.login = Some(login.into());
        self.passcode = Some(passcode.into());
        self
    }

    /// Sets [`ClientConfig::host`].
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> ClientConfig {
        self.host = Some(host.into());
        self
    }

    /// Sets [`ClientConfig::heart_beat`].
    #[must_use]
    pub fn heart_beat(mut self, send: Duration, receive: Duration) -> ClientConfig {
        self.heart_beat = HeartBeat { send, receive };
        self
    }

    /// Appends a CONNECT header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientConfig {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`ClientConfig::reconnect`].
    #[must_use]
    pub fn reconnect(mut self, backoff: Backoff) -> ClientConfig {
        self.reconnect = Some(backoff);
        self
    }

    /// Sets [`ClientConfig::receipt_timeout`].
    #[must_use]
    pub fn receipt_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.receipt_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::connect_timeout`].
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.connect_timeout = timeout;
        self
    }
}

/// How STOMP frames travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One WebSocket, one STOMP frame per message (`ws://host/path`).
    WebSocket,
    /// A SockJS session under `http://host/prefix`.
    SockJs(SockJsTransport),
}

/// The SockJS transports the client speaks: those of Spring's `SockJsClient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockJsTransport {
    /// `{prefix}/{server}/{session}/websocket`: SockJS frames over one WebSocket.
    WebSocket,
    /// One long POST receiving frames, reopened whenever the server ends it; `xhr_send`
    /// POSTs for the frames the client sends.
    XhrStreaming,
    /// One POST per received frame (long polling); `xhr_send` POSTs for the rest.
    XhrPolling,
}

impl SockJsTransport {
    /// The transport's name in session URLs, e.g. `xhr_streaming`.
    pub fn as_str(self) -> &'static str {
        match self {
            SockJsTransport::WebSocket => "websocket",
            SockJsTransport::XhrStreaming => "xhr_streaming",
            SockJsTransport::XhrPolling => "xhr",
        }
    }
}

/// Delays between reconnection attempts: `initial`, then multiplied by `multiplier` after
/// each failure up to `max`, each spread by ±`jitter` (a fraction) so that many clients
/// dropped at once do not return at once.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// Delay before the first attempt. Default: 500 ms.
    pub initial: Duration,
    /// Longest delay. Default: 30 s.
    pub max: Duration,
    /// Growth factor per failed attempt. Default: 2.0.
    pub multiplier: f64,
    /// Random spread as a fraction of the delay, from 0.0 (none) to 1.0. Default: 0.2.
    pub jitter: f64,
    /// Attempts before giving up and closing the client; `None`: never give up. Default: none.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// A backoff starting at `initial` and growing to at most `max`, other fields default.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            ..Backoff::default()
        }
    }

    /// Sets [`Backoff::multiplier`].
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Backoff {
        self.multiplier = multiplier;
        self
    }

    /// Sets [`Backoff::jitter`].
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// Sets [`Backoff::max_attempts`].
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Backoff {
        self.max_attempts = Some(attempts);
        self
    }

    /// The delay before attempt `attempt` (1-based), given `random` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = (self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent)).min(max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let spread = base * (1.0 + jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0));
        // Finite and non-negative by construction, unless `initial` or `max` is absurd.
        Duration::try_from_secs_f64(spread.clamp(0.0, max.max(0.0))).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
        let delays: Vec<_> = (1..=6).map(|a| b.delay(a, 0.5).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_within_bounds() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).jitter(0.5);
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(1, 0.5), Duration::from_secs(1));
        assert!(b.delay(1, 0.999_999) <= Duration::from_millis(1500));
        // Never past the cap, whatever the jitter.
        assert!(b.delay(10, 0.999_999) <= Duration::from_secs(10));
    }

    #[test]
    fn nonsense_parameters_stay_finite() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            multiplier: f64::NAN,
            jitter: 7.0,
            max_attempts: None,
        };
        assert!(b.delay(3, 0.3) <= Duration::from_secs(5));
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5)).multiplier(0.1);
        assert_eq!(b.jitter(0.0).delay(4, 0.0), Duration::from_secs(1));
    }
}
