//! The callee-side filter in a real Envoy (2 workers): what passes, what is
//! refused and why, and how the JWKS is fetched.

mod support;

use std::time::Duration;

use entragate_tests::{ids, wait_until, Endpoint, Fault, Rotation};
use reqwest::StatusCode;
use serde_json::json;
use support::{require_envoy, Callee, Refusal, OTHER_CALLER, REALM};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_v2_app_token_reaches_the_app_with_claim_headers_and_spoofed_ones_stripped() {
    if !require_envoy("valid_v2_app_token") {
        return;
    }
    let callee = Callee::start().await;
    let token = callee.idp.app_token_v2().build();
    let response = entragate_tests::http_client()
        .post(callee.envoy.url("/fraud/analyze"))
        .bearer_auth(&token)
        // A caller must never be able to inject verified identity.
        .header("x-entra-caller", OTHER_CALLER)
        .header("x-entra-roles", "Admin")
        .header("x-entra-tenant", "evil")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
    let seen = callee
        .echo
        .last_request()
        .expect("upstream saw the request");
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("x-entra-caller"), Some(ids::CLIENT_ID));
    assert_eq!(seen.header("x-entra-roles"), Some("Fraud.Scan"));
    assert_eq!(
        seen.header("x-entra-tenant"),
        Some(callee.idp.tenant_id().as_str())
    );
    let stripped_once = seen
        .header_list
        .iter()
        .filter(|(n, _)| n == "x-entra-caller")
        .count();
    assert_eq!(
        stripped_once, 1,
        "spoofed header must be replaced, not appended"
    );
    let allowed = callee
        .envoy
        .stat(&support::stat("entragate.allowed"))
        .await
        .unwrap();
    assert_eq!(allowed, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_v1_token_with_appid_and_api_uri_audience_passes() {
    if !require_envoy("valid_v1_token") {
        return;
    }
    let callee = Callee::start().await;
    // Entra v1 tokens sometimes carry only x5t.
    let token = callee.idp.app_token_v1().without_header("kid").build();
    let response = callee.analyze(Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = callee.echo.last_request().unwrap();
    assert_eq!(seen.header("x-entra-caller"), Some(ids::CLIENT_ID));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_reason_gets_its_status_and_rfc6750_challenge() {
    if !require_envoy("rejections") {
        return;
    }
    let callee = Callee::start().await;
    callee.wait_for_keys().await;
    let idp = &callee.idp;
    let stranger = idp.unpublished_key().unwrap();
    let good = idp.app_token_v2().build();
    // Flip one character inside the signature (not the last one, whose low
    // bits are padding: changing those would be a base64 error instead).
    let mut tampered: Vec<char> = good.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let other_tenant = "0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";

    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed",
            "not-a-jwt".into(),
            401,
            "token is not a signed JWT",
        ),
        ("bad signature", tampered, 401, "invalid signature"),
        (
            "alg none",
            idp.app_token_v2().alg_none().build(),
            401,
            "token algorithm not allowed",
        ),
        (
            "HS256 with the public key",
            idp.app_token_v2().hs256_with_public_key().build(),
            401,
            "token algorithm not allowed",
        ),
        (
            "expired",
            idp.app_token_v2()
                .expired_since(Duration::from_secs(600))
                .build(),
            401,
            "token expired",
        ),
        (
            "not yet valid",
            idp.app_token_v2()
                .not_before_in(Duration::from_secs(900))
                .build(),
            401,
            "token not yet valid",
        ),
        (
            "wrong issuer",
            idp.app_token_v2()
                .iss("https://login.microsoftonline.com/evil/v2.0")
                .build(),
            401,
            "issuer not accepted",
        ),
        (
            "issuer with trailing slash",
            idp.app_token_v2()
                .iss(&format!("{}/", idp.issuer_v2()))
                .build(),
            401,
            "issuer not accepted",
        ),
        (
            "v1 issuer on a v2 token",
            idp.app_token_v2().iss(&idp.issuer_v1()).build(),
            401,
            "issuer not accepted",
        ),
        (
            "wrong audience",
            idp.app_token_v2().aud("api://someone-else").build(),
            401,
            "audience not accepted",
        ),
        (
            "other tenant",
            idp.app_token_v2()
                .iss(&format!(
                    "https://login.microsoftonline.com/{other_tenant}/v2.0"
                ))
                .tid(other_tenant)
                .build(),
            401,
            "issuer not accepted",
        ),
        (
            "signed by a key not in the JWKS",
            idp.app_token_v2().signed_with(&stranger).build(),
            401,
            "signing key not found",
        ),
        (
            "token too long",
            idp.app_token_v2()
                .claim("padding", "x".repeat(17 * 1024))
                .build(),
            401,
            "token too long",
        ),
        (
            "missing role",
            idp.app_token_v2().roles(["Fraud.Read"]).build(),
            403,
            "missing required role or scope",
        ),
        (
            "user token (scp) where an app role is required",
            idp.user_token_v2().claim("azp", ids::CLIENT_ID).build(),
            403,
            "caller identity requires an app token",
        ),
        (
            "caller not allowed",
            idp.app_token_v2().claim("azp", OTHER_CALLER).build(),
            403,
            "caller application not allowed",
        ),
        (
            "idtyp missing with callers restricted",
            idp.app_token_v2().without_claim("idtyp").build(),
            403,
            "caller identity requires an app token",
        ),
    ];

    for (name, token, status, description) in cases {
        let refusal = Refusal::from(callee.analyze(Some(&token)).await).await;
        assert_eq!(refusal.status.as_u16(), status, "{name}: {refusal:?}");
        assert_eq!(refusal.description(), description, "{name}");
        let challenge = refusal.www_authenticate.clone().unwrap_or_default();
        assert!(
            challenge.starts_with(&format!("Bearer realm=\"{REALM}\"")),
            "{name}: {challenge}"
        );
        let expected_error = if status == 401 {
            "invalid_token"
        } else {
            "insufficient_scope"
        };
        assert!(
            challenge.contains(&format!("error=\"{expected_error}\"")),
            "{name}: {challenge}"
        );
        assert_eq!(refusal.body["error"], expected_error, "{name}");
        let body = refusal.body.to_string();
        assert!(
            !body.contains(&token[..20.min(token.len())]) || token.len() < 20,
            "{name}: token echoed"
        );
    }
    let refusal = Refusal::from(
        callee
            .analyze(Some(&idp.app_token_v2().roles(["Fraud.Read"]).build()))
            .await,
    )
    .await;
    assert!(refusal
        .www_authenticate
        .unwrap()
        .contains("scope=\"Fraud.Scan\""));
    assert_eq!(
        callee.echo.request_count(),
        0,
        "nothing refused may reach the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_duplicated_authorization_are_refused() {
    if !require_envoy("missing_token") {
        return;
    }
    let callee = Callee::start().await;
    let missing = Refusal::from(callee.analyze(None).await).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.www_authenticate.as_deref(),
        Some("Bearer realm=\"fraud-detector\"")
    );

    let token = callee.idp.app_token_v2().build();
    let twice = entragate_tests::http_client()
        .post(callee.envoy.url("/fraud/analyze"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let twice = Refusal::from(twice).await;
    assert_eq!(twice.status, StatusCode::UNAUTHORIZED);
    assert_eq!(twice.description(), "more than one authorization header");

    // A token in the query string is not a credential.
    let query = entragate_tests::http_client()
        .post(
            callee
                .envoy
                .url(&format!("/fraud/analyze?access_token={token}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(callee.echo.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_route_passes_and_unmatched_route_is_denied() {
    if !require_envoy("anonymous_route") {
        return;
    }
    let callee = Callee::start().await;
    let client = entragate_tests::http_client();
    let health = client
        .get(callee.envoy.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let token = callee.idp.app_token_v2().build();
    let unmatched = client
        .get(callee.envoy.url("/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let unmatched = Refusal::from(unmatched).await;
    assert_eq!(unmatched.status, StatusCode::FORBIDDEN);
    assert_eq!(unmatched.description(), "no rule allows this route");
    // Wrong method on a known path is unmatched too.
    let get = client
        .get(callee.envoy.url("/fraud/analyze"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::FORBIDDEN);
    // Delegated scope rule: a user token with scp Fraud.Read passes.
    let user = callee.idp.user_token_v2().build();
    let reports = client
        .get(callee.envoy.url("/fraud/reports/daily"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(reports.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_is_picked_up_with_exactly_one_extra_fetch() {
    if !require_envoy("key_rotation") {
        return;
    }
    let callee = Callee::start().await;
    callee.wait_for_keys().await;
    let before = callee.idp.app_token_v2().build();
    assert_eq!(callee.analyze(Some(&before)).await.status(), StatusCode::OK);
    assert_eq!(callee.idp.jwks_fetches(), 1);

    callee.idp.rotate_keys(Rotation::RemoveOld).unwrap();
    let after = callee.idp.app_token_v2().build();
    assert_eq!(callee.analyze(Some(&after)).await.status(), StatusCode::OK);
    assert_eq!(callee.idp.jwks_fetches(), 2, "one refresh for the new kid");
    // The old key left the JWKS: tokens it signed no longer verify.
    let old = Refusal::from(callee.analyze(Some(&before)).await).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(old.description(), "signing key not found");
    // ... and the unknown-kid refresh is rate-limited: no third fetch.
    assert_eq!(callee.idp.jwks_fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_at_start_fails_closed_with_503_then_recovers_without_restart() {
    if !require_envoy("jwks_down_at_start") {
        return;
    }
    let callee = Callee::start_with(
        |_| {},
        |idp| idp.set_fault(Endpoint::Jwks, Fault::Status(500)),
    )
    .await;
    let token = callee.idp.app_token_v2().build();
    callee
        .envoy
        .wait_for_stat(
            &support::stat("entragate.jwks.fetch_failed"),
            Duration::from_secs(10),
            |v| v >= 1,
        )
        .await
        .unwrap();
    let refusal = Refusal::from(callee.analyze(Some(&token)).await).await;
    assert_eq!(
        refusal.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refusal:?}"
    );
    assert_eq!(refusal.body["error"], "temporarily_unavailable");
    assert!(
        refusal.www_authenticate.is_none(),
        "a 503 must not blame the caller's token"
    );

    callee.idp.clear_faults();
    let analyze_ok = || async { callee.analyze(Some(&token)).await.status() == StatusCode::OK };
    wait_until(
        Duration::from_secs(15),
        "recovery after the JWKS came back",
        analyze_ok,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_after_warm_up_keeps_accepting_valid_tokens() {
    if !require_envoy("jwks_down_after_warmup") {
        return;
    }
    let callee = Callee::start().await;
    callee.wait_for_keys().await;
    callee.idp.set_fault(Endpoint::Jwks, Fault::Status(500));
    callee.idp.set_down(true);
    for _ in 0..10 {
        let token = callee.idp.app_token_v2().build();
        assert_eq!(callee.analyze(Some(&token)).await.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_cold_requests_cause_exactly_one_jwks_fetch() {
    if !require_envoy("fifty_cold") {
        return;
    }
    // A slow JWKS keeps every request waiting on the one in-flight fetch.
    let callee = Callee::start_with(
        |_| {},
        |idp| idp.set_fault(Endpoint::Jwks, Fault::Slow(Duration::from_millis(1500))),
    )
    .await;
    let token = callee.idp.app_token_v2().build();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let url = callee.envoy.url("/fraud/analyze");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            // A fresh client per request spreads connections over both workers.
            let client = entragate_tests::http_client();
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), StatusCode::OK);
    }
    assert_eq!(
        callee.idp.jwks_fetches(),
        1,
        "one fetch per Envoy, not per worker or request"
    );
    assert_eq!(callee.echo.request_count(), 50);
}

#[test]
fn bad_plugin_config_is_rejected_by_envoy_validate_naming_the_field() {
    if !require_envoy("bad_config") {
        return;
    }
    let idp = entragate_tests::Idp::start().unwrap();
    let mut config = support::plugin_config(&idp);
    config["algorithms"] = json!(["HS256"]);
    let host = entragate_tests::FilterHost::from_env();
    let vars = entragate_tests::TemplateVars::new()
        .set("UPSTREAM_PORT", 1)
        .set("IDP_HOST", "127.0.0.1")
        .set("IDP_PORT", 1)
        .json_string("PLUGIN_CONFIG", &config);
    let vars = host.with_filter(vars).unwrap();
    let error =
        entragate_tests::Envoy::validate_template(&support::callee_template(), vars).unwrap_err();
    assert!(
        error.contains("algorithms"),
        "the log must name the bad field: {error}"
    );

    let good = entragate_tests::TemplateVars::new()
        .set("UPSTREAM_PORT", 1)
        .set("IDP_HOST", "127.0.0.1")
        .set("IDP_PORT", 1)
        .json_string("PLUGIN_CONFIG", &support::plugin_config(&idp));
    let good = host.with_filter(good).unwrap();
    entragate_tests::Envoy::validate_template(&support::callee_template(), good).unwrap();
}
