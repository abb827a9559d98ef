//! The lease half of a coordinator: reading and writing its state record by
//! CAS so that one worker per Envoy fetches at a time.
//!
//! Both coordinators (JWKS, outbound token) take the lease, settle it and back
//! off the same way; only what they fetch differs. Envoy's shared data is the
//! only channel between workers, and every write here is a compare-and-swap
//! against the value just read.

use core::marker::PhantomData;

use super::state_record::{Due, RoleFields, StateRecord};
use crate::host::{CalloutToken, Host, LogLevel, SharedWriteError, UnixMillis};

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
pub const CAS_ATTEMPTS: usize = 4;

/// A delay until the next tick, kept between the fast and the slow period.
pub fn clamp_tick(ms: u64) -> u64 {
    ms.clamp(FAST_TICK_MS, SLOW_TICK_MS)
}

/// The shared state as read, with the CAS to write it back (`None`: key absent).
pub struct StateSnapshot<X> {
    pub record: StateRecord<X>,
    pub cas: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleError {
    /// Another fetch holds the lease now: ours must not write anything.
    LeaseLost,
    StoreFailed,
}

/// The callout this worker is waiting for, under the lease it holds.
/// `P`: what the role needs to know about it (e.g. the JWKS fetch phase).
#[derive(Debug, Clone)]
pub struct InFlight<P> {
    pub token: CalloutToken,
    pub phase: P,
    pub lease_id: String,
    pub lease_until_ms: UnixMillis,
}

/// What a tick does about fetching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickPlan {
    /// Nothing to start: tick again in this many ms.
    Wait(u64),
    /// Take the lease and fetch, for this reason (logged).
    Fetch(&'static str),
}

/// While our own callout is in flight, wait for it (until its lease runs
/// out); otherwise follow `due()`.
pub fn tick_plan<P>(
    in_flight: Option<&InFlight<P>>,
    now: UnixMillis,
    due: impl FnOnce() -> Due,
) -> TickPlan {
    if let Some(flight) = in_flight {
        return TickPlan::Wait(clamp_tick(flight.lease_until_ms.saturating_sub(now)));
    }
    match due() {
        Due::Busy => TickPlan::Wait(FAST_TICK_MS),
        Due::NotBefore(at) => TickPlan::Wait(clamp_tick(at.saturating_sub(now))),
        Due::Now(reason) => TickPlan::Fetch(reason),
    }
}

/// One worker's handle on one source's state record. See the module docs.
#[derive(Debug)]
pub struct LeasedState<X> {
    key: String,
    /// Prefix of every log line (`jwks`, `outbound[scope]`).
    log_prefix: String,
    worker_id: u32,
    lease_ms: u64,
    lease_seq: u64,
    /// `settled_seq` as this worker last saw it: a change means a fetch
    /// settled elsewhere, and waiting requests should re-check.
    seen_settled_seq: u64,
    role: PhantomData<X>,
}

impl<X: RoleFields> LeasedState<X> {
    /// `key`: the `<prefix>.state` name; `lease_ms`: how long a taken lease lasts.
    pub fn new(key: String, log_prefix: String, worker_id: u32, lease_ms: u64) -> LeasedState<X> {
        LeasedState {
            key,
            log_prefix,
            worker_id,
            lease_ms,
            lease_seq: 0,
            seen_settled_seq: 0,
            role: PhantomData,
        }
    }

    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    pub fn worker_id(&self) -> u32 {
        self.worker_id
    }

    pub fn log(&self, host: &dyn Host, level: LogLevel, message: &str) {
        host.log(level, &format!("{}: {message}", self.log_prefix));
    }

    /// An unreadable state record reads as the default state but keeps its CAS,
    /// so the next lease overwrites it instead of wedging every worker.
    pub fn load(&self, host: &dyn Host) -> StateSnapshot<X> {
        let value = host.shared_get(&self.key);
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

    /// The state for a tick, and whether a fetch settled since this worker last
    /// looked (its own settlements are not news).
    pub fn load_for_tick(&mut self, host: &dyn Host) -> (StateSnapshot<X>, bool) {
        let snap = self.load(host);
        let settled = snap.record.settled_seq != self.seen_settled_seq;
        self.seen_settled_seq = snap.record.settled_seq;
        (snap, settled)
    }

    pub fn write(
        &self,
        host: &dyn Host,
        state: &StateRecord<X>,
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        let bytes = state.encode().map_err(|_| SharedWriteError::Failed)?;
        host.shared_set(&self.key, &bytes, cas)
    }

    /// First write of the state record. Envoy ignores the CAS when a key does not
    /// exist, so creation cannot be exclusive; it therefore never takes a lease:
    /// two workers creating at once write the same neutral record, and the lease is
    /// taken by CAS on a later tick, when the record exists.
    fn create(&self, host: &dyn Host) {
        if let Err(e) = self.write(host, &StateRecord::default(), None) {
            self.log(
                host,
                LogLevel::Warn,
                &format!("could not create shared state ({e:?})"),
            );
        }
    }

    /// Take the lease from a tick's snapshot. Returns the lease id and its end,
    /// or `None` if no lease was taken this time (the record had to be created
    /// first, or another worker moved first): tick again soon.
    pub fn take_lease(
        &mut self,
        host: &dyn Host,
        snap: StateSnapshot<X>,
        now: UnixMillis,
    ) -> Option<(String, UnixMillis)> {
        let Some(cas) = snap.cas else {
            self.create(host);
            return None;
        };
        self.acquire(host, snap.record, cas, now)
    }

    /// Take the lease by CAS over `state` as read with `cas`.
    fn acquire(
        &mut self,
        host: &dyn Host,
        state: StateRecord<X>,
        cas: u32,
        now: UnixMillis,
    ) -> Option<(String, UnixMillis)> {
        // Unique per fetch, not per worker: a reloaded VM with the same worker id
        // must not mistake its predecessor's lease for its own.
        let lease_id = format!("w{}-{}-{}", self.worker_id, now, self.lease_seq);
        self.lease_seq += 1;
        let lease_until_ms = now.saturating_add(self.lease_ms);
        let mut next = state;
        next.take_lease(lease_id.clone(), lease_until_ms, now);
        match self.write(host, &next, Some(cas)) {
            Ok(()) => Some((lease_id, lease_until_ms)),
            Err(SharedWriteError::CasMismatch) => None,
            Err(SharedWriteError::Failed) => {
                self.log(host, LogLevel::Warn, "could not write the fetch lease");
                None
            }
        }
    }

    /// Read-modify-write of the state record, only while `lease_id` owns the lease.
    pub fn update_owned(
        &self,
        host: &dyn Host,
        lease_id: &str,
        change: impl Fn(&mut StateRecord<X>),
    ) -> Result<StateRecord<X>, SettleError> {
        for _ in 0..CAS_ATTEMPTS {
            let snap = self.load(host);
            if !snap.record.owned_by(lease_id) {
                return Err(SettleError::LeaseLost);
            }
            let mut next = snap.record;
            change(&mut next);
            match self.write(host, &next, snap.cas) {
                Ok(()) => return Ok(next),
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => return Err(SettleError::StoreFailed),
            }
        }
        Err(SettleError::StoreFailed)
    }

    /// Whether a fetch that just finished still holds its lease. One that
    /// outlived it is dropped (logged): the worker that took over fetches too,
    /// and one writer at a time keeps generations ordered.
    pub fn still_owned(&self, host: &dyn Host, lease_id: &str) -> bool {
        if self.load(host).record.owned_by(lease_id) {
            return true;
        }
        self.log(
            host,
            LogLevel::Info,
            "fetch finished after its lease was taken over; result dropped",
        );
        false
    }

    /// Forget our own callout once its lease is over: it was cancelled or will
    /// never be answered, and holding on to it would stop this worker fetching.
    pub fn abandon_expired<P>(
        &self,
        host: &dyn Host,
        in_flight: &mut Option<InFlight<P>>,
        now: UnixMillis,
    ) {
        if let Some(flight) = in_flight.take_if(|f| now >= f.lease_until_ms) {
            self.log(
                host,
                LogLevel::Warn,
                &format!(
                    "callout {} unanswered past its lease, abandoned",
                    flight.token
                ),
            );
        }
    }

    /// Release the lease after a successful fetch (reset the backoff). If it
    /// cannot be released, that is logged: the lease will expire.
    pub fn settle_success(&mut self, host: &dyn Host, lease_id: &str, now: UnixMillis) {
        match self.update_owned(host, lease_id, |s| s.settle_success(now)) {
            Ok(state) => self.seen_settled_seq = state.settled_seq,
            Err(_) => self.log(
                host,
                LogLevel::Warn,
                "could not release the fetch lease; it will expire",
            ),
        }
    }

    /// Record a failed fetch (release the lease, back off by `delay(failures)`)
    /// and log it; `kept` says what this worker keeps serving meanwhile.
    /// Returns the delay until the next attempt (0 if the failure could not be
    /// recorded), or `None` if our lease was taken over meanwhile: then nothing
    /// was written and the new holder's result counts.
    pub fn settle_failure(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        now: UnixMillis,
        message: &str,
        delay: impl Fn(u32) -> u64,
        kept: &str,
    ) -> Option<u64> {
        match self.update_owned(host, lease_id, |s| s.settle_failure(now, message, &delay)) {
            Ok(state) => {
                self.seen_settled_seq = state.settled_seq;
                let retry_in_ms = state.next_attempt_ms.saturating_sub(now);
                self.log(
                    host,
                    LogLevel::Warn,
                    &format!(
                        "fetch failed ({message}); {kept}; retry in {retry_in_ms} ms (failure {})",
                        state.consecutive_failures
                    ),
                );
                Some(retry_in_ms)
            }
            Err(SettleError::LeaseLost) => {
                self.log(
                    host,
                    LogLevel::Warn,
                    &format!("fetch failed ({message}) after its lease was taken over"),
                );
                None
            }
            Err(SettleError::StoreFailed) => {
                self.log(
                    host,
                    LogLevel::Error,
                    &format!("fetch failed ({message}) and the failure could not be recorded"),
                );
                Some(0)
            }
        }
    }
}

/// Write a generation-numbered record at `key` under a generation above both
/// the one stored there and `floor()` (generations this worker saw elsewhere),
/// by CAS, so two writers never store the same generation. `stored` reads a
/// record's generation; `encode` builds the record for a generation. Returns
/// the generation written, or `None` if it could not be written.
pub fn store_next_generation(
    host: &dyn Host,
    key: &str,
    stored: impl Fn(&[u8]) -> Option<u64>,
    floor: impl Fn() -> u64,
    mut encode: impl FnMut(u64) -> Option<Vec<u8>>,
) -> Option<u64> {
    for _ in 0..CAS_ATTEMPTS {
        let current = host.shared_get(key);
        let stored = current.data.as_deref().and_then(&stored).unwrap_or(0);
        let generation = stored.max(floor()).saturating_add(1);
        let bytes = encode(generation)?;
        match host.shared_set(key, &bytes, current.cas) {
            Ok(()) => return Some(generation),
            Err(SharedWriteError::CasMismatch) => continue,
            Err(SharedWriteError::Failed) => return None,
        }
    }
    None
}
