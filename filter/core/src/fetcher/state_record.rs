//! `<prefix>.state`: who is fetching, and how the last attempts went.
//!
//! The JWKS and outbound roles keep the same lease/backoff fields; a role's
//! own fields (e.g. the JWKS unknown-`kid` refresh request) live in `X`,
//! flattened into the same JSON object. `X` sits between `next_attempt_ms`
//! and `last_error` so the JSON keys keep the order the records were first
//! written in (byte-for-byte the same records as before they were shared).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::record::{decode_record, encode_record, RecordError};
use crate::host::UnixMillis;

/// A role's own fields of the state record.
pub trait RoleFields:
    Default + Clone + PartialEq + core::fmt::Debug + Serialize + DeserializeOwned
{
    /// The role's record format version (`v`).
    const FORMAT_VERSION: u32;

    /// A fetch just took the lease (e.g. consume a pending refresh request).
    fn on_lease_taken(&mut self) {}
}

/// The state record of one fetch source; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    default,
    bound(serialize = "X: Serialize", deserialize = "X: RoleFields")
)]
pub struct StateRecord<X> {
    pub v: u32,
    /// Id of the fetch holding the lease (`w<worker>-<ms>-<seq>`), if any.
    pub lease_owner: Option<String>,
    /// The lease is void after this instant, even if never released (the worker
    /// holding it may have been reloaded and will never answer).
    pub lease_until_ms: UnixMillis,
    pub last_attempt_ms: UnixMillis,
    pub last_success_ms: UnixMillis,
    pub consecutive_failures: u32,
    /// No new attempt before this instant (backoff); 0 when the last one succeeded.
    pub next_attempt_ms: UnixMillis,
    #[serde(flatten)]
    pub role: X,
    /// Short reason of the last failure, for diagnostics (and the reason of
    /// outbound 503s). Never key material or a token.
    pub last_error: Option<String>,
    /// Bumped whenever a fetch settles (success or failure), so workers that did
    /// not fetch notice the result and let their waiting requests re-check.
    pub settled_seq: u64,
}

impl<X: RoleFields> Default for StateRecord<X> {
    fn default() -> Self {
        StateRecord {
            v: X::FORMAT_VERSION,
            lease_owner: None,
            lease_until_ms: 0,
            last_attempt_ms: 0,
            last_success_ms: 0,
            consecutive_failures: 0,
            next_attempt_ms: 0,
            role: X::default(),
            last_error: None,
            settled_seq: 0,
        }
    }
}

/// When the next fetch may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A lease is active: someone is fetching.
    Busy,
    /// Nothing to do before this instant.
    NotBefore(UnixMillis),
    /// Fetch now, for this reason (logged).
    Now(&'static str),
}

impl<X: RoleFields> StateRecord<X> {
    /// Someone holds an unexpired lease (a fetch is in flight somewhere).
    pub fn lease_active(&self, now: UnixMillis) -> bool {
        self.lease_owner.is_some() && now < self.lease_until_ms
    }

    pub fn owned_by(&self, lease_id: &str) -> bool {
        self.lease_owner.as_deref() == Some(lease_id)
    }

    /// The last attempt failed and its retry delay has not elapsed.
    pub fn in_backoff(&self, now: UnixMillis) -> bool {
        self.consecutive_failures > 0 && now < self.next_attempt_ms
    }

    /// Whether a fetch is due. `wanted` is the role's own rule: `Ok(reason)`
    /// if it wants a fetch now, `Err(at)` if not before `at`; a failed
    /// attempt's backoff and an active lease come first either way.
    pub fn fetch_due(
        &self,
        now: UnixMillis,
        wanted: impl FnOnce() -> Result<&'static str, UnixMillis>,
    ) -> Due {
        if self.lease_active(now) {
            return Due::Busy;
        }
        let reason = match wanted() {
            Ok(reason) => reason,
            Err(at) => return Due::NotBefore(at),
        };
        if now < self.next_attempt_ms {
            Due::NotBefore(self.next_attempt_ms)
        } else {
            Due::Now(reason)
        }
    }

    pub fn take_lease(&mut self, lease_id: String, lease_until_ms: UnixMillis, now: UnixMillis) {
        self.lease_owner = Some(lease_id);
        self.lease_until_ms = lease_until_ms;
        self.last_attempt_ms = now;
        self.role.on_lease_taken();
    }

    /// The lease holder's fetch succeeded: release the lease, reset backoff.
    pub fn settle_success(&mut self, now: UnixMillis) {
        self.lease_owner = None;
        self.lease_until_ms = 0;
        self.consecutive_failures = 0;
        self.next_attempt_ms = 0;
        self.last_success_ms = now;
        self.last_error = None;
        self.settled_seq = self.settled_seq.wrapping_add(1);
    }

    /// The lease holder's fetch failed: release the lease and back off by
    /// `delay(failures)` (failures counting this one).
    pub fn settle_failure(&mut self, now: UnixMillis, message: &str, delay: impl Fn(u32) -> u64) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.next_attempt_ms = now.saturating_add(delay(self.consecutive_failures));
        self.lease_owner = None;
        self.lease_until_ms = 0;
        self.last_error = Some(message.to_string());
        self.settled_seq = self.settled_seq.wrapping_add(1);
    }

    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode_record(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<StateRecord<X>, RecordError> {
        decode_record(bytes, X::FORMAT_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(default)]
    struct Extra {
        wanted: bool,
    }

    impl RoleFields for Extra {
        const FORMAT_VERSION: u32 = 7;
        fn on_lease_taken(&mut self) {
            self.wanted = false;
        }
    }

    #[test]
    fn role_fields_sit_in_place_and_round_trip() {
        let mut s = StateRecord::<Extra>::default();
        s.role.wanted = true;
        s.settled_seq = 3;
        let bytes = s.encode().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"v":7,"lease_owner":null,"lease_until_ms":0,"last_attempt_ms":0,"last_success_ms":0,"consecutive_failures":0,"next_attempt_ms":0,"wanted":true,"last_error":null,"settled_seq":3}"#
        );
        assert_eq!(StateRecord::<Extra>::decode(&bytes).unwrap(), s);
        let sparse = StateRecord::<Extra>::decode(br#"{"v":7,"wanted":true}"#).unwrap();
        assert!(sparse.role.wanted);
        assert_eq!(
            StateRecord::<Extra>::decode(br#"{"v":1}"#),
            Err(RecordError::VersionUnsupported(1))
        );
    }

    #[test]
    fn lease_steps() {
        let mut s = StateRecord::<Extra>::default();
        s.role.wanted = true;
        s.take_lease("x".into(), 10, 4);
        assert!(s.owned_by("x") && s.lease_active(9) && !s.role.wanted);
        assert_eq!(s.last_attempt_ms, 4);
        assert_eq!(s.fetch_due(5, || Ok("r")), Due::Busy);
        s.settle_failure(5, "boom", |failures| 100 * u64::from(failures));
        assert!(!s.lease_active(5) && s.in_backoff(104) && !s.in_backoff(105));
        assert_eq!(s.fetch_due(6, || Ok("r")), Due::NotBefore(105));
        assert_eq!(s.fetch_due(6, || Err(50)), Due::NotBefore(50));
        assert_eq!(s.fetch_due(105, || Ok("r")), Due::Now("r"));
        assert_eq!(s.last_error.as_deref(), Some("boom"));
        s.settle_success(200);
        assert_eq!((s.consecutive_failures, s.next_attempt_ms), (0, 0));
        assert_eq!((s.last_success_ms, s.settled_seq), (200, 2));
        assert_eq!(s.last_error, None);
    }
}
