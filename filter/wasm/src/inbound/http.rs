//! The per-request context: copies request data in, applies the decision.

use std::time::Duration;

use entragate_core::error::AuthError;
use entragate_core::inbound::engine::RequestFlow;
use entragate_core::inbound::request::read_request;
use entragate_core::response::local_response;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host::{now_ms, RequestHeaderMap};
use crate::inbound::apply::apply_decision;
use crate::inbound::worker::{Outcome, SharedWorker, Waiter};
use crate::refusals::send_reply;

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
pub fn refuse_unavailable(reason: &'static str) -> Action {
    let reply = local_response(AuthError::FilterUnavailable.into(), Some(reason), "", None);
    send_reply(&reply);
    Action::Pause
}

impl Context for AuthRequest {}

impl HttpContext for AuthRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return refuse_unavailable("filter busy");
        };
        let Some(worker) = guard.as_mut() else {
            return refuse_unavailable("filter not configured");
        };
        // Claim headers are stripped first, on every route (see `read_request`).
        let input = read_request(&mut RequestHeaderMap, &worker.policy);
        let mut flow = RequestFlow::new(input);
        match worker.run(&mut flow, false) {
            Outcome::Decided(decision) => {
                if apply_decision(
                    &decision,
                    &worker.policy.realm,
                    worker.policy.audit_fields,
                    &worker.metrics,
                    &flow,
                ) {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
            Outcome::Wait { forced_refresh } => {
                let wait_ms = worker.policy.jwks.request_wait_ms;
                let waiter = Waiter {
                    flow,
                    forced_refresh,
                };
                worker
                    .waiters
                    .park(self.context_id, waiter, now_ms(), wait_ms);
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
                worker.waiters.remove(self.context_id);
            }
        }
    }
}
