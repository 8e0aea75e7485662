//! Users from the config: a name, an argon2 password hash (PHC string) and roles.

use std::collections::HashMap;
use std::fmt;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use password_hash::rand_core::OsRng;
use password_hash::SaltString;

use super::{AuthError, Authenticator, Credentials, Principal, SetupError, UserConfig};

/// Hashes `password` with argon2id and the crate's default parameters (19 MiB, 2 passes,
/// 1 lane: OWASP's first recommendation) and a random salt; returns the PHC string that
/// `[[auth.users]] password` takes (`$argon2id$v=19$m=19456,t=2,p=1$...`).
///
/// # Errors
/// [`SetupError::Hash`] if the system's random source fails.
pub fn hash_password(password: &str) -> Result<String, SetupError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| SetupError::Hash(e.to_string()))
}

/// One configured user, its hash checked at start-up.
struct User {
    hash: String,
    roles: Vec<String>,
}

/// Users from the config: a login name, an argon2 PHC hash, roles. Takes
/// [`Credentials::Login`] only.
///
/// An unknown user is verified against a dummy hash (with the first user's parameters) before
/// being refused, so the time an answer takes does not tell unknown users from wrong
/// passwords; both get [`AuthError::BadCredentials`].
pub struct ConfigUsers {
    users: HashMap<String, User>,
    dummy_hash: String,
}

impl ConfigUsers {
    /// Checks every hash and computes the dummy hash (one argon2 run).
    ///
    /// # Errors
    /// A hash that is not an argon2 PHC string with valid parameters, an empty or duplicate
    /// name.
    pub fn new(users: &[UserConfig]) -> Result<Self, SetupError> {
        let mut map = HashMap::with_capacity(users.len());
        let mut hasher = None;
        for user in users {
            if user.name.is_empty() {
                return Err(SetupError::EmptyUserName);
            }
            let parsed = parse_hash(&user.name, &user.password)?;
            if hasher.is_none() {
                hasher = Some(parsed);
            }
            let stored = User {
                hash: user.password.clone(),
                roles: user.roles.clone(),
            };
            if map.insert(user.name.clone(), stored).is_some() {
                return Err(SetupError::DuplicateUser(user.name.clone()));
            }
        }
        let hasher = hasher.unwrap_or_default();
        let dummy_hash = hasher
            .hash_password(b"no such user", &SaltString::generate(&mut OsRng))
            .map_err(|e| SetupError::Hash(e.to_string()))?
            .to_string();
        Ok(ConfigUsers {
            users: map,
            dummy_hash,
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (every login is refused).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Checks that `hash` is an argon2 PHC string whose parameters argon2 accepts; returns a
/// hasher with those parameters.
fn parse_hash(user: &str, hash: &str) -> Result<Argon2<'static>, SetupError> {
    let invalid = |reason: String| SetupError::InvalidHash {
        user: user.to_owned(),
        reason,
    };
    let parsed = PasswordHash::new(hash).map_err(|e| invalid(e.to_string()))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| invalid(e.to_string()))?;
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .map_err(|e| invalid(e.to_string()))?;
    let params = Params::try_from(&parsed).map_err(|e| invalid(e.to_string()))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(invalid("no salt or no hash".to_owned()));
    }
    Ok(Argon2::new(algorithm, version, params))
}

/// Whether `password` matches the PHC string `hash` (constant-time comparison of the outputs).
fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Authenticator for ConfigUsers {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        let Credentials::Login { login, passcode } = credentials else {
            return Err(AuthError::NotSupported);
        };
        match self.users.get(login) {
            Some(user) if verify(&user.hash, passcode) => Ok(Principal {
                name: login.clone(),
                roles: user.roles.clone(),
                expires_at: None,
            }),
            Some(_) => Err(AuthError::BadCredentials),
            None => {
                // Spend the time a known user costs: the answer must not reveal who exists.
                let _ = verify(&self.dummy_hash, passcode);
                Err(AuthError::BadCredentials)
            }
        }
    }
}

impl fmt::Debug for ConfigUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.users.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("ConfigUsers")
            .field("names", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn user(name: &str, password: &str, roles: &[&str]) -> UserConfig {
        UserConfig {
            name: name.to_owned(),
            password: hash_password(password).expect("hashing"),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn login(login: &str, passcode: &str) -> Credentials {
        Credentials::Login {
            login: login.to_owned(),
            passcode: passcode.to_owned(),
        }
    }

    fn alice_and_bob() -> ConfigUsers {
        ConfigUsers::new(&[
            user("alice", "correct horse", &["admin", "chat"]),
            user("bob", "battery staple", &[]),
        ])
        .expect("valid users")
    }

    #[test]
    fn hash_password_makes_an_argon2id_phc_string_with_a_fresh_salt() {
        let a = hash_password("pw").expect("hash");
        let b = hash_password("pw").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(verify(&a, "pw"));
        assert!(!verify(&a, "pw "));
    }

    #[test]
    fn good_password_gives_the_user_and_roles() {
        let users = alice_and_bob();
        let alice = users
            .authenticate(&login("alice", "correct horse"))
            .expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.roles, ["admin", "chat"]);
        assert_eq!(alice.expires_at, None);
        let bob = users
            .authenticate(&login("bob", "battery staple"))
            .expect("bob");
        assert!(bob.roles.is_empty());
    }

    #[test]
    fn wrong_password_and_unknown_user_get_the_same_error() {
        let users = alice_and_bob();
        let wrong = users.authenticate(&login("alice", "battery staple"));
        let unknown = users.authenticate(&login("mallory", "correct horse"));
        let empty = users.authenticate(&login("", ""));
        assert_eq!(wrong, Err(AuthError::BadCredentials));
        assert_eq!(unknown, Err(AuthError::BadCredentials));
        assert_eq!(empty, Err(AuthError::BadCredentials));
    }

    #[test]
    fn unknown_user_costs_a_hash_verification() {
        let users = alice_and_bob();
        let time = |c: Credentials| {
            let start = Instant::now();
            let _ = users.authenticate(&c);
            start.elapsed()
        };
        // Warm up, then compare: an unknown user that returned at once would take microseconds.
        let _ = time(login("alice", "x"));
        let known = time(login("alice", "x"));
        let unknown = time(login("mallory", "x"));
        assert!(
            unknown * 4 > known && unknown > Duration::from_micros(500),
            "known {known:?}, unknown {unknown:?}"
        );
    }

    #[test]
    fn tokens_are_not_supported() {
        assert_eq!(
            alice_and_bob().authenticate(&Credentials::Token("x".to_owned())),
            Err(AuthError::NotSupported)
        );
    }

    #[test]
    fn hostile_passcode_is_just_wrong() {
        let users = alice_and_bob();
        let huge = "\u{0}é".repeat(512 * 1024);
        assert_eq!(
            users.authenticate(&login("alice", &huge)),
            Err(AuthError::BadCredentials)
        );
        assert_eq!(
            users.authenticate(&login(&huge, "x")),
            Err(AuthError::BadCredentials)
        );
    }

    #[test]
    fn cheap_parameters_from_the_config_are_honoured() {
        // A hash made elsewhere with other parameters (argon2i, m=8 KiB, t=1) still verifies.
        let params = Params::new(8, 1, 1, None).expect("params");
        let hash = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"pw", &SaltString::generate(&mut OsRng))
            .expect("hash")
            .to_string();
        let users = ConfigUsers::new(&[UserConfig {
            name: "carol".to_owned(),
            password: hash,
            roles: Vec::new(),
        }])
        .expect("valid");
        assert!(users.authenticate(&login("carol", "pw")).is_ok());
        assert_eq!(
            users.authenticate(&login("carol", "pw2")),
            Err(AuthError::BadCredentials)
        );
    }

    #[test]
    fn bad_hashes_and_names_are_refused_at_start_up() {
        let with = |name: &str, password: &str| {
            ConfigUsers::new(&[UserConfig {
                name: name.to_owned(),
                password: password.to_owned(),
                roles: Vec::new(),
            }])
        };
        for bad in [
            "hunter2",
            "",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=1,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(
                matches!(with("dave", bad), Err(SetupError::InvalidHash { .. })),
                "{bad:?} accepted"
            );
        }
        let good = hash_password("pw").expect("hash");
        assert_eq!(with("", &good).err(), Some(SetupError::EmptyUserName));
        let twice = ConfigUsers::new(&[
            UserConfig {
                name: "eve".to_owned(),
                password: good.clone(),
                roles: Vec::new(),
            },
            UserConfig {
                name: "eve".to_owned(),
                password: good,
                roles: Vec::new(),
            },
        ]);
        assert_eq!(
            twice.err(),
            Some(SetupError::DuplicateUser("eve".to_owned()))
        );
    }
}
