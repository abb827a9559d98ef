//! entragate as an Envoy dynamic module (Envoy 1.40.0, ABI `v0.2.0`).
//!
//! - [`abi`]: the hooks' and callbacks' C types, declared by hand and pinned.
//! - [`envoy`]: safe wrappers over the callbacks (the only `unsafe` calls).
//! - [`filter`]: the inbound role: request data in, the core's decision out.
//! - [`outbound`]: the outbound role: the agent's token attached, or refused.
//! - [`fetch`]: the main thread's fetch driver both roles use (JWKS, agent token).
//! - [`signature`]: RS256/384/512 with `ring`, behind the core's rules.
//! - this file: the `#[no_mangle]` hooks Envoy resolves by name.
//!
//! **Never take Envoy down.** The module is built with `panic = "unwind"`
//! (profile `release-native`) and every hook runs behind [`guard`]: a panic
//! is caught at the boundary (unwinding into Envoy's C++ frames would be
//! undefined behaviour), logged, counted, and fails that one request closed
//! with a 503. Envoy and every other stream keep running.

// The `pub extern "C"` hooks take Envoy's raw pointers by design: they are
// entry points Envoy alone calls, under the contract abi.h documents, not a
// Rust API another crate could misuse.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod abi;
mod envoy;
#[cfg(test)]
mod fake_envoy;
mod fetch;
mod filter;
mod jwks;
mod outbound;
mod signature;
mod waiters;

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use entragate_core::host::{CalloutResponse, LogLevel};

use crate::abi::EnvoyBuffer;
use crate::envoy::{log, ConfigScope, Stream};
use crate::filter::{Config, ParkedFlow, Verdict};
use crate::outbound::{OutboundConfig, Waiting, OUTBOUND_FILTER_NAME};

/// Runs `body`, turning a panic into `on_panic()`'s value. The panic message
/// comes from our own code (never a token: nothing formats one into a panic).
fn guard<T>(hook: &str, body: impl FnOnce() -> T, on_panic: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            log(
                LogLevel::Error,
                &format!("entragate: panic in {hook} (request failed closed): {message}"),
            );
            // A panic inside `on_panic` itself must not escape either.
            catch_unwind(AssertUnwindSafe(on_panic)).unwrap_or_else(|_| {
                // Nothing sensible is left to return; abort rather than unwind
                // into C++. Unreachable in practice: the fallbacks are plain calls.
                std::process::abort()
            })
        }
    }
}

/// What a request gets when the filter itself failed: 503, no challenge (the
/// caller's credentials are not at fault), the same headers as the core's 503.
fn fail_closed(stream: Stream) {
    let headers = [
        (
            "retry-after".to_string(),
            entragate_core::response::RETRY_AFTER_SECS.to_string(),
        ),
        ("content-type".to_string(), "application/json".to_string()),
        ("cache-control".to_string(), "no-store".to_string()),
    ];
    stream.send_response(
        503,
        &headers,
        r#"{"error":"temporarily_unavailable","error_description":"The authorization filter failed; retry later."}"#,
        "entragate_internal_error",
    );
}

// ---- program ----

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    abi::ABI_VERSION.as_ptr().cast()
}

// ---- configuration ----

/// Called on the main thread for each filter configuration; null rejects it.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy_ptr: *mut c_void,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    guard(
        "config_new",
        || {
            // SAFETY: Envoy lends both buffers for the duration of this call.
            let (name, json) = unsafe { (lent(name), lent(config)) };
            match ModuleConfig::new(ConfigScope(config_envoy_ptr), name, json) {
                Ok(config) => Box::into_raw(Box::new(config)).cast_const().cast(),
                Err(error) => {
                    log(
                        LogLevel::Error,
                        &format!("entragate: configuration rejected: {error}"),
                    );
                    std::ptr::null()
                }
            }
        },
        std::ptr::null,
    )
}

/// The bytes of a buffer Envoy lends for the duration of a hook.
///
/// # Safety
/// `buffer` is null or points to `length` readable bytes for the hook.
unsafe fn lent<'a>(buffer: EnvoyBuffer) -> &'a [u8] {
    if buffer.ptr.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(buffer.ptr, buffer.length)
    }
}

/// One `DynamicModuleFilter` configuration: its role is chosen by
/// `filter_name` (`entragate_outbound`: the caller role, as the wasm
/// filter's `root_id`; anything else: the callee role), and reads the same
/// plugin JSON as that role's wasm filter.
// Boxed once per configuration (config_new): the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum ModuleConfig {
    Inbound(Config),
    Outbound(OutboundConfig),
}

impl ModuleConfig {
    fn new(scope: ConfigScope, name: &[u8], json: &[u8]) -> Result<ModuleConfig, String> {
        if name == OUTBOUND_FILTER_NAME.as_bytes() {
            OutboundConfig::new(scope, json).map(ModuleConfig::Outbound)
        } else {
            Config::new(scope, json).map(ModuleConfig::Inbound)
        }
    }

    /// Names the configuration's waiters (and per-thread state).
    fn id(&self) -> u64 {
        match self {
            ModuleConfig::Inbound(config) => config.id,
            ModuleConfig::Outbound(config) => config.fetch.id,
        }
    }

    fn panics(&self) -> Option<usize> {
        match self {
            ModuleConfig::Inbound(config) => config.metrics.panics,
            ModuleConfig::Outbound(config) => config.panics(),
        }
    }

    fn on_main_tick(&self, scope: ConfigScope) {
        match self {
            ModuleConfig::Inbound(config) => config.on_main_tick(scope),
            ModuleConfig::Outbound(config) => config.on_main_tick(scope),
        }
    }

    fn on_main_callout(&self, scope: ConfigScope, id: u64, response: CalloutResponse) {
        match self {
            ModuleConfig::Inbound(config) => config.on_main_callout(scope, id, response),
            ModuleConfig::Outbound(config) => config.on_main_callout(scope, id, response),
        }
    }

    fn on_request_headers(&self, stream: Stream) -> Verdict<Parked> {
        match self {
            ModuleConfig::Inbound(config) => {
                parked_as(config.on_request_headers(stream), Parked::Inbound)
            }
            ModuleConfig::Outbound(config) => {
                parked_as(config.on_request_headers(stream), Parked::Outbound)
            }
        }
    }

    fn resume(&self, stream: Stream, parked: Parked) -> Verdict<Parked> {
        match (self, parked) {
            (ModuleConfig::Inbound(config), Parked::Inbound(flow)) => {
                parked_as(config.resume(stream, flow), Parked::Inbound)
            }
            (ModuleConfig::Outbound(config), Parked::Outbound(waiting)) => {
                parked_as(config.resume(stream, waiting), Parked::Outbound)
            }
            // A stream keeps its configuration: unreachable, but fail closed.
            _ => {
                fail_closed(stream);
                Verdict::Answered
            }
        }
    }
}

/// What a waiting request keeps, by role.
enum Parked {
    Inbound(Box<ParkedFlow>),
    Outbound(Waiting),
}

impl Parked {
    fn deadline_ms(&self) -> u64 {
        match self {
            Parked::Inbound(flow) => flow.deadline_ms(),
            Parked::Outbound(waiting) => waiting.deadline_ms(),
        }
    }

    /// Only an unknown-`kid` refresh waits for the end of a fetch alone.
    fn forced(&self) -> bool {
        match self {
            Parked::Inbound(flow) => flow.forced(),
            Parked::Outbound(_) => false,
        }
    }

    fn missed_wake(&self, config: &ModuleConfig) -> bool {
        match (self, config) {
            (Parked::Inbound(flow), ModuleConfig::Inbound(config)) => flow.missed_wake(config),
            (Parked::Outbound(waiting), ModuleConfig::Outbound(config)) => {
                waiting.missed_wake(config)
            }
            // Unreachable (see `resume`); waking at once is always safe.
            _ => true,
        }
    }
}

fn parked_as<P>(verdict: Verdict<P>, wrap: impl FnOnce(P) -> Parked) -> Verdict<Parked> {
    match verdict {
        Verdict::Continue => Verdict::Continue,
        Verdict::Answered => Verdict::Answered,
        Verdict::Park(parked) => Verdict::Park(wrap(parked)),
    }
}

/// Frees what a `*_new` hook returned with `Box::into_raw`.
///
/// # Safety
/// `ptr` is null or came from `Box::<T>::into_raw` and is not used again:
/// Envoy destroys each object exactly once (a configuration after every filter
/// using it).
unsafe fn destroy_boxed<T>(hook: &str, ptr: *const c_void) {
    guard(
        hook,
        || {
            if !ptr.is_null() {
                drop(Box::from_raw(ptr.cast_mut().cast::<T>()));
            }
        },
        || (),
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    // SAFETY: from Box::<ModuleConfig>::into_raw in config_new.
    unsafe { destroy_boxed::<ModuleConfig>("config_destroy", config) }
}

/// Main thread: a config scheduler event (the fetching coordinators' tick).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    config_envoy_ptr: *mut c_void,
    config: *const c_void,
    _event_id: u64,
) {
    // SAFETY: Envoy passes the module config it got from config_new (or null).
    let Some(config) = (unsafe { config.cast::<ModuleConfig>().as_ref() }) else {
        return;
    };
    guard(
        "config_scheduled",
        || config.on_main_tick(jwks::scope(config_envoy_ptr)),
        || (),
    );
}

/// Main thread: the answer to a config-level callout (discovery, keys, or
/// the agent's token).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    config_envoy_ptr: *mut c_void,
    config: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const abi::EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *const EnvoyBuffer,
    body_chunks_size: usize,
) {
    // SAFETY: as in config_scheduled.
    let Some(config) = (unsafe { config.cast::<ModuleConfig>().as_ref() }) else {
        return;
    };
    guard(
        "config_http_callout_done",
        || {
            // SAFETY: Envoy lends these arrays for the duration of the hook.
            let response = unsafe {
                jwks::callout_response(result, headers, headers_size, body_chunks, body_chunks_size)
            };
            config.on_main_callout(jwks::scope(config_envoy_ptr), callout_id, response);
        },
        || (),
    );
}

// ---- per stream ----

/// The per-stream object. Only this stream's worker thread touches it.
struct Filter {
    config: *const ModuleConfig,
    /// While the request waits (keys, or the agent's token): its waiter id
    /// and what it keeps.
    parked: RefCell<Option<(u64, Parked)>>,
    /// The headers hook stopped the request (parked, or answered locally)
    /// and it has not been resumed: body and trailers must stop too, or
    /// Envoy would forward the request on their `Continue` (fail open).
    held: Cell<bool>,
}

impl Filter {
    /// # Safety
    /// `ptr` must be a pointer returned by `on_http_filter_new`, not yet destroyed.
    unsafe fn get<'a>(ptr: *const c_void) -> Option<(&'a Filter, &'a ModuleConfig)> {
        let filter = ptr.cast::<Filter>().as_ref()?;
        Some((filter, filter.config.as_ref()?))
    }

    /// Applies a verdict; returns whether the request continues now.
    fn conclude(&self, config: &ModuleConfig, stream: Stream, verdict: Verdict<Parked>) -> bool {
        let go = matches!(verdict, Verdict::Continue);
        self.held.set(!go);
        match verdict {
            Verdict::Continue => true,
            Verdict::Answered => false,
            Verdict::Park(flow) => {
                let Some(scheduler) = stream.scheduler() else {
                    fail_closed(stream);
                    return false;
                };
                let id = waiters::park(config.id(), flow.deadline_ms(), flow.forced(), scheduler);
                let missed = flow.missed_wake(config);
                *self.parked.borrow_mut() = Some((id, flow));
                if missed {
                    waiters::wake_one(id);
                }
                false
            }
        }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    _filter_envoy_ptr: *mut c_void,
) -> *const c_void {
    guard(
        "filter_new",
        || {
            Box::into_raw(Box::new(Filter {
                config: config.cast(),
                parked: RefCell::new(None),
                held: Cell::new(false),
            }))
            .cast_const()
            .cast()
        },
        std::ptr::null,
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    // A request gone while parked: forget its scheduler first.
    // SAFETY: `filter` is live until the drop below.
    if let Some((filter, _)) = unsafe { Filter::get(filter) } {
        if let Some((id, _)) = filter.parked.borrow_mut().take() {
            waiters::forget(id);
        }
    }
    // SAFETY: from Box::<Filter>::into_raw in filter_new.
    unsafe { destroy_boxed::<Filter>("filter_destroy", filter) }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: *mut c_void,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    let stream = Stream(filter_envoy_ptr);
    // SAFETY: `filter` is live for the stream; its config outlives it.
    let found = unsafe { Filter::get(filter) };
    guard(
        "request_headers",
        || match found {
            Some((filter, config)) => {
                let verdict = config.on_request_headers(stream);
                if filter.conclude(config, stream, verdict) {
                    abi::HEADERS_CONTINUE
                } else {
                    abi::HEADERS_STOP_ITERATION
                }
            }
            None => {
                fail_closed(stream);
                abi::HEADERS_STOP_ITERATION
            }
        },
        || {
            if let Some((filter, config)) = found {
                filter.held.set(true);
                stream.increment(config.panics());
            }
            fail_closed(stream);
            abi::HEADERS_STOP_ITERATION
        },
    )
}

// The remaining hooks are required by Envoy 1.40 (resolved by name when the
// configuration loads) but the inbound role has nothing to do in them yet.
// Argument types are those of abi.h; they are ignored, so nothing is read.

/// True while the request must not move on (see `Filter::held`); a missing
/// filter object holds too (fail closed).
fn held(filter: *const c_void) -> bool {
    // SAFETY: `filter` is live for the stream.
    unsafe { Filter::get(filter) }.is_none_or(|(filter, _)| filter.held.get())
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _filter_envoy_ptr: *mut c_void,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    if held(filter) {
        abi::BODY_STOP_AND_BUFFER
    } else {
        abi::CONTINUE
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _filter_envoy_ptr: *mut c_void,
    filter: *const c_void,
) -> u32 {
    if held(filter) {
        abi::TRAILERS_STOP_ITERATION
    } else {
        abi::CONTINUE
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
) {
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const c_void,
    _headers_size: usize,
    _body_chunks: *const EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _stream_id: u64,
    _headers: *const c_void,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _stream_id: u64,
    _trailers: *const c_void,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

/// A parked request was woken (keys changed, a fetch settled, or its wait
/// bound elapsed): decide it on this worker, or park it again.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    filter_envoy_ptr: *mut c_void,
    filter: *const c_void,
    _event_id: u64,
) {
    let stream = Stream(filter_envoy_ptr);
    // SAFETY: Envoy runs this on the stream's worker while the stream lives.
    let Some((filter, config)) = (unsafe { Filter::get(filter) }) else {
        return;
    };
    let Some((id, parked)) = filter.parked.borrow_mut().take() else {
        return; // already decided (a stale wake-up)
    };
    waiters::forget(id);
    guard(
        "scheduled",
        || {
            let verdict = config.resume(stream, parked);
            if filter.conclude(config, stream, verdict) {
                stream.continue_decoding();
            }
        },
        || {
            filter.held.set(true);
            stream.increment(config.panics());
            fail_closed(stream);
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy_ptr: *mut c_void,
    _filter: *const c_void,
) {
}
