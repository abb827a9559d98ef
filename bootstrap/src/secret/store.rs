//! The credentials currently in use, and a single-flight re-read for when Entra rejects them.

use super::{Credentials, SecretError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Future returned by [`CredentialLoader::load`].
pub type LoadFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, SecretError>> + Send + 'a>>;

/// Something that can (re-)read the credentials: Secrets Manager in production, a stub in tests.
pub trait CredentialLoader: Send + Sync {
    fn load(&self) -> LoadFuture<'_>;
}

/// Outcome of [`CredentialStore::reload_after`].
#[derive(Debug)]
pub struct Reloaded {
    /// Generation of the credentials now current.
    pub generation: u64,
    pub credentials: Arc<Credentials>,
    /// Whether they differ from the generation the caller saw rejected.
    pub changed: bool,
}

/// A re-read that found the same secret is trusted for this long, so several scopes failing together
/// cause one Secrets Manager read, not one each.
const UNCHANGED_REUSE: Duration = Duration::from_secs(5);

/// Shared by every scope's refresher.
pub struct CredentialStore {
    current: RwLock<(u64, Arc<Credentials>)>,
    loader: Box<dyn CredentialLoader>,
    reload_lock: tokio::sync::Mutex<()>,
    last_unchanged: Mutex<Option<(u64, Instant)>>,
    reads: AtomicU64,
}

impl CredentialStore {
    pub fn new(initial: Credentials, loader: Box<dyn CredentialLoader>) -> Self {
        CredentialStore {
            current: RwLock::new((0, Arc::new(initial))),
            loader,
            reload_lock: tokio::sync::Mutex::new(()),
            last_unchanged: Mutex::new(None),
            reads: AtomicU64::new(0),
        }
    }

    /// The credentials in use and their generation (bumped whenever a re-read finds new ones).
    pub fn current(&self) -> (u64, Arc<Credentials>) {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        (guard.0, Arc::clone(&guard.1))
    }

    /// How many times the secret was re-read (for tests and status lines).
    pub fn rereads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Re-reads the secret because the credentials of `seen` were rejected. Single-flight: a task that
    /// waited while another re-read gets that result instead of reading again.
    pub async fn reload_after(&self, seen: u64) -> Result<Reloaded, SecretError> {
        let _guard = self.reload_lock.lock().await;
        let (generation, credentials) = self.current();
        if generation != seen {
            return Ok(Reloaded {
                generation,
                credentials,
                changed: true,
            });
        }
        let recent_same = {
            let last = self
                .last_unchanged
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            matches!(*last, Some((g, at)) if g == seen && at.elapsed() < UNCHANGED_REUSE)
        };
        if recent_same {
            return Ok(Reloaded {
                generation,
                credentials,
                changed: false,
            });
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let fresh = self.loader.load().await?;
        if fresh.same_as(&credentials) {
            *self
                .last_unchanged
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some((generation, Instant::now()));
            return Ok(Reloaded {
                generation,
                credentials,
                changed: false,
            });
        }
        let fresh = Arc::new(fresh);
        let next = generation.wrapping_add(1);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (next, Arc::clone(&fresh));
        Ok(Reloaded {
            generation: next,
            credentials: fresh,
            changed: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::sync::atomic::AtomicUsize;

    struct Counting {
        calls: Arc<AtomicUsize>,
        secret: &'static str,
    }

    impl CredentialLoader for Counting {
        fn load(&self) -> LoadFuture<'_> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let secret = self.secret;
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Credentials::new(
                    "c".into(),
                    "t".into(),
                    SecretString::from(secret),
                ))
            })
        }
    }

    fn store(new_secret: &'static str) -> (Arc<CredentialStore>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let loader = Counting {
            calls: Arc::clone(&calls),
            secret: new_secret,
        };
        let initial = Credentials::new("c".into(), "t".into(), SecretString::from("old"));
        (
            Arc::new(CredentialStore::new(initial, Box::new(loader))),
            calls,
        )
    }

    #[tokio::test]
    async fn concurrent_rereads_read_once_when_rotated() {
        let (s, calls) = store("new");
        let (a, b) = tokio::join!(s.reload_after(0), s.reload_after(0));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.changed && b.changed);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(s.current().0, 1);
        assert_eq!(s.current().1.client_secret(), "new");
    }

    #[tokio::test]
    async fn unchanged_secret_is_reported_and_not_reread_immediately() {
        let (s, calls) = store("old");
        let (a, b) = tokio::join!(s.reload_after(0), s.reload_after(0));
        assert!(!a.unwrap().changed && !b.unwrap().changed);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(s.current().0, 0);
    }
}
