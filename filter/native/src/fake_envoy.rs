//! Stand-ins for the Envoy callbacks the module imports, so the unit-test
//! binary links (the real ones exist only inside Envoy). They do nothing:
//! the adapter's behaviour against Envoy is tested in the real Envoy
//! (tests/tests/native_module.rs); unit tests here cover what needs no host.
//! Rust's clashing-extern-declarations lint checks these signatures against
//! the declarations in `abi.rs`.

use std::ffi::c_void;

use crate::abi::{EnvoyBuffer, EnvoyHttpHeader, ModuleBuffer, ModuleHttpHeader};

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, _message: ModuleBuffer) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log_enabled(_level: u32) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_header(
    _filter_envoy_ptr: *mut c_void,
    _header_type: u32,
    _key: ModuleBuffer,
    _result: *mut EnvoyBuffer,
    _index: usize,
    _optional_size: *mut usize,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
    _filter_envoy_ptr: *mut c_void,
    _attribute_id: u32,
    _result: *mut EnvoyBuffer,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_headers_size(
    _filter_envoy_ptr: *mut c_void,
    _header_type: u32,
) -> usize {
    0
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_headers(
    _filter_envoy_ptr: *mut c_void,
    _header_type: u32,
    _result_headers: *mut EnvoyHttpHeader,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_header(
    _filter_envoy_ptr: *mut c_void,
    _header_type: u32,
    _key: ModuleBuffer,
    _value: ModuleBuffer,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_send_response(
    _filter_envoy_ptr: *mut c_void,
    _status_code: u32,
    _headers: *const ModuleHttpHeader,
    _headers_size: usize,
    _body: ModuleBuffer,
    _details: ModuleBuffer,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_counter(
    _config_envoy_ptr: *mut c_void,
    _name: ModuleBuffer,
    _label_names: *const ModuleBuffer,
    _label_names_length: usize,
    _counter_id_ptr: *mut usize,
) -> u32 {
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_increment_counter(
    _filter_envoy_ptr: *mut c_void,
    _id: usize,
    _label_values: *const ModuleBuffer,
    _label_values_length: usize,
    _value: u64,
) -> u32 {
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
    _config_envoy_ptr: *mut c_void,
    _id: usize,
    _label_values: *const ModuleBuffer,
    _label_values_length: usize,
    _value: u64,
) -> u32 {
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
    _config_envoy_ptr: *mut c_void,
) -> *mut c_void {
    std::ptr::null_mut()
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
    _scheduler: *mut c_void,
    _event_id: u64,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
    _scheduler: *mut c_void,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_http_callout(
    _config_envoy_ptr: *mut c_void,
    _callout_id_out: *mut u64,
    _cluster_name: ModuleBuffer,
    _headers: *const ModuleHttpHeader,
    _headers_size: usize,
    _body: ModuleBuffer,
    _timeout_milliseconds: u64,
) -> u32 {
    2
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_new(
    _filter_envoy_ptr: *mut c_void,
) -> *mut c_void {
    std::ptr::null_mut()
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
    _scheduler: *mut c_void,
    _event_id: u64,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_delete(_scheduler: *mut c_void) {}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_continue_decoding(
    _filter_envoy_ptr: *mut c_void,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
    _config_envoy_ptr: *mut c_void,
    _name: ModuleBuffer,
    _label_names: *const ModuleBuffer,
    _label_names_length: usize,
    _gauge_id_ptr: *mut usize,
) -> u32 {
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
    _config_envoy_ptr: *mut c_void,
    _id: usize,
    _label_values: *const ModuleBuffer,
    _label_values_length: usize,
    _value: u64,
) -> u32 {
    1
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_cluster_name(
    _filter_envoy_ptr: *mut c_void,
    _result: *mut EnvoyBuffer,
) -> bool {
    false
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
    _filter_envoy_ptr: *mut c_void,
    _key: ModuleBuffer,
    _value: ModuleBuffer,
) -> bool {
    false
}
