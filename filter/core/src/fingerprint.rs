//! Safe identifiers for secrets in logs.
//!
//! Tokens are bearer credentials: anything that logs one hands it to whoever
//! reads the logs. We log only a short SHA-256 prefix, which lets operators
//! correlate log lines for the same token without being able to replay it.

use sha2::{Digest, Sha256};

/// First 12 hex characters of SHA-256 of `secret` (48 bits: enough to correlate,
/// useless for replay).
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(12);
    for byte in digest.iter().take(6) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_short_stable_and_not_the_input() {
        let a = fingerprint("eyJhbGciOiJSUzI1NiJ9.payload.signature");
        assert_eq!(a.len(), 12);
        assert_eq!(a, fingerprint("eyJhbGciOiJSUzI1NiJ9.payload.signature"));
        assert_ne!(a, fingerprint("eyJhbGciOiJSUzI1NiJ9.payload.signaturf"));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
