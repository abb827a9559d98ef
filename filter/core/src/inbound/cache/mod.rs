//! Remembering verified tokens, so a caller that reuses its token (the normal
//! service-to-service case: one token per caller for about an hour) costs a
//! hash and a lookup instead of a base64 decode, a JSON parse and an RSA check.
//!
//! - [`digest`]: the cache key (SHA-256 of the token).
//! - [`token_cache`]: the bounded per-worker map and its eviction, and
//!   [`TokenMemo`], what the engine needs of a cache.
//! - [`shared`]: the same map sharded behind locks, one per process, for hosts
//!   whose workers share memory (the native module).
//! - [`recent`]: a worker's last few hits in front of the shared map,
//!   recognised by the token itself (no hash, no lock).
//!
//! The cache lives in each worker's memory rather than in proxy-wasm shared
//! data: a shared lookup costs a hostcall, a copy and a decode on every request,
//! which is most of what a hit saves (see `docs/performance.md`).

pub mod digest;
pub mod recent;
pub mod shared;
pub mod token_cache;

pub use digest::{TokenDigest, TokenKey};
pub use recent::RecentTokens;
pub use shared::{SharedCacheHandle, SharedTokenCache};
pub use token_cache::{CacheStats, CachedToken, TokenMemo, VerifiedTokenCache, DEFAULT_CAPACITY};
