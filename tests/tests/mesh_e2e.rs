//! The mesh policy end to end: sidecars rendered by `bootstrap render` from `examples/fintech/mesh.yaml`
//! pass `envoy --mode validate` with the real `.wasm`, and run: the Transaction Processor's sidecar gets its
//! token from the real `bootstrap agent` (secret in moto_server, token from the local IdP) and calls the
//! Fraud Detector's sidecar, which validates it; the Reporting service, without the role, is refused.
//!
//! Everything listens on 127.0.0.1; the policy's hosts, ports, authority and agent addresses are overridden
//! with `--set`-style overrides, as a local run of the example would.

mod outbound_support;
mod support;

use std::path::Path;

use entragate_bootstrap::agent::key;
use entragate_mesh::render::envoy::{self, EnvoyOptions};
use entragate_mesh::render::wasm::WasmModule;
use entragate_mesh::{self as mesh, MeshPolicy, Override};
use entragate_tests::{
    free_port, repo_root, ApiApp, ClientApp, Echo, Envoy, Idp, TemplateVars, TokenVersion,
};
use outbound_support::agent::{Agent, AgentSpec};
use outbound_support::{moto, REGION};
use reqwest::StatusCode;
use support::{require_envoy, Refusal};

const TENANT: &str = "4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f";
const FRAUD_APP: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const FRAUD_URI: &str = "api://fintech-fraud-detector";
const TP_CLIENT: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
const REPORTING_CLIENT: &str = "8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f";

fn example() -> String {
    let path = repo_root().join("examples/fintech/mesh.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn load(overrides: &[String]) -> MeshPolicy {
    let overrides: Vec<Override> = overrides
        .iter()
        .map(|o| Override::parse(o).unwrap())
        .collect();
    mesh::from_str(&example(), "examples/fintech/mesh.yaml", &overrides)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn wasm() -> WasmModule {
    let path = entragate_tests::wasm_path().expect("the filter .wasm (cargo xtask build-wasm)");
    WasmModule::from_file(&path, None).unwrap()
}

fn render(policy: &MeshPolicy, service: &str, key_file: Option<&Path>) -> String {
    let service = policy.service(service).unwrap();
    let agent_key = key_file.map(|path| {
        let (k, _) = key::load_or_create(path, false).unwrap();
        k.as_str().to_string()
    });
    envoy::render(
        policy,
        service,
        &EnvoyOptions {
            wasm: wasm(),
            agent_key,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_rendered_sidecar_passes_envoy_validate_with_the_real_wasm() {
    if !require_envoy("mesh_validate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The production authority (TLS to login.microsoftonline.com, SAN-checked); sidecars on loopback.
    let policy = load(&[
        "services.fraud-detector.host=127.0.0.1".into(),
        "services.fraud-detector.sidecar.inbound_address=127.0.0.1".into(),
    ]);
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
    ]);
    let config = render(&local, "fraud-detector", None);
    assert!(!config.contains("UpstreamTlsContext"));
    Envoy::validate(&config).unwrap_or_else(|e| panic!("envoy refused:\n{e}\n{config}"));

    // And Envoy refuses what the filter refuses: the rendered configuration is what the filter compiles.
    let broken = render(&policy, "fraud-detector", None).replace("\"Fraud.Scan\"", "\"\"");
    let error = Envoy::validate(&broken).expect_err("an empty role must be refused by the filter");
    assert!(error.contains("app_roles"), "{error}");
}

/// One calling service's agent, started from the policy's identity.
async fn start_agent(policy: &MeshPolicy, service: &str, idp: &Idp, dir: &Path) -> Agent {
    let identity = policy.service(service).unwrap().identity.clone().unwrap();
    let fraud = policy.service("fraud-detector").unwrap();
    let spec = AgentSpec {
        secret_id: match identity.credential {
            mesh::policy::CallerCredential::Secret { secret_id } => secret_id,
            other => panic!("the example's callers use secrets, not {}", other.kind()),
        },
        region: identity.region,
        moto_endpoint: moto::shared().endpoint.clone(),
        authority: idp.base_url(),
        scope: format!("fraud-detector={}", fraud.application.default_scope()),
        dir: dir.to_path_buf(),
        extra_args: Vec::new(),
    };
    let agent = Agent::start(&spec, "127.0.0.1:0").await.expect("agent");
    agent.wait_ready().await.expect("agent ready");
    agent
}

/// A request the application behind a caller sidecar makes: plain HTTP to its sidecar, `Host` naming the
/// service it calls.
async fn call(sidecar: &Envoy, method: reqwest::Method, path: &str) -> reqwest::Response {
    entragate_tests::http_client()
        .request(method, sidecar.url(path))
        .header(reqwest::header::HOST, "fraud-detector")
        .body(r#"{"transaction":"tx-1","amount":120.5}"#)
        .send()
        .await
        .expect("request through the caller sidecar")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fintech_policy_runs_end_to_end() {
    if !require_envoy("mesh_e2e") {
        return;
    }
    // The tenant and app registrations the policy names.
    let idp = Idp::builder().tenant(TENANT).start().expect("idp");
    idp.register_api(ApiApp::new(FRAUD_APP, FRAUD_URI, TokenVersion::V2));
    idp.register_client(
        ClientApp::new(TP_CLIENT, "tp-secret-not-real").grant(FRAUD_APP, ["Fraud.Scan"]),
    );
    idp.register_client(
        ClientApp::new(REPORTING_CLIENT, "rep-secret-not-real").grant(FRAUD_APP, ["Fraud.Read"]),
    );
    let echo = Echo::start().expect("echo");
    let moto = moto::shared();
    for (secret, client, value) in [
        (
            "fintech/transaction-processor/identity",
            TP_CLIENT,
            "tp-secret-not-real",
        ),
        (
            "fintech/reporting/identity",
            REPORTING_CLIENT,
            "rep-secret-not-real",
        ),
    ] {
        let json =
            serde_json::json!({ "ClientId": client, "ClientSecret": value, "TenantId": TENANT });
        moto.put_secret(REGION, secret, &json.to_string())
            .await
            .expect("seeding the secret");
    }
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let base = load(&[]);
    let tp_agent = start_agent(&base, "transaction-processor", &idp, dirs[0].path()).await;
    let reporting_agent = start_agent(&base, "reporting", &idp, dirs[1].path()).await;

    let port = || free_port().expect("free port");
    let (inbound, admin_fd, admin_tp, out_tp, admin_rep, out_rep) =
        (port(), port(), port(), port(), port(), port());
    let policy = load(&[
        format!("identity_provider.authority={}", idp.base_url()),
        "services.fraud-detector.host=127.0.0.1".into(),
        "services.fraud-detector.sidecar.inbound_address=127.0.0.1".into(),
        format!("services.fraud-detector.ports.inbound={inbound}"),
        format!("services.fraud-detector.ports.app={}", echo.port()),
        format!("services.fraud-detector.ports.admin={admin_fd}"),
        format!("services.transaction-processor.ports.admin={admin_tp}"),
        format!("services.transaction-processor.ports.outbound={out_tp}"),
        format!(
            "services.transaction-processor.sidecar.agent={}",
            tp_agent.addr()
        ),
        format!("services.reporting.ports.admin={admin_rep}"),
        format!("services.reporting.ports.outbound={out_rep}"),
        format!(
            "services.reporting.sidecar.agent={}",
            reporting_agent.addr()
        ),
    ]);
    let start = |config: String| async move { Envoy::start(&config, TemplateVars::new()).await };
    let fraud = start(render(&policy, "fraud-detector", None))
        .await
        .expect("fraud-detector sidecar");
    let tp = start(render(
        &policy,
        "transaction-processor",
        Some(&dirs[0].path().join("agent-key")),
    ))
    .await
    .expect("transaction-processor sidecar");
    let reporting = start(render(
        &policy,
        "reporting",
        Some(&dirs[1].path().join("agent-key")),
    ))
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
    drop((tp_agent, reporting_agent));
}
