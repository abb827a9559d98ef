//! The small surface the core needs from its proxy host.
//!
//! The proxy-wasm adapter implements [`Host`] (and its [`SharedStore`]) with
//! hostcalls; tests implement it with an in-memory fake so the fetcher can be
//! driven in any order (including a callout answered after the request that
//! caused it is gone).

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

/// The store every worker of one proxy process shares: get, and set with
/// compare-and-swap. The fetcher's lease, state and document records live
/// here. proxy-wasm implements it with Envoy shared data; a native host
/// (one process, worker threads) can implement it with process memory under a
/// lock, with the same semantics:
///
/// - a read returns the value and a version (`cas`), `None` when the key is absent;
/// - a write with `Some(cas)` fails with [`SharedWriteError::CasMismatch`] if
///   the key was written since that version was read; `None` (or `Some(0)`)
///   writes unconditionally, and a write to an absent key always succeeds
///   (Envoy's rule, which the fetcher is built to tolerate);
/// - every successful write gives the key a new version.
pub trait SharedStore {
    fn shared_get(&self, key: &str) -> SharedValue;
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>)
        -> Result<(), SharedWriteError>;
}

/// Host services of a worker's root context: the clock, the shared store,
/// callouts and logs. No proxy-wasm type appears here, so a native Envoy
/// dynamic module can implement it as the wasm adapter does.
pub trait Host: SharedStore {
    fn now_ms(&self) -> UnixMillis;
    fn dispatch(&mut self, request: &CalloutRequest) -> Result<CalloutToken, String>;
    fn log(&self, level: LogLevel, message: &str);
}
