//! Host foreign functions (`proxy_call_foreign_function`), without the SDK's
//! wrapper: `proxy_wasm::hostcalls::call_foreign_function` panics on a status
//! it does not know, and a host that answers with one (another proxy-wasm
//! host, a newer Envoy) must make us fall back, not abort the VM.

use entragate_core::token::ForeignFunction;

#[allow(clashing_extern_declarations)] // same import as the SDK's, with a raw status
extern "C" {
    /// The proxy-wasm ABI 0.2 import. The status is read as a plain integer:
    /// reading an unknown value into the SDK's `Status` enum would be undefined.
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// proxy-wasm `WasmResult` values that foreign functions return.
fn status_name(status: u32) -> &'static str {
    match status {
        1 => "NotFound",
        2 => "BadArgument",
        3 => "SerializationFailure",
        4 => "ParseFailure",
        10 => "InternalFailure",
        12 => "Unimplemented",
        _ => "unexpected status",
    }
}

/// The running host's foreign functions.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostForeignFunctions;

impl ForeignFunction for HostForeignFunctions {
    fn call(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, String> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the pointers describe live slices for the duration of the
        // call; on success the host hands back a buffer it allocated through
        // our `proxy_on_memory_allocate` export (the SDK's, a `Vec<u8>` of
        // exactly `size` bytes), whose ownership we take exactly once.
        let status = unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                arguments.as_ptr(),
                arguments.len(),
                &mut data,
                &mut size,
            )
        };
        match status {
            0 if data.is_null() => Ok(Vec::new()),
            // SAFETY: see above.
            0 => Ok(unsafe { Vec::from_raw_parts(data, size, size) }),
            other => Err(format!("{name}: {} ({other})", status_name(other))),
        }
    }
}
