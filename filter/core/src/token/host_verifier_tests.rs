//! The host path against an emulated Envoy, and its agreement with the pure path.

use std::cell::RefCell;

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::*;
use crate::token::test_keys::{self, TestKey};
use crate::token::verify_proto::host_side::{decode_arguments, encode_result};

/// Does what Envoy's `verify_signature` does: parse the DER
/// SubjectPublicKeyInfo, hash `text` with the named digest and check a
/// PKCS #1 v1.5 signature. Implemented with the `rsa` crate's SPKI parser,
/// independently of our encoder. Records every call.
#[derive(Default)]
struct EmulatedEnvoy {
    calls: RefCell<Vec<String>>,
}

impl ForeignFunction for EmulatedEnvoy {
    fn call(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, String> {
        if name != VERIFY_SIGNATURE {
            return Err("NotFound".into());
        }
        let args = decode_arguments(arguments).map_err(|_| "BadArgument")?;
        self.calls.borrow_mut().push(args.hash_function.clone());
        if !args.public_key_pem.is_empty() {
            return Err("BadArgument".into());
        }
        let key =
            rsa::RsaPublicKey::from_public_key_der(&args.public_key).map_err(|_| "BadArgument")?;
        let result = match args.hash_function.to_ascii_lowercase().as_str() {
            "sha256" => key.verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(&args.text),
                &args.signature,
            ),
            "sha384" => key.verify(
                Pkcs1v15Sign::new::<Sha384>(),
                &Sha384::digest(&args.text),
                &args.signature,
            ),
            "sha512" => key.verify(
                Pkcs1v15Sign::new::<Sha512>(),
                &Sha512::digest(&args.text),
                &args.signature,
            ),
            other => return Ok(encode_result(false, &format!("{other} is not supported."))),
        };
        Ok(match result {
            Ok(()) => encode_result(true, ""),
            Err(_) => encode_result(false, "Failed to verify digest. Error code: 0"),
        })
    }
}

/// A host that answers every call the same way.
struct FixedHost(Result<Vec<u8>, String>);

impl ForeignFunction for FixedHost {
    fn call(&self, _name: &str, _arguments: &[u8]) -> Result<Vec<u8>, String> {
        self.0.clone()
    }
}

const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0";

fn sign(key: &TestKey, alg: Algorithm, input: &[u8]) -> Vec<u8> {
    let private = key.private.clone();
    match alg {
        Algorithm::RS256 => SigningKey::<Sha256>::new(private).sign(input).to_vec(),
        Algorithm::RS384 => SigningKey::<Sha384>::new(private).sign(input).to_vec(),
        Algorithm::RS512 => SigningKey::<Sha512>::new(private).sign(input).to_vec(),
    }
}

#[test]
fn self_test_passes_on_a_correct_host() {
    let host = HostVerifier::new(EmulatedEnvoy::default());
    assert_eq!(host.self_test(), Ok(()));
    assert_eq!(host.stats().host_calls, 3);
}

#[test]
fn self_test_catches_missing_erroring_and_lying_hosts() {
    let cases = [
        (FixedHost(Err("NotFound".into())), "NotFound"),
        (FixedHost(Ok(encode_result(true, ""))), "tampered signature"),
        (FixedHost(Ok(encode_result(false, "no"))), "valid signature"),
        (FixedHost(Ok(vec![0x08])), "malformed"),
    ];
    for (host, expected) in cases {
        let error = HostVerifier::new(host).self_test().unwrap_err();
        assert!(error.contains(expected), "{error}");
    }
}

/// Valid and tampered tokens get the same answer from both paths.
#[test]
#[allow(clippy::type_complexity)] // a table of cases
fn host_and_pure_paths_agree() {
    let host = HostVerifier::new(EmulatedEnvoy::default());
    let key = test_keys::primary();
    let other = test_keys::other();
    for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
        let signature = sign(key, alg, INPUT);
        let mut bad_signature = signature.clone();
        *bad_signature.get_mut(17).unwrap() ^= 0x40;
        let mut bad_input = INPUT.to_vec();
        *bad_input.get_mut(3).unwrap() ^= 1;
        let wrong_alg = if alg == Algorithm::RS256 {
            Algorithm::RS512
        } else {
            Algorithm::RS256
        };
        let cases: [(&str, Algorithm, &RsaPublicKey, &[u8], &[u8], bool); 6] = [
            ("valid", alg, &key.public, INPUT, &signature, true),
            (
                "bad signature",
                alg,
                &key.public,
                INPUT,
                &bad_signature,
                false,
            ),
            ("bad input", alg, &key.public, &bad_input, &signature, false),
            ("other key", alg, &other.public, INPUT, &signature, false),
            (
                "other alg",
                wrong_alg,
                &key.public,
                INPUT,
                &signature,
                false,
            ),
            ("s >= n", alg, &key.public, INPUT, &[0xff; 256], false),
        ];
        for (name, alg, public, input, sig, valid) in cases {
            let pure = PureRustVerifier.verify(alg, public, input, sig);
            let native = host.verify(alg, public, input, sig);
            assert_eq!(native, pure, "{alg:?} {name}");
            assert_eq!(native.is_ok(), valid, "{alg:?} {name}");
        }
    }
    assert_eq!(host.stats().fallbacks, 0);
    let hashes = host.host.calls.borrow();
    assert!(hashes.iter().any(|h| h == "sha384"), "{hashes:?}");
}

#[test]
fn key_and_length_rules_apply_before_the_host_is_asked() {
    // A host that accepts everything must still not accept a weak key or a
    // signature of the wrong length.
    let host = HostVerifier::new(FixedHost(Ok(encode_result(true, ""))));
    let weak = test_keys::weak_1024();
    let sig = sign(weak, Algorithm::RS256, INPUT);
    assert_eq!(
        host.verify(Algorithm::RS256, &weak.public, INPUT, &sig),
        Err(AuthError::SignatureInvalid)
    );
    let key = test_keys::primary();
    assert_eq!(
        host.verify(Algorithm::RS256, &key.public, INPUT, &[1; 255]),
        Err(AuthError::SignatureInvalid)
    );
    assert_eq!(host.stats().host_calls, 0);
}

#[test]
fn a_failing_host_call_is_answered_in_pure_rust() {
    let host = HostVerifier::new(FixedHost(Err("InternalFailure".into())));
    let key = test_keys::primary();
    let sig = sign(key, Algorithm::RS256, INPUT);
    assert_eq!(
        host.verify(Algorithm::RS256, &key.public, INPUT, &sig),
        Ok(())
    );
    let mut bad = sig.clone();
    *bad.get_mut(0).unwrap() ^= 1;
    assert_eq!(
        host.verify(Algorithm::RS256, &key.public, INPUT, &bad),
        Err(AuthError::SignatureInvalid)
    );
    assert_eq!(host.stats().fallbacks, 2);
}

#[test]
fn der_is_built_once_per_key() {
    let host = HostVerifier::new(EmulatedEnvoy::default());
    let key = &test_keys::primary().public;
    let first = host.spki_for(key).unwrap();
    let second = host.spki_for(key).unwrap();
    assert!(Rc::ptr_eq(&first, &second));
    let other = host.spki_for(&test_keys::other().public).unwrap();
    assert!(!Rc::ptr_eq(&first, &other));
    // Same kid, new material (rotation that reused a kid): a new DER.
    let mut changed = key.clone();
    changed.n = test_keys::other().public.n.clone();
    assert_eq!(host.spki_for(&changed).unwrap(), other);
}
