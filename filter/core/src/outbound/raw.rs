//! The outbound role's plugin configuration exactly as written (serde mirror).
//!
//! As for the callee role (`crate::inbound::config::raw`), every field is optional here:
//! requiredness, defaults and value checks live in [`super::compile`], which
//! names the field in its errors. Unknown fields are rejected everywhere, and
//! `null` means "absent". The format is documented in `docs/configuration.md`
//! ("Outbound role").

use serde::Deserialize;

use crate::plugin_config::ConfigError;

/// The whole outbound plugin configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutboundConfig {
    /// Where the bootstrap agent is. Required (at least `key`).
    pub agent: Option<RawAgent>,
    /// Which requests get which token. Required, non-empty.
    pub destinations: Option<Vec<RawDestination>>,
    /// Replace an `Authorization` header the application set. Default false.
    pub overwrite_authorization: Option<bool>,
    /// `"pass"` or `"deny"` for requests matching no destination. Default `"pass"`.
    pub unmatched_requests: Option<String>,
    /// Refresh when less than this is left... Default 300000.
    pub refresh_before_expiry_ms: Option<u64>,
    /// ...or less than this share of the lifetime, whichever is smaller. Default 10.
    pub refresh_before_expiry_percent: Option<u64>,
    /// Never attach a token with less than this left. Default 5000.
    pub expiry_margin_ms: Option<u64>,
    /// How long a request waits for a token being fetched. Default 5000.
    pub request_wait_ms: Option<u64>,
    /// First retry delay after a failed agent callout. Default 200.
    pub retry_initial_ms: Option<u64>,
    /// Largest retry delay. Default 5000.
    pub retry_max_ms: Option<u64>,
}

/// The agent (`agent` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Envoy cluster reaching the agent. Default `"entragate_agent"`.
    pub cluster: Option<String>,
    /// `:authority` of the callout. Default `"entragate-agent"`.
    pub authority: Option<String>,
    /// Path of the token endpoint. Default `"/v1/token"`.
    pub token_path: Option<String>,
    /// The agent key (64 hex characters). Required.
    pub key: Option<String>,
    /// Callout timeout. Default 2000.
    pub timeout_ms: Option<u64>,
}

/// One destination (`destinations[i]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    /// Label for logs and metrics. Default: the scope.
    pub name: Option<String>,
    /// Scope, resource or agent token name asked from the agent. Required.
    pub scope: Option<String>,
    /// `:authority` values (host, or host:port) routed to this destination.
    pub hosts: Option<Vec<String>>,
    /// Envoy upstream cluster names routed to this destination.
    pub clusters: Option<Vec<String>>,
}

/// Parses the document; errors name the field (`destinations[1].scope`).
pub fn parse(bytes: &[u8]) -> Result<RawOutboundConfig, ConfigError> {
    crate::plugin_config::document::parse_document(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let e = parse(br#"{"destinations": [{"scope": "x", "host": ["a"]}]}"#)
            .expect_err("must be rejected");
        assert_eq!(e.field, "destinations[0].host");
        assert!(e.message.contains("unknown field `host`"), "{e}");
        let e = parse(br#"{"agent": {"keyy": "x"}}"#).expect_err("must be rejected");
        assert_eq!(e.field, "agent.keyy");
    }

    #[test]
    fn null_is_absent_and_duplicates_are_rejected() {
        let raw = parse(br#"{"agent": null, "overwrite_authorization": null}"#).unwrap();
        assert_eq!(raw, RawOutboundConfig::default());
        let e = parse(br#"{"retry_max_ms": 1, "retry_max_ms": 2}"#).expect_err("duplicate");
        assert!(e.message.contains("duplicate field"), "{e}");
        let e = parse(br#"{"retry_max_ms": "1"}"#).expect_err("type");
        assert_eq!(e.field, "retry_max_ms");
    }
}
