//! The outbound role's reading of the local agent's answer
//! (`GET /v1/token`), and the shared-data token records.
//!
//! Input: the HTTP status on the first line (`-` for "no response"), then
//! the body. Oracles: no panic; an accepted token is a non-empty RFC 6750
//! b64token no longer than the limit; a refusal's text never quotes the
//! `access_token` the body carried.
#![no_main]

use entragate_core::outbound::agent::{parse_agent_response, MAX_TOKEN_BYTES};
use entragate_core::outbound::record::{StateRecord, TokenRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TokenRecord::decode(data);
    let _ = StateRecord::decode(data);
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (status, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    let status = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok());
    match parse_agent_response(status, body) {
        Ok(token) => {
            let t = &token.access_token;
            assert!(
                !t.is_empty() && t.len() <= MAX_TOKEN_BYTES,
                "token length {}",
                t.len()
            );
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)),
                "a token with header-unsafe characters was accepted"
            );
        }
        Err(failure) => {
            let text = failure.to_string();
            let quoted = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("access_token")
                        .and_then(|t| t.as_str())
                        .map(str::to_string)
                });
            if let Some(token) = quoted.filter(|t| t.len() >= 24 && status == Some(200)) {
                assert!(!text.contains(&token), "a refusal quotes the token: {text}");
            }
        }
    }
});
