//! Checking the JWS signature (RFC 7518 section 3.3: RSASSA-PKCS1-v1_5).
//!
//! The check is behind [`SignatureVerifier`] so the proxy adapter can swap the
//! pure-Rust implementation for one backed by Envoy's BoringSSL without the
//! engine noticing. Every implementation must uphold the same rules:
//!
//! - The algorithm comes from the caller, which took it from the header *after*
//!   checking it against the configured allow-list; only RSA algorithms exist in
//!   [`Algorithm`], so no HMAC/`none` confusion can reach this point.
//! - Keys under 2048 bits are refused (RFC 7518 section 3.3 requires at least
//!   2048; NIST SP 800-131A). The JWKS filter already drops them; checking again
//!   here keeps the guarantee local to the place that relies on it.
//! - The signature must be exactly as long as the modulus (RFC 8017 section
//!   8.2.2 step 1). Refusing other lengths up front avoids handing odd-sized
//!   input to the bignum code and rules out leading-zero malleability.
//! - Every failure is the same [`AuthError::SignatureInvalid`]: the caller learns
//!   nothing about *why* a forged signature failed.

use rsa::{BigUint, Pkcs1v15Sign};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::error::AuthError;
use crate::keys::RsaPublicKey;
use crate::options::Algorithm;

/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Verifies a JWS signature over `signing_input` (the ASCII
/// `BASE64URL(header) || '.' || BASE64URL(payload)`).
pub trait SignatureVerifier {
    /// `Ok(())` only when `signature` is a valid `alg` signature of
    /// `signing_input` under `key`; otherwise [`AuthError::SignatureInvalid`].
    fn verify(
        &self,
        alg: Algorithm,
        key: &RsaPublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError>;
}

/// Checks that apply to every implementation, before any cryptography:
/// the key size floor and the exact signature length.
pub fn check_key_and_length(key: &RsaPublicKey, signature: &[u8]) -> Result<(), AuthError> {
    let bits = modulus_bits(&key.n);
    if bits < MIN_RSA_BITS {
        return Err(AuthError::SignatureInvalid);
    }
    // From the bit length rather than `n.len()`, so a modulus that still carries
    // leading zero bytes cannot change the expected length.
    if signature.len() != bits.div_ceil(8) {
        return Err(AuthError::SignatureInvalid);
    }
    Ok(())
}

/// Bit length of a big-endian modulus. Unlike [`RsaPublicKey::bits`] this does not
/// assume the JWKS parser stripped leading zero bytes: the size floor must hold
/// whatever the key record looks like.
fn modulus_bits(n: &[u8]) -> usize {
    let significant = n
        .iter()
        .position(|b| *b != 0)
        .and_then(|start| n.get(start..))
        .unwrap_or(&[]);
    match significant.first() {
        None => 0,
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-2 using the RustCrypto `rsa` crate.
///
/// Verification only uses the public key, so the `rsa` crate's timing side
/// channel (RUSTSEC-2023-0071, "Marvin") which concerns private-key operations
/// does not apply. Keys above 4096 bits are refused by the crate's default size
/// limit, which also bounds the cost an attacker-supplied JWKS entry could cause.
#[derive(Debug, Clone, Copy, Default)]
pub struct PureRustVerifier;

impl SignatureVerifier for PureRustVerifier {
    fn verify(
        &self,
        alg: Algorithm,
        key: &RsaPublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        check_key_and_length(key, signature)?;
        let public = rsa::RsaPublicKey::new(
            BigUint::from_bytes_be(&key.n),
            BigUint::from_bytes_be(&key.e),
        )
        .map_err(|_| AuthError::SignatureInvalid)?;
        // The digest and its DigestInfo prefix are fixed by `alg`; the crate
        // compares the whole decoded block, so no parsing of attacker data happens.
        let result = match alg {
            Algorithm::RS256 => public.verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(signing_input),
                signature,
            ),
            Algorithm::RS384 => public.verify(
                Pkcs1v15Sign::new::<Sha384>(),
                &Sha384::digest(signing_input),
                signature,
            ),
            Algorithm::RS512 => public.verify(
                Pkcs1v15Sign::new::<Sha512>(),
                &Sha512::digest(signing_input),
                signature,
            ),
        };
        result.map_err(|_| AuthError::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::test_keys::{self, TestKey};
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};

    const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0";

    fn sign(key: &TestKey, alg: Algorithm, input: &[u8]) -> Vec<u8> {
        let private = key.private.clone();
        match alg {
            Algorithm::RS256 => SigningKey::<Sha256>::new(private).sign(input).to_vec(),
            Algorithm::RS384 => SigningKey::<Sha384>::new(private).sign(input).to_vec(),
            Algorithm::RS512 => SigningKey::<Sha512>::new(private).sign(input).to_vec(),
        }
    }

    fn verify(
        alg: Algorithm,
        key: &RsaPublicKey,
        input: &[u8],
        sig: &[u8],
    ) -> Result<(), AuthError> {
        PureRustVerifier.verify(alg, key, input, sig)
    }

    #[test]
    fn valid_signatures_verify_for_every_algorithm() {
        let key = test_keys::primary();
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
            let sig = sign(key, alg, INPUT);
            assert_eq!(verify(alg, &key.public, INPUT, &sig), Ok(()), "{alg:?}");
        }
    }

    #[test]
    fn the_algorithm_must_match_the_signature() {
        let key = test_keys::primary();
        let sig = sign(key, Algorithm::RS256, INPUT);
        for alg in [Algorithm::RS384, Algorithm::RS512] {
            assert_eq!(
                verify(alg, &key.public, INPUT, &sig),
                Err(AuthError::SignatureInvalid)
            );
        }
    }

    #[test]
    fn a_changed_input_fails() {
        let key = test_keys::primary();
        let sig = sign(key, Algorithm::RS256, INPUT);
        let mut tampered = INPUT.to_vec();
        *tampered.get_mut(40).unwrap() ^= 1;
        assert_eq!(
            verify(Algorithm::RS256, &key.public, &tampered, &sig),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn a_changed_signature_fails() {
        let key = test_keys::primary();
        let sig = sign(key, Algorithm::RS256, INPUT);
        for i in [0, 100, sig.len() - 1] {
            let mut bad = sig.clone();
            *bad.get_mut(i).unwrap() ^= 0x01;
            assert_eq!(
                verify(Algorithm::RS256, &key.public, INPUT, &bad),
                Err(AuthError::SignatureInvalid),
                "byte {i}"
            );
        }
    }

    #[test]
    fn another_key_fails() {
        let sig = sign(test_keys::primary(), Algorithm::RS256, INPUT);
        assert_eq!(
            verify(Algorithm::RS256, &test_keys::other().public, INPUT, &sig),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn signature_length_must_equal_the_modulus_length() {
        let key = test_keys::primary();
        let sig = sign(key, Algorithm::RS256, INPUT);
        assert_eq!(sig.len(), 256);

        let mut padded = vec![0u8];
        padded.extend_from_slice(&sig);
        let truncated = sig.get(..sig.len() - 1).unwrap();
        for bad in [&padded[..], truncated, &[], &[0u8; 512][..]] {
            assert_eq!(
                verify(Algorithm::RS256, &key.public, INPUT, bad),
                Err(AuthError::SignatureInvalid),
                "len {}",
                bad.len()
            );
        }
    }

    #[test]
    fn the_signature_must_be_below_the_modulus() {
        // s >= n is outside the RSA group (RFC 8017 5.2.2): all-ones has the right
        // length and is larger than any 2048-bit modulus.
        let key = test_keys::primary();
        assert_eq!(
            verify(Algorithm::RS256, &key.public, INPUT, &[0xff; 256]),
            Err(AuthError::SignatureInvalid)
        );
        assert_eq!(
            verify(Algorithm::RS256, &key.public, INPUT, &key.public.n),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn keys_under_2048_bits_are_refused_even_with_a_valid_signature() {
        let weak = test_keys::weak_1024();
        assert_eq!(weak.public.bits(), 1024);
        let sig = sign(weak, Algorithm::RS256, INPUT);
        assert_eq!(sig.len(), 128);
        assert_eq!(
            verify(Algorithm::RS256, &weak.public, INPUT, &sig),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn a_modulus_with_leading_zero_bytes_still_expects_the_modulus_length() {
        let key = test_keys::primary();
        let mut public = key.public.clone();
        public.n.splice(0..0, [0, 0, 0]);
        assert_eq!(modulus_bits(&public.n), 2048);
        let sig = sign(key, Algorithm::RS256, INPUT);
        assert_eq!(verify(Algorithm::RS256, &public, INPUT, &sig), Ok(()));
    }

    #[test]
    fn a_broken_exponent_is_refused() {
        let key = test_keys::primary();
        let sig = sign(key, Algorithm::RS256, INPUT);
        for e in [vec![], vec![1u8], vec![0xff; 8]] {
            let mut public = key.public.clone();
            public.e = e;
            assert_eq!(
                verify(Algorithm::RS256, &public, INPUT, &sig),
                Err(AuthError::SignatureInvalid)
            );
        }
    }

    #[test]
    fn an_empty_or_zero_modulus_is_refused() {
        let mut public = test_keys::primary().public.clone();
        public.n = vec![];
        assert_eq!(
            verify(Algorithm::RS256, &public, INPUT, &[]),
            Err(AuthError::SignatureInvalid)
        );
        public.n = vec![0; 256];
        assert_eq!(modulus_bits(&public.n), 0);
        assert_eq!(
            verify(Algorithm::RS256, &public, INPUT, &[0; 256]),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn usable_as_a_trait_object() {
        let key = test_keys::primary();
        let sig = sign(key, Algorithm::RS256, INPUT);
        let verifier: &dyn SignatureVerifier = &PureRustVerifier;
        assert_eq!(
            verifier.verify(Algorithm::RS256, &key.public, INPUT, &sig),
            Ok(())
        );
    }
}
