//! The outbound per-worker root context: configuration, ticks, agent callouts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use entragate_core::host::{CalloutResponse, LogLevel};
use entragate_core::jwks::coordinator::{FAST_TICK_MS, SLOW_TICK_MS};
use entragate_core::outbound::{OutboundPolicy, TokenCoordinator};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::http::OutboundRequest;
use super::metrics::OutboundMetrics;
use super::worker::{apply_step, OutboundWorker, SharedOutbound};
use crate::host::{log, ProxyWasmHost};

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
        let (decided, names, metrics) = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
            if worker.waiters.is_empty() {
                return;
            }
            let decided = worker.drain_waiters();
            let names: Vec<String> = decided
                .iter()
                .map(|(_, destination, _)| worker.destination_name(*destination).to_string())
                .collect();
            (decided, names, worker.metrics.clone())
        };
        for ((context_id, _, step), name) in decided.iter().zip(names) {
            // The request may be gone (client disconnected): nothing to do then.
            if hostcalls::set_effective_context(*context_id).is_err() {
                continue;
            }
            if apply_step(step, &name, &metrics) {
                let _ = hostcalls::resume_http_request();
            }
        }
        let _ = hostcalls::set_effective_context(self.context_id);
    }

    fn schedule_next_tick(&self, suggested_ms: u64) {
        let has_waiters = self
            .worker
            .try_borrow()
            .map(|w| w.as_ref().is_some_and(|w| !w.waiters.is_empty()))
            .unwrap_or(false);
        // Waiters are resumed by this worker's tick when another worker's
        // fetch lands, and their deadlines are checked on ticks too.
        let period = if has_waiters {
            suggested_ms.min(FAST_TICK_MS)
        } else {
            suggested_ms
        };
        let _ = hostcalls::set_tick_period(Duration::from_millis(period.max(1)));
    }
}

/// A number unique to this VM within the Envoy process (shared-data counter),
/// to tell fetch-lease owners apart. Same counter as the callee role's.
fn allocate_worker_id() -> u32 {
    const KEY: &str = "entragate.worker_seq";
    for _ in 0..16 {
        let (current, cas) = hostcalls::get_shared_data(KEY).unwrap_or((None, None));
        let value = current
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0)
            .wrapping_add(1);
        if hostcalls::set_shared_data(KEY, Some(&value.to_le_bytes()), cas).is_ok() {
            return value;
        }
    }
    // Contention never resolves in practice; the time is a good-enough fallback.
    (crate::host::now_ms() & 0xffff_ffff) as u32
}

impl Context for OutboundRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u16>().ok());
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let settled = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
            let Some(coordinator) = worker.coordinators.iter_mut().find(|c| c.awaits(token_id))
            else {
                return;
            };
            let mut host = ProxyWasmHost;
            let outcome = coordinator.on_callout_response(
                &mut host,
                token_id,
                CalloutResponse { status, body },
            );
            if let Some(ok) = outcome.fetch_succeeded() {
                worker.metrics.fetch(ok);
            }
            outcome.settled()
        };
        if settled {
            self.resume_waiters();
        }
    }
}

impl RootContext for OutboundRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let policy = match OutboundPolicy::from_json(&bytes) {
            Ok(policy) => policy,
            Err(error) => {
                // Refusing the configuration makes Envoy refuse the listener
                // rather than send requests without credentials.
                log(
                    LogLevel::Error,
                    &format!("entragate outbound: rejected plugin configuration: {error}"),
                );
                return false;
            }
        };
        let worker_id = allocate_worker_id();
        let coordinators = policy
            .sources
            .iter()
            .map(|source| {
                TokenCoordinator::new(
                    &policy.agent,
                    source,
                    policy.timing,
                    policy.fetch,
                    worker_id,
                )
            })
            .collect();
        let summary: Vec<String> = policy
            .destinations
            .iter()
            .map(|d| {
                let scope = policy
                    .sources
                    .get(d.source)
                    .map_or("?", |s| s.scope.as_str());
                format!("{} ({scope})", d.name)
            })
            .collect();
        log(
            LogLevel::Info,
            &format!(
                "entragate outbound: configuration loaded (worker {worker_id}); agent cluster {}, destinations: {}",
                policy.agent.cluster,
                summary.join(", ")
            ),
        );
        let worker = OutboundWorker {
            policy: Rc::new(policy),
            coordinators,
            waiters: BTreeMap::new(),
            metrics: OutboundMetrics::define(),
        };
        if let Ok(mut guard) = self.worker.try_borrow_mut() {
            *guard = Some(worker);
        }
        // Tick at once so the token is fetched before the first request.
        let _ = hostcalls::set_tick_period(Duration::from_millis(1));
        true
    }

    fn on_tick(&mut self) {
        let next_ms = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
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
        };
        // Every tick with waiters checks them: new tokens, settled failures and
        // elapsed deadlines are all found by asking again.
        self.resume_waiters();
        self.schedule_next_tick(next_ms);
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
