//! `Host` for the core, implemented with proxy-wasm hostcalls.

use std::time::{Duration, UNIX_EPOCH};

use entragate_core::host::{
    peer_identities, CalloutRequest, CalloutToken, HeaderWriteError, Host, LogLevel, PeerSan,
    RequestHeaders, SharedStore, SharedValue, SharedWriteError, UnixMillis,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;
use proxy_wasm::types::{MapType, Status};

/// The hostcall-backed host. Only used from root-context callbacks: callouts
/// dispatched through it are answered to the root context, which outlives any
/// request (a request that goes away cannot cancel the shared JWKS fetch).
pub struct ProxyWasmHost;

/// Implementing `Context` gives us the SDK's `dispatch_http_call`, which also
/// registers the callout token so the answer is routed to the active (root) context.
impl Context for ProxyWasmHost {}

pub fn now_ms() -> UnixMillis {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as UnixMillis)
        .unwrap_or(0)
}

pub fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => proxy_wasm::types::LogLevel::Debug,
        LogLevel::Info => proxy_wasm::types::LogLevel::Info,
        LogLevel::Warn => proxy_wasm::types::LogLevel::Warn,
        LogLevel::Error => proxy_wasm::types::LogLevel::Error,
    };
    // Nothing useful can be done if logging itself fails.
    let _ = hostcalls::log(level, message);
}

impl SharedStore for ProxyWasmHost {
    fn shared_get(&self, key: &str) -> SharedValue {
        match hostcalls::get_shared_data(key) {
            Ok((data, cas)) => SharedValue { data, cas },
            Err(_) => SharedValue::default(),
        }
    }

    fn shared_set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SharedWriteError::CasMismatch),
            Err(_) => Err(SharedWriteError::Failed),
        }
    }
}

impl Host for ProxyWasmHost {
    fn now_ms(&self) -> UnixMillis {
        now_ms()
    }

    fn dispatch(&mut self, request: &CalloutRequest) -> Result<CalloutToken, String> {
        let mut headers = vec![
            (":method", "GET"),
            (":path", request.path.as_str()),
            (":authority", request.authority.as_str()),
            (":scheme", "https"),
            ("accept", "application/json"),
            ("user-agent", "entragate"),
        ];
        headers.extend(
            request
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        self.dispatch_http_call(
            &request.cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(request.timeout_ms),
        )
        .map_err(|status| format!("dispatch to cluster {} failed: {status:?}", request.cluster))
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(level, message)
    }
}

/// The current (effective) HTTP context's request headers. In a request
/// callback that is the request itself; when the root context resumes a
/// waiting request it first makes that request's context effective.
pub struct RequestHeaderMap;

impl RequestHeaders for RequestHeaderMap {
    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        // proxy-wasm copies the map into the VM in one hostcall anyway.
        for (name, value) in hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default() {
            each(&name, &value);
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn remove(&mut self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), HeaderWriteError> {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
            .map_err(|_| HeaderWriteError)
    }

    /// Envoy's connection attributes, verified by the TLS transport socket.
    fn peer_certificate_identities(&self) -> Vec<String> {
        peer_identities(|san| {
            let name = match san {
                PeerSan::Uri => "uri_san_peer_certificate",
                PeerSan::Dns => "dns_san_peer_certificate",
            };
            hostcalls::get_property(vec!["connection", name])
                .ok()
                .flatten()
        })
    }
}
