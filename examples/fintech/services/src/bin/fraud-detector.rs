//! The Fraud Detector: the API the bank wants to protect. It has no
//! authentication code at all: its Envoy sidecar (entragate, inbound role)
//! only lets verified callers with the `Fraud.Scan` app role through, and
//! tells it who called in `x-entra-caller` (headers of that name from the
//! outside are always stripped by the filter).
//!
//! `POST /fraud/analyze` -> `{"riskScore":0.05,"status":"Approved",...}`;
//! `GET /healthz` -> 200. Listens on `--listen ADDR` (default `127.0.0.1:0`).

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fraud-detector: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), String> {
    let address = fintech_services::listen_address(args, "127.0.0.1:0")?;
    let listener = fintech_services::bind(address).await?;
    let app = Router::new()
        .route("/fraud/analyze", post(analyze))
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(fintech_services::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// A toy risk model: the point of the demo is who may call it, not the model.
async fn analyze(headers: HeaderMap, body: Option<Json<Value>>) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let amount = body
        .as_ref()
        .and_then(|Json(b)| b.get("amount"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let (risk, status) = if amount > 10_000.0 {
        (0.91, "Review")
    } else {
        (0.05, "Approved")
    };
    Json(json!({
        "riskScore": risk,
        "status": status,
        // What the sidecar verified, as the app sees it.
        "verifiedCaller": header("x-entra-caller"),
        "verifiedRoles": header("x-entra-roles"),
    }))
}
