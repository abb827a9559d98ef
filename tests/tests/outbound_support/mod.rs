//! The whole caller → callee chain for the end-to-end tests:
//!
//! ```text
//! reqwest ─▶ caller-side Envoy (envoy/caller.yaml, filter root_id entragate_outbound;
//!            or the native module's template with ENTRAGATE_FILTER_HOST=native)
//!               │ GET /v1/token?scope=… + x-entragate-agent-key
//!               ▼
//!           bootstrap agent ──GetSecretValue──▶ moto_server (Secrets Manager)
//!               └──client_credentials──▶ local IdP token endpoint
//!            ─▶ callee-side Envoy (envoy/callee.yaml, validates) ─▶ echo (Fraud Detector)
//! ```
//!
//! The callee side, IdP and echo come from `../support` ([`Callee`]).

#![allow(dead_code)] // each test uses a different subset

pub mod agent;
pub mod moto;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entragate_tests::{decode_jwt, ids, Envoy, FilterHost, TemplateVars};
use reqwest::Response;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::support::Callee;
use agent::{Agent, AgentSpec};

/// Region of every test secret.
pub const REGION: &str = "us-east-1";
/// The secret the issue names; tests append a suffix to keep theirs apart.
pub const SECRET_ID: &str = "fintech/transaction-processor/identity";
/// What the caller asks for: the test API's App ID URI.
pub const SCOPE: &str = "api://entragate-test-api/.default";
/// The callee route that requires app role `Fraud.Scan` from `ids::CLIENT_ID`.
pub const ANALYZE: &str = "/fraud/analyze";

/// Two Envoys, an agent, an IdP and an echo per test: on a 2-core machine,
/// more than a few chains at once only makes every test's timing noisy.
static CHAINS: Semaphore = Semaphore::const_new(3);

/// The caller sidecar template of the host under test (`ENTRAGATE_FILTER_HOST`).
pub fn caller_template() -> String {
    FilterHost::from_env().caller_template()
}

/// `vars` with the filter binary of the host under test.
pub fn with_filter(vars: TemplateVars) -> TemplateVars {
    FilterHost::from_env()
        .with_filter(vars)
        .expect("filter binary")
}

/// `name` (e.g. `entragate.outbound.waited`) as the host under test shows it.
pub fn stat(name: &str) -> String {
    FilterHost::from_env().stat(name)
}

/// `{"ClientId","ClientSecret","TenantId"}` as stored in Secrets Manager.
pub fn secret_json(client_secret: &str) -> String {
    json!({
        "ClientId": ids::CLIENT_ID,
        "ClientSecret": client_secret,
        "TenantId": ids::TENANT_ID,
    })
    .to_string()
}

/// The outbound filter configuration the tests start from: the callee cluster
/// gets the test API's token; short retries so recovery tests finish quickly.
pub fn outbound_config(agent_key: &str) -> Value {
    json!({
        "agent": { "cluster": "entragate_agent", "key": agent_key, "timeout_ms": 1000 },
        "destinations": [
            { "name": "fraud-detector", "scope": SCOPE, "clusters": ["fraud_detector"] }
        ],
        "retry_initial_ms": 100,
        "retry_max_ms": 500,
        "request_wait_ms": 3000
    })
}

/// Knobs of one chain.
pub struct ChainOptions {
    /// Suffix of the secret id (unique per test: they share one moto).
    pub tag: &'static str,
    /// Runs on the IdP before the agent starts (lifetimes, faults, clients).
    pub prepare_idp: Box<dyn FnOnce(&entragate_tests::Idp) + Send>,
    /// Edits the outbound filter configuration.
    pub adjust: Box<dyn FnOnce(&mut Value) + Send>,
    /// Wait for the agent's `/healthz` before starting the caller Envoy.
    pub wait_agent_ready: bool,
    /// More `bootstrap agent` arguments.
    pub agent_args: Vec<String>,
    /// Secrets Manager endpoint (default: the moto shared by the test binary).
    pub moto_endpoint: Option<String>,
}

impl ChainOptions {
    pub fn new(tag: &'static str) -> ChainOptions {
        ChainOptions {
            tag,
            prepare_idp: Box::new(|_| {}),
            adjust: Box::new(|_| {}),
            wait_agent_ready: true,
            agent_args: Vec::new(),
            moto_endpoint: None,
        }
    }

    pub fn agent_args(mut self, args: &[&str]) -> Self {
        self.agent_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Use this Secrets Manager (e.g. a moto the test stops and restarts).
    pub fn moto(mut self, endpoint: &str) -> Self {
        self.moto_endpoint = Some(endpoint.to_string());
        self
    }

    pub fn idp(mut self, prepare: impl FnOnce(&entragate_tests::Idp) + Send + 'static) -> Self {
        self.prepare_idp = Box::new(prepare);
        self
    }

    pub fn config(mut self, adjust: impl FnOnce(&mut Value) + Send + 'static) -> Self {
        self.adjust = Box::new(adjust);
        self
    }

    pub fn no_agent_wait(mut self) -> Self {
        self.wait_agent_ready = false;
        self
    }
}

/// A running chain; everything stops when it is dropped.
pub struct Chain {
    pub callee: Callee,
    pub caller: Envoy,
    pub agent: Option<Agent>,
    pub spec: AgentSpec,
    pub agent_addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    _permit: SemaphorePermit<'static>,
}

impl Chain {
    pub async fn start(options: ChainOptions) -> Chain {
        let permit = CHAINS.acquire().await.expect("semaphore");
        let callee = Callee::start().await;
        (options.prepare_idp)(&callee.idp);
        let moto_endpoint = options
            .moto_endpoint
            .clone()
            .unwrap_or_else(|| moto::shared().endpoint.clone());
        let secret_id = format!("{SECRET_ID}-{}", options.tag);
        moto::put_secret_at(
            &moto_endpoint,
            REGION,
            &secret_id,
            &secret_json(ids::CLIENT_SECRET),
        )
        .await
        .expect("seeding the secret");
        let dir = tempfile::Builder::new()
            .prefix("entragate-chain-")
            .tempdir()
            .expect("temp dir");
        let spec = AgentSpec {
            secret_id,
            region: REGION.into(),
            moto_endpoint,
            authority: callee.idp.base_url(),
            scope: format!("fraud={SCOPE}"),
            dir: dir.path().to_path_buf(),
            extra_args: options.agent_args.clone(),
        };
        let agent = Agent::start(&spec, "127.0.0.1:0").await.expect("agent");
        if options.wait_agent_ready {
            agent.wait_ready().await.expect("agent ready");
        }
        let key = std::fs::read_to_string(dir.path().join("agent-key")).expect("agent key file");
        let mut config = outbound_config(key.trim());
        (options.adjust)(&mut config);
        let vars = TemplateVars::new()
            .set("CALLEE_HOST", "127.0.0.1")
            .set("CALLEE_PORT", callee.envoy.listener().port())
            .set("AGENT_PORT", agent.addr().port())
            .json_string("PLUGIN_CONFIG", &config);
        let caller = Envoy::start(&caller_template(), with_filter(vars))
            .await
            .expect("caller envoy");
        Chain {
            callee,
            caller,
            agent_addr: agent.addr(),
            agent: Some(agent),
            spec,
            _dir: dir,
            _permit: permit,
        }
    }

    /// What the Transaction Processor does: a plain request to its sidecar.
    pub async fn analyze(&self) -> Response {
        entragate_tests::http_client()
            .post(self.caller.url(ANALYZE))
            .header("content-type", "application/json")
            .body(r#"{"transaction":"tx-1","amount":120.5}"#)
            .send()
            .await
            .expect("request through the caller envoy")
    }

    /// Stops the agent (SIGTERM).
    pub fn stop_agent(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.stop().expect("agent stops on SIGTERM");
        }
    }

    /// Starts the agent again on the same port with the same key file, as a
    /// supervisor would restart it; waits until it serves a token.
    pub async fn restart_agent(&mut self) {
        self.stop_agent();
        let agent = Agent::start(&self.spec, &self.agent_addr.to_string())
            .await
            .expect("agent restart");
        agent.wait_ready().await.expect("restarted agent ready");
        self.agent = Some(agent);
    }

    pub async fn caller_stat(&self, name: &str) -> u64 {
        self.caller
            .stat(&stat(&format!("entragate.outbound.{name}")))
            .await
            .expect("caller stats")
            .unwrap_or(0)
    }

    pub fn agent_dir(&self) -> PathBuf {
        self.spec.dir.clone()
    }
}

/// The bearer token the Fraud Detector received in its last request.
pub fn token_seen_by(callee: &Callee) -> Option<String> {
    let seen = callee.echo.last_request()?;
    seen.header("authorization")?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

/// `exp` of a JWT, in Unix seconds.
pub fn exp_of(token: &str) -> i64 {
    decode_jwt(token)
        .ok()
        .and_then(|jwt| jwt.claims.get("exp").and_then(Value::as_i64))
        .unwrap_or(0)
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Polls `check` every 10 ms until true, or panics naming `what`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    entragate_tests::wait_until(timeout, what, check)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
}
