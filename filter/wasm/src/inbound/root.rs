//! The per-worker root context: configuration, ticks and the JWKS callouts.

use std::cell::RefCell;
use std::rc::Rc;

use entragate_core::fetcher::waiters::Waiters;
use entragate_core::host::LogLevel;
use entragate_core::inbound::cache::VerifiedTokenCache;
use entragate_core::inbound::config::FilterPolicy;
use entragate_core::inbound::jwks::coordinator::JwksCoordinator;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::host::{log, ProxyWasmHost};
use crate::inbound::apply::apply_decision;
use crate::inbound::http::AuthRequest;
use crate::inbound::metrics::Metrics;
use crate::inbound::signatures;
use crate::inbound::worker::{SharedWorker, Worker};
use crate::root_hostcalls::{
    allocate_worker_id, callout_response, install_worker, load_configuration, reject_configuration,
    resume_requests, schedule_next_tick, tick_now, with_worker,
};

/// Tick period while requests of this worker wait for keys: they are resumed
/// at the latest this long after another worker's fetch lands in shared data.
const WAITER_POLL_MS: u64 = 5;

pub struct AuthRoot {
    context_id: u32,
    worker: SharedWorker,
}

impl AuthRoot {
    pub fn new(context_id: u32) -> AuthRoot {
        AuthRoot {
            context_id,
            worker: Rc::new(RefCell::new(None)),
        }
    }

    /// Decides the waiters that can be decided and writes each decision to its
    /// request context. Borrows are released before touching other contexts.
    fn resume_waiters(&self, keys_settled: bool) {
        let Some((decided, realm, audit_fields, metrics)) = with_worker(&self.worker, |worker| {
            if worker.waiters.is_empty() {
                return None;
            }
            Some((
                worker.drain_waiters(keys_settled),
                worker.policy.realm.clone(),
                worker.policy.audit_fields,
                worker.metrics.clone(),
            ))
        })
        .flatten() else {
            return;
        };
        let decided = decided
            .into_iter()
            .map(|(context_id, waiter, decision)| (context_id, (waiter.flow, decision)));
        resume_requests(self.context_id, decided, |(flow, decision)| {
            apply_decision(&decision, &realm, audit_fields, &metrics, &flow)
        });
    }
}

impl Context for AuthRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let response = callout_response(body_size);
        let Some(settled) = with_worker(&self.worker, |worker| {
            let mut host = ProxyWasmHost;
            let outcome = worker
                .coordinator
                .on_callout_response(&mut host, token_id, response);
            if let Some(ok) = outcome.fetch_succeeded() {
                worker.metrics.jwks_fetch(ok);
            }
            worker.metrics.keys_loaded(worker.coordinator.keys_loaded());
            outcome.settled()
        }) else {
            return;
        };
        self.resume_waiters(settled);
    }
}

impl RootContext for AuthRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // Rejecting the configuration makes Envoy refuse the listener
        // instead of serving without authentication.
        let Some(policy) = load_configuration("entragate", FilterPolicy::from_json) else {
            return false;
        };
        // Probed once per configuration: a host without a working
        // verify_signature gets the pure-Rust verifier (or, with
        // `signature_verifier: host`, a refused configuration).
        let selected = match signatures::select(policy.signature_verifier) {
            Ok(selected) => selected,
            Err(reason) => {
                reject_configuration("entragate", reason);
                return false;
            }
        };
        let worker_id = allocate_worker_id();
        let coordinator = JwksCoordinator::new(policy.jwks.clone(), worker_id);
        let metrics = Metrics::define();
        metrics.signature_native(selected.native);
        log(
            LogLevel::Info,
            &format!(
                "entragate: signatures checked by {}; token cache {} entries (worker {worker_id})",
                selected.description, policy.token_cache_size
            ),
        );
        let worker = Worker {
            token_cache: VerifiedTokenCache::new(policy.token_cache_size),
            cache_generation: None,
            policy: Rc::new(policy),
            coordinator,
            verifier: selected.verifier,
            waiters: Waiters::default(),
            metrics,
        };
        install_worker(&self.worker, worker);
        log(
            LogLevel::Info,
            &format!("entragate: configuration loaded (worker {worker_id})"),
        );
        // Tick at once so the JWKS is prefetched before the first request.
        tick_now();
        true
    }

    fn on_tick(&mut self) {
        let Some((settled, next_ms)) = with_worker(&self.worker, |worker| {
            let mut host = ProxyWasmHost;
            let outcome = worker.coordinator.on_tick(&mut host);
            if outcome.failure.is_some() {
                worker.metrics.jwks_fetch(false);
            }
            worker.metrics.keys_loaded(worker.coordinator.keys_loaded());
            // Cache and request-driven JWKS counters are batched here rather
            // than bumped per request.
            worker.metrics.token_cache(worker.token_cache.stats());
            worker.metrics.jwks_requests(worker.coordinator.stats());
            (
                outcome.changed || outcome.recheck_waiters,
                outcome.next_tick_ms,
            )
        }) else {
            return;
        };
        self.resume_waiters(settled);
        schedule_next_tick(&self.worker, next_ms, WAITER_POLL_MS);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthRequest::new(
            context_id,
            Rc::clone(&self.worker),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
