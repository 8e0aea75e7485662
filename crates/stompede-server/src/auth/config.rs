//! The `[auth]` config section and its validation into an [`AuthService`].

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{AuthService, Authenticator, Chain, ConfigUsers, JwtAuthenticator, SetupError};

/// `[auth]`: who may open a STOMP session.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether sessions without credentials are allowed (anonymous). Default: true (the demo).
    pub anonymous: bool,
    /// `[[auth.users]]`: users checked against `login`/`passcode`. Default: none.
    pub users: Vec<UserConfig>,
    /// `[auth.jwt]`: bearer tokens. Default: none.
    pub jwt: Option<JwtConfig>,
    /// Most credential checks run at once (each argon2 check takes a core and 19 MiB for tens
    /// of milliseconds). Default: the number of CPUs.
    pub max_concurrent: Option<NonZeroUsize>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous: true,
            users: Vec::new(),
            jwt: None,
            max_concurrent: None,
        }
    }
}

/// `[[auth.users]]`: one user.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// The argon2 hash of the password as a PHC string (`$argon2id$v=19$...`), as printed by
    /// `stompede hash-password`. Never the password itself.
    pub password: String,
    /// Roles granted. Default: none.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The hash is not printed: it is what an offline guessing attack needs.
impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("roles", &self.roles)
            .finish()
    }
}

/// `[auth.jwt]`: bearer tokens (JWT).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// `HS256` (shared secret) or `RS256` (RSA public key). Default: `HS256`.
    pub algorithm: String,
    /// HS256 shared secret, at least 32 bytes. Exactly one of `secret` and `secret_env`.
    pub secret: Option<String>,
    /// HS256: the environment variable holding the secret.
    pub secret_env: Option<String>,
    /// RS256: PEM file of the RSA public key (`BEGIN PUBLIC KEY`).
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` claim. Default: not checked.
    pub issuer: Option<String>,
    /// Required `aud` claim. Default: not checked.
    pub audience: Option<String>,
    /// Clock-skew tolerance on `exp`/`nbf`, whole seconds. Default: 0s.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Claim holding the user name. Default: `sub`.
    pub name_claim: String,
    /// Claim holding the roles, an array of strings. Default: `roles`.
    pub roles_claim: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            algorithm: "HS256".to_owned(),
            secret: None,
            secret_env: None,
            public_key_file: None,
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
            name_claim: "sub".to_owned(),
            roles_claim: "roles".to_owned(),
        }
    }
}

/// The secret is not printed.
impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .field("public_key_file", &self.public_key_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("name_claim", &self.name_claim)
            .field("roles_claim", &self.roles_claim)
            .finish()
    }
}

impl AuthConfig {
    /// Checks the section (hashes, keys, key files, the environment) and builds the service:
    /// config users first, then JWT.
    ///
    /// # Errors
    /// One line naming the field at fault, e.g.
    /// `auth.jwt.public_key_file: cannot read jwt.pem: No such file or directory (os error 2)`.
    pub fn build(&self) -> Result<AuthService, String> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<AuthService, String> {
        let mut chain = Chain::new();
        if !self.users.is_empty() {
            chain = chain.with(ConfigUsers::new(&self.users).map_err(|e| self.users_error(e))?);
        }
        if let Some(jwt) = &self.jwt {
            chain = chain.with(jwt.build(env)?);
        }
        let authenticator: Option<Arc<dyn Authenticator>> = match chain.len() {
            0 if !self.anonymous => {
                return Err(
                    "auth.anonymous: false, but neither auth.users nor auth.jwt is \
                            configured, so no session could connect"
                        .to_owned(),
                )
            }
            0 => None,
            _ => Some(Arc::new(chain)),
        };
        let service = AuthService::new(authenticator, self.anonymous);
        Ok(match self.max_concurrent {
            Some(max) => service.with_max_concurrent(max),
            None => service,
        })
    }

    fn users_error(&self, error: SetupError) -> String {
        let index = |name: &str| self.users.iter().position(|u| u.name == name);
        match &error {
            SetupError::InvalidHash { user, reason } => format!(
                "auth.users[{}].password: user {user:?}: not an argon2 PHC string \
                 (make one with `stompede hash-password`): {reason}",
                index(user).unwrap_or_default()
            ),
            SetupError::DuplicateUser(user) => {
                let second = self
                    .users
                    .iter()
                    .enumerate()
                    .filter(|(_, u)| &u.name == user)
                    .nth(1)
                    .map_or(0, |(i, _)| i);
                format!("auth.users[{second}].name: {error}")
            }
            SetupError::EmptyUserName => {
                format!("auth.users[{}].name: empty", index("").unwrap_or_default())
            }
            SetupError::InvalidKey(_) | SetupError::Hash(_) => format!("auth.users: {error}"),
        }
    }
}

impl JwtConfig {
    fn build(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<JwtAuthenticator, String> {
        let authenticator = if self.algorithm.eq_ignore_ascii_case("HS256") {
            if self.public_key_file.is_some() {
                return Err("auth.jwt.public_key_file: only for RS256".to_owned());
            }
            let secret = match (&self.secret, &self.secret_env) {
                (Some(_), Some(_)) => {
                    return Err("auth.jwt.secret_env: set either secret or secret_env".to_owned())
                }
                (None, None) => {
                    return Err(
                        "auth.jwt.secret: required for HS256 (or auth.jwt.secret_env)".to_owned(),
                    )
                }
                (Some(secret), None) => secret.clone(),
                (None, Some(name)) => env(name).ok_or_else(|| {
                    format!("auth.jwt.secret_env: environment variable {name} is not set")
                })?,
            };
            let field = if self.secret.is_some() {
                "secret"
            } else {
                "secret_env"
            };
            JwtAuthenticator::hs256(secret.as_bytes())
                .map_err(|e| format!("auth.jwt.{field}: {e}"))?
        } else if self.algorithm.eq_ignore_ascii_case("RS256") {
            if self.secret.is_some() || self.secret_env.is_some() {
                return Err("auth.jwt.secret: only for HS256".to_owned());
            }
            let path = self
                .public_key_file
                .as_ref()
                .ok_or("auth.jwt.public_key_file: required for RS256")?;
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "auth.jwt.public_key_file: cannot read {}: {e}",
                    path.display()
                )
            })?;
            JwtAuthenticator::rs256_pem(&pem)
                .map_err(|e| format!("auth.jwt.public_key_file: {}: {e}", path.display()))?
        } else {
            return Err(format!(
                "auth.jwt.algorithm: unknown algorithm {:?} (expected \"HS256\" or \"RS256\")",
                self.algorithm
            ));
        };
        if self.name_claim.is_empty() {
            return Err("auth.jwt.name_claim: empty".to_owned());
        }
        if self.roles_claim.is_empty() {
            return Err("auth.jwt.roles_claim: empty".to_owned());
        }
        let mut authenticator = authenticator
            .leeway(self.leeway)
            .name_claim(&*self.name_claim)
            .roles_claim(&*self.roles_claim);
        match self.issuer.as_deref() {
            Some("") => return Err("auth.jwt.issuer: empty (omit it to not check)".to_owned()),
            Some(issuer) => authenticator = authenticator.issuer(issuer),
            None => {}
        }
        match self.audience.as_deref() {
            Some("") => return Err("auth.jwt.audience: empty (omit it to not check)".to_owned()),
            Some(audience) => authenticator = authenticator.audience(audience),
            None => {}
        }
        Ok(authenticator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{hash_password, AuthError, Credentials};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse(toml_text: &str) -> AuthConfig {
        toml::from_str(toml_text).expect("valid toml")
    }

    fn build_error(config: &AuthConfig) -> String {
        match config.build_with_env(&|name| (name == "JWT_SECRET").then(|| SECRET.to_owned())) {
            Ok(service) => panic!("built {service:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn default_is_anonymous_without_authenticators() {
        let service = AuthConfig::default().build().expect("default builds");
        assert!(service.allows_anonymous());
        assert!(!service.has_authenticator());
    }

    #[test]
    fn full_section_parses_and_builds() {
        let hash = hash_password("pw").expect("hash");
        let config = parse(&format!(
            r#"
            anonymous = false
            max_concurrent = 3
            [[users]]
            name = "alice"
            password = "{hash}"
            roles = ["admin"]
            [jwt]
            algorithm = "HS256"
            secret_env = "JWT_SECRET"
            issuer = "https://issuer.example"
            audience = "stompede"
            leeway = "30s"
            name_claim = "preferred_username"
            roles_claim = "groups"
            "#
        ));
        assert_eq!(
            config.jwt.as_ref().map(|j| j.leeway),
            Some(Duration::from_secs(30))
        );
        let service = config
            .build_with_env(&|name| (name == "JWT_SECRET").then(|| SECRET.to_owned()))
            .expect("builds");
        assert!(!service.allows_anonymous());
        assert!(service.has_authenticator());
        assert_eq!(service.max_concurrent(), 3);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<AuthConfig>("anonymus = true").is_err());
        assert!(toml::from_str::<AuthConfig>("[jwt]\nsecrets = \"x\"").is_err());
        assert!(toml::from_str::<AuthConfig>(
            "[[users]]\nname = \"a\"\npassword = \"b\"\nrole = []"
        )
        .is_err());
    }

    #[test]
    fn debug_hides_secrets_and_hashes() {
        let hash = hash_password("pw").expect("hash");
        let config = parse(&format!(
            "[[users]]\nname = \"alice\"\npassword = \"{hash}\"\n[jwt]\nsecret = \"{SECRET}\""
        ));
        let shown = format!("{config:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("argon2"), "{shown}");
    }

    #[test]
    fn build_errors_name_the_field() {
        let cases = [
            (
                "[[users]]\nname = \"alice\"\npassword = \"hunter2\"",
                "auth.users[0].password",
            ),
            (
                "anonymous = false",
                "auth.anonymous",
            ),
            ("[jwt]\nalgorithm = \"ES256\"\nsecret = \"x\"", "auth.jwt.algorithm"),
            ("[jwt]\nalgorithm = \"none\"", "auth.jwt.algorithm"),
            ("[jwt]", "auth.jwt.secret"),
            ("[jwt]\nsecret = \"short\"", "auth.jwt.secret"),
            ("[jwt]\nsecret_env = \"NOT_SET_ANYWHERE\"", "auth.jwt.secret_env"),
            (
                "[jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\nsecret_env = \"JWT_SECRET\"",
                "auth.jwt.secret_env",
            ),
            ("[jwt]\nalgorithm = \"RS256\"", "auth.jwt.public_key_file"),
            (
                "[jwt]\nalgorithm = \"RS256\"\npublic_key_file = \"/nonexistent/jwt.pem\"",
                "auth.jwt.public_key_file",
            ),
            (
                "[jwt]\nalgorithm = \"RS256\"\npublic_key_file = \"Cargo.toml\"",
                "auth.jwt.public_key_file",
            ),
            (
                "[jwt]\nalgorithm = \"RS256\"\npublic_key_file = \"tests/fixtures/jwt-test-private.pem\"",
                "auth.jwt.public_key_file",
            ),
            (
                "[jwt]\nalgorithm = \"RS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\npublic_key_file = \"tests/fixtures/jwt-test-public.pem\"",
                "auth.jwt.secret",
            ),
            ("[jwt]\nsecret_env = \"JWT_SECRET\"\nname_claim = \"\"", "auth.jwt.name_claim"),
            ("[jwt]\nsecret_env = \"JWT_SECRET\"\nissuer = \"\"", "auth.jwt.issuer"),
        ];
        for (toml_text, field) in cases {
            let error = build_error(&parse(toml_text));
            assert!(error.starts_with(field), "{toml_text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn duplicate_user_names_the_second_entry() {
        let hash = hash_password("pw").expect("hash");
        let config = parse(&format!(
            "[[users]]\nname = \"a\"\npassword = \"{hash}\"\n\
             [[users]]\nname = \"b\"\npassword = \"{hash}\"\n\
             [[users]]\nname = \"a\"\npassword = \"{hash}\""
        ));
        let error = build_error(&config);
        assert!(error.starts_with("auth.users[2].name"), "{error}");
    }

    #[test]
    fn rs256_with_the_public_key_builds() {
        // Cargo runs unit tests in the crate directory.
        let config = parse(
            "[jwt]\nalgorithm = \"RS256\"\npublic_key_file = \"tests/fixtures/jwt-test-public.pem\"",
        );
        assert!(config.build().is_ok());
    }

    const JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    }

    fn hs256(claims: &serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET);
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("signing")
    }

    fn configured(anonymous: bool) -> AuthService {
        let hash = hash_password("correct horse").expect("hash");
        let secret = String::from_utf8(JWT_SECRET.to_vec()).expect("ascii");
        let config: AuthConfig = toml::from_str(&format!(
            r#"
        anonymous = {anonymous}
        max_concurrent = 2
        [[users]]
        name = "alice"
        password = "{hash}"
        roles = ["admin"]
        [jwt]
        secret = "{secret}"
        "#
        ))
        .expect("valid config");
        config.build().expect("builds")
    }

    #[tokio::test]
    async fn configured_service_routes_logins_to_users_and_tokens_to_jwt() {
        let service = configured(false);
        let login = |passcode: &str| {
            Some(Credentials::Login {
                login: "alice".to_owned(),
                passcode: passcode.to_owned(),
            })
        };
        let alice = service
            .authenticate(login("correct horse"))
            .await
            .expect("good password")
            .expect("a principal");
        assert_eq!(alice.name, "alice");
        assert!(alice.has_role("admin"));
        assert_eq!(alice.expires_at, None);
        assert_eq!(
            service.authenticate(login("wrong")).await,
            Err(AuthError::BadCredentials)
        );

        let token = hs256(&serde_json::json!({ "sub": "bob", "exp": now() + 600 }));
        let bob = service
            .authenticate(Some(Credentials::Token(token)))
            .await
            .expect("good token")
            .expect("a principal");
        assert_eq!(bob.name, "bob");
        assert!(bob.expires_at.is_some());

        assert_eq!(service.authenticate(None).await, Err(AuthError::Required));
        assert_eq!(configured(true).authenticate(None).await, Ok(None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_logins_all_get_answers() {
        let service = configured(false).with_max_concurrent(NonZeroUsize::MIN);
        let service = Arc::new(service);
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let service = Arc::clone(&service);
                tokio::spawn(async move {
                    let passcode = if i % 2 == 0 { "correct horse" } else { "nope" };
                    service
                        .authenticate(Some(Credentials::Login {
                            login: "alice".to_owned(),
                            passcode: passcode.to_owned(),
                        }))
                        .await
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let answer = task.await.expect("task");
            assert_eq!(answer.is_ok(), i % 2 == 0, "{i}: {answer:?}");
        }
    }
}
