//! The outbound (caller) role over the native host: the same
//! `entragate_core::outbound` flow the wasm adapter drives. This file copies
//! request data in (authority, `Authorization` present, upstream cluster) and
//! writes the core's step out (the token attached, or the core's refusal).
//!
//! The agent token is fetched once per Envoy on the main thread (`fetch.rs`,
//! the same driver as the JWKS); workers read it from the process store
//! through their own reading coordinators. A request that must wait for the
//! first token is parked and resumed exactly as an inbound one (`waiters.rs`).
//!
//! Selected by `filter_name: entragate_outbound` (the wasm filter's
//! `root_id` for the same role), with the same plugin JSON.

use std::collections::HashMap;

use entragate_core::error::OutboundError;
use entragate_core::host::{CalloutResponse, LogLevel, RequestHeaders};
use entragate_core::outbound::{
    inject, plan, step, wait_timeout, ForwardReason, OutboundMetric, OutboundMetricIds,
    OutboundPolicy, Plan, Refusal, Step, TokenCoordinator,
};

use crate::envoy::{log, ConfigScope, Stream};
use crate::fetch::{with_thread_state, MainFetch};
use crate::filter::Verdict;
use crate::jwks::{now_ms, NativeHost};

/// The `filter_name` that selects this role (as `root_id` does for wasm).
pub const OUTBOUND_FILTER_NAME: &str = "entragate_outbound";

/// Counter ids, defined at configuration time from the core's tables (the
/// wasm filter's names, with the dynamic-module prefix).
struct Metrics {
    ids: OutboundMetricIds<usize>,
    refused: HashMap<&'static str, usize>,
    panics: Option<usize>,
}

impl Metrics {
    fn define(scope: ConfigScope) -> Metrics {
        let mut refused = HashMap::new();
        for error in OutboundError::ALL {
            let counter = error.spec().counter;
            if !refused.contains_key(counter) {
                if let Some(id) = scope.define_counter(counter) {
                    refused.insert(counter, id);
                }
            }
        }
        Metrics {
            ids: OutboundMetricIds::define(|kind, name| scope.define(kind, name)),
            refused,
            panics: scope.define_counter("entragate.native.panics"),
        }
    }

    fn id(&self, metric: OutboundMetric) -> Option<usize> {
        self.ids.get(metric)
    }
}

/// A request waiting for its destination's token.
pub struct Waiting {
    source: usize,
    destination: usize,
    started_ms: u64,
    deadline_ms: u64,
    /// [`MainFetch::seen`] when it last looked at the token.
    seen: u64,
}

impl Waiting {
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// A fetch settled since this request looked: wake it at once.
    pub fn missed_wake(&self, config: &OutboundConfig) -> bool {
        config.fetch.missed(self.seen)
    }
}

/// One outbound `DynamicModuleFilter` configuration.
pub struct OutboundConfig {
    policy: OutboundPolicy,
    metrics: Metrics,
    /// The main thread's agent-token fetch (one per Envoy).
    pub fetch: MainFetch,
}

// Shared by every worker through Envoy's raw pointers (see filter.rs).
const _: () = {
    const fn shared_by_workers<T: Send + Sync>() {}
    shared_by_workers::<OutboundConfig>();
};

impl OutboundConfig {
    /// Parses and compiles the plugin JSON (the wasm filter's outbound
    /// document) and defines the counters; a refusal names the field.
    pub fn new(scope: ConfigScope, json: &[u8]) -> Result<OutboundConfig, String> {
        let policy = OutboundPolicy::from_json(json).map_err(|e| e.to_string())?;
        let metrics = Metrics::define(scope);
        let fetch = MainFetch::start(
            scope,
            "agent",
            metrics.id(OutboundMetric::AgentFetchOk),
            metrics.id(OutboundMetric::AgentFetchFailed),
        )?;
        log(
            LogLevel::Info,
            &format!(
                "entragate outbound: configuration loaded; {}",
                policy.summary()
            ),
        );
        Ok(OutboundConfig {
            policy,
            metrics,
            fetch,
        })
    }

    pub fn panics(&self) -> Option<usize> {
        self.metrics.panics
    }

    /// Runs `body` with this thread's coordinators (one per token source,
    /// in the policy's order): fetching on the main thread, reading on a worker.
    fn with_coordinators<T>(
        &self,
        main: bool,
        body: impl FnOnce(&mut Vec<TokenCoordinator>) -> T,
    ) -> T {
        let policy = &self.policy;
        with_thread_state(
            self.fetch.id,
            main,
            |worker_id| policy.coordinators(worker_id),
            body,
        )
    }

    /// Main thread: a scheduled tick of the fetching coordinators.
    pub fn on_main_tick(&self, scope: ConfigScope) {
        self.with_coordinators(true, |coordinators| {
            self.fetch.on_tick(scope, coordinators, |_| {});
        });
    }

    /// Main thread: the agent's answer to a token callout.
    pub fn on_main_callout(&self, scope: ConfigScope, id: u64, response: CalloutResponse) {
        self.with_coordinators(true, |coordinators| {
            self.fetch
                .on_callout(scope, coordinators, id, response, |_| {});
        });
        self.on_main_tick(scope);
    }

    /// Routes the request through the core: forwarded as is, a token
    /// attached, refused, or parked until the token is there.
    pub fn on_request_headers(&self, stream: Stream) -> Verdict<Waiting> {
        let headers = stream;
        let authority = headers.get(":authority").unwrap_or_default();
        let has_authorization = headers.get("authorization").is_some();
        let cluster = if self.policy.matches_clusters() {
            stream.cluster_name()
        } else {
            None
        };
        let (destination, source) = match plan(
            &self.policy,
            &authority,
            cluster.as_deref(),
            has_authorization,
        ) {
            Plan::Forward(ForwardReason::Unmatched) => {
                stream.increment(self.metrics.id(OutboundMetric::UnmatchedPassed));
                log(
                    LogLevel::Debug,
                    &format!(
                        "entragate outbound: no destination for authority {authority:?} cluster {cluster:?}: forwarded without a token"
                    ),
                );
                return Verdict::Continue;
            }
            Plan::Forward(ForwardReason::KeptAuthorization) => {
                stream.increment(self.metrics.id(OutboundMetric::AuthorizationKept));
                return Verdict::Continue;
            }
            Plan::Refuse(refusal) => {
                self.refuse(stream, &refusal, &authority);
                return Verdict::Answered;
            }
            Plan::Token {
                destination,
                source,
            } => (destination, source),
        };
        let now = now_ms();
        let waiting = Waiting {
            source,
            destination,
            started_ms: now,
            deadline_ms: now.saturating_add(self.policy.fetch.request_wait_ms),
            seen: 0,
        };
        let verdict = self.step(stream, waiting);
        if matches!(verdict, Verdict::Park(_)) {
            stream.increment(self.metrics.id(OutboundMetric::Waited));
        }
        verdict
    }

    /// A parked request was woken: decide it now, or park it again.
    pub fn resume(&self, stream: Stream, waiting: Waiting) -> Verdict<Waiting> {
        let now = now_ms();
        if now >= waiting.deadline_ms {
            let refusal = wait_timeout(now.saturating_sub(waiting.started_ms));
            let name = self.policy.destination_name(waiting.destination);
            self.refuse(stream, &refusal, name);
            return Verdict::Answered;
        }
        self.step(stream, waiting)
    }

    fn step(&self, stream: Stream, mut waiting: Waiting) -> Verdict<Waiting> {
        waiting.seen = self.fetch.seen();
        let host = NativeHost { config: None };
        let step = self.with_coordinators(false, |coordinators| {
            match coordinators.get_mut(waiting.source) {
                Some(coordinator) => step(coordinator.token(&host)),
                None => Step::Refuse(Refusal::token_unavailable("no token source")),
            }
        });
        let name = self.policy.destination_name(waiting.destination);
        match step {
            Step::Wait => Verdict::Park(waiting),
            Step::Inject(token) => {
                let mut headers = stream;
                match inject(&mut headers, &token) {
                    Ok(()) => {
                        stream.increment(self.metrics.id(OutboundMetric::TokenInjected));
                        Verdict::Continue
                    }
                    Err(refusal) => {
                        self.refuse(stream, &refusal, name);
                        Verdict::Answered
                    }
                }
            }
            Step::Refuse(refusal) => {
                self.refuse(stream, &refusal, name);
                Verdict::Answered
            }
        }
    }

    /// Answers with the core's refusal (never forwarded without credentials).
    fn refuse(&self, stream: Stream, refusal: &Refusal, destination: &str) {
        stream.increment(
            self.metrics
                .refused
                .get(refusal.error.spec().counter)
                .copied(),
        );
        log(LogLevel::Info, &refusal.log_line(destination));
        let response = refusal.response();
        stream.send_response(
            response.status,
            &response.headers,
            &response.body,
            "entragate_outbound_refused",
        );
    }
}
