//! Arbitrary bytes as a bearer token, through the engine's full verification
//! path (extraction, strict JWS decoding, key lookup by kid/x5t, signature,
//! claims, route authorization) against the fixed JWKS and policy.
//!
//! Input: one mode byte (route, verifier, raw header or `Bearer` token; see
//! `Mode`), then the token. Oracles: no panic; asking twice (the second time
//! the verified-token cache may answer) gives the same decision; an
//! unmatched route is never allowed.
#![no_main]

use entragate_core::inbound::cache::VerifiedTokenCache;
use entragate_fuzz_fixtures::{self as fx, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // Key, JWKS and policy once, before the first input (and its timeout).
        fx::key_set();
        fx::policy();
    },
    |data: &[u8]| {
    let Some((&mode, token)) = data.split_first() else {
        return;
    };
    let mode = Mode::from_byte(mode);
    let text = String::from_utf8_lossy(token).into_owned();
    let authorization = if mode.raw_header {
        // Several headers when the input has newlines: duplicates must be refused.
        text.split('\n').map(str::to_string).collect()
    } else {
        vec![format!("Bearer {text}")]
    };
    let policy = fx::policy();
    let keys = fx::key_set();
    let verifier = mode.verifier.get();
    let mut cache = VerifiedTokenCache::new(16);
    let first = fx::decide(policy, keys, verifier, &mut cache, mode.route, authorization.clone(), fx::NOW);
    let second = fx::decide(policy, keys, verifier, &mut cache, mode.route, authorization, fx::NOW);
    assert_eq!(first, second, "a cached decision differs from the verified one");
    if mode.route == 3 {
        assert!(!fx::allowed(&first), "an unmatched route was allowed");
    }
});
