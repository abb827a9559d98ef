//! The callee role's own metrics (besides the refusal counters, which come
//! from the refusal table in [`crate::error`]): one table of names and kinds
//! that every host adapter defines from, so the wasm filter and the native
//! module show the same `/stats` names without keeping a list each.

use crate::inbound::cache::CacheStats;
use crate::inbound::jwks::JwksStats;

use crate::metrics::metric_table;
pub use crate::metrics::MetricKind;

metric_table! {
    /// A metric of the callee role.
    InboundMetric {
        Allowed => Counter "entragate.allowed",
        AllowedAnonymous => Counter "entragate.allowed_anonymous",
        JwksFetchOk => Counter "entragate.jwks.fetch_ok",
        JwksFetchFailed => Counter "entragate.jwks.fetch_failed",
        JwksKeysLoaded => Gauge "entragate.jwks.keys_loaded",
        JwksUnknownKidRefreshes => Counter "entragate.jwks.unknown_kid_refreshes",
        JwksEarlyRetries => Counter "entragate.jwks.early_retries",
        TokenCacheHits => Counter "entragate.token_cache.hits",
        TokenCacheMisses => Counter "entragate.token_cache.misses",
        TokenCacheEvictions => Counter "entragate.token_cache.evictions",
        SignatureNative => Gauge "entragate.signature.native",
    }
}

/// The host's id for each [`InboundMetric`] (`None`: the host refused to
/// define it, and it is then simply not counted: metrics never decide a request).
pub type MetricIds<Id> = crate::metrics::MetricIds<Id, InboundMetric>;

/// Cumulative per-worker counts are flushed to the host as deltas: what each
/// counter gained between `before` and `now`.
pub fn cache_deltas(now: CacheStats, before: CacheStats) -> [(InboundMetric, u64); 3] {
    let gained = now.since(before);
    [
        (InboundMetric::TokenCacheHits, gained.hits),
        (InboundMetric::TokenCacheMisses, gained.misses),
        (InboundMetric::TokenCacheEvictions, gained.evictions),
    ]
}

/// As [`cache_deltas`], for the unknown-`kid` refreshes granted and the
/// retries pulled forward by a worker's requests (fetches are counted as they
/// settle).
pub fn jwks_request_deltas(now: JwksStats, before: JwksStats) -> [(InboundMetric, u64); 2] {
    [
        (
            InboundMetric::JwksUnknownKidRefreshes,
            now.forced_refreshes.saturating_sub(before.forced_refreshes),
        ),
        (
            InboundMetric::JwksEarlyRetries,
            now.early_retries.saturating_sub(before.early_retries),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_table() {
        let ids = MetricIds::define(|kind, name| {
            (kind == MetricKind::Gauge || name.ends_with(".allowed")).then_some(name.len())
        });
        assert_eq!(
            ids.get(InboundMetric::Allowed),
            Some("entragate.allowed".len())
        );
        assert_eq!(ids.get(InboundMetric::AllowedAnonymous), None);
        assert_eq!(
            ids.get(InboundMetric::SignatureNative),
            Some("entragate.signature.native".len())
        );
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        for (i, a) in InboundMetric::ALL.iter().enumerate() {
            assert!(a.name().starts_with("entragate."));
            assert_eq!(*a as usize, i);
            for b in &InboundMetric::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn deltas_are_what_was_gained() {
        let before = CacheStats {
            hits: 3,
            misses: 1,
            ..CacheStats::default()
        };
        let now = CacheStats {
            hits: 10,
            misses: 1,
            evictions: 2,
            ..CacheStats::default()
        };
        assert_eq!(
            cache_deltas(now, before),
            [
                (InboundMetric::TokenCacheHits, 7),
                (InboundMetric::TokenCacheMisses, 0),
                (InboundMetric::TokenCacheEvictions, 2),
            ]
        );
    }
}
