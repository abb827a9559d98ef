//! Loopback HTTP API for the local Envoy.
//!
//! * `GET /v1/token/{name}` or `GET /v1/token?scope=<scope-or-resource-or-name>` with header
//!   `x-entragate-agent-key: <key>` → 200 `{"access_token","token_type":"Bearer","expires_at","expires_in",
//!   "scope","name"}`; 401 without the right key (checked before anything else, so unauthenticated callers
//!   learn nothing, not even which scopes exist); 404 for a scope that is not configured; 503
//!   `{"error":"token_unavailable","reason",…}` (+ `Retry-After`) when no valid token can be handed out.
//! * `GET /healthz` (no key): 200 when every scope has a servable token, else 503; per-scope readiness,
//!   never tokens.
//!
//! Every response carries `cache-control: no-store`.

use super::key::{AgentKey, AGENT_KEY_HEADER};
use crate::token::TokenCache;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// What the handlers share. The cache appears once the secret has been read; until then the server
/// already answers (503 "starting") so Envoy gets a reason instead of "connection refused".
#[derive(Clone)]
pub struct AgentState {
    key: Arc<AgentKey>,
    cache: Arc<OnceLock<Arc<TokenCache>>>,
    started: Instant,
}

impl AgentState {
    pub fn new(key: Arc<AgentKey>) -> Self {
        AgentState {
            key,
            cache: Arc::new(OnceLock::new()),
            started: Instant::now(),
        }
    }

    /// Installs the token cache (once).
    pub fn set_cache(&self, cache: Arc<TokenCache>) {
        let _ = self.cache.set(cache);
    }
}

/// The agent's routes.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/v1/token", get(token_by_query))
        .route("/v1/token/{name}", get(token_by_name))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, code: &str, reason: &str) -> Response {
    json_response(status, &json!({ "error": code, "reason": reason }))
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "routes: GET /v1/token/{name}, GET /v1/token?scope=…, GET /healthz",
    )
}

/// `Some(401 response)` unless exactly one `x-entragate-agent-key` header carries the key.
fn reject_unauthorized(state: &AgentState, headers: &HeaderMap) -> Option<Response> {
    let mut values = headers.get_all(AGENT_KEY_HEADER).iter();
    let reason = match (values.next(), values.next()) {
        (Some(value), None) if state.key.verify(value.as_bytes()) => return None,
        (Some(_), None) => format!("wrong {AGENT_KEY_HEADER}"),
        _ => format!("send exactly one {AGENT_KEY_HEADER} header"),
    };
    Some(error(StatusCode::UNAUTHORIZED, "unauthorized", &reason))
}

async fn token_by_name(
    State(state): State<AgentState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = reject_unauthorized(&state, &headers) {
        return r;
    }
    serve(&state, &name)
}

async fn token_by_query(
    State(state): State<AgentState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = reject_unauthorized(&state, &headers) {
        return r;
    }
    match params.get("scope") {
        Some(scope) => serve(&state, scope),
        None => error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "missing ?scope=<scope, resource or name>",
        ),
    }
}

fn serve(state: &AgentState, key: &str) -> Response {
    let Some(cache) = state.cache.get() else {
        return unavailable(
            key,
            "agent starting: reading the client secret from Secrets Manager",
            None,
        );
    };
    let Some(cfg) = cache.lookup(key) else {
        let configured: Vec<&str> = cache.scopes().map(|c| c.name.as_str()).collect();
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": "unknown_scope", "reason": format!("{} is not a configured scope", crate::text::sanitize(key, 200)), "configured": configured }),
        );
    };
    match cache.serve(&cfg.name) {
        Ok(token) => {
            let now = Instant::now();
            crate::debug!(
                "served token for {} (sha256 {})",
                cfg.scope,
                token.fingerprint
            );
            json_response(
                StatusCode::OK,
                &json!({
                    "access_token": token.secret(),
                    "token_type": token.token_type,
                    "expires_at": token.expires_at_unix,
                    "expires_in": token.expires_at().saturating_duration_since(now).as_secs(),
                    "scope": cfg.scope,
                    "name": cfg.name,
                }),
            )
        }
        Err(u) => unavailable(&cfg.name, &u.reason, u.retry_in),
    }
}

fn unavailable(name: &str, reason: &str, retry_in: Option<std::time::Duration>) -> Response {
    let secs = retry_in.map(|d| d.as_secs().max(1));
    let mut r = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "error": "token_unavailable", "scope": name, "reason": reason, "retry_after_secs": secs }),
    );
    if let Some(s) = secs {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

async fn healthz(State(state): State<AgentState>) -> Response {
    let uptime = state.started.elapsed().as_secs();
    let Some(cache) = state.cache.get() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "starting", "reason": "reading the client secret from Secrets Manager", "uptime_secs": uptime }),
        );
    };
    let statuses = cache.status();
    let ready = statuses.iter().all(|s| s.ready);
    let scopes: serde_json::Map<String, Value> = statuses
        .into_iter()
        .map(|s| {
            (
                s.name,
                json!({
                    "scope": s.scope,
                    "ready": s.ready,
                    "expires_at": s.expires_at_unix,
                    "expires_in_secs": s.expires_in.map(|d| d.as_secs()),
                    "refresh_in_secs": s.refresh_in.map(|d| d.as_secs()),
                    "token_requests": s.requests,
                    "last_error": s.last_error,
                }),
            )
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "status": if ready { "ready" } else { "not_ready" },
            "uptime_secs": uptime,
            "credential": cache.credential_kind().as_str(),
            "secret_rereads": cache.credentials().map(|c| c.rereads()),
            "scopes": scopes,
        }),
    )
}
