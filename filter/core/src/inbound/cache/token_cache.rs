//! A bounded map from token digest to the result of a full verification.
//!
//! Eviction is CLOCK (second chance): a hit only sets a bit, so the hot path
//! never reorders a list, and when the cache is full the hand evicts the first
//! entry that has expired or was not used since the hand last passed it. That
//! approximates LRU at O(1) amortised cost per insertion.
//!
//! The cache is only a memo of work already done; it grants nothing by itself.
//! The engine re-checks every hit: the key that verified the signature must
//! still be in the current key set, and the claims are validated again with the
//! current time (so `exp`/`nbf` and the leeway apply exactly as on a miss).

use std::collections::HashMap;
use std::sync::Arc;

use super::digest::{BuildDigestHasher, TokenDigest, TokenKey};
use crate::claims::Claims;
use crate::keys::{KeySet, RsaPublicKey};

/// Default number of entries per worker: enough for every caller of a busy
/// service (each caller reuses one token for about an hour) at a few hundred
/// bytes per entry.
pub const DEFAULT_CAPACITY: usize = 4096;

/// What a hit gives back: everything the per-request checks need.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedToken {
    /// The claims as decoded when the token was verified.
    pub claims: Claims,
    /// The JWKS key the signature was verified with. Shared by every entry it
    /// verified, so a key costs its bytes once however many tokens it signed.
    pub key: Arc<RsaPublicKey>,
    /// `exp + leeway`, seconds: past this the entry is useless and is the
    /// first to go. (Hits re-validate the claims anyway.)
    pub usable_until: i64,
    /// The token's fingerprint for the audit record, from the digest it is
    /// kept under: a hit names its token without hashing it.
    pub fingerprint: String,
}

/// Cumulative counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub insertions: u64,
    /// Entries pushed out to make room.
    pub evictions: u64,
    /// Entries dropped because their key left the JWKS, or that failed re-validation.
    pub invalidations: u64,
}

impl CacheStats {
    /// What was counted between `before` and `self` (both cumulative).
    #[inline]
    pub fn since(self, before: CacheStats) -> CacheStats {
        CacheStats {
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
            insertions: self.insertions.saturating_sub(before.insertions),
            evictions: self.evictions.saturating_sub(before.evictions),
            invalidations: self.invalidations.saturating_sub(before.invalidations),
        }
    }
}

impl std::ops::AddAssign for CacheStats {
    fn add_assign(&mut self, more: CacheStats) {
        self.hits += more.hits;
        self.misses += more.misses;
        self.insertions += more.insertions;
        self.evictions += more.evictions;
        self.invalidations += more.invalidations;
    }
}

/// Where the engine remembers verified tokens: one worker's
/// [`VerifiedTokenCache`] (wasm), or a handle on the process-wide
/// [`super::SharedTokenCache`] (native).
pub trait TokenMemo {
    /// False when the cache is off (capacity 0): the engine then does not
    /// even hash the token.
    fn is_enabled(&self) -> bool;
    /// The entry for `token`, marking it recently used.
    fn get(&mut self, token: &TokenKey) -> Option<Arc<CachedToken>>;
    /// Drops the entry for `token` (it failed re-validation).
    fn remove(&mut self, token: &TokenKey);
    /// Remembers a token that passed signature and claim checks under `key`.
    fn insert(
        &mut self,
        token: &TokenKey,
        claims: Claims,
        key: &RsaPublicKey,
        usable_until: i64,
        now_secs: i64,
    );
}

impl TokenMemo for VerifiedTokenCache {
    fn is_enabled(&self) -> bool {
        VerifiedTokenCache::is_enabled(self)
    }

    fn get(&mut self, token: &TokenKey) -> Option<Arc<CachedToken>> {
        VerifiedTokenCache::get(self, token.digest())
    }

    fn remove(&mut self, token: &TokenKey) {
        VerifiedTokenCache::remove(self, token.digest());
    }

    fn insert(
        &mut self,
        token: &TokenKey,
        claims: Claims,
        key: &RsaPublicKey,
        usable_until: i64,
        now_secs: i64,
    ) {
        VerifiedTokenCache::insert(self, *token.digest(), claims, key, usable_until, now_secs);
    }
}

struct Slot {
    digest: TokenDigest,
    /// Handed out by reference count, so a cache shared by threads checks
    /// the claims of a hit after its lock is released.
    entry: Arc<CachedToken>,
    /// Set on every hit, cleared when the CLOCK hand passes.
    referenced: bool,
}

/// The verified-token cache of one worker. Capacity 0 disables it.
pub struct VerifiedTokenCache {
    capacity: usize,
    slots: Vec<Slot>,
    index: HashMap<TokenDigest, usize, BuildDigestHasher>,
    hand: usize,
    /// Distinct keys referenced by entries (a JWKS has a handful).
    keys: Vec<Arc<RsaPublicKey>>,
    stats: CacheStats,
}

impl std::fmt::Debug for VerifiedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokenCache")
            .field("capacity", &self.capacity)
            .field("len", &self.slots.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl VerifiedTokenCache {
    pub fn new(capacity: usize) -> VerifiedTokenCache {
        VerifiedTokenCache {
            capacity,
            // Grown on demand: an idle filter should not reserve its maximum.
            slots: Vec::new(),
            index: HashMap::with_hasher(BuildDigestHasher),
            hand: 0,
            keys: Vec::new(),
            stats: CacheStats::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The entry for `digest`, marking it recently used.
    pub fn get(&mut self, digest: &TokenDigest) -> Option<Arc<CachedToken>> {
        let slot = self
            .index
            .get(digest)
            .and_then(|&position| self.slots.get_mut(position))
            // The index and the slots always agree; an entry is still only
            // ever handed out for its own digest, whatever happened.
            .filter(|slot| slot.digest == *digest);
        let Some(slot) = slot else {
            self.stats.misses += 1;
            return None;
        };
        slot.referenced = true;
        self.stats.hits += 1;
        Some(Arc::clone(&slot.entry))
    }

    /// Remembers a token that passed signature and claim checks under `key`.
    /// `usable_until` is `exp + leeway` (seconds); `now_secs` lets eviction
    /// prefer entries that can no longer be used.
    pub fn insert(
        &mut self,
        digest: TokenDigest,
        claims: Claims,
        key: &RsaPublicKey,
        usable_until: i64,
        now_secs: i64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let entry = Arc::new(CachedToken {
            claims,
            key: self.intern(key),
            usable_until,
            fingerprint: digest.fingerprint(),
        });
        self.stats.insertions += 1;
        if let Some(slot) = self
            .index
            .get(&digest)
            .copied()
            .and_then(|position| self.slots.get_mut(position))
        {
            slot.entry = entry;
            slot.referenced = true;
            return;
        }
        let slot = Slot {
            digest,
            entry,
            referenced: false,
        };
        if self.slots.len() < self.capacity {
            self.index.insert(digest, self.slots.len());
            self.slots.push(slot);
            return;
        }
        let victim = self.pick_victim(now_secs);
        if let Some(old) = self.slots.get_mut(victim) {
            self.index.remove(&old.digest);
            *old = slot;
            self.index.insert(digest, victim);
            self.stats.evictions += 1;
        }
    }

    /// Drops the entry for `digest` (it failed re-validation).
    pub fn remove(&mut self, digest: &TokenDigest) {
        let Some(position) = self.index.remove(digest) else {
            return;
        };
        if position >= self.slots.len() {
            return;
        }
        self.slots.swap_remove(position);
        // The last slot moved into `position`: repoint its index entry.
        if let Some(moved) = self.slots.get(position) {
            self.index.insert(moved.digest, position);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
        self.stats.invalidations += 1;
    }

    /// Drops every entry verified with a key that is not in `keys` (rotation or
    /// revocation). Call whenever the key set changes. Returns how many went.
    pub fn retain_keys(&mut self, keys: &KeySet) -> usize {
        let before = self.slots.len();
        self.keys
            .retain(|key| keys.keys.iter().any(|k| k == &**key));
        let live = &self.keys;
        self.slots
            .retain(|slot| live.iter().any(|key| Arc::ptr_eq(key, &slot.entry.key)));
        let removed = before - self.slots.len();
        if removed > 0 {
            self.rebuild_index();
            self.stats.invalidations += removed as u64;
        }
        removed
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.keys.clear();
        self.hand = 0;
    }

    /// The shared copy of `key`, so entries compare keys by pointer.
    fn intern(&mut self, key: &RsaPublicKey) -> Arc<RsaPublicKey> {
        if let Some(known) = self.keys.iter().find(|known| ***known == *key) {
            return Arc::clone(known);
        }
        // Keys no entry refers to any more (evicted entries) are forgotten
        // before a new one is added, so the list stays as small as the JWKS.
        self.keys.retain(|known| Arc::strong_count(known) > 1);
        let key = Arc::new(key.clone());
        self.keys.push(Arc::clone(&key));
        key
    }

    /// CLOCK: the first slot from the hand that is expired or unreferenced;
    /// referenced slots get their bit cleared (a second chance). Terminates
    /// within one full turn plus one step, since the turn clears every bit.
    fn pick_victim(&mut self, now_secs: i64) -> usize {
        let len = self.slots.len();
        for _ in 0..=len {
            let position = self.hand;
            self.hand = (self.hand + 1) % len.max(1);
            let Some(slot) = self.slots.get_mut(position) else {
                break;
            };
            if slot.entry.usable_until < now_secs || !slot.referenced {
                return position;
            }
            slot.referenced = false;
        }
        self.hand
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        for (position, slot) in self.slots.iter().enumerate() {
            self.index.insert(slot.digest, position);
        }
        self.hand = 0;
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
pub(super) mod tests {
    use super::*;

    /// A 2048-bit-sized key whose material is `n` repeated (also used by the
    /// shared cache's tests).
    pub(in crate::inbound::cache) fn key(kid: &str, n: u8) -> RsaPublicKey {
        RsaPublicKey {
            kid: kid.to_string(),
            x5t: None,
            n: vec![n; 256],
            e: vec![1, 0, 1],
        }
    }

    pub(in crate::inbound::cache) fn claims(sub: &str) -> Claims {
        Claims {
            sub: Some(sub.to_string()),
            exp: Some(2_000),
            ..Claims::default()
        }
    }

    pub(in crate::inbound::cache) fn digest(i: usize) -> TokenDigest {
        TokenDigest::of(&format!("token-{i}"))
    }

    fn sub(cache: &mut VerifiedTokenCache, i: usize) -> Option<String> {
        cache.get(&digest(i)).and_then(|e| e.claims.sub.clone())
    }

    #[test]
    fn remembers_and_counts() {
        let mut cache = VerifiedTokenCache::new(4);
        let k = key("a", 1);
        assert_eq!(sub(&mut cache, 1), None);
        cache.insert(digest(1), claims("one"), &k, 2_300, 1_000);
        assert_eq!(sub(&mut cache, 1).as_deref(), Some("one"));
        assert_eq!(cache.get(&digest(1)).unwrap().usable_until, 2_300);
        assert_eq!(*cache.get(&digest(1)).unwrap().key, k);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.insertions), (3, 1, 1));
    }

    #[test]
    fn capacity_zero_stores_nothing() {
        let mut cache = VerifiedTokenCache::new(0);
        assert!(!cache.is_enabled());
        cache.insert(digest(1), claims("one"), &key("a", 1), 2_300, 1_000);
        assert!(cache.is_empty());
        assert_eq!(sub(&mut cache, 1), None);
    }

    #[test]
    fn never_grows_past_capacity_and_keeps_recently_used_entries() {
        let mut cache = VerifiedTokenCache::new(3);
        let k = key("a", 1);
        for i in 0..3 {
            cache.insert(digest(i), claims(&i.to_string()), &k, 2_300, 1_000);
        }
        // 0 and 2 are used again; 1 is not, so it is the one to go.
        assert!(sub(&mut cache, 0).is_some());
        assert!(sub(&mut cache, 2).is_some());
        cache.insert(digest(3), claims("3"), &k, 2_300, 1_000);
        assert_eq!(cache.len(), 3);
        assert_eq!(sub(&mut cache, 1), None);
        for i in [0, 2, 3] {
            assert_eq!(sub(&mut cache, i), Some(i.to_string()), "{i}");
        }
        // Many more insertions: still bounded, and the newest is always present.
        for i in 4..100 {
            cache.insert(digest(i), claims(&i.to_string()), &k, 2_300, 1_000);
            assert!(cache.len() <= 3);
            assert_eq!(sub(&mut cache, i), Some(i.to_string()));
        }
        assert_eq!(cache.stats().evictions, 97);
    }

    #[test]
    fn expired_entries_are_evicted_first_even_if_used() {
        let mut cache = VerifiedTokenCache::new(2);
        let k = key("a", 1);
        cache.insert(digest(0), claims("old"), &k, 1_500, 1_000);
        cache.insert(digest(1), claims("fresh"), &k, 9_000, 1_000);
        assert!(sub(&mut cache, 0).is_some());
        assert!(sub(&mut cache, 1).is_some());
        cache.insert(digest(2), claims("new"), &k, 9_000, 2_000);
        assert_eq!(sub(&mut cache, 0), None);
        assert!(sub(&mut cache, 1).is_some());
        assert!(sub(&mut cache, 2).is_some());
    }

    #[test]
    fn reinserting_replaces_the_entry() {
        let mut cache = VerifiedTokenCache::new(2);
        cache.insert(digest(0), claims("a"), &key("a", 1), 2_300, 1_000);
        cache.insert(digest(0), claims("b"), &key("b", 2), 2_300, 1_000);
        assert_eq!(cache.len(), 1);
        let entry = cache.get(&digest(0)).unwrap();
        assert_eq!(entry.claims.sub.as_deref(), Some("b"));
        assert_eq!(entry.key.kid, "b");
    }

    #[test]
    fn remove_keeps_the_index_consistent() {
        let mut cache = VerifiedTokenCache::new(8);
        let k = key("a", 1);
        for i in 0..5 {
            cache.insert(digest(i), claims(&i.to_string()), &k, 2_300, 1_000);
        }
        cache.remove(&digest(1));
        cache.remove(&digest(1));
        cache.remove(&digest(4));
        assert_eq!(cache.len(), 3);
        for i in [0, 2, 3] {
            assert_eq!(sub(&mut cache, i), Some(i.to_string()), "{i}");
        }
        assert_eq!(sub(&mut cache, 1), None);
        assert_eq!(sub(&mut cache, 4), None);
        assert_eq!(cache.stats().invalidations, 2);
    }

    #[test]
    fn entries_go_when_their_key_leaves_the_key_set() {
        let mut cache = VerifiedTokenCache::new(8);
        let (a, b) = (key("a", 1), key("b", 2));
        cache.insert(digest(0), claims("0"), &a, 2_300, 1_000);
        cache.insert(digest(1), claims("1"), &b, 2_300, 1_000);
        cache.insert(digest(2), claims("2"), &a, 2_300, 1_000);

        // Same set: nothing changes.
        let both = KeySet {
            keys: vec![b.clone(), a.clone()],
        };
        assert_eq!(cache.retain_keys(&both), 0);
        assert_eq!(cache.len(), 3);

        // `a` rotated out.
        assert_eq!(
            cache.retain_keys(&KeySet {
                keys: vec![b.clone()]
            }),
            2
        );
        assert_eq!(sub(&mut cache, 0), None);
        assert_eq!(sub(&mut cache, 2), None);
        assert_eq!(sub(&mut cache, 1).as_deref(), Some("1"));

        // Same kid, different material: also gone.
        assert_eq!(
            cache.retain_keys(&KeySet {
                keys: vec![key("b", 9)]
            }),
            1
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn keys_are_shared_between_entries() {
        let mut cache = VerifiedTokenCache::new(8);
        let a = key("a", 1);
        cache.insert(digest(0), claims("0"), &a, 2_300, 1_000);
        cache.insert(digest(1), claims("1"), &a, 2_300, 1_000);
        let first = Arc::clone(&cache.get(&digest(0)).unwrap().key);
        let second = Arc::clone(&cache.get(&digest(1)).unwrap().key);
        assert!(Arc::ptr_eq(&first, &second));
    }
}
