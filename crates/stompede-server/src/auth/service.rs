//! The async front of authentication: bounded, off the async workers, with the anonymous policy.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{AuthError, Authenticator, Credentials, Principal};

/// What sessions call to authenticate. Cheap to clone.
///
/// Verifications run on tokio's blocking pool, at most `max_concurrent` at once (default: the
/// available parallelism); further requests wait their turn. A flood of `CONNECT` frames thus
/// costs at most that many cores and that many argon2 memory blocks (19 MiB each by default),
/// never the async workers; the waiting requests are bounded by the connection limit.
#[derive(Clone)]
pub struct AuthService {
    authenticator: Option<Arc<dyn Authenticator>>,
    anonymous: bool,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
}

impl AuthService {
    /// A service asking `authenticator` (`None`: no authentication configured); `anonymous`
    /// says whether sessions without credentials are allowed.
    pub fn new(authenticator: Option<Arc<dyn Authenticator>>, anonymous: bool) -> Self {
        let max_concurrent = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        AuthService {
            authenticator,
            anonymous,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
        }
    }

    /// Allows at most `max` verifications at once.
    #[must_use]
    pub fn with_max_concurrent(mut self, max: NonZeroUsize) -> Self {
        self.max_concurrent = max.get();
        self.permits = Arc::new(Semaphore::new(self.max_concurrent));
        self
    }

    /// Whether sessions without credentials are allowed.
    pub fn allows_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Whether an authenticator is configured. Without one, presented credentials are ignored.
    pub fn has_authenticator(&self) -> bool {
        self.authenticator.is_some()
    }

    /// Most verifications run at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// Who presented `credentials`.
    ///
    /// - `None`: `Ok(None)` (an anonymous session) if allowed.
    /// - `Some` with no authenticator configured: treated as `None`. STOMP clients often send
    ///   `login`/`passcode` whatever the server does (STOMP 1.2 lets a server ignore them).
    /// - `Some` otherwise: the authenticator's answer. Credentials that it does not take are
    ///   refused with [`AuthError::NotSupported`], even when anonymous sessions are allowed: a
    ///   client that presented credentials expects to be someone. A caller that prefers
    ///   anonymous then may call again with `None`.
    ///
    /// # Errors
    /// [`AuthError::Required`] for no credentials when anonymous sessions are not allowed;
    /// the authenticator's refusal; [`AuthError::Unavailable`] if it panicked.
    pub async fn authenticate(
        &self,
        credentials: Option<Credentials>,
    ) -> Result<Option<Principal>, AuthError> {
        let (Some(credentials), Some(authenticator)) = (credentials, &self.authenticator) else {
            return if self.anonymous {
                Ok(None)
            } else {
                Err(AuthError::Required)
            };
        };
        // The semaphore is never closed; if it were, refusing is the safe answer.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Unavailable)?;
        let authenticator = Arc::clone(authenticator);
        // If the caller goes away meanwhile the check still runs to its end, permit held, so
        // dropped requests cannot push the work past the limit.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            authenticator.authenticate(&credentials)
        })
        .await
        .map_err(|e| {
            tracing::error!(cause = %e, "authenticator failed");
            AuthError::Unavailable
        })?
        .map(Some)
    }
}

impl fmt::Debug for AuthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("authenticator", &self.authenticator.is_some())
            .field("anonymous", &self.anonymous)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn login() -> Credentials {
        Credentials::Login {
            login: "alice".to_owned(),
            passcode: "pw".to_owned(),
        }
    }

    fn alice() -> Principal {
        Principal {
            name: "alice".to_owned(),
            roles: Vec::new(),
            expires_at: None,
        }
    }

    fn accept_all() -> Arc<dyn Authenticator> {
        Arc::new(|_: &Credentials| Ok(alice()))
    }

    #[tokio::test]
    async fn no_credentials_is_anonymous_only_when_allowed() {
        let open = AuthService::new(Some(accept_all()), true);
        assert_eq!(open.authenticate(None).await, Ok(None));
        let closed = AuthService::new(Some(accept_all()), false);
        assert_eq!(closed.authenticate(None).await, Err(AuthError::Required));
    }

    #[tokio::test]
    async fn credentials_go_to_the_authenticator() {
        let service = AuthService::new(Some(accept_all()), true);
        assert_eq!(service.authenticate(Some(login())).await, Ok(Some(alice())));
        let refuse: Arc<dyn Authenticator> =
            Arc::new(|_: &Credentials| Err(AuthError::BadCredentials));
        let service = AuthService::new(Some(refuse), true);
        assert_eq!(
            service.authenticate(Some(login())).await,
            Err(AuthError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn credentials_are_ignored_without_an_authenticator() {
        let open = AuthService::new(None, true);
        assert_eq!(open.authenticate(Some(login())).await, Ok(None));
        let closed = AuthService::new(None, false);
        assert_eq!(
            closed.authenticate(Some(login())).await,
            Err(AuthError::Required)
        );
    }

    #[tokio::test]
    async fn unsupported_credentials_are_refused_even_when_anonymous_is_allowed() {
        let logins_only: Arc<dyn Authenticator> = Arc::new(|c: &Credentials| match c {
            Credentials::Login { .. } => Ok(alice()),
            Credentials::Token(_) => Err(AuthError::NotSupported),
        });
        let service = AuthService::new(Some(logins_only), true);
        assert_eq!(
            service
                .authenticate(Some(Credentials::Token("t".to_owned())))
                .await,
            Err(AuthError::NotSupported)
        );
    }

    #[tokio::test]
    async fn a_panicking_authenticator_is_unavailable_not_fatal() {
        let panics: Arc<dyn Authenticator> =
            Arc::new(|_: &Credentials| -> Result<Principal, AuthError> { panic!("bug") });
        let service = AuthService::new(Some(panics), false).with_max_concurrent(NonZeroUsize::MIN);
        assert_eq!(
            service.authenticate(Some(login())).await,
            Err(AuthError::Unavailable)
        );
        // The permit came back: the next request is not stuck.
        assert_eq!(
            service.authenticate(Some(login())).await,
            Err(AuthError::Unavailable)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_concurrent_verifications_run_at_once() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (r, p) = (Arc::clone(&running), Arc::clone(&peak));
        let slow: Arc<dyn Authenticator> = Arc::new(move |_: &Credentials| {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            // Blocking on purpose: this stands for argon2 on a blocking-pool thread.
            std::thread::sleep(Duration::from_millis(20));
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(alice())
        });
        let max = NonZeroUsize::new(2).expect("non-zero");
        let service = AuthService::new(Some(slow), false).with_max_concurrent(max);
        assert_eq!(service.max_concurrent(), 2);
        let requests: Vec<_> = (0..8)
            .map(|_| {
                let service = service.clone();
                tokio::spawn(async move { service.authenticate(Some(login())).await })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.expect("task"), Ok(Some(alice())));
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=2).contains(&peak), "peak {peak}");
    }
}
