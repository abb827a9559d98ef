//! Hostcall plumbing shared by the root contexts of both roles ([`crate::inbound::root`]
//! for callee validation, [`crate::outbound::root`] for the caller side).
//!
//! The two roles differ in what they decide, not in how a root context talks
//! to Envoy: reading the configuration and callout answers, numbering workers,
//! scheduling ticks and resuming paused requests are the same hostcalls in the
//! same order, so they live here once.

use std::cell::RefCell;
use std::fmt::Display;
use std::time::Duration;

use entragate_core::host::{CalloutResponse, LogLevel};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::host::log;

/// A worker whose requests may be paused until the root context resumes them.
pub trait PausingWorker {
    fn has_waiters(&self) -> bool;
}

/// Runs `f` on the configured worker. `None` when the worker is not configured
/// yet or already borrowed (a re-entrant callback): the caller then skips the
/// callback rather than panic on a second borrow.
pub fn with_worker<W, R>(worker: &RefCell<Option<W>>, f: impl FnOnce(&mut W) -> R) -> Option<R> {
    let mut guard = worker.try_borrow_mut().ok()?;
    guard.as_mut().map(f)
}

/// Installs a freshly configured worker, replacing the previous configuration.
pub fn install_worker<W>(slot: &RefCell<Option<W>>, worker: W) {
    if let Ok(mut guard) = slot.try_borrow_mut() {
        *guard = Some(worker);
    }
}

/// Reads and compiles the plugin configuration. A refused one is logged (the
/// error names the field) and gives `None`, on which `on_configure` returns
/// false so that Envoy refuses the listener rather than run without the filter.
pub fn load_configuration<P, E: Display>(
    log_prefix: &str,
    compile: impl FnOnce(&[u8]) -> Result<P, E>,
) -> Option<P> {
    // Empty when the host gives none, which the compiler refuses by name.
    let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
        .unwrap_or_default();
    match compile(&bytes) {
        Ok(policy) => Some(policy),
        Err(error) => {
            reject_configuration(log_prefix, error);
            None
        }
    }
}

/// Logs why the plugin configuration is refused, in the same words for every
/// reason and role so that operators can search Envoy's log for one phrase.
pub fn reject_configuration(log_prefix: &str, reason: impl Display) {
    log(
        LogLevel::Error,
        &format!("{log_prefix}: rejected plugin configuration: {reason}"),
    );
}

/// The answer to a callout, read in `on_http_call_response`. A missing or
/// non-numeric `:status` stays `None` (a reset or a local reply) so the core
/// counts it as a failed fetch.
pub fn callout_response(body_size: usize) -> CalloutResponse {
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok());
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    CalloutResponse { status, body }
}

/// A number unique to this VM within the Envoy process (shared-data counter),
/// used to tell fetch-lease owners apart. Both roles draw from the same counter.
pub fn allocate_worker_id() -> u32 {
    const KEY: &str = "entragate.worker_seq";
    for _ in 0..16 {
        let (current, cas) = hostcalls::get_shared_data(KEY).unwrap_or((None, None));
        let value = current
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0)
            .wrapping_add(1);
        if hostcalls::set_shared_data(KEY, Some(&value.to_le_bytes()), cas).is_ok() {
            return value;
        }
    }
    // Contention never resolves in practice; the time is a good-enough fallback.
    (crate::host::now_ms() & 0xffff_ffff) as u32
}

/// Ticks at once: the first fetch (keys, token) starts before the first request.
pub fn tick_now() {
    let _ = hostcalls::set_tick_period(Duration::from_millis(1));
}

/// Sets the next tick from the period the core suggests, shortened to
/// `waiter_poll_ms` while requests wait: waiters are resumed by this worker's
/// tick when another worker's fetch lands, and their deadlines are checked on
/// ticks too.
pub fn schedule_next_tick<W: PausingWorker>(
    worker: &RefCell<Option<W>>,
    suggested_ms: u64,
    waiter_poll_ms: u64,
) {
    let has_waiters = worker
        .try_borrow()
        .map(|w| w.as_ref().is_some_and(W::has_waiters))
        .unwrap_or(false);
    let period = if has_waiters {
        suggested_ms.min(waiter_poll_ms)
    } else {
        suggested_ms
    };
    let _ = hostcalls::set_tick_period(Duration::from_millis(period.max(1)));
}

/// Writes each decided outcome to its request context (`apply` returns whether
/// the request may continue) and resumes it, then switches back to the root
/// context `root_context_id`. The worker must not be borrowed while this runs:
/// resuming a request can call straight into its context.
pub fn resume_requests<T>(
    root_context_id: u32,
    decided: impl IntoIterator<Item = (u32, T)>,
    mut apply: impl FnMut(T) -> bool,
) {
    for (context_id, outcome) in decided {
        // The request may be gone (client disconnected): then there is nothing to do.
        if hostcalls::set_effective_context(context_id).is_err() {
            continue;
        }
        if apply(outcome) {
            let _ = hostcalls::resume_http_request();
        }
    }
    let _ = hostcalls::set_effective_context(root_context_id);
}
