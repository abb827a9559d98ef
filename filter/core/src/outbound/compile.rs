//! Validation and compilation of a [`RawOutboundConfig`] into an [`OutboundPolicy`].
//!
//! Every check of the "Outbound role" section of `docs/configuration.md` lives
//! here, and every error names its field.

use std::ops::RangeInclusive;

use super::policy::{
    AgentKey, AgentSettings, Destination, FetchPolicy, OutboundPolicy, TokenSource,
    UnmatchedOutbound,
};
use super::raw::{RawAgent, RawDestination, RawOutboundConfig};
use super::timing::TokenTiming;
use crate::plugin_config::checks::{self, fail, number, required, Result};
use crate::plugin_config::ConfigError;

const TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
const REQUEST_WAIT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
const RETRY_MS_RANGE: RangeInclusive<u64> = 1..=3_600_000;
const REFRESH_BEFORE_MS_RANGE: RangeInclusive<u64> = 0..=86_400_000;
/// Above 50 % a refresh could come before half the lifetime (see `timing`).
const REFRESH_PERCENT_RANGE: RangeInclusive<u64> = 1..=50;
const EXPIRY_MARGIN_MS_RANGE: RangeInclusive<u64> = 0..=600_000;
/// Scopes and names end up in a query string and in logs.
const MAX_SCOPE_CHARS: usize = 512;
const MAX_NAME_CHARS: usize = 128;

impl OutboundPolicy {
    /// Parses and compiles the outbound plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<OutboundPolicy> {
        OutboundPolicy::try_from(super::raw::parse(bytes)?)
    }
}

impl TryFrom<RawOutboundConfig> for OutboundPolicy {
    type Error = ConfigError;

    fn try_from(raw: RawOutboundConfig) -> Result<OutboundPolicy> {
        let agent = compile_agent(required(raw.agent, "agent")?)?;
        let (sources, destinations) =
            compile_destinations(required(raw.destinations, "destinations")?, &agent)?;
        let unmatched = match raw.unmatched_requests.as_deref() {
            None | Some("pass") => UnmatchedOutbound::Pass,
            Some("deny") => UnmatchedOutbound::Deny,
            Some(_) => return fail("unmatched_requests", "must be \"pass\" or \"deny\""),
        };
        let timing = TokenTiming {
            refresh_before_expiry_ms: number(
                raw.refresh_before_expiry_ms,
                "refresh_before_expiry_ms",
                TokenTiming::DEFAULT_REFRESH_BEFORE_EXPIRY_MS,
                REFRESH_BEFORE_MS_RANGE,
            )?,
            refresh_before_expiry_percent: number(
                raw.refresh_before_expiry_percent,
                "refresh_before_expiry_percent",
                TokenTiming::DEFAULT_REFRESH_BEFORE_EXPIRY_PERCENT,
                REFRESH_PERCENT_RANGE,
            )?,
            expiry_margin_ms: number(
                raw.expiry_margin_ms,
                "expiry_margin_ms",
                TokenTiming::DEFAULT_EXPIRY_MARGIN_MS,
                EXPIRY_MARGIN_MS_RANGE,
            )?,
        };
        let fetch = FetchPolicy {
            request_wait_ms: number(
                raw.request_wait_ms,
                "request_wait_ms",
                FetchPolicy::DEFAULT_REQUEST_WAIT_MS,
                REQUEST_WAIT_MS_RANGE,
            )?,
            retry_initial_ms: number(
                raw.retry_initial_ms,
                "retry_initial_ms",
                FetchPolicy::DEFAULT_RETRY_INITIAL_MS,
                RETRY_MS_RANGE,
            )?,
            retry_max_ms: number(
                raw.retry_max_ms,
                "retry_max_ms",
                FetchPolicy::DEFAULT_RETRY_MAX_MS,
                RETRY_MS_RANGE,
            )?,
        };
        if fetch.retry_max_ms < fetch.retry_initial_ms {
            return fail("retry_max_ms", "must not be smaller than retry_initial_ms");
        }
        Ok(OutboundPolicy {
            agent,
            sources,
            destinations,
            overwrite_authorization: raw.overwrite_authorization.unwrap_or(false),
            unmatched,
            timing,
            fetch,
        })
    }
}

/// Non-empty, no whitespace or control characters, at most `max` characters.
fn word(value: String, field: &str, max: usize) -> Result<String> {
    let value = checks::word(value, field)?;
    if value.chars().count() > max {
        return fail(field, format!("must be at most {max} characters"));
    }
    Ok(value)
}

fn compile_agent(raw: RawAgent) -> Result<AgentSettings> {
    let cluster = word(
        raw.cluster
            .unwrap_or_else(|| AgentSettings::DEFAULT_CLUSTER.into()),
        "agent.cluster",
        MAX_NAME_CHARS,
    )?;
    let authority = word(
        raw.authority
            .unwrap_or_else(|| AgentSettings::DEFAULT_AUTHORITY.into()),
        "agent.authority",
        MAX_NAME_CHARS,
    )?;
    if authority.contains(['/', '?', '#', '@']) {
        return fail(
            "agent.authority",
            "must be a host name with optional port, without scheme or path",
        );
    }
    let token_path = word(
        raw.token_path
            .unwrap_or_else(|| AgentSettings::DEFAULT_TOKEN_PATH.into()),
        "agent.token_path",
        MAX_SCOPE_CHARS,
    )?;
    if !token_path.starts_with('/') || token_path.contains(['?', '#']) {
        return fail(
            "agent.token_path",
            "must start with `/` and have no query or fragment (the scope is added as `?scope=`)",
        );
    }
    // The key itself never goes into an error message: a near-miss is still a secret.
    let key = required(raw.key, "agent.key")?;
    let key = AgentKey::parse(key.trim()).ok_or_else(|| {
        ConfigError::new(
            "agent.key",
            "must be the 64 hex characters of the agent key file (bootstrap agent --agent-key-file)",
        )
    })?;
    let timeout_ms = number(
        raw.timeout_ms,
        "agent.timeout_ms",
        AgentSettings::DEFAULT_TIMEOUT_MS,
        TIMEOUT_MS_RANGE,
    )?;
    Ok(AgentSettings {
        cluster,
        authority,
        token_path,
        key,
        timeout_ms,
    })
}

fn compile_destinations(
    raw: Vec<RawDestination>,
    agent: &AgentSettings,
) -> Result<(Vec<TokenSource>, Vec<Destination>)> {
    if raw.is_empty() {
        return fail("destinations", "must not be empty");
    }
    let mut sources: Vec<TokenSource> = Vec::new();
    let mut destinations: Vec<Destination> = Vec::with_capacity(raw.len());
    for (index, dest) in raw.into_iter().enumerate() {
        let field = format!("destinations[{index}]");
        let scope = word(
            required(dest.scope, &format!("{field}.scope"))?,
            &format!("{field}.scope"),
            MAX_SCOPE_CHARS,
        )?;
        let name = match dest.name {
            Some(name) => word(name, &format!("{field}.name"), MAX_NAME_CHARS)?,
            None => scope.clone(),
        };
        if destinations.iter().any(|d| d.name == name) {
            return fail(format!("{field}.name"), format!("duplicate name `{name}`"));
        }
        let hosts = compile_hosts(dest.hosts.unwrap_or_default(), &field, &destinations)?;
        let clusters = compile_clusters(dest.clusters.unwrap_or_default(), &field, &destinations)?;
        if hosts.is_empty() && clusters.is_empty() {
            return fail(
                field,
                "needs `hosts` or `clusters`: which requests get this token",
            );
        }
        let source = match sources.iter().position(|s| s.scope == scope) {
            Some(existing) => existing,
            None => {
                sources.push(TokenSource {
                    path: format!("{}?scope={}", agent.token_path, percent_encode(&scope)),
                    scope,
                });
                sources.len() - 1
            }
        };
        destinations.push(Destination {
            name,
            hosts,
            clusters,
            source,
        });
    }
    Ok((sources, destinations))
}

fn compile_hosts(raw: Vec<String>, field: &str, earlier: &[Destination]) -> Result<Vec<String>> {
    let mut hosts: Vec<String> = Vec::with_capacity(raw.len());
    for (index, host) in raw.into_iter().enumerate() {
        let path = format!("{field}.hosts[{index}]");
        let host = word(host, &path, MAX_NAME_CHARS)?.to_ascii_lowercase();
        if host.contains(['/', '?', '#', '@', '*']) {
            return fail(
                path,
                "must be a host name with optional port (no scheme, path or wildcard)",
            );
        }
        if hosts.contains(&host) || earlier.iter().any(|d| d.hosts.contains(&host)) {
            return fail(path, format!("host `{host}` is listed twice"));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

fn compile_clusters(raw: Vec<String>, field: &str, earlier: &[Destination]) -> Result<Vec<String>> {
    let mut clusters: Vec<String> = Vec::with_capacity(raw.len());
    for (index, cluster) in raw.into_iter().enumerate() {
        let path = format!("{field}.clusters[{index}]");
        let cluster = word(cluster, &path, MAX_NAME_CHARS)?;
        if clusters.contains(&cluster) || earlier.iter().any(|d| d.clusters.contains(&cluster)) {
            return fail(path, format!("cluster `{cluster}` is listed twice"));
        }
        clusters.push(cluster);
    }
    Ok(clusters)
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn compile(doc: serde_json::Value) -> Result<OutboundPolicy> {
        OutboundPolicy::from_json(doc.to_string().as_bytes())
    }

    fn error(doc: serde_json::Value) -> ConfigError {
        compile(doc).expect_err("must be rejected")
    }

    fn minimal() -> serde_json::Value {
        json!({
            "agent": { "key": KEY },
            "destinations": [{ "scope": "api://fintech-fraud-detector/.default", "hosts": ["fraud-detector"] }]
        })
    }

    #[test]
    fn the_minimal_document_gets_the_documented_defaults() {
        let p = compile(minimal()).unwrap();
        assert_eq!(p.agent.cluster, "entragate_agent");
        assert_eq!(p.agent.authority, "entragate-agent");
        assert_eq!(p.agent.token_path, "/v1/token");
        assert_eq!(p.agent.key.expose(), KEY);
        assert_eq!(p.agent.timeout_ms, 2_000);
        assert_eq!(p.sources.len(), 1);
        assert_eq!(
            p.sources[0].path,
            "/v1/token?scope=api%3A%2F%2Ffintech-fraud-detector%2F.default"
        );
        let d = &p.destinations[0];
        assert_eq!(d.name, "api://fintech-fraud-detector/.default");
        assert_eq!(
            (d.hosts.as_slice(), d.source),
            (&["fraud-detector".to_string()][..], 0)
        );
        assert!(!p.overwrite_authorization);
        assert_eq!(p.unmatched, UnmatchedOutbound::Pass);
        assert_eq!(p.timing, TokenTiming::default());
        assert_eq!(
            p.fetch,
            FetchPolicy {
                request_wait_ms: 5_000,
                retry_initial_ms: 200,
                retry_max_ms: 5_000
            }
        );
    }

    #[test]
    fn destinations_sharing_a_scope_share_a_source() {
        let p = compile(json!({
            "agent": { "key": KEY, "cluster": "agent", "authority": "localhost:15901", "timeout_ms": 500 },
            "destinations": [
                { "name": "fraud", "scope": "fraud", "hosts": ["Fraud-Detector:8443"] },
                { "name": "fraud-b", "scope": "fraud", "clusters": ["fraud_b"] },
                { "name": "ledger", "scope": "api://ledger", "clusters": ["ledger"] }
            ],
            "overwrite_authorization": true,
            "unmatched_requests": "deny",
            "refresh_before_expiry_ms": 60000,
            "refresh_before_expiry_percent": 20,
            "expiry_margin_ms": 0,
            "request_wait_ms": 100,
            "retry_initial_ms": 10,
            "retry_max_ms": 10
        }))
        .unwrap();
        assert_eq!(p.sources.len(), 2);
        assert_eq!(p.sources[0].path, "/v1/token?scope=fraud");
        let sources: Vec<usize> = p.destinations.iter().map(|d| d.source).collect();
        assert_eq!(sources, [0, 0, 1]);
        assert_eq!(p.destinations[0].hosts, ["fraud-detector:8443"]);
        assert!(p.overwrite_authorization);
        assert_eq!(p.unmatched, UnmatchedOutbound::Deny);
        assert_eq!(p.timing.refresh_before_expiry_percent, 20);
        assert_eq!(p.agent.timeout_ms, 500);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({}), "agent", "is required"),
            (
                json!({"agent": {"key": KEY}}),
                "destinations",
                "is required",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": []}),
                "destinations",
                "must not be empty",
            ),
            (
                json!({"agent": {}, "destinations": []}),
                "agent.key",
                "is required",
            ),
            (
                json!({"agent": {"key": "abc"}, "destinations": []}),
                "agent.key",
                "64 hex",
            ),
            (
                json!({"agent": {"key": KEY, "authority": "http://x"}, "destinations": []}),
                "agent.authority",
                "without scheme",
            ),
            (
                json!({"agent": {"key": KEY, "token_path": "v1/token"}, "destinations": []}),
                "agent.token_path",
                "must start with",
            ),
            (
                json!({"agent": {"key": KEY, "token_path": "/t?x=1"}, "destinations": []}),
                "agent.token_path",
                "no query",
            ),
            (
                json!({"agent": {"key": KEY, "timeout_ms": 0}, "destinations": []}),
                "agent.timeout_ms",
                "between 1 and 60000",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"hosts": ["a"]}]}),
                "destinations[0].scope",
                "is required",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"scope": "a b", "hosts": ["a"]}]}),
                "destinations[0].scope",
                "whitespace",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"scope": "s"}]}),
                "destinations[0]",
                "needs `hosts` or `clusters`",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"scope": "s", "hosts": ["https://a"]}]}),
                "destinations[0].hosts[0]",
                "no scheme",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"scope": "s", "hosts": ["a"]}, {"scope": "t", "hosts": ["A"]}]}),
                "destinations[1].hosts[0]",
                "listed twice",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"scope": "s", "clusters": ["c", "c"]}]}),
                "destinations[0].clusters[1]",
                "listed twice",
            ),
            (
                json!({"agent": {"key": KEY}, "destinations": [{"scope": "s", "hosts": ["a"]}, {"scope": "s", "hosts": ["b"]}]}),
                "destinations[1].name",
                "duplicate name",
            ),
        ];
        for (doc, field, message) in cases {
            let e = error(doc.clone());
            assert_eq!(e.field, field, "{doc}: {e}");
            assert!(e.message.contains(message), "{doc}: {e}");
        }
        let mut doc = minimal();
        doc["unmatched_requests"] = json!("allow");
        assert_eq!(error(doc).field, "unmatched_requests");
        let mut doc = minimal();
        doc["refresh_before_expiry_percent"] = json!(51);
        assert_eq!(error(doc).field, "refresh_before_expiry_percent");
        let mut doc = minimal();
        doc["retry_initial_ms"] = json!(1000);
        doc["retry_max_ms"] = json!(999);
        assert_eq!(error(doc).field, "retry_max_ms");
    }

    #[test]
    fn a_wrong_key_is_not_echoed() {
        let almost = format!("{}g", &KEY[..63]);
        let e = error(json!({"agent": {"key": almost}, "destinations": []}));
        assert!(!e.to_string().contains(&almost[..40]), "{e}");
    }

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            percent_encode("api://x/.default"),
            "api%3A%2F%2Fx%2F.default"
        );
        assert_eq!(percent_encode("é&="), "%C3%A9%26%3D");
    }
}
