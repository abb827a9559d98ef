//! EXPERIMENT, not built by default (cargo feature `shared-cache-experiment`):
//! a verified-token memo in proxy-wasm shared data, visible to every worker,
//! to compare with the per-worker token cache (docs/performance.md).
//!
//! It is the cheapest shared design: only "this signature over this input was
//! verified with key K" is shared (the claims are decoded from the token
//! again), so a hit still costs decoding, a SHA-256, a `get_shared_data`
//! hostcall and a copy. Shared data has no eviction, so it also grows with
//! every distinct token: one more reason it is not the shipped design.

use entragate_core::error::AuthError;
use entragate_core::jwks::RsaPublicKey;
use entragate_core::options::Algorithm;
use entragate_core::token::SignatureVerifier;
use proxy_wasm::hostcalls;
use sha2::{Digest, Sha256};

pub struct SharedMemoVerifier {
    pub inner: Box<dyn SignatureVerifier>,
}

impl SignatureVerifier for SharedMemoVerifier {
    fn verify(
        &self,
        alg: Algorithm,
        key: &RsaPublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        let digest = Sha256::new()
            .chain_update(signing_input)
            .chain_update(signature)
            .finalize();
        let mut name = String::with_capacity(14 + 64);
        name.push_str("entragate.sig.");
        for byte in digest {
            name.push_str(&format!("{byte:02x}"));
        }
        let known = hostcalls::get_shared_data(&name)
            .ok()
            .and_then(|(value, _)| value);
        if known.as_deref() == Some(key.kid.as_bytes()) {
            return Ok(());
        }
        self.inner.verify(alg, key, signing_input, signature)?;
        let _ = hostcalls::set_shared_data(&name, Some(key.kid.as_bytes()), None);
        Ok(())
    }
}
