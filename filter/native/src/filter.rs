//! The inbound (callee) role over the native host: the same `entragate-core`
//! flow the wasm adapter drives, with Envoy's dynamic-module callbacks as the
//! host. Nothing of the validation lives here: this file copies request data
//! in, and writes the core's decision out.
//!
//! Keys come from the main thread's fetch (`jwks.rs`); a request that must
//! wait for them is parked (`waiters.rs`) and resumed on its worker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use entragate_core::error::AuthError;
use entragate_core::host::LogLevel;
use entragate_core::inbound::audit::{audit_record, denial_log_line, wanted_fingerprint};
use entragate_core::inbound::cache::{CacheStats, SharedTokenCache};
use entragate_core::inbound::config::FilterPolicy;
use entragate_core::inbound::engine::{Decision, RequestFlow, Step};
use entragate_core::inbound::jwks::coordinator::JwksCoordinator;
use entragate_core::inbound::jwks::JwksStats;
use entragate_core::inbound::metrics::{
    cache_deltas, jwks_request_deltas, InboundMetric, MetricIds,
};
use entragate_core::inbound::request::{read_request, set_identity_headers};
use entragate_core::options::SignatureBackend;
use entragate_core::response::denial_response;
use entragate_core::token::signature::{PureRustVerifier, SignatureVerifier};

use entragate_core::host::CalloutResponse;

use crate::envoy::{log, ConfigScope, Stream};
use crate::fetch::MainFetch;
use crate::jwks::{now_ms, with_coordinator, with_inbound_thread, NativeHost, PublishedKeys};
use crate::signature::{AwsLc, NativeVerifier};

/// Metric ids, defined once per configuration (Envoy freezes stat creation
/// after `on_http_filter_config_new`) from the core's tables, like the wasm
/// filter's. Envoy prefixes them with the module's metrics namespace instead
/// of `wasmcustom.`.
pub struct Metrics {
    ids: MetricIds<usize>,
    denied: HashMap<&'static str, usize>,
    /// Hooks that panicked (each failed its request closed).
    pub panics: Option<usize>,
}

impl Metrics {
    fn define(scope: ConfigScope) -> Metrics {
        // From the core's refusal table, like the wasm filter: no list of
        // names is kept here.
        let mut denied = HashMap::new();
        for error in AuthError::ALL {
            let counter = error.spec().counter;
            if !denied.contains_key(counter) {
                if let Some(id) = scope.define_counter(counter) {
                    denied.insert(counter, id);
                }
            }
        }
        Metrics {
            ids: MetricIds::define(|kind, name| scope.define(kind, name)),
            denied,
            panics: scope.define_counter("entragate.native.panics"),
        }
    }

    pub fn id(&self, metric: InboundMetric) -> Option<usize> {
        self.ids.get(metric)
    }
}

/// What a request hook ends with (`P`: what a waiting request keeps; the
/// outbound role waits too, with its own).
pub enum Verdict<P = Box<ParkedFlow>> {
    /// Forward the request (identity headers set).
    Continue,
    /// A local reply was sent.
    Answered,
    /// Wait for the keys: park the flow and wake it later (boxed: it is rare,
    /// and keeps the common verdicts small).
    Park(P),
}

/// A request waiting for keys.
pub struct ParkedFlow {
    flow: RequestFlow,
    deadline_ms: u64,
    /// Waiting for an unknown-kid refresh (see `waiters::Parked`).
    forced: bool,
    /// [`MainFetch::seen`] when the flow last looked at the keys.
    seen: u64,
}

impl ParkedFlow {
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    pub fn forced(&self) -> bool {
        self.forced
    }

    /// Keys changed or a fetch settled since this flow looked: waking it at
    /// once closes the race between its look and its registration.
    pub fn missed_wake(&self, config: &Config) -> bool {
        config.fetch.missed(self.seen)
    }
}

/// One `DynamicModuleFilter` configuration: the compiled plugin policy and the
/// state every worker shares (one per Envoy, not one per worker as in wasm).
pub struct Config {
    pub policy: FilterPolicy,
    pub metrics: Metrics,
    /// Names this configuration's per-thread state (token cache, JWKS
    /// coordinator) and its parked requests (`fetch.id`).
    pub id: u64,
    /// The main thread's JWKS fetch.
    pub fetch: MainFetch,
    verifier: Verifier,
    /// One verified-token cache for every worker (not one per worker as in
    /// wasm): a token verified on one worker is a hit on all of them, and
    /// `token_cache_size` bounds the whole Envoy's memory for it.
    token_cache: SharedTokenCache,
    /// The one key set of this configuration in the process: the main
    /// thread's, adopted by every worker.
    keys: PublishedKeys,
}

// Envoy calls a configuration's hooks from every worker thread, through raw
// pointers the compiler cannot follow: check here that sharing it is sound.
const _: () = {
    const fn shared_by_workers<T: Send + Sync>() {}
    shared_by_workers::<Config>();
};

/// `signature_verifier` means the same as in wasm, with the linked crypto
/// crate as "the host's native verifier": `auto` uses it when its self-test
/// passes (else pure Rust, logged), `host` refuses the configuration if it
/// fails, `pure` never uses it.
type Verifier = Box<dyn SignatureVerifier + Send + Sync>;

/// The verifier, and whether it is the native one (the
/// `entragate.signature.native` gauge).
fn choose_verifier(backend: SignatureBackend) -> Result<(Verifier, bool), String> {
    if backend == SignatureBackend::Pure {
        log(
            LogLevel::Info,
            "entragate: signatures checked by pure Rust (signature_verifier: pure)",
        );
        return Ok((Box::new(PureRustVerifier), false));
    }
    let native = NativeVerifier::<AwsLc>::new();
    if native.self_test() {
        log(
            LogLevel::Info,
            "entragate: signatures checked natively (aws-lc-rs)",
        );
        return Ok((Box::new(native), true));
    }
    if backend == SignatureBackend::Host {
        return Err(
            "signature_verifier: host, but the native verifier failed its self-test".into(),
        );
    }
    log(
        LogLevel::Warn,
        "entragate: native verifier failed its self-test; using pure Rust",
    );
    Ok((Box::new(PureRustVerifier), false))
}

impl Config {
    /// Parses and compiles the plugin JSON (the same document the wasm filter
    /// takes) and defines the counters.
    pub fn new(scope: ConfigScope, json: &[u8]) -> Result<Config, String> {
        let policy = FilterPolicy::from_json(json).map_err(|e| e.to_string())?;
        let (verifier, native) = choose_verifier(policy.signature_verifier)?;
        let metrics = Metrics::define(scope);
        let fetch = MainFetch::start(
            scope,
            "jwks",
            metrics.id(InboundMetric::JwksFetchOk),
            metrics.id(InboundMetric::JwksFetchFailed),
        )?;
        let token_cache = SharedTokenCache::new(policy.token_cache_size);
        scope.set_gauge(
            metrics.id(InboundMetric::SignatureNative),
            u64::from(native),
        );
        Ok(Config {
            metrics,
            policy,
            id: fetch.id,
            fetch,
            verifier,
            token_cache,
            keys: PublishedKeys::default(),
        })
    }

    /// Main thread: a scheduled tick of the fetching coordinator.
    pub fn on_main_tick(&self, scope: ConfigScope) {
        let keys_loaded = with_coordinator(self.id, &self.policy.jwks, true, |c| {
            self.fetch
                .on_tick(scope, std::slice::from_mut(c), |c| self.publish(c));
            c.keys_loaded()
        });
        // The main thread's coordinator holds the one key set every worker adopts.
        scope.set_gauge(
            self.metrics.id(InboundMetric::JwksKeysLoaded),
            keys_loaded as u64,
        );
    }

    /// Main thread, before any waiter is woken: hands the fetched key set to
    /// every worker. Only when the keys themselves changed (not at each
    /// refresh that found the same keys) do tokens verified with a key the
    /// IdP no longer publishes leave the shared cache (hits re-check the key
    /// anyway; this frees their memory instead of waiting for eviction).
    fn publish(&self, coordinators: &[JwksCoordinator]) {
        for shared in coordinators.iter().filter_map(JwksCoordinator::shared_keys) {
            let keys = Arc::clone(&shared.keys);
            if !self.keys.publish(shared) {
                continue;
            }
            let dropped = self.token_cache.retain_keys(&keys);
            if dropped > 0 {
                log(
                    LogLevel::Info,
                    &format!(
                        "entragate: key set changed; {dropped} cached token(s) of removed keys dropped"
                    ),
                );
            }
        }
    }

    /// Main thread: the answer to a JWKS (or discovery) callout.
    pub fn on_main_callout(&self, scope: ConfigScope, id: u64, response: CalloutResponse) {
        with_coordinator(self.id, &self.policy.jwks, true, |c| {
            self.fetch
                .on_callout(scope, std::slice::from_mut(c), id, response, |c| {
                    self.publish(c)
                })
        });
        // Let the coordinator plan what comes next (refresh, retry) now.
        self.on_main_tick(scope);
    }

    /// Runs the request through the core: a decision, or a flow to park
    /// until the keys change.
    pub fn on_request_headers(&self, stream: Stream) -> Verdict {
        // Reads the request and strips spoofed claim headers (in the core).
        let mut headers = stream;
        let input = read_request(&mut headers, &self.policy);
        #[cfg(feature = "test-panic")]
        if input.path.starts_with("/__entragate_test_panic") {
            #[allow(clippy::panic)]
            {
                panic!("entragate test-panic feature: deliberate panic");
            }
        }
        let deadline_ms = now_ms().saturating_add(self.policy.jwks.request_wait_ms);
        self.step(stream, RequestFlow::new(input), false, deadline_ms)
    }

    /// A parked request was woken: decide it now, or park it again.
    pub fn resume(&self, stream: Stream, parked: Box<ParkedFlow>) -> Verdict {
        let ParkedFlow {
            mut flow,
            deadline_ms,
            forced: _,
            seen: _,
        } = *parked;
        if now_ms() >= deadline_ms {
            let decision = flow.on_wait_timeout();
            return self.decide(stream, &decision, &flow);
        }
        self.step(stream, flow, true, deadline_ms)
    }

    fn step(
        &self,
        stream: Stream,
        mut flow: RequestFlow,
        resume: bool,
        deadline_ms: u64,
    ) -> Verdict {
        let seen = self.fetch.seen();
        let host = NativeHost { config: None };
        let verifier = self.verifier.as_ref();
        // One visit to this worker's state: the keys, then the flow with the
        // worker's recent tokens in front of the shared cache.
        let (step, pulled_forward, cache_stats) =
            with_inbound_thread(self.id, &self.policy.jwks, false, |thread| {
                self.keys.bring_up_to_date(&mut thread.coordinator);
                let early_retries = thread.coordinator.stats().early_retries;
                let keys = thread.coordinator.keys(&host);
                let pulled_forward = thread.coordinator.stats().early_retries > early_retries;
                let mut cache = self.token_cache.handle_with(&mut thread.recent);
                let step = if resume {
                    flow.on_keys_changed(&self.policy, &keys, verifier, &mut cache, now_secs())
                } else {
                    flow.start_verify(&self.policy, &keys, verifier, &mut cache, now_secs())
                };
                (step, pulled_forward, cache.stats())
            });
        if pulled_forward {
            // This request made a backed-off retry due now, but the main
            // thread's next tick was planned for the backoff (up to a second
            // away): tick at once, as wasm does for every parked request,
            // whatever this request's own outcome.
            self.fetch.tick_now();
        }
        // Counted per request (no root tick here): what this request's lookups did.
        for (metric, delta) in cache_deltas(cache_stats, CacheStats::default()) {
            stream.add(self.metrics.id(metric), delta);
        }
        let decision = match step {
            Step::Done(decision) => decision,
            Step::AwaitKeys { force_refresh } => {
                let (granted, stats) = with_coordinator(self.id, &self.policy.jwks, false, |c| {
                    let granted = !force_refresh || c.request_refresh_for_unknown_kid(&host);
                    (granted, c.stats())
                });
                // Refreshes and early retries only move on a request that waits.
                self.flush_jwks_requests(stream, stats);
                if !granted {
                    flow.on_refresh_refused()
                } else {
                    if force_refresh {
                        // Fetched at once; other waits are already planned.
                        self.fetch.tick_now();
                    }
                    return Verdict::Park(Box::new(ParkedFlow {
                        flow,
                        deadline_ms,
                        forced: force_refresh,
                        seen,
                    }));
                }
            }
        };
        self.decide(stream, &decision, &flow)
    }

    /// Adds what this worker's coordinator counted for its requests since
    /// the last call.
    fn flush_jwks_requests(&self, stream: Stream, stats: JwksStats) {
        JWKS_FLUSHED.with(|flushed| {
            let mut flushed = flushed.borrow_mut();
            let before = flushed.entry(self.id).or_default();
            for (metric, delta) in jwks_request_deltas(stats, *before) {
                stream.add(self.metrics.id(metric), delta);
            }
            *before = stats;
        });
    }

    fn decide(&self, stream: Stream, decision: &Decision, flow: &RequestFlow) -> Verdict {
        if self.apply(stream, decision, flow) {
            Verdict::Continue
        } else {
            Verdict::Answered
        }
    }

    fn apply(&self, stream: Stream, decision: &Decision, flow: &RequestFlow) -> bool {
        let input = flow.input();
        let audit_fields = self.policy.audit_fields;
        // Hashed at most once, for the audit record and the log line.
        let token_hash = wanted_fingerprint(audit_fields, decision, input, flow.audit());
        if audit_fields {
            publish_audit(stream, decision, flow, token_hash.as_deref());
        }
        match decision {
            Decision::Allow { set_headers, .. } => {
                let mut headers = stream;
                set_identity_headers(&mut headers, set_headers);
                stream.increment(self.metrics.id(if flow.audit().token_verified {
                    InboundMetric::Allowed
                } else {
                    InboundMetric::AllowedAnonymous
                }));
                true
            }
            Decision::Deny(denial) => {
                let response = denial_response(denial, &self.policy.realm);
                stream.increment(
                    self.metrics
                        .denied
                        .get(denial.error.spec().counter)
                        .copied(),
                );
                log(
                    LogLevel::Info,
                    &denial_log_line(input, response.status, denial.error, token_hash.as_deref()),
                );
                stream.send_response(
                    response.status,
                    &response.headers,
                    &response.body,
                    "entragate_denied",
                );
                false
            }
        }
    }
}

/// Publishes the decision's audit fields as filter state under the keys the wasm
/// filter's properties get (`wasm.entragate_*`), so one access-log format reads
/// both hosts (`%FILTER_STATE(wasm.entragate_decision:PLAIN)%`). Called once per
/// request, when it is decided. Best effort, as in wasm: a refused write loses
/// an audit field, never the decision.
fn publish_audit(
    stream: Stream,
    decision: &Decision,
    flow: &RequestFlow,
    token_fingerprint: Option<&str>,
) {
    for (field, value) in audit_record(decision, flow.audit(), token_fingerprint) {
        stream.set_filter_state(field.filter_state_key(), &value);
    }
}

thread_local! {
    /// Each worker's JWKS request counts already added to the counters.
    static JWKS_FLUSHED: RefCell<HashMap<u64, JwksStats>> = RefCell::new(HashMap::new());
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
