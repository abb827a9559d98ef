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

/// A request header could not be written (the stream is gone, or the host
/// refused the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderWriteError;

/// The headers of the request being decided, as the request path's host
/// offers them (proxy-wasm: the current HTTP context's header map; a native
/// filter: its request header map). Names are lower-case, as Envoy stores
/// them; pseudo-headers (`:path`, `:authority`) are included.
///
/// The security-relevant rewrites (stripping spoofed claim headers,
/// replacing `Authorization` for the caller role) are written in the core
/// against this trait, so they are unit-tested without a proxy.
pub trait RequestHeaders {
    /// Calls `each` with every header, in order, repeated names kept (one
    /// read of the map). The host lends each name and value for the call
    /// only, so the core copies just what it keeps (a request on the hot path
    /// copies its method, path and token, not its whole header map).
    fn for_each(&self, each: &mut dyn FnMut(&str, &str));
    /// The first value of `name`, if any.
    fn get(&self, name: &str) -> Option<String>;
    /// Removes every value of `name`.
    fn remove(&mut self, name: &str);
    /// Sets `name` to exactly `value`, replacing any value it had.
    fn set(&mut self, name: &str, value: &str) -> Result<(), HeaderWriteError>;
    /// The URI and DNS subject alternative names of the peer certificate of
    /// the connection this request came on, as verified by the proxy's TLS
    /// layer; empty without mTLS. A host that cannot read them returns none,
    /// so rules bound to a workload fail closed.
    fn peer_certificate_identities(&self) -> Vec<String>;
}

/// A kind of subject alternative name of the peer certificate that names a
/// workload (`workload_binding.workloads` keys are one or the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSan {
    Uri,
    Dns,
}

/// [`RequestHeaders::peer_certificate_identities`] from what the host reports
/// for each [`PeerSan`], so that every host reads the same names in the same
/// order and keeps the same values: `read` returns the host's value (`None`
/// without mTLS, or when the host cannot tell); empty values and values that
/// are not UTF-8 are dropped, never repaired (a repaired name could match a
/// configured one the certificate does not carry).
///
/// Envoy gives one value per kind, the certificate's *first* URI SAN and
/// *first* DNS SAN (its `connection.*_san_peer_certificate` attributes, read
/// by both the wasm and the native host), so a workload named only by a later
/// SAN is not seen and its bound requests are refused: the loss fails closed.
pub fn peer_identities(mut read: impl FnMut(PeerSan) -> Option<Vec<u8>>) -> Vec<String> {
    [PeerSan::Uri, PeerSan::Dns]
        .into_iter()
        .filter_map(&mut read)
        .filter_map(|bytes| String::from_utf8(bytes).ok())
        .filter(|value| !value.is_empty())
        .collect()
}

/// An in-memory header map for tests, with Envoy's semantics for the
/// operations above.
#[cfg(test)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList {
    pub headers: Vec<(String, String)>,
    /// Writes fail (the host refused them) while set.
    pub refuse_writes: bool,
}

#[cfg(test)]
impl HeaderList {
    pub fn of(headers: &[(&str, &str)]) -> HeaderList {
        HeaderList {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            refuse_writes: false,
        }
    }

    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[cfg(test)]
impl RequestHeaders for HeaderList {
    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        for (name, value) in &self.headers {
            each(name, value);
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.values(name).first().map(|v| v.to_string())
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| n != name);
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), HeaderWriteError> {
        if self.refuse_writes {
            return Err(HeaderWriteError);
        }
        self.remove(name);
        self.headers.push((name.to_string(), value.to_string()));
        Ok(())
    }

    fn peer_certificate_identities(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_identities_are_the_uri_then_the_dns_san_with_unusable_values_dropped() {
        let both = peer_identities(|san| {
            Some(match san {
                PeerSan::Uri => b"spiffe://cluster.local/ns/default/sa/tp".to_vec(),
                PeerSan::Dns => b"tp.mesh.test".to_vec(),
            })
        });
        assert_eq!(
            both,
            ["spiffe://cluster.local/ns/default/sa/tp", "tp.mesh.test"]
        );
        // No mTLS: nothing, so a bound rule refuses.
        assert!(peer_identities(|_| None).is_empty());
        // Empty, or not UTF-8 (never repaired into some other name): dropped.
        let dropped = peer_identities(|san| {
            Some(match san {
                PeerSan::Uri => Vec::new(),
                PeerSan::Dns => b"tp.mesh.test\xff".to_vec(),
            })
        });
        assert!(dropped.is_empty(), "{dropped:?}");
    }
}
