//! Correctly signed tokens with fuzzed JOSE header and claims JSON.
//!
//! Input: one mode byte (the route; see `Mode`), then the header JSON up to
//! the first newline, then the claims JSON. The harness base64url-encodes
//! both and signs them with the digest signature its verifier accepts (a real
//! RS256 signature costs seconds in an instrumented build; the RSA path is
//! `token_verify`'s, whose seeds are RS256-signed), so every input
//! passes the signature check and exercises header checks (alg allow-list,
//! crit, kid/x5t), claim typing and validation (ver, iss, aud, tid, exp/nbf
//! with leeway) and authorization (roles, scp, azp/appid, idtyp).
//!
//! Oracles: no panic; the cache answers like a full verification; the same
//! token with one signature character changed is never allowed on a
//! protected route; claims are checked against time: a token allowed at `NOW`
//! has a numeric `exp` and is refused as expired once `exp` + leeway passed.
#![no_main]

use entragate_core::inbound::cache::VerifiedTokenCache;
use entragate_core::inbound::engine::Decision;
use entragate_core::error::AuthError;
use entragate_fuzz_fixtures::{self as fx, Mode, Verifier, ANONYMOUS_ROUTE};
use libfuzzer_sys::fuzz_target;

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Bearer {token}")]
}

fuzz_target!(
    init: {
        // JWKS and policy once, before the first input (and its timeout).
        fx::key_set();
        fx::policy();
    },
    |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mode = Mode::from_byte(mode);
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let (header, claims) = rest.split_at(split);
    let claims = claims.get(1..).unwrap_or_default();
    let token = fx::sign_digest(header, claims);
    let policy = fx::policy();
    let keys = fx::key_set();
    let verifier = Verifier::Digest.get();

    let mut cache = VerifiedTokenCache::new(16);
    let first = fx::decide(policy, keys, verifier, &mut cache, mode.route, bearer(&token), fx::NOW);
    let again = fx::decide(policy, keys, verifier, &mut cache, mode.route, bearer(&token), fx::NOW);
    assert_eq!(first, again, "a cached decision differs from the verified one");

    if mode.route != ANONYMOUS_ROUTE {
        // Change one character in the middle of the signature.
        let mut tampered = token.clone().into_bytes();
        let at = tampered.len().saturating_sub(40);
        if let Some(c) = tampered.get_mut(at) {
            *c = if *c == b'A' { b'B' } else { b'A' };
        }
        let tampered = String::from_utf8_lossy(&tampered).into_owned();
        let mut fresh = VerifiedTokenCache::new(16);
        let forged = fx::decide(policy, keys, verifier, &mut fresh, mode.route, bearer(&tampered), fx::NOW);
        assert!(!fx::allowed(&forged), "a tampered signature was accepted: {forged:?}");
    }

    if fx::allowed(&first) && mode.route != ANONYMOUS_ROUTE {
        // Allowed now: then the token has an `exp`, and once that is past
        // (plus the leeway) the same token is refused as expired. Checked at
        // the token's own `exp`, not a fixed horizon: entragate, like Entra's
        // own libraries, sets no maximum lifetime (docs/security.md, "Not in
        // scope"), so a tenant-signed token may legitimately live for years.
        // Strict: an allowed token's claims are UTF-8 JSON throughout, the
        // members the filter ignores included (RFC 7519 7.2), so an
        // independent parser reads them too; and `exp` is an integer.
        let parsed = serde_json::from_slice::<serde_json::Value>(claims);
        assert!(parsed.is_ok(), "allowed claims are not strict JSON: {parsed:?}");
        let exp = parsed
            .ok()
            .and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64));
        assert!(exp.is_some(), "a token without an integer exp was allowed: {first:?}");
        if let Some(exp) = exp.filter(|e| *e < 1_000_000_000_000_000) {
            let later = exp.saturating_add(fx::LEEWAY_SECS + 2);
            let mut fresh = VerifiedTokenCache::new(16);
            let decision = fx::decide(policy, keys, verifier, &mut fresh, mode.route, bearer(&token), later);
            assert!(
                matches!(&decision, Decision::Deny(d) if d.error == AuthError::Expired),
                "a token allowed now is not refused as expired after its exp: {decision:?}"
            );
        }
    }
});
