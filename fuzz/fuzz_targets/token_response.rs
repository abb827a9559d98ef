//! The bootstrap agent's parser for Entra's token endpoint responses (the
//! crate `entragate-token-response`, `bootstrap/token-response/`: pure, so
//! this target builds it without the AWS SDK; what is fuzzed is what ships).
//!
//! Input: the HTTP status on the first line, then the body. Oracles: no
//! panic; an accepted response has a b64token `access_token`, a non-zero
//! lifetime of at most two days and a `refresh_in` below it; its `Debug` is the
//! same whatever the token; an error's text never contains the `access_token` of a 2xx body.
#![no_main]

use entragate_token_response as parse;
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret as _;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (status, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    let status = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(200);
    match parse::parse_response(status, body) {
        Ok(response) => {
            let token = response.access_token.expose_secret();
            assert!(!token.is_empty());
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)),
                "a token with header-unsafe characters was accepted"
            );
            assert!(!response.expires_in.is_zero());
            assert!(response.expires_in <= Duration::from_secs(2 * 24 * 3600));
            assert!(response
                .refresh_in
                .is_none_or(|r| !r.is_zero() && r < response.expires_in));
            assert_eq!(response.token_type, "Bearer");
            // Debug must reveal nothing of the token: it prints the same with
            // any other token. (Searching the output for the token string
            // cried wolf when the token was a field name, e.g. `token_type`.)
            let other = parse::TokenResponse {
                access_token: secrecy::SecretString::from(format!("{token}-other")),
                token_type: response.token_type.clone(),
                expires_in: response.expires_in,
                ext_expires_in: response.ext_expires_in,
                refresh_in: response.refresh_in,
            };
            assert_eq!(
                format!("{response:?}"),
                format!("{other:?}"),
                "Debug depends on the token"
            );
        }
        Err(error) => {
            let text = error.to_string();
            let token = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("access_token")
                        .and_then(|t| t.as_str())
                        .map(str::to_string)
                });
            if let Some(token) = token.filter(|t| t.len() > 40 && (200..300).contains(&status)) {
                assert!(!text.contains(&token), "an error quotes the token: {text}");
            }
        }
    }
});
