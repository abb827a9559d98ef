//! The outbound role's own metrics (besides the refusal counters, which come
//! from the refusal table in [`crate::error`]): one table that every host
//! adapter defines from, so the wasm filter and the native module show the
//! same `/stats` names.

use crate::metrics::metric_table;

metric_table! {
    /// A metric of the outbound role.
    OutboundMetric {
        /// A token was attached.
        TokenInjected => Counter "entragate.outbound.token_injected",
        /// The application's own `Authorization` was left in place.
        AuthorizationKept => Counter "entragate.outbound.authorization_kept",
        /// No destination matched; forwarded unchanged.
        UnmatchedPassed => Counter "entragate.outbound.unmatched_passed",
        /// A request had to wait for a token.
        Waited => Counter "entragate.outbound.waited",
        /// An agent callout stored a token.
        AgentFetchOk => Counter "entragate.outbound.agent_fetch_ok",
        /// An agent callout failed.
        AgentFetchFailed => Counter "entragate.outbound.agent_fetch_failed",
    }
}

/// The host's id for each [`OutboundMetric`].
pub type OutboundMetricIds<Id> = crate::metrics::MetricIds<Id, OutboundMetric>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricKind;

    #[test]
    fn names_are_unique_prefixed_counters() {
        for (i, a) in OutboundMetric::ALL.iter().enumerate() {
            assert!(a.name().starts_with("entragate.outbound."));
            assert_eq!(a.kind(), MetricKind::Counter);
            assert_eq!(*a as usize, i);
            for b in &OutboundMetric::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
        let ids = OutboundMetricIds::define(|_, name| Some(name.len()));
        assert_eq!(
            ids.get(OutboundMetric::Waited),
            Some("entragate.outbound.waited".len())
        );
    }
}
