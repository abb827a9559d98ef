//! One agent token per Envoy: the per-worker state machine that shares it.
//!
//! Every worker (wasm VM) has one [`TokenCoordinator`] per token source (agent
//! scope). Like the JWKS coordinator, workers coordinate only through shared
//! data ([`super::record`]): a lease taken by CAS decides who calls the agent,
//! the token record carries the result, and `settled_seq` in the state record
//! tells the other workers to pick it up.
//! The lease steps are the JWKS coordinator's: see [`crate::shared::leased_state`].
//!
//! ```text
//! per request:  token() ── usable local copy ──────────────────────────────► Ready
//!                 └─ load_shared_token ── usable ──────────────────────────► Ready
//!                        └─ classify_without_token ── lease / no state ─────► Pending
//!                                                  ├─ failed, backing off ──► Unavailable(reason)
//!                                                  └─ otherwise ────────────► Pending
//!
//! root tick:    on_tick ── abandon_expired ── load_for_tick ── settled elsewhere? load_shared_token
//!                 ── fetch_due?
//!                 ├─ Busy (a lease is active) / NotBefore(refresh_at | next_attempt) ─► wait
//!                 └─ Now ── take_lease: create the record (first ever) ─► retry next tick
//!                                   └─ acquire (CAS) ── lost ─► retry next tick
//!                                          └─ won ── dispatch(GET {token_path}?scope=…, agent key header)
//!
//! callout:      on_callout_response ── not ours ────────────────────────────► Ignored
//!                 ├─ token ── on_fetch_success: store_token, settle (release, reset backoff) ─► Updated
//!                 └─ failure ── on_fetch_error: settle (release, backoff ≥ agent's Retry-After) ─► Failed
//!               (a fetch whose lease was taken over meanwhile writes nothing ─► Discarded)
//! ```
//!
//! The refresh is ahead of expiry and in the background (see [`super::timing`]):
//! requests keep using the current token while a worker refreshes it, and a
//! failed refresh keeps the current token until its `usable_until`.
//! Only `host.now_ms()` is used as a clock, so the fake host can drive it.

use std::rc::Rc;

use super::agent::{parse_agent_response, AgentFailure};
use super::policy::{AgentSettings, FetchPolicy, TokenSource, AGENT_KEY_HEADER};
use super::record::{NoRoleFields, RecordNames, StateRecord, TokenRecord};
use super::timing::TokenTiming;
use crate::fingerprint::fingerprint;
use crate::host::{CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, UnixMillis};
use crate::retry::jittered_backoff_ms;
use crate::shared::leased_state::{
    clamp_tick, store_next_generation, tick_plan, InFlight, LeasedState, StateSnapshot, TickPlan,
    FAST_TICK_MS, LEASE_MARGIN_MS, SLOW_TICK_MS,
};
use crate::shared::state_record::Due;

/// A token this worker can attach, with its schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub generation: u64,
    /// `Bearer <token>`, ready for the `Authorization` header.
    pub header_value: String,
    /// sha256 prefix of the token, for logs.
    pub fingerprint: String,
    pub expires_at_ms: UnixMillis,
    pub refresh_at_ms: UnixMillis,
    pub usable_until_ms: UnixMillis,
}

impl core::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CachedToken")
            .field("generation", &self.generation)
            .field("fingerprint", &self.fingerprint)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field("usable_until_ms", &self.usable_until_ms)
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    fn from_record(record: TokenRecord) -> CachedToken {
        CachedToken {
            generation: record.generation,
            fingerprint: fingerprint(&record.access_token),
            header_value: format!("Bearer {}", record.access_token),
            expires_at_ms: record.expires_at_ms,
            refresh_at_ms: record.refresh_at_ms,
            usable_until_ms: record.usable_until_ms,
        }
    }

    pub fn usable(&self, now: UnixMillis) -> bool {
        now < self.usable_until_ms
    }
}

/// What a request can use right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAvailability {
    Ready(Rc<CachedToken>),
    /// A fetch is in flight or about to start: park the request (bounded by
    /// `request_wait_ms`) and re-check when told to.
    Pending,
    /// No usable token and the last attempt failed with this reason; its retry
    /// is not due yet. Refuse at once (503) instead of waiting.
    Unavailable(String),
}

/// Result of one [`TokenCoordinator::on_tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickOutcome {
    /// This worker adopted a newer token.
    pub token_changed: bool,
    /// Waiting requests should look again (new token, or a fetch somewhere
    /// settled, possibly with a failure that makes them 503).
    pub recheck_waiters: bool,
    pub started_fetch: bool,
    /// The fetch started on this tick failed at once (dispatch refused).
    pub failure: Option<AgentFailure>,
    pub next_tick_ms: u64,
}

/// Result of one [`TokenCoordinator::on_callout_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Not a callout this coordinator waits for.
    Ignored,
    /// A new token is stored and in use.
    Updated { generation: u64, expires_in_ms: u64 },
    /// The fetch failed; a still-usable token stays in use.
    Failed {
        error: AgentFailure,
        retry_in_ms: u64,
    },
    /// Our lease expired and another worker took over: nothing was written.
    Discarded { error: Option<AgentFailure> },
}

impl FetchOutcome {
    /// The fetch ended and its result was recorded: waiters should re-check now.
    pub fn settled(&self) -> bool {
        matches!(
            self,
            FetchOutcome::Updated { .. } | FetchOutcome::Failed { .. }
        )
    }

    /// `Some(true)` a fetch succeeded, `Some(false)` one failed, `None` nothing to count.
    pub fn fetch_succeeded(&self) -> Option<bool> {
        match self {
            FetchOutcome::Updated { .. } => Some(true),
            FetchOutcome::Failed { .. } | FetchOutcome::Discarded { error: Some(_) } => Some(false),
            FetchOutcome::Ignored | FetchOutcome::Discarded { error: None } => None,
        }
    }
}

/// Per-worker counters (cumulative; summed over workers they count per Envoy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundStats {
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    pub ignored_responses: u64,
}

/// The token state machine of one worker for one source. See the module docs.
pub struct TokenCoordinator {
    request: CalloutRequest,
    scope: String,
    timing: TokenTiming,
    fetch: FetchPolicy,
    worker_id: u32,
    names: RecordNames,
    local: Option<Rc<CachedToken>>,
    /// The agent callout in flight (one phase only, hence `()`).
    in_flight: Option<InFlight<()>>,
    state: LeasedState<NoRoleFields>,
    stats: OutboundStats,
}

impl TokenCoordinator {
    pub fn new(
        agent: &AgentSettings,
        source: &TokenSource,
        timing: TokenTiming,
        fetch: FetchPolicy,
        worker_id: u32,
    ) -> TokenCoordinator {
        let names = RecordNames::for_source(agent, source);
        let state = LeasedState::new(
            names.state.clone(),
            format!("outbound[{}]", source.scope),
            worker_id,
            agent.timeout_ms.saturating_add(LEASE_MARGIN_MS),
        );
        TokenCoordinator {
            request: CalloutRequest {
                cluster: agent.cluster.clone(),
                authority: agent.authority.clone(),
                path: source.path.clone(),
                timeout_ms: agent.timeout_ms,
                headers: vec![(AGENT_KEY_HEADER.to_string(), agent.key.expose().to_string())],
            },
            scope: source.scope.clone(),
            names,
            timing,
            fetch,
            worker_id,
            local: None,
            in_flight: None,
            state,
            stats: OutboundStats::default(),
        }
    }

    pub fn names(&self) -> &RecordNames {
        &self.names
    }

    pub fn stats(&self) -> OutboundStats {
        self.stats
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Whether `token` is the callout this coordinator waits for.
    pub fn awaits(&self, token: CalloutToken) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.token == token)
    }

    // ----- per request -------------------------------------------------------

    /// The token for one request. Free of hostcalls while this worker's copy is
    /// usable; see [`TokenAvailability`] for the rule otherwise.
    pub fn token(&mut self, host: &dyn Host) -> TokenAvailability {
        let now = host.now_ms();
        if let Some(token) = self.usable_local(now) {
            return TokenAvailability::Ready(token);
        }
        self.load_shared_token(host);
        if let Some(token) = self.usable_local(now) {
            return TokenAvailability::Ready(token);
        }
        self.classify_without_token(&self.state.load(host), now)
    }

    // ----- root context ------------------------------------------------------

    /// Background work: adopt another worker's token, start a fetch when due and
    /// the lease can be taken. Call from `on_tick` (and once at start), then set
    /// the tick period to (at most) `next_tick_ms`.
    pub fn on_tick(&mut self, host: &mut dyn Host) -> TickOutcome {
        let now = host.now_ms();
        self.state.abandon_expired(&*host, &mut self.in_flight, now);
        let (snap, settled) = self.state.load_for_tick(&*host);
        let wants_newer = self.local.as_ref().is_none_or(|t| now >= t.refresh_at_ms);
        let token_changed = (settled || wants_newer) && self.load_shared_token(&*host);
        let mut out = TickOutcome {
            token_changed,
            recheck_waiters: token_changed || settled,
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

    /// The answer to a callout (tokens this coordinator does not wait for are ignored).
    pub fn on_callout_response(
        &mut self,
        host: &mut dyn Host,
        token: CalloutToken,
        response: CalloutResponse,
    ) -> FetchOutcome {
        let Some(flight) = self.in_flight.take_if(|f| f.token == token) else {
            self.stats.ignored_responses += 1;
            return FetchOutcome::Ignored;
        };
        let now = host.now_ms();
        match parse_agent_response(response.status, &response.body) {
            Ok(agent_token) => self.on_fetch_success(
                &*host,
                &flight.lease_id,
                agent_token.access_token,
                agent_token.expires_in_ms,
                now,
            ),
            Err(error) => self.on_fetch_error(&*host, &flight.lease_id, error, now),
        }
    }

    // ----- steps --------------------------------------------------------------

    fn usable_local(&self, now: UnixMillis) -> Option<Rc<CachedToken>> {
        self.local.as_ref().filter(|t| t.usable(now)).cloned()
    }

    /// Adopt the shared token if it is newer than ours. Returns true if it was.
    fn load_shared_token(&mut self, host: &dyn Host) -> bool {
        let Some(data) = host.shared_get(&self.names.token).data else {
            return false;
        };
        match TokenRecord::decode(&data) {
            Ok(record) => {
                if self
                    .local
                    .as_ref()
                    .is_some_and(|t| t.generation >= record.generation)
                {
                    return false;
                }
                self.local = Some(Rc::new(CachedToken::from_record(record)));
                true
            }
            Err(e) => {
                self.log(
                    host,
                    LogLevel::Warn,
                    &format!("shared token record unreadable ({e})"),
                );
                false
            }
        }
    }

    fn classify_without_token(
        &self,
        snap: &StateSnapshot<NoRoleFields>,
        now: UnixMillis,
    ) -> TokenAvailability {
        let state = &snap.record;
        if snap.cas.is_none() || state.lease_active(now) || !state.in_backoff(now) {
            return TokenAvailability::Pending;
        }
        let reason = state
            .last_error
            .clone()
            .unwrap_or_else(|| "no token from the agent yet".to_string());
        let reason = match &self.local {
            Some(t) => format!(
                "token expired and refresh failed: {reason} (token sha256 {})",
                t.fingerprint
            ),
            None => reason,
        };
        TokenAvailability::Unavailable(reason)
    }

    fn fetch_due(&self, state: &StateRecord, now: UnixMillis) -> Due {
        state.fetch_due(now, || match &self.local {
            None => Ok("no token yet"),
            Some(t) if now >= t.refresh_at_ms => Ok("refresh due"),
            Some(t) => Err(t.refresh_at_ms),
        })
    }

    fn start_fetch(
        &mut self,
        host: &mut dyn Host,
        snap: StateSnapshot<NoRoleFields>,
        now: UnixMillis,
        reason: &str,
        out: &mut TickOutcome,
    ) {
        let Some((lease_id, lease_until_ms)) = self.state.take_lease(&*host, snap, now) else {
            out.next_tick_ms = FAST_TICK_MS;
            return;
        };
        self.log(
            &*host,
            LogLevel::Debug,
            &format!("worker {} asking the agent ({reason})", self.worker_id),
        );
        match host.dispatch(&self.request) {
            Ok(token) => {
                self.in_flight = Some(InFlight {
                    token,
                    phase: (),
                    lease_id,
                    lease_until_ms,
                });
                out.started_fetch = true;
                out.next_tick_ms = clamp_tick(lease_until_ms.saturating_sub(now));
            }
            Err(reason) => {
                let error = AgentFailure::DispatchFailed(reason);
                let outcome = self.on_fetch_error(&*host, &lease_id, error.clone(), now);
                out.failure = Some(error);
                out.recheck_waiters = true;
                out.next_tick_ms = match outcome {
                    FetchOutcome::Failed { retry_in_ms, .. } => clamp_tick(retry_in_ms),
                    _ => FAST_TICK_MS,
                };
            }
        }
    }

    fn on_fetch_success(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        access_token: String,
        expires_in_ms: u64,
        now: UnixMillis,
    ) -> FetchOutcome {
        if !self.state.still_owned(host, lease_id) {
            return FetchOutcome::Discarded { error: None };
        }
        let schedule = self.timing.schedule(now, expires_in_ms);
        let record = match self.store_token(host, access_token, now, schedule) {
            Ok(record) => record,
            Err(error) => return self.on_fetch_error(host, lease_id, error, now),
        };
        self.state.settle_success(host, lease_id, now);
        let generation = record.generation;
        let token = CachedToken::from_record(record);
        self.log(
            host,
            LogLevel::Info,
            &format!(
                "token fetched (sha256 {}), expires in {} s, refresh in {} s (generation {generation})",
                token.fingerprint,
                expires_in_ms / 1000,
                token.refresh_at_ms.saturating_sub(now) / 1000
            ),
        );
        self.local = Some(Rc::new(token));
        self.stats.fetch_ok += 1;
        FetchOutcome::Updated {
            generation,
            expires_in_ms,
        }
    }

    fn on_fetch_error(
        &mut self,
        host: &dyn Host,
        lease_id: &str,
        error: AgentFailure,
        now: UnixMillis,
    ) -> FetchOutcome {
        self.stats.fetch_failed += 1;
        let message = error.to_string();
        let (fetch, worker_id) = (self.fetch, self.worker_id);
        let hint = error.retry_after_ms();
        let delay = |failures: u32| {
            let backoff = jittered_backoff_ms(
                fetch.retry_initial_ms,
                fetch.retry_max_ms,
                worker_id,
                failures,
                now,
            );
            // The agent knows when it expects a token (e.g. Entra's Retry-After);
            // asking sooner only yields another 503. Capped by retry_max_ms.
            hint.map_or(backoff, |h| backoff.max(h.min(fetch.retry_max_ms)))
        };
        let kept = match self.usable_local(now) {
            Some(t) => format!(
                "keeping token sha256 {} (usable for {} s more)",
                t.fingerprint,
                t.usable_until_ms.saturating_sub(now) / 1000
            ),
            None => "no usable token: requests get 503".to_string(),
        };
        match self
            .state
            .settle_failure(host, lease_id, now, &message, delay, &kept)
        {
            Some(retry_in_ms) => FetchOutcome::Failed { error, retry_in_ms },
            None => FetchOutcome::Discarded { error: Some(error) },
        }
    }

    /// Write the token with a generation above every one seen.
    fn store_token(
        &self,
        host: &dyn Host,
        access_token: String,
        now: UnixMillis,
        schedule: super::timing::TokenSchedule,
    ) -> Result<TokenRecord, AgentFailure> {
        let local_generation = self.local.as_ref().map_or(0, |t| t.generation);
        let mut record = TokenRecord::new(0, access_token, now, schedule);
        let generation = store_next_generation(
            host,
            &self.names.token,
            |d| TokenRecord::decode(d).ok().map(|r| r.generation),
            || local_generation,
            |generation| {
                record.generation = generation;
                record.encode().ok()
            },
        )
        .ok_or(AgentFailure::StoreFailed)?;
        record.generation = generation;
        Ok(record)
    }

    fn log(&self, host: &dyn Host, level: LogLevel, message: &str) {
        self.state.log(host, level, message);
    }
}

impl core::fmt::Debug for TokenCoordinator {
    // Written out because the callout carries the agent key in a header.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TokenCoordinator")
            .field("scope", &self.scope)
            .field("cluster", &self.request.cluster)
            .field("worker_id", &self.worker_id)
            .field("names", &self.names)
            .field("local", &self.local)
            .field("in_flight", &self.in_flight)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
#[path = "coordinator_tests.rs"]
mod tests;
