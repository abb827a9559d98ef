//! End to end, caller to callee: reqwest → caller-side Envoy (outbound filter
//! attaches the token it gets from the real `bootstrap agent`, which reads its
//! secret from moto_server and its tokens from the local IdP) → callee-side
//! Envoy (validates) → echo. Agent-only behaviour (Secrets Manager errors, the
//! agent's own backoff) is tested in `bootstrap/tests`.

mod outbound_support;
mod support;

use std::time::{Duration, Instant};

use entragate_tests::{decode_jwt, ids, ClientApp, Endpoint, Envoy, Fault, TemplateVars};
use outbound_support::{
    caller_template, eventually, exp_of, moto, now_ms, outbound_config, secret_json, token_seen_by,
    with_filter, Chain, ChainOptions, ANALYZE, REGION,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{require_envoy, Refusal};

/// The test client with the roles the callee requires, under a new secret.
fn client_with_secret(secret: &str) -> ClientApp {
    ClientApp {
        client_id: ids::CLIENT_ID.into(),
        secret: secret.into(),
        sp_object_id: ids::CLIENT_SP_OBJECT_ID.into(),
        granted_roles: vec![(ids::API_APP_ID.into(), vec![ids::CLIENT_ROLE.into()])],
    }
}

/// Calls `chain` every `every` for `duration`; every call must succeed.
/// Returns `(call start in Unix ms, token the callee's app saw)` per call.
async fn call_steadily(chain: &Chain, duration: Duration, every: Duration) -> Vec<(u128, String)> {
    let mut seen = Vec::new();
    let mut pace = tokio::time::interval(every);
    let end = Instant::now() + duration;
    while Instant::now() < end {
        pace.tick().await;
        let started = now_ms();
        let response = chain.analyze().await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "call {} failed: {body}", seen.len());
        let token = token_seen_by(&chain.callee).expect("the app saw a bearer token");
        seen.push((started, token));
    }
    seen
}

/// Calls the caller sidecar every 25 ms from a background task until the
/// returned stop function is called; it yields every status seen.
fn call_in_background(
    url: String,
) -> (
    tokio::task::JoinHandle<Vec<StatusCode>>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let task = tokio::spawn(async move {
        let client = entragate_tests::http_client();
        let mut pace = tokio::time::interval(Duration::from_millis(25));
        let mut statuses = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            pace.tick().await;
            let status = client
                .post(&url)
                .body("{}")
                .send()
                .await
                .map(|r| r.status());
            statuses.push(status.unwrap_or(StatusCode::BAD_GATEWAY));
        }
        statuses
    });
    (task, stop)
}

#[test]
fn caller_template_validates_and_a_bad_outbound_config_is_refused_naming_the_field() {
    if !require_envoy("caller_template_validates") {
        return;
    }
    let vars = |config: &Value| {
        with_filter(
            TemplateVars::new()
                .set("CALLEE_HOST", "127.0.0.1")
                .set("CALLEE_PORT", 1)
                .set("AGENT_PORT", 15901)
                .json_string("PLUGIN_CONFIG", config),
        )
    };
    let good = outbound_config(&"ab".repeat(32));
    Envoy::validate_template(&caller_template(), vars(&good)).unwrap();

    let mut missing_key = good.clone();
    missing_key["agent"].as_object_mut().unwrap().remove("key");
    let error = Envoy::validate_template(&caller_template(), vars(&missing_key)).unwrap_err();
    assert!(
        error.contains("agent.key"),
        "the log must name the bad field: {error}"
    );

    let mut typo = good.clone();
    typo["destinations"][0]["cluster"] = json!("fraud_detector");
    let error = Envoy::validate_template(&caller_template(), vars(&typo)).unwrap_err();
    assert!(error.contains("destinations[0].cluster"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_attached_and_200_calls_cost_one_token_request() {
    if !require_envoy("one_token_request") {
        return;
    }
    let chain = Chain::start(ChainOptions::new("success")).await;
    let first = chain.analyze().await;
    assert_eq!(first.status(), StatusCode::OK, "{:?}", first.text().await);
    let seen = chain
        .callee
        .echo
        .last_request()
        .expect("the app got the call");
    assert_eq!(seen.header("x-entra-caller"), Some(ids::CLIENT_ID));
    assert_eq!(seen.header("x-entra-roles"), Some(ids::CLIENT_ROLE));
    let token = token_seen_by(&chain.callee).unwrap();
    let claims = decode_jwt(&token).unwrap().claims;
    assert_eq!(claims.get("aud"), Some(&json!(ids::API_APP_ID)));
    assert_eq!(claims.get("azp"), Some(&json!(ids::CLIENT_ID)));
    let authorizations = seen
        .header_list
        .iter()
        .filter(|(n, _)| n == "authorization")
        .count();
    assert_eq!(authorizations, 1);

    // 199 more, 20 at a time so both caller workers serve them.
    let client = entragate_tests::http_client();
    let url = chain.caller.url(ANALYZE);
    for _ in 0..10 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let request = client.post(&url).body(r#"{"amount":1}"#).send();
            batch.spawn(async move { request.await.map(|r| r.status()) });
        }
        while let Some(status) = batch.join_next().await {
            let status = status.unwrap().unwrap();
            assert_eq!(status, StatusCode::OK);
        }
    }
    let total_calls = 1 + 200;
    assert_eq!(chain.callee.echo.request_count(), total_calls);
    assert_eq!(
        chain.callee.idp.counters().token,
        1,
        "{total_calls} calls: one token request at the IdP"
    );
    assert_eq!(
        chain.caller_stat("agent_fetch_ok").await,
        1,
        "one agent callout per Envoy"
    );
    assert_eq!(
        chain.caller_stat("token_injected").await,
        total_calls as u64
    );

    // An Authorization the application set itself is left alone.
    let own = chain
        .callee
        .idp
        .app_token_v2()
        .claim("jti", "the-apps-own-token")
        .build();
    let response = entragate_tests::http_client()
        .post(chain.caller.url(ANALYZE))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(token_seen_by(&chain.callee).as_deref(), Some(own.as_str()));
    assert_eq!(chain.caller_stat("authorization_kept").await, 1);

    // Tokens appear in no log, only their sha256 prefix.
    let agent_log = chain.agent.as_ref().unwrap().log();
    for (what, log) in [("caller envoy", chain.caller.logs()), ("agent", agent_log)] {
        assert!(!log.contains(&token), "{what} logged the token");
    }
    assert!(chain.caller.logs().contains("token fetched (sha256 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_ahead_of_expiry_without_a_failed_call() {
    if !require_envoy("refresh_ahead") {
        return;
    }
    // 15 s: the agent stops serving a token lifetime/10 = 1.5 s before its
    // end, which must cover the IdP's whole-second `exp` (up to 1 s earlier
    // than receipt + expires_in) plus request transit on a loaded machine.
    let lifetime = Duration::from_secs(15);
    let chain =
        Chain::start(ChainOptions::new("refresh").idp(move |idp| idp.set_token_lifetime(lifetime)))
            .await;
    let calls = call_steadily(&chain, Duration::from_secs(32), Duration::from_millis(25)).await;

    let mut margins_ms = Vec::new();
    for pair in calls.windows(2) {
        let [(_, before), (at, after)] = pair else {
            continue;
        };
        if before != after {
            // The old token still had this long to live when the new one took over.
            margins_ms.push(exp_of(before) as i128 * 1000 - *at as i128);
        }
    }
    for (at, token) in &calls {
        assert!(
            exp_of(token) as i128 * 1000 > *at as i128,
            "an expired token was sent at {at}"
        );
    }
    eprintln!(
        "refresh: {} calls, {} token changes, margins before expiry (ms): {margins_ms:?}, IdP token requests: {}",
        calls.len(),
        margins_ms.len(),
        chain.callee.idp.counters().token
    );
    assert!(
        margins_ms.len() >= 2,
        "32 s of 15 s tokens: at least two refreshes"
    );
    assert!(margins_ms.iter().all(|m| *m > 0), "{margins_ms:?}");
    let requests = chain.callee.idp.counters().token;
    assert!(
        (3..=6).contains(&requests),
        "one IdP request per lifetime: {requests}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_waited_out_and_calls_recover_without_restart() {
    if !require_envoy("retry_after") {
        return;
    }
    let chain = Chain::start(
        ChainOptions::new("throttled")
            .idp(|idp| {
                idp.set_fault(
                    Endpoint::Token,
                    Fault::TooManyRequests {
                        retry_after_secs: 2,
                    },
                )
            })
            .config(|c| c["request_wait_ms"] = json!(300))
            .no_agent_wait(),
    )
    .await;
    // While Entra throttles, calls are refused with a reason, never sent bare.
    let refusal = Refusal::from(chain.analyze().await).await;
    assert_eq!(
        refusal.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refusal:?}"
    );
    assert_eq!(refusal.body["error"], "token_unavailable");
    assert!(!refusal.description().is_empty());
    assert_eq!(chain.callee.echo.request_count(), 0);

    // The agent honours Retry-After: two consecutive token requests, both
    // observed as they happen, are at least 2 s apart (jitter only adds).
    let idp = &chain.callee.idp;
    let seen = idp.counters().token;
    eventually(Duration::from_secs(10), "a token request", || async {
        idp.counters().token > seen
    })
    .await;
    let first = Instant::now();
    eventually(
        Duration::from_secs(10),
        "the next token request",
        || async { idp.counters().token > seen + 1 },
    )
    .await;
    let gap = first.elapsed();
    assert!(gap >= Duration::from_millis(1_900), "retried after {gap:?}");

    idp.clear_faults();
    let recovered = Instant::now();
    eventually(
        Duration::from_secs(15),
        "a successful call after the throttling",
        || async { chain.analyze().await.status() == StatusCode::OK },
    )
    .await;
    eprintln!(
        "429: first 503 reason {:?}; agent retry gap {gap:?}; recovered {:?} after the IdP stopped throttling; IdP token requests {}",
        refusal.description(),
        recovered.elapsed(),
        idp.counters().token
    );
    assert!(
        idp.counters().token <= 8,
        "no request storm: {}",
        idp.counters().token
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_in_secrets_manager_keeps_calls_succeeding() {
    if !require_envoy("secret_rotation") {
        return;
    }
    let lifetime = Duration::from_secs(6);
    let chain = Chain::start(
        ChainOptions::new("rotation").idp(move |idp| idp.set_token_lifetime(lifetime)),
    )
    .await;
    assert_eq!(chain.analyze().await.status(), StatusCode::OK);
    let before = token_seen_by(&chain.callee).unwrap();

    // Rotate: new value in Secrets Manager, old secret revoked at the IdP.
    let rotated = "tst8Q~rotated-secret-not-real-1111111111";
    moto::shared()
        .put_secret(REGION, &chain.spec.secret_id, &secret_json(rotated))
        .await
        .unwrap();
    chain
        .callee
        .idp
        .register_client(client_with_secret(rotated));

    let calls = call_steadily(&chain, Duration::from_secs(14), Duration::from_millis(25)).await;
    let log = chain.callee.idp.token_requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    eprintln!(
        "rotation: {} calls, IdP token answers {statuses:?}",
        calls.len()
    );
    assert!(
        statuses.contains(&401),
        "the old secret was tried and refused: {statuses:?}"
    );
    let last_refusal = statuses.iter().rposition(|s| *s == 401).unwrap();
    assert!(
        statuses[last_refusal..].contains(&200),
        "then the rotated one worked: {statuses:?}"
    );
    let latest = &calls.last().unwrap().1;
    assert_ne!(latest, &before, "tokens from the rotated secret are in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_restarted_while_envoy_runs_keeps_serving_it() {
    if !require_envoy("agent_restart") {
        return;
    }
    let lifetime = Duration::from_secs(8);
    let mut chain =
        Chain::start(ChainOptions::new("restart").idp(move |idp| idp.set_token_lifetime(lifetime)))
            .await;
    assert_eq!(chain.analyze().await.status(), StatusCode::OK);
    let requests_before = chain.callee.idp.counters().token;

    // Calls keep flowing while the agent is stopped and started again.
    let (background, stop) = call_in_background(chain.caller.url(ANALYZE));
    chain.restart_agent().await;
    let restarted_at = now_ms();
    assert!(
        chain.callee.idp.counters().token > requests_before,
        "the new agent got its own token"
    );
    // The running Envoy picks up the new agent's tokens (same port, same key
    // file: no Envoy reload): the next refresh comes from the new agent.
    let calls = call_steadily(&chain, Duration::from_secs(12), Duration::from_millis(25)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = background.await.unwrap();
    assert!(
        during.iter().all(|s| *s == StatusCode::OK),
        "every call during the restart succeeded: {during:?}"
    );
    let (_, latest) = calls.last().unwrap();
    let issued_at = decode_jwt(latest)
        .unwrap()
        .claims
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap();
    assert!(
        issued_at as i128 * 1000 >= restarted_at as i128,
        "a token the restarted agent fetched is attached"
    );
    eprintln!(
        "restart: {} calls during and {} after the restart, all 200",
        during.len(),
        calls.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_agent_down_an_expired_token_fails_closed_then_recovers() {
    if !require_envoy("fail_closed") {
        return;
    }
    let lifetime = Duration::from_secs(4);
    let mut chain =
        Chain::start(ChainOptions::new("down").idp(move |idp| idp.set_token_lifetime(lifetime)))
            .await;
    assert_eq!(chain.analyze().await.status(), StatusCode::OK);
    chain.stop_agent();
    let stopped = Instant::now();

    // The cached token carries calls until it is about to expire; then 503.
    let mut refusal = None;
    let mut pace = tokio::time::interval(Duration::from_millis(25));
    while stopped.elapsed() < Duration::from_secs(15) {
        pace.tick().await;
        let response = chain.analyze().await;
        if response.status() != StatusCode::OK {
            refusal = Some(Refusal::from(response).await);
            break;
        }
    }
    let refusal = refusal.expect("calls must fail closed once the token expired");
    let forwarded = chain.callee.echo.request_count();
    eprintln!(
        "agent down: first refusal after {:?}: {:?}",
        stopped.elapsed(),
        refusal.body
    );
    assert_eq!(refusal.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refusal.body["error"], "token_unavailable");
    assert!(refusal.description().contains("agent"), "{refusal:?}");
    let again = Refusal::from(chain.analyze().await).await;
    assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        chain.callee.echo.request_count(),
        forwarded,
        "refused calls never leave"
    );
    assert!(chain.caller_stat("refused.token_unavailable").await >= 2);

    chain.restart_agent().await;
    eventually(Duration::from_secs(10), "calls succeed again", || async {
        chain.analyze().await.status() == StatusCode::OK
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_the_role_gets_403_from_the_callee() {
    if !require_envoy("missing_role") {
        return;
    }
    let chain = Chain::start(ChainOptions::new("no-role").idp(|idp| {
        let mut client = client_with_secret(ids::CLIENT_SECRET);
        client.granted_roles.clear();
        idp.register_client(client);
    }))
    .await;
    let refusal = Refusal::from(chain.analyze().await).await;
    assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{refusal:?}");
    assert_eq!(refusal.body["error"], "insufficient_scope");
    let challenge = refusal.www_authenticate.unwrap_or_default();
    assert!(challenge.contains("scope=\"Fraud.Scan\""), "{challenge}");
    assert_eq!(
        chain.caller_stat("token_injected").await,
        1,
        "the token was attached"
    );
    assert_eq!(chain.callee.echo.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_agent_key_fails_closed_with_a_reason_naming_it() {
    if !require_envoy("wrong_agent_key") {
        return;
    }
    let chain = Chain::start(
        ChainOptions::new("wrong-key").config(|c| c["agent"]["key"] = json!("0".repeat(64))),
    )
    .await;
    let refusal = Refusal::from(chain.analyze().await).await;
    assert_eq!(
        refusal.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refusal:?}"
    );
    assert!(
        refusal
            .description()
            .contains("agent refused the agent key"),
        "{refusal:?}"
    );
    assert_eq!(chain.callee.echo.request_count(), 0);
}
