//! Writes a decision back to the (effective) request context.

use entragate_core::audit::audit_record;
use entragate_core::binding::WorkloadBinding;
use entragate_core::engine::{Decision, RequestFlow};
use entragate_core::fingerprint::{fingerprint, loggable_path};
use entragate_core::host::LogLevel;
use entragate_core::policy::Denial;
use entragate_core::response::denial_response;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::host::log;
use crate::metrics::Metrics;

/// Applies `decision` (the outcome of `flow`) to the current effective
/// context. Returns true when the request may continue upstream (the caller
/// resumes or returns `Continue`).
pub fn apply_decision(
    decision: &Decision,
    realm: &str,
    metrics: &Metrics,
    flow: &RequestFlow,
    binding: Option<&WorkloadBinding>,
) -> bool {
    let mismatch;
    let decision = match (decision, binding) {
        (Decision::Allow { caller, .. }, Some(binding))
            if binding.applies_to(flow.audit().rule.as_deref()) =>
        {
            match binding.check(&peer_identities(), caller.as_deref()) {
                Ok(()) => decision,
                Err(error) => {
                    mismatch = Decision::Deny(Denial::from(error));
                    &mismatch
                }
            }
        }
        _ => decision,
    };
    let input = flow.input();
    // The first `Authorization` value is only ever hashed, once, for the audit record and the log line.
    let token_hash = input
        .authorization
        .first()
        .map(|authorization| fingerprint(authorization));
    publish_audit(decision, flow, token_hash.as_deref());
    match decision {
        Decision::Allow { set_headers, .. } => {
            for (name, value) in set_headers {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            }
            metrics.allowed(!flow.audit().token_verified);
            true
        }
        Decision::Deny(denial) => {
            let response = denial_response(denial, realm);
            let headers: Vec<(&str, &str)> = response
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            metrics.denied(denial.error);

            log(
                LogLevel::Info,
                &format!(
                    "entragate: denied {} {} status={} reason={} token_sha256={}",
                    input.method.escape_debug(),
                    // Never the query string: it may carry a credential.
                    loggable_path(&input.path).escape_debug(),
                    response.status,
                    denial.error.metric(),
                    token_hash.as_deref().unwrap_or("-")
                ),
            );
            if hostcalls::send_http_response(
                u32::from(response.status),
                headers,
                Some(response.body.as_bytes()),
            )
            .is_err()
            {
                // Fail closed: if we cannot answer, reset the stream rather than continue.
                let _ = hostcalls::reset_http_request();
            }
            false
        }
    }
}

/// The identities (URI and DNS SAN) of the connection's peer certificate, verified by Envoy's TLS
/// transport socket; empty without mTLS.
fn peer_identities() -> Vec<String> {
    ["uri_san_peer_certificate", "dns_san_peer_certificate"]
        .into_iter()
        .filter_map(|name| {
            hostcalls::get_property(vec!["connection", name])
                .ok()
                .flatten()
        })
        .filter_map(|bytes| String::from_utf8(bytes).ok())
        .filter(|value| !value.is_empty())
        .collect()
}

/// Publishes the decision's audit fields as filter state (`wasm.<property>`),
/// where Envoy access logs read them (`%FILTER_STATE(wasm.entragate_decision:PLAIN)%`).
/// Best effort: a failed hostcall loses an audit field, never the decision.
fn publish_audit(decision: &Decision, flow: &RequestFlow, token_fingerprint: Option<&str>) {
    for (field, value) in audit_record(decision, flow.audit(), token_fingerprint) {
        let _ = hostcalls::set_property(vec![field.property()], Some(value.as_bytes()));
    }
}
