//! The inbound (callee) role over the native host: the same `entragate-core`
//! flow the wasm adapter drives, with Envoy's dynamic-module callbacks as the
//! host. Nothing of the validation lives here: this file copies request data
//! in, and writes the core's decision out.
//!
//! Not wired yet (next step, after the core's generic single-flight fetcher
//! lands): the JWKS fetch. Until then the key store is `Unavailable`, so a
//! request that needs a token is refused with the core's 503 (fail closed),
//! while anonymous routes, missing/duplicated/malformed credentials and
//! unmatched routes are answered exactly as by the wasm filter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use entragate_core::cache::VerifiedTokenCache;
use entragate_core::config::FilterPolicy;
use entragate_core::engine::{Decision, KeysView, RequestFlow, RequestInput, Step};
use entragate_core::error::AuthError;
use entragate_core::fingerprint::{fingerprint, loggable_path};
use entragate_core::host::LogLevel;
use entragate_core::response::denial_response;
use entragate_core::token::signature::PureRustVerifier;

use crate::envoy::{log, ConfigScope, Stream};

/// Counter ids, defined once per configuration (Envoy freezes stat creation
/// after `on_http_filter_config_new`). Names match the wasm filter's; Envoy
/// prefixes them with the module's metrics namespace instead of `wasmcustom.`.
pub struct Metrics {
    allowed: Option<usize>,
    allowed_anonymous: Option<usize>,
    denied: HashMap<&'static str, usize>,
    /// Hooks that panicked (each failed its request closed).
    pub panics: Option<usize>,
}

impl Metrics {
    fn define(scope: ConfigScope) -> Metrics {
        let mut denied = HashMap::new();
        for error in AuthError::ALL {
            let metric = error.metric();
            if !denied.contains_key(metric) {
                if let Some(id) = scope.define_counter(&format!("entragate.denied.{metric}")) {
                    denied.insert(metric, id);
                }
            }
        }
        Metrics {
            allowed: scope.define_counter("entragate.allowed"),
            allowed_anonymous: scope.define_counter("entragate.allowed_anonymous"),
            denied,
            panics: scope.define_counter("entragate.native.panics"),
        }
    }
}

/// One `DynamicModuleFilter` configuration: the compiled plugin policy and the
/// state every worker shares (one per Envoy, not one per worker as in wasm).
pub struct Config {
    pub policy: FilterPolicy,
    pub metrics: Metrics,
    /// Bounded; entries never outlive their token's `exp` (the core checks
    /// claims again on every hit). Shared by all workers.
    cache: Mutex<VerifiedTokenCache>,
}

impl Config {
    /// Parses and compiles the plugin JSON (the same document the wasm filter
    /// takes) and defines the counters.
    pub fn new(scope: ConfigScope, json: &[u8]) -> Result<Config, String> {
        let policy = FilterPolicy::from_json(json).map_err(|e| e.to_string())?;
        let cache = Mutex::new(VerifiedTokenCache::new(policy.token_cache_size));
        Ok(Config {
            metrics: Metrics::define(scope),
            policy,
            cache,
        })
    }

    /// Runs the request through the core and applies the decision. Returns true
    /// when the request may continue upstream.
    pub fn on_request_headers(&self, stream: Stream) -> bool {
        let input = RequestInput {
            method: stream.request_header_first(":method").unwrap_or_default(),
            path: stream.request_header_first(":path").unwrap_or_default(),
            authorization: stream.request_header_values("authorization"),
        };
        #[cfg(feature = "test-panic")]
        if input.path.starts_with("/__entragate_test_panic") {
            #[allow(clippy::panic)]
            {
                panic!("entragate test-panic feature: deliberate panic");
            }
        }
        // Strip claim headers first, on every route: a caller must never inject
        // what the upstream treats as verified identity.
        for name in self.policy.claim_headers.names() {
            stream.remove_request_header(name);
        }

        let mut flow = RequestFlow::new(input);
        let step = {
            // A panic while the lock was held leaves at worst a stale entry,
            // which the core re-validates (key still present, claims still
            // valid now) before trusting: keep serving rather than fail forever.
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            flow.start_verify(
                &self.policy,
                KeysView::Unavailable,
                &PureRustVerifier,
                &mut cache,
                now_secs(),
            )
        };
        let decision = match step {
            Step::Done(decision) => decision,
            // No fetch to wait for yet (see the module doc): fail closed.
            Step::AwaitKeys { .. } => flow.on_wait_timeout(),
        };
        self.apply(stream, &decision, &flow)
    }

    fn apply(&self, stream: Stream, decision: &Decision, flow: &RequestFlow) -> bool {
        match decision {
            Decision::Allow { set_headers, .. } => {
                for (name, value) in set_headers {
                    stream.set_request_header(name, value);
                }
                stream.increment(if flow.audit().token_verified {
                    self.metrics.allowed
                } else {
                    self.metrics.allowed_anonymous
                });
                true
            }
            Decision::Deny(denial) => {
                let response = denial_response(denial, &self.policy.realm);
                stream.increment(self.metrics.denied.get(denial.error.metric()).copied());
                let input = flow.input();
                let token_hash = input.authorization.first().map(|a| fingerprint(a));
                log(
                    LogLevel::Info,
                    &format!(
                        "entragate: denied {} {} status={} reason={} token_sha256={}",
                        input.method.escape_debug(),
                        // Never the query string: it may carry a credential.
                        loggable_path(&input.path).escape_debug(),
                        response.status,
                        denial.error.metric(),
                        token_hash.as_deref().unwrap_or("-")
                    ),
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

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
