//! The FinTech example (`examples/fintech/mesh.yaml`) on loopback, for the tests that run its sidecars:
//! local IdP with the policy's tenant and app registrations, client secrets in moto, the real `bootstrap
//! agent` per caller, an echo Fraud Detector, and the three sidecars rendered by `bootstrap render`'s
//! renderer and started as real Envoys.

#![allow(dead_code)]

use std::path::Path;

use crate::outbound_support::agent::{Agent, AgentSpec};
use crate::outbound_support::{moto, REGION};
use entragate_bootstrap::agent::key;
use entragate_mesh::render::envoy::{self, EnvoyOptions, FilterModule};
use entragate_mesh::render::wasm::WasmModule;
use entragate_mesh::{self as mesh, MeshPolicy, Override};
use entragate_tests::{
    free_ports, repo_root, ApiApp, ClientApp, Echo, Envoy, FilterHost, Idp, TemplateVars,
    TokenVersion,
};

pub const TENANT: &str = "4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f";
pub const FRAUD_APP: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
pub const FRAUD_URI: &str = "api://fintech-fraud-detector";
pub const TP_CLIENT: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
pub const REPORTING_CLIENT: &str = "8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f";

pub fn example() -> String {
    let path = repo_root().join("examples/fintech/mesh.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn load(overrides: &[String]) -> MeshPolicy {
    let overrides: Vec<Override> = overrides
        .iter()
        .map(|o| Override::parse(o).unwrap())
        .collect();
    mesh::from_str(&example(), "examples/fintech/mesh.yaml", &overrides)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn wasm() -> WasmModule {
    let path = entragate_tests::wasm_path().expect("the filter .wasm (cargo xtask build-wasm)");
    WasmModule::from_file(&path, None).unwrap()
}

/// The filter build every sidecar runs: the host under test (`ENTRAGATE_FILTER_HOST`), for callees and
/// callers alike (the native module has both roles).
pub fn filter_for(_service: &mesh::policy::Service) -> FilterModule {
    match FilterHost::from_env() {
        FilterHost::Native => FilterModule::Native,
        FilterHost::Wasm => FilterModule::Wasm(wasm()),
    }
}

/// `service`'s sidecar with the wasm filter (what `Envoy::validate` can load without a module search path).
pub fn render(policy: &MeshPolicy, service: &str, key_file: Option<&Path>) -> String {
    render_with(policy, service, key_file, FilterModule::Wasm(wasm()))
}

fn render_with(
    policy: &MeshPolicy,
    service: &str,
    key_file: Option<&Path>,
    filter: FilterModule,
) -> String {
    let service = policy.service(service).unwrap();
    let agent_key = key_file.map(|path| {
        let (k, _) = key::load_or_create(path, false).unwrap();
        k.as_str().to_string()
    });
    envoy::render(policy, service, &EnvoyOptions { filter, agent_key })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One calling service's agent, started from the policy's identity.
pub async fn start_agent(policy: &MeshPolicy, service: &str, idp: &Idp, dir: &Path) -> Agent {
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
pub async fn call(sidecar: &Envoy, method: reqwest::Method, path: &str) -> reqwest::Response {
    try_call(sidecar, method, path)
        .await
        .expect("request through the caller sidecar")
}

pub async fn try_call(
    sidecar: &Envoy,
    method: reqwest::Method,
    path: &str,
) -> reqwest::Result<reqwest::Response> {
    entragate_tests::http_client()
        .request(method, sidecar.url(path))
        .header(reqwest::header::HOST, "fraud-detector")
        .body(r#"{"transaction":"tx-1","amount":120.5}"#)
        .send()
        .await
}

/// Everything but the sidecars: IdP, echo app, secrets, agents, and the loopback overrides.
pub struct Fintech {
    pub idp: Idp,
    pub echo: Echo,
    pub agents: Vec<Agent>,
    dirs: Vec<tempfile::TempDir>,
    /// `--set` overrides putting the example on loopback with these agents and free ports.
    pub overrides: Vec<String>,
    pub inbound: u16,
}

impl Fintech {
    pub async fn start() -> Fintech {
        // The tenant and app registrations the policy names.
        let idp = Idp::builder().tenant(TENANT).start().expect("idp");
        idp.register_api(ApiApp::new(FRAUD_APP, FRAUD_URI, TokenVersion::V2));
        idp.register_client(
            ClientApp::new(TP_CLIENT, "tp-secret-not-real").grant(FRAUD_APP, ["Fraud.Scan"]),
        );
        idp.register_client(
            ClientApp::new(REPORTING_CLIENT, "rep-secret-not-real")
                .grant(FRAUD_APP, ["Fraud.Read"]),
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
            let json = serde_json::json!({ "ClientId": client, "ClientSecret": value, "TenantId": TENANT });
            moto.put_secret(REGION, secret, &json.to_string())
                .await
                .expect("seeding the secret");
        }
        let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let base = load(&[]);
        let tp_agent = start_agent(&base, "transaction-processor", &idp, dirs[0].path()).await;
        let reporting_agent = start_agent(&base, "reporting", &idp, dirs[1].path()).await;

        let [inbound, admin_fd, admin_tp, out_tp, admin_rep, out_rep] =
            free_ports().expect("free ports");
        let overrides = vec![
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
        ];
        Fintech {
            idp,
            echo,
            agents: vec![tp_agent, reporting_agent],
            dirs,
            overrides,
            inbound,
        }
    }

    /// The policy on loopback, with `extra` overrides.
    pub fn policy(&self, extra: &[String]) -> MeshPolicy {
        load(&[self.overrides.clone(), extra.to_vec()].concat())
    }

    /// Starts `service`'s sidecar rendered from `policy`, with the filter of the host under test
    /// ([`filter_for`]).
    pub async fn sidecar(&self, policy: &MeshPolicy, service: &str) -> anyhow::Result<Envoy> {
        let key_file = match service {
            "transaction-processor" => Some(self.dirs[0].path().join("agent-key")),
            "reporting" => Some(self.dirs[1].path().join("agent-key")),
            _ => None,
        };
        let filter = filter_for(policy.service(service).unwrap());
        let env = match filter {
            FilterModule::Native => FilterHost::Native.rendered_sidecar_env()?,
            FilterModule::Wasm(_) => Vec::new(),
        };
        let config = render_with(policy, service, key_file.as_deref(), filter);
        let options = entragate_tests::EnvoyOptions {
            env,
            ..Default::default()
        };
        Envoy::start_with(&config, TemplateVars::new(), options).await
    }
}
