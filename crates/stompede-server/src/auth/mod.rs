//! Pluggable authentication: who a session is, from what its client presented.
//!
//! - [`Authenticator`]: checks [`Credentials`] and answers with a [`Principal`]. Implemented by
//!   [`ConfigUsers`] (login and argon2 password hashes from the config), [`JwtAuthenticator`]
//!   (bearer tokens), [`Chain`] (several in order) and any closure.
//! - [`AuthService`]: the async front sessions call. It runs the (CPU-heavy) checks on tokio's
//!   blocking pool, a bounded number at a time, and applies the anonymous policy.
//! - [`AuthConfig`]: the `[auth]` config section, built into an [`AuthService`].
//! - [`handshake_token`]: a bearer token carried by the WebSocket or SockJS handshake.
//!
//! It does not decide where credentials come from (the STOMP `CONNECT` frame or the handshake)
//! nor what a principal may do: the session layer owns both.

mod config;
mod handshake;
mod jwt;
mod service;
mod users;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub use config::{AuthConfig, JwtConfig, UserConfig};
pub use handshake::{handshake_token, TOKEN_COOKIE, TOKEN_QUERY_PARAM};
pub use jwt::{JwtAuthenticator, MAX_TOKEN_LEN};
pub use service::AuthService;
pub use users::{hash_password, ConfigUsers};

/// Who a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name (a config user's `name`, or a token's name claim).
    pub name: String,
    /// Roles granted to the user, in the order they were given.
    pub roles: Vec<String>,
    /// When the credentials stop being valid (a token's `exp`); `None`: they do not expire.
    pub expires_at: Option<SystemTime>,
}

impl Principal {
    /// Whether the principal was granted `role` (exact, case-sensitive match).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (STOMP `login` and `passcode` headers).
    Login {
        /// The user name.
        login: String,
        /// The password, in clear.
        passcode: String,
    },
    /// A bearer token (a JWT).
    Token(String),
}

/// Never prints secrets: credentials end up in logs through `?` fields.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Login { login, .. } => f
                .debug_struct("Login")
                .field("login", login)
                .field("passcode", &"<redacted>")
                .finish(),
            Credentials::Token(token) => f
                .debug_tuple("Token")
                .field(&format_args!("<{} bytes>", token.len()))
                .finish(),
        }
    }
}

/// Why credentials were refused. `Display` is safe to send to the client: it never says
/// whether a user exists, nor echoes what the client sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password: the same error for both, so clients cannot tell which
    /// users exist.
    #[error("bad credentials")]
    BadCredentials,
    /// The credentials were valid once (a token past its `exp`).
    #[error("credentials expired")]
    Expired,
    /// The token is malformed, badly signed, or fails a claim check; the reason is fixed text.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// This authenticator does not take this kind of credentials ([`Chain`] tries the next).
    #[error("credentials not supported")]
    NotSupported,
    /// No credentials were presented and anonymous sessions are not allowed.
    #[error("credentials required")]
    Required,
    /// The check could not run (the authenticator panicked).
    #[error("authentication unavailable")]
    Unavailable,
}

/// A problem with the authentication set-up (keys, hashes), found before serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// A configured password is not an argon2 PHC string.
    #[error("user {user:?}: password is not an argon2 PHC string ({reason})")]
    InvalidHash {
        /// The user whose hash is bad.
        user: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two users share a name.
    #[error("user {0:?} is defined twice")]
    DuplicateUser(String),
    /// A user has an empty name.
    #[error("a user has an empty name")]
    EmptyUserName,
    /// A JWT key cannot be used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Hashing a password failed.
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Checks credentials. Implementations are synchronous and may be CPU-heavy (argon2 takes tens
/// of milliseconds on purpose): async callers go through [`AuthService`].
pub trait Authenticator: Send + Sync + 'static {
    /// Returns who presented `credentials`.
    ///
    /// # Errors
    /// [`AuthError::NotSupported`] if this authenticator does not take this kind of
    /// credentials; any other variant if it takes them and refuses them.
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError>;
}

impl<F> Authenticator for F
where
    F: Fn(&Credentials) -> Result<Principal, AuthError> + Send + Sync + 'static,
{
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        self(credentials)
    }
}

/// Tries each authenticator in order and answers with the first that takes the credentials
/// (does not return [`AuthError::NotSupported`]): typically config users for logins, then JWT
/// for tokens. A refusal is final: later authenticators are not asked.
#[derive(Clone, Default)]
pub struct Chain(Vec<Arc<dyn Authenticator>>);

impl Chain {
    /// An empty chain: it supports nothing.
    pub fn new() -> Self {
        Chain(Vec::new())
    }

    /// Appends `authenticator`, asked after those already in the chain.
    #[must_use]
    pub fn with(mut self, authenticator: impl Authenticator) -> Self {
        self.0.push(Arc::new(authenticator));
        self
    }

    /// Appends an already shared authenticator.
    #[must_use]
    pub fn with_arc(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.0.push(authenticator);
        self
    }

    /// Number of authenticators in the chain.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the chain has no authenticator.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain").field("len", &self.0.len()).finish()
    }
}

impl Authenticator for Chain {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        for authenticator in &self.0 {
            match authenticator.authenticate(credentials) {
                Err(AuthError::NotSupported) => continue,
                answer => return answer,
            }
        }
        Err(AuthError::NotSupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str) -> Principal {
        Principal {
            name: name.to_owned(),
            roles: vec!["admin".to_owned()],
            expires_at: None,
        }
    }

    fn login(login: &str, passcode: &str) -> Credentials {
        Credentials::Login {
            login: login.to_owned(),
            passcode: passcode.to_owned(),
        }
    }

    #[test]
    fn has_role_matches_exactly() {
        let p = principal("alice");
        assert!(p.has_role("admin"));
        assert!(!p.has_role("Admin"));
        assert!(!p.has_role("adm"));
    }

    #[test]
    fn debug_of_credentials_hides_secrets() {
        let shown = format!(
            "{:?} {:?}",
            login("alice", "hunter2"),
            Credentials::Token("secret.token.value".to_owned())
        );
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("secret.token"), "{shown}");
    }

    #[test]
    fn chain_skips_not_supported_and_stops_at_the_first_answer() {
        let logins = |c: &Credentials| match c {
            Credentials::Login { login, .. } if login == "alice" => Ok(principal("alice")),
            Credentials::Login { .. } => Err(AuthError::BadCredentials),
            Credentials::Token(_) => Err(AuthError::NotSupported),
        };
        let tokens = |c: &Credentials| match c {
            Credentials::Token(_) => Ok(principal("token-user")),
            Credentials::Login { .. } => Err(AuthError::NotSupported),
        };
        // Would accept anything: must only be reached when the first two do not answer.
        let fallback = |_: &Credentials| Ok(principal("fallback"));
        let chain = Chain::new().with(logins).with(tokens).with(fallback);
        assert_eq!(chain.len(), 3);

        let name = |c| chain.authenticate(&c).map(|p| p.name);
        assert_eq!(name(login("alice", "x")), Ok("alice".to_owned()));
        assert_eq!(name(login("bob", "x")), Err(AuthError::BadCredentials));
        assert_eq!(
            name(Credentials::Token("t".to_owned())),
            Ok("token-user".to_owned())
        );
    }

    #[test]
    fn chain_order_decides_who_answers() {
        let first = |_: &Credentials| Ok(principal("first"));
        let second = |_: &Credentials| Ok(principal("second"));
        let chain = Chain::new().with(second).with(first);
        assert_eq!(
            chain.authenticate(&login("a", "b")).map(|p| p.name),
            Ok("second".to_owned())
        );
    }

    #[test]
    fn empty_or_unsupported_chain_is_not_supported() {
        assert_eq!(
            Chain::new().authenticate(&login("a", "b")),
            Err(AuthError::NotSupported)
        );
        let never = |_: &Credentials| Err(AuthError::NotSupported);
        let chain = Chain::new().with(never).with(never);
        assert_eq!(
            chain.authenticate(&Credentials::Token("t".to_owned())),
            Err(AuthError::NotSupported)
        );
    }
}
