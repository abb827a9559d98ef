//! The audit access log of a rendered callee sidecar: one JSON line per request on stdout (where container
//! platforms collect logs), with entragate's decision fields next to Envoy's own.
//!
//! The decision fields are derived from the filter's own table ([`AuditField::ALL`]: the filter state
//! `wasm.entragate_<name>` ([`AuditField::filter_state_key`], the same key on both hosts) becomes the JSON
//! key `<name>`), so a field added to the filter is logged without touching the renderer. `envoy/callee.yaml`
//! writes the same keys (checked by `tests/tests/audit_log.rs`).

use entragate_core::audit::AuditField;
use serde_yaml_ng::Value;

use super::yaml::{list, map, s};

/// Envoy's own request fields. Never `%REQ(AUTHORIZATION)%`: the token fingerprint correlates requests.
const REQUEST_FIELDS: [(&str, &str); 5] = [
    ("start_time", "%START_TIME%"),
    ("method", "%REQ(:METHOD)%"),
    // Truncated: a path is attacker-chosen and may be long.
    ("path", "%REQ(:PATH):256%"),
    ("status", "%RESPONSE_CODE%"),
    ("duration_ms", "%DURATION%"),
];

/// The `access_log` list of the inbound HTTP connection manager.
pub fn inbound_access_log() -> Value {
    let mut fields: Vec<(String, Value)> = REQUEST_FIELDS
        .iter()
        .map(|(key, command)| (key.to_string(), s(*command)))
        .collect();
    for field in AuditField::ALL {
        let property = field.property();
        let key = property.strip_prefix("entragate_").unwrap_or(property);
        fields.push((
            key.to_string(),
            s(format!(
                "%FILTER_STATE({}:PLAIN)%",
                field.filter_state_key()
            )),
        ));
    }
    let json_format = Value::Mapping(
        fields
            .into_iter()
            .map(|(k, v)| (Value::String(k), v))
            .collect(),
    );
    list(vec![map([
        ("name", s("envoy.access_loggers.stdout")),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
                ),
                ("log_format", map([("json_format", json_format)])),
            ]),
        ),
    ])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_field_is_logged_under_its_short_name() {
        let rendered = serde_yaml_ng::to_string(&inbound_access_log()).unwrap();
        for field in AuditField::ALL {
            let property = field.property();
            let key = property.strip_prefix("entragate_").unwrap();
            assert!(
                rendered.contains(&format!("{key}: '%FILTER_STATE(wasm.{property}:PLAIN)%'")),
                "{key} missing:\n{rendered}"
            );
        }
        assert!(!rendered.to_ascii_lowercase().contains("authorization"));
    }
}
