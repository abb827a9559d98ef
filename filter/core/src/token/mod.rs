//! From the `Authorization` header to a structurally valid, not yet trusted JWS.
//!
//! The steps, in the order the engine runs them, and what each one guarantees:
//!
//! 1. [`extract::bearer_token`]: exactly one `Authorization: Bearer <token>`
//!    value, at most `max_token_bytes` long, made only of base64url characters
//!    and dots. Nothing is decoded yet.
//! 2. [`jws::decode`]: three strict base64url parts; a JOSE header whose `alg`
//!    is in the allow-list, with no `crit` and a `kid`/`x5t` naming the key; a
//!    claims object with correctly typed claims; both parts well-formed UTF-8
//!    JSON throughout, members we ignore included ([`strict_json`]). Header parameters that would let
//!    the token choose its own key (`jku`, `x5u`, `jwk`, `x5c`) are ignored: keys
//!    come only from the tenant's JWKS (RFC 8725 section 3.10).
//! 3. [`signature::SignatureVerifier::verify`]: the signature, under a key the
//!    caller looked up by `kid` (or `x5t`) in the trusted JWKS.
//!
//! Step 3 has two implementations: [`signature::PureRustVerifier`] and
//! [`host_verifier::HostVerifier`], which asks the proxy (Envoy's BoringSSL)
//! through a foreign function and is used when the host passes a self-test.
//!
//! Only after step 3 may anything in the claims be trusted; claim validation
//! (issuer, audience, lifetime, tenant) lives in [`crate::claims`].

pub mod extract;
pub mod host_verifier;
pub mod jws;
pub mod self_test;
pub mod signature;
pub mod spki;
pub mod strict_json;
pub mod verify_proto;

pub use extract::bearer_token;
pub use host_verifier::{ForeignFunction, HostVerifier, VERIFY_SIGNATURE};
pub use jws::{decode, DecodedJws, JoseHeader};
pub use signature::{PureRustVerifier, SignatureVerifier};

/// Test support shared by the token and claims tests: RSA keys (generated once per
/// test binary) and a compact-JWS builder.
#[cfg(test)]
pub(crate) mod test_keys {
    use std::sync::OnceLock;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    use sha2::Sha256;

    use crate::keys::RsaPublicKey;

    pub(crate) struct TestKey {
        pub private: rsa::RsaPrivateKey,
        pub public: RsaPublicKey,
    }

    fn generate(bits: usize, kid: &str) -> TestKey {
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
        let public = RsaPublicKey {
            kid: kid.to_string(),
            x5t: Some(kid.to_string()),
            n: private.n().to_bytes_be(),
            e: private.e().to_bytes_be(),
        };
        TestKey { private, public }
    }

    /// The tenant's signing key.
    pub(crate) fn primary() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| generate(2048, "key-primary"))
    }

    /// A different 2048-bit key (an attacker's, or a rotated-out one).
    pub(crate) fn other() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| generate(2048, "key-other"))
    }

    /// A key too small to be trusted.
    pub(crate) fn weak_1024() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| generate(1024, "key-weak"))
    }

    pub(crate) fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `b64(header).b64(claims)` with no signature.
    pub(crate) fn signing_input(header_json: &str, claims_json: &str) -> String {
        format!(
            "{}.{}",
            b64(header_json.as_bytes()),
            b64(claims_json.as_bytes())
        )
    }

    /// A compact JWS signed with RS256 by `key`; the header is used verbatim.
    pub(crate) fn sign_rs256(key: &TestKey, header_json: &str, claims_json: &str) -> String {
        let input = signing_input(header_json, claims_json);
        let signature = SigningKey::<Sha256>::new(key.private.clone())
            .sign(input.as_bytes())
            .to_vec();
        format!("{input}.{}", b64(&signature))
    }
}
