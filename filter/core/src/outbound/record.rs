//! The shared-data records one Envoy's workers use to share one agent token.
//!
//! Per token source (agent + scope), two keys under one prefix:
//!
//! | key              | content                                      | read by                          |
//! |------------------|----------------------------------------------|----------------------------------|
//! | `<prefix>.token` | [`TokenRecord`] JSON: the token and its schedule | a worker without a usable copy, or told by `.state` that a fetch settled |
//! | `<prefix>.state` | [`StateRecord`] JSON: lease, backoff, last error | ticks; requests without a token  |
//!
//! A request whose worker holds a usable copy reads neither: the token is
//! attached from worker memory. The schedule is computed once by the fetching
//! worker and stored, so every worker refreshes and stops using the token at
//! the same instants. The format version is part of the prefix (as for the
//! JWKS records) so two filter builds never read each other's records.

use serde::{Deserialize, Serialize};

use super::policy::{AgentSettings, TokenSource};
use super::timing::TokenSchedule;
pub use crate::fetcher::record::RecordError;
use crate::fetcher::record::{decode_record, encode_record, record_prefix};
use crate::fetcher::state_record::RoleFields;
use crate::host::UnixMillis;

pub const FORMAT_VERSION: u32 = 1;

/// Shared-data key names for one token source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordNames {
    pub prefix: String,
    pub token: String,
    pub state: String,
}

impl RecordNames {
    /// `entragate.outbound.v1.<16 hex of sha256(cluster, authority, path)>`
    /// (see [`record_prefix`]); the path carries the scope. The agent key is
    /// left out on purpose: a re-rendered key does not change which token a
    /// source stands for.
    pub fn for_source(agent: &AgentSettings, source: &TokenSource) -> RecordNames {
        let parts = [&agent.cluster, &agent.authority, &source.path].map(String::as_str);
        let prefix = record_prefix("outbound", FORMAT_VERSION, &parts);
        RecordNames {
            token: format!("{prefix}.token"),
            state: format!("{prefix}.state"),
            prefix,
        }
    }
}

/// `<prefix>.token`: the last token fetched.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub v: u32,
    /// Bumped by every successful fetch.
    pub generation: u64,
    pub access_token: String,
    pub received_at_ms: UnixMillis,
    pub expires_at_ms: UnixMillis,
    pub refresh_at_ms: UnixMillis,
    pub usable_until_ms: UnixMillis,
}

impl core::fmt::Debug for TokenRecord {
    // The token is a bearer credential: only its fingerprint is shown.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("generation", &self.generation)
            .field(
                "access_token",
                &format_args!(
                    "sha256:{}",
                    crate::fingerprint::fingerprint(&self.access_token)
                ),
            )
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field("usable_until_ms", &self.usable_until_ms)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    pub fn new(
        generation: u64,
        access_token: String,
        received_at_ms: UnixMillis,
        schedule: TokenSchedule,
    ) -> TokenRecord {
        TokenRecord {
            v: FORMAT_VERSION,
            generation,
            access_token,
            received_at_ms,
            expires_at_ms: schedule.expires_at_ms,
            refresh_at_ms: schedule.refresh_at_ms,
            usable_until_ms: schedule.usable_until_ms,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode_record(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<TokenRecord, RecordError> {
        decode_record(bytes, FORMAT_VERSION)
    }
}

/// `<prefix>.state`: who is fetching, and how the last attempts went.
pub type StateRecord = crate::fetcher::state_record::StateRecord<NoRoleFields>;

/// The outbound role adds no fields to the shared state record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoRoleFields {}

impl RoleFields for NoRoleFields {
    const FORMAT_VERSION: u32 = FORMAT_VERSION;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::policy::AgentKey;

    fn agent() -> AgentSettings {
        AgentSettings {
            cluster: "entragate_agent".into(),
            authority: "entragate-agent".into(),
            token_path: "/v1/token".into(),
            key: AgentKey::parse(&"0a".repeat(32)).unwrap(),
            timeout_ms: 2_000,
        }
    }

    fn source(scope: &str) -> TokenSource {
        TokenSource {
            scope: scope.into(),
            path: format!("/v1/token?scope={scope}"),
        }
    }

    #[test]
    fn names_are_per_source_and_independent_of_the_key() {
        let a = RecordNames::for_source(&agent(), &source("a"));
        let b = RecordNames::for_source(&agent(), &source("b"));
        assert_ne!(a.prefix, b.prefix);
        let mut rekeyed = agent();
        rekeyed.key = AgentKey::parse(&"0b".repeat(32)).unwrap();
        assert_eq!(a, RecordNames::for_source(&rekeyed, &source("a")));
        assert!(a.prefix.starts_with("entragate.outbound.v1."));
        assert_eq!(a.token, format!("{}.token", a.prefix));
        assert_eq!(a.state, format!("{}.state", a.prefix));
    }

    #[test]
    fn records_round_trip_and_hide_the_token_in_debug() {
        let schedule = TokenSchedule {
            expires_at_ms: 30,
            refresh_at_ms: 20,
            usable_until_ms: 25,
        };
        let rec = TokenRecord::new(3, "secret.token.value".into(), 10, schedule);
        assert_eq!(TokenRecord::decode(&rec.encode().unwrap()).unwrap(), rec);
        assert!(!format!("{rec:?}").contains("secret.token.value"));
        let state = StateRecord {
            lease_owner: Some("w1-1-0".into()),
            consecutive_failures: 2,
            last_error: Some("agent down".into()),
            ..StateRecord::default()
        };
        assert_eq!(
            StateRecord::decode(&state.encode().unwrap()).unwrap(),
            state
        );
        assert_eq!(
            StateRecord::decode(br#"{"v":2}"#),
            Err(RecordError::VersionUnsupported(2))
        );
        assert_eq!(TokenRecord::decode(b"x"), Err(RecordError::Malformed));
    }

    #[test]
    fn state_record_bytes_keep_their_field_order() {
        let state = StateRecord {
            last_error: Some("agent down".into()),
            settled_seq: 2,
            ..StateRecord::default()
        };
        assert_eq!(
            String::from_utf8(state.encode().unwrap()).unwrap(),
            concat!(
                r#"{"v":1,"lease_owner":null,"lease_until_ms":0,"last_attempt_ms":0,"#,
                r#""last_success_ms":0,"consecutive_failures":0,"next_attempt_ms":0,"#,
                r#""last_error":"agent down","settled_seq":2}"#
            )
        );
    }

    #[test]
    fn lease_and_backoff_predicates() {
        let mut s = StateRecord::default();
        assert!(!s.lease_active(0));
        s.lease_owner = Some("x".into());
        s.lease_until_ms = 10;
        assert!(s.lease_active(9) && !s.lease_active(10));
        assert!(s.owned_by("x") && !s.owned_by("y"));
        s.next_attempt_ms = 5;
        assert!(!s.in_backoff(1));
        s.consecutive_failures = 1;
        assert!(s.in_backoff(4) && !s.in_backoff(5));
    }
}
