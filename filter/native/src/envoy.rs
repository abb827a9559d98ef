//! Safe wrappers over the callbacks in [`crate::abi`]: the only `unsafe` calls
//! into Envoy. Each wrapper copies what Envoy lends (a header value is valid
//! only until the header map changes) and lends what it passes only for the
//! duration of the call.

use std::ffi::c_void;

use entragate_core::host::{peer_identities, HeaderWriteError, LogLevel, PeerSan, RequestHeaders};
use entragate_core::inbound::metrics::MetricKind;

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, ModuleBuffer, ModuleHttpHeader};

/// Headers as the ABI takes them: pointers into `headers`, which must outlive
/// the callback they are passed to.
fn module_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> Vec<ModuleHttpHeader> {
    headers
        .iter()
        .map(|(name, value)| {
            let (name, value) = (name.as_ref(), value.as_ref());
            ModuleHttpHeader {
                key_ptr: name.as_ptr(),
                key_length: name.len(),
                value_ptr: value.as_ptr(),
                value_length: value.len(),
            }
        })
        .collect()
}

/// Copies `length` bytes Envoy lends at `ptr` (null or empty: "").
///
/// # Safety
/// `ptr` must be null or point to `length` readable bytes.
unsafe fn copy_envoy_bytes(ptr: *const u8, length: usize) -> String {
    lend_envoy_bytes(ptr, length).into_owned()
}

/// Borrows `length` bytes Envoy lends at `ptr` as text (null or empty: "";
/// bytes that are not UTF-8 are replaced, which allocates only then).
///
/// # Safety
/// `ptr` must be null or point to `length` bytes readable for `'a`.
unsafe fn lend_envoy_bytes<'a>(ptr: *const u8, length: usize) -> std::borrow::Cow<'a, str> {
    if ptr.is_null() || length == 0 {
        return std::borrow::Cow::Borrowed("");
    }
    let bytes = std::slice::from_raw_parts(ptr, length);
    // `from_utf8` first: it checks ASCII a word at a time, where the lossy
    // decoder walks byte by byte (a profile showed that walk over the
    // Authorization header as the module's largest cost per request).
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Request headers read without allocating: a request has about ten (a
/// larger map goes to the heap).
const HEADERS_ON_STACK: usize = 32;

/// Envoy's `DynamicModuleHttpFilter` for the current stream. Valid from
/// `on_http_filter_new` to `on_http_filter_destroy`, and only on the worker
/// thread that runs the stream, which is the only place hooks receive it.
#[derive(Clone, Copy)]
pub struct Stream(pub *mut c_void);

impl Stream {
    /// Calls `each` with every request header, in order (names lower-case,
    /// as Envoy stores them), borrowed from Envoy's map: nothing is copied
    /// here, and a request's few headers need no allocation either.
    fn for_each_request_header(self, each: &mut dyn FnMut(&str, &str)) {
        // SAFETY: live filter pointer.
        let size = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers_size(self.0, abi::REQUEST_HEADER)
        };
        let empty = EnvoyHttpHeader {
            key_ptr: std::ptr::null(),
            key_length: 0,
            value_ptr: std::ptr::null(),
            value_length: 0,
        };
        let mut on_stack = [empty; HEADERS_ON_STACK];
        let mut on_heap = Vec::new();
        let raw: &mut [EnvoyHttpHeader] = match on_stack.get_mut(..size) {
            Some(raw) => raw,
            None => {
                on_heap.resize(size, empty);
                &mut on_heap
            }
        };
        if raw.is_empty() {
            return;
        }
        // SAFETY: `raw` has room for the `size` entries Envoy just reported, and
        // nothing changes the map between the two calls (same thread, same hook).
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers(
                self.0,
                abi::REQUEST_HEADER,
                raw.as_mut_ptr(),
            )
        };
        if !ok {
            return;
        }
        for header in raw.iter() {
            // SAFETY: each entry points into Envoy's header map, unchanged until
            // this hook returns (`each` only reads; writes come after the visit).
            let (name, value) = unsafe {
                (
                    lend_envoy_bytes(header.key_ptr, header.key_length),
                    lend_envoy_bytes(header.value_ptr, header.value_length),
                )
            };
            each(&name, &value);
        }
    }

    fn request_header(self, name: &str, index: usize, count: *mut usize) -> Option<String> {
        let mut value = EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        };
        // SAFETY: `self.0` is the live filter pointer Envoy gave this hook; the
        // key is borrowed for the call; `value`/`count` are valid out-pointers
        // (or null for `count`, which the ABI allows).
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.0,
                abi::REQUEST_HEADER,
                ModuleBuffer::of(name.as_bytes()),
                &mut value,
                index,
                count,
            )
        };
        if !found {
            return None;
        }
        // SAFETY: Envoy returned `length` readable bytes at `ptr`, valid until the
        // header map changes; they are copied before any other callback.
        Some(unsafe { copy_envoy_bytes(value.ptr, value.length) })
    }

    /// The bytes of a string attribute (`abi::ATTRIBUTE_*`), if Envoy has it.
    fn attribute_bytes(self, attribute_id: u32) -> Option<Vec<u8>> {
        let mut value = EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        };
        // SAFETY: live filter pointer; `value` is a valid out-pointer.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.0,
                attribute_id,
                &mut value,
            )
        };
        if !found || value.ptr.is_null() {
            return None;
        }
        // SAFETY: Envoy returned `length` readable bytes at `ptr`, owned by
        // the connection's TLS state; copied at once.
        Some(unsafe { std::slice::from_raw_parts(value.ptr, value.length) }.to_vec())
    }

    /// Replaces request header `name` with `value` (an empty value removes it:
    /// see the ABI note).
    fn set_request_header(self, name: &str, value: &str) -> bool {
        // SAFETY: live filter pointer; both buffers borrowed for the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.0,
                abi::REQUEST_HEADER,
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            )
        }
    }

    /// Removes every value of request header `name`.
    fn remove_request_header(self, name: &str) -> bool {
        // SAFETY: live filter pointer; an empty value means "remove" in 1.40.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.0,
                abi::REQUEST_HEADER,
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::EMPTY,
            )
        }
    }

    /// Answers the request locally; `details` shows up as the response code
    /// details in Envoy's access log.
    pub fn send_response(
        self,
        status: u16,
        headers: &[(String, String)],
        body: &str,
        details: &str,
    ) {
        let headers = module_headers(headers);
        // SAFETY: live filter pointer; the header array and the strings it points
        // into, the body and the details all outlive the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.0,
                u32::from(status),
                headers.as_ptr(),
                headers.len(),
                ModuleBuffer::of(body.as_bytes()),
                ModuleBuffer::of(details.as_bytes()),
            );
        }
    }

    /// Resumes a request paused by returning StopIteration from its headers hook.
    pub fn continue_decoding(self) {
        // SAFETY: live filter pointer (called from this stream's hooks).
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.0) }
    }

    /// A handle to run `on_http_filter_scheduled` on this stream's worker.
    pub fn scheduler(self) -> Option<StreamScheduler> {
        // SAFETY: live filter pointer.
        let ptr = unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(self.0) };
        (!ptr.is_null()).then_some(StreamScheduler(ptr))
    }

    /// Adds one to a counter defined at configuration time.
    pub fn increment(self, counter: Option<usize>) {
        self.add(counter, 1);
    }

    /// Adds `value` to a counter defined at configuration time (0 is skipped).
    pub fn add(self, counter: Option<usize>, value: u64) {
        let Some(id) = counter.filter(|_| value > 0) else {
            return;
        };
        // SAFETY: live filter pointer; `id` came from define_counter on this
        // filter's configuration; no labels.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                self.0,
                id,
                std::ptr::null(),
                0,
                value,
            );
        }
    }
}

/// The request's header map, for the core's reading and writing of it.
impl RequestHeaders for Stream {
    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        self.for_each_request_header(each);
    }

    fn get(&self, name: &str) -> Option<String> {
        self.request_header(name, 0, std::ptr::null_mut())
    }

    fn remove(&mut self, name: &str) {
        self.remove_request_header(name);
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), HeaderWriteError> {
        if self.set_request_header(name, value) {
            Ok(())
        } else {
            Err(HeaderWriteError)
        }
    }

    /// The downstream connection's peer certificate, verified by Envoy's TLS
    /// transport socket: the same attributes the wasm filter reads.
    fn peer_certificate_identities(&self) -> Vec<String> {
        peer_identities(|san| {
            self.attribute_bytes(match san {
                PeerSan::Uri => abi::ATTRIBUTE_CONNECTION_URI_SAN_PEER_CERTIFICATE,
                PeerSan::Dns => abi::ATTRIBUTE_CONNECTION_DNS_SAN_PEER_CERTIFICATE,
            })
        })
    }
}

/// Envoy's `DynamicModuleHttpFilterConfig`: counters are defined during
/// `on_http_filter_config_new`; callouts are made on the main thread only.
#[derive(Clone, Copy)]
pub struct ConfigScope(pub *mut c_void);

impl ConfigScope {
    /// Adds one to a counter, from the main thread (no stream there).
    pub fn increment(self, counter: Option<usize>) {
        self.update(
            abi::envoy_dynamic_module_callback_http_filter_config_increment_counter,
            counter,
            1,
        );
    }

    /// Calls a config-level metric callback (increment a counter, set a
    /// gauge: one C signature) on an unlabelled metric, if it was defined.
    fn update(
        self,
        callback: unsafe extern "C" fn(*mut c_void, usize, *const ModuleBuffer, usize, u64) -> u32,
        metric: Option<usize>,
        value: u64,
    ) {
        let Some(id) = metric else { return };
        // SAFETY: live config pointer (config_new or a main-thread hook);
        // `id` came from define on this configuration; no labels.
        unsafe {
            callback(self.0, id, std::ptr::null(), 0, value);
        }
    }

    /// A GET through `cluster`; the answer comes to
    /// `on_http_filter_config_http_callout_done` with the returned id.
    pub fn http_get(
        self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u64, String> {
        let headers = module_headers(headers);
        let mut id = 0u64;
        // SAFETY: live config pointer on the main thread; every buffer outlives the call.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.0,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                headers.as_ptr(),
                headers.len(),
                ModuleBuffer::EMPTY,
                timeout_ms,
            )
        };
        if result == abi::CALLOUT_SUCCESS {
            Ok(id)
        } else {
            // 1 missing headers, 2 cluster not found, 3 duplicate id, 4 cannot create.
            Err(format!("callout refused by Envoy (init result {result})"))
        }
    }

    /// A handle to run `on_http_filter_config_scheduled` on the main thread.
    pub fn scheduler(self) -> Option<ConfigScheduler> {
        // SAFETY: live config pointer.
        let ptr =
            unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.0) };
        (!ptr.is_null()).then_some(ConfigScheduler(ptr))
    }

    /// Defines a counter; `None` when Envoy refuses (the metric is then simply
    /// not counted: metrics never decide a request).
    pub fn define_counter(self, name: &str) -> Option<usize> {
        self.define(MetricKind::Counter, name)
    }

    /// Defines a counter or a gauge, as [`ConfigScope::define_counter`].
    pub fn define(self, kind: MetricKind, name: &str) -> Option<usize> {
        let define = match kind {
            MetricKind::Counter => {
                abi::envoy_dynamic_module_callback_http_filter_config_define_counter
            }
            MetricKind::Gauge => abi::envoy_dynamic_module_callback_http_filter_config_define_gauge,
        };
        let mut id = 0usize;
        // SAFETY: the config pointer is live during config_new; the name is
        // borrowed for the call; `id` is a valid out-pointer; no labels. Both
        // callbacks have the same C signature.
        let result = unsafe {
            define(
                self.0,
                ModuleBuffer::of(name.as_bytes()),
                std::ptr::null(),
                0,
                &mut id,
            )
        };
        (result == abi::METRICS_SUCCESS).then_some(id)
    }

    /// Sets a gauge defined by [`ConfigScope::define`].
    pub fn set_gauge(self, gauge: Option<usize>, value: u64) {
        self.update(
            abi::envoy_dynamic_module_callback_http_filter_config_set_gauge,
            gauge,
            value,
        );
    }
}

/// Runs `on_http_filter_config_scheduled` on the main thread when committed.
/// Envoy documents commit as callable from any thread; deleted on drop.
pub struct ConfigScheduler(*mut c_void);

// SAFETY: Envoy's config scheduler posts to the main dispatcher and may be
// committed from any thread; the module never dereferences the pointer.
unsafe impl Send for ConfigScheduler {}
// SAFETY: as above: `commit` is the only operation and it is thread-safe.
unsafe impl Sync for ConfigScheduler {}

impl ConfigScheduler {
    pub fn commit(&self, event_id: u64) {
        // SAFETY: a live scheduler (deleted only on drop).
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event_id)
        }
    }
}

impl Drop for ConfigScheduler {
    fn drop(&mut self) {
        // SAFETY: created by scheduler_new, deleted exactly once.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
    }
}

/// Runs `on_http_filter_scheduled` on a stream's worker when committed (from
/// any thread); a no-op once the stream is gone. Deleted on drop.
pub struct StreamScheduler(*mut c_void);

// SAFETY: Envoy's filter scheduler holds a weak reference to the stream and
// posts to its worker's dispatcher: commit and delete are safe from any thread.
unsafe impl Send for StreamScheduler {}

impl StreamScheduler {
    pub fn commit(&self, event_id: u64) {
        // SAFETY: a live scheduler (deleted only on drop).
        unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(self.0, event_id) }
    }
}

impl Drop for StreamScheduler {
    fn drop(&mut self) {
        // SAFETY: created by scheduler_new, deleted exactly once.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(self.0) }
    }
}

/// Logs through Envoy's logger (component `dynamic_modules`), skipping the
/// formatting cost when the level is off.
pub fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => abi::LOG_DEBUG,
        LogLevel::Info => abi::LOG_INFO,
        LogLevel::Warn => abi::LOG_WARN,
        LogLevel::Error => abi::LOG_ERROR,
    };
    // SAFETY: plain calls with a borrowed buffer; callable from any thread.
    unsafe {
        if abi::envoy_dynamic_module_callback_log_enabled(level) {
            abi::envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes()));
        }
    }
}

/// The callee's audit record.
impl Stream {
    /// Stores `value` in the stream's filter state under `key` (for the access
    /// log's `%FILTER_STATE(<key>:PLAIN)%`), read-only to other filters. Envoy
    /// copies both. False when Envoy has no stream info to hold it.
    pub fn set_filter_state(self, key: &str, value: &str) -> bool {
        // SAFETY: live filter pointer; both buffers borrowed for the call
        // (Envoy copies the key and the value into its own string).
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.0,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            )
        }
    }
}

/// The outbound role's reads (kept apart from the inbound ones above).
impl Stream {
    /// The upstream cluster the route chose for this request, if any (the
    /// outbound role matches destinations by it, as the wasm filter does
    /// with `xds.cluster_name`).
    pub fn cluster_name(self) -> Option<String> {
        let mut value = EnvoyBuffer {
            ptr: std::ptr::null(),
            length: 0,
        };
        // SAFETY: live filter pointer; `value` is a valid out-pointer.
        let found =
            unsafe { abi::envoy_dynamic_module_callback_http_get_cluster_name(self.0, &mut value) };
        // SAFETY: Envoy returned `length` readable bytes at `ptr` (the
        // cluster's name, which outlives this hook); copied at once.
        found.then(|| unsafe { copy_envoy_bytes(value.ptr, value.length) })
    }
}
