//! Writes a decision back to the (effective) request context.

use entragate_core::host::LogLevel;
use entragate_core::inbound::audit::{audit_record, denial_log_line, wanted_fingerprint};
use entragate_core::inbound::engine::{Decision, RequestFlow};
use entragate_core::inbound::request::set_identity_headers;
use entragate_core::response::denial_response;
use proxy_wasm::hostcalls;

use crate::host::{log, RequestHeaderMap};
use crate::inbound::metrics::Metrics;
use crate::refusals::send_reply;

/// Applies `decision` (the outcome of `flow`) to the current effective
/// context. Returns true when the request may continue upstream (the caller
/// resumes or returns `Continue`). `audit_fields`: the policy's switch.
pub fn apply_decision(
    decision: &Decision,
    realm: &str,
    audit_fields: bool,
    metrics: &Metrics,
    flow: &RequestFlow,
) -> bool {
    let input = flow.input();
    // Hashed at most once, for the audit record and the log line.
    let token_hash = wanted_fingerprint(audit_fields, decision, input, flow.audit());
    if audit_fields {
        publish_audit(decision, flow, token_hash.as_deref());
    }
    match decision {
        Decision::Allow { set_headers, .. } => {
            set_identity_headers(&mut RequestHeaderMap, set_headers);
            metrics.allowed(!flow.audit().token_verified);
            true
        }
        Decision::Deny(denial) => {
            let response = denial_response(denial, realm);
            metrics.denied(denial.error);

            log(
                LogLevel::Info,
                &denial_log_line(input, response.status, denial.error, token_hash.as_deref()),
            );
            send_reply(&response);
            false
        }
    }
}

/// Publishes the decision's audit fields as filter state: Envoy stores each property
/// under `wasm.<property>` (`AuditField::filter_state_key`), where access logs read it
/// (`%FILTER_STATE(wasm.entragate_decision:PLAIN)%`).
/// Best effort: a failed hostcall loses an audit field, never the decision.
fn publish_audit(decision: &Decision, flow: &RequestFlow, token_fingerprint: Option<&str>) {
    for (field, value) in audit_record(decision, flow.audit(), token_fingerprint) {
        let _ = hostcalls::set_property(vec![field.property()], Some(value.as_bytes()));
    }
}
