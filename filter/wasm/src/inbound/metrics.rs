//! Counters and gauges on Envoy's `/stats` (prefixed `wasmcustom.` by Envoy).
//!
//! Metric ids are defined once per worker at configuration time, from the
//! core's tables (refusals and [`InboundMetric`]); the request path only
//! increments by id, never looks a metric up by name.

use entragate_core::error::AuthError;
use entragate_core::inbound::cache::CacheStats;
use entragate_core::inbound::jwks::JwksStats;
use entragate_core::inbound::metrics::{
    cache_deltas, jwks_request_deltas, InboundMetric, MetricIds, MetricKind,
};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::refusals::RefusalCounters;

#[derive(Debug, Clone)]
pub struct Metrics {
    ids: MetricIds<u32>,
    denied: RefusalCounters,
    /// Cache counters already added to the metrics (they are flushed as deltas).
    token_cache_flushed: CacheStats,
    /// JWKS coordinator counters already added (flushed as deltas, like the cache's).
    jwks_flushed: JwksStats,
}

impl Metrics {
    pub fn define() -> Metrics {
        let ids = MetricIds::define(|kind, name| {
            let kind = match kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
            };
            hostcalls::define_metric(kind, name).ok()
        });
        Metrics {
            ids,
            // One counter per reason name, from the refusal table.
            denied: RefusalCounters::define(AuthError::ALL.iter().map(|e| e.spec())),
            token_cache_flushed: CacheStats::default(),
            jwks_flushed: JwksStats::default(),
        }
    }

    fn add(&self, metric: InboundMetric, value: u64) {
        if let (Some(id), Ok(value)) = (self.ids.get(metric), i64::try_from(value)) {
            if value > 0 {
                let _ = hostcalls::increment_metric(id, value);
            }
        }
    }

    fn record(&self, metric: InboundMetric, value: u64) {
        if let Some(id) = self.ids.get(metric) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    pub fn allowed(&self, anonymous: bool) {
        self.add(
            if anonymous {
                InboundMetric::AllowedAnonymous
            } else {
                InboundMetric::Allowed
            },
            1,
        );
    }

    pub fn denied(&self, error: AuthError) {
        self.denied.bump(error.spec());
    }

    pub fn jwks_fetch(&self, ok: bool) {
        self.add(
            if ok {
                InboundMetric::JwksFetchOk
            } else {
                InboundMetric::JwksFetchFailed
            },
            1,
        );
    }

    /// Gauge: 1 when signatures are checked by the host's native verifier.
    pub fn signature_native(&self, native: bool) {
        self.record(InboundMetric::SignatureNative, u64::from(native));
    }

    /// Adds what the cache counted since the last call.
    pub fn token_cache(&mut self, stats: CacheStats) {
        for (metric, delta) in cache_deltas(stats, self.token_cache_flushed) {
            self.add(metric, delta);
        }
        self.token_cache_flushed = stats;
    }

    /// Adds the unknown-`kid` refreshes granted and the retries pulled forward
    /// by this worker's requests since the last call (fetches themselves are
    /// counted as they settle, see [`Metrics::jwks_fetch`]).
    pub fn jwks_requests(&mut self, stats: JwksStats) {
        for (metric, delta) in jwks_request_deltas(stats, self.jwks_flushed) {
            self.add(metric, delta);
        }
        self.jwks_flushed = stats;
    }

    pub fn keys_loaded(&self, count: usize) {
        self.record(InboundMetric::JwksKeysLoaded, count as u64);
    }
}
