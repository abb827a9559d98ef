//! One fetch per Envoy, for any document: the per-worker state machine both
//! roles run (the callee's JWKS, the caller's agent token).
//!
//! Every worker (wasm VM, or native worker thread) has one [`Fetcher`] per
//! document source. Workers never talk to each other directly; they
//! coordinate through the shared store: a lease taken by CAS in the state
//! record decides who fetches (see [`super::leased_state`]), the document's
//! own records carry the result, and `settled_seq` tells the others to look.
//!
//! ```text
//! root tick:    on_tick ── abandon_expired ── load_for_tick ── Document::sync (adopt another worker's result)
//!                 ── fetch due? (lease active ─► Busy; backoff / Document::wanted ─► NotBefore)
//!                 └─ Now ── take_lease: create the record (first ever) ─► retry next tick
//!                                   └─ acquire (CAS) ── lost ─► retry next tick
//!                                          └─ won ── dispatch(Document::first_request)
//!
//! callout:      on_callout_response ── not our token ─────────────────────────► Ignored
//!                 ├─ Document::parse ── Next(request) ── renew lease, dispatch ─► Continuing
//!                 ├─ Done(document) ── store, settle (release, reset backoff), adopt ─► Updated
//!                 └─ any failure ── settle (release lease, back off) ──────────► Failed
//!               (a fetch whose lease was taken over meanwhile writes nothing ─► Discarded)
//! ```
//!
//! What differs between documents is only their hooks ([`Document`]): the
//! request, parsing the answer, when a fetch is due, how the result is stored
//! and adopted, and the retry delay. Only `host.now_ms()` is used as a clock,
//! so the fake host can drive every order of events.

use core::fmt::{Debug, Display};

use super::leased_state::{
    clamp_tick, tick_plan, InFlight, LeasedState, SettleError, StateSnapshot, TickPlan,
    FAST_TICK_MS, SLOW_TICK_MS,
};
use super::state_record::RoleFields;
use crate::host::{CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, UnixMillis};

/// What one callout answer means for the fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<P, D> {
    /// A further callout is needed (e.g. the keys after OIDC discovery).
    Next(P, CalloutRequest),
    /// The document, parsed and checked, ready to store.
    Done(D),
}

/// What failed on the host's side rather than the document's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFailure {
    /// The host refused the callout (unknown cluster, ...).
    DispatchRefused(String),
    /// The shared store could not be written.
    StoreFailed,
}

/// The hooks of one fetched document type. See the module docs.
pub trait Document {
    /// The role's own fields of the state record.
    type Fields: RoleFields;
    /// Which callout of the fetch is in flight.
    type Phase: Copy + Debug;
    /// A parsed answer, not stored yet.
    type Parsed;
    /// What [`Document::store`] wrote, handed to [`Document::adopt`].
    type Stored;
    /// What a successful fetch reports ([`FetchOutcome::Updated`]).
    type Adopted: Clone + Debug + PartialEq;
    /// Why a fetch failed: its text goes to logs and the state record, so it
    /// never contains a secret (key material, token). Host failures become
    /// one of the document's own errors, worded as the document says them.
    type Error: Clone + Debug + PartialEq + Display + From<HostFailure>;

    /// Names the document in log lines (`fetching {WHAT}`).
    const WHAT: &'static str;

    /// The first callout of a fetch.
    fn first_request(&self) -> (Self::Phase, CalloutRequest);
    /// Reads the answer to the callout of `phase`.
    fn parse(
        &self,
        phase: Self::Phase,
        response: CalloutResponse,
    ) -> Result<Answer<Self::Phase, Self::Parsed>, Self::Error>;
    /// On a tick, before deciding whether to fetch: adopt a newer document
    /// another worker stored (`settled`: a fetch settled since this worker
    /// last looked). Returns true if this worker's copy changed.
    fn sync(&mut self, host: &dyn Host, settled: bool, now: UnixMillis) -> bool;
    /// The document's own rule for a fetch: `Ok(reason)` now, `Err(at)` not
    /// before `at` (an active lease and a failure's backoff come first).
    fn wanted(&self, fields: &Self::Fields, now: UnixMillis) -> Result<&'static str, UnixMillis>;
    /// Writes a fetched document to the shared store, under the lease.
    fn store(
        &mut self,
        host: &dyn Host,
        parsed: Self::Parsed,
        now: UnixMillis,
    ) -> Result<Self::Stored, Self::Error>;
    /// Uses the stored document in this worker (the lease is released).
    fn adopt(&mut self, host: &dyn Host, stored: Self::Stored, now: UnixMillis) -> Self::Adopted;
    /// Delay before the next attempt after `failures` consecutive failures.
    fn retry_delay_ms(
        &self,
        error: &Self::Error,
        worker_id: u32,
        failures: u32,
        now: UnixMillis,
    ) -> u64;
    /// What this worker keeps serving after a failure (for the log line).
    fn kept(&self, now: UnixMillis) -> String;
}

/// Result of one [`Fetcher::on_tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickOutcome<E> {
    /// This worker adopted a newer document.
    pub changed: bool,
    /// Waiting requests should look again (a new document, or a fetch
    /// somewhere in this Envoy settled, possibly with a failure that makes
    /// them 503).
    pub recheck_waiters: bool,
    /// This worker took the lease and dispatched a callout on this tick.
    pub started_fetch: bool,
    /// The fetch started on this tick failed at once (dispatch refused). Count it.
    pub failure: Option<E>,
    /// Suggested delay until the next tick.
    pub next_tick_ms: u64,
}

/// Result of one [`Fetcher::on_callout_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome<A, E> {
    /// Not a callout this fetcher is waiting for (stale, or another instance's).
    Ignored,
    /// The next callout of the fetch is in flight.
    Continuing,
    /// A new document is stored and in use. Count a successful fetch.
    Updated(A),
    /// The fetch failed; what this worker had stays. Count a failed fetch.
    Failed { error: E, retry_in_ms: u64 },
    /// Our lease expired and another worker took over: nothing was written; the
    /// new holder's result counts. `error` is set if our fetch had failed anyway.
    Discarded { error: Option<E> },
}

impl<A, E> FetchOutcome<A, E> {
    /// The fetch ended and its result was recorded: waiters should look again now.
    pub fn settled(&self) -> bool {
        matches!(self, FetchOutcome::Updated(_) | FetchOutcome::Failed { .. })
    }

    /// For the fetch counters: `Some(true)` a fetch succeeded, `Some(false)` one
    /// failed, `None` nothing to count (ignored, or still continuing).
    pub fn fetch_succeeded(&self) -> Option<bool> {
        match self {
            FetchOutcome::Updated(_) => Some(true),
            FetchOutcome::Failed { .. } | FetchOutcome::Discarded { error: Some(_) } => Some(false),
            FetchOutcome::Ignored
            | FetchOutcome::Continuing
            | FetchOutcome::Discarded { error: None } => None,
        }
    }
}

/// Per-worker counters (cumulative). They only move in the worker that
/// fetched, so summing them over workers counts fetches per Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    /// Callout answers for tokens this fetcher did not know.
    pub ignored_responses: u64,
}

/// One worker's single-flight fetcher of one document. See the module docs.
#[derive(Debug)]
pub struct Fetcher<D: Document> {
    document: D,
    in_flight: Option<InFlight<D::Phase>>,
    state: LeasedState<D::Fields>,
    stats: FetchStats,
}

impl<D: Document> Fetcher<D> {
    /// `state`: the lease on the document's state record (its key, log
    /// prefix, worker id and lease length).
    pub fn new(document: D, state: LeasedState<D::Fields>) -> Fetcher<D> {
        Fetcher {
            document,
            in_flight: None,
            state,
            stats: FetchStats::default(),
        }
    }

    pub fn document(&self) -> &D {
        &self.document
    }

    /// The document and the lease, apart: per-request checks read the state
    /// record while updating the document's own counters.
    pub fn parts_mut(&mut self) -> (&mut D, &LeasedState<D::Fields>) {
        (&mut self.document, &self.state)
    }

    pub fn state(&self) -> &LeasedState<D::Fields> {
        &self.state
    }

    pub fn stats(&self) -> FetchStats {
        self.stats
    }

    /// Whether `token` is the callout this fetcher waits for.
    pub fn awaits(&self, token: CalloutToken) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.token == token)
    }

    /// Whether this worker is waiting for one of its own callouts.
    pub fn fetch_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Background work: adopt another worker's document, start a fetch when
    /// due and the lease can be taken. Call from the root context's tick (and
    /// once at start), then tick again after (at most) `next_tick_ms`.
    pub fn on_tick(&mut self, host: &mut dyn Host) -> TickOutcome<D::Error> {
        let now = host.now_ms();
        self.state.abandon_expired(&*host, &mut self.in_flight, now);
        // State first, document second: a fetching worker stores its document
        // before it releases the lease, so a released lease seen here means its
        // document is visible to the read below. The other order let a worker
        // read "nothing", then find the lease just released, and fetch again.
        let (snap, settled) = self.state.load_for_tick(&*host);
        let changed = self.document.sync(&*host, settled, now);
        let mut out = TickOutcome {
            changed,
            recheck_waiters: changed || settled,
            started_fetch: false,
            failure: None,
            next_tick_ms: SLOW_TICK_MS,
        };
        let document = &self.document;
        let plan = tick_plan(self.in_flight.as_ref(), now, || {
            snap.record
                .fetch_due(now, || document.wanted(&snap.record.role, now))
        });
        match plan {
            TickPlan::Wait(ms) => out.next_tick_ms = ms,
            TickPlan::Fetch(reason) => self.start_fetch(host, snap, now, reason, &mut out),
        }
        out
    }

    /// The answer to a callout. Tokens this fetcher does not know (a callout
    /// from before a VM reload, or abandoned after its lease expired) are ignored.
    pub fn on_callout_response(
        &mut self,
        host: &mut dyn Host,
        token: CalloutToken,
        response: CalloutResponse,
    ) -> FetchOutcome<D::Adopted, D::Error> {
        let Some(flight) = self.in_flight.take_if(|f| f.token == token) else {
            self.stats.ignored_responses += 1;
            self.state.log(
                &*host,
                LogLevel::Debug,
                &format!("ignoring response to unknown callout {token}"),
            );
            return FetchOutcome::Ignored;
        };
        let now = host.now_ms();
        match self.document.parse(flight.phase, response) {
            Ok(Answer::Next(phase, request)) => {
                self.continue_with(host, &flight.lease_id, phase, &request, now)
            }
            Ok(Answer::Done(parsed)) => self.on_success(&*host, &flight.lease_id, parsed, now),
            Err(error) => self.on_error(&*host, &flight.lease_id, error, now),
        }
    }

    fn start_fetch(
        &mut self,
        host: &mut dyn Host,
        snap: StateSnapshot<D::Fields>,
        now: UnixMillis,
        reason: &str,
        out: &mut TickOutcome<D::Error>,
    ) {
        let Some((lease_id, lease_until_ms)) = self.state.take_lease(&*host, snap, now) else {
            out.next_tick_ms = FAST_TICK_MS; // record just created, or lost the race: look again soon
            return;
        };
        self.state.log(
            &*host,
            LogLevel::Debug,
            &format!(
                "worker {} fetching {} ({reason})",
                self.state.worker_id(),
                D::WHAT
            ),
        );
        let (phase, request) = self.document.first_request();
        match self.dispatch(host, phase, &request, lease_id.clone(), lease_until_ms) {
            Ok(()) => {
                out.started_fetch = true;
                out.next_tick_ms = clamp_tick(lease_until_ms.saturating_sub(now));
            }
            Err(error) => {
                let outcome = self.on_error(&*host, &lease_id, error.clone(), now);
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
        phase: D::Phase,
        request: &CalloutRequest,
        lease_id: String,
        lease_until_ms: UnixMillis,
    ) -> Result<(), D::Error> {
        let token = host
            .dispatch(request)
            .map_err(|reason| D::Error::from(HostFailure::DispatchRefused(reason)))?;
        self.in_flight = Some(InFlight {
            token,
            phase,
            lease_id,
            lease_until_ms,
        });
        Ok(())
    }

    /// A further callout: extend the lease for it and send it.
    fn continue_with(
        &mut self,
        host: &mut dyn Host,
        lease_id: &str,
        phase: D::Phase,
        request: &CalloutRequest,
        now: UnixMillis,
    ) -> FetchOutcome<D::Adopted, D::Error> {
        let lease_until_ms = now.saturating_add(self.state.lease_ms());
        match self
            .state
            .update_owned(&*host, lease_id, |s| s.lease_until_ms = lease_until_ms)
        {
            Ok(_) => {}
            Err(SettleError::LeaseLost) => return FetchOutcome::Discarded { error: None },
            Err(SettleError::StoreFailed) => {
                return self.on_error(&*host, lease_id, HostFailure::StoreFailed.into(), now)
            }
        }
        match self.dispatch(host, phase, request, lease_id.to_string(), lease_until_ms) {
            Ok(()) => FetchOutcome::Continuing,
            Err(error) => self.on_error(&*host, lease_id, error, now),
        }
    }

    fn on_success(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        parsed: D::Parsed,
        now: UnixMillis,
    ) -> FetchOutcome<D::Adopted, D::Error> {
        if !self.state.still_owned(host, lease_id) {
            return FetchOutcome::Discarded { error: None };
        }
        let stored = match self.document.store(host, parsed, now) {
            Ok(stored) => stored,
            Err(error) => return self.on_error(host, lease_id, error, now),
        };
        self.state.settle_success(host, lease_id, now);
        self.stats.fetch_ok += 1;
        FetchOutcome::Updated(self.document.adopt(host, stored, now))
    }

    fn on_error(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        error: D::Error,
        now: UnixMillis,
    ) -> FetchOutcome<D::Adopted, D::Error> {
        self.stats.fetch_failed += 1;
        let message = error.to_string();
        let kept = self.document.kept(now);
        let (document, worker_id) = (&self.document, self.state.worker_id());
        let delay = |failures| document.retry_delay_ms(&error, worker_id, failures, now);
        match self
            .state
            .settle_failure(host, lease_id, now, &message, delay, &kept)
        {
            Some(retry_in_ms) => FetchOutcome::Failed { error, retry_in_ms },
            None => FetchOutcome::Discarded { error: Some(error) },
        }
    }
}

/// The two calls a root context makes into a coordinator's fetcher, written
/// once for every coordinator (a struct with a `fetcher` field, and
/// `TickOutcome` / `FetchOutcome` aliases in scope). Plain methods on purpose:
/// routing them through `Deref` or a trait's default methods made the shipped
/// module 0.6 KB larger (inlining at opt-level `z`, docs/performance.md).
macro_rules! drive_fetch {
    () => {
        /// Background work (see [`Fetcher::on_tick`]): the coordinator is the
        /// fetcher plus its per-request checks.
        pub fn on_tick(&mut self, host: &mut dyn Host) -> TickOutcome {
            self.fetcher.on_tick(host)
        }

        /// The answer to a callout (see [`Fetcher::on_callout_response`]).
        pub fn on_callout_response(
            &mut self,
            host: &mut dyn Host,
            token: CalloutToken,
            response: CalloutResponse,
        ) -> FetchOutcome {
            self.fetcher.on_callout_response(host, token, response)
        }
    };
}
pub(crate) use drive_fetch;

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
#[path = "single_flight_tests.rs"]
mod tests;
