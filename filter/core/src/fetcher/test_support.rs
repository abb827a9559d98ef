//! Helpers both coordinators' tests use to drive workers through the fake host.

use crate::fetcher::fake_host::{DispatchedCallout, FakeEnvoy};
use crate::fetcher::leased_state::FAST_TICK_MS;
use crate::fetcher::state_record::{RoleFields, StateRecord};
use crate::host::CalloutResponse;

pub fn respond(status: Option<u16>, body: &[u8]) -> CalloutResponse {
    CalloutResponse {
        status,
        body: body.to_vec(),
    }
}

/// Run `tick_all` (advancing the clock by fast ticks between rounds, at most
/// `rounds` times) until a new callout is dispatched; returns it. Fails the
/// test if none is, or if one round dispatches more than one.
pub fn next_dispatch(
    envoy: &FakeEnvoy,
    rounds: usize,
    mut tick_all: impl FnMut(),
) -> DispatchedCallout {
    let before = envoy.callout_count();
    for _ in 0..rounds {
        tick_all();
        if envoy.callout_count() > before {
            assert_eq!(envoy.callout_count(), before + 1, "more than one dispatch");
            return envoy.last_callout().unwrap();
        }
        envoy.advance(FAST_TICK_MS);
    }
    panic!("no dispatch");
}

/// The state record stored under `key`.
pub fn stored_state<X: RoleFields>(envoy: &FakeEnvoy, key: &str) -> StateRecord<X> {
    StateRecord::decode(&envoy.shared_raw(key).unwrap()).unwrap()
}

/// A cold start: 50 requests spread over the workers, each of which must be
/// told to wait (`waits`), with a round of ticks every fifth request, then 20
/// more rounds, leaving time for exactly one worker to dispatch a callout.
pub fn cold_start<W>(
    envoy: &FakeEnvoy,
    ws: &mut [W],
    mut waits: impl FnMut(&mut W) -> bool,
    mut tick_all: impl FnMut(&mut [W]),
) {
    let workers = ws.len();
    for i in 0..50 {
        let worker = ws.get_mut(i % workers).unwrap();
        assert!(waits(worker), "request {i}");
        if i % 5 == 0 {
            tick_all(ws);
            envoy.advance(FAST_TICK_MS);
        }
    }
    for _ in 0..20 {
        tick_all(ws);
        envoy.advance(FAST_TICK_MS);
    }
}
