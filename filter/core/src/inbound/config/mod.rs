//! The plugin configuration: parsed ([`raw`]), validated and compiled
//! ([`compile`]) into an immutable [`FilterPolicy`].
//!
//! The format is specified in `docs/configuration.md`; this module implements
//! exactly that document. Loading is all-or-nothing: any error refuses the
//! whole configuration, naming the offending field ([`ConfigError`]).

pub mod compile;
pub mod raw;

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests;

/// Re-exported: it is a configuration choice as much as a policy type.
pub use crate::inbound::policy::UnmatchedRequests;
pub use crate::plugin_config::ConfigError;
pub use raw::RawConfig;

use crate::inbound::jwks::JwksSettings;
use crate::inbound::policy::{ClaimHeaders, RouteTable};
use crate::options::{SignatureBackend, VerifyOptions};

/// Everything the filter needs at request time, validated and precomputed
/// (normalised GUIDs, lower-case header names, 403 `scope` strings) so that a
/// request only matches and compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPolicy {
    /// RFC 6750 realm for `WWW-Authenticate`. Safe to put in a quoted string
    /// (no control characters, ASCII only).
    pub realm: String,
    pub verify: VerifyOptions,
    pub jwks: JwksSettings,
    pub routes: RouteTable,
    pub unmatched: UnmatchedRequests,
    pub claim_headers: ClaimHeaders,
    /// Entries of each worker's verified-token cache; 0 disables it.
    pub token_cache_size: usize,
    pub signature_verifier: SignatureBackend,
    /// Which rules require the token's caller to be the mTLS peer's app ([`crate::inbound::binding`]).
    pub workload_binding: Option<crate::inbound::binding::WorkloadBinding>,
    /// Publish each decision's audit record as filter state
    /// ([`crate::inbound::audit`]): on by default; off saves its host writes
    /// where no access log reads them.
    pub audit_fields: bool,
}

impl FilterPolicy {
    pub const DEFAULT_REALM: &'static str = "entragate";

    /// Parses and compiles the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<FilterPolicy, ConfigError> {
        FilterPolicy::try_from(raw::parse(bytes)?)
    }
}
