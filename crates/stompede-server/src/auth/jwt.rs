//! Bearer tokens: JWTs signed with HS256 (a shared secret) or RS256 (an RSA key pair, the
//! server holding the public half).

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{AuthError, Authenticator, Credentials, Principal, SetupError};

/// Longest token looked at; longer ones are refused before any decoding. Real tokens are a few
/// hundred bytes; this bounds the work a hostile client can ask for.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Shortest HS256 secret accepted: RFC 7518 §3.2 requires a key at least as long as the hash
/// output (256 bits).
const MIN_SECRET_LEN: usize = 32;

/// Checks JWTs ([`Credentials::Token`] only) signed with one algorithm and one key.
///
/// The signature and `exp` are always checked (`exp` is required; `nbf` is checked when
/// present), with no leeway unless [`leeway`](Self::leeway) says otherwise; `iss` and `aud`
/// when configured (and then required). The principal's name comes from the `sub` claim (see
/// [`name_claim`](Self::name_claim)), its roles from the `roles` claim, an array of strings
/// (see [`roles_claim`](Self::roles_claim); missing or `null`: no roles), its `expires_at` from
/// `exp`. Tokens with another `alg` in their header, including `none`, are refused.
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
    name_claim: String,
    roles_claim: String,
}

impl JwtAuthenticator {
    /// Tokens signed with HMAC-SHA256 and `secret`.
    ///
    /// # Errors
    /// [`SetupError::InvalidKey`] if `secret` is shorter than 32 bytes (RFC 7518 §3.2).
    pub fn hs256(secret: &[u8]) -> Result<Self, SetupError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SetupError::InvalidKey(format!(
                "an HS256 secret must be at least {MIN_SECRET_LEN} bytes, this one has {}",
                secret.len()
            )));
        }
        Ok(Self::with_key(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
        ))
    }

    /// Tokens signed with RSASSA-PKCS1-v1_5 SHA-256 by the private half of `public_key_pem`
    /// (`-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`).
    ///
    /// # Errors
    /// [`SetupError::InvalidKey`] if `public_key_pem` is not a PEM RSA public key.
    pub fn rs256_pem(public_key_pem: &[u8]) -> Result<Self, SetupError> {
        // A private key parses too, and then no signature would ever verify: say so now.
        let text = String::from_utf8_lossy(public_key_pem);
        if !text.contains("PUBLIC KEY-----") {
            return Err(SetupError::InvalidKey(
                "expected a PEM RSA public key (BEGIN PUBLIC KEY)".to_owned(),
            ));
        }
        let key = DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| SetupError::InvalidKey(format!("not an RSA public key: {e}")))?;
        Ok(Self::with_key(key, Algorithm::RS256))
    }

    fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // jsonwebtoken refuses any token with an `aud` unless an audience is configured.
        validation.validate_aud = false;
        validation.leeway = 0;
        JwtAuthenticator {
            key,
            validation,
            name_claim: "sub".to_owned(),
            roles_claim: "roles".to_owned(),
        }
    }

    /// Requires `iss` to be `issuer`.
    #[must_use]
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self.validation
            .required_spec_claims
            .insert("iss".to_owned());
        self
    }

    /// Requires `aud` to be (or, for an array, to contain) `audience`.
    #[must_use]
    pub fn audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation
            .required_spec_claims
            .insert("aud".to_owned());
        self
    }

    /// Tolerance for clock skew on `exp` and `nbf`, in whole seconds. Default: none.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// The claim holding the principal's name (a non-empty string). Default: `sub`.
    #[must_use]
    pub fn name_claim(mut self, claim: impl Into<String>) -> Self {
        self.name_claim = claim.into();
        self
    }

    /// The claim holding the principal's roles (an array of strings). Default: `roles`.
    #[must_use]
    pub fn roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles_claim = claim.into();
        self
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let name = match claims.get(&self.name_claim) {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => {
                return Err(AuthError::InvalidToken(format!(
                    "no {} claim",
                    self.name_claim
                )))
            }
        };
        let roles = match claims.get(&self.roles_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(roles)) => roles
                .iter()
                .map(|role| role.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.bad_roles())?,
            Some(_) => return Err(self.bad_roles()),
        };
        // jsonwebtoken has checked that `exp` is there and a u64.
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .and_then(|exp| UNIX_EPOCH.checked_add(Duration::from_secs(exp)))
            .ok_or_else(|| AuthError::InvalidToken("exp out of range".to_owned()))?;
        Ok(Principal {
            name,
            roles,
            expires_at: Some(expires_at),
        })
    }

    fn bad_roles(&self) -> AuthError {
        AuthError::InvalidToken(format!(
            "{} claim is not an array of strings",
            self.roles_claim
        ))
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        let Credentials::Token(token) = credentials else {
            return Err(AuthError::NotSupported);
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::InvalidToken("too long".to_owned()));
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| token_error(e.kind()))?;
        self.principal(&data.claims)
    }
}

/// Fixed reasons only: the token's content never reaches an error message.
fn token_error(kind: &ErrorKind) -> AuthError {
    let reason = match kind {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::MissingRequiredClaim(claim) => {
            return AuthError::InvalidToken(format!("no {claim} claim"))
        }
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "algorithm not allowed",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::ImmatureSignature => "not valid yet",
        _ => "malformed",
    };
    AuthError::InvalidToken(reason.to_owned())
}

impl fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .field("leeway", &self.validation.leeway)
            .field("name_claim", &self.name_claim)
            .field("roles_claim", &self.roles_claim)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
    const PRIVATE_KEY: &[u8] = include_bytes!("../../tests/fixtures/jwt-test-private.pem");
    const OTHER_PRIVATE_KEY: &[u8] = include_bytes!("../../tests/fixtures/jwt-other-private.pem");
    const PUBLIC_KEY: &[u8] = include_bytes!("../../tests/fixtures/jwt-test-public.pem");

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    }

    fn claims(sub: &str) -> Value {
        json!({ "sub": sub, "exp": now() + 600, "roles": ["chat", "admin"] })
    }

    fn hs256(claims: &Value) -> String {
        sign_hmac(Algorithm::HS256, claims, SECRET)
    }

    fn sign_hmac(algorithm: Algorithm, claims: &Value, secret: &[u8]) -> String {
        encode(
            &Header::new(algorithm),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("signing")
    }

    fn rs256(claims: &Value, private_key: &[u8]) -> String {
        let key = EncodingKey::from_rsa_pem(private_key).expect("test private key");
        encode(&Header::new(Algorithm::RS256), claims, &key).expect("signing")
    }

    fn hs_auth() -> JwtAuthenticator {
        JwtAuthenticator::hs256(SECRET).expect("long enough secret")
    }

    fn check(auth: &impl Authenticator, token: String) -> Result<String, AuthError> {
        auth.authenticate(&Credentials::Token(token))
            .map(|principal| principal.name)
    }

    fn invalid(reason: &str) -> Result<String, AuthError> {
        Err(AuthError::InvalidToken(reason.to_owned()))
    }

    #[test]
    fn hs256_good_token_gives_name_roles_and_expiry() {
        let exp = now() + 600;
        let token = hs256(&json!({ "sub": "alice", "exp": exp, "roles": ["chat", "admin"] }));
        let principal = hs_auth()
            .authenticate(&Credentials::Token(token))
            .expect("valid token");
        assert_eq!(principal.name, "alice");
        assert_eq!(principal.roles, ["chat", "admin"]);
        assert!(principal.has_role("admin"));
        assert_eq!(
            principal.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(exp))
        );
    }

    #[test]
    fn hs256_wrong_signature_is_refused() {
        let forged = sign_hmac(
            Algorithm::HS256,
            &claims("alice"),
            b"another-secret-another-secret-another",
        );
        assert_eq!(check(&hs_auth(), forged), invalid("bad signature"));

        // A valid token whose payload was swapped for another one.
        let good = hs256(&claims("alice"));
        let other = hs256(&claims("admin"));
        let parts: Vec<&str> = good.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert_eq!(check(&hs_auth(), tampered), invalid("bad signature"));
    }

    #[test]
    fn expired_token_is_expired_unless_within_leeway() {
        let token = hs256(&json!({ "sub": "alice", "exp": now() - 30 }));
        assert_eq!(check(&hs_auth(), token.clone()), Err(AuthError::Expired));
        let lenient = hs_auth().leeway(Duration::from_secs(120));
        assert_eq!(check(&lenient, token), Ok("alice".to_owned()));
    }

    #[test]
    fn token_without_exp_is_refused() {
        let token = hs256(&json!({ "sub": "alice" }));
        assert_eq!(check(&hs_auth(), token), invalid("no exp claim"));
        let token = hs256(&json!({ "sub": "alice", "exp": "tomorrow" }));
        assert_eq!(check(&hs_auth(), token), invalid("no exp claim"));
    }

    #[test]
    fn token_not_valid_yet_is_refused() {
        let token = hs256(&json!({ "sub": "alice", "exp": now() + 600, "nbf": now() + 300 }));
        assert_eq!(check(&hs_auth(), token), invalid("not valid yet"));
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let auth = hs_auth().issuer("https://id.example").audience("stompede");
        let with = |iss: Option<&str>, aud: Option<Value>| {
            let mut c = claims("alice");
            if let Some(iss) = iss {
                c["iss"] = json!(iss);
            }
            if let Some(aud) = aud {
                c["aud"] = aud;
            }
            check(&auth, hs256(&c))
        };
        let good = Ok("alice".to_owned());
        assert_eq!(
            with(Some("https://id.example"), Some(json!("stompede"))),
            good
        );
        assert_eq!(
            with(
                Some("https://id.example"),
                Some(json!(["other", "stompede"]))
            ),
            good
        );
        assert_eq!(
            with(Some("https://evil.example"), Some(json!("stompede"))),
            invalid("wrong issuer")
        );
        assert_eq!(
            with(Some("https://id.example"), Some(json!("other-service"))),
            invalid("wrong audience")
        );
        assert_eq!(with(None, Some(json!("stompede"))), invalid("no iss claim"));
        assert_eq!(
            with(Some("https://id.example"), None),
            invalid("no aud claim")
        );
    }

    #[test]
    fn audience_in_token_is_fine_when_none_is_configured() {
        let mut c = claims("alice");
        c["aud"] = json!("anything");
        c["iss"] = json!("anyone");
        assert_eq!(check(&hs_auth(), hs256(&c)), Ok("alice".to_owned()));
    }

    #[test]
    fn roles_and_name_come_from_the_configured_claims() {
        let auth = hs_auth()
            .name_claim("preferred_username")
            .roles_claim("groups");
        let token = hs256(&json!({
            "sub": "u-123", "preferred_username": "alice", "exp": now() + 60,
            "groups": ["ops"], "roles": ["ignored"],
        }));
        let principal = auth
            .authenticate(&Credentials::Token(token))
            .expect("valid");
        assert_eq!(principal.name, "alice");
        assert_eq!(principal.roles, ["ops"]);
    }

    #[test]
    fn roles_claim_missing_means_none_and_malformed_is_refused() {
        let none = hs256(&json!({ "sub": "alice", "exp": now() + 60 }));
        let principal = hs_auth()
            .authenticate(&Credentials::Token(none))
            .expect("valid");
        assert!(principal.roles.is_empty());
        let null = hs256(&json!({ "sub": "alice", "exp": now() + 60, "roles": null }));
        assert_eq!(check(&hs_auth(), null), Ok("alice".to_owned()));

        for bad in [
            json!("admin"),
            json!(["admin", 1]),
            json!({ "admin": true }),
        ] {
            let token = hs256(&json!({ "sub": "alice", "exp": now() + 60, "roles": bad }));
            assert_eq!(
                check(&hs_auth(), token),
                invalid("roles claim is not an array of strings")
            );
        }
    }

    #[test]
    fn name_claim_must_be_a_non_empty_string() {
        for bad in [json!({}), json!({ "sub": "" }), json!({ "sub": 42 })] {
            let mut c = bad;
            c["exp"] = json!(now() + 60);
            assert_eq!(check(&hs_auth(), hs256(&c)), invalid("no sub claim"));
        }
    }

    #[test]
    fn other_algorithms_are_refused() {
        let hs512 = sign_hmac(Algorithm::HS512, &claims("alice"), SECRET);
        assert_eq!(check(&hs_auth(), hs512), invalid("algorithm not allowed"));
        // RS256 → HS256 confusion: an HMAC keyed with the (public) PEM must not pass as RS256.
        let rs = JwtAuthenticator::rs256_pem(PUBLIC_KEY).expect("public key");
        let confused = sign_hmac(Algorithm::HS256, &claims("alice"), PUBLIC_KEY);
        assert_eq!(check(&rs, confused), invalid("algorithm not allowed"));
    }

    #[test]
    fn alg_none_token_is_refused() {
        let good = hs256(&claims("alice"));
        let payload = good.split('.').nth(1).expect("three parts");
        // {"alg":"none","typ":"JWT"} and {"alg":"none"}
        for header in ["eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", "eyJhbGciOiJub25lIn0"] {
            for signature in ["", "x"] {
                let token = format!("{header}.{payload}.{signature}");
                assert!(
                    matches!(
                        check(&hs_auth(), token.clone()),
                        Err(AuthError::InvalidToken(_))
                    ),
                    "{token}"
                );
            }
        }
    }

    #[test]
    fn rs256_good_token_verifies_with_the_public_key() {
        let rs = JwtAuthenticator::rs256_pem(PUBLIC_KEY).expect("public key");
        assert_eq!(
            check(&rs, rs256(&claims("alice"), PRIVATE_KEY)),
            Ok("alice".to_owned())
        );
    }

    #[test]
    fn rs256_token_signed_by_another_key_is_refused() {
        let rs = JwtAuthenticator::rs256_pem(PUBLIC_KEY).expect("public key");
        assert_eq!(
            check(&rs, rs256(&claims("alice"), OTHER_PRIVATE_KEY)),
            invalid("bad signature")
        );
    }

    #[test]
    fn rs256_key_must_be_a_public_key() {
        assert!(JwtAuthenticator::rs256_pem(PRIVATE_KEY).is_err());
        assert!(JwtAuthenticator::rs256_pem(b"garbage").is_err());
        assert!(JwtAuthenticator::rs256_pem(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
    }

    #[test]
    fn short_hs256_secret_is_refused() {
        assert!(JwtAuthenticator::hs256(b"too short").is_err());
        assert!(JwtAuthenticator::hs256(&[7; 32]).is_ok());
    }

    #[test]
    fn hostile_tokens_are_refused_cheaply_and_quietly() {
        let huge = "a".repeat(1 << 20);
        assert_eq!(check(&hs_auth(), huge), invalid("too long"));
        let just_too_long = format!("{}.", hs256(&claims("alice"))) + &"A".repeat(MAX_TOKEN_LEN);
        assert_eq!(check(&hs_auth(), just_too_long), invalid("too long"));

        let garbage = [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "a.b.c.d",
            "not a token",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9..",
            "eyJhbGciOiJIUzI1NiJ9.e30.",
            "é.ü.ß",
            "\u{0}\u{0}.\u{0}.\u{0}",
            "=====.=====.=====",
        ];
        for token in garbage {
            match check(&hs_auth(), token.to_owned()) {
                Err(AuthError::InvalidToken(reason)) => {
                    assert!(!reason.contains("eyJ"), "{token:?} echoed: {reason}");
                }
                other => panic!("{token:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn jwt_does_not_take_logins() {
        let login = Credentials::Login {
            login: "alice".to_owned(),
            passcode: "pw".to_owned(),
        };
        assert_eq!(hs_auth().authenticate(&login), Err(AuthError::NotSupported));
    }
}
