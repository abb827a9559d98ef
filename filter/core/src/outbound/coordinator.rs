//! One agent token per Envoy: the per-worker state machine that shares it.
//!
//! Every worker (wasm VM) has one [`TokenCoordinator`] per token source (agent
//! scope). Like the JWKS coordinator, workers coordinate only through shared
//! data ([`super::record`]): a lease taken by CAS decides who calls the agent,
//! the token record carries the result, and `settled_seq` in the state record
//! tells the other workers to pick it up.
//! The fetch itself (tick, lease, callout answers, settling, backoff) is the
//! generic [`crate::fetcher::single_flight::Fetcher`], the JWKS's too; this
//! module adds only the token hooks ([`TokenDocument`]) and the per-request check.
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

use super::agent::{parse_agent_response, AgentFailure, AgentToken};
use super::policy::{AgentSettings, FetchPolicy, TokenSource, AGENT_KEY_HEADER};
use super::record::{NoRoleFields, RecordNames, TokenRecord};
use super::timing::TokenTiming;
use crate::fetcher::leased_state::{
    store_next_generation, LeasedState, StateSnapshot, LEASE_MARGIN_MS,
};
use crate::fetcher::single_flight::{self, Answer, Document, FetchStats, Fetcher};
use crate::fingerprint::fingerprint;
use crate::host::{CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, UnixMillis};
use crate::retry::jittered_backoff_ms;

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

/// A new token stored and in use ([`FetchOutcome::Updated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUpdate {
    pub generation: u64,
    pub expires_in_ms: u64,
}

/// Result of one [`TokenCoordinator::on_tick`].
pub type TickOutcome = single_flight::TickOutcome<AgentFailure>;
/// Result of one [`TokenCoordinator::on_callout_response`].
pub type FetchOutcome = single_flight::FetchOutcome<TokenUpdate, AgentFailure>;
/// Per-worker counters (cumulative; summed over workers they count per Envoy).
pub type OutboundStats = FetchStats;

/// The agent-token hooks of the generic fetcher, and this worker's copy of the token.
pub struct TokenDocument {
    request: CalloutRequest,
    scope: String,
    timing: TokenTiming,
    fetch: FetchPolicy,
    names: RecordNames,
    local: Option<Rc<CachedToken>>,
}

impl core::fmt::Debug for TokenDocument {
    // Written out because the callout carries the agent key in a header.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TokenDocument")
            .field("scope", &self.scope)
            .field("cluster", &self.request.cluster)
            .field("names", &self.names)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// The token state machine of one worker for one source. See the module docs.
#[derive(Debug)]
pub struct TokenCoordinator {
    fetcher: Fetcher<TokenDocument>,
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
        let document = TokenDocument {
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
            local: None,
        };
        TokenCoordinator {
            fetcher: Fetcher::new(document, state),
        }
    }

    pub fn names(&self) -> &RecordNames {
        &self.fetcher.document().names
    }

    pub fn scope(&self) -> &str {
        &self.fetcher.document().scope
    }

    // ----- per request -------------------------------------------------------

    /// The token for one request. Free of hostcalls while this worker's copy is
    /// usable; see [`TokenAvailability`] for the rule otherwise.
    pub fn token(&mut self, host: &dyn Host) -> TokenAvailability {
        let now = host.now_ms();
        let (document, state) = self.fetcher.parts_mut();
        if let Some(token) = document.usable_local(now) {
            return TokenAvailability::Ready(token);
        }
        document.load_shared_token(host);
        if let Some(token) = document.usable_local(now) {
            return TokenAvailability::Ready(token);
        }
        document.classify_without_token(&state.load(host), now)
    }

    single_flight::drive_fetch!();

    /// Whether `token` is the callout this worker waits for.
    pub fn awaits(&self, token: CalloutToken) -> bool {
        self.fetcher.awaits(token)
    }

    pub fn stats(&self) -> OutboundStats {
        self.fetcher.stats()
    }
}

impl TokenDocument {
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
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "{}: shared token record unreadable ({e})",
                        self.log_prefix()
                    ),
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

    fn log_prefix(&self) -> String {
        format!("outbound[{}]", self.scope)
    }
}

impl Document for TokenDocument {
    type Fields = NoRoleFields;
    /// One callout per fetch.
    type Phase = ();
    type Parsed = AgentToken;
    type Stored = (TokenRecord, u64);
    type Adopted = TokenUpdate;
    type Error = AgentFailure;

    const WHAT: &'static str = "a token from the agent";

    fn first_request(&self) -> ((), CalloutRequest) {
        ((), self.request.clone())
    }

    fn parse(
        &self,
        _phase: (),
        response: CalloutResponse,
    ) -> Result<Answer<(), AgentToken>, AgentFailure> {
        parse_agent_response(response.status, &response.body).map(Answer::Done)
    }

    fn sync(&mut self, host: &dyn Host, settled: bool, now: UnixMillis) -> bool {
        let wants_newer = self.local.as_ref().is_none_or(|t| now >= t.refresh_at_ms);
        if !(settled || wants_newer) {
            return false;
        }
        self.load_shared_token(host)
    }

    fn wanted(&self, _fields: &NoRoleFields, now: UnixMillis) -> Result<&'static str, UnixMillis> {
        match &self.local {
            None => Ok("no token yet"),
            Some(t) if now >= t.refresh_at_ms => Ok("refresh due"),
            Some(t) => Err(t.refresh_at_ms),
        }
    }

    /// Write the token with a generation above every one seen.
    fn store(
        &mut self,
        host: &dyn Host,
        parsed: AgentToken,
        now: UnixMillis,
    ) -> Result<(TokenRecord, u64), AgentFailure> {
        let schedule = self.timing.schedule(now, parsed.expires_in_ms);
        let local_generation = self.local.as_ref().map_or(0, |t| t.generation);
        let mut record = TokenRecord::new(0, parsed.access_token, now, schedule);
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
        Ok((record, parsed.expires_in_ms))
    }

    fn adopt(
        &mut self,
        host: &dyn Host,
        stored: (TokenRecord, u64),
        now: UnixMillis,
    ) -> TokenUpdate {
        let (record, expires_in_ms) = stored;
        let generation = record.generation;
        let token = CachedToken::from_record(record);
        host.log(
            LogLevel::Info,
            &format!(
                "{}: token fetched (sha256 {}), expires in {} s, refresh in {} s (generation {generation})",
                self.log_prefix(),
                token.fingerprint,
                expires_in_ms / 1000,
                token.refresh_at_ms.saturating_sub(now) / 1000
            ),
        );
        self.local = Some(Rc::new(token));
        TokenUpdate {
            generation,
            expires_in_ms,
        }
    }

    fn retry_delay_ms(
        &self,
        error: &AgentFailure,
        worker_id: u32,
        failures: u32,
        now: UnixMillis,
    ) -> u64 {
        let fetch = self.fetch;
        let backoff = jittered_backoff_ms(
            fetch.retry_initial_ms,
            fetch.retry_max_ms,
            worker_id,
            failures,
            now,
        );
        // The agent knows when it expects a token (e.g. Entra's Retry-After);
        // asking sooner only yields another 503. Capped by retry_max_ms.
        error
            .retry_after_ms()
            .map_or(backoff, |h| backoff.max(h.min(fetch.retry_max_ms)))
    }

    fn kept(&self, now: UnixMillis) -> String {
        match self.usable_local(now) {
            Some(t) => format!(
                "keeping token sha256 {} (usable for {} s more)",
                t.fingerprint,
                t.usable_until_ms.saturating_sub(now) / 1000
            ),
            None => "no usable token: requests get 503".to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
#[path = "coordinator_tests.rs"]
mod tests;
