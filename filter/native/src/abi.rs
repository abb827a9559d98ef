//! The part of Envoy's dynamic-module ABI this module uses, declared by hand.
//!
//! Pinned to **Envoy 1.40.0, ABI `v0.2.0`** (`source/extensions/dynamic_modules/abi/abi.h`).
//! Upstream's Rust SDK is a git-only dependency that runs bindgen + libclang at
//! build time; declaring the handful of items we use keeps the build plain
//! `cargo` and makes every crossing of the boundary visible in one file.
//!
//! How the declarations are proven against the binary (see docs/native.md):
//! - every callback below must be exported by the Envoy binary: a Rust cdylib
//!   links with `-z now`, so a missing one fails `dlopen` and Envoy rejects the
//!   config (`tests/tests/native_module.rs` runs `envoy --mode validate` and
//!   also lists the module's undefined `envoy_*` symbols against `nm -D` of
//!   the pinned binary);
//! - every hook Envoy resolves by name must be exported here (a missing
//!   required hook rejects the config, same test);
//! - a changed *signature* is invisible to both checks: only serving real
//!   requests through the real binary catches it, which the same test does for
//!   each callback (header read/remove/set, local reply, counters, log), and
//!   `tests/tests/mesh_mtls.rs` for the peer certificate's attributes.
//!
//! C enums are passed as `u32` (their C ABI on every platform Envoy ships);
//! only the values used are named.

use std::ffi::c_void;

/// What `envoy_dynamic_module_on_program_init` returns. Envoy 1.40.0 compares it
/// with its own and only logs a warning on a mismatch, so the test also checks
/// the log for that warning.
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    /// Borrows `bytes` for the duration of one callback.
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    pub const EMPTY: ModuleBuffer = ModuleBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_envoy_http_header`: a header Envoy lends.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_http_header_type_RequestHeader`.
pub const REQUEST_HEADER: u32 = 0;

/// `envoy_dynamic_module_type_attribute_id_ConnectionDnsSanPeerCertificate`
/// and `..._ConnectionUriSanPeerCertificate` (`connection.dns_san_peer_certificate`,
/// `connection.uri_san_peer_certificate`). Proven against the 1.40.0 binary:
/// its `get_attribute_string` jump table sends 35 and 37 to getters that call
/// `Ssl::ConnectionInfo::dnsSansPeerCertificate` / `uriSanPeerCertificate`
/// and return the span's first element only (docs/native.md), and the mesh
/// test serves through both (tests/tests/mesh_mtls.rs).
pub const ATTRIBUTE_CONNECTION_DNS_SAN_PEER_CERTIFICATE: u32 = 35;
pub const ATTRIBUTE_CONNECTION_URI_SAN_PEER_CERTIFICATE: u32 = 37;

/// `envoy_dynamic_module_type_log_level`.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

/// `envoy_dynamic_module_type_http_callout_init_result_Success` and
/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_on_http_filter_request_headers_status`.
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
/// Shared by the body/trailers/response statuses: `..._Continue`.
pub const CONTINUE: u32 = 0;
/// `..._request_body_status_StopIterationAndBuffer`.
pub const BODY_STOP_AND_BUFFER: u32 = 1;
/// `..._request_trailers_status_StopIteration`.
pub const TRAILERS_STOP_ITERATION: u32 = 1;

extern "C" {
    /// `void envoy_dynamic_module_callback_log(log_level, module_buffer message)`.
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);

    /// `bool envoy_dynamic_module_callback_log_enabled(log_level)`.
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    /// `bool ..._http_get_header(filter_envoy_ptr, header_type, module_buffer key,
    /// envoy_buffer* result, size_t index, size_t* optional_size)`: the `index`-th
    /// value of `key`; `optional_size` (may be null) receives how many there are.
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter_envoy_ptr: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;

    /// `bool ..._http_filter_get_attribute_string(filter_envoy_ptr, attribute_id,
    /// envoy_buffer* result)`: one out-struct in 1.40.0 (earlier releases took a
    /// pointer and a length out-parameter); false when the attribute is absent
    /// (no connection, no TLS, no such SAN). `result` points into Envoy's
    /// connection state, valid during the hook.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter_envoy_ptr: *mut c_void,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;

    /// `size_t ..._http_get_headers_size(filter_envoy_ptr, header_type)`: how
    /// many entries (name/value pairs) the map holds.
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter_envoy_ptr: *mut c_void,
        header_type: u32,
    ) -> usize;

    /// `bool ..._http_get_headers(filter_envoy_ptr, header_type,
    /// envoy_http_header* result_headers)`: fills `result_headers`, which must
    /// have room for `..._get_headers_size` entries.
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter_envoy_ptr: *mut c_void,
        header_type: u32,
        result_headers: *mut EnvoyHttpHeader,
    ) -> bool;

    /// `bool ..._http_set_header(filter_envoy_ptr, header_type, module_buffer key,
    /// module_buffer value)`: replaces every value of `key`; an empty value
    /// removes the header (there is no separate remove callback for HTTP filters
    /// in 1.40).
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    /// `void ..._http_send_response(filter_envoy_ptr, uint32_t status_code,
    /// module_http_header* headers, size_t headers_size, module_buffer body,
    /// module_buffer details)`.
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter_envoy_ptr: *mut c_void,
        status_code: u32,
        headers: *const ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    /// `metrics_result ..._http_filter_config_define_counter(config_envoy_ptr,
    /// module_buffer name, module_buffer* label_names, size_t label_names_length,
    /// size_t* counter_id_ptr)`. Only valid inside `on_http_filter_config_new`
    /// (Envoy freezes stat creation right after).
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config_envoy_ptr: *mut c_void,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> u32;

    /// `metrics_result ..._http_filter_config_increment_counter(config_envoy_ptr,
    /// size_t id, module_buffer* label_values, size_t label_values_length,
    /// uint64_t value)`: for counters moved on the main thread (JWKS fetches).
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config_envoy_ptr: *mut c_void,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    /// `metrics_result ..._http_filter_config_define_gauge(config_envoy_ptr,
    /// module_buffer name, module_buffer* label_names, size_t label_names_length,
    /// size_t* gauge_id_ptr)`: as `define_counter`, only inside `config_new`.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config_envoy_ptr: *mut c_void,
        name: ModuleBuffer,
        label_names: *const ModuleBuffer,
        label_names_length: usize,
        gauge_id_ptr: *mut usize,
    ) -> u32;

    /// `metrics_result ..._http_filter_config_set_gauge(config_envoy_ptr, size_t id,
    /// module_buffer* label_values, size_t label_values_length, uint64_t value)`:
    /// gauges the configuration owns (keys loaded, signature backend).
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config_envoy_ptr: *mut c_void,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    /// `http_filter_config_scheduler_module_ptr ..._http_filter_config_scheduler_new(
    /// config_envoy_ptr)`: a handle whose `commit` runs
    /// `on_http_filter_config_scheduled` on the main thread; callable from any thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config_envoy_ptr: *mut c_void,
    ) -> *mut c_void;

    /// `void ..._http_filter_config_scheduler_commit(scheduler, uint64_t event_id)`.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: *mut c_void,
        event_id: u64,
    );

    /// `void ..._http_filter_config_scheduler_delete(scheduler)`.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: *mut c_void,
    );

    /// `http_callout_init_result ..._http_filter_config_http_callout(config_envoy_ptr,
    /// uint64_t* callout_id_out, module_buffer cluster_name, module_http_header*
    /// headers, size_t headers_size, module_buffer body, uint64_t timeout_milliseconds)`.
    /// Main thread only; the answer comes to `on_http_filter_config_http_callout_done`.
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config_envoy_ptr: *mut c_void,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *const ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> u32;

    /// `http_filter_scheduler_module_ptr ..._http_filter_scheduler_new(filter_envoy_ptr)`:
    /// a handle whose `commit` (from any thread) runs `on_http_filter_scheduled`
    /// on the stream's worker; a no-op once the stream is gone.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter_envoy_ptr: *mut c_void,
    ) -> *mut c_void;

    /// `void ..._http_filter_scheduler_commit(scheduler, uint64_t event_id)`.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: *mut c_void,
        event_id: u64,
    );

    /// `void ..._http_filter_scheduler_delete(scheduler)`.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: *mut c_void);

    /// `void ..._http_filter_continue_decoding(filter_envoy_ptr)`: resumes a
    /// request whose headers hook returned StopIteration.
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(
        filter_envoy_ptr: *mut c_void,
    );

    /// `metrics_result ..._http_filter_increment_counter(filter_envoy_ptr, size_t id,
    /// module_buffer* label_values, size_t label_values_length, uint64_t value)`.
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter_envoy_ptr: *mut c_void,
        id: usize,
        label_values: *const ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
}

// The outbound role's own callback (kept apart from the block above).
extern "C" {
    /// `bool ..._http_get_cluster_name(filter_envoy_ptr, envoy_buffer* result)`:
    /// the name of the upstream cluster the route chose (the decoder
    /// callbacks' cluster info), valid while the route is; false without one.
    /// Its layout in the 1.40.0 binary: null-checks `result`, then stores the
    /// name's pointer at `result` and its length at `result + 8`.
    pub fn envoy_dynamic_module_callback_http_get_cluster_name(
        filter_envoy_ptr: *mut c_void,
        result: *mut EnvoyBuffer,
    ) -> bool;
}

// The callee's audit record (kept apart from the blocks above).
extern "C" {
    /// `bool ..._http_set_filter_state_bytes(filter_envoy_ptr, module_buffer key,
    /// module_buffer value)`: stores `value` in the stream's filter state under
    /// `key`, where `%FILTER_STATE(<key>:PLAIN)%` prints it in the access log.
    /// False without stream info. Its layout in the 1.40.0 binary: the two
    /// buffers arrive by value in `%rsi`/`%rdx` (key pointer, length) and
    /// `%rcx`/`%r8` (value), which it passes on to a shared helper with no
    /// state type (`%r9` = 0, so `ReadOnly`) and no upstream sharing; the
    /// helper wraps the value in a string accessor and calls `setData`.
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter_envoy_ptr: *mut c_void,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
}
