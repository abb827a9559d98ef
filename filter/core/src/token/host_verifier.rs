//! RSA signatures checked by the proxy host (Envoy: BoringSSL, native speed)
//! through the `verify_signature` foreign function.
//!
//! The host is trusted only after [`HostVerifier::self_test`] showed, with a
//! fixed test vector, that it accepts a valid signature *and* rejects tampered
//! ones; the adapter runs it once at configuration time and falls back to
//! [`PureRustVerifier`] when it fails. Every call still goes through
//! [`check_key_and_length`] first, so the rules of [`super::signature`] hold
//! whatever the host would accept. If a call fails outright (not "invalid",
//! but an error: the host could not run it) the same check runs in pure Rust,
//! so a host hiccup never turns a valid token into a 401 or an invalid one
//! into a pass.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::self_test;
use super::signature::{check_key_and_length, PureRustVerifier, SignatureVerifier};
use super::spki::rsa_spki_der;
use super::verify_proto::{decode_result, encode_arguments};
use crate::error::AuthError;
use crate::keys::RsaPublicKey;
use crate::options::Algorithm;

/// Name of Envoy's foreign function.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

/// Keys whose DER is kept. A JWKS has a handful of keys; the bound only keeps
/// memory flat if keys keep changing.
const MAX_MEMOISED_KEYS: usize = 32;

/// Calling a host foreign function (`proxy_call_foreign_function`).
pub trait ForeignFunction {
    /// Calls `name` with `arguments`; `Ok` carries the result bytes (possibly
    /// empty), `Err` a short reason (not found, bad argument, ...).
    fn call(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, String>;
}

/// Counters for metrics and the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostVerifierStats {
    pub host_calls: u64,
    /// Calls that failed and were answered by the pure-Rust fallback.
    pub fallbacks: u64,
}

/// A [`SignatureVerifier`] backed by the host.
pub struct HostVerifier<F> {
    host: F,
    /// DER `SubjectPublicKeyInfo` per key, built on first use of each key.
    spki: RefCell<Vec<(RsaPublicKey, Rc<[u8]>)>>,
    stats: Cell<HostVerifierStats>,
}

impl<F: ForeignFunction> HostVerifier<F> {
    pub fn new(host: F) -> HostVerifier<F> {
        HostVerifier {
            host,
            spki: RefCell::new(Vec::new()),
            stats: Cell::new(HostVerifierStats::default()),
        }
    }

    pub fn stats(&self) -> HostVerifierStats {
        self.stats.get()
    }

    /// Checks the host with a known RS256 vector: the valid signature must
    /// verify, and a tampered signature and a tampered message must not. `Err`
    /// says what went wrong (function missing, error, wrong answer).
    pub fn self_test(&self) -> Result<(), String> {
        let der = rsa_spki_der(&self_test::MODULUS, &self_test::EXPONENT)
            .ok_or("self-test key cannot be encoded")?;
        for case in self_test::cases() {
            let valid = self.call_host(Algorithm::RS256, &der, &case.message, &case.signature)?;
            if valid != case.valid {
                return Err(format!(
                    "{VERIFY_SIGNATURE} answered {valid} for a {} (expected {})",
                    case.name, case.valid
                ));
            }
        }
        Ok(())
    }

    /// One host verification: `Ok(valid)`, or `Err` if the host could not answer.
    fn call_host(
        &self,
        alg: Algorithm,
        spki_der: &[u8],
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, String> {
        let mut stats = self.stats.get();
        stats.host_calls += 1;
        self.stats.set(stats);
        let arguments = encode_arguments(hash_name(alg), spki_der, signature, signing_input);
        let result = self.host.call(VERIFY_SIGNATURE, &arguments)?;
        let result = decode_result(&result)
            .map_err(|_| format!("{VERIFY_SIGNATURE} returned a malformed result"))?;
        Ok(result.valid)
    }

    /// The memoised DER of `key` (built now if this key is new).
    fn spki_for(&self, key: &RsaPublicKey) -> Option<Rc<[u8]>> {
        let mut memo = self.spki.try_borrow_mut().ok()?;
        if let Some((_, der)) = memo.iter().find(|(known, _)| known == key) {
            return Some(Rc::clone(der));
        }
        let der: Rc<[u8]> = rsa_spki_der(&key.n, &key.e)?.into();
        if memo.len() >= MAX_MEMOISED_KEYS {
            memo.clear();
        }
        memo.push((key.clone(), Rc::clone(&der)));
        Some(der)
    }
}

/// The host's name for the digest of `alg` (Envoy lower-cases it anyway).
fn hash_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "sha256",
        Algorithm::RS384 => "sha384",
        Algorithm::RS512 => "sha512",
    }
}

impl<F: ForeignFunction> SignatureVerifier for HostVerifier<F> {
    fn verify(
        &self,
        alg: Algorithm,
        key: &RsaPublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        check_key_and_length(key, signature)?;
        let der = self.spki_for(key).ok_or(AuthError::SignatureInvalid)?;
        match self.call_host(alg, &der, signing_input, signature) {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::SignatureInvalid),
            Err(_) => {
                let mut stats = self.stats.get();
                stats.fallbacks += 1;
                self.stats.set(stats);
                PureRustVerifier.verify(alg, key, signing_input, signature)
            }
        }
    }
}

#[cfg(test)]
#[path = "host_verifier_tests.rs"]
mod tests;
