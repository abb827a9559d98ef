//! Requests paused until a fetch settles (keys for the callee, a token for the
//! caller), each with the deadline of its bounded wait.
//!
//! A worker keeps one [`Waiters`] per role; requests are parked by their
//! request (context) id and looked at again whenever the fetcher says waiters
//! should re-check, or a tick finds a deadline passed. What "decided" means is
//! the role's: [`Waiters::drain`] only owns the bookkeeping, so both roles
//! resume and time out requests the same way.

use std::collections::BTreeMap;

use crate::host::UnixMillis;

/// How long a parked request has waited, as handed to the role's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// Its bound elapsed: the role must decide it now (typically a 503).
    pub timed_out: bool,
    pub waited_ms: u64,
}

#[derive(Debug)]
struct Parked<T> {
    item: T,
    since_ms: UnixMillis,
    deadline_ms: UnixMillis,
}

/// Paused requests by id. See the module docs.
#[derive(Debug)]
pub struct Waiters<T> {
    parked: BTreeMap<u32, Parked<T>>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            parked: BTreeMap::new(),
        }
    }
}

impl<T> Waiters<T> {
    /// Parks request `id` until a decision, for at most `wait_ms`.
    pub fn park(&mut self, id: u32, item: T, now: UnixMillis, wait_ms: u64) {
        let parked = Parked {
            item,
            since_ms: now,
            deadline_ms: now.saturating_add(wait_ms),
        };
        self.parked.insert(id, parked);
    }

    /// Forgets a request that went away (its client disconnected): a late
    /// fetch must not try to resume a dead request.
    pub fn remove(&mut self, id: u32) {
        self.parked.remove(&id);
    }

    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// Decides every request that can be decided now. `decide` returns the
    /// outcome of a request, or `None` to keep it waiting; it must decide a
    /// request whose wait timed out. Decided requests leave, in id order.
    pub fn drain<O>(
        &mut self,
        now: UnixMillis,
        mut decide: impl FnMut(&mut T, Waited) -> Option<O>,
    ) -> Vec<(u32, T, O)> {
        let mut decided = Vec::new();
        let parked = core::mem::take(&mut self.parked);
        for (id, mut entry) in parked {
            let waited = Waited {
                timed_out: now >= entry.deadline_ms,
                waited_ms: now.saturating_sub(entry.since_ms),
            };
            match decide(&mut entry.item, waited) {
                Some(outcome) => decided.push((id, entry.item, outcome)),
                None => {
                    self.parked.insert(id, entry);
                }
            }
        }
        decided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_decides_ready_and_timed_out_requests_and_keeps_the_rest() {
        let mut waiters = Waiters::default();
        waiters.park(3, "ready", 100, 50);
        waiters.park(1, "slow", 100, 10);
        waiters.park(2, "pending", 100, 50);
        waiters.park(4, "gone", 100, 50);
        waiters.remove(4);
        assert_eq!(waiters.len(), 3);
        let mut seen = Vec::new();
        let decided = waiters.drain(120, |item, waited| {
            seen.push((*item, waited));
            match (*item, waited.timed_out) {
                (_, true) => Some(format!("timeout after {}", waited.waited_ms)),
                ("ready", false) => Some("go".to_string()),
                _ => None,
            }
        });
        assert_eq!(
            decided,
            vec![
                (1, "slow", "timeout after 20".to_string()),
                (3, "ready", "go".to_string()),
            ]
        );
        assert!(seen.iter().all(|(item, _)| *item != "gone"));
        assert_eq!(waiters.len(), 1);
        // The one still waiting times out once its own bound is reached.
        assert!(waiters
            .drain(149, |_, w| w.timed_out.then_some(()))
            .is_empty());
        assert_eq!(
            waiters.drain(150, |_, w| w.timed_out.then_some(())).len(),
            1
        );
        assert!(waiters.is_empty());
    }

    #[test]
    fn a_kept_request_can_be_changed_while_it_waits() {
        let mut waiters = Waiters::default();
        waiters.park(7, 0u32, 0, 1_000);
        for _ in 0..3 {
            assert!(waiters
                .drain(1, |looks, _| {
                    *looks += 1;
                    None::<()>
                })
                .is_empty());
        }
        let decided = waiters.drain(1, |looks, _| Some(*looks));
        assert_eq!(decided, vec![(7, 3, 3)]);
    }
}
