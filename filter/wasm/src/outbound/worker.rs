//! State shared by the outbound root context and its request contexts (one
//! worker VM, single-threaded). The token itself is shared across workers
//! through shared data by the core's `TokenCoordinator`.

use std::cell::RefCell;
use std::rc::Rc;

use entragate_core::fetcher::waiters::Waiters;
use entragate_core::host::LogLevel;
use entragate_core::outbound::{
    inject, step, wait_timeout, OutboundPolicy, Refusal, Step, TokenCoordinator,
};

use super::metrics::OutboundMetrics;
use crate::host::{log, now_ms, ProxyWasmHost, RequestHeaderMap};
use crate::refusals::send_reply;
use crate::root_hostcalls::PausingWorker;

/// A request paused until its destination's token is available.
pub struct Waiter {
    pub source: usize,
    pub destination: usize,
}

pub struct OutboundWorker {
    pub policy: Rc<OutboundPolicy>,
    /// One per token source (`policy.sources`), same order.
    pub coordinators: Vec<TokenCoordinator>,
    /// Paused requests by context id; removed when resumed or destroyed.
    pub waiters: Waiters<Waiter>,
    pub metrics: OutboundMetrics,
}

pub type SharedOutbound = Rc<RefCell<Option<OutboundWorker>>>;

impl PausingWorker for OutboundWorker {
    fn has_waiters(&self) -> bool {
        !self.waiters.is_empty()
    }
}

impl OutboundWorker {
    /// The step for a request needing the token of `source`.
    pub fn step_for(&mut self, source: usize) -> Step {
        match self.coordinators.get_mut(source) {
            Some(coordinator) => step(coordinator.token(&ProxyWasmHost)),
            None => Step::Refuse(Refusal::token_unavailable("no token source")),
        }
    }

    /// Decides every waiter that can be decided now (token ready, refused,
    /// or waited too long); the others stay.
    pub fn drain_waiters(&mut self) -> Vec<(u32, Waiter, Step)> {
        // Taken out while deciding: `step_for` needs the whole worker.
        let mut waiters = core::mem::take(&mut self.waiters);
        let decided = waiters.drain(now_ms(), |waiter, waited| {
            let step = if waited.timed_out {
                Step::Refuse(wait_timeout(waited.waited_ms))
            } else {
                self.step_for(waiter.source)
            };
            match step {
                Step::Wait => None,
                step => Some(step),
            }
        });
        self.waiters = waiters;
        decided
    }

    /// Label of a destination for log lines.
    pub fn destination_name(&self, destination: usize) -> &str {
        self.policy.destination_name(destination)
    }
}

/// Writes a decided step to the current (effective) request context. Returns
/// true when the request may continue upstream.
pub fn apply_step(step: &Step, destination: &str, metrics: &OutboundMetrics) -> bool {
    match step {
        Step::Inject(token) => match inject(&mut RequestHeaderMap, token) {
            Ok(()) => {
                metrics.injected();
                true
            }
            Err(refusal) => refuse(&refusal, destination, metrics),
        },
        Step::Refuse(refusal) => refuse(refusal, destination, metrics),
        // Not a decision: callers only apply decided steps.
        Step::Wait => false,
    }
}

/// Sends the refusal as a local reply (fail closed: if even that fails, the
/// stream is reset rather than forwarded without credentials).
pub fn refuse(refusal: &Refusal, destination: &str, metrics: &OutboundMetrics) -> bool {
    metrics.refused(refusal);
    log(LogLevel::Info, &refusal.log_line(destination));
    send_reply(&refusal.response());
    false
}
