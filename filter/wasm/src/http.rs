//! The per-request context: copies request data in, applies the decision.

use std::time::Duration;

use entragate_core::engine::{RequestFlow, RequestInput};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::apply::apply_decision;
use crate::host::now_ms;
use crate::worker::{Outcome, SharedWorker, Waiter};

pub struct AuthRequest {
    context_id: u32,
    worker: SharedWorker,
}

impl AuthRequest {
    pub fn new(context_id: u32, worker: SharedWorker) -> AuthRequest {
        AuthRequest { context_id, worker }
    }
}

/// Fail closed when the filter cannot work at all (not configured, re-entrancy).
fn refuse_unavailable(reason: &'static str) -> Action {
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": reason,
    })
    .to_string();
    let headers = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    let _ = hostcalls::send_http_response(503, headers, Some(body.as_bytes()));
    Action::Pause
}

impl Context for AuthRequest {}

impl HttpContext for AuthRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default();

        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return refuse_unavailable("filter busy");
        };
        let Some(worker) = guard.as_mut() else {
            return refuse_unavailable("filter not configured");
        };
        let mut method = String::new();
        let mut path = String::new();
        let mut authorization = Vec::new();
        let mut spoofed: Vec<String> = Vec::new();
        for (name, value) in headers {
            match name.as_str() {
                ":method" => method = value,
                ":path" => path = value,
                // Envoy lower-cases header names; keep every value to detect duplicates.
                "authorization" => authorization.push(value),
                other => {
                    if worker.policy.claim_headers.names().any(|n| n == other)
                        && !spoofed.iter().any(|seen| seen == other)
                    {
                        spoofed.push(name);
                    }
                }
            }
        }
        // Strip claim headers first, on every route: a caller must never be able
        // to inject what the upstream treats as verified identity. The map above
        // is complete (every name, lower-cased), so only names it holds need a
        // hostcall; the usual request has none.
        for name in &spoofed {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
        }

        let mut flow = RequestFlow::new(RequestInput {
            method,
            path,
            authorization,
        });
        match worker.run(&mut flow, false) {
            Outcome::Decided(decision) => {
                let binding = worker.policy.workload_binding.as_ref();
                if apply_decision(
                    &decision,
                    &worker.policy.realm,
                    &worker.metrics,
                    &flow,
                    binding,
                ) {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
            Outcome::Wait { forced_refresh } => {
                let deadline_ms = now_ms().saturating_add(worker.policy.jwks.request_wait_ms);
                worker.waiters.insert(
                    self.context_id,
                    Waiter {
                        flow,
                        deadline_ms,
                        forced_refresh,
                    },
                );
                // Ask our root context to tick right away: it starts the fetch
                // (or polls for another worker's) and resumes us.
                let _ = hostcalls::set_tick_period(Duration::from_millis(1));
                Action::Pause
            }
        }
    }
}

impl Drop for AuthRequest {
    fn drop(&mut self) {
        // The request is gone: forget it so a late JWKS answer does not try to
        // resume a dead context.
        if let Ok(mut guard) = self.worker.try_borrow_mut() {
            if let Some(worker) = guard.as_mut() {
                worker.waiters.remove(&self.context_id);
            }
        }
    }
}
