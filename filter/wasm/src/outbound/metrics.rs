//! Outbound-role counters on Envoy's `/stats` (prefixed `wasmcustom.`).
//!
//! Defined once per worker at configuration time; every worker defines the same
//! names, so Envoy sums them per process.

use entragate_core::error::OutboundError;
use entragate_core::outbound::Refusal;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::refusals::RefusalCounters;

#[derive(Debug, Default, Clone)]
pub struct OutboundMetrics {
    injected: Option<u32>,
    kept_authorization: Option<u32>,
    unmatched: Option<u32>,
    waited: Option<u32>,
    refused: RefusalCounters,
    fetch_ok: Option<u32>,
    fetch_failed: Option<u32>,
}

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn bump(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

impl OutboundMetrics {
    pub fn define() -> OutboundMetrics {
        OutboundMetrics {
            injected: counter("entragate.outbound.token_injected"),
            kept_authorization: counter("entragate.outbound.authorization_kept"),
            unmatched: counter("entragate.outbound.unmatched_passed"),
            waited: counter("entragate.outbound.waited"),
            // One counter per refusal reason, from the refusal table.
            refused: RefusalCounters::define(OutboundError::ALL.iter().map(|e| e.spec())),
            fetch_ok: counter("entragate.outbound.agent_fetch_ok"),
            fetch_failed: counter("entragate.outbound.agent_fetch_failed"),
        }
    }

    /// A token was attached.
    pub fn injected(&self) {
        bump(self.injected);
    }

    /// The application's own `Authorization` was left in place.
    pub fn kept_authorization(&self) {
        bump(self.kept_authorization);
    }

    /// No destination matched; forwarded unchanged.
    pub fn unmatched(&self) {
        bump(self.unmatched);
    }

    /// A request had to wait for a token.
    pub fn waited(&self) {
        bump(self.waited);
    }

    pub fn refused(&self, refusal: &Refusal) {
        self.refused.bump(refusal.error.spec());
    }

    /// One agent callout settled (`true`: a token was stored).
    pub fn fetch(&self, ok: bool) {
        bump(if ok { self.fetch_ok } else { self.fetch_failed });
    }
}
