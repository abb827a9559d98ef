//! Shared setup for the filter integration tests: a callee-side Envoy (from
//! `envoy/callee.yaml`) with the entragate filter, a local IdP and an echo upstream.

#![allow(dead_code)]

use std::time::Duration;

use entragate_tests::policy::fraud_detector_rules;
use entragate_tests::{ids, Echo, Envoy, FilterHost, Idp, TemplateVars};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const REALM: &str = "fraud-detector";
/// A caller that is not on the allow-list of `/fraud/analyze`.
pub const OTHER_CALLER: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

/// The callee template for the filter host under test (`ENTRAGATE_FILTER_HOST`).
pub fn callee_template() -> String {
    FilterHost::from_env().callee_template()
}

/// A filter counter's name on `/stats` for the host under test, e.g.
/// `stat("entragate.allowed")`.
pub fn stat(name: &str) -> String {
    FilterHost::from_env().stat(name)
}

/// The plugin configuration the tests start from: the Fraud Detector's policy.
pub fn plugin_config(idp: &Idp) -> Value {
    json!({
        "realm": REALM,
        "tenant_id": idp.tenant_id(),
        "audiences": [ids::API_APP_ID, ids::API_APP_ID_URI],
        "jwks": {
            "cluster": "entra_idp",
            "authority": "login.microsoftonline.com",
            "keys_path": idp.jwks_path(),
            // Short backoff so recovery tests finish quickly.
            "retry_initial_ms": 100,
            "retry_max_ms": 400,
            "fetch_timeout_ms": 2000,
            "request_wait_ms": 3000
        },
        "rules": fraud_detector_rules()
    })
}

pub struct Callee {
    pub idp: Idp,
    pub echo: Echo,
    pub envoy: Envoy,
}

impl Callee {
    /// Starts IdP, echo and Envoy; `adjust` edits the plugin configuration and
    /// `before_envoy` runs before Envoy starts (e.g. to break the JWKS endpoint).
    pub async fn start_with(
        adjust: impl FnOnce(&mut Value),
        before_envoy: impl FnOnce(&Idp),
    ) -> Callee {
        let idp = Idp::start().expect("idp");
        let echo = Echo::start().expect("echo");
        let mut config = plugin_config(&idp);
        adjust(&mut config);
        before_envoy(&idp);
        let host = FilterHost::from_env();
        let vars = TemplateVars::new()
            .set("UPSTREAM_PORT", echo.port())
            .set("IDP_HOST", "127.0.0.1")
            .set("IDP_PORT", idp.port())
            .json_string("PLUGIN_CONFIG", &config);
        let vars = host.with_filter(vars).expect("filter binary");
        let envoy = Envoy::start(&host.callee_template(), vars)
            .await
            .expect("envoy");
        Callee { idp, echo, envoy }
    }

    pub async fn start() -> Callee {
        Callee::start_with(|_| {}, |_| {}).await
    }

    /// Waits until the filter's JWKS prefetch landed (keys loaded on a worker).
    pub async fn wait_for_keys(&self) {
        self.envoy
            .wait_for_stat(
                &stat("entragate.jwks.fetch_ok"),
                Duration::from_secs(10),
                |v| v >= 1,
            )
            .await
            .expect("jwks prefetch");
    }

    pub async fn analyze(&self, token: Option<&str>) -> Response {
        let mut request = entragate_tests::http_client()
            .post(self.envoy.url("/fraud/analyze"))
            .body(r#"{"amount":120.5}"#);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request through envoy")
    }
}

/// The parsed parts of a refusal.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub www_authenticate: Option<String>,
    pub body: Value,
}

impl Refusal {
    pub async fn from(response: Response) -> Refusal {
        let status = response.status();
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Refusal {
            status,
            www_authenticate,
            body,
        }
    }

    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or("")
    }
}

pub fn require_envoy(test: &str) -> bool {
    entragate_tests::envoy_available(test)
}
