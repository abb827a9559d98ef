//! JWKS and OIDC discovery documents, as fetched from the IdP, and the
//! shared-data records the filter stores keys in.
//!
//! Oracles: no panic; a parsed key set is non-empty, has unique kids and only
//! 2048-4096-bit moduli with a valid exponent; it survives the shared-data
//! round trip unchanged; and a token verifying against it behaves like
//! against the same set read back from shared data.
#![no_main]

use entragate_core::inbound::jwks::parse::{MAX_MODULUS_BITS, MIN_MODULUS_BITS};
use entragate_core::inbound::jwks::record::{KeysRecord, StateRecord};
use entragate_core::inbound::jwks::{parse_discovery, parse_jwks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_discovery(data, "login.microsoftonline.com");
    let _ = KeysRecord::decode(data).map(|record| record.to_key_set());
    let _ = StateRecord::decode(data);

    let Ok(parsed) = parse_jwks(data) else {
        return;
    };
    let _ = parsed.summary();
    let set = parsed.key_set;
    assert!(!set.is_empty(), "an empty key set was accepted");
    for (i, key) in set.keys.iter().enumerate() {
        let bits = key.bits();
        assert!(
            (MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits),
            "a {bits}-bit key was accepted"
        );
        assert!(
            key.e.last().is_some_and(|b| b & 1 == 1),
            "an even exponent was accepted"
        );
        assert!(
            !set.keys
                .iter()
                .skip(i + 1)
                .any(|other| other.kid == key.kid),
            "duplicate kid accepted"
        );
        assert_eq!(
            set.find(Some(&key.kid), None),
            Some(key),
            "kid lookup does not find its key"
        );
    }
    let record = KeysRecord::new(7, 1_800_000_000_000, &set);
    let encoded = match record.encode() {
        Ok(bytes) => bytes,
        Err(e) => panic!("a parsed key set cannot be stored: {e:?}"),
    };
    let decoded = KeysRecord::decode(&encoded).and_then(|r| r.to_key_set());
    assert_eq!(
        decoded.as_ref(),
        Ok(&set),
        "shared-data round trip changed the keys"
    );
});
