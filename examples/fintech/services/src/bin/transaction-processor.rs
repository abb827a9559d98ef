//! The Transaction Processor: the only service allowed to call the Fraud
//! Detector. It holds no secret and no token: it sends plain HTTP to its own
//! Envoy sidecar (`--fraud-detector-url`, the sidecar's outbound listener),
//! whose entragate filter (outbound role) attaches the Entra access token
//! that the local `bootstrap agent` keeps fresh.
//!
//! The sidecar routes by `Host` (one virtual host per callee in the rendered
//! config), so the request names the callee: `Host: fraud-detector`
//! (`--fraud-detector-host`), exactly like calling `http://fraud-detector/`
//! through an HTTP proxy.
//!
//! `POST /transactions` with `{"amount":..,"currency":..}` -> asks the Fraud
//! Detector and answers `{"transaction":..,"fraudCheck":..,"status":..}`;
//! when the Fraud Detector refuses or fails, answers 502 with its status and
//! `WWW-Authenticate` so the reason is visible. `GET /healthz` -> 200.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    analyze_url: String,
    host: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("transaction-processor: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), String> {
    let base = fintech_services::option(args, "--fraud-detector-url", "FRAUD_DETECTOR_URL")
        .ok_or("--fraud-detector-url (or FRAUD_DETECTOR_URL) is required: the sidecar's outbound listener, e.g. http://127.0.0.1:15001")?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let host = fintech_services::option(args, "--fraud-detector-host", "FRAUD_DETECTOR_HOST")
        .unwrap_or_else(|| "fraud-detector".to_string());
    let upstream = Upstream {
        client,
        analyze_url: format!("{}/fraud/analyze", base.trim_end_matches('/')),
        host,
    };
    let address = fintech_services::listen_address(args, "127.0.0.1:0")?;
    let listener = fintech_services::bind(address).await?;
    let app = Router::new()
        .route("/transactions", post(process))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(upstream);
    axum::serve(listener, app)
        .with_graceful_shutdown(fintech_services::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

async fn process(
    State(upstream): State<Upstream>,
    Json(transaction): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let response = match upstream
        .client
        .post(&upstream.analyze_url)
        .header(reqwest::header::HOST, &upstream.host)
        .json(&transaction)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({ "error": "fraud_detector_unreachable", "detail": error.to_string() })),
            )
        }
    };
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({
                "error": "fraud_check_refused",
                "fraudDetectorStatus": status.as_u16(),
                "wwwAuthenticate": challenge,
                "detail": body,
            })),
        );
    }
    let verdict = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .to_string();
    (
        StatusCode::OK,
        Json(json!({ "transaction": transaction, "fraudCheck": body, "status": verdict })),
    )
}
