//! One verified-token cache for a whole process (the native host's workers),
//! instead of one per worker: a token verified on one worker is a hit on
//! every other, and the memory is paid once per Envoy.
//!
//! The cache is split into shards, each a [`VerifiedTokenCache`] behind its
//! own lock, chosen by the token digest: workers looking up different tokens
//! rarely meet on a lock, and every critical section is one map operation
//! (the entry is handed out as an `Arc`, so no claim is checked under a lock).
//! Eviction, expiry and the key rules are the per-worker cache's, per shard.

use std::sync::{Arc, Mutex, MutexGuard};

use super::digest::{TokenDigest, TokenKey};
use super::recent::RecentTokens;
use super::token_cache::{CacheStats, CachedToken, TokenMemo, VerifiedTokenCache};
use crate::claims::Claims;
use crate::keys::{KeySet, RsaPublicKey};

/// Shards: a power of two, a few times the worker count of a large sidecar.
const SHARDS: usize = 16;

/// A process-wide verified-token cache, shared by reference between threads.
pub struct SharedTokenCache {
    shards: [Mutex<VerifiedTokenCache>; SHARDS],
    capacity: usize,
}

impl std::fmt::Debug for SharedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokenCache")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl SharedTokenCache {
    /// `capacity` entries in all (rounded up to a multiple of the shard
    /// count); 0 disables the cache.
    pub fn new(capacity: usize) -> SharedTokenCache {
        let per_shard = capacity.div_ceil(SHARDS);
        SharedTokenCache {
            shards: std::array::from_fn(|_| Mutex::new(VerifiedTokenCache::new(per_shard))),
            capacity: per_shard * SHARDS,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held, over every shard.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A view for one request (or one thread): it counts what its own
    /// lookups did, so each worker reports its own deltas.
    pub fn handle(&self) -> SharedCacheHandle<'_> {
        SharedCacheHandle {
            cache: self,
            recent: None,
            stats: CacheStats::default(),
        }
    }

    /// [`SharedTokenCache::handle`] with this worker's recent tokens in
    /// front: a token among them is a hit without hashing or locking.
    pub fn handle_with<'a>(&'a self, recent: &'a mut RecentTokens) -> SharedCacheHandle<'a> {
        SharedCacheHandle {
            cache: self,
            recent: Some(recent),
            stats: CacheStats::default(),
        }
    }

    /// Drops every entry verified with a key no longer in `keys`: called when
    /// the key set changes, so a rotated-out key takes its tokens with it.
    pub fn retain_keys(&self, keys: &KeySet) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).retain_keys(keys))
            .sum()
    }

    fn shard(&self, digest: &TokenDigest) -> Option<&Mutex<VerifiedTokenCache>> {
        // The digest is uniform: its last byte picks the shard (its first
        // bytes are each shard's map hash; reusing them here would give every
        // shard's map correlated hashes).
        self.shards.get(usize::from(digest.as_bytes()[31]) % SHARDS)
    }
}

/// Locks a shard. A panic while a shard was locked (caught at the host's hook)
/// may have left it half-updated; it is emptied rather than trusted: a memo
/// can always be rebuilt, a wrong entry could not be taken back.
fn lock(shard: &Mutex<VerifiedTokenCache>) -> MutexGuard<'_, VerifiedTokenCache> {
    match shard.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.clear();
            shard.clear_poison();
            guard
        }
    }
}

/// One worker's access to a [`SharedTokenCache`], counting its own hits,
/// misses, insertions, evictions and invalidations.
pub struct SharedCacheHandle<'a> {
    cache: &'a SharedTokenCache,
    recent: Option<&'a mut RecentTokens>,
    stats: CacheStats,
}

impl SharedCacheHandle<'_> {
    /// What this handle's operations did, since it was made.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Runs `operation` on the digest's shard and adds what it changed in the
    /// shard's counters to this handle's. (`None` only if there were no such
    /// shard, which the modulo rules out: then nothing is remembered.)
    fn on_shard<T>(
        &mut self,
        digest: &TokenDigest,
        operation: impl FnOnce(&mut VerifiedTokenCache) -> T,
    ) -> Option<T> {
        let mut shard = lock(self.cache.shard(digest)?);
        let before = shard.stats();
        let result = operation(&mut shard);
        self.stats += shard.stats().since(before);
        Some(result)
    }
}

impl TokenMemo for SharedCacheHandle<'_> {
    fn is_enabled(&self) -> bool {
        self.cache.capacity > 0
    }

    fn get(&mut self, token: &TokenKey) -> Option<Arc<CachedToken>> {
        let presented = token.token();
        if let (Some(recent), Some(presented)) = (self.recent.as_deref(), presented) {
            if let Some(entry) = recent.find(presented) {
                self.stats.hits += 1;
                return Some(entry);
            }
        }
        let digest = token.digest();
        let entry = self.on_shard(digest, |shard| shard.get(digest)).flatten()?;
        if let (Some(recent), Some(presented)) = (self.recent.as_deref_mut(), presented) {
            recent.remember(presented, &entry);
        }
        Some(entry)
    }

    fn remove(&mut self, token: &TokenKey) {
        if let (Some(recent), Some(presented)) = (self.recent.as_deref_mut(), token.token()) {
            recent.forget(presented);
        }
        let digest = token.digest();
        self.on_shard(digest, |shard| shard.remove(digest));
    }

    fn insert(
        &mut self,
        token: &TokenKey,
        claims: Claims,
        key: &RsaPublicKey,
        usable_until: i64,
        now_secs: i64,
    ) {
        let digest = *token.digest();
        self.on_shard(&digest, |shard| {
            shard.insert(digest, claims, key, usable_until, now_secs)
        });
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::super::token_cache::tests::{claims, digest, key};
    use super::*;

    // Threads (and unwinding) are not available in wasm32-wasip1, where the
    // core's tests also run; only the native host shares this cache anyway.
    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn a_token_verified_on_one_thread_is_a_hit_on_another() {
        let cache = SharedTokenCache::new(64);
        let k = key("a", 1);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut handle = cache.handle();
                handle.insert(&digest(1).into(), claims("one"), &k, 2_300, 1_000);
                assert_eq!(handle.stats().insertions, 1);
            });
        });
        let found = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut handle = cache.handle();
                    let entry = handle.get(&digest(1).into()).map(|e| e.claims.sub.clone());
                    (entry, handle.stats())
                })
                .join()
                .unwrap()
        });
        assert_eq!(found.0, Some(Some("one".to_string())));
        assert_eq!(
            (found.1.hits, found.1.misses, found.1.insertions),
            (1, 0, 0)
        );
    }

    #[test]
    fn a_workers_recent_token_is_a_hit_without_hash_or_lock() {
        let cache = SharedTokenCache::new(64);
        let k = key("a", 1);
        cache
            .handle()
            .insert(&TokenKey::new("t.o.k"), claims("one"), &k, 2_300, 1_000);
        let mut recent = RecentTokens::new();
        // First lookup: from the shard (hashed), then remembered.
        let first = TokenKey::new("t.o.k");
        assert!(cache.handle_with(&mut recent).get(&first).is_some());
        assert!(first.is_hashed());
        assert_eq!(recent.len(), 1);
        // Second: recognised by its bytes, counted as a hit, never hashed.
        let second = TokenKey::new("t.o.k");
        let mut handle = cache.handle_with(&mut recent);
        let hit = handle.get(&second).and_then(|e| e.claims.sub.clone());
        assert_eq!(hit.as_deref(), Some("one"));
        assert!(!second.is_hashed());
        assert_eq!((handle.stats().hits, handle.stats().misses), (1, 0));
        // A different token is never answered from it.
        assert!(handle.get(&TokenKey::new("t.o.x")).is_none());
        // Removal (failed re-validation) forgets it in both places.
        handle.remove(&second);
        assert!(handle.get(&TokenKey::new("t.o.k")).is_none());
        assert!(recent.is_empty());
    }

    #[test]
    fn capacity_is_shared_out_and_bounded() {
        let cache = SharedTokenCache::new(40);
        assert_eq!(cache.capacity(), 48); // 16 shards of 3
        let k = key("a", 1);
        let mut handle = cache.handle();
        for i in 0..1_000 {
            handle.insert(&digest(i).into(), claims("x"), &k, 2_300, 1_000);
        }
        assert!(cache.len() <= cache.capacity());
        assert!(handle.stats().evictions >= 1_000 - 48);
    }

    #[test]
    fn capacity_zero_disables() {
        let cache = SharedTokenCache::new(0);
        let mut handle = cache.handle();
        assert!(!handle.is_enabled());
        handle.insert(&digest(1).into(), claims("one"), &key("a", 1), 2_300, 1_000);
        assert!(handle.get(&digest(1).into()).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_rotated_out_key_takes_its_tokens_from_every_shard() {
        let cache = SharedTokenCache::new(256);
        let (old, new) = (key("old", 1), key("new", 2));
        let mut handle = cache.handle();
        for i in 0..100 {
            let k = if i % 2 == 0 { &old } else { &new };
            handle.insert(&digest(i).into(), claims("x"), k, 2_300, 1_000);
        }
        let removed = cache.retain_keys(&KeySet {
            keys: vec![new.clone()],
        });
        assert_eq!(removed, 50);
        assert!(handle.get(&digest(0).into()).is_none());
        assert!(handle.get(&digest(1).into()).is_some());
    }

    // Threads (and unwinding) are not available in wasm32-wasip1, where the
    // core's tests also run; only the native host shares this cache anyway.
    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn a_shard_poisoned_by_a_panic_is_emptied_not_trusted() {
        let cache = SharedTokenCache::new(64);
        let k = key("a", 1);
        cache
            .handle()
            .insert(&digest(1).into(), claims("one"), &k, 2_300, 1_000);
        let shard = cache.shard(&digest(1)).unwrap();
        let _ = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _guard = shard.lock().unwrap();
                    panic!("deliberate: poison the shard");
                })
                .join()
        });
        assert!(shard.is_poisoned());
        assert!(cache.handle().get(&digest(1).into()).is_none());
        assert!(!shard.is_poisoned());
    }

    /// `cargo test -p entragate-core --release --lib -- --ignored --nocapture shared_cache_bench`:
    /// a hit in one worker's cache against a hit in the shared cache, alone
    /// and with two threads hitting the same token (one shard, contended).
    #[test]
    #[ignore = "benchmark: prints numbers, asserts nothing about speed"]
    fn shared_cache_bench() {
        use std::time::Instant;
        const HITS: u32 = 2_000_000;
        let k = key("a", 1);
        let mut own = VerifiedTokenCache::new(4096);
        own.insert(digest(1), claims("one"), &k, 2_300, 1_000);
        let shared = SharedTokenCache::new(4096);
        shared
            .handle()
            .insert(&digest(1).into(), claims("one"), &k, 2_300, 1_000);
        let d = TokenKey::from(digest(1));
        let time = |f: &mut dyn FnMut()| {
            let start = Instant::now();
            for _ in 0..HITS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(HITS)
        };
        let per_worker = time(&mut || assert!(TokenMemo::get(&mut own, &d).is_some()));
        let alone = time(&mut || assert!(shared.handle().get(&d).is_some()));
        let contended = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let d = TokenKey::from(digest(1));
                        time(&mut || assert!(shared.handle().get(&d).is_some()))
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).sum::<f64>() / 2.0
        });
        println!(
            "cache hit: per-worker {per_worker:.1} ns; shared {alone:.1} ns alone, {contended:.1} ns with 2 threads on one token"
        );
    }
}
