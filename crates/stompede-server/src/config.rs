//! The configuration tree: one TOML file, environment overrides, validated once at start-up.
//!
//! Every option has a default (the `Default` impls below) and a doc comment; `config/example.toml`
//! lists them all and is loaded by a test so it cannot rot.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// Prefix of environment variables that override config keys:
/// `STOMPEDE__HEARTBEAT__SEND=5s` sets `[heartbeat] send = "5s"`.
pub const ENV_PREFIX: &str = "STOMPEDE__";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening socket and connection limits.
    pub server: ServerConfig,
    /// The STOMP endpoint and its WebSocket handshake.
    pub endpoint: EndpointConfig,
    /// STOMP frame limits and versions.
    pub stomp: StompConfig,
    /// STOMP heart-beats the server offers.
    pub heartbeat: HeartbeatConfig,
    /// Per-session outbound limits (slow consumers).
    pub session: SessionConfig,
    /// Destination prefixes and the embedded broker.
    pub broker: BrokerConfig,
    /// The SockJS fallback of the STOMP endpoint.
    pub sockjs: SockJsConfig,
    /// Static files (the chat page, the browser libraries).
    pub web: WebConfig,
    /// The built-in chat application.
    pub chat: ChatConfig,
    /// Who sessions are: anonymous access, users, JWT.
    pub auth: crate::auth::AuthConfig,
    /// Who may SEND to and SUBSCRIBE to which destinations.
    pub authorization: crate::authz::AuthorizationConfig,
    /// The HTTP publish API.
    pub api: ApiConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Most WebSocket sessions open at once; further handshakes get HTTP 503. Default: 10000.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 10_000,
        }
    }
}

/// `[endpoint]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Path of the STOMP endpoint. Raw WebSocket is served at `{path}/websocket`. Default: `/ws`.
    pub path: String,
    /// Origins allowed to open a session from a browser. Empty: same origin only (the `Origin`
    /// header must name the host the request was sent to). `["*"]`: any origin. Otherwise exact
    /// origins such as `"https://chat.example.com"`. Requests without an `Origin` header (not
    /// from a browser) are always allowed. Default: empty.
    pub allowed_origins: Vec<String>,
    /// Largest WebSocket message accepted, in bytes. Larger messages close the connection with
    /// 1009. Must be at least `stomp.max_frame_len`; STOMP frames over `stomp.max_frame_len` but
    /// under this get a STOMP ERROR first. Default: 1 MiB.
    pub max_websocket_message: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            path: "/ws".to_owned(),
            allowed_origins: Vec::new(),
            max_websocket_message: 1 << 20,
        }
    }
}

/// `[stomp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StompConfig {
    /// Largest inbound STOMP frame (command, headers and body), in bytes. Default: 65536.
    pub max_frame_len: usize,
    /// Most headers in one frame. Default: 64.
    pub max_headers: usize,
    /// Longest header line, in bytes. Default: 8192.
    pub max_header_len: usize,
    /// Most transactions a session may have open at once. Default: 16.
    pub max_transactions: usize,
    /// Most bytes of frames buffered in one session's open transactions. Default: 1 MiB.
    pub max_transaction_bytes: usize,
    /// Most subscriptions one session may hold at once. Default: 1024.
    pub max_subscriptions: usize,
    /// Name sent in the CONNECTED frame's `server` header. Default: `stompede/<version>`.
    pub server_name: String,
}

impl Default for StompConfig {
    fn default() -> Self {
        Self {
            max_frame_len: 64 * 1024,
            max_headers: 64,
            max_header_len: 8 * 1024,
            max_transactions: 16,
            max_transaction_bytes: 1 << 20,
            max_subscriptions: 1024,
            server_name: concat!("stompede/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// `[heartbeat]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Shortest interval at which the server offers to send heart-beats (`cx` of CONNECTED's
    /// `heart-beat`); `0s` disables. Default: 10s.
    #[serde(with = "humantime_serde")]
    pub send: Duration,
    /// Shortest interval at which the server wants heart-beats from the client (`cy`); `0s`
    /// disables. Default: 10s.
    #[serde(with = "humantime_serde")]
    pub receive: Duration,
    /// A client silent for `tolerance` times the negotiated interval is closed. Default: 2.0.
    pub tolerance: f64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            send: Duration::from_secs(10),
            receive: Duration::from_secs(10),
            tolerance: 2.0,
        }
    }
}

/// `[session]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Bytes of messages queued for one client before it is closed as a slow consumer.
    /// Default: 524288 (512 KiB, as Spring's `sendBufferSizeLimit`).
    pub send_buffer_size_limit: usize,
    /// Longest one write to a client may take before it is closed as a slow consumer.
    /// Default: 10s (Spring's `sendTimeLimit`).
    #[serde(with = "humantime_serde")]
    pub send_time_limit: Duration,
    /// Longest a new connection may take to send CONNECT. Default: 30s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            send_buffer_size_limit: 512 * 1024,
            send_time_limit: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// `[broker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Prefixes routed to application handlers. Default: `["/app"]`.
    pub app_prefixes: Vec<String>,
    /// Prefixes of publish-subscribe destinations (every subscriber gets each message).
    /// Default: `["/topic"]`.
    pub topic_prefixes: Vec<String>,
    /// Prefixes of point-to-point destinations (each message to exactly one subscriber, round
    /// robin; held until one subscribes). Default: `["/queue"]`.
    pub queue_prefixes: Vec<String>,
    /// Messages held per queue while no subscriber can take them; a SEND past it gets an ERROR.
    /// Default: 100000.
    pub max_queue_len: usize,
    /// Bytes of messages held in all queues together; a SEND past it gets an ERROR, so no
    /// number of queues can exhaust memory. Default: 268435456 (256 MiB).
    pub max_queued_bytes: usize,
    /// Unacknowledged queue messages per `client`/`client-individual` subscription (prefetch).
    /// Default: 1000.
    pub max_unacked: usize,
    /// Prefix of user destinations: `/user/queue/x` for subscribers, `/user/NAME/queue/x` for
    /// senders. Default: `/user`.
    pub user_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            app_prefixes: vec!["/app".to_owned()],
            topic_prefixes: vec!["/topic".to_owned()],
            queue_prefixes: vec!["/queue".to_owned()],
            max_queue_len: 100_000,
            max_queued_bytes: 256 << 20,
            max_unacked: 1_000,
            user_prefix: "/user".to_owned(),
        }
    }
}

/// `[sockjs]`: the SockJS protocol (0.3.3, what `sockjs-client` 1.x speaks) at
/// `endpoint.path`, for browsers that cannot use WebSocket. Defaults are Spring's.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SockJsConfig {
    /// Serve SockJS at `endpoint.path` (raw WebSocket stays at `{path}/websocket` either way).
    /// Default: true.
    pub enabled: bool,
    /// Offer the SockJS `websocket` transport. Default: true.
    pub websocket_enabled: bool,
    /// Tell clients (`/info`) that a `JSESSIONID` cookie is needed, and set it on HTTP
    /// transports, for load balancers with cookie-based sticky sessions. Default: true.
    pub session_cookie_needed: bool,
    /// Send a heartbeat frame after this long without other frames. Default: 25s.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Close a session that had no receiving request for this long. Default: 5s.
    #[serde(with = "humantime_serde")]
    pub disconnect_delay: Duration,
    /// Bytes sent on one streaming response (xhr_streaming, eventsource, htmlfile) before it is
    /// ended so that the browser can free it; the client then opens a new one. Default: 131072.
    pub stream_bytes_limit: usize,
    /// Messages a session holds for its client between polls; past it the sender waits (and
    /// a STOMP session is closed as a slow consumer after `session.send_time_limit`).
    /// Default: 100.
    pub http_message_cache_size: usize,
    /// URL of `sockjs.min.js` that `iframe.html` loads, for the iframe-based transports. It
    /// must be the `sockjs-client` version the page uses. Default: `/vendor/sockjs.min.js`,
    /// served by stompede from `web.root` (run `scripts/build-web.sh`).
    pub client_library_url: String,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            websocket_enabled: true,
            session_cookie_needed: true,
            heartbeat: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            stream_bytes_limit: 128 * 1024,
            http_message_cache_size: 100,
            client_library_url: "/vendor/sockjs.min.js".to_owned(),
        }
    }
}

/// `[web]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Directory served at `/` (files only, no listings). Relative paths are relative to the
    /// working directory. `scripts/build-web.sh` fills `web/dist/vendor` with the browser
    /// libraries from npm. An empty string serves nothing. Default: `web/dist`.
    pub root: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            root: "web/dist".to_owned(),
        }
    }
}

/// `[chat]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Serve the chat handler at `/app/chat/message`. Default: true.
    pub enabled: bool,
    /// Language of the server's announcements: `"ko"` or `"en"`. Default: `"ko"`.
    pub locale: Locale,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            locale: Locale::Ko,
        }
    }
}

/// Language of server-generated chat text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// Korean: `"<sender>님이 입장했습니다."`
    Ko,
    /// English: `"<sender> has entered the room."`
    En,
}

/// `[api]`: `POST /api/publish` for backends that do not speak STOMP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Keys a request must present (`Authorization: Bearer KEY` or `X-Api-Key: KEY`). No key
    /// configured: the API is off (404). Default: none.
    pub keys: Vec<String>,
}

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// On SIGINT/SIGTERM, how long sessions get to flush what they are owed and close with
    /// 1001 before they are dropped. Default: 10s.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Reads `path` (if given), applies `STOMPEDE__SECTION__KEY` overrides from `env`, and
    /// validates the result.
    ///
    /// # Errors
    /// An unreadable file, invalid TOML, an unknown key, a bad value or a failed validation.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_toml_with_env(&text, env)
    }

    /// Parses TOML text (no environment).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_with_env(text, std::iter::empty())
    }

    fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(ConfigError::Parse)?;
        for (key, value) in env {
            if let Some(path) = key.strip_prefix(ENV_PREFIX) {
                apply_override(&mut table, &key, path, &value)?;
            }
        }
        let config: Config = Config::deserialize(table).map_err(ConfigError::Parse)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks relations between options that serde cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_owned(),
            })
        };
        if !self.endpoint.path.starts_with('/') || self.endpoint.path.ends_with('/') {
            return invalid("endpoint.path", "must start with '/' and not end with '/'");
        }
        if self.stomp.max_frame_len < 1024 {
            return invalid("stomp.max_frame_len", "must be at least 1024");
        }
        if self.endpoint.max_websocket_message < self.stomp.max_frame_len {
            return invalid(
                "endpoint.max_websocket_message",
                "must be at least stomp.max_frame_len",
            );
        }
        if self.server.max_connections == 0 {
            return invalid("server.max_connections", "must be at least 1");
        }
        if self.session.send_buffer_size_limit < self.stomp.max_frame_len {
            return invalid(
                "session.send_buffer_size_limit",
                "must be at least stomp.max_frame_len",
            );
        }
        if !(self.heartbeat.tolerance >= 1.0 && self.heartbeat.tolerance <= 100.0) {
            return invalid("heartbeat.tolerance", "must be between 1.0 and 100.0");
        }
        let prefixes = [
            ("broker.app_prefixes", &self.broker.app_prefixes),
            ("broker.topic_prefixes", &self.broker.topic_prefixes),
            ("broker.queue_prefixes", &self.broker.queue_prefixes),
        ];
        for (key, list) in prefixes {
            if list.iter().any(|p| !p.starts_with('/') || p.len() < 2) {
                return invalid(key, "every prefix must start with '/' and name something");
            }
        }
        let user = &self.broker.user_prefix;
        if !user.starts_with('/') || user.len() < 2 || user.ends_with('/') {
            return invalid(
                "broker.user_prefix",
                "must start with '/', name something and not end with '/'",
            );
        }
        if let Err(reason) = self.auth.build() {
            return invalid("auth", &reason);
        }
        if let Err(reason) = crate::authz::Authorizer::new(&self.authorization) {
            return invalid("authorization.rules", &reason);
        }
        if self.api.keys.iter().any(|k| k.len() < 16) {
            return invalid("api.keys", "every key must be at least 16 characters");
        }
        if self.sockjs.heartbeat.is_zero() || self.sockjs.disconnect_delay.is_zero() {
            return invalid(
                "sockjs.heartbeat",
                "sockjs.heartbeat and sockjs.disconnect_delay must be positive",
            );
        }
        if self.sockjs.http_message_cache_size == 0 {
            return invalid("sockjs.http_message_cache_size", "must be at least 1");
        }
        for origin in &self.endpoint.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return invalid(
                    "endpoint.allowed_origins",
                    "entries are \"*\" or origins like \"https://example.com\"",
                );
            }
        }
        Ok(())
    }

    /// The broker's view of the destination prefixes.
    pub fn prefixes(&self) -> stompede_broker::Prefixes {
        stompede_broker::Prefixes {
            app: self.broker.app_prefixes.clone(),
            topic: self.broker.topic_prefixes.clone(),
            queue: self.broker.queue_prefixes.clone(),
        }
    }
}

/// Sets `table[a][b]... = value` for `path = "A__B"`. The value is read as a TOML value when it
/// parses as one (`10`, `true`, `["*"]`), else as a string (`5s`, `127.0.0.1:9000`).
fn apply_override(
    table: &mut toml::Table,
    var: &str,
    path: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    let bad = || ConfigError::Env {
        var: var.to_owned(),
        reason: "expected STOMPEDE__SECTION__KEY".to_owned(),
    };
    let Some((last, sections)) = keys.split_last() else {
        return Err(bad());
    };
    if last.is_empty() || sections.iter().any(String::is_empty) {
        return Err(bad());
    }
    let mut node = table;
    for section in sections {
        let entry = node
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Env {
                    var: var.to_owned(),
                    reason: format!("{section} is not a section"),
                })
            }
        };
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    node.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::from_toml("").expect("defaults are valid");
        assert_eq!(config.server.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.stomp.max_frame_len, 65536);
        assert_eq!(config.session.send_buffer_size_limit, 512 * 1024);
        assert_eq!(config.session.send_time_limit, Duration::from_secs(10));
        assert_eq!(config.endpoint.path, "/ws");
    }

    #[test]
    fn example_file_loads_and_matches_defaults() {
        let text = include_str!("../../../config/example.toml");
        let config = Config::from_toml(text).expect("example.toml must load");
        let defaults = Config::default();
        assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("[server]\nbindd = \"1.2.3.4:5\"").unwrap_err();
        let source = std::error::Error::source(&err)
            .expect("the TOML error")
            .to_string();
        assert!(source.contains("bindd"), "{source}");
        assert!(Config::from_toml("[nope]\n").is_err());
    }

    #[test]
    fn durations_read_humantime() {
        let config = Config::from_toml("[heartbeat]\nsend = \"250ms\"\nreceive = \"0s\"").unwrap();
        assert_eq!(config.heartbeat.send, Duration::from_millis(250));
        assert_eq!(config.heartbeat.receive, Duration::ZERO);
    }

    #[test]
    fn env_overrides_file() {
        let env = [
            (
                "STOMPEDE__SERVER__BIND".to_owned(),
                "0.0.0.0:9000".to_owned(),
            ),
            ("STOMPEDE__HEARTBEAT__SEND".to_owned(), "5s".to_owned()),
            (
                "STOMPEDE__STOMP__MAX_FRAME_LEN".to_owned(),
                "2048".to_owned(),
            ),
            (
                "STOMPEDE__ENDPOINT__ALLOWED_ORIGINS".to_owned(),
                r#"["https://a.example"]"#.to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let config = Config::from_toml_with_env("[server]\nbind = \"127.0.0.1:1\"", env).unwrap();
        assert_eq!(config.server.bind, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(config.heartbeat.send, Duration::from_secs(5));
        assert_eq!(config.stomp.max_frame_len, 2048);
        assert_eq!(config.endpoint.allowed_origins, ["https://a.example"]);
    }

    #[test]
    fn bad_env_override_is_reported() {
        let env = [("STOMPEDE__SERVER__NOPE".to_owned(), "1".to_owned())];
        assert!(Config::from_toml_with_env("", env).is_err());
        let env = [("STOMPEDE____X".to_owned(), "1".to_owned())];
        assert!(matches!(
            Config::from_toml_with_env("", env),
            Err(ConfigError::Env { .. })
        ));
    }

    #[test]
    fn validation_rejects_nonsense() {
        for text in [
            "[endpoint]\npath = \"ws\"",
            "[endpoint]\npath = \"/ws/\"",
            "[stomp]\nmax_frame_len = 10",
            "[endpoint]\nmax_websocket_message = 2000",
            "[server]\nmax_connections = 0",
            "[heartbeat]\ntolerance = 0.5",
            "[broker]\ntopic_prefixes = [\"topic\"]",
            "[endpoint]\nallowed_origins = [\"example.com\"]",
        ] {
            assert!(
                matches!(Config::from_toml(text), Err(ConfigError::Invalid { .. })),
                "{text} should be invalid"
            );
        }
    }
}
