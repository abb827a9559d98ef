//! `cargo xtask demo`: the callee side of entragate on loopback, in one run.
//!
//! Starts a local Entra-compatible identity provider, an echo service standing
//! in for the Fraud Detector, and a real Envoy with the entragate filter; then
//! sends one request that is allowed and two that are refused, and prints what
//! happened and why. Exits non-zero if anything did not behave.

use std::process::ExitCode;
use std::time::Instant;

use entragate_tests::{ids, repo_root, Echo, Envoy, Idp, TemplateVars};
use serde_json::{json, Value};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => {
            println!("\ndemo: every step behaved as expected");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("\ndemo: FAILED (a step did not behave as expected)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("demo: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let started = Instant::now();
    let idp = Idp::start()?;
    println!(
        "[ready] local Entra-compatible IdP on {} (tenant {})",
        idp.base_url(),
        idp.tenant_id()
    );
    let echo = Echo::start()?;
    println!(
        "[ready] Fraud Detector stand-in (echo) on 127.0.0.1:{}",
        echo.port()
    );

    let policy = json!({
        "realm": "fraud-detector",
        "tenant_id": idp.tenant_id(),
        "audiences": [ids::API_APP_ID, ids::API_APP_ID_URI],
        "jwks": { "cluster": "entra_idp", "authority": "login.microsoftonline.com", "keys_path": idp.jwks_path() },
        "rules": [
            { "name": "analyze", "path": { "exact": "/fraud/analyze" }, "methods": ["POST"],
              "app_roles": { "any_of": ["Fraud.Scan"] }, "allowed_callers": [ids::CLIENT_ID] }
        ]
    });
    let template = std::fs::read_to_string(repo_root().join("envoy/callee.yaml"))?;
    let vars = TemplateVars::new()
        .set("UPSTREAM_PORT", echo.port())
        .set("IDP_HOST", "127.0.0.1")
        .set("IDP_PORT", idp.port())
        .json_string("PLUGIN_CONFIG", &policy);
    let envoy_started = Instant::now();
    let envoy = Envoy::start(&template, vars).await?;
    let envoy_ready = envoy_started.elapsed();
    println!(
        "[ready] Envoy 1.40 with entragate on {} (admin {})",
        envoy.listener(),
        envoy.admin()
    );
    println!(
        "        policy: POST /fraud/analyze needs app role Fraud.Scan from caller {}",
        ids::CLIENT_ID
    );

    let client = entragate_tests::http_client();
    let url = envoy.url("/fraud/analyze");
    let mut ok = true;

    println!("\n1. Transaction Processor calls with a valid token (role Fraud.Scan)");
    let token = idp.app_token_v2().build();
    let first = Instant::now();
    let response = client
        .post(&url)
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await?;
    ok &= report(response, 200, Some(first)).await;
    println!(
        "      Envoy start -> ready {:.0} ms; start -> first allowed request {:.0} ms (includes the JWKS fetch)",
        envoy_ready.as_secs_f64() * 1000.0,
        envoy_started.elapsed().as_secs_f64() * 1000.0
    );

    println!("\n2. An impostor app with a valid token but without the role");
    let impostor = idp
        .app_token_v2()
        .claim("azp", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
        .roles(["Fraud.Read"])
        .build();
    let response = client
        .post(&url)
        .bearer_auth(&impostor)
        .body("{}")
        .send()
        .await?;
    ok &= report(response, 403, None).await;

    println!("\n3. A call without any token");
    let response = client.post(&url).body("{}").send().await?;
    ok &= report(response, 401, None).await;

    println!(
        "\nJWKS fetches seen by the IdP: {} (one per Envoy); upstream saw {} request(s); total {:.1}s",
        idp.jwks_fetches(),
        echo.request_count(),
        started.elapsed().as_secs_f64()
    );
    ok &= idp.jwks_fetches() == 1 && echo.request_count() == 1;
    Ok(ok)
}

async fn report(response: reqwest::Response, expected: u16, timed: Option<Instant>) -> bool {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let verdict = if status == expected {
        "as expected"
    } else {
        "UNEXPECTED"
    };
    let latency = timed
        .map(|t| format!(" in {:.1} ms", t.elapsed().as_secs_f64() * 1000.0))
        .unwrap_or_default();
    println!("   -> HTTP {status}{latency} ({verdict})");
    if let Some(challenge) = challenge {
        println!("      WWW-Authenticate: {challenge}");
    }
    if status == 200 {
        let caller = body["headers"]["x-entra-caller"].as_str().unwrap_or("-");
        let roles = body["headers"]["x-entra-roles"].as_str().unwrap_or("-");
        println!("      the app received x-entra-caller={caller} x-entra-roles={roles}");
    } else if let Some(reason) = body["error_description"].as_str() {
        println!("      reason: {reason}");
    }
    status == expected
}
