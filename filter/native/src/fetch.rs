//! The main thread's fetch driver, for both roles: the callee's JWKS and the
//! caller's agent token are each the core's single-flight fetcher behind a
//! coordinator (`JwksCoordinator`, `TokenCoordinator`), and this file drives
//! any of them the same way.
//!
//! - [`MainFetch`]: one configuration's fetches. A small timer thread commits
//!   the config scheduler ([`Ticker`]); the tick runs on Envoy's main thread,
//!   where the coordinators fetch through config-level callouts into the
//!   process store. The answers come back to the main thread too. After each,
//!   the waiting requests of the configuration are woken (`waiters.rs`).
//! - [`with_thread_state`]: each thread's state of a configuration (the
//!   main thread's fetching coordinators, each worker's reading ones),
//!   whatever its type.
//! - [`MainThreadFetcher`]: what the driver needs of a coordinator.

use std::any::Any;
use std::cell::RefCell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use entragate_core::fetcher::leased_state::SLOW_TICK_MS;
use entragate_core::fetcher::single_flight::{FetchOutcome, TickOutcome};
use entragate_core::host::{CalloutResponse, CalloutToken, Host, LogLevel};
use entragate_core::inbound::jwks::coordinator::JwksCoordinator;
use entragate_core::outbound::TokenCoordinator;

use crate::envoy::{log, ConfigScope};
use crate::jwks::{now_ms, NativeHost, Ticker};
use crate::waiters::{self, Wake};

/// What one tick of a coordinator means for the driver.
pub struct TickSummary {
    /// A fetch failed at once (dispatch refused): count it.
    pub failed: bool,
    /// Every waiter should look again (new document, a fetch settled, a failure).
    pub wake_all: bool,
    pub started_fetch: bool,
    pub next_tick_ms: u64,
}

impl TickSummary {
    fn of<E: Debug>(outcome: &TickOutcome<E>) -> TickSummary {
        TickSummary {
            failed: outcome.failure.is_some(),
            wake_all: outcome.changed || outcome.recheck_waiters || outcome.failure.is_some(),
            started_fetch: outcome.started_fetch,
            next_tick_ms: outcome.next_tick_ms,
        }
    }
}

/// What one callout answer meant for the driver.
pub struct AnswerSummary {
    /// `Some(true)`: a fetch succeeded; `Some(false)`: one failed.
    pub succeeded: Option<bool>,
    /// The fetch ended and its result is recorded: waiters look again.
    pub settled: bool,
}

impl AnswerSummary {
    fn of<A, E>(outcome: &FetchOutcome<A, E>) -> AnswerSummary {
        AnswerSummary {
            succeeded: outcome.fetch_succeeded(),
            settled: outcome.settled(),
        }
    }
}

/// A coordinator the main thread drives: the core's single-flight fetcher
/// behind one role's document.
pub trait MainThreadFetcher {
    fn tick(&mut self, host: &mut dyn Host) -> TickSummary;
    fn answer(
        &mut self,
        host: &mut dyn Host,
        token: CalloutToken,
        response: CalloutResponse,
    ) -> AnswerSummary;
    /// Whether `token` is the callout this coordinator waits for.
    fn waits_for(&self, token: CalloutToken) -> bool;
}

/// Both coordinators expose the fetcher through the same methods
/// (`single_flight::drive_fetch!`).
macro_rules! main_thread_fetcher {
    ($($coordinator:ty),*) => {$(
        impl MainThreadFetcher for $coordinator {
            fn tick(&mut self, host: &mut dyn Host) -> TickSummary {
                TickSummary::of(&self.on_tick(host))
            }

            fn answer(
                &mut self,
                host: &mut dyn Host,
                token: CalloutToken,
                response: CalloutResponse,
            ) -> AnswerSummary {
                AnswerSummary::of(&self.on_callout_response(host, token, response))
            }

            fn waits_for(&self, token: CalloutToken) -> bool {
                self.awaits(token)
            }
        }
    )*};
}
main_thread_fetcher!(JwksCoordinator, TokenCoordinator);

/// Configuration ids: they name per-thread state and waiters, and are never
/// reused (state a replaced configuration left on a worker is never read again).
static NEXT_CONFIG_ID: AtomicU64 = AtomicU64::new(0);

/// One configuration's fetches, driven from Envoy's main thread.
pub struct MainFetch {
    /// Names this configuration's per-thread state and its waiting requests.
    pub id: u64,
    ticker: Ticker,
    /// Counts "everyone look again" wake-ups (a fetch settled, the document changed).
    settled: AtomicU64,
    fetch_ok: Option<usize>,
    fetch_failed: Option<usize>,
    /// Names the fetched document in debug lines.
    what: &'static str,
}

impl MainFetch {
    /// Starts the timer; the first tick is due at once (prefetch: it runs on
    /// the main thread once the configuration and its clusters are in place).
    /// `what` names the timer thread (`entragate-<what>`) and the log lines;
    /// the fetch counters are the role's.
    pub fn start(
        scope: ConfigScope,
        what: &'static str,
        fetch_ok: Option<usize>,
        fetch_failed: Option<usize>,
    ) -> Result<MainFetch, String> {
        let scheduler = scope
            .scheduler()
            .ok_or("Envoy gave no config scheduler: nothing could be fetched")?;
        Ok(MainFetch {
            id: NEXT_CONFIG_ID.fetch_add(1, Ordering::Relaxed),
            ticker: Ticker::start(scheduler, what)?,
            settled: AtomicU64::new(0),
            fetch_ok,
            fetch_failed,
            what,
        })
    }

    /// Main thread: a scheduled tick of this configuration's coordinators.
    /// `publish` runs before any waiter is woken (a woken request must find
    /// what the tick adopted).
    pub fn on_tick<C: MainThreadFetcher>(
        &self,
        scope: ConfigScope,
        coordinators: &mut [C],
        publish: impl FnOnce(&[C]),
    ) {
        let mut host = NativeHost {
            config: Some(scope),
        };
        let mut next_tick_ms = SLOW_TICK_MS;
        let mut wake_all = false;
        for coordinator in coordinators.iter_mut() {
            let tick = coordinator.tick(&mut host);
            if tick.failed {
                scope.increment(self.fetch_failed);
            }
            wake_all |= tick.wake_all;
            next_tick_ms = next_tick_ms.min(tick.next_tick_ms);
            log(
                LogLevel::Debug,
                &format!(
                    "entragate: {} tick: started_fetch={} failed={} next in {} ms",
                    self.what, tick.started_fetch, tick.failed, tick.next_tick_ms
                ),
            );
        }
        publish(coordinators);
        self.wake(if wake_all { Wake::All } else { Wake::Routine });
        self.ticker.tick_in(next_tick_ms);
    }

    /// Main thread: the answer to a config-level callout, given to the
    /// coordinator that waits for it. The caller ticks next (so the
    /// coordinators plan a refresh or a retry at once). `publish` runs before the waiters are woken, as for [`MainFetch::on_tick`].
    pub fn on_callout<C: MainThreadFetcher>(
        &self,
        scope: ConfigScope,
        coordinators: &mut [C],
        callout_id: u64,
        response: CalloutResponse,
        publish: impl FnOnce(&[C]),
    ) {
        let Ok(token) = CalloutToken::try_from(callout_id) else {
            return;
        };
        let Some(coordinator) = coordinators.iter_mut().find(|c| c.waits_for(token)) else {
            return;
        };
        let mut host = NativeHost {
            config: Some(scope),
        };
        let answer = coordinator.answer(&mut host, token, response);
        match answer.succeeded {
            Some(true) => scope.increment(self.fetch_ok),
            Some(false) => scope.increment(self.fetch_failed),
            None => {}
        }
        publish(coordinators);
        if answer.settled {
            self.wake(Wake::All);
        }
    }

    /// Wakes this configuration's waiters that `which` selects.
    pub fn wake(&self, which: Wake) {
        if which == Wake::All {
            // Before waking: a request that looks after this sees the new
            // document; one that looked before and registers after sees the
            // count moved ([`MainFetch::missed`]).
            self.settled.fetch_add(1, Ordering::AcqRel);
        }
        waiters::wake(self.id, which, now_ms());
    }

    /// The wake-up count a request saw when it last looked.
    pub fn seen(&self) -> u64 {
        self.settled.load(Ordering::Acquire)
    }

    /// A wake-up came between a request's look (`seen`) and its
    /// registration: it must be woken at once.
    pub fn missed(&self, seen: u64) -> bool {
        self.seen() != seen
    }

    /// Ticks as soon as possible (a request needs a fetch now).
    pub fn tick_now(&self) {
        self.ticker.tick_now();
    }
}

impl Drop for MainFetch {
    fn drop(&mut self) {
        // Runs in config_destroy, on the main thread, which holds the fetching
        // coordinators; workers' readers are bounded and never read again.
        forget(self.id);
    }
}

/// Worker ids for the coordinators' backoff jitter: 0 is the main thread.
static NEXT_WORKER_ID: AtomicU32 = AtomicU32::new(1);

/// A configuration's id and this thread's state of it (`None` while lent
/// to a [`with_thread_state`] body).
type ConfigState = (u64, Option<Box<dyn Any>>);

thread_local! {
    /// This thread's state for each configuration (by id): on the main
    /// thread the fetching coordinators, on a worker the reading ones.
    /// A list, not a map: a thread sees a handful of configurations, and
    /// every request looks its own up (no hashing, nothing moved).
    static PER_CONFIG: RefCell<Vec<ConfigState>> = const { RefCell::new(Vec::new()) };
    static WORKER_ID: u32 = NEXT_WORKER_ID.fetch_add(1, Ordering::Relaxed);
}

/// Runs `body` with this thread's state of type `T` for configuration `id`,
/// made by `make(worker id)` on first use (`main`: worker id 0, the fetching
/// thread). The state is taken out while `body` runs, so nothing stays
/// borrowed; if `body` panics it is dropped, and the next call starts afresh
/// from the process store (the request already failed closed). `body` must
/// not ask for the same configuration's state again: that call would get a
/// fresh one (nothing does; the callee's cache clean-up runs after its tick).
pub fn with_thread_state<T: 'static, R>(
    id: u64,
    main: bool,
    make: impl FnOnce(u32) -> T,
    body: impl FnOnce(&mut T) -> R,
) -> R {
    let taken = PER_CONFIG.with(|all| {
        all.borrow_mut()
            .iter_mut()
            .find(|(of, _)| *of == id)
            .and_then(|(_, state)| state.take())
    });
    // A configuration has one role, so one state type; anything else under
    // its id is replaced rather than trusted.
    let mut state: Box<T> = match taken.map(|state| state.downcast::<T>()) {
        Some(Ok(state)) => state,
        _ => {
            let worker_id = if main { 0 } else { WORKER_ID.with(|w| *w) };
            Box::new(make(worker_id))
        }
    };
    let result = body(&mut state);
    let state: Box<dyn Any> = state;
    PER_CONFIG.with(|all| {
        let mut all = all.borrow_mut();
        match all.iter_mut().find(|(of, _)| *of == id) {
            Some((_, slot)) => *slot = Some(state),
            None => all.push((id, Some(state))),
        }
    });
    result
}

/// Forgets this thread's state of a destroyed configuration.
pub fn forget(id: u64) {
    PER_CONFIG.with(|all| all.borrow_mut().retain(|(of, _)| *of != id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_state_is_kept_per_configuration_until_forgotten() {
        let (a, b) = (u64::MAX - 1, u64::MAX - 2);
        let count = |id: u64| {
            with_thread_state(
                id,
                false,
                |_| 0u32,
                |n: &mut u32| {
                    *n += 1;
                    *n
                },
            )
        };
        assert_eq!((count(a), count(a), count(b)), (1, 2, 1));
        // The main thread's state is made as worker 0, a worker's with its own id.
        let made_as = |id: u64, main: bool| with_thread_state(id, main, |w| w, |w: &mut u32| *w);
        assert_eq!(made_as(u64::MAX - 3, true), 0);
        assert_ne!(made_as(u64::MAX - 4, false), 0);
        // Another type under the same id is replaced, never reinterpreted.
        assert_eq!(
            with_thread_state(a, false, |_| "fresh", |s: &mut &str| *s),
            "fresh"
        );
        forget(b);
        assert_eq!(count(b), 1, "a forgotten configuration starts afresh");
    }

    #[test]
    fn thread_state_is_not_borrowed_while_its_body_runs() {
        let id = u64::MAX - 5;
        let inner = with_thread_state(
            id,
            false,
            |_| 1u8,
            |_: &mut u8| {
                // Another configuration's state from inside the body: no double borrow.
                with_thread_state(id - 1, false, |_| 2u8, |n: &mut u8| *n)
            },
        );
        assert_eq!(inner, 2);
    }
}
