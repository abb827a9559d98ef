//! Requests paused until the JWKS changes, a fetch settles, or their wait
//! bound elapses, across all workers of the process.
//!
//! A paused stream keeps its flow (in its own filter object, on its worker);
//! this registry only holds how to wake it: its scheduler. The main thread
//! wakes every waiter of a configuration when a fetch settles or the keys
//! change, and on every other tick (at least once a second) those that may
//! look again and those past their deadline, so a wait is bounded by
//! `request_wait_ms` plus one tick. A woken stream decides on its own worker,
//! or parks again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use entragate_core::host::UnixMillis;

use crate::envoy::StreamScheduler;

struct Parked {
    config: u64,
    deadline_ms: UnixMillis,
    /// Waiting for an unknown-kid refresh: only the end of a fetch (or the
    /// deadline) may wake it, or it would be refused before the refresh.
    forced: bool,
    scheduler: StreamScheduler,
}

/// Which waiters a wake-up is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A fetch settled or the keys changed: everyone looks again.
    All,
    /// A plain tick: waiters that may look again at any time, and those past
    /// their deadline (they are refused with the core's 503).
    Routine,
}

static PARKED: Mutex<Option<HashMap<u64, Parked>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn with_parked<T>(body: impl FnOnce(&mut HashMap<u64, Parked>) -> T) -> T {
    // Every change is one insert or remove: a poisoned lock is still consistent.
    let mut guard = PARKED.lock().unwrap_or_else(|e| e.into_inner());
    body(guard.get_or_insert_with(HashMap::new))
}

/// Registers a paused stream; the id is forgotten when it is woken or gone.
pub fn park(config: u64, deadline_ms: UnixMillis, forced: bool, scheduler: StreamScheduler) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    with_parked(|parked| {
        parked.insert(
            id,
            Parked {
                config,
                deadline_ms,
                forced,
                scheduler,
            },
        )
    });
    id
}

/// The stream went away (or was woken): drop its scheduler.
pub fn forget(id: u64) {
    with_parked(|parked| parked.remove(&id));
}

/// Wakes the waiters of `config` that `which` selects. Returns how many.
pub fn wake(config: u64, which: Wake, now: UnixMillis) -> usize {
    with_parked(|parked| {
        let due: Vec<u64> = parked
            .iter()
            .filter(|(_, p)| {
                p.config == config && (which == Wake::All || !p.forced || p.deadline_ms <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            if let Some(p) = parked.remove(id) {
                p.scheduler.commit(0);
                // Dropping deletes the handle; the event already posted runs.
            }
        }
        due.len()
    })
}

/// Wakes one waiter now (it parked just after a wake-up it should have seen).
pub fn wake_one(id: u64) {
    with_parked(|parked| {
        if let Some(p) = parked.remove(&id) {
            p.scheduler.commit(0);
        }
    });
}
