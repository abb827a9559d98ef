//! State shared by the root context and the request contexts of one worker VM.
//!
//! Envoy runs one VM per worker thread, so this is single-threaded: an
//! `Rc<RefCell<..>>` is enough. Cross-worker state (the JWKS) lives in shared
//! data and is managed by the core's `JwksCoordinator`.

use std::cell::RefCell;
use std::rc::Rc;

use entragate_core::fetcher::waiters::Waiters;
use entragate_core::inbound::cache::VerifiedTokenCache;
use entragate_core::inbound::config::FilterPolicy;
use entragate_core::inbound::engine::{Decision, RequestFlow, Step};
use entragate_core::inbound::jwks::coordinator::{JwksCoordinator, KeyAvailability};
use entragate_core::token::signature::SignatureVerifier;

use crate::host::{now_ms, ProxyWasmHost};
use crate::inbound::metrics::Metrics;
use crate::root_hostcalls::PausingWorker;

/// A request paused until the JWKS changes (or its wait bound elapses).
pub struct Waiter {
    pub flow: RequestFlow,
    /// Waiting for an unknown-kid refresh: only a key-set change (or the end of
    /// the fetch) may resume it, otherwise it would be denied before the refresh.
    pub forced_refresh: bool,
}

pub struct Worker {
    pub policy: Rc<FilterPolicy>,
    pub coordinator: JwksCoordinator,
    pub verifier: Box<dyn SignatureVerifier>,
    /// Tokens this worker verified. Per worker on purpose: a hit costs no
    /// hostcall (see docs/performance.md for the shared-data measurement).
    pub token_cache: VerifiedTokenCache,
    /// Key-set generation the cache was last pruned for.
    pub cache_generation: Option<u64>,
    /// Paused requests by context id. Entries are removed when resumed or when
    /// the request context is destroyed (client went away).
    pub waiters: Waiters<Waiter>,
    pub metrics: Metrics,
}

pub type SharedWorker = Rc<RefCell<Option<Worker>>>;

impl PausingWorker for Worker {
    fn has_waiters(&self) -> bool {
        !self.waiters.is_empty()
    }
}

/// What a verification attempt produced.
pub enum Outcome {
    Decided(Decision),
    /// Keep (or start) waiting; `forced_refresh` as in [`Waiter`].
    Wait {
        forced_refresh: bool,
    },
}

impl Worker {
    /// Runs the request flow one step against the current key availability.
    /// `resume` selects `on_keys_changed` (a waiter) over `start_verify`.
    pub fn run(&mut self, flow: &mut RequestFlow, resume: bool) -> Outcome {
        let host = ProxyWasmHost;
        let now_secs = (now_ms() / 1000) as i64;
        let availability = self.coordinator.keys(&host);
        // A new key set drops the entries of keys that left it (hits check
        // membership anyway; this frees their memory at once).
        if let KeyAvailability::Ready(keys) = &availability {
            let generation = self.coordinator.local_generation();
            if generation != self.cache_generation {
                self.token_cache.retain_keys(keys);
                self.cache_generation = generation;
            }
        }
        let policy = Rc::clone(&self.policy);
        let cache = &mut self.token_cache;
        let step = if resume {
            flow.on_keys_changed(
                &policy,
                &availability,
                self.verifier.as_ref(),
                cache,
                now_secs,
            )
        } else {
            flow.start_verify(
                &policy,
                &availability,
                self.verifier.as_ref(),
                cache,
                now_secs,
            )
        };
        match step {
            Step::Done(decision) => Outcome::Decided(decision),
            Step::AwaitKeys { force_refresh } => {
                if force_refresh && !self.coordinator.request_refresh_for_unknown_kid(&host) {
                    Outcome::Decided(flow.on_refresh_refused())
                } else {
                    Outcome::Wait {
                        forced_refresh: force_refresh,
                    }
                }
            }
        }
    }

    /// Decides every waiter that can be decided now: timed out, or resumable
    /// because the keys changed / the fetch finished (`keys_settled`).
    pub fn drain_waiters(&mut self, keys_settled: bool) -> Vec<(u32, Waiter, Decision)> {
        // Taken out while deciding: `run` needs the whole worker.
        let mut waiters = core::mem::take(&mut self.waiters);
        let decided = waiters.drain(now_ms(), |waiter, waited| {
            if waited.timed_out {
                return Some(waiter.flow.on_wait_timeout());
            }
            if waiter.forced_refresh && !keys_settled {
                return None;
            }
            match self.run(&mut waiter.flow, true) {
                Outcome::Decided(decision) => Some(decision),
                Outcome::Wait { forced_refresh } => {
                    waiter.forced_refresh = forced_refresh;
                    None
                }
            }
        });
        self.waiters = waiters;
        decided
    }
}
