//! The shared-data records one Envoy's workers use to share a single JWKS fetch.
//!
//! Layout (all keys under one prefix per JWKS source, see [`RecordNames`]):
//!
//! | key               | content                                   | read by                 |
//! |-------------------|-------------------------------------------|-------------------------|
//! | `<prefix>.gen`    | generation as ASCII decimal, e.g. `7`     | every request (tiny)    |
//! | `<prefix>.keys`   | [`KeysRecord`] JSON                        | a worker whose gen is old |
//! | `<prefix>.state`  | [`StateRecord`] JSON (lease, backoff, ...) | ticks; requests without keys |
//!
//! The per-request check only reads `.gen`: `get_shared_data` copies the whole
//! value out of the host, so comparing the CAS of `.keys` would still copy the
//! key set on every request.
//!
//! Writers update `.keys` before `.gen`, so a reader that sees a new generation
//! always finds keys at least that new. The format version is part of the
//! prefix, so two filter builds with different formats (e.g. during a rolling
//! config update) never read each other's records; records also carry `v`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::settings::JwksSettings;
pub use crate::fetcher::record::RecordError;
use crate::fetcher::record::{decode_record, encode_record, record_prefix};
use crate::fetcher::state_record::RoleFields;
use crate::host::UnixMillis;
use crate::keys::KeySet;
use crate::keys::RsaPublicKey;

/// Version of the record format; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// Shared-data key names for one JWKS source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordNames {
    pub prefix: String,
    pub generation: String,
    pub keys: String,
    pub state: String,
}

impl RecordNames {
    /// `entragate.jwks.v1.<16 hex of sha256(cluster, authority, keys path, discovery path)>`
    /// (see [`record_prefix`]); the refresh timing is not part of the source.
    pub fn for_settings(settings: &JwksSettings) -> RecordNames {
        let prefix = record_prefix(
            "jwks",
            FORMAT_VERSION,
            &[
                settings.cluster.as_str(),
                settings.authority.as_str(),
                settings.keys_path.as_str(),
                settings.discovery_path.as_deref().unwrap_or(""),
            ],
        );
        RecordNames {
            generation: format!("{prefix}.gen"),
            keys: format!("{prefix}.keys"),
            state: format!("{prefix}.state"),
            prefix,
        }
    }
}

/// `<prefix>.keys`: the last good key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysRecord {
    pub v: u32,
    /// Monotonic; bumped by every successful fetch (even if the keys are equal,
    /// so every worker learns the new `fetched_at_ms` that staleness is based on).
    pub generation: u64,
    pub fetched_at_ms: UnixMillis,
    pub keys: Vec<StoredKey>,
}

/// One key as stored: `n`/`e` as base64url strings (a JSON number array would be
/// four times larger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
    pub n: String,
    pub e: String,
}

impl KeysRecord {
    pub fn new(generation: u64, fetched_at_ms: UnixMillis, set: &KeySet) -> KeysRecord {
        KeysRecord {
            v: FORMAT_VERSION,
            generation,
            fetched_at_ms,
            keys: set
                .keys
                .iter()
                .map(|k| StoredKey {
                    kid: k.kid.clone(),
                    x5t: k.x5t.clone(),
                    n: URL_SAFE_NO_PAD.encode(&k.n),
                    e: URL_SAFE_NO_PAD.encode(&k.e),
                })
                .collect(),
        }
    }

    pub fn to_key_set(&self) -> Result<KeySet, RecordError> {
        let decode = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| RecordError::KeyEncoding)
        };
        let keys = self
            .keys
            .iter()
            .map(|k| {
                Ok(RsaPublicKey {
                    kid: k.kid.clone(),
                    x5t: k.x5t.clone(),
                    n: decode(&k.n)?,
                    e: decode(&k.e)?,
                })
            })
            .collect::<Result<Vec<_>, RecordError>>()?;
        Ok(KeySet { keys })
    }

    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode_record(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<KeysRecord, RecordError> {
        decode_record(bytes, FORMAT_VERSION)
    }
}

/// `<prefix>.state`: who is fetching, and how the last attempts went.
pub type StateRecord = crate::fetcher::state_record::StateRecord<ForcedRefresh>;

/// The JWKS role's own fields of the state record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForcedRefresh {
    /// An unknown `kid` asked for a refresh; consumed when a lease is taken.
    pub refresh_requested: bool,
    /// When the last unknown-`kid` refresh was granted (rate limit per Envoy).
    pub last_forced_refresh_ms: Option<UnixMillis>,
}

impl RoleFields for ForcedRefresh {
    const FORMAT_VERSION: u32 = FORMAT_VERSION;

    fn on_lease_taken(&mut self) {
        self.refresh_requested = false;
    }
}

/// `<prefix>.gen` value.
pub fn encode_generation(generation: u64) -> Vec<u8> {
    generation.to_string().into_bytes()
}

pub fn decode_generation(bytes: &[u8]) -> Option<u64> {
    core::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;

    fn set() -> KeySet {
        KeySet {
            keys: vec![
                RsaPublicKey {
                    kid: "a".into(),
                    x5t: Some("a".into()),
                    n: vec![0xC1; 256],
                    e: vec![1, 0, 1],
                },
                RsaPublicKey {
                    kid: "b".into(),
                    x5t: None,
                    n: vec![0xD2; 512],
                    e: vec![3],
                },
            ],
        }
    }

    #[test]
    fn keys_record_round_trips() {
        let rec = KeysRecord::new(7, 1_700_000_000_000, &set());
        let bytes = rec.encode().unwrap();
        let back = KeysRecord::decode(&bytes).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.to_key_set().unwrap(), set());
    }

    #[test]
    fn state_record_round_trips_and_tolerates_missing_fields() {
        let state = StateRecord {
            lease_owner: Some("w1-5-0".into()),
            lease_until_ms: 10,
            consecutive_failures: 2,
            role: ForcedRefresh {
                refresh_requested: false,
                last_forced_refresh_ms: Some(3),
            },
            last_error: Some("HTTP 500".into()),
            settled_seq: 4,
            ..StateRecord::default()
        };
        assert_eq!(
            StateRecord::decode(&state.encode().unwrap()).unwrap(),
            state
        );
        let sparse = StateRecord::decode(br#"{"v":1,"settled_seq":9}"#).unwrap();
        assert_eq!(sparse.settled_seq, 9);
        assert_eq!(sparse.lease_owner, None);
    }

    #[test]
    fn state_record_bytes_keep_their_field_order() {
        let state = StateRecord {
            lease_owner: Some("w1-5-0".into()),
            role: ForcedRefresh {
                refresh_requested: true,
                last_forced_refresh_ms: Some(3),
            },
            settled_seq: 4,
            ..StateRecord::default()
        };
        assert_eq!(
            String::from_utf8(state.encode().unwrap()).unwrap(),
            concat!(
                r#"{"v":1,"lease_owner":"w1-5-0","lease_until_ms":0,"last_attempt_ms":0,"#,
                r#""last_success_ms":0,"consecutive_failures":0,"next_attempt_ms":0,"#,
                r#""refresh_requested":true,"last_forced_refresh_ms":3,"last_error":null,"#,
                r#""settled_seq":4}"#
            )
        );
    }

    #[test]
    fn other_versions_and_garbage_are_rejected() {
        assert_eq!(
            KeysRecord::decode(br#"{"v":2,"generation":1}"#),
            Err(RecordError::VersionUnsupported(2))
        );
        assert_eq!(
            StateRecord::decode(br#"{"v":0}"#),
            Err(RecordError::VersionUnsupported(0))
        );
        assert_eq!(KeysRecord::decode(b"\xff\x00"), Err(RecordError::Malformed));
        assert_eq!(
            KeysRecord::decode(br#"{"v":1}"#),
            Err(RecordError::Malformed)
        );
        let bad_key = KeysRecord {
            keys: vec![StoredKey {
                kid: "a".into(),
                x5t: None,
                n: "+/".into(),
                e: "AQAB".into(),
            }],
            ..KeysRecord::new(1, 1, &KeySet::default())
        };
        assert_eq!(bad_key.to_key_set(), Err(RecordError::KeyEncoding));
    }

    #[test]
    fn generation_is_plain_decimal() {
        assert_eq!(encode_generation(42), b"42".to_vec());
        assert_eq!(decode_generation(b"42"), Some(42));
        assert_eq!(decode_generation(b"x"), None);
        assert_eq!(decode_generation(b""), None);
    }

    #[test]
    fn names_are_stable_and_distinct_per_source() {
        let a = JwksSettings::new(
            "idp",
            "login.microsoftonline.com",
            "/t1/discovery/v2.0/keys",
        );
        let b = JwksSettings::new(
            "idp",
            "login.microsoftonline.com",
            "/t2/discovery/v2.0/keys",
        );
        let mut a_disc = a.clone();
        a_disc.discovery_path = Some("/t1/v2.0/.well-known/openid-configuration".into());
        let mut a_slow = a.clone();
        a_slow.refresh_interval_ms = 1;
        let na = RecordNames::for_settings(&a);
        assert_eq!(
            na,
            RecordNames::for_settings(&a_slow),
            "timing does not change the source"
        );
        assert_ne!(na.prefix, RecordNames::for_settings(&b).prefix);
        assert_ne!(na.prefix, RecordNames::for_settings(&a_disc).prefix);
        assert!(na.prefix.starts_with("entragate.jwks.v1."));
        assert_eq!(na.prefix.len(), "entragate.jwks.v1.".len() + 16);
        assert_eq!(na.generation, format!("{}.gen", na.prefix));
        assert_eq!(na.keys, format!("{}.keys", na.prefix));
        assert_eq!(na.state, format!("{}.state", na.prefix));
    }

    #[test]
    fn lease_and_backoff_predicates() {
        let mut s = StateRecord::default();
        assert!(!s.lease_active(0));
        s.lease_owner = Some("x".into());
        s.lease_until_ms = 100;
        assert!(s.lease_active(99));
        assert!(!s.lease_active(100));
        assert!(s.owned_by("x") && !s.owned_by("y"));
        s.next_attempt_ms = 50;
        assert!(!s.in_backoff(10), "no failures, no backoff");
        s.consecutive_failures = 1;
        assert!(s.in_backoff(49) && !s.in_backoff(50));
    }
}
