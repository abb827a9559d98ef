//! No secret in any log, at the most verbose settings.
//!
//! The whole chain runs (callee Envoy + caller Envoy + `bootstrap agent` +
//! moto Secrets Manager + local IdP + echo), every component as verbose as it
//! goes (see [`envoy_options`] for Envoy, `-v` for the agent), through its
//! failure paths: a wrong client secret in Secrets Manager, token-endpoint
//! errors of every kind, hostile and invalid tokens at the callee, a token in
//! the query string, bad agent keys. Afterwards every secret that existed in
//! the test (every token minted or issued, the client secrets, the agent key,
//! the IdP's private keys) is cut into 20-byte windows, and no window may
//! appear in any captured output: both Envoy logs, the agent's stdout/stderr,
//! and every error body (with its headers) a client received.

mod outbound_support;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use entragate_tests::{
    ids, random_uuid, wait_until, Echo, Endpoint, Envoy, EnvoyOptions, Fault, FilterHost, Idp,
    TemplateVars,
};
use outbound_support::agent::{Agent, AgentSpec};
use outbound_support::{
    caller_template, moto, outbound_config, secret_json, with_filter, ANALYZE, REGION, SCOPE,
    SECRET_ID,
};
use reqwest::{RequestBuilder, StatusCode};
use support::{callee_template, plugin_config, require_envoy};

/// A secret fragment this long, found anywhere in the output, is a leak.
const WINDOW: usize = 20;

/// Envoy as verbose as it can be without printing request headers and its
/// configuration itself.
///
/// Everything at `trace` (the filter's own lines are the `wasm` component, or
/// `dynamic_modules` for the native module: [`FilterHost::log_component`]),
/// except three components that print credentials by Envoy's design, not the
/// filter's (see docs/security.md, "Log hygiene"):
/// - `http`: the HTTP/1 codec traces every header as parsed and the
///   connection manager dumps every request header map at `debug`:
///   `authorization`, a `?access_token=` in `:path`, the outbound callout's
///   `x-entragate-agent-key`;
/// - `router`: dumps the upstream request headers at `debug`;
/// - `config`: prints each listener's filter configuration at `debug`,
///   including the outbound plugin configuration that carries the agent key.
fn envoy_options() -> EnvoyOptions {
    EnvoyOptions {
        log_level: "trace".into(),
        component_log_level: Some(format!(
            "{CREDENTIAL_PRINTING_COMPONENTS},{}:trace",
            FilterHost::from_env().log_component()
        )),
        ..EnvoyOptions::default()
    }
}

const CREDENTIAL_PRINTING_COMPONENTS: &str = "http:info,router:info,config:info";

/// Every secret of the test, by label.
#[derive(Default)]
struct Secrets {
    items: Vec<(String, String)>,
}

impl Secrets {
    fn add(&mut self, label: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        if value.len() >= WINDOW {
            self.items.push((label.into(), value));
        }
    }

    fn add_key(&mut self, label: &str, key: &entragate_tests::SigningKey) {
        let der = key.private_key_pkcs8_der();
        // The PEM body is this base64 in 64-character lines: its windows are covered too.
        self.add(
            format!("{label} private key (PKCS#8 base64)"),
            STANDARD.encode(&der),
        );
        self.add(
            format!("{label} private key (PKCS#8 base64url)"),
            URL_SAFE_NO_PAD.encode(&der),
        );
    }

    /// `(window, label)` for every 20-byte window of every secret.
    fn windows(&self) -> HashMap<&[u8], &str> {
        let mut out = HashMap::new();
        for (label, value) in &self.items {
            for window in value.as_bytes().windows(WINDOW) {
                out.entry(window).or_insert(label.as_str());
            }
        }
        out
    }
}

/// Every piece of output a person or a client could read, by source.
#[derive(Default)]
struct Outputs {
    items: Vec<(String, String)>,
}

impl Outputs {
    fn add(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.items.push((source.into(), text.into()));
    }

    /// Sends `request`; if the answer is not a 2xx (an error a client sees),
    /// records its headers and body. Returns the status.
    async fn send(&mut self, what: &str, request: RequestBuilder) -> StatusCode {
        let response = request.send().await.expect(what);
        let status = response.status();
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            self.add(
                format!("error answer to {what} ({status})"),
                format!("{headers}\n{body}"),
            );
        }
        status
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_secret_or_key_appears_in_any_log_even_at_trace_level() {
    if !require_envoy("log_hygiene") {
        return;
    }
    let mut secrets = Secrets::default();
    let mut outputs = Outputs::default();
    let client = entragate_tests::http_client();

    // ---- callee side: IdP, app, Envoy with the filter ----
    let idp = Idp::start().expect("idp");
    // Short-lived tokens so the agent refreshes (into the faults below) soon.
    idp.set_token_lifetime(Duration::from_secs(6));
    let echo = Echo::start().expect("echo");
    let callee_vars = TemplateVars::new()
        .set("UPSTREAM_PORT", echo.port())
        .set("IDP_HOST", "127.0.0.1")
        .set("IDP_PORT", idp.port())
        .json_string("PLUGIN_CONFIG", &plugin_config(&idp));
    let callee = Envoy::start_with(
        &callee_template(),
        with_filter(callee_vars),
        envoy_options(),
    )
    .await
    .expect("callee envoy");

    // ---- caller side: a wrong client secret in Secrets Manager first ----
    let wrong_secret = format!("tst8Q~wrong-{}", random_uuid());
    secrets.add("client secret", ids::CLIENT_SECRET);
    secrets.add("wrong client secret", wrong_secret.clone());
    let moto = moto::shared();
    let secret_id = format!("{SECRET_ID}-hygiene-{}", random_uuid());
    moto.put_secret(REGION, &secret_id, &secret_json(&wrong_secret))
        .await
        .expect("seeding the secret");
    let dir = tempfile::Builder::new()
        .prefix("entragate-hygiene-")
        .tempdir()
        .expect("temp dir");
    let spec = AgentSpec {
        secret_id: secret_id.clone(),
        region: REGION.into(),
        moto_endpoint: moto.endpoint.clone(),
        authority: idp.base_url(),
        scope: format!("fraud={SCOPE}"),
        dir: dir.path().to_path_buf(),
        extra_args: Vec::new(),
    };
    // `-v` (the agent's most verbose level) is part of every agent start.
    let agent = Agent::start(&spec, "127.0.0.1:0").await.expect("agent");
    let agent_key = std::fs::read_to_string(dir.path().join("agent-key"))
        .expect("agent key file")
        .trim()
        .to_string();
    secrets.add("agent key", agent_key.clone());
    let caller_vars = TemplateVars::new()
        .set("CALLEE_HOST", "127.0.0.1")
        .set("CALLEE_PORT", callee.listener().port())
        .set("AGENT_PORT", agent.addr().port())
        .json_string("PLUGIN_CONFIG", &outbound_config(&agent_key));
    let caller = Envoy::start_with(
        &caller_template(),
        with_filter(caller_vars),
        envoy_options(),
    )
    .await
    .expect("caller envoy");
    let analyze = || {
        client
            .post(caller.url(ANALYZE))
            .header("content-type", "application/json")
            .body(r#"{"transaction":"tx-1","amount":120.5}"#)
    };

    // The IdP refuses the wrong secret (the agent re-reads it, same value).
    wait_until(
        Duration::from_secs(20),
        "two invalid_client answers",
        || async {
            idp.token_requests()
                .iter()
                .filter(|r| r.status == 401)
                .count()
                >= 2
        },
    )
    .await
    .expect("the agent tried the wrong secret");
    let status = outputs
        .send("a call while the secret is wrong", analyze())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // The right secret arrives in Secrets Manager: calls recover.
    moto.put_secret(REGION, &secret_id, &secret_json(ids::CLIENT_SECRET))
        .await
        .expect("fixing the secret");
    wait_until(
        Duration::from_secs(30),
        "a call after fixing the secret",
        || async {
            analyze()
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        },
    )
    .await
    .expect("recovery after the secret was fixed");

    // ---- token endpoint errors, each seen by the agent at least twice ----
    for fault in [
        Fault::Status(500),
        Fault::Status(400),
        Fault::Status(401),
        Fault::Garbage,
        Fault::EmptyKeys,
        Fault::CloseConnection,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    ] {
        let seen = idp.counters().token;
        idp.set_fault(Endpoint::Token, fault.clone());
        wait_until(
            Duration::from_secs(20),
            &format!("the agent meeting {fault:?}"),
            || async { idp.counters().token >= seen + 2 },
        )
        .await
        .expect("token endpoint fault reached");
        // Whatever the caller gets meanwhile (its cached token, or a 503).
        outputs
            .send(&format!("a call during {fault:?}"), analyze())
            .await;
    }
    idp.clear_faults();
    wait_until(
        Duration::from_secs(30),
        "a call after the faults",
        || async {
            analyze()
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        },
    )
    .await
    .expect("recovery after the token endpoint faults");

    // ---- hostile and invalid tokens at the callee ----
    let stranger = idp.unpublished_key().expect("key");
    let good = idp.app_token_v2().build();
    let mut tampered = good.clone();
    tampered.replace_range(tampered.len() - 10.., "AAAAAAAAAA");
    let hostile = vec![
        ("alg none", idp.app_token_v2().alg_none().build()),
        (
            "HS256 with the public key",
            idp.app_token_v2().hs256_with_public_key().build(),
        ),
        ("bad signature", tampered),
        (
            "unknown key",
            idp.app_token_v2().signed_with(&stranger).build(),
        ),
        (
            "expired",
            idp.app_token_v2()
                .expired_since(Duration::from_secs(900))
                .build(),
        ),
        (
            "wrong audience",
            idp.app_token_v2().aud("api://other").build(),
        ),
        (
            "missing role",
            idp.app_token_v2().roles(["Fraud.Read"]).build(),
        ),
        (
            "kid with control characters",
            idp.app_token_v2().header("kid", "k\r\nforged").build(),
        ),
        ("not a JWT", format!("{}.x", good)),
        ("valid (lower-case scheme)", good.clone()),
    ];
    for (what, token) in &hostile {
        secrets.add(format!("{what} token"), token.clone());
        let scheme = if what.starts_with("valid") {
            "bearer"
        } else {
            "Bearer"
        };
        outputs
            .send(
                &format!("{what} token at the callee"),
                client
                    .post(callee.url(ANALYZE))
                    .header("authorization", format!("{scheme} {token}")),
            )
            .await;
        // The application's own Authorization passes the caller untouched.
        outputs
            .send(
                &format!("{what} token through the caller"),
                analyze().bearer_auth(token),
            )
            .await;
    }
    let twice = format!("Bearer {good}");
    outputs
        .send(
            "two authorization headers",
            client
                .post(callee.url(ANALYZE))
                .header("authorization", &twice)
                .header("authorization", &twice),
        )
        .await;
    // A token in the query string is no credential, and must not be logged either.
    let query_token = idp.app_token_v2().build();
    secrets.add("query-string token", query_token.clone());
    outputs
        .send(
            "a token in the query string",
            client.post(callee.url(&format!("{ANALYZE}?access_token={query_token}"))),
        )
        .await;
    outputs
        .send(
            "a token in the query string of an unmatched route",
            client.get(callee.url(&format!("/admin?access_token={query_token}"))),
        )
        .await;

    // ---- the agent's own API with bad keys ----
    let agent_token_url = format!("http://{}/v1/token?scope=fraud", agent.addr());
    let wrong_key = "0".repeat(64);
    outputs
        .send(
            "agent token API with a wrong key",
            client
                .get(&agent_token_url)
                .header("x-entragate-agent-key", &wrong_key),
        )
        .await;
    outputs
        .send(
            "agent token API without a key",
            client.get(&agent_token_url),
        )
        .await;
    outputs
        .send(
            "agent token API for an unknown scope",
            client
                .get(format!("http://{}/v1/token?scope=nope", agent.addr()))
                .header("x-entragate-agent-key", &agent_key),
        )
        .await;

    // ---- collect every secret and every output ----
    let issued = idp.issued_tokens();
    assert!(!issued.is_empty(), "the IdP issued tokens to the agent");
    for (i, token) in issued.iter().enumerate() {
        secrets.add(format!("issued token #{i}"), token.clone());
    }
    secrets.add("valid minted token", good);
    for key in idp.published_keys() {
        secrets.add_key(&format!("IdP key {}", key.kid()), &key);
    }
    secrets.add_key("unpublished key", &stranger);

    // Read last, after every request above was answered and logged.
    outputs.add("callee envoy log", callee.logs());
    outputs.add("caller envoy log", caller.logs());
    let agent_log = agent.log();
    outputs.add("agent stdout/stderr", agent_log.clone());

    // The failure paths really ran and were logged.
    assert!(
        agent_log.contains("AADSTS7000215"),
        "agent log:\n{agent_log}"
    );

    let windows = secrets.windows();
    let mut leaks = Vec::new();
    for (source, text) in &outputs.items {
        let mut found: Vec<&str> = Vec::new();
        for (at, window) in text.as_bytes().windows(WINDOW).enumerate() {
            if let Some(label) = windows.get(window) {
                if !found.contains(label) {
                    found.push(label);
                    let line = text[..at].lines().count();
                    leaks.push(format!("{source}, line {line}: {label}"));
                }
            }
        }
    }
    let scanned: usize = outputs.items.iter().map(|(_, t)| t.len()).sum();
    eprintln!(
        "log hygiene: {} secrets ({} issued tokens), {} outputs, {scanned} bytes scanned, {} leaks",
        secrets.items.len(),
        issued.len(),
        outputs.items.len(),
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "secrets in the output:\n{}",
        leaks.join("\n")
    );
}
