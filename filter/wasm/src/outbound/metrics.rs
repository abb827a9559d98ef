//! Outbound-role counters on Envoy's `/stats` (prefixed `wasmcustom.`).
//!
//! Defined once per worker at configuration time from the core's tables
//! (`OutboundMetric`, and the refusal table for `refused.*`); every worker
//! defines the same names, so Envoy sums them per process.

use entragate_core::error::OutboundError;
use entragate_core::outbound::{OutboundMetric, OutboundMetricIds, Refusal};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::refusals::RefusalCounters;

#[derive(Debug, Clone)]
pub struct OutboundMetrics {
    ids: OutboundMetricIds<u32>,
    refused: RefusalCounters,
}

impl OutboundMetrics {
    pub fn define() -> OutboundMetrics {
        OutboundMetrics {
            // Every outbound metric is a counter.
            ids: OutboundMetricIds::define(|_, name| {
                hostcalls::define_metric(MetricType::Counter, name).ok()
            }),
            // One counter per refusal reason, from the refusal table.
            refused: RefusalCounters::define(OutboundError::ALL.iter().map(|e| e.spec())),
        }
    }

    fn bump(&self, metric: OutboundMetric) {
        if let Some(id) = self.ids.get(metric) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// A token was attached.
    pub fn injected(&self) {
        self.bump(OutboundMetric::TokenInjected);
    }

    /// The application's own `Authorization` was left in place.
    pub fn kept_authorization(&self) {
        self.bump(OutboundMetric::AuthorizationKept);
    }

    /// No destination matched; forwarded unchanged.
    pub fn unmatched(&self) {
        self.bump(OutboundMetric::UnmatchedPassed);
    }

    /// A request had to wait for a token.
    pub fn waited(&self) {
        self.bump(OutboundMetric::Waited);
    }

    pub fn refused(&self, refusal: &Refusal) {
        self.refused.bump(refusal.error.spec());
    }

    /// One agent callout settled (`true`: a token was stored).
    pub fn fetch(&self, ok: bool) {
        self.bump(if ok {
            OutboundMetric::AgentFetchOk
        } else {
            OutboundMetric::AgentFetchFailed
        });
    }
}
