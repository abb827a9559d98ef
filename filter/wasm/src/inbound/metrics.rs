//! Counters and gauges on Envoy's `/stats` (prefixed `wasmcustom.` by Envoy).
//!
//! Metric ids are defined once per worker at configuration time; the request
//! path only increments by id, never looks a metric up by name.

use entragate_core::error::AuthError;

use crate::refusals::RefusalCounters;
use entragate_core::inbound::cache::CacheStats;
use entragate_core::inbound::jwks::JwksStats;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    allowed: Option<u32>,
    allowed_anonymous: Option<u32>,
    denied: RefusalCounters,
    jwks_fetch_ok: Option<u32>,
    jwks_fetch_failed: Option<u32>,
    jwks_keys_loaded: Option<u32>,
    jwks_unknown_kid_refreshes: Option<u32>,
    jwks_early_retries: Option<u32>,
    token_cache_hits: Option<u32>,
    token_cache_misses: Option<u32>,
    token_cache_evictions: Option<u32>,
    signature_native: Option<u32>,
    /// Cache counters already added to the metrics (they are flushed as deltas).
    token_cache_flushed: CacheStats,
    /// JWKS coordinator counters already added (flushed as deltas, like the cache's).
    jwks_flushed: JwksStats,
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(kind, name).ok()
}

impl Metrics {
    pub fn define() -> Metrics {
        // One counter per reason name, from the refusal table.
        let denied = RefusalCounters::define(AuthError::ALL.iter().map(|e| e.spec()));
        Metrics {
            allowed: define(MetricType::Counter, "entragate.allowed"),
            allowed_anonymous: define(MetricType::Counter, "entragate.allowed_anonymous"),
            denied,
            jwks_fetch_ok: define(MetricType::Counter, "entragate.jwks.fetch_ok"),
            jwks_fetch_failed: define(MetricType::Counter, "entragate.jwks.fetch_failed"),
            jwks_keys_loaded: define(MetricType::Gauge, "entragate.jwks.keys_loaded"),
            jwks_unknown_kid_refreshes: define(
                MetricType::Counter,
                "entragate.jwks.unknown_kid_refreshes",
            ),
            jwks_early_retries: define(MetricType::Counter, "entragate.jwks.early_retries"),
            token_cache_hits: define(MetricType::Counter, "entragate.token_cache.hits"),
            token_cache_misses: define(MetricType::Counter, "entragate.token_cache.misses"),
            token_cache_evictions: define(MetricType::Counter, "entragate.token_cache.evictions"),
            signature_native: define(MetricType::Gauge, "entragate.signature.native"),
            token_cache_flushed: CacheStats::default(),
            jwks_flushed: JwksStats::default(),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    pub fn allowed(&self, anonymous: bool) {
        Self::bump(if anonymous {
            self.allowed_anonymous
        } else {
            self.allowed
        });
    }

    pub fn denied(&self, error: AuthError) {
        self.denied.bump(error.spec());
    }

    pub fn jwks_fetch(&self, ok: bool) {
        Self::bump(if ok {
            self.jwks_fetch_ok
        } else {
            self.jwks_fetch_failed
        });
    }

    /// Gauge: 1 when signatures are checked by the host's native verifier.
    pub fn signature_native(&self, native: bool) {
        if let Some(id) = self.signature_native {
            let _ = hostcalls::record_metric(id, u64::from(native));
        }
    }

    /// Adds `now - before` to a counter (cumulative per-worker counts, flushed as deltas).
    fn add_delta(id: Option<u32>, now: u64, before: u64) {
        if let (Some(id), Ok(delta)) = (id, i64::try_from(now.saturating_sub(before))) {
            if delta > 0 {
                let _ = hostcalls::increment_metric(id, delta);
            }
        }
    }

    /// Adds what the cache counted since the last call.
    pub fn token_cache(&mut self, stats: CacheStats) {
        let last = self.token_cache_flushed;
        Self::add_delta(self.token_cache_hits, stats.hits, last.hits);
        Self::add_delta(self.token_cache_misses, stats.misses, last.misses);
        Self::add_delta(self.token_cache_evictions, stats.evictions, last.evictions);
        self.token_cache_flushed = stats;
    }

    /// Adds the unknown-`kid` refreshes granted and the retries pulled forward
    /// by this worker's requests since the last call (fetches themselves are
    /// counted as they settle, see [`Metrics::jwks_fetch`]).
    pub fn jwks_requests(&mut self, stats: JwksStats) {
        let last = self.jwks_flushed;
        Self::add_delta(
            self.jwks_unknown_kid_refreshes,
            stats.forced_refreshes,
            last.forced_refreshes,
        );
        Self::add_delta(
            self.jwks_early_retries,
            stats.early_retries,
            last.early_retries,
        );
        self.jwks_flushed = stats;
    }

    pub fn keys_loaded(&self, count: usize) {
        if let Some(id) = self.jwks_keys_loaded {
            let _ = hostcalls::record_metric(id, count as u64);
        }
    }
}
