//! The per-worker root context: configuration, ticks and the JWKS callouts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use entragate_core::cache::VerifiedTokenCache;
use entragate_core::config::FilterPolicy;
use entragate_core::host::{CalloutResponse, LogLevel};
use entragate_core::jwks::coordinator::JwksCoordinator;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use crate::apply::{apply_decision, LogContext};
use crate::host::{log, ProxyWasmHost};
use crate::http::AuthRequest;
use crate::metrics::Metrics;
use crate::signatures;
use crate::worker::{SharedWorker, Worker};

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
        let (decided, realm, metrics) = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
            if worker.waiters.is_empty() {
                return;
            }
            (
                worker.drain_waiters(keys_settled),
                worker.policy.realm.clone(),
                worker.metrics.clone(),
            )
        };
        for (context_id, flow, decision) in decided {
            // The request may be gone (client disconnected): then there is nothing to do.
            if hostcalls::set_effective_context(context_id).is_err() {
                continue;
            }
            let input = flow.input();
            let ctx = LogContext {
                method: &input.method,
                path: &input.path,
                authorization: input.authorization.first().map(String::as_str),
            };
            if apply_decision(&decision, &realm, &metrics, &ctx) {
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
        let period = if has_waiters {
            suggested_ms.min(WAITER_POLL_MS)
        } else {
            suggested_ms
        };
        let _ = hostcalls::set_tick_period(Duration::from_millis(period.max(1)));
    }

    /// A number unique to this VM within the Envoy process (shared-data counter),
    /// used to tell fetch-lease owners apart.
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
}

impl Context for AuthRoot {
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
        let response = CalloutResponse { status, body };
        let settled = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
            let mut host = ProxyWasmHost;
            let outcome = worker
                .coordinator
                .on_callout_response(&mut host, token_id, response);
            if let Some(ok) = outcome.fetch_succeeded() {
                worker.metrics.jwks_fetch(ok);
            }
            worker.metrics.keys_loaded(worker.coordinator.keys_loaded());
            outcome.settled()
        };
        self.resume_waiters(settled);
    }
}

impl RootContext for AuthRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let policy = match FilterPolicy::from_json(&bytes) {
            Ok(policy) => policy,
            Err(error) => {
                // Rejecting the configuration makes Envoy refuse the listener
                // instead of serving without authentication.
                log(
                    LogLevel::Error,
                    &format!("entragate: rejected plugin configuration: {error}"),
                );
                return false;
            }
        };
        // Probed once per configuration: a host without a working
        // verify_signature gets the pure-Rust verifier (or, with
        // `signature_verifier: host`, a refused configuration).
        let selected = match signatures::select(policy.signature_verifier) {
            Ok(selected) => selected,
            Err(reason) => {
                log(
                    LogLevel::Error,
                    &format!("entragate: rejected plugin configuration: {reason}"),
                );
                return false;
            }
        };
        let worker_id = Self::allocate_worker_id();
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
        #[cfg(feature = "shared-cache-experiment")]
        let (selected, policy) = {
            let mut policy = policy;
            policy.token_cache_size = 0;
            let verifier = Box::new(crate::shared_memo::SharedMemoVerifier {
                inner: selected.verifier,
            });
            log(
                LogLevel::Warn,
                "entragate: EXPERIMENT shared-data token memo",
            );
            (
                signatures::Selected {
                    verifier,
                    ..selected
                },
                policy,
            )
        };
        let worker = Worker {
            token_cache: VerifiedTokenCache::new(policy.token_cache_size),
            cache_generation: None,
            policy: Rc::new(policy),
            coordinator,
            verifier: selected.verifier,
            waiters: BTreeMap::new(),
            metrics,
        };
        if let Ok(mut guard) = self.worker.try_borrow_mut() {
            *guard = Some(worker);
        }
        log(
            LogLevel::Info,
            &format!("entragate: configuration loaded (worker {worker_id})"),
        );
        // Tick at once so the JWKS is prefetched before the first request.
        let _ = hostcalls::set_tick_period(Duration::from_millis(1));
        true
    }

    fn on_tick(&mut self) {
        let (settled, next_ms) = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
            let mut host = ProxyWasmHost;
            let outcome = worker.coordinator.on_tick(&mut host);
            if outcome.failure.is_some() {
                worker.metrics.jwks_fetch(false);
            }
            worker.metrics.keys_loaded(worker.coordinator.keys_loaded());
            // Cache counters are batched here rather than bumped per request.
            worker.metrics.token_cache(worker.token_cache.stats());
            (
                outcome.keys_changed || outcome.recheck_waiters,
                outcome.next_tick_ms,
            )
        };
        self.resume_waiters(settled);
        self.schedule_next_tick(next_ms);
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
