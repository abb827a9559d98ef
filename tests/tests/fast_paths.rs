//! The speed features in a real Envoy (issue 4): the native signature path
//! (Envoy's `verify_signature` foreign function in wasm, the linked crypto
//! crate in the dynamic module) and the pure-Rust fallback
//! give the same answers, and the verified-token cache serves repeated tokens
//! without weakening any check.

mod support;

use std::time::Duration;

use entragate_tests::{FilterHost, Rotation};
use reqwest::StatusCode;
use serde_json::json;
use support::{require_envoy, Callee, Refusal};

/// Valid, tampered-signature and spliced (payload of another token) tokens,
/// with the status and description each must get.
fn signature_cases(callee: &Callee) -> Vec<(&'static str, String, StatusCode, &'static str)> {
    let idp = &callee.idp;
    let valid = idp.app_token_v2().build();
    let other = idp.app_token_v2().build();
    let parts: Vec<&str> = valid.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    let at = valid.rfind('.').unwrap() + 40;
    let flipped = if &valid[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &valid[..at], &valid[at + 1..]);
    // Signed by a key that is not published, but naming a published kid.
    let stranger = idp.unpublished_key().unwrap();
    let forged = idp
        .app_token_v2()
        .signed_with(&stranger)
        .header("kid", idp.signing_key().kid())
        .header("x5t", idp.signing_key().kid())
        .build();
    vec![
        ("valid", valid, StatusCode::OK, ""),
        (
            "tampered signature",
            tampered,
            StatusCode::UNAUTHORIZED,
            "invalid signature",
        ),
        (
            "spliced payload",
            spliced,
            StatusCode::UNAUTHORIZED,
            "invalid signature",
        ),
        (
            "forged with another key",
            forged,
            StatusCode::UNAUTHORIZED,
            "invalid signature",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_pure_signature_paths_agree() {
    if !require_envoy("native_and_pure_signature_paths_agree") {
        return;
    }
    // The native line is the host's own (wasm: Envoy's foreign function;
    // the dynamic module: its linked crypto crate).
    let native_line = FilterHost::from_env().native_signature_log();
    for (backend, native, log_line) in [
        ("auto", 1, native_line),
        ("host", 1, native_line),
        (
            "pure",
            0,
            "signatures checked by pure Rust (signature_verifier: pure)",
        ),
    ] {
        // No cache: every request below goes through the signature check.
        let callee = Callee::start_with(
            |config| {
                config["signature_verifier"] = json!(backend);
                config["token_cache_size"] = json!(0);
            },
            |_| {},
        )
        .await;
        callee.wait_for_keys().await;
        assert!(
            callee.envoy.logs().contains(log_line),
            "{backend}: {}",
            callee.envoy.log_tail(20)
        );
        let gauge = callee
            .envoy
            .stat(&support::stat("entragate.signature.native"))
            .await
            .unwrap();
        assert_eq!(gauge, Some(native), "{backend}");
        for (name, token, status, description) in signature_cases(&callee) {
            // Twice: both workers, and no state carried between requests.
            for _ in 0..2 {
                let refusal = Refusal::from(callee.analyze(Some(&token)).await).await;
                assert_eq!(
                    refusal.status, status,
                    "{backend} {name}: {:?}",
                    refusal.body
                );
                if !description.is_empty() {
                    assert_eq!(refusal.description(), description, "{backend} {name}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tokens_are_served_from_the_cache_and_still_authorized() {
    if !require_envoy("repeated_tokens_are_served_from_the_cache") {
        return;
    }
    let callee = Callee::start().await;
    callee.wait_for_keys().await;
    let token = callee.idp.app_token_v2().build();
    for _ in 0..20 {
        assert_eq!(callee.analyze(Some(&token)).await.status(), StatusCode::OK);
    }
    // At most one miss per worker; counters are flushed on the root tick.
    callee
        .envoy
        .wait_for_stat(
            &support::stat("entragate.token_cache.hits"),
            Duration::from_secs(5),
            |v| v >= 18,
        )
        .await
        .unwrap();
    // A hit does not skip route authorization: this app token has no `scp`.
    let response = entragate_tests::http_client()
        .get(callee.envoy.url("/fraud/reports/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Nor claim headers: they come from the cached claims.
    let seen = callee.echo.last_request().unwrap();
    assert_eq!(
        seen.header("x-entra-caller"),
        Some(entragate_tests::ids::CLIENT_ID)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_stops_working_when_its_key_leaves_the_jwks() {
    if !require_envoy("a_cached_token_stops_working_when_its_key_leaves_the_jwks") {
        return;
    }
    // Refresh every second so the removal is picked up quickly.
    let callee = Callee::start_with(
        |config| config["jwks"]["refresh_interval_seconds"] = json!(1),
        |_| {},
    )
    .await;
    callee.wait_for_keys().await;
    let old = callee.idp.app_token_v2().build();
    for _ in 0..4 {
        assert_eq!(callee.analyze(Some(&old)).await.status(), StatusCode::OK);
    }
    let fetches = callee.idp.jwks_fetches();
    callee.idp.rotate_keys(Rotation::RemoveOld).unwrap();
    callee
        .idp
        .wait_for_jwks_fetches(fetches + 1, Duration::from_secs(10))
        .await
        .unwrap();
    let new = callee.idp.app_token_v2().build();
    // The refreshed key set reaches every worker on its next request.
    entragate_tests::wait_until(Duration::from_secs(5), "new key in use", || async {
        callee.analyze(Some(&new)).await.status() == StatusCode::OK
    })
    .await
    .unwrap();
    for _ in 0..4 {
        let refusal = Refusal::from(callee.analyze(Some(&old)).await).await;
        assert_eq!(
            refusal.status,
            StatusCode::UNAUTHORIZED,
            "{:?}",
            refusal.body
        );
    }
}
