//! Injected failures, per endpoint, for testing how clients of the IdP (the
//! filter's JWKS fetcher, the bootstrap agent) cope.

use std::collections::HashMap;
use std::time::Duration;

/// The IdP's endpoints, for faults and request counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/{tenant}/v2.0/.well-known/openid-configuration`
    Discovery,
    /// `/{tenant}/discovery/v2.0/keys` (and `/common/...`, v1 `/discovery/keys`)
    Jwks,
    /// `/{tenant}/oauth2/v2.0/token`
    Token,
}

/// How an endpoint misbehaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Normal answers.
    None,
    /// This HTTP status (the token endpoint adds an Entra error body).
    Status(u16),
    /// `200` with a body that is not JSON (content type still claims JSON).
    Garbage,
    /// `200` with `{"keys":[]}` (JWKS) or `{}` (other endpoints).
    EmptyKeys,
    /// The normal answer, after this delay.
    Slow(Duration),
    /// The connection is closed without any response.
    CloseConnection,
    /// `429` with `Retry-After: <seconds>`.
    TooManyRequests { retry_after_secs: u64 },
    /// `200` with a JSON body of at least this many bytes: the normal JWKS
    /// (or `{}`) plus a `padding` member, so only its size is wrong.
    Oversized { bytes: usize },
}

#[derive(Clone, Debug)]
struct Active {
    fault: Fault,
    /// `Some(n)`: only the next `n` requests fail, then answers are normal.
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: HashMap<Endpoint, Active>,
}

impl Faults {
    pub fn set(&mut self, endpoint: Endpoint, fault: Fault, times: Option<u32>) {
        if fault == Fault::None || times == Some(0) {
            self.active.remove(&endpoint);
        } else {
            self.active.insert(
                endpoint,
                Active {
                    fault,
                    remaining: times,
                },
            );
        }
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The fault for this request (consuming one use of a counted fault).
    pub fn take(&mut self, endpoint: Endpoint) -> Fault {
        let Some(active) = self.active.get_mut(&endpoint) else {
            return Fault::None;
        };
        let fault = active.fault.clone();
        if let Some(remaining) = &mut active.remaining {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.active.remove(&endpoint);
            }
        }
        fault
    }
}
