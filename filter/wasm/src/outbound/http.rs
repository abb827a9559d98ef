//! The outbound per-request context: finds the destination, attaches the token.

use std::time::Duration;

use entragate_core::host::{LogLevel, RequestHeaders};
use entragate_core::outbound::{plan, ForwardReason, Plan, Refusal, Step};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::worker::{apply_step, refuse, SharedOutbound, Waiter};
use crate::host::{log, now_ms, RequestHeaderMap};
use crate::refusals::send_reply;

pub struct OutboundRequest {
    context_id: u32,
    worker: SharedOutbound,
}

impl OutboundRequest {
    pub fn new(context_id: u32, worker: SharedOutbound) -> OutboundRequest {
        OutboundRequest { context_id, worker }
    }
}

/// The upstream cluster Envoy routed this request to. The route is chosen
/// before the filter chain runs, and Envoy exposes its cluster as
/// `xds.cluster_name` (the bare `cluster_name` attribute is only filled once
/// an upstream host was picked, i.e. too late; it is kept as a fallback for
/// other hosts).
fn upstream_cluster() -> Option<String> {
    [vec!["xds", "cluster_name"], vec!["cluster_name"]]
        .into_iter()
        .find_map(|path| {
            hostcalls::get_property(path)
                .ok()
                .flatten()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        })
}

/// Fail closed when the filter cannot work at all (not configured, re-entrancy).
fn refuse_unconfigured(reason: &'static str) -> Action {
    send_reply(&Refusal::token_unavailable(reason).response());
    Action::Pause
}

impl Context for OutboundRequest {}

impl HttpContext for OutboundRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return refuse_unconfigured("filter busy");
        };
        let Some(worker) = guard.as_mut() else {
            return refuse_unconfigured("filter not configured");
        };
        let authority = RequestHeaderMap.get(":authority").unwrap_or_default();
        let has_authorization = RequestHeaderMap.get("authorization").is_some();
        let cluster = if worker.policy.matches_clusters() {
            upstream_cluster()
        } else {
            None
        };
        let (destination, source) = match plan(
            &worker.policy,
            &authority,
            cluster.as_deref(),
            has_authorization,
        ) {
            Plan::Forward(ForwardReason::Unmatched) => {
                worker.metrics.unmatched();
                log(
                    LogLevel::Debug,
                    &format!(
                        "entragate outbound: no destination for authority {authority:?} cluster {cluster:?}: forwarded without a token"
                    ),
                );
                return Action::Continue;
            }
            Plan::Forward(ForwardReason::KeptAuthorization) => {
                worker.metrics.kept_authorization();
                return Action::Continue;
            }
            Plan::Refuse(refusal) => {
                refuse(&refusal, &authority, &worker.metrics);
                return Action::Pause;
            }
            Plan::Token {
                destination,
                source,
            } => (destination, source),
        };
        match worker.step_for(source) {
            Step::Wait => {
                worker.metrics.waited();
                let wait_ms = worker.policy.fetch.request_wait_ms;
                let waiter = Waiter {
                    source,
                    destination,
                };
                worker
                    .waiters
                    .park(self.context_id, waiter, now_ms(), wait_ms);
                // Ask our root context to tick right away: it starts the fetch
                // (or polls for another worker's) and resumes us.
                let _ = hostcalls::set_tick_period(Duration::from_millis(1));
                Action::Pause
            }
            step => {
                let name = worker.destination_name(destination).to_string();
                if apply_step(&step, &name, &worker.metrics) {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
        }
    }
}

impl Drop for OutboundRequest {
    fn drop(&mut self) {
        // The request is gone (client went away): a late token must not try to
        // resume a dead context.
        if let Ok(mut guard) = self.worker.try_borrow_mut() {
            if let Some(worker) = guard.as_mut() {
                worker.waiters.remove(self.context_id);
            }
        }
    }
}
