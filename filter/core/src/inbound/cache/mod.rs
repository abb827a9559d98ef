//! Remembering verified tokens, so a caller that reuses its token (the normal
//! service-to-service case: one token per caller for about an hour) costs a
//! hash and a lookup instead of a base64 decode, a JSON parse and an RSA check.
//!
//! - [`digest`]: the cache key (SHA-256 of the token).
//! - [`token_cache`]: the bounded per-worker map and its eviction.
//!
//! The cache lives in each worker's memory rather than in proxy-wasm shared
//! data: a shared lookup costs a hostcall, a copy and a decode on every request,
//! which is most of what a hit saves (see `docs/performance.md`).

pub mod digest;
pub mod token_cache;

pub use digest::TokenDigest;
pub use token_cache::{CacheStats, CachedToken, VerifiedTokenCache, DEFAULT_CAPACITY};
