//! One JWKS fetch per Envoy: the per-worker state machine that shares it.
//!
//! Every worker (wasm VM) has one [`JwksCoordinator`] in its root context. The
//! workers never talk to each other directly; they coordinate through three
//! shared-data records (see [`super::record`]): a lease taken by CAS decides who
//! fetches, the key record carries the result, and a tiny generation key lets
//! every request notice a new key set cheaply.
//! The fetch itself (tick, lease, callout answers, settling, backoff) is the
//! generic [`crate::fetcher::single_flight::Fetcher`]; this module adds only
//! the JWKS hooks ([`JwksDocument`]) and the per-request checks.
//!
//! ```text
//! per request:  keys() ── sync_local_copy ── fresh local keys ──────────────► Ready
//!                                  └─ none/too stale ── availability_without_keys:
//!                                       fetch in flight / due ─────────────────► Pending
//!                                       backing off, last attempt ≥ 1 s ago ──
//!                                         pull the retry forward (CAS) ────────► Pending
//!                                       backing off, last attempt < 1 s ago ───► Unavailable
//!               request_refresh_for_unknown_kid() ── granted (sets refresh_requested) ─► true
//!                                                  └─ rate-limited / backing off ──────► false
//!
//! root tick:    on_tick ── sync_local_copy ── abandon_expired ── fetch_due?
//!                 ├─ Busy (a lease is active) / NotBefore(t) ──────────► wait (next_tick_ms)
//!                 └─ Now ── take_lease: create the record (first ever) ─► retry next tick
//!                                   └─ acquire (CAS) ── lost ─► retry next tick
//!                                          └─ won ── dispatch(discovery | keys)
//!
//! callout:      on_callout_response ── not our token ─────────────────────► Ignored
//!                 ├─ discovery ok ── renew lease, dispatch(keys) ─────────► Continuing
//!                 ├─ keys ok ── on_jwks_success: store_keys, publish_generation,
//!                 │                              settle (release lease, reset backoff) ─► Updated
//!                 └─ any failure ── on_jwks_error: settle (release lease, backoff) ──► Failed
//!               (a fetch whose lease was taken over meanwhile changes nothing ─► Discarded)
//! ```
//!
//! Only `host.now_ms()` is used as a clock, so the whole machine can be driven by
//! the fake host in any order.

use std::rc::Rc;
use std::sync::Arc;

use super::parse::{parse_discovery, parse_jwks, JwksError, ParsedJwks};
use super::record::{
    decode_generation, encode_generation, ForcedRefresh, KeysRecord, RecordError, RecordNames,
};
use super::settings::JwksSettings;
use crate::fetcher::leased_state::{store_next_generation, LeasedState, CAS_ATTEMPTS};
use crate::keys::KeySet;
// Re-exported: the tick periods and lease margin are common to both roles
// but have always been reached through this module.
pub use crate::fetcher::leased_state::{FAST_TICK_MS, LEASE_MARGIN_MS, SLOW_TICK_MS};
use crate::fetcher::single_flight::{self, Answer, Document, Fetcher, HostFailure};
use crate::host::{
    CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, SharedWriteError, UnixMillis,
};

/// A request that finds no usable keys while a failed fetch backs off may pull
/// the retry forward, but only if the last attempt in this Envoy started at
/// least this long ago. Without it, requests kept getting 503 for up to
/// `retry_max_ms` (60 s) after the key endpoint healed; with it they recover
/// within about a second, while a broken endpoint still sees at most one fetch
/// per second per Envoy however many workers and requests there are (the
/// timestamp is the shared `last_attempt_ms`, so no record field was added).
pub const EARLY_RETRY_INTERVAL_MS: u64 = 1_000;

/// What a request can use right now.
///
/// Exact rule: `Ready` if this worker's copy of the shared key set was fetched
/// at most `max_stale_ms` ago. Otherwise `Unavailable` if the last attempt
/// failed, its backoff has not elapsed and it started less than
/// [`EARLY_RETRY_INTERVAL_MS`] ago (the request gets a 503 at once rather than
/// waiting for a retry that is not due); else `Pending` (a fetch is in flight,
/// or will be started by the next tick of some worker, possibly because this
/// request pulled the retry forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAvailability {
    Ready(KeysRef),
    /// Park the request (bounded by `request_wait_ms`) and switch the root tick
    /// to [`FAST_TICK_MS`]; resume when a tick or callout says waiters should re-check.
    Pending,
    Unavailable,
}

/// Why a fetch failed. Its text goes to logs and the shared state; it never
/// contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The host refused the callout (unknown cluster, ...).
    DispatchFailed(String),
    /// No HTTP response: connection failure, reset or timeout.
    NoResponse,
    HttpStatus(u16),
    Discovery(JwksError),
    Jwks(JwksError),
    /// Shared data could not be written.
    StoreFailed,
}

impl core::fmt::Display for FetchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FetchError::DispatchFailed(reason) => write!(f, "dispatch failed: {reason}"),
            FetchError::NoResponse => f.write_str("no response"),
            FetchError::HttpStatus(status) => write!(f, "HTTP {status}"),
            FetchError::Discovery(e) => write!(f, "discovery: {e}"),
            FetchError::Jwks(e) => write!(f, "jwks: {e}"),
            FetchError::StoreFailed => f.write_str("shared data write failed"),
        }
    }
}

impl From<HostFailure> for FetchError {
    fn from(failure: HostFailure) -> FetchError {
        match failure {
            HostFailure::DispatchRefused(reason) => FetchError::DispatchFailed(reason),
            HostFailure::StoreFailed => FetchError::StoreFailed,
        }
    }
}

/// A new key set stored and in use ([`FetchOutcome::Updated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysUpdate {
    pub generation: u64,
    pub keys: usize,
    pub skipped: usize,
}

/// Result of one [`JwksCoordinator::on_tick`].
pub type TickOutcome = single_flight::TickOutcome<FetchError>;
/// Result of one [`JwksCoordinator::on_callout_response`].
pub type FetchOutcome = single_flight::FetchOutcome<KeysUpdate, FetchError>;

/// Per-worker counters (cumulative). Fetch counters only move in the worker that
/// fetched, so summing them over workers counts fetches per Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwksStats {
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    /// Unknown-kid refreshes this worker was granted.
    pub forced_refreshes: u64,
    /// Backed-off retries this worker's requests pulled forward (no keys).
    pub early_retries: u64,
    /// Callout responses for tokens this coordinator did not know.
    pub ignored_responses: u64,
    /// Gauge: keys in this worker's current set.
    pub keys_loaded: usize,
}

/// Which callout of a JWKS fetch is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Discovery,
    Keys,
}

/// A worker's handle on a key set: counted without atomics on every request
/// (`Rc`), on a set other threads of the process may share (`Arc`, see
/// [`SharedKeys`]).
pub type KeysRef = Rc<Arc<KeySet>>;

/// This worker's copy of the shared key set.
#[derive(Debug, Clone)]
struct LocalKeys {
    generation: u64,
    fetched_at_ms: UnixMillis,
    keys: KeysRef,
}

/// A coordinator's key set, handed to other threads of the same process
/// (the native host: one parsed key set per Envoy, not one per worker).
#[derive(Debug, Clone)]
pub struct SharedKeys {
    pub generation: u64,
    pub fetched_at_ms: UnixMillis,
    pub keys: Arc<KeySet>,
}

/// The JWKS hooks of the generic fetcher, and this worker's copy of the keys.
#[derive(Debug)]
pub struct JwksDocument {
    settings: JwksSettings,
    names: RecordNames,
    local: Option<LocalKeys>,
    /// Highest shared generation looked at (even if its record was unreadable,
    /// so a broken record is not re-read on every request).
    seen_generation: u64,
    forced_refreshes: u64,
    early_retries: u64,
    keys_loaded: usize,
    /// Set by [`JwksCoordinator::adopting`]: keys arrive by
    /// [`JwksCoordinator::adopt`], never from the shared record.
    adopts: bool,
}

/// The JWKS state machine of one worker. See the module docs for the steps.
#[derive(Debug)]
pub struct JwksCoordinator {
    fetcher: Fetcher<JwksDocument>,
}

impl JwksCoordinator {
    pub fn new(settings: JwksSettings, worker_id: u32) -> JwksCoordinator {
        let names = RecordNames::for_settings(&settings);
        let lease_ms = settings.fetch_timeout_ms.saturating_add(LEASE_MARGIN_MS);
        let state = LeasedState::new(names.state.clone(), "jwks".into(), worker_id, lease_ms);
        let document = JwksDocument {
            settings,
            names,
            local: None,
            seen_generation: 0,
            forced_refreshes: 0,
            early_retries: 0,
            keys_loaded: 0,
            adopts: false,
        };
        JwksCoordinator {
            fetcher: Fetcher::new(document, state),
        }
    }

    /// A coordinator whose keys come from another thread's
    /// ([`JwksCoordinator::shared_keys`] given to [`JwksCoordinator::adopt`])
    /// instead of being decoded from the shared record: a host whose threads
    /// share memory keeps one key set, and a request no longer reads the
    /// record's generation. Everything else (waiting, early retries, forced
    /// refreshes through the shared state) is unchanged.
    pub fn adopting(settings: JwksSettings, worker_id: u32) -> JwksCoordinator {
        let mut coordinator = JwksCoordinator::new(settings, worker_id);
        coordinator.fetcher.parts_mut().0.adopts = true;
        coordinator
    }

    /// This coordinator's key set, for other threads to [`adopt`](Self::adopt).
    pub fn shared_keys(&self) -> Option<SharedKeys> {
        self.fetcher.document().local.as_ref().map(|l| SharedKeys {
            generation: l.generation,
            fetched_at_ms: l.fetched_at_ms,
            keys: Arc::clone(&l.keys),
        })
    }

    /// Takes another thread's key set if it is newer than this one's.
    pub fn adopt(&mut self, shared: &SharedKeys) {
        let (document, _) = self.fetcher.parts_mut();
        if !document.holds_as_new(shared.generation) {
            document.hold(
                shared.generation,
                shared.fetched_at_ms,
                Arc::clone(&shared.keys),
            );
        }
    }

    pub fn names(&self) -> &RecordNames {
        &self.fetcher.document().names
    }

    pub fn stats(&self) -> JwksStats {
        let fetch = self.fetcher.stats();
        let document = self.fetcher.document();
        JwksStats {
            fetch_ok: fetch.fetch_ok,
            fetch_failed: fetch.fetch_failed,
            forced_refreshes: document.forced_refreshes,
            early_retries: document.early_retries,
            ignored_responses: fetch.ignored_responses,
            keys_loaded: document.keys_loaded,
        }
    }

    /// Gauge: number of keys in this worker's current set.
    pub fn keys_loaded(&self) -> usize {
        self.fetcher.document().keys_loaded
    }

    /// Generation of this worker's key set, if it has one.
    pub fn local_generation(&self) -> Option<u64> {
        self.fetcher.document().local.as_ref().map(|l| l.generation)
    }

    // ----- per request -------------------------------------------------------

    /// Keys for one request. Costs one read of the tiny generation key while the
    /// local copy is current; see [`KeyAvailability`] for the exact rule.
    pub fn keys(&mut self, host: &dyn Host) -> KeyAvailability {
        let now = host.now_ms();
        let (document, state) = self.fetcher.parts_mut();
        document.sync_local_copy(host);
        if let Some(keys) = document.fresh_keys(now) {
            return KeyAvailability::Ready(keys);
        }
        document.availability_without_keys(host, state, now)
    }

    /// A token named a key we do not have. Returns true if a refresh will happen
    /// (or is already in flight), so the request should wait and look again;
    /// false if refused, so the request fails with `SigningKeyUnknown`.
    ///
    /// Granted at most once per `unknown_kid_refresh_min_interval_ms` per Envoy
    /// (the timestamp lives in shared data), never while a failed fetch is
    /// backing off. The engine calls this at most once per request.
    pub fn request_refresh_for_unknown_kid(&mut self, host: &dyn Host) -> bool {
        let now = host.now_ms();
        let (document, state) = self.fetcher.parts_mut();
        for _ in 0..CAS_ATTEMPTS {
            let snap = state.load(host);
            let Some(cas) = snap.cas else {
                return true; // nothing fetched yet: the first fetch is about to start
            };
            let record = snap.record;
            if record.lease_active(now) || record.role.refresh_requested {
                return true; // a fetch is in flight or already requested: share it
            }
            if record.in_backoff(now) {
                return false;
            }
            let min_interval = document.settings.unknown_kid_refresh_min_interval_ms;
            if let Some(last) = record.role.last_forced_refresh_ms {
                if now.saturating_sub(last) < min_interval {
                    return false;
                }
            }
            let mut next = record;
            next.role.refresh_requested = true;
            next.role.last_forced_refresh_ms = Some(now);
            match state.write(host, &next, Some(cas)) {
                Ok(()) => {
                    document.forced_refreshes += 1;
                    host.log(LogLevel::Info, "jwks: unknown kid, refresh requested");
                    return true;
                }
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => return false,
            }
        }
        false
    }

    single_flight::drive_fetch!();

    /// Whether `token` is the callout this worker waits for.
    pub fn awaits(&self, token: CalloutToken) -> bool {
        self.fetcher.awaits(token)
    }

    /// Whether this worker is waiting for one of its own callouts.
    pub fn fetch_in_flight(&self) -> bool {
        self.fetcher.fetch_in_flight()
    }
}

impl JwksDocument {
    /// Whether the key set held is already of `generation` or newer.
    fn holds_as_new(&self, generation: u64) -> bool {
        self.local
            .as_ref()
            .is_some_and(|l| l.generation >= generation)
    }

    /// Holds `keys` (of `generation`, fetched at `fetched_at_ms`) as this
    /// worker's set: whether fetched here, decoded from the shared record,
    /// or adopted from another thread.
    fn hold(&mut self, generation: u64, fetched_at_ms: UnixMillis, keys: Arc<KeySet>) {
        self.seen_generation = self.seen_generation.max(generation);
        self.keys_loaded = keys.len();
        self.local = Some(LocalKeys {
            generation,
            fetched_at_ms,
            keys: Rc::new(keys),
        });
    }

    /// Adopt the shared key set if its generation moved. Returns true if the
    /// local set changed.
    fn sync_local_copy(&mut self, host: &dyn Host) -> bool {
        if self.adopts {
            return false;
        }
        let Some(shared) = host
            .shared_get(&self.names.generation)
            .data
            .and_then(|d| decode_generation(&d))
        else {
            return false;
        };
        if shared <= self.seen_generation {
            return false;
        }
        self.seen_generation = shared;
        let loaded = host
            .shared_get(&self.names.keys)
            .data
            .ok_or(RecordError::Malformed)
            .and_then(|d| KeysRecord::decode(&d))
            .and_then(|r| r.to_key_set().map(|set| (r, set)));
        match loaded {
            Ok((record, set)) => {
                if self.holds_as_new(record.generation) {
                    return false;
                }
                self.hold(record.generation, record.fetched_at_ms, Arc::new(set));
                true
            }
            Err(e) => {
                host.log(
                    LogLevel::Warn,
                    &format!("jwks: shared key record unreadable ({e})"),
                );
                false
            }
        }
    }

    fn fresh_keys(&self, now: UnixMillis) -> Option<KeysRef> {
        let local = self.local.as_ref()?;
        let age = now.saturating_sub(local.fetched_at_ms);
        (age <= self.settings.max_stale_ms).then(|| Rc::clone(&local.keys))
    }

    /// No usable local keys: wait for a fetch that is in flight or due, or pull
    /// a backed-off retry forward (see [`EARLY_RETRY_INTERVAL_MS`]). Pulling
    /// forward only moves `next_attempt_ms` to now, by CAS: the next tick of
    /// any worker then takes the lease as for any due retry, and
    /// `consecutive_failures` stays, so a retry that fails again backs off
    /// further for the Envoy's requests-free periods.
    fn availability_without_keys(
        &mut self,
        host: &dyn Host,
        state: &LeasedState<ForcedRefresh>,
        now: UnixMillis,
    ) -> KeyAvailability {
        for _ in 0..CAS_ATTEMPTS {
            let snap = state.load(host);
            let Some(cas) = snap.cas else {
                return KeyAvailability::Pending; // nothing fetched yet: the first fetch is due
            };
            let record = snap.record;
            if record.lease_active(now) || !record.in_backoff(now) {
                return KeyAvailability::Pending;
            }
            if now
                < record
                    .last_attempt_ms
                    .saturating_add(EARLY_RETRY_INTERVAL_MS)
            {
                return KeyAvailability::Unavailable;
            }
            let backoff_left_ms = record.next_attempt_ms.saturating_sub(now);
            let mut next = record;
            next.next_attempt_ms = now;
            match state.write(host, &next, Some(cas)) {
                Ok(()) => {
                    self.early_retries += 1;
                    host.log(
                        LogLevel::Info,
                        &format!(
                            "jwks: a request found no keys; retry pulled forward by {backoff_left_ms} ms"
                        ),
                    );
                    return KeyAvailability::Pending;
                }
                // Another worker moved first (perhaps pulling the same retry): look again.
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => return KeyAvailability::Unavailable,
            }
        }
        KeyAvailability::Unavailable
    }

    fn request(&self, path: String) -> CalloutRequest {
        CalloutRequest {
            cluster: self.settings.cluster.clone(),
            authority: self.settings.authority.clone(),
            path,
            timeout_ms: self.settings.fetch_timeout_ms,
            headers: Vec::new(),
        }
    }

    /// Raise `.gen` to `generation` (never lower it: readers only move forward).
    fn publish_generation(&self, host: &dyn Host, generation: u64) {
        for _ in 0..CAS_ATTEMPTS {
            let current = host.shared_get(&self.names.generation);
            if current.data.as_deref().and_then(decode_generation) >= Some(generation) {
                return;
            }
            match host.shared_set(
                &self.names.generation,
                &encode_generation(generation),
                current.cas,
            ) {
                Ok(()) => return,
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => break,
            }
        }
        host.log(
            LogLevel::Warn,
            "jwks: could not publish the new key generation",
        );
    }

    fn read_generation(&self, host: &dyn Host) -> Option<u64> {
        host.shared_get(&self.names.generation)
            .data
            .and_then(|d| decode_generation(&d))
    }
}

impl Document for JwksDocument {
    type Fields = ForcedRefresh;
    type Phase = Phase;
    type Parsed = ParsedJwks;
    type Stored = (u64, ParsedJwks);
    type Adopted = KeysUpdate;
    type Error = FetchError;

    const WHAT: &'static str = "keys";

    fn first_request(&self) -> (Phase, CalloutRequest) {
        match &self.settings.discovery_path {
            Some(discovery) => (Phase::Discovery, self.request(discovery.clone())),
            None => (Phase::Keys, self.request(self.settings.keys_path.clone())),
        }
    }

    fn parse(
        &self,
        phase: Phase,
        response: CalloutResponse,
    ) -> Result<Answer<Phase, ParsedJwks>, FetchError> {
        let body = match response.status {
            Some(200) => response.body.as_slice(),
            Some(status) => return Err(FetchError::HttpStatus(status)),
            None => return Err(FetchError::NoResponse),
        };
        match phase {
            Phase::Discovery => {
                let path = parse_discovery(body, self.settings.authority.as_str())
                    .map_err(FetchError::Discovery)?;
                Ok(Answer::Next(Phase::Keys, self.request(path)))
            }
            Phase::Keys => parse_jwks(body).map(Answer::Done).map_err(FetchError::Jwks),
        }
    }

    fn sync(&mut self, host: &dyn Host, _settled: bool, _now: UnixMillis) -> bool {
        self.sync_local_copy(host)
    }

    fn wanted(&self, fields: &ForcedRefresh, now: UnixMillis) -> Result<&'static str, UnixMillis> {
        match &self.local {
            None => Ok("no keys yet"),
            Some(l) => {
                let refresh_at = l
                    .fetched_at_ms
                    .saturating_add(self.settings.refresh_interval_ms);
                if now >= refresh_at {
                    Ok("refresh interval elapsed")
                } else if fields.refresh_requested {
                    Ok("unknown kid")
                } else {
                    Err(refresh_at)
                }
            }
        }
    }

    /// Write the new key set with a generation above every one seen, then
    /// publish that generation.
    fn store(
        &mut self,
        host: &dyn Host,
        parsed: ParsedJwks,
        now: UnixMillis,
    ) -> Result<(u64, ParsedJwks), FetchError> {
        let generation = store_next_generation(
            host,
            &self.names.keys,
            |d| KeysRecord::decode(d).ok().map(|r| r.generation),
            || {
                let published = self.read_generation(host).unwrap_or(0);
                published.max(self.seen_generation)
            },
            |generation| {
                KeysRecord::new(generation, now, &parsed.key_set)
                    .encode()
                    .ok()
            },
        )
        .ok_or(FetchError::StoreFailed)?;
        self.publish_generation(host, generation);
        Ok((generation, parsed))
    }

    fn adopt(&mut self, host: &dyn Host, stored: (u64, ParsedJwks), now: UnixMillis) -> KeysUpdate {
        let (generation, parsed) = stored;
        let summary = parsed.summary();
        let (keys, skipped) = (parsed.key_set.len(), parsed.skipped.len());
        self.hold(generation, now, Arc::new(parsed.key_set));
        host.log(
            LogLevel::Info,
            &format!("jwks: fetched {summary} (generation {generation})"),
        );
        KeysUpdate {
            generation,
            keys,
            skipped,
        }
    }

    fn retry_delay_ms(
        &self,
        _error: &FetchError,
        worker_id: u32,
        failures: u32,
        now: UnixMillis,
    ) -> u64 {
        backoff_ms(&self.settings, worker_id, failures, now)
    }

    fn kept(&self, now: UnixMillis) -> String {
        match &self.local {
            Some(l) => format!(
                "keeping {} keys fetched {} s ago",
                l.keys.len(),
                now.saturating_sub(l.fetched_at_ms) / 1000
            ),
            None => "no keys yet".to_string(),
        }
    }
}

/// Delay before attempt `failures + 1`: `retry_initial_ms * 2^(failures-1)`,
/// capped at `retry_max_ms`, minus up to 10% jitter (see
/// [`crate::retry::jittered_backoff_ms`], shared with the outbound role).
pub fn backoff_ms(settings: &JwksSettings, worker_id: u32, failures: u32, now: UnixMillis) -> u64 {
    crate::retry::jittered_backoff_ms(
        settings.retry_initial_ms,
        settings.retry_max_ms,
        worker_id,
        failures,
        now,
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
#[path = "coordinator_tests.rs"]
mod tests;
