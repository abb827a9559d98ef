//! The plugin configuration, both roles: `FilterPolicy::from_json` (callee,
//! inbound) and `OutboundPolicy::from_json` (caller, outbound).
//!
//! Oracles: no panic; a policy that compiles answers route lookups for odd
//! paths and methods without panicking, and an error always names a field.
#![no_main]

use entragate_core::inbound::config::FilterPolicy;
use entragate_core::outbound::OutboundPolicy;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 9] = [
    "/",
    "",
    "/fraud/analyze",
    "/fraud/reports/x",
    "/fraud/../admin",
    "//fraud",
    "/fraud%2Fanalyze",
    "/fraud/analyze?x=1",
    "/\u{e9}",
];
const METHODS: [&str; 4] = ["GET", "POST", "get", ""];

fuzz_target!(|data: &[u8]| {
    match FilterPolicy::from_json(data) {
        Ok(policy) => {
            for path in PATHS {
                for method in METHODS {
                    let _ = policy.routes.lookup(method, path);
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "an empty configuration error"),
    }
    match OutboundPolicy::from_json(data) {
        Ok(policy) => {
            for authority in [
                "fraud-detector",
                "fraud-detector:8080",
                "",
                "[::1]:1",
                "a:b:c",
            ] {
                let _ = policy.select(authority, Some("fraud_detector"));
                let _ = policy.select(authority, None);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "an empty configuration error"),
    }
});
