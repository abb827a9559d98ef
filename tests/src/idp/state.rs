//! State shared between the test (through [`super::Idp`]) and the server
//! thread answering requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::faults::{Endpoint, Faults};
use super::keys::SigningKey;
use super::model::Directory;

/// Locks ignoring poisoning: a test that panicked while holding a lock must
/// not turn every later request into a second panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The published key set and which key signs new tokens.
#[derive(Debug)]
pub(crate) struct KeySet {
    /// In JWKS order.
    pub published: Vec<Arc<SigningKey>>,
    pub current: Arc<SigningKey>,
}

/// How many requests each endpoint has received (faulty answers included).
#[derive(Debug, Default)]
pub(crate) struct RequestCounters {
    discovery: AtomicU64,
    jwks: AtomicU64,
    token: AtomicU64,
}

impl RequestCounters {
    fn slot(&self, endpoint: Endpoint) -> &AtomicU64 {
        match endpoint {
            Endpoint::Discovery => &self.discovery,
            Endpoint::Jwks => &self.jwks,
            Endpoint::Token => &self.token,
        }
    }

    pub fn bump(&self, endpoint: Endpoint) {
        self.slot(endpoint).fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self, endpoint: Endpoint) -> u64 {
        self.slot(endpoint).load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        for endpoint in [Endpoint::Discovery, Endpoint::Jwks, Endpoint::Token] {
            self.slot(endpoint).store(0, Ordering::SeqCst);
        }
    }
}

/// One call to the token endpoint, as recorded for assertions. The client
/// secret is never recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub tenant: String,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// `client_secret_post`, `client_secret_basic` or `none`.
    pub auth_method: &'static str,
    /// The `client-request-id` header, if sent.
    pub client_request_id: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
}

#[derive(Debug)]
pub(crate) struct State {
    pub directory: Mutex<Directory>,
    pub keys: Mutex<KeySet>,
    pub faults: Mutex<Faults>,
    pub counters: RequestCounters,
    pub token_log: Mutex<Vec<TokenRequest>>,
    /// Every access token the token endpoint issued (for leak checks).
    pub issued: Mutex<Vec<String>>,
    /// `jti`s of certificate assertions already used (replay refused).
    pub seen_jti: Mutex<std::collections::HashSet<String>>,
    /// `http://127.0.0.1:<port>`, set once the socket is bound.
    pub base_url: OnceLock<String>,
}

impl State {
    pub fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }
}
