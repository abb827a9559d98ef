//! Writes a decision back to the (effective) request context.

use entragate_core::engine::Decision;
use entragate_core::fingerprint::{fingerprint, loggable_path};
use entragate_core::host::LogLevel;
use entragate_core::response::denial_response;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::host::log;
use crate::metrics::Metrics;

/// Request details for the decision log line. Never the token itself.
pub struct LogContext<'a> {
    pub method: &'a str,
    /// The full `:path`; only its [`loggable_path`] part is ever logged.
    pub path: &'a str,
    /// First `Authorization` value, hashed before logging.
    pub authorization: Option<&'a str>,
}

/// Applies `decision` to the current effective context. Returns true when the
/// request may continue upstream (the caller resumes or returns `Continue`).
pub fn apply_decision(
    decision: &Decision,
    realm: &str,
    metrics: &Metrics,
    ctx: &LogContext<'_>,
) -> bool {
    match decision {
        Decision::Allow {
            set_headers,
            caller,
        } => {
            for (name, value) in set_headers {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            }
            metrics.allowed(caller.is_none());
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
            let token_hash = ctx
                .authorization
                .map(fingerprint)
                .unwrap_or_else(|| "-".to_string());
            log(
                LogLevel::Info,
                &format!(
                    "entragate: denied {} {} status={} reason={} token_sha256={}",
                    ctx.method.escape_debug(),
                    // Never the query string: it may carry a credential.
                    loggable_path(ctx.path).escape_debug(),
                    response.status,
                    denial.error.metric(),
                    token_hash
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
