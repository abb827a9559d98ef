//! The outbound per-worker root context: configuration, ticks, agent callouts.

use std::cell::RefCell;
use std::rc::Rc;

use entragate_core::fetcher::leased_state::{FAST_TICK_MS, SLOW_TICK_MS};
use entragate_core::fetcher::waiters::Waiters;
use entragate_core::host::LogLevel;
use entragate_core::outbound::OutboundPolicy;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::http::OutboundRequest;
use super::metrics::OutboundMetrics;
use super::worker::{apply_step, OutboundWorker, SharedOutbound};
use crate::host::{log, ProxyWasmHost};
use crate::root_hostcalls::{
    allocate_worker_id, callout_response, install_worker, load_configuration, resume_requests,
    schedule_next_tick, tick_now, with_worker,
};

pub struct OutboundRoot {
    context_id: u32,
    worker: SharedOutbound,
}

impl OutboundRoot {
    pub fn new(context_id: u32) -> OutboundRoot {
        OutboundRoot {
            context_id,
            worker: Rc::new(RefCell::new(None)),
        }
    }

    /// Decides the waiters that can be decided and writes each outcome to its
    /// request context. Borrows are released before touching other contexts.
    fn resume_waiters(&self) {
        let Some((decided, names, metrics)) = with_worker(&self.worker, |worker| {
            if worker.waiters.is_empty() {
                return None;
            }
            let decided = worker.drain_waiters();
            let names: Vec<String> = decided
                .iter()
                .map(|(_, waiter, _)| worker.destination_name(waiter.destination).to_string())
                .collect();
            Some((decided, names, worker.metrics.clone()))
        })
        .flatten() else {
            return;
        };
        let decided = decided
            .into_iter()
            .zip(names)
            .map(|((context_id, _, step), name)| (context_id, (step, name)));
        resume_requests(self.context_id, decided, |(step, name)| {
            apply_step(&step, &name, &metrics)
        });
    }
}

impl Context for OutboundRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let response = callout_response(body_size);
        let settled = with_worker(&self.worker, |worker| {
            let coordinator = worker
                .coordinators
                .iter_mut()
                .find(|c| c.awaits(token_id))?;
            let mut host = ProxyWasmHost;
            let outcome = coordinator.on_callout_response(&mut host, token_id, response);
            if let Some(ok) = outcome.fetch_succeeded() {
                worker.metrics.fetch(ok);
            }
            Some(outcome.settled())
        })
        .flatten();
        if settled == Some(true) {
            self.resume_waiters();
        }
    }
}

impl RootContext for OutboundRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // Refusing the configuration makes Envoy refuse the listener
        // rather than send requests without credentials.
        let Some(policy) = load_configuration("entragate outbound", OutboundPolicy::from_json)
        else {
            return false;
        };
        let worker_id = allocate_worker_id();
        let coordinators = policy.coordinators(worker_id);
        log(
            LogLevel::Info,
            &format!(
                "entragate outbound: configuration loaded (worker {worker_id}); {}",
                policy.summary()
            ),
        );
        let worker = OutboundWorker {
            policy: Rc::new(policy),
            coordinators,
            waiters: Waiters::default(),
            metrics: OutboundMetrics::define(),
        };
        install_worker(&self.worker, worker);
        // Tick at once so the token is fetched before the first request.
        tick_now();
        true
    }

    fn on_tick(&mut self) {
        let Some(next_ms) = with_worker(&self.worker, |worker| {
            let mut host = ProxyWasmHost;
            let mut next_ms = SLOW_TICK_MS;
            for coordinator in worker.coordinators.iter_mut() {
                let outcome = coordinator.on_tick(&mut host);
                if outcome.failure.is_some() {
                    worker.metrics.fetch(false);
                }
                next_ms = next_ms.min(outcome.next_tick_ms);
            }
            next_ms
        }) else {
            return;
        };
        // Every tick with waiters checks them: new tokens, settled failures and
        // elapsed deadlines are all found by asking again.
        self.resume_waiters();
        schedule_next_tick(&self.worker, next_ms, FAST_TICK_MS);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(OutboundRequest::new(
            context_id,
            Rc::clone(&self.worker),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
