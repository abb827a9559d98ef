//! Every decision is auditable from Envoy's own access log: the filter
//! publishes its decision as filter state (`wasm.entragate_*`), and
//! `envoy/callee.yaml` writes it into a JSON access log. A real Envoy serves an
//! allowed request, three refusals and an anonymous route; each access-log
//! line must carry the decision's fields, and no line may carry the token.
//!
//! Both hosts publish under the same keys, so the same format and the same
//! assertions hold for each (`ENTRAGATE_FILTER_HOST`): the wasm filter through
//! proxy-wasm `set_property` (Envoy adds `wasm.`), the dynamic module through
//! `set_filter_state_bytes` with the full key (its fixture,
//! `fixtures/native-callee.yaml`, carries callee.yaml's access log unchanged).

mod support;

use std::time::Duration;

use entragate_tests::{ids, wait_for, FilterHost};
use reqwest::StatusCode;
use serde_json::{Map, Value};
use support::{require_envoy, Callee, OTHER_CALLER};

/// One access-log line by request path and status.
fn line<'a>(lines: &'a [Map<String, Value>], path: &str, status: u16) -> &'a Map<String, Value> {
    lines
        .iter()
        .find(|l| {
            l.get("path").and_then(Value::as_str) == Some(path)
                && l.get("status").and_then(Value::as_u64) == Some(u64::from(status))
        })
        .unwrap_or_else(|| panic!("no access-log line for {path} {status}: {lines:#?}"))
}

fn field<'a>(line: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    // Envoy writes `-` (or null) for a filter-state value that was never set.
    line.get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty() && *v != "-")
}

/// The access log's JSON lines, once there are at least `count`: Envoy
/// flushes file access logs periodically, so this polls.
async fn access_log_lines(callee: &Callee, count: usize) -> Vec<Map<String, Value>> {
    wait_for(Duration::from_secs(10), "access log", || {
        let text = callee.envoy.access_log();
        async move {
            let lines: Vec<Map<String, Value>> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            (lines.len() >= count).then_some(lines)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{count} access-log lines: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_records_every_decision_and_never_the_token() {
    if !require_envoy("audit_log") {
        return;
    }
    let callee = Callee::start().await;
    callee.wait_for_keys().await;
    let tenant = callee.idp.tenant_id();

    let good = callee.idp.app_token_v2().build();
    let response = callee.analyze(Some(&good)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let impostor = callee.idp.app_token_v2().claim("azp", OTHER_CALLER).build();
    let response = callee.analyze(Some(&impostor)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let expired = callee
        .idp
        .app_token_v2()
        .expired_since(Duration::from_secs(3600))
        .build();
    let response = callee.analyze(Some(&expired)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = callee.analyze(None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = entragate_tests::http_client()
        .get(callee.envoy.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let lines = access_log_lines(&callee, 5).await;
    let text = callee.envoy.access_log();
    println!("access log:\n{text}");

    let allowed = line(&lines, "/fraud/analyze", 200);
    assert_eq!(field(allowed, "decision"), Some("allow"));
    assert_eq!(field(allowed, "reason"), Some("token"));
    assert_eq!(field(allowed, "rule"), Some("analyze"));
    assert_eq!(field(allowed, "caller"), Some(ids::CLIENT_ID));
    assert_eq!(field(allowed, "tenant"), Some(tenant.as_str()));
    assert_eq!(field(allowed, "roles"), Some("Fraud.Scan"));
    let fingerprint = field(allowed, "token_sha256").expect("token fingerprint");
    assert_eq!(fingerprint.len(), 12);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));

    let refused = line(&lines, "/fraud/analyze", 403);
    assert_eq!(field(refused, "decision"), Some("deny"));
    assert_eq!(field(refused, "reason"), Some("caller_not_allowed"));
    assert_eq!(field(refused, "rule"), Some("analyze"));
    // Verified identity of the refused caller: who tried matters most.
    assert_eq!(field(refused, "caller"), Some(OTHER_CALLER));
    assert_eq!(field(refused, "tenant"), Some(tenant.as_str()));
    assert!(field(refused, "token_sha256").is_some());
    assert_ne!(field(refused, "token_sha256"), Some(fingerprint));

    let unauthenticated: Vec<&Map<String, Value>> = lines
        .iter()
        .filter(|l| l.get("status").and_then(Value::as_u64) == Some(401))
        .collect();
    assert_eq!(unauthenticated.len(), 2, "{lines:#?}");
    let reasons: Vec<Option<&str>> = unauthenticated.iter().map(|l| field(l, "reason")).collect();
    assert!(reasons.contains(&Some("expired")), "{reasons:?}");
    assert!(reasons.contains(&Some("token_missing")), "{reasons:?}");
    for l in &unauthenticated {
        assert_eq!(field(l, "decision"), Some("deny"));
        // Claims of a token that did not pass are never reported as identity.
        assert_eq!(field(l, "caller"), None);
        assert_eq!(field(l, "tenant"), None);
    }

    let health = line(&lines, "/healthz", 200);
    assert_eq!(field(health, "decision"), Some("allow"));
    assert_eq!(field(health, "reason"), Some("anonymous"));
    assert_eq!(field(health, "rule"), Some("health"));
    assert_eq!(field(health, "caller"), None);

    // The documented Prometheus names (docs/configuration.md, "Metrics"), with
    // each host's prefix.
    let host = FilterHost::from_env();
    let prometheus = entragate_tests::http_client()
        .get(format!("http://{}/stats/prometheus", callee.envoy.admin()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (metric, at_least) in [
        ("entragate_allowed", 1),
        ("entragate_allowed_anonymous", 1),
        ("entragate_denied_caller_not_allowed", 1),
        ("entragate_denied_expired", 1),
        ("entragate_denied_token_missing", 1),
        ("entragate_denied_issued_in_future", 0),
        ("entragate_jwks_fetch_ok", 1),
    ] {
        // Each host's prefix: none for wasm (Envoy strips `wasmcustom` and adds
        // no `envoy_`), `envoy_dynamicmodulescustom_` for the module.
        let value = prometheus.lines().find_map(|l| {
            l.strip_prefix(host.prometheus_prefix())?
                .strip_prefix(metric)?
                .strip_prefix("{} ")?
                .trim()
                .parse::<u64>()
                .ok()
        });
        assert!(
            value.is_some_and(|v| v >= at_least),
            "{}{metric} missing or below {at_least} in /stats/prometheus:\n{}",
            host.prometheus_prefix(),
            prometheus
                .lines()
                .filter(|l| l.contains("entragate"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    for token in [&good, &impostor, &expired] {
        for part in token.split('.') {
            assert!(!text.contains(part), "the access log holds part of a token");
        }
    }
}

/// `audit_fields: false` (for Envoys whose access log does not read them): the
/// same decisions, and no audit field in the access log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_fields_off_publishes_nothing_and_decides_the_same() {
    if !require_envoy("audit_log_off") {
        return;
    }
    let callee = Callee::start_with(|config| config["audit_fields"] = false.into(), |_| {}).await;
    callee.wait_for_keys().await;
    let good = callee.idp.app_token_v2().build();
    assert_eq!(callee.analyze(Some(&good)).await.status(), StatusCode::OK);
    assert_eq!(
        callee.analyze(None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let lines = access_log_lines(&callee, 2).await;
    for (path, status) in [("/fraud/analyze", 200), ("/fraud/analyze", 401)] {
        let l = line(&lines, path, status);
        for name in [
            "decision",
            "reason",
            "rule",
            "caller",
            "tenant",
            "roles",
            "token_sha256",
        ] {
            assert_eq!(field(l, name), None, "{name} in {l:?}");
        }
    }
}
