//! The compiled outbound configuration and how a request finds its destination.

use super::timing::TokenTiming;

/// Header carrying the agent key on every callout to the agent (the agent's
/// `AGENT_KEY_HEADER`).
pub const AGENT_KEY_HEADER: &str = "x-entragate-agent-key";

/// Everything the outbound role needs, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    pub agent: AgentSettings,
    /// One per distinct scope: destinations sharing a scope share one token.
    pub sources: Vec<TokenSource>,
    pub destinations: Vec<Destination>,
    pub overwrite_authorization: bool,
    pub unmatched: UnmatchedOutbound,
    pub timing: TokenTiming,
    pub fetch: FetchPolicy,
}

/// Where the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    pub cluster: String,
    pub authority: String,
    pub token_path: String,
    pub key: AgentKey,
    pub timeout_ms: u64,
}

impl AgentSettings {
    pub const DEFAULT_CLUSTER: &'static str = "entragate_agent";
    pub const DEFAULT_AUTHORITY: &'static str = "entragate-agent";
    pub const DEFAULT_TOKEN_PATH: &'static str = "/v1/token";
    pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
}

/// The agent key: 64 lower-case hex characters. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentKey(String);

impl AgentKey {
    /// `None` unless `text` is exactly 64 hex characters.
    pub fn parse(text: &str) -> Option<AgentKey> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| AgentKey(text.to_ascii_lowercase()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "AgentKey(sha256:{})",
            crate::fingerprint::fingerprint(&self.0)
        )
    }
}

/// One token the agent is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource {
    /// As configured (scope, resource or agent token name).
    pub scope: String,
    /// `{token_path}?scope={percent-encoded scope}`.
    pub path: String,
}

/// A destination: which requests get the token of `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
    /// Lower-case `host` (any port) or `host:port` (that port only).
    pub hosts: Vec<String>,
    pub clusters: Vec<String>,
    /// Index into [`OutboundPolicy::sources`].
    pub source: usize,
}

/// What happens to a request that matches no destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmatchedOutbound {
    /// Forward it unchanged (no token is ever sent to an unconfigured destination).
    Pass,
    /// Refuse it with 403.
    Deny,
}

/// How tokens are fetched and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    pub request_wait_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl FetchPolicy {
    pub const DEFAULT_REQUEST_WAIT_MS: u64 = 5_000;
    /// The agent is on loopback and answers from memory: retry it often.
    pub const DEFAULT_RETRY_INITIAL_MS: u64 = 200;
    pub const DEFAULT_RETRY_MAX_MS: u64 = 5_000;
}

impl OutboundPolicy {
    /// One token coordinator per token source, for the worker `worker_id`
    /// (every host builds a thread's coordinators this way).
    pub fn coordinators(&self, worker_id: u32) -> Vec<super::TokenCoordinator> {
        self.sources
            .iter()
            .map(|source| {
                super::TokenCoordinator::new(
                    &self.agent,
                    source,
                    self.timing,
                    self.fetch,
                    worker_id,
                )
            })
            .collect()
    }

    /// Whether any destination matches on the upstream cluster (only then does
    /// the adapter look the cluster name up per request).
    pub fn matches_clusters(&self) -> bool {
        self.destinations.iter().any(|d| !d.clusters.is_empty())
    }

    /// What a host logs when the configuration is loaded (no secret: the
    /// agent key is not in it).
    pub fn summary(&self) -> String {
        let destinations: Vec<String> = self
            .destinations
            .iter()
            .map(|d| {
                let scope = self.sources.get(d.source).map_or("?", |s| s.scope.as_str());
                format!("{} ({scope})", d.name)
            })
            .collect();
        format!(
            "agent cluster {}, destinations: {}",
            self.agent.cluster,
            destinations.join(", ")
        )
    }

    /// Label of a destination for log lines.
    pub fn destination_name(&self, destination: usize) -> &str {
        self.destinations
            .get(destination)
            .map_or("?", |d| d.name.as_str())
    }

    /// The destination for a request with this `:authority` and upstream
    /// cluster, if any. Hosts and clusters are unique across destinations
    /// (checked at compile time), so the order does not matter.
    pub fn select(&self, authority: &str, cluster: Option<&str>) -> Option<usize> {
        let authority = authority.to_ascii_lowercase();
        let (host, _) = split_host_port(&authority);
        self.destinations.iter().position(|d| {
            d.hosts.iter().any(|h| *h == authority || *h == host)
                || cluster.is_some_and(|c| d.clusters.iter().any(|dc| dc == c))
        })
    }
}

/// `host:port` → (`host`, `Some(port)`); IPv6 literals keep their brackets.
pub fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(end) = authority.find(']') {
        let (host, rest) = authority.split_at(end + 1);
        return (host, rest.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutboundPolicy {
        OutboundPolicy {
            agent: AgentSettings {
                cluster: "a".into(),
                authority: "a".into(),
                token_path: "/v1/token".into(),
                key: AgentKey::parse(&"ab".repeat(32)).unwrap(),
                timeout_ms: 1,
            },
            sources: vec![],
            destinations: vec![
                Destination {
                    name: "fraud".into(),
                    hosts: vec!["fraud-detector".into(), "[::1]:8443".into()],
                    clusters: vec![],
                    source: 0,
                },
                Destination {
                    name: "ledger".into(),
                    hosts: vec!["ledger:8080".into()],
                    clusters: vec!["ledger_cluster".into()],
                    source: 1,
                },
            ],
            overwrite_authorization: false,
            unmatched: UnmatchedOutbound::Pass,
            timing: TokenTiming::default(),
            fetch: FetchPolicy {
                request_wait_ms: 1,
                retry_initial_ms: 1,
                retry_max_ms: 1,
            },
        }
    }

    #[test]
    fn hosts_match_with_any_port_or_the_given_one() {
        let p = policy();
        assert_eq!(p.select("fraud-detector", None), Some(0));
        assert_eq!(p.select("Fraud-Detector:9000", None), Some(0));
        assert_eq!(p.select("[::1]:8443", None), Some(0));
        assert_eq!(p.select("[::1]:8444", None), None);
        assert_eq!(p.select("ledger:8080", None), Some(1));
        assert_eq!(
            p.select("ledger", None),
            None,
            "only port 8080 is configured"
        );
        assert_eq!(p.select("elsewhere", Some("ledger_cluster")), Some(1));
        assert_eq!(p.select("elsewhere", Some("other")), None);
        assert!(p.matches_clusters());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), ("a", Some("1")));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
        assert_eq!(split_host_port("[::1]:80"), ("[::1]", Some("80")));
    }

    #[test]
    fn the_key_is_validated_and_never_shown() {
        assert!(AgentKey::parse("ab").is_none());
        assert!(AgentKey::parse(&"zz".repeat(32)).is_none());
        let key = AgentKey::parse(&"AB".repeat(32)).unwrap();
        assert_eq!(key.expose(), "ab".repeat(32));
        let shown = format!("{key:?}");
        assert!(!shown.contains(&"ab".repeat(32)) && shown.starts_with("AgentKey(sha256:"));
    }
}
