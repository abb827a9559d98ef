//! One JWKS fetch per Envoy: the per-worker state machine that shares it.
//!
//! Every worker (wasm VM) has one [`JwksCoordinator`] in its root context. The
//! workers never talk to each other directly; they coordinate through three
//! shared-data records (see [`super::record`]): a lease taken by CAS decides who
//! fetches, the key record carries the result, and a tiny generation key lets
//! every request notice a new key set cheaply.
//! The lease steps themselves (take, settle, back off) are shared with the
//! outbound token coordinator: see [`crate::shared::leased_state`].
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

use super::keyset::KeySet;
use super::parse::{parse_discovery, parse_jwks, JwksError, ParsedJwks};
use super::record::{
    decode_generation, encode_generation, ForcedRefresh, KeysRecord, RecordError, RecordNames,
    StateRecord,
};
use super::settings::JwksSettings;
use crate::host::{
    CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, SharedWriteError, UnixMillis,
};
use crate::shared::leased_state::{
    clamp_tick, store_next_generation, tick_plan, InFlight, LeasedState, SettleError,
    StateSnapshot, TickPlan, CAS_ATTEMPTS,
};
// Re-exported: the tick periods and lease margin are common to both roles
// but have always been reached through this module.
pub use crate::shared::leased_state::{FAST_TICK_MS, LEASE_MARGIN_MS, SLOW_TICK_MS};
use crate::shared::state_record::Due;

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
    /// Backed-off retries this worker's requests pulled forward (no keys).
    pub early_retries: u64,
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

/// This worker's copy of the shared key set.
#[derive(Debug, Clone)]
struct LocalKeys {
    generation: u64,
    fetched_at_ms: UnixMillis,
    keys: Rc<KeySet>,
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
    in_flight: Option<InFlight<Phase>>,
    state: LeasedState<ForcedRefresh>,
    stats: JwksStats,
}

impl JwksCoordinator {
    pub fn new(settings: JwksSettings, worker_id: u32) -> JwksCoordinator {
        let names = RecordNames::for_settings(&settings);
        let lease_ms = settings.fetch_timeout_ms.saturating_add(LEASE_MARGIN_MS);
        JwksCoordinator {
            state: LeasedState::new(names.state.clone(), "jwks".into(), worker_id, lease_ms),
            names,
            settings,
            worker_id,
            local: None,
            seen_generation: 0,
            in_flight: None,
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
        self.availability_without_keys(host, now)
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
            let snap = self.state.load(host);
            let Some(cas) = snap.cas else {
                return true; // nothing fetched yet: the first fetch is about to start
            };
            let state = snap.record;
            if state.lease_active(now) || state.role.refresh_requested {
                return true; // a fetch is in flight or already requested: share it
            }
            if state.in_backoff(now) {
                return false;
            }
            let min_interval = self.settings.unknown_kid_refresh_min_interval_ms;
            if let Some(last) = state.role.last_forced_refresh_ms {
                if now.saturating_sub(last) < min_interval {
                    return false;
                }
            }
            let mut next = state;
            next.role.refresh_requested = true;
            next.role.last_forced_refresh_ms = Some(now);
            match self.state.write(host, &next, Some(cas)) {
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
        self.state.abandon_expired(&*host, &mut self.in_flight, now);
        // State first, keys second (as the outbound coordinator does): a fetching worker
        // publishes its keys before it releases the lease, so a released lease seen here
        // means its keys are visible to the read below. The other order let a worker read
        // "no keys", then find the lease just released, and fetch a second time.
        let (snap, settled) = self.state.load_for_tick(&*host);
        let keys_changed = self.sync_local_copy(&*host);
        let mut out = TickOutcome {
            keys_changed,
            recheck_waiters: keys_changed || settled,
            started_fetch: false,
            failure: None,
            next_tick_ms: SLOW_TICK_MS,
        };
        match tick_plan(self.in_flight.as_ref(), now, || {
            self.fetch_due(&snap.record, now)
        }) {
            TickPlan::Wait(ms) => out.next_tick_ms = ms,
            TickPlan::Fetch(reason) => self.start_fetch(host, snap, now, reason, &mut out),
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

    /// No usable local keys: wait for a fetch that is in flight or due, or pull
    /// a backed-off retry forward (see [`EARLY_RETRY_INTERVAL_MS`]). Pulling
    /// forward only moves `next_attempt_ms` to now, by CAS: the next tick of
    /// any worker then takes the lease as for any due retry, and
    /// `consecutive_failures` stays, so a retry that fails again backs off
    /// further for the Envoy's requests-free periods.
    fn availability_without_keys(&mut self, host: &dyn Host, now: UnixMillis) -> KeyAvailability {
        for _ in 0..CAS_ATTEMPTS {
            let snap = self.state.load(host);
            let Some(cas) = snap.cas else {
                return KeyAvailability::Pending; // nothing fetched yet: the first fetch is due
            };
            let state = snap.record;
            if state.lease_active(now) || !state.in_backoff(now) {
                return KeyAvailability::Pending;
            }
            if now
                < state
                    .last_attempt_ms
                    .saturating_add(EARLY_RETRY_INTERVAL_MS)
            {
                return KeyAvailability::Unavailable;
            }
            let backoff_left_ms = state.next_attempt_ms.saturating_sub(now);
            let mut next = state;
            next.next_attempt_ms = now;
            match self.state.write(host, &next, Some(cas)) {
                Ok(()) => {
                    self.stats.early_retries += 1;
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

    fn fetch_due(&self, state: &StateRecord, now: UnixMillis) -> Due {
        state.fetch_due(now, || match &self.local {
            None => Ok("no keys yet"),
            Some(l) => {
                let refresh_at = l
                    .fetched_at_ms
                    .saturating_add(self.settings.refresh_interval_ms);
                if now >= refresh_at {
                    Ok("refresh interval elapsed")
                } else if state.role.refresh_requested {
                    Ok("unknown kid")
                } else {
                    Err(refresh_at)
                }
            }
        })
    }

    fn start_fetch(
        &mut self,
        host: &mut dyn Host,
        snap: StateSnapshot<ForcedRefresh>,
        now: UnixMillis,
        reason: &str,
        out: &mut TickOutcome,
    ) {
        let Some((lease_id, lease_until_ms)) = self.state.take_lease(&*host, snap, now) else {
            out.next_tick_ms = FAST_TICK_MS; // record just created, or lost the race: look again soon
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
        let lease_until_ms = now.saturating_add(self.state.lease_ms());
        match self
            .state
            .update_owned(&*host, lease_id, |s| s.lease_until_ms = lease_until_ms)
        {
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
        if !self.state.still_owned(host, lease_id) {
            return FetchOutcome::Discarded { error: None };
        }
        let generation = match self.store_keys(host, &parsed.key_set, now) {
            Ok(generation) => generation,
            Err(error) => return self.on_jwks_error(host, lease_id, error, now),
        };
        self.publish_generation(host, generation);
        self.state.settle_success(host, lease_id, now);
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
        let kept = match &self.local {
            Some(l) => format!(
                "keeping {} keys fetched {} s ago",
                l.keys.len(),
                now.saturating_sub(l.fetched_at_ms) / 1000
            ),
            None => "no keys yet".to_string(),
        };
        let delay = |failures| backoff_ms(settings, worker_id, failures, now);
        match self
            .state
            .settle_failure(host, lease_id, now, &message, delay, &kept)
        {
            Some(retry_in_ms) => FetchOutcome::Failed { error, retry_in_ms },
            None => FetchOutcome::Discarded { error: Some(error) },
        }
    }

    /// Write the new key set with a generation above every one seen.
    fn store_keys(
        &self,
        host: &dyn Host,
        set: &KeySet,
        now: UnixMillis,
    ) -> Result<u64, FetchError> {
        store_next_generation(
            host,
            &self.names.keys,
            |d| KeysRecord::decode(d).ok().map(|r| r.generation),
            || {
                let published = self.read_generation(host).unwrap_or(0);
                published.max(self.seen_generation)
            },
            |generation| KeysRecord::new(generation, now, set).encode().ok(),
        )
        .ok_or(FetchError::StoreFailed)
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
