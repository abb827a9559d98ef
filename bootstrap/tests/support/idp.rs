//! A tiny, scriptable Entra-compatible client-credentials endpoint for bootstrap's own tests
//! (`POST /{tenant}/oauth2/v2.0/token`). The shared, fuller IdP lives in `entragate-tests`; this stub only
//! exists to drive retry, backoff, `Retry-After` and re-read logic deterministically.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted misbehaviour, consumed by the next request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this 5xx status with an Entra-shaped error.
    ServerError(u16),
    /// 429 with an optional `Retry-After` in seconds.
    Throttle(Option<u64>),
    /// 401 invalid_client (AADSTS7000215) whatever the secret.
    InvalidClient,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// 200 with an HTML body.
    Garbage,
}

/// One request as seen by the stub.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub scope: String,
    pub status: u16,
}

struct Inner {
    client_id: String,
    tenant: String,
    secrets: Vec<String>,
    lifetime: u64,
    refresh_in: Option<u64>,
    faults: VecDeque<Fault>,
    seen: Vec<Seen>,
    issued: u64,
}

/// A running stub; stops when dropped.
pub struct StubIdp {
    pub authority: String,
    inner: Arc<Mutex<Inner>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub const CORRELATION_ID: &str = "8a3c6d2e-1111-4b5a-9c3d-2e1f0a9b8c7d";

impl StubIdp {
    /// Starts on a free loopback port, accepting `client_id`/`secret` for `tenant`, issuing `lifetime`-second tokens.
    pub fn start(client_id: &str, tenant: &str, secret: &str, lifetime: u64) -> StubIdp {
        let inner = Arc::new(Mutex::new(Inner {
            client_id: client_id.into(),
            tenant: tenant.into(),
            secrets: vec![secret.into()],
            lifetime,
            refresh_in: None,
            faults: VecDeque::new(),
            seen: Vec::new(),
            issued: 0,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(Arc::clone(&inner));
        // Own thread and runtime: the stub outlives any one test runtime and also serves blocking tests.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        StubIdp {
            authority: format!("http://{addr}"),
            inner,
            stop: Some(stop_tx),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    pub fn push_fault(&self, fault: Fault) {
        self.with(|i| i.faults.push_back(fault));
    }

    /// Replaces the accepted secrets (rotation: the old one is revoked).
    pub fn set_secrets(&self, secrets: &[&str]) {
        self.with(|i| i.secrets = secrets.iter().map(|s| s.to_string()).collect());
    }

    pub fn set_lifetime(&self, lifetime: u64, refresh_in: Option<u64>) {
        self.with(|i| {
            i.lifetime = lifetime;
            i.refresh_in = refresh_in;
        });
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.with(|i| i.seen.clone())
    }

    pub fn requests(&self) -> usize {
        self.with(|i| i.seen.len())
    }

    /// Tokens issued (200 answers).
    pub fn issued(&self) -> u64 {
        self.with(|i| i.issued)
    }
}

impl Drop for StubIdp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn entra_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0e2f7c7a-0000-4d8e-9c4a-5c7d1e0f1200\r\nCorrelation ID: {CORRELATION_ID}\r\nTimestamp: 2026-11-28 21:40:00Z"),
        "error_codes": [code],
        "timestamp": "2026-11-28 21:40:00Z",
        "trace_id": "0e2f7c7a-0000-4d8e-9c4a-5c7d1e0f1200",
        "correlation_id": CORRELATION_ID,
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    // Parsed by hand rather than with axum's `Form`: that extractor is an axum feature the agent does not
    // use, and enabling it for the tests alone would build axum (and what depends on it) twice in CI.
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let scope = form.get("scope").cloned().unwrap_or_default();
    let fault = inner.lock().unwrap().faults.pop_front();
    if let Some(Fault::Slow(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let mut i = inner.lock().unwrap();
    let response = match fault {
        Some(Fault::ServerError(s)) => entra_error(
            StatusCode::from_u16(s).unwrap(),
            "temporarily_unavailable",
            50001,
            "The service is temporarily unavailable.",
        ),
        Some(Fault::Throttle(after)) => {
            let mut r = entra_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                50196,
                "Throttled.",
            );
            if let Some(a) = after {
                r.headers_mut()
                    .insert("retry-after", a.to_string().parse().unwrap());
            }
            r
        }
        Some(Fault::InvalidClient) => invalid_client(&i.client_id),
        Some(Fault::Garbage) => (StatusCode::OK, "<html>gateway</html>").into_response(),
        Some(Fault::Slow(_)) | None => {
            let form_ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
                && scope.ends_with("/.default");
            if !form_ok {
                entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "Bad form.",
                )
            } else if tenant != i.tenant {
                entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    90002,
                    "Tenant not found.",
                )
            } else if form.get("client_id") != Some(&i.client_id)
                || !i
                    .secrets
                    .iter()
                    .any(|s| Some(s) == form.get("client_secret"))
            {
                invalid_client(&i.client_id)
            } else {
                i.issued += 1;
                let payload = serde_json::json!({
                    "aud": scope.trim_end_matches("/.default"),
                    "azp": i.client_id, "tid": i.tenant, "roles": ["Fraud.Scan"], "n": i.issued,
                });
                let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
                let jwt = format!(
                    "{}.{}.c2ln",
                    b64(br#"{"alg":"none","typ":"JWT"}"#),
                    b64(payload.to_string().as_bytes())
                );
                let mut body = serde_json::json!({
                    "token_type": "Bearer", "expires_in": i.lifetime, "ext_expires_in": i.lifetime, "access_token": jwt,
                });
                if let Some(r) = i.refresh_in {
                    body["refresh_in"] = r.into();
                }
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response()
            }
        }
    };
    let status = response.status().as_u16();
    i.seen.push(Seen {
        at: Instant::now(),
        scope,
        status,
    });
    response
}

fn invalid_client(client_id: &str) -> Response {
    entra_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
        &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
    )
}
