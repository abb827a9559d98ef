//! The mesh policy end to end: sidecars rendered by `bootstrap render` from `examples/fintech/mesh.yaml`
//! pass `envoy --mode validate` with the real `.wasm`, and run: the Transaction Processor's sidecar gets its
//! token from the real `bootstrap agent` (secret in moto_server, token from the local IdP) and calls the
//! Fraud Detector's sidecar, which validates it; the Reporting service, without the role, is refused.
//!
//! Everything listens on 127.0.0.1; the policy's hosts, ports, authority and agent addresses are overridden
//! with `--set`-style overrides, as a local run of the example would.

mod mesh_support;
mod outbound_support;
mod support;

use entragate_bootstrap::certs::{self, MeshCa};
use entragate_tests::Envoy;
use mesh_support::{call, load, render, Fintech, REPORTING_CLIENT, TP_CLIENT};
use reqwest::StatusCode;
use std::time::Duration;
use support::{require_envoy, Refusal};

#[test]
fn every_rendered_sidecar_passes_envoy_validate_with_the_real_wasm() {
    if !require_envoy("mesh_validate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The production authority (TLS to login.microsoftonline.com, SAN-checked); sidecars on loopback, over
    // the default mtls with certificates `bootstrap certs` issues (Envoy checks the SDS files exist).
    let mut sets = vec![
        "services.fraud-detector.host=127.0.0.1".to_string(),
        "services.fraud-detector.sidecar.inbound_address=127.0.0.1".into(),
    ];
    for service in ["fraud-detector", "transaction-processor", "reporting"] {
        sets.push(format!(
            "services.{service}.sidecar.certificates={}",
            dir.path().join(service).display()
        ));
    }
    let policy = load(&sets);
    let day = Duration::from_secs(86400);
    let (ca, _) = MeshCa::load_or_create(&dir.path().join("ca"), "cluster.local", day).unwrap();
    for service in policy.services() {
        certs::provision(&ca, service, day, false).unwrap();
    }
    for service in policy.services() {
        let key_file = service
            .is_caller()
            .then(|| dir.path().join(format!("{}.key", service.name)));
        let config = render(&policy, &service.name, key_file.as_deref());
        Envoy::validate(&config)
            .unwrap_or_else(|e| panic!("{}: envoy refused:\n{e}\n{config}", service.name));
    }
    // A local test IdP over plain http renders a plain cluster, which Envoy accepts too.
    let local = load(&[
        "identity_provider.authority=http://127.0.0.1:18080".into(),
        "services.fraud-detector.sidecar.inbound_address=127.0.0.1".into(),
        "transport.mode=plaintext".into(),
    ]);
    let config = render(&local, "fraud-detector", None);
    assert!(!config.contains("UpstreamTlsContext"));
    Envoy::validate(&config).unwrap_or_else(|e| panic!("envoy refused:\n{e}\n{config}"));

    // And Envoy refuses what the filter refuses: the rendered configuration is what the filter compiles.
    let broken = render(&policy, "fraud-detector", None).replace("\"Fraud.Scan\"", "\"\"");
    let error = Envoy::validate(&broken).expect_err("an empty role must be refused by the filter");
    assert!(error.contains("app_roles"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fintech_policy_runs_end_to_end() {
    if !require_envoy("mesh_e2e") {
        return;
    }
    // Plaintext: this test also calls the Fraud Detector's sidecar directly with plain HTTP (no token, the
    // anonymous probe); the same flows over mTLS are in mesh_mtls.rs.
    let mesh = Fintech::start().await;
    let (echo, inbound) = (&mesh.echo, mesh.inbound);
    let policy = mesh.policy(&["transport.mode=plaintext".into()]);
    let fraud = mesh
        .sidecar(&policy, "fraud-detector")
        .await
        .expect("fraud-detector sidecar");
    let tp = mesh
        .sidecar(&policy, "transaction-processor")
        .await
        .expect("transaction-processor sidecar");
    let reporting = mesh
        .sidecar(&policy, "reporting")
        .await
        .expect("reporting sidecar");
    assert_eq!(
        fraud.listener().port(),
        inbound,
        "the policy's port is the sidecar's"
    );

    // Transaction Processor -> POST /fraud/analyze: allowed (role Fraud.Scan, named caller).
    let response = call(&tp, reqwest::Method::POST, "/fraud/analyze").await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{:?}", response.text().await);
    let seen = echo
        .last_request()
        .expect("the Fraud Detector got the call");
    assert_eq!(seen.path, "/fraud/analyze");
    assert_eq!(seen.header("x-entra-caller"), Some(TP_CLIENT));
    assert_eq!(seen.header("x-entra-roles"), Some("Fraud.Scan"));
    let served = echo.request_count();

    // Reporting (role Fraud.Read only, not a named caller) -> POST /fraud/analyze: 403 insufficient_scope.
    let refusal =
        Refusal::from(call(&reporting, reqwest::Method::POST, "/fraud/analyze").await).await;
    assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{refusal:?}");
    assert_eq!(refusal.body["error"], "insufficient_scope", "{refusal:?}");
    assert!(
        refusal
            .www_authenticate
            .as_deref()
            .is_some_and(|h| h.contains("error=\"insufficient_scope\"")),
        "{refusal:?}"
    );
    assert_eq!(
        echo.request_count(),
        served,
        "a refused call never reaches the app"
    );
    // ... but it may read reports, as the table says.
    let response = call(&reporting, reqwest::Method::GET, "/fraud/reports/daily").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        echo.last_request().unwrap().header("x-entra-caller"),
        Some(REPORTING_CLIENT)
    );
    // The Transaction Processor may not read reports (first match: the reports rule names only reporting).
    let refusal =
        Refusal::from(call(&tp, reqwest::Method::GET, "/fraud/reports/daily").await).await;
    assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{refusal:?}");

    // No token (straight to the Fraud Detector's sidecar): 401; /healthz is anonymous; unlisted paths 403.
    let client = entragate_tests::http_client();
    let direct = |path: &str| format!("http://127.0.0.1:{inbound}{path}");
    let refusal = Refusal::from(
        client
            .post(direct("/fraud/analyze"))
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refusal.status, StatusCode::UNAUTHORIZED, "{refusal:?}");
    assert_eq!(
        refusal.www_authenticate.as_deref(),
        Some("Bearer realm=\"fraud-detector\"")
    );
    assert_eq!(
        client
            .get(direct("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let refusal = Refusal::from(client.get(direct("/admin")).send().await.unwrap()).await;
    assert_eq!(
        refusal.status,
        StatusCode::FORBIDDEN,
        "deny what no rule allows: {refusal:?}"
    );

    drop((tp, reporting, fraud));
    drop(mesh);
}
