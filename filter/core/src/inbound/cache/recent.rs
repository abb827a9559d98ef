//! A worker's last few cache hits, recognised by the token itself, in front of
//! the process-wide [`super::SharedTokenCache`].
//!
//! A service-to-service caller sends the same token for about an hour, so a
//! worker sees the same few tokens over and over. Recognising them by their
//! bytes skips the SHA-256 of the token (~0.6 µs for an Entra token, the
//! largest single cost of a hot request in the module) and the shard lock
//! other workers contend for.
//!
//! Security:
//! - Only an entry the shared cache handed out is remembered, so this grants
//!   nothing the shared cache would not; the engine re-checks every hit (key
//!   still published, claims still valid now) exactly as for a shared hit.
//! - The token bytes are compared in constant time for a given length: an
//!   early-exit comparison against a valid token held here would tell a
//!   remote prober how many leading bytes of a guess were right.
//! - It holds the raw token (as Envoy's `jwt_authn` cache keys on it), only
//!   for [`RECENT_SLOTS`] tokens per worker, and never prints it.
//! - Each entry is the worker's own copy, so a hit touches no memory another
//!   worker writes (an `Arc` shared by two workers bounces its count between
//!   their cores on every hit).

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::token_cache::CachedToken;

/// Tokens remembered per worker: the callers a sidecar serves at once are
/// few; a miss here only costs the shared lookup it would have made anyway.
pub const RECENT_SLOTS: usize = 4;

struct Recent {
    token: Box<str>,
    entry: Arc<CachedToken>,
}

/// One worker's recent hits (see the module documentation).
#[derive(Default)]
pub struct RecentTokens {
    slots: Vec<Recent>,
    /// The slot to overwrite next once all are taken (round robin).
    next: usize,
}

impl std::fmt::Debug for RecentTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentTokens")
            .field("len", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl RecentTokens {
    pub fn new() -> RecentTokens {
        RecentTokens::default()
    }

    /// The remembered entry for exactly this token.
    pub fn find(&self, token: &str) -> Option<Arc<CachedToken>> {
        self.slots
            .iter()
            .find(|slot| same_bytes(&slot.token, token))
            .map(|slot| Arc::clone(&slot.entry))
    }

    /// Remembers `entry` (a shared-cache hit) for `token`, as this worker's
    /// own copy.
    pub fn remember(&mut self, token: &str, entry: &CachedToken) {
        let recent = Recent {
            token: token.into(),
            entry: Arc::new(entry.clone()),
        };
        if self.slots.len() < RECENT_SLOTS {
            self.slots.push(recent);
        } else if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = recent;
            self.next = (self.next + 1) % RECENT_SLOTS;
        }
    }

    /// Forgets `token` (it failed re-validation).
    pub fn forget(&mut self, token: &str) {
        self.slots.retain(|slot| !same_bytes(&slot.token, token));
        self.next = 0;
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Equal bytes, in time that depends only on the lengths (see the module
/// documentation). Lengths are not secret: an Entra token's length follows
/// from its claims, which any caller of the same app sees in its own.
fn same_bytes(held: &str, presented: &str) -> bool {
    held.as_bytes().ct_eq(presented.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::super::token_cache::tests::{claims, key};
    use super::*;

    fn entry(sub: &str) -> CachedToken {
        CachedToken {
            claims: claims(sub),
            key: Arc::new(key("a", 1)),
            usable_until: 2_300,
            fingerprint: "0123456789ab".into(),
        }
    }

    fn sub(recent: &RecentTokens, token: &str) -> Option<String> {
        recent.find(token).and_then(|e| e.claims.sub.clone())
    }

    #[test]
    fn finds_only_the_exact_token() {
        let mut recent = RecentTokens::new();
        recent.remember("aaa.bbb.ccc", &entry("one"));
        assert_eq!(sub(&recent, "aaa.bbb.ccc").as_deref(), Some("one"));
        for other in [
            "aaa.bbb.ccd",
            "aaa.bbb.cc",
            "aaa.bbb.cccc",
            "",
            "AAA.BBB.CCC",
        ] {
            assert!(recent.find(other).is_none(), "{other}");
        }
    }

    #[test]
    fn holds_a_bounded_number_and_replaces_round_robin() {
        let mut recent = RecentTokens::new();
        for i in 0..RECENT_SLOTS + 2 {
            recent.remember(&format!("token-{i}"), &entry(&i.to_string()));
        }
        assert_eq!(recent.len(), RECENT_SLOTS);
        // The two oldest went; the newest are all there.
        assert!(recent.find("token-0").is_none());
        assert!(recent.find("token-1").is_none());
        for i in 2..RECENT_SLOTS + 2 {
            assert_eq!(sub(&recent, &format!("token-{i}")), Some(i.to_string()));
        }
    }

    #[test]
    fn forgets_a_token_that_failed_revalidation() {
        let mut recent = RecentTokens::new();
        recent.remember("t1", &entry("one"));
        recent.remember("t2", &entry("two"));
        recent.forget("t1");
        assert!(recent.find("t1").is_none());
        assert_eq!(sub(&recent, "t2").as_deref(), Some("two"));
    }

    #[test]
    fn a_hit_is_this_workers_own_copy() {
        let shared = Arc::new(entry("one"));
        let mut recent = RecentTokens::new();
        recent.remember("t", &shared);
        let hit = recent.find("t");
        assert!(hit.as_ref().is_some_and(|hit| !Arc::ptr_eq(hit, &shared)));
        assert_eq!(
            Arc::strong_count(&shared),
            1,
            "the shared entry's count is untouched"
        );
        assert_eq!(hit.map(|h| (*h).clone()), Some((*shared).clone()));
    }
}
