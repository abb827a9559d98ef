//! Native RSA signature checks for the dynamic module.
//!
//! The wasm filter asks Envoy's BoringSSL through a foreign function; a
//! dynamic module has no such call, but it is native code, so it links a
//! well-kept crypto crate directly. [`NativeVerifier`] keeps the core's rules
//! in front of the crate, exactly as the wasm path does
//! ([`check_key_and_length`]: modulus >= 2048 bits, signature exactly as long
//! as the modulus; the JWKS parser already dropped keys over 4096 bits), so the
//! crate only ever sees inputs the pure-Rust path would also accept.
//!
//! Which crate: chosen by measurement (`rs256_bench` below, numbers in
//! docs/native.md). Both are generic behind [`RsaBackend`] so the bench times
//! the same wrapper the filter runs.

use entragate_core::error::AuthError;
use entragate_core::keys::RsaPublicKey;
use entragate_core::options::Algorithm;
use entragate_core::token::self_test;
use entragate_core::token::signature::{check_key_and_length, SignatureVerifier};

/// One crypto crate's RSASSA-PKCS1-v1_5 verification.
pub trait RsaBackend {
    /// True only for a valid `alg` signature of `message` under (`n`, `e`).
    fn verify(alg: Algorithm, n: &[u8], e: &[u8], message: &[u8], signature: &[u8]) -> bool;
}

/// An [`RsaBackend`] over a crate with ring's `signature` API (`ring` itself
/// and `aws-lc-rs`, which kept it): the same code for both, so the bench
/// compares the crates and nothing else.
macro_rules! rsa_backend {
    ($(#[$doc:meta])* $vis:vis $name:ident, $krate:ident) => {
        $(#[$doc])*
        $vis struct $name;

        impl RsaBackend for $name {
            fn verify(alg: Algorithm, n: &[u8], e: &[u8], message: &[u8], signature: &[u8]) -> bool {
                use $krate::signature as sig;
                let params = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                };
                sig::RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
        }
    };
}

rsa_backend!(
    /// `aws-lc-rs` (AWS-LC, a BoringSSL descendant): measured ~15% faster than
    /// `ring` for RS256 verification here (`rs256_bench`).
    pub AwsLc,
    aws_lc_rs
);

/// The core's rules, then `B`'s cryptography.
pub struct NativeVerifier<B: RsaBackend>(std::marker::PhantomData<B>);

impl<B: RsaBackend> NativeVerifier<B> {
    pub const fn new() -> Self {
        NativeVerifier(std::marker::PhantomData)
    }

    /// Gets the core's self-test cases right (the vector accepted, tampered
    /// signature and message refused) before the backend is trusted with
    /// traffic, as the wasm path checks Envoy's.
    pub fn self_test(&self) -> bool {
        let key = RsaPublicKey {
            kid: "self-test".to_string(),
            x5t: None,
            n: self_test::MODULUS.to_vec(),
            e: self_test::EXPONENT.to_vec(),
        };
        self_test::cases().iter().all(|case| {
            let verdict = self.verify(Algorithm::RS256, &key, &case.message, &case.signature);
            verdict.is_ok() == case.valid
        })
    }
}

impl<B: RsaBackend> SignatureVerifier for NativeVerifier<B> {
    fn verify(
        &self,
        alg: Algorithm,
        key: &RsaPublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        check_key_and_length(key, signature)?;
        if B::verify(alg, &key.n, &key.e, signing_input, signature) {
            Ok(())
        } else {
            Err(AuthError::SignatureInvalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use entragate_core::token::signature::PureRustVerifier;

    use super::*;

    rsa_backend!(
        /// `ring`, only to be measured against `aws-lc-rs`.
        Ring,
        ring
    );

    fn vector_key() -> RsaPublicKey {
        RsaPublicKey {
            kid: "k".to_string(),
            x5t: None,
            n: self_test::MODULUS.to_vec(),
            e: self_test::EXPONENT.to_vec(),
        }
    }

    /// Every verifier must give the same answers, including the rules that
    /// come before any cryptography.
    fn same_rules(verifier: &dyn SignatureVerifier) {
        let key = vector_key();
        let good = self_test::SIGNATURE;
        let ok = |key: &RsaPublicKey, sig: &[u8]| {
            verifier
                .verify(Algorithm::RS256, key, self_test::MESSAGE, sig)
                .is_ok()
        };
        assert!(ok(&key, &good), "valid signature refused");

        let mut tampered = good;
        tampered[100] ^= 0x40;
        assert!(!ok(&key, &tampered), "tampered signature accepted");

        // Wrong message, wrong algorithm.
        assert!(verifier
            .verify(Algorithm::RS256, &key, b"other", &good)
            .is_err());
        assert!(verifier
            .verify(Algorithm::RS384, &key, self_test::MESSAGE, &good)
            .is_err());

        // Signature length must equal the modulus length: a leading zero byte
        // (same integer) and a truncated signature are both refused.
        let mut longer = vec![0u8];
        longer.extend_from_slice(&good);
        assert!(!ok(&key, &longer), "signature with a leading zero accepted");
        assert!(!ok(&key, &good[1..]), "short signature accepted");

        // Keys under 2048 bits are refused whatever the signature.
        let mut small = key.clone();
        small.n = self_test::MODULUS[1..].to_vec();
        assert!(!ok(&small, &good[1..]), "a 2040-bit key was used");
    }

    #[test]
    fn ring_follows_the_core_rules() {
        same_rules(&NativeVerifier::<Ring>::new());
    }

    #[test]
    fn aws_lc_follows_the_core_rules() {
        same_rules(&NativeVerifier::<AwsLc>::new());
    }

    #[test]
    fn pure_rust_follows_the_same_rules() {
        // The reference the native verifiers are held to.
        same_rules(&PureRustVerifier);
    }

    #[test]
    fn self_test_passes_for_aws_lc() {
        assert!(NativeVerifier::<AwsLc>::new().self_test());
    }

    fn per_op_micros(verifier: &dyn SignatureVerifier, rounds: u32) -> f64 {
        let key = vector_key();
        let started = Instant::now();
        for _ in 0..rounds {
            let result = verifier.verify(
                Algorithm::RS256,
                &key,
                self_test::MESSAGE,
                &self_test::SIGNATURE,
            );
            assert!(result.is_ok());
        }
        started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    }

    /// The measurement behind the choice of crate. Run optimised:
    /// `cargo test -p entragate-native --profile release-native -- --ignored --nocapture rs256_bench`
    #[test]
    #[ignore = "measurement, prints numbers; run explicitly (see doc comment)"]
    fn rs256_bench() {
        // Short interleaved rounds: on a shared machine the minimum and the
        // median of many rounds are steadier than one long run.
        let rounds = 4_000;
        let repeats = 11;
        let verifiers: [(&str, &dyn SignatureVerifier); 3] = [
            ("ring", &NativeVerifier::<Ring>::new()),
            ("aws-lc-rs", &NativeVerifier::<AwsLc>::new()),
            ("rsa (pure Rust, wasm fallback)", &PureRustVerifier),
        ];
        // Warm up, then interleaved measured rounds.
        for (_, verifier) in &verifiers {
            per_op_micros(*verifier, 1_000);
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); verifiers.len()];
        for _ in 0..repeats {
            for (i, (_, verifier)) in verifiers.iter().enumerate() {
                samples[i].push(per_op_micros(*verifier, rounds));
            }
        }
        println!("RS256 verify, 2048-bit key, {repeats} interleaved rounds of {rounds} ops:");
        for ((name, _), mut times) in verifiers.iter().zip(samples) {
            times.sort_by(f64::total_cmp);
            println!(
                "  {name:<32} median {:>7.2} us/op   min {:>7.2} us/op",
                times[repeats / 2],
                times[0]
            );
        }
    }
}
