//! One JWKS fetch per Envoy: the per-worker state machine that shares it.
//!
//! Every worker (wasm VM) has one [`JwksCoordinator`] in its root context. The
//! workers never talk to each other directly; they coordinate through three
//! shared-data records (see [`super::record`]): a lease taken by CAS decides who
//! fetches, the key record carries the result, and a tiny generation key lets
//! every request notice a new key set cheaply.
//!
//! ```text
//! per request:  keys() ── sync_local_copy ── fresh local keys ──────────────► Ready
//!                                  └─ none/too stale ── classify_without_keys ─► Pending | Unavailable
//!               request_refresh_for_unknown_kid() ── granted (sets refresh_requested) ─► true
//!                                                  └─ rate-limited / backing off ──────► false
//!
//! root tick:    on_tick ── sync_local_copy ── abandon_expired_fetch ── fetch_due?
//!                 ├─ Busy (a lease is active) / NotBefore(t) ──────────► wait (next_tick_ms)
//!                 └─ Now ── create_state (first ever) ─► retry next tick
//!                        └─ acquire_lease (CAS) ── lost ─► retry next tick
//!                                └─ won ── dispatch(discovery | keys)
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

use super::keyset::KeySet;
use super::parse::{parse_discovery, parse_jwks, JwksError, ParsedJwks};
use super::record::{
    decode_generation, encode_generation, KeysRecord, RecordError, RecordNames, StateRecord,
};
use super::settings::JwksSettings;
use crate::host::{
    CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, SharedWriteError, UnixMillis,
};

/// Tick period while something is about to change (another worker's fetch in
/// flight, a lost CAS race): short, so waiting requests resume promptly.
pub const FAST_TICK_MS: u64 = 20;
/// Tick period when nothing is pending.
pub const SLOW_TICK_MS: u64 = 1_000;
/// Added to the callout timeout to form the lease: Envoy answers a timed-out
/// callout itself, so a lease still held this long after dispatch belongs to a
/// worker that will never answer (reloaded VM, cancelled callout).
pub const LEASE_MARGIN_MS: u64 = 2_000;
/// Attempts of one read-modify-write on shared data before giving up for now.
const CAS_ATTEMPTS: usize = 4;

/// What a request can use right now.
///
/// Exact rule: `Ready` if this worker's copy of the shared key set was fetched
/// at most `max_stale_ms` ago. Otherwise `Unavailable` if the last attempt
/// failed and its backoff has not elapsed (the request gets a 503 at once
/// rather than waiting for a retry that is not due); else `Pending` (a fetch is
/// in flight, or will be started by the next tick of some worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAvailability {
    Ready(Rc<KeySet>),
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

/// Result of one [`JwksCoordinator::on_tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickOutcome {
    /// This worker's key set moved to a newer shared generation.
    pub keys_changed: bool,
    /// Waiting requests should call `keys()` again (new keys, or a fetch somewhere
    /// in this Envoy settled, possibly with a failure that makes them 503).
    pub recheck_waiters: bool,
    /// This worker took the lease and dispatched a callout on this tick.
    pub started_fetch: bool,
    /// The fetch started on this tick failed at once (dispatch refused). Count it.
    pub failure: Option<FetchError>,
    /// Suggested delay until the next tick.
    pub next_tick_ms: u64,
}

/// Result of one [`JwksCoordinator::on_callout_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Not a callout this coordinator is waiting for (stale, or another instance's).
    Ignored,
    /// Discovery answered; the keys callout is now in flight.
    Continuing,
    /// A new key set is stored and in use. Count a successful fetch.
    Updated {
        generation: u64,
        keys: usize,
        skipped: usize,
    },
    /// The fetch failed; the previous keys (if any) stay. Count a failed fetch.
    Failed { error: FetchError, retry_in_ms: u64 },
    /// Our lease expired and another worker took over: nothing was written; the
    /// new holder's result counts. `error` is set if our fetch had failed anyway.
    Discarded { error: Option<FetchError> },
}

impl FetchOutcome {
    /// The fetch ended and its result was recorded (new keys, or a failure that
    /// may make requests 503): waiting requests should call `keys()` again now.
    pub fn settled(&self) -> bool {
        matches!(
            self,
            FetchOutcome::Updated { .. } | FetchOutcome::Failed { .. }
        )
    }

    /// For the fetch counters: `Some(true)` a fetch succeeded, `Some(false)` one
    /// failed, `None` nothing to count (ignored, or still continuing).
    pub fn fetch_succeeded(&self) -> Option<bool> {
        match self {
            FetchOutcome::Updated { .. } => Some(true),
            FetchOutcome::Failed { .. } | FetchOutcome::Discarded { error: Some(_) } => Some(false),
            FetchOutcome::Ignored
            | FetchOutcome::Continuing
            | FetchOutcome::Discarded { error: None } => None,
        }
    }
}

/// Per-worker counters (cumulative). Fetch counters only move in the worker that
/// fetched, so summing them over workers counts fetches per Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwksStats {
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    /// Unknown-kid refreshes this worker was granted.
    pub forced_refreshes: u64,
    /// Callout responses for tokens this coordinator did not know.
    pub ignored_responses: u64,
    /// Gauge: keys in this worker's current set.
    pub keys_loaded: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Discovery,
    Keys,
}

/// The callout this worker is waiting for.
#[derive(Debug, Clone)]
struct InFlight {
    token: CalloutToken,
    phase: Phase,
    lease_id: String,
    lease_until_ms: UnixMillis,
}

/// This worker's copy of the shared key set.
#[derive(Debug, Clone)]
struct LocalKeys {
    generation: u64,
    fetched_at_ms: UnixMillis,
    keys: Rc<KeySet>,
}

/// The shared state as read, with the CAS to write it back (`None`: key absent).
struct StateSnapshot {
    record: StateRecord,
    cas: Option<u32>,
}

enum Due {
    /// A lease is active: someone is fetching.
    Busy,
    /// Nothing to do before this instant.
    NotBefore(UnixMillis),
    Now(&'static str),
}

enum SettleError {
    LeaseLost,
    StoreFailed,
}

/// The JWKS state machine of one worker. See the module docs for the steps.
#[derive(Debug)]
pub struct JwksCoordinator {
    settings: JwksSettings,
    worker_id: u32,
    names: RecordNames,
    local: Option<LocalKeys>,
    /// Highest shared generation looked at (even if its record was unreadable,
    /// so a broken record is not re-read on every request).
    seen_generation: u64,
    seen_settled_seq: u64,
    in_flight: Option<InFlight>,
    lease_seq: u64,
    stats: JwksStats,
}

impl JwksCoordinator {
    pub fn new(settings: JwksSettings, worker_id: u32) -> JwksCoordinator {
        JwksCoordinator {
            names: RecordNames::for_settings(&settings),
            settings,
            worker_id,
            local: None,
            seen_generation: 0,
            seen_settled_seq: 0,
            in_flight: None,
            lease_seq: 0,
            stats: JwksStats::default(),
        }
    }

    pub fn names(&self) -> &RecordNames {
        &self.names
    }

    pub fn stats(&self) -> JwksStats {
        self.stats
    }

    /// Gauge: number of keys in this worker's current set.
    pub fn keys_loaded(&self) -> usize {
        self.stats.keys_loaded
    }

    /// Generation of this worker's key set, if it has one.
    pub fn local_generation(&self) -> Option<u64> {
        self.local.as_ref().map(|l| l.generation)
    }

    /// Whether this worker is waiting for one of its own callouts.
    pub fn fetch_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    // ----- per request -------------------------------------------------------

    /// Keys for one request. Costs one read of the tiny generation key while the
    /// local copy is current; see [`KeyAvailability`] for the exact rule.
    pub fn keys(&mut self, host: &dyn Host) -> KeyAvailability {
        let now = host.now_ms();
        self.sync_local_copy(host);
        if let Some(keys) = self.fresh_keys(now) {
            return KeyAvailability::Ready(keys);
        }
        Self::classify_without_keys(&self.load_state(host), now)
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
        for _ in 0..CAS_ATTEMPTS {
            let snap = self.load_state(host);
            let Some(cas) = snap.cas else {
                return true; // nothing fetched yet: the first fetch is about to start
            };
            let state = snap.record;
            if state.lease_active(now) || state.refresh_requested {
                return true; // a fetch is in flight or already requested: share it
            }
            if state.in_backoff(now) {
                return false;
            }
            let min_interval = self.settings.unknown_kid_refresh_min_interval_ms;
            if let Some(last) = state.last_forced_refresh_ms {
                if now.saturating_sub(last) < min_interval {
                    return false;
                }
            }
            let mut next = state;
            next.refresh_requested = true;
            next.last_forced_refresh_ms = Some(now);
            match self.write_state(host, &next, Some(cas)) {
                Ok(()) => {
                    self.stats.forced_refreshes += 1;
                    host.log(LogLevel::Info, "jwks: unknown kid, refresh requested");
                    return true;
                }
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => return false,
            }
        }
        false
    }

    // ----- root context: tick ------------------------------------------------

    /// Background work: pick up new keys, start a fetch when due and the lease
    /// can be taken. Call from the root context's `on_tick` (and once at start),
    /// then set the tick period to `next_tick_ms`.
    pub fn on_tick(&mut self, host: &mut dyn Host) -> TickOutcome {
        let now = host.now_ms();
        let keys_changed = self.sync_local_copy(&*host);
        self.abandon_expired_fetch(&*host, now);
        let snap = self.load_state(&*host);
        let settled = snap.record.settled_seq != self.seen_settled_seq;
        self.seen_settled_seq = snap.record.settled_seq;
        let mut out = TickOutcome {
            keys_changed,
            recheck_waiters: keys_changed || settled,
            started_fetch: false,
            failure: None,
            next_tick_ms: SLOW_TICK_MS,
        };
        if let Some(flight) = &self.in_flight {
            out.next_tick_ms = clamp_tick(flight.lease_until_ms.saturating_sub(now));
            return out;
        }
        match self.fetch_due(&snap.record, now) {
            Due::Busy => out.next_tick_ms = FAST_TICK_MS,
            Due::NotBefore(at) => out.next_tick_ms = clamp_tick(at.saturating_sub(now)),
            Due::Now(reason) => self.start_fetch(host, snap, now, reason, &mut out),
        }
        out
    }

    // ----- root context: callout answered ------------------------------------

    /// The answer to a callout. Tokens this coordinator does not know (a callout
    /// from before a VM reload, or abandoned after its lease expired) are ignored.
    pub fn on_callout_response(
        &mut self,
        host: &mut dyn Host,
        token: CalloutToken,
        response: CalloutResponse,
    ) -> FetchOutcome {
        let Some(flight) = self.in_flight.take_if(|f| f.token == token) else {
            self.stats.ignored_responses += 1;
            host.log(
                LogLevel::Debug,
                &format!("jwks: ignoring response to unknown callout {token}"),
            );
            return FetchOutcome::Ignored;
        };
        let now = host.now_ms();
        let body = match response.status {
            Some(200) => Ok(response.body.as_slice()),
            Some(status) => Err(FetchError::HttpStatus(status)),
            None => Err(FetchError::NoResponse),
        };
        match flight.phase {
            Phase::Discovery => {
                let authority = self.settings.authority.as_str();
                match body
                    .and_then(|b| parse_discovery(b, authority).map_err(FetchError::Discovery))
                {
                    Ok(path) => self.continue_with_keys(host, &flight.lease_id, path, now),
                    Err(error) => self.on_jwks_error(&*host, &flight.lease_id, error, now),
                }
            }
            Phase::Keys => match body.and_then(|b| parse_jwks(b).map_err(FetchError::Jwks)) {
                Ok(parsed) => self.on_jwks_success(&*host, &flight.lease_id, parsed, now),
                Err(error) => self.on_jwks_error(&*host, &flight.lease_id, error, now),
            },
        }
    }

    // ----- steps --------------------------------------------------------------

    /// Adopt the shared key set if its generation moved. Returns true if the
    /// local set changed.
    fn sync_local_copy(&mut self, host: &dyn Host) -> bool {
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
                if self
                    .local
                    .as_ref()
                    .is_some_and(|l| l.generation >= record.generation)
                {
                    return false;
                }
                self.seen_generation = self.seen_generation.max(record.generation);
                self.stats.keys_loaded = set.len();
                self.local = Some(LocalKeys {
                    generation: record.generation,
                    fetched_at_ms: record.fetched_at_ms,
                    keys: Rc::new(set),
                });
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

    fn fresh_keys(&self, now: UnixMillis) -> Option<Rc<KeySet>> {
        let local = self.local.as_ref()?;
        let age = now.saturating_sub(local.fetched_at_ms);
        (age <= self.settings.max_stale_ms).then(|| Rc::clone(&local.keys))
    }

    fn classify_without_keys(snap: &StateSnapshot, now: UnixMillis) -> KeyAvailability {
        let state = &snap.record;
        if snap.cas.is_none() || state.lease_active(now) || !state.in_backoff(now) {
            KeyAvailability::Pending
        } else {
            KeyAvailability::Unavailable
        }
    }

    /// Forget our own callout once its lease is over: it was cancelled or will
    /// never be answered, and holding on to it would stop this worker fetching.
    fn abandon_expired_fetch(&mut self, host: &dyn Host, now: UnixMillis) {
        if let Some(flight) = self.in_flight.take_if(|f| now >= f.lease_until_ms) {
            host.log(
                LogLevel::Warn,
                &format!(
                    "jwks: callout {} unanswered past its lease, abandoned",
                    flight.token
                ),
            );
        }
    }

    fn fetch_due(&self, state: &StateRecord, now: UnixMillis) -> Due {
        if state.lease_active(now) {
            return Due::Busy;
        }
        let reason = match &self.local {
            None => "no keys yet",
            Some(l) => {
                let refresh_at = l
                    .fetched_at_ms
                    .saturating_add(self.settings.refresh_interval_ms);
                if now >= refresh_at {
                    "refresh interval elapsed"
                } else if state.refresh_requested {
                    "unknown kid"
                } else {
                    return Due::NotBefore(refresh_at);
                }
            }
        };
        if now < state.next_attempt_ms {
            Due::NotBefore(state.next_attempt_ms)
        } else {
            Due::Now(reason)
        }
    }

    fn start_fetch(
        &mut self,
        host: &mut dyn Host,
        snap: StateSnapshot,
        now: UnixMillis,
        reason: &str,
        out: &mut TickOutcome,
    ) {
        let Some(cas) = snap.cas else {
            self.create_state(&*host);
            out.next_tick_ms = FAST_TICK_MS;
            return;
        };
        let Some((lease_id, lease_until_ms)) = self.acquire_lease(&*host, snap.record, cas, now)
        else {
            out.next_tick_ms = FAST_TICK_MS; // another worker moved first: look again soon
            return;
        };
        host.log(
            LogLevel::Debug,
            &format!("jwks: worker {} fetching keys ({reason})", self.worker_id),
        );
        let (phase, path) = match &self.settings.discovery_path {
            Some(discovery) => (Phase::Discovery, discovery.clone()),
            None => (Phase::Keys, self.settings.keys_path.clone()),
        };
        match self.dispatch(host, phase, path, lease_id.clone(), lease_until_ms) {
            Ok(()) => {
                out.started_fetch = true;
                out.next_tick_ms = clamp_tick(lease_until_ms.saturating_sub(now));
            }
            Err(error) => {
                let outcome = self.on_jwks_error(&*host, &lease_id, error.clone(), now);
                out.failure = Some(error);
                out.recheck_waiters = true;
                out.next_tick_ms = match outcome {
                    FetchOutcome::Failed { retry_in_ms, .. } => clamp_tick(retry_in_ms),
                    _ => FAST_TICK_MS,
                };
            }
        }
    }

    /// First write of the state record. Envoy ignores the CAS when a key does not
    /// exist, so creation cannot be exclusive; it therefore never takes a lease:
    /// two workers creating at once write the same neutral record, and the lease is
    /// taken by CAS on a later tick, when the record exists.
    fn create_state(&self, host: &dyn Host) {
        if let Err(e) = self.write_state(host, &StateRecord::default(), None) {
            host.log(
                LogLevel::Warn,
                &format!("jwks: could not create shared state ({e:?})"),
            );
        }
    }

    fn acquire_lease(
        &mut self,
        host: &dyn Host,
        state: StateRecord,
        cas: u32,
        now: UnixMillis,
    ) -> Option<(String, UnixMillis)> {
        // Unique per fetch, not per worker: a reloaded VM with the same worker id
        // must not mistake its predecessor's lease for its own.
        let lease_id = format!("w{}-{}-{}", self.worker_id, now, self.lease_seq);
        self.lease_seq += 1;
        let lease_until_ms = now.saturating_add(self.lease_ms());
        let mut next = state;
        next.lease_owner = Some(lease_id.clone());
        next.lease_until_ms = lease_until_ms;
        next.last_attempt_ms = now;
        next.refresh_requested = false;
        match self.write_state(host, &next, Some(cas)) {
            Ok(()) => Some((lease_id, lease_until_ms)),
            Err(SharedWriteError::CasMismatch) => None,
            Err(SharedWriteError::Failed) => {
                host.log(LogLevel::Warn, "jwks: could not write the fetch lease");
                None
            }
        }
    }

    fn dispatch(
        &mut self,
        host: &mut dyn Host,
        phase: Phase,
        path: String,
        lease_id: String,
        lease_until_ms: UnixMillis,
    ) -> Result<(), FetchError> {
        let request = CalloutRequest {
            cluster: self.settings.cluster.clone(),
            authority: self.settings.authority.clone(),
            path,
            timeout_ms: self.settings.fetch_timeout_ms,
            headers: Vec::new(),
        };
        let token = host
            .dispatch(&request)
            .map_err(FetchError::DispatchFailed)?;
        self.in_flight = Some(InFlight {
            token,
            phase,
            lease_id,
            lease_until_ms,
        });
        Ok(())
    }

    /// Discovery answered: extend the lease for the second callout and send it.
    fn continue_with_keys(
        &mut self,
        host: &mut dyn Host,
        lease_id: &str,
        path: String,
        now: UnixMillis,
    ) -> FetchOutcome {
        let lease_until_ms = now.saturating_add(self.lease_ms());
        match self.update_owned_state(&*host, lease_id, |s| s.lease_until_ms = lease_until_ms) {
            Ok(_) => {}
            Err(SettleError::LeaseLost) => return FetchOutcome::Discarded { error: None },
            Err(SettleError::StoreFailed) => {
                return self.on_jwks_error(&*host, lease_id, FetchError::StoreFailed, now)
            }
        }
        match self.dispatch(
            host,
            Phase::Keys,
            path,
            lease_id.to_string(),
            lease_until_ms,
        ) {
            Ok(()) => FetchOutcome::Continuing,
            Err(error) => self.on_jwks_error(&*host, lease_id, error, now),
        }
    }

    fn on_jwks_success(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        parsed: ParsedJwks,
        now: UnixMillis,
    ) -> FetchOutcome {
        // A fetch that outlived its lease is dropped: the worker that took over
        // fetches too, and two writers could otherwise put older keys over newer.
        if !self.load_state(host).record.owned_by(lease_id) {
            host.log(
                LogLevel::Info,
                "jwks: fetch finished after its lease was taken over; result dropped",
            );
            return FetchOutcome::Discarded { error: None };
        }
        let generation = match self.store_keys(host, &parsed.key_set, now) {
            Ok(generation) => generation,
            Err(error) => return self.on_jwks_error(host, lease_id, error, now),
        };
        self.publish_generation(host, generation);
        let settled = self.update_owned_state(host, lease_id, |s| {
            s.lease_owner = None;
            s.lease_until_ms = 0;
            s.consecutive_failures = 0;
            s.next_attempt_ms = 0;
            s.last_success_ms = now;
            s.last_error = None;
            s.settled_seq = s.settled_seq.wrapping_add(1);
        });
        match settled {
            Ok(state) => self.seen_settled_seq = state.settled_seq,
            Err(_) => host.log(
                LogLevel::Warn,
                "jwks: could not release the fetch lease; it will expire",
            ),
        }
        let summary = parsed.summary();
        let (keys, skipped) = (parsed.key_set.len(), parsed.skipped.len());
        self.local = Some(LocalKeys {
            generation,
            fetched_at_ms: now,
            keys: Rc::new(parsed.key_set),
        });
        self.seen_generation = self.seen_generation.max(generation);
        self.stats.fetch_ok += 1;
        self.stats.keys_loaded = keys;
        host.log(
            LogLevel::Info,
            &format!("jwks: fetched {summary} (generation {generation})"),
        );
        FetchOutcome::Updated {
            generation,
            keys,
            skipped,
        }
    }

    fn on_jwks_error(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        error: FetchError,
        now: UnixMillis,
    ) -> FetchOutcome {
        self.stats.fetch_failed += 1;
        let message = error.to_string();
        let (settings, worker_id) = (&self.settings, self.worker_id);
        let settled = self.update_owned_state(host, lease_id, |s| {
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            let delay = backoff_ms(settings, worker_id, s.consecutive_failures, now);
            s.next_attempt_ms = now.saturating_add(delay);
            s.lease_owner = None;
            s.lease_until_ms = 0;
            s.last_error = Some(message.clone());
            s.settled_seq = s.settled_seq.wrapping_add(1);
        });
        match settled {
            Ok(state) => {
                self.seen_settled_seq = state.settled_seq;
                let retry_in_ms = state.next_attempt_ms.saturating_sub(now);
                let kept = match &self.local {
                    Some(l) => format!(
                        "keeping {} keys fetched {} s ago",
                        l.keys.len(),
                        now.saturating_sub(l.fetched_at_ms) / 1000
                    ),
                    None => "no keys yet".to_string(),
                };
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "jwks: fetch failed ({message}); {kept}; retry in {retry_in_ms} ms (failure {})",
                        state.consecutive_failures
                    ),
                );
                FetchOutcome::Failed { error, retry_in_ms }
            }
            Err(SettleError::LeaseLost) => {
                host.log(
                    LogLevel::Warn,
                    &format!("jwks: fetch failed ({message}) after its lease was taken over"),
                );
                FetchOutcome::Discarded { error: Some(error) }
            }
            Err(SettleError::StoreFailed) => {
                host.log(
                    LogLevel::Error,
                    &format!(
                        "jwks: fetch failed ({message}) and the failure could not be recorded"
                    ),
                );
                FetchOutcome::Failed {
                    error,
                    retry_in_ms: 0,
                }
            }
        }
    }

    /// Write the new key set with a generation above every one seen.
    fn store_keys(
        &self,
        host: &dyn Host,
        set: &KeySet,
        now: UnixMillis,
    ) -> Result<u64, FetchError> {
        for _ in 0..CAS_ATTEMPTS {
            let current = host.shared_get(&self.names.keys);
            let stored = current
                .data
                .as_deref()
                .and_then(|d| KeysRecord::decode(d).ok())
                .map_or(0, |r| r.generation);
            let published = self.read_generation(host).unwrap_or(0);
            let generation = stored
                .max(published)
                .max(self.seen_generation)
                .saturating_add(1);
            let bytes = KeysRecord::new(generation, now, set)
                .encode()
                .map_err(|_| FetchError::StoreFailed)?;
            match host.shared_set(&self.names.keys, &bytes, current.cas) {
                Ok(()) => return Ok(generation),
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => return Err(FetchError::StoreFailed),
            }
        }
        Err(FetchError::StoreFailed)
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

    /// Read-modify-write of the state record, only while `lease_id` owns the lease.
    fn update_owned_state(
        &self,
        host: &dyn Host,
        lease_id: &str,
        change: impl Fn(&mut StateRecord),
    ) -> Result<StateRecord, SettleError> {
        for _ in 0..CAS_ATTEMPTS {
            let snap = self.load_state(host);
            if !snap.record.owned_by(lease_id) {
                return Err(SettleError::LeaseLost);
            }
            let mut next = snap.record;
            change(&mut next);
            match self.write_state(host, &next, snap.cas) {
                Ok(()) => return Ok(next),
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => return Err(SettleError::StoreFailed),
            }
        }
        Err(SettleError::StoreFailed)
    }

    // ----- shared-data helpers -------------------------------------------------

    /// An unreadable state record reads as the default state but keeps its CAS,
    /// so the next lease overwrites it instead of wedging every worker.
    fn load_state(&self, host: &dyn Host) -> StateSnapshot {
        let value = host.shared_get(&self.names.state);
        let record = value
            .data
            .as_deref()
            .and_then(|d| StateRecord::decode(d).ok())
            .unwrap_or_default();
        StateSnapshot {
            record,
            cas: value.cas,
        }
    }

    fn write_state(
        &self,
        host: &dyn Host,
        state: &StateRecord,
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        let bytes = state.encode().map_err(|_| SharedWriteError::Failed)?;
        host.shared_set(&self.names.state, &bytes, cas)
    }

    fn read_generation(&self, host: &dyn Host) -> Option<u64> {
        host.shared_get(&self.names.generation)
            .data
            .and_then(|d| decode_generation(&d))
    }

    fn lease_ms(&self) -> u64 {
        self.settings
            .fetch_timeout_ms
            .saturating_add(LEASE_MARGIN_MS)
    }
}

fn clamp_tick(ms: u64) -> u64 {
    ms.clamp(FAST_TICK_MS, SLOW_TICK_MS)
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
