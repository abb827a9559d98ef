//! Where and how often the JWKS is fetched. Compiled from configuration.

/// JWKS source and refresh policy (all durations in milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    /// Envoy cluster that reaches the identity provider.
    pub cluster: String,
    /// `:authority` for the callout, e.g. `login.microsoftonline.com`.
    pub authority: String,
    /// Path of the keys document, e.g. `/{tenant}/discovery/v2.0/keys`.
    pub keys_path: String,
    /// Optional OIDC discovery path; when set, `jwks_uri` from it gives the keys path.
    pub discovery_path: Option<String>,
    /// Callout timeout. Default 5000.
    pub fetch_timeout_ms: u64,
    /// Background refresh period. Default 3_600_000 (1 h).
    pub refresh_interval_ms: u64,
    /// A token with an unknown `kid` forces a refresh at most this often per Envoy
    /// (shared by its workers). Default 30_000: forged `kid`s cost at most two
    /// fetches a minute, and an unannounced new key is learned within 30 s of its
    /// first use however many forged `kid`s arrive (docs/security.md, "Key rotation").
    pub unknown_kid_refresh_min_interval_ms: u64,
    /// Last good keys are used this long after their fetch when refreshes fail. Default 86_400_000 (24 h).
    pub max_stale_ms: u64,
    /// How long a request may wait for an in-flight fetch before a 503. Default 5000.
    pub request_wait_ms: u64,
    /// First retry delay after a failed fetch; doubles up to `retry_max_ms`. Default 1000.
    pub retry_initial_ms: u64,
    /// Upper bound of the retry delay. Default 60_000.
    pub retry_max_ms: u64,
}

impl JwksSettings {
    pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
    pub const DEFAULT_REFRESH_INTERVAL_MS: u64 = 3_600_000;
    pub const DEFAULT_UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS: u64 = 30_000;
    pub const DEFAULT_MAX_STALE_MS: u64 = 86_400_000;
    pub const DEFAULT_REQUEST_WAIT_MS: u64 = 5_000;
    pub const DEFAULT_RETRY_INITIAL_MS: u64 = 1_000;
    pub const DEFAULT_RETRY_MAX_MS: u64 = 60_000;

    /// Defaults for a cluster/authority/keys path.
    pub fn new(cluster: &str, authority: &str, keys_path: &str) -> JwksSettings {
        JwksSettings {
            cluster: cluster.to_string(),
            authority: authority.to_string(),
            keys_path: keys_path.to_string(),
            discovery_path: None,
            fetch_timeout_ms: Self::DEFAULT_FETCH_TIMEOUT_MS,
            refresh_interval_ms: Self::DEFAULT_REFRESH_INTERVAL_MS,
            unknown_kid_refresh_min_interval_ms: Self::DEFAULT_UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS,
            max_stale_ms: Self::DEFAULT_MAX_STALE_MS,
            request_wait_ms: Self::DEFAULT_REQUEST_WAIT_MS,
            retry_initial_ms: Self::DEFAULT_RETRY_INITIAL_MS,
            retry_max_ms: Self::DEFAULT_RETRY_MAX_MS,
        }
    }
}
