//! An in-memory [`Host`] for driving the JWKS coordinator (and the engine) in tests.
//!
//! [`FakeEnvoy`] is one Envoy process: a clock, the shared-data store and the log
//! of dispatched callouts. [`FakeHost`] is one worker's view of it (one wasm VM);
//! create one per worker with [`FakeEnvoy::host`]. Callouts are only recorded:
//! the test answers them later, in any order, or never.
//!
//! Shared data is a [`MemoryStore`]: Envoy's `SharedData::set` rules exactly,
//! the same store the native host runs on.

use std::cell::RefCell;
use std::rc::Rc;

use super::memory_store::MemoryStore;
use crate::host::{
    CalloutRequest, CalloutToken, Host, LogLevel, SharedStore, SharedValue, SharedWriteError,
    UnixMillis,
};

/// One callout a worker dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchedCallout {
    pub worker_id: u32,
    pub token: CalloutToken,
    pub request: CalloutRequest,
}

/// One log line, with the worker that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub worker_id: u32,
    pub level: LogLevel,
    pub message: String,
}

type SetHook = Box<dyn FnOnce()>;

#[derive(Default)]
struct EnvoyState {
    now_ms: UnixMillis,
    store: MemoryStore,
    last_token: CalloutToken,
    callouts: Vec<DispatchedCallout>,
    logs: Vec<LogLine>,
    /// (key, bytes) of every successful read, to check what the hot path costs.
    reads: Vec<(String, usize)>,
    /// Runs just before the next `shared_set`, to interleave another worker
    /// between a read and the CAS write that depends on it.
    before_next_set: Option<SetHook>,
}

/// One simulated Envoy: shared by every [`FakeHost`] created from it.
#[derive(Clone, Default)]
pub struct FakeEnvoy {
    inner: Rc<RefCell<EnvoyState>>,
}

impl FakeEnvoy {
    pub fn new(now_ms: UnixMillis) -> FakeEnvoy {
        let envoy = FakeEnvoy::default();
        envoy.inner.borrow_mut().now_ms = now_ms;
        envoy
    }

    /// A worker (wasm VM) of this Envoy.
    pub fn host(&self, worker_id: u32) -> FakeHost {
        FakeHost {
            envoy: self.clone(),
            worker_id,
            fail_dispatch: None,
        }
    }

    pub fn now(&self) -> UnixMillis {
        self.inner.borrow().now_ms
    }

    pub fn set_now(&self, now_ms: UnixMillis) {
        self.inner.borrow_mut().now_ms = now_ms;
    }

    pub fn advance(&self, ms: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.now_ms = inner.now_ms.saturating_add(ms);
    }

    /// Every callout dispatched so far, oldest first.
    pub fn callouts(&self) -> Vec<DispatchedCallout> {
        self.inner.borrow().callouts.clone()
    }

    pub fn callout_count(&self) -> usize {
        self.inner.borrow().callouts.len()
    }

    pub fn last_callout(&self) -> Option<DispatchedCallout> {
        self.inner.borrow().callouts.last().cloned()
    }

    /// Raw shared value, bypassing the host interface (and not counted as a read).
    pub fn shared_raw(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.borrow().store.get(key).data
    }

    /// Unconditional write from "outside" (another filter build, a corrupt value).
    pub fn put_raw(&self, key: &str, value: &[u8]) {
        let _ = self.inner.borrow_mut().store.set(key, value, None);
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.inner.borrow().logs.clone()
    }

    /// Reads (key, bytes) made through any host since the last call.
    pub fn take_reads(&self) -> Vec<(String, usize)> {
        std::mem::take(&mut self.inner.borrow_mut().reads)
    }

    /// Run `hook` right before the next `shared_set` by any worker.
    pub fn before_next_set(&self, hook: impl FnOnce() + 'static) {
        self.inner.borrow_mut().before_next_set = Some(Box::new(hook));
    }
}

/// One worker's host: implements [`Host`] against the shared [`FakeEnvoy`].
#[derive(Clone)]
pub struct FakeHost {
    envoy: FakeEnvoy,
    worker_id: u32,
    /// When set, `dispatch` fails with this message (cluster missing, etc.).
    pub fail_dispatch: Option<String>,
}

impl FakeHost {
    pub fn worker_id(&self) -> u32 {
        self.worker_id
    }

    pub fn envoy(&self) -> &FakeEnvoy {
        &self.envoy
    }
}

impl SharedStore for FakeHost {
    fn shared_get(&self, key: &str) -> SharedValue {
        let mut inner = self.envoy.inner.borrow_mut();
        let found = inner.store.get(key);
        if let Some(value) = &found.data {
            inner.reads.push((key.to_string(), value.len()));
        }
        found
    }

    fn shared_set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        // Take the hook out first so it can use the envoy (and other hosts) freely.
        let hook = self.envoy.inner.borrow_mut().before_next_set.take();
        if let Some(hook) = hook {
            hook();
        }
        self.envoy.inner.borrow_mut().store.set(key, value, cas)
    }
}

impl Host for FakeHost {
    fn now_ms(&self) -> UnixMillis {
        self.envoy.now()
    }

    fn dispatch(&mut self, request: &CalloutRequest) -> Result<CalloutToken, String> {
        if let Some(reason) = &self.fail_dispatch {
            return Err(reason.clone());
        }
        let mut inner = self.envoy.inner.borrow_mut();
        inner.last_token = inner.last_token.wrapping_add(1);
        let token = inner.last_token;
        inner.callouts.push(DispatchedCallout {
            worker_id: self.worker_id,
            token,
            request: request.clone(),
        });
        Ok(token)
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.envoy.inner.borrow_mut().logs.push(LogLine {
            worker_id: self.worker_id,
            level,
            message: message.to_string(),
        });
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;

    #[test]
    fn cas_protects_existing_keys_only_like_envoy() {
        let envoy = FakeEnvoy::new(0);
        let a = envoy.host(0);
        let b = envoy.host(1);
        // Creation ignores the CAS argument (Envoy's behaviour).
        a.shared_set("k", b"1", Some(12345)).unwrap();
        let v = b.shared_get("k");
        assert_eq!(v.data.as_deref(), Some(&b"1"[..]));
        let cas = v.cas.unwrap();
        a.shared_set("k", b"2", Some(cas)).unwrap();
        assert_eq!(
            b.shared_set("k", b"3", Some(cas)),
            Err(SharedWriteError::CasMismatch)
        );
        b.shared_set("k", b"4", None).unwrap();
        b.shared_set("k", b"5", Some(0)).unwrap();
        assert_eq!(envoy.shared_raw("k").as_deref(), Some(&b"5"[..]));
        assert_eq!(a.shared_get("missing"), SharedValue::default());
    }

    #[test]
    fn dispatch_records_and_can_fail() {
        let envoy = FakeEnvoy::new(5);
        let mut h = envoy.host(3);
        let req = CalloutRequest {
            cluster: "c".into(),
            authority: "a".into(),
            path: "/p".into(),
            timeout_ms: 1,
            headers: Vec::new(),
        };
        let t1 = h.dispatch(&req).unwrap();
        h.fail_dispatch = Some("no cluster".into());
        assert_eq!(h.dispatch(&req), Err("no cluster".to_string()));
        let calls = envoy.callouts();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].worker_id, calls[0].token), (3, t1));
        envoy.advance(10);
        assert_eq!(h.now_ms(), 15);
    }

    #[test]
    fn hook_runs_before_the_next_set_only() {
        let envoy = FakeEnvoy::new(0);
        let h = envoy.host(0);
        h.shared_set("k", b"1", None).unwrap();
        let cas = h.shared_get("k").cas;
        let e2 = envoy.clone();
        envoy.before_next_set(move || e2.put_raw("k", b"other"));
        assert_eq!(
            h.shared_set("k", b"2", cas),
            Err(SharedWriteError::CasMismatch)
        );
        let cas = h.shared_get("k").cas;
        assert!(h.shared_set("k", b"3", cas).is_ok());
    }
}
