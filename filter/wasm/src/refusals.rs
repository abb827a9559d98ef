//! Writing refusals back, for both roles: the reply comes whole from the
//! core's refusal table (`entragate_core::response`), and the refusal
//! counters are defined from the same table, so the adapter builds no reply
//! body and keeps no list of metric names by hand.

use std::collections::HashMap;

use entragate_core::error::ErrorSpec;
use entragate_core::response::LocalResponse;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Sends a local reply on the current (effective) request. Fails closed: if
/// even that fails, the stream is reset rather than forwarded.
pub fn send_reply(response: &LocalResponse) {
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if hostcalls::send_http_response(
        u32::from(response.status),
        headers,
        Some(response.body.as_bytes()),
    )
    .is_err()
    {
        let _ = hostcalls::reset_http_request();
    }
}

/// One counter per counter name of a refusal table (reasons that share a
/// name share the counter).
#[derive(Debug, Default, Clone)]
pub struct RefusalCounters {
    ids: HashMap<&'static str, u32>,
}

impl RefusalCounters {
    pub fn define(rows: impl IntoIterator<Item = ErrorSpec>) -> RefusalCounters {
        let mut ids = HashMap::new();
        for spec in rows {
            if !ids.contains_key(spec.counter) {
                if let Ok(id) = hostcalls::define_metric(MetricType::Counter, spec.counter) {
                    ids.insert(spec.counter, id);
                }
            }
        }
        RefusalCounters { ids }
    }

    pub fn bump(&self, spec: ErrorSpec) {
        if let Some(id) = self.ids.get(spec.counter) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}
