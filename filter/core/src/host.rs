//! The small surface the core needs from its proxy host.
//!
//! The proxy-wasm adapter implements [`Host`] with hostcalls; tests implement it
//! with an in-memory fake so the JWKS state machine can be driven in any order
//! (including a callout answered after the request that caused it is gone).

/// Milliseconds since the Unix epoch, as reported by the host clock.
pub type UnixMillis = u64;

/// Result of reading one shared-data key: the value and its CAS version.
/// `cas` is `None` when the key does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedValue {
    pub data: Option<Vec<u8>>,
    pub cas: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedWriteError {
    /// Someone else wrote the key since we read it (the CAS did not match).
    CasMismatch,
    /// Any other host failure.
    Failed,
}

/// An HTTP GET through an Envoy cluster (a callout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutRequest {
    pub cluster: String,
    /// `:authority` sent to the cluster (the IdP host name).
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    /// Extra request headers, e.g. the outbound role's credential for the
    /// local agent. Values may be secrets: never log them.
    pub headers: Vec<(String, String)>,
}

/// What came back from a callout. `status == None` means no HTTP response at all
/// (connection failure, reset, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutResponse {
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// Identifies one in-flight callout; matches the proxy-wasm token.
pub type CalloutToken = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Host services used by the JWKS coordinator. Request data (headers, path) is
/// not behind this trait: the adapter copies it into plain structs first.
pub trait Host {
    fn now_ms(&self) -> UnixMillis;
    fn shared_get(&self, key: &str) -> SharedValue;
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>)
        -> Result<(), SharedWriteError>;
    fn dispatch(&mut self, request: &CalloutRequest) -> Result<CalloutToken, String>;
    fn log(&self, level: LogLevel, message: &str);
}
