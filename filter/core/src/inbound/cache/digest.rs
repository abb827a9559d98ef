//! The cache key: SHA-256 of the token as received.
//!
//! Hashing the whole compact JWS binds the key to every byte the signature and
//! the claims came from, so two different tokens can never share an entry
//! (short of a SHA-256 collision), and the shared cache never holds the bearer
//! token itself (a worker's few recent tokens do: [`super::recent`]). The digest is already uniformly distributed, so the hash map uses
//! its first eight bytes directly instead of hashing it a second time.

use std::cell::OnceCell;
use std::hash::{BuildHasher, Hash, Hasher};

use sha2::{Digest, Sha256};

/// SHA-256 of a compact JWS.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The token's [`crate::fingerprint::fingerprint`], from this digest.
    pub fn fingerprint(&self) -> String {
        crate::fingerprint::fingerprint_of_sha256(&self.0)
    }

    /// The first eight bytes, as the map's hash.
    fn prefix(&self) -> u64 {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(self.0.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(prefix)
    }
}

/// Never prints the digest: even a hash of a bearer token stays out of debug output.
impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// A presented token as a cache key. Its SHA-256 is computed on first use
/// only: a memo that recognises the token itself (a worker's
/// [`super::RecentTokens`]) answers without hashing it, which is most of
/// what a hot request costs the module.
pub struct TokenKey<'a> {
    /// `None` for a key known only by its digest.
    token: Option<&'a str>,
    digest: OnceCell<TokenDigest>,
}

impl<'a> TokenKey<'a> {
    pub fn new(token: &'a str) -> TokenKey<'a> {
        TokenKey {
            token: Some(token),
            digest: OnceCell::new(),
        }
    }

    /// The token itself, if the key was made from one.
    pub fn token(&self) -> Option<&'a str> {
        self.token
    }

    pub fn digest(&self) -> &TokenDigest {
        self.digest
            .get_or_init(|| TokenDigest::of(self.token.unwrap_or_default()))
    }

    /// Whether the digest was computed (for tests of the paths that avoid it).
    pub fn is_hashed(&self) -> bool {
        self.digest.get().is_some()
    }
}

/// A key known only by its digest (the per-worker cache's tests and tools).
impl From<TokenDigest> for TokenKey<'static> {
    fn from(digest: TokenDigest) -> TokenKey<'static> {
        TokenKey {
            token: None,
            digest: OnceCell::from(digest),
        }
    }
}

/// Never prints the token or its digest.
impl std::fmt::Debug for TokenKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix());
    }
}

/// Hasher for [`TokenDigest`] keys: passes the digest prefix through.
///
/// Only tokens that passed full verification are inserted, so nobody can grind
/// digests to collide in the map; lookups of arbitrary tokens only probe.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    /// Not used by [`TokenDigest`]; folds bytes in (FNV-1a) so the hasher stays
    /// correct if it is ever fed anything else.
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

#[derive(Clone, Copy, Default)]
pub struct BuildDigestHasher;

impl BuildHasher for BuildDigestHasher {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher::default()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;

    #[test]
    fn is_the_sha256_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let digest = TokenDigest::of("abc");
        assert_eq!(
            digest.as_bytes()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "{:?}",
            digest.as_bytes()
        );
        assert_ne!(TokenDigest::of("a.b.c"), TokenDigest::of("a.b.d"));
    }

    #[test]
    fn hashes_to_its_prefix_and_hides_itself_in_debug() {
        let digest = TokenDigest::of("abc");
        assert_eq!(
            BuildDigestHasher.hash_one(digest),
            u64::from_le_bytes([0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea])
        );
        assert_eq!(format!("{digest:?}"), "TokenDigest(..)");
    }
}
