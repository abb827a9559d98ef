//! The process store, the host and the main thread's timer both roles'
//! fetches run on (the JWKS, the agent token: driven by `fetch.rs`), and the
//! JWKS coordinator of each thread.
//!
//! - The **main thread** runs the fetching coordinators: ticked through a config
//!   scheduler, they make config-level HTTP callouts (discovery, keys, the
//!   agent's token) and write the result to the process store. Only one thread
//!   ever fetches, so there is one fetch per Envoy whatever the worker count;
//!   the core's lease protocol still runs unchanged (it simply never sees
//!   contention).
//! - Each **worker** has its own coordinators over the same store: they never
//!   fetch (their host refuses to dispatch), they only adopt what the main
//!   thread stored (the core's key set and token copies are `Rc`).
//! - A small timer thread ([`Ticker`]) commits the main thread's ticks when the
//!   coordinators asked for them (prefetch, refresh, retry after a failure); a
//!   granted unknown-`kid` refresh asks for one at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entragate_core::fetcher::memory_store::MemoryStore;
use entragate_core::host::{
    CalloutRequest, CalloutResponse, CalloutToken, Host, LogLevel, SharedStore, SharedValue,
    SharedWriteError, UnixMillis,
};
use entragate_core::inbound::cache::RecentTokens;
use entragate_core::inbound::jwks::coordinator::{JwksCoordinator, SharedKeys};
use entragate_core::inbound::jwks::JwksSettings;

use crate::envoy::{log, ConfigScheduler, ConfigScope};

/// The scheduler event that ticks the main thread's coordinator.
pub const TICK_EVENT: u64 = 1;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The whole process's store: the native counterpart of proxy-wasm shared
/// data, with the same compare-and-set rules (the core's [`MemoryStore`]).
static STORE: Mutex<Option<MemoryStore>> = Mutex::new(None);

/// Counts the store's writes, published after each (inside the lock; 64 bits
/// so a version never comes round again, unlike a 32-bit CAS).
/// Every request reads the key set's generation record; with this a worker
/// answers that read from its own copy while nothing was written since, and
/// takes the process-wide lock (contended by every worker) only after a
/// write. A copy is only ever reused while it is still what the store holds,
/// so readers see exactly what a locked read would (expiry is the core's,
/// on that data).
static VERSION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This worker's copies of store entries, each with the [`VERSION`] it
    /// was read at.
    static READ_COPIES: RefCell<HashMap<String, (SharedValue, u64)>> =
        RefCell::new(HashMap::new());
}

/// `shared_get` with the per-worker copy in front of the lock.
fn read_entry(key: &str) -> SharedValue {
    let version = VERSION.load(Ordering::Acquire);
    let copied = READ_COPIES.with(|copies| {
        copies
            .borrow()
            .get(key)
            .filter(|(_, at)| *at == version)
            .map(|(value, _)| value.clone())
    });
    if let Some(value) = copied {
        return value;
    }
    let (value, at) = with_store(|store| {
        let value = store.get(key);
        // Under the lock: no write is between this read and this version.
        (value, VERSION.load(Ordering::Relaxed))
    });
    READ_COPIES.with(|copies| {
        copies
            .borrow_mut()
            .insert(key.to_string(), (value.clone(), at));
    });
    value
}

fn with_store<T>(body: impl FnOnce(&mut MemoryStore) -> T) -> T {
    // A panic while holding the lock cannot leave a half-written entry (each
    // write is one insert), so a poisoned lock is still consistent.
    let mut guard = STORE.lock().unwrap_or_else(|e| e.into_inner());
    let store = guard.get_or_insert_with(MemoryStore::default);
    body(store)
}

/// The host the core's coordinator runs on: the process store, the clock,
/// Envoy's log, and (main thread only) config-level callouts.
pub struct NativeHost {
    /// `Some` on the main thread, inside a config hook: callouts go through it.
    pub config: Option<ConfigScope>,
}

impl SharedStore for NativeHost {
    fn shared_get(&self, key: &str) -> SharedValue {
        read_entry(key)
    }

    fn shared_set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        with_store(|store| {
            store.set(key, value, cas)?;
            // After the entry is in: a reader that sees the new version reads
            // the new entry.
            VERSION.store(VERSION.load(Ordering::Relaxed) + 1, Ordering::Release);
            Ok(())
        })
    }
}

impl Host for NativeHost {
    fn now_ms(&self) -> UnixMillis {
        now_ms()
    }

    fn dispatch(&mut self, request: &CalloutRequest) -> Result<CalloutToken, String> {
        let Some(config) = self.config else {
            return Err("workers do not fetch (the main thread does)".to_string());
        };
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "GET"),
            (":path", request.path.as_str()),
            (":authority", request.authority.as_str()),
        ];
        headers.extend(
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let id = config.http_get(&request.cluster, &headers, request.timeout_ms)?;
        CalloutToken::try_from(id).map_err(|_| "callout id out of range".to_string())
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(level, message);
    }
}

/// The main thread's key set of one configuration, shared by every worker:
/// one parsed key set per Envoy (the store's record stays the fetch protocol's,
/// as in wasm, but no worker decodes it).
#[derive(Default)]
pub struct PublishedKeys {
    /// The published set's generation (0: none yet), read on every request
    /// without the lock.
    generation: AtomicU64,
    keys: Mutex<Option<SharedKeys>>,
}

impl PublishedKeys {
    /// Main thread: publishes `shared` if it is newer. True if its key
    /// material differs from the set it replaces (a refresh that found the
    /// same keys is only newer).
    pub fn publish(&self, shared: SharedKeys) -> bool {
        let mut slot = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|published| published.generation >= shared.generation)
        {
            return false;
        }
        let changed = slot
            .as_ref()
            .is_none_or(|published| *published.keys != *shared.keys);
        let generation = shared.generation;
        *slot = Some(shared);
        // After the set is in: a worker that sees this generation finds it.
        self.generation.store(generation, Ordering::Release);
        changed
    }

    /// Worker: lets `coordinator` adopt the published set when it is newer
    /// than the one it holds (one atomic load per request; the lock only
    /// after a fetch).
    pub fn bring_up_to_date(&self, coordinator: &mut JwksCoordinator) {
        let published = self.generation.load(Ordering::Acquire);
        if published == 0
            || coordinator
                .local_generation()
                .is_some_and(|held| held >= published)
        {
            return;
        }
        let shared = self.keys.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(shared) = shared {
            coordinator.adopt(&shared);
        }
    }
}

/// One thread's part of an inbound configuration: its JWKS coordinator (the
/// fetching one on the main thread, a reader on a worker) and, used on
/// workers, the tokens it recently found in the shared cache.
pub struct InboundThread {
    pub coordinator: JwksCoordinator,
    pub recent: RecentTokens,
}

/// Runs `body` with this thread's [`InboundThread`] for configuration `id`
/// (see [`crate::fetch::with_thread_state`]). `main` selects worker id 0
/// (the fetching thread).
pub fn with_inbound_thread<T>(
    id: u64,
    settings: &JwksSettings,
    main: bool,
    body: impl FnOnce(&mut InboundThread) -> T,
) -> T {
    crate::fetch::with_thread_state(
        id,
        main,
        |worker_id| InboundThread {
            // Workers take the main thread's key set ([`PublishedKeys`]).
            coordinator: if main {
                JwksCoordinator::new(settings.clone(), worker_id)
            } else {
                JwksCoordinator::adopting(settings.clone(), worker_id)
            },
            recent: RecentTokens::new(),
        },
        body,
    )
}

/// [`with_inbound_thread`], for its coordinator only.
pub fn with_coordinator<T>(
    id: u64,
    settings: &JwksSettings,
    main: bool,
    body: impl FnOnce(&mut JwksCoordinator) -> T,
) -> T {
    with_inbound_thread(id, settings, main, |thread| body(&mut thread.coordinator))
}

/// The main thread's timer: a small thread that sleeps until the
/// coordinator's next tick is due and then commits the config scheduler (the
/// tick itself runs on the main thread). Dynamic-module HTTP filters have no
/// timer callback in 1.40; a config scheduler may be committed from any thread.
pub struct Ticker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    /// (due at, ms since the epoch; `u64::MAX`: not planned) and "stop".
    state: Mutex<(u64, bool)>,
    wake: Condvar,
}

impl Ticker {
    /// Starts the thread (`entragate-<what>`); the first tick is due at once (prefetch).
    pub fn start(scheduler: ConfigScheduler, what: &str) -> Result<Ticker, String> {
        let shared = Arc::new(TickerShared {
            state: Mutex::new((0, false)),
            wake: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("entragate-{what}"))
            .spawn(move || theirs.run(&scheduler))
            .map_err(|e| format!("cannot start the {what} timer thread: {e}"))?;
        Ok(Ticker {
            shared,
            thread: Some(thread),
        })
    }

    /// Plans the next tick `in_ms` from now (replacing the plan).
    pub fn tick_in(&self, in_ms: u64) {
        let due = now_ms().saturating_add(in_ms);
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = due;
        self.shared.wake.notify_one();
    }

    /// Ticks as soon as possible, unless a tick is already planned sooner.
    pub fn tick_now(&self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.min(now_ms());
        self.shared.wake.notify_one();
    }
}

impl TickerShared {
    fn run(&self, scheduler: &ConfigScheduler) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.1 {
                return;
            }
            let now = now_ms();
            if now >= state.0 {
                // One commit per plan: the tick plans the next one.
                state.0 = u64::MAX;
                scheduler.commit(TICK_EVENT);
                continue;
            }
            let wait = Duration::from_millis(state.0 - now);
            state = match self.wake.wait_timeout(state, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.1 = true;
            self.shared.wake.notify_one();
        }
        // The thread only waits and commits (non-blocking), so this is quick;
        // the scheduler it owns is deleted when it returns.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A callout answer as the core reads it: the status from `:status`, the body
/// from Envoy's chunks; no HTTP response at all is `status: None`.
///
/// # Safety
/// `headers`/`body` point to `headers_size`/`body_size` entries Envoy lends
/// for the duration of the hook (or are null with size 0).
pub unsafe fn callout_response(
    result: u32,
    headers: *const crate::abi::EnvoyHttpHeader,
    headers_size: usize,
    body: *const crate::abi::EnvoyBuffer,
    body_size: usize,
) -> CalloutResponse {
    if result != crate::abi::CALLOUT_SUCCESS || headers.is_null() {
        return CalloutResponse {
            status: None,
            body: Vec::new(),
        };
    }
    let headers = std::slice::from_raw_parts(headers, headers_size);
    let status = headers.iter().find_map(|h| {
        let name = bytes(h.key_ptr, h.key_length);
        (name == b":status")
            .then(|| std::str::from_utf8(bytes(h.value_ptr, h.value_length)).ok())
            .flatten()
            .and_then(|v| v.parse::<u16>().ok())
    });
    let mut collected = Vec::new();
    if !body.is_null() {
        for chunk in std::slice::from_raw_parts(body, body_size) {
            collected.extend_from_slice(bytes(chunk.ptr, chunk.length));
        }
    }
    CalloutResponse {
        status,
        body: collected,
    }
}

/// # Safety
/// `ptr` is null or points to `length` readable bytes.
unsafe fn bytes<'a>(ptr: *const u8, length: usize) -> &'a [u8] {
    if ptr.is_null() || length == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, length)
    }
}

/// The config pointer as main-thread hooks receive it.
pub fn scope(config_envoy_ptr: *mut c_void) -> ConfigScope {
    ConfigScope(config_envoy_ptr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(generation: u64, kids: &[&str]) -> SharedKeys {
        use entragate_core::keys::{KeySet, RsaPublicKey};
        let keys = kids
            .iter()
            .map(|kid| RsaPublicKey {
                kid: (*kid).to_string(),
                x5t: None,
                n: vec![0xc3; 256],
                e: vec![1, 0, 1],
            })
            .collect();
        SharedKeys {
            generation,
            fetched_at_ms: now_ms(),
            keys: Arc::new(KeySet { keys }),
        }
    }

    #[test]
    fn workers_adopt_the_one_published_key_set_and_only_new_keys_count_as_a_change() {
        let published = PublishedKeys::default();
        let settings = JwksSettings::new("idp", "idp.test", "/keys");
        let mut worker = JwksCoordinator::adopting(settings, 1);
        published.bring_up_to_date(&mut worker);
        assert_eq!(worker.local_generation(), None, "nothing published yet");

        let first = shared(1, &["k1"]);
        assert!(
            published.publish(first.clone()),
            "the first set is a change"
        );
        published.bring_up_to_date(&mut worker);
        let held = worker.shared_keys().unwrap();
        assert!(
            Arc::ptr_eq(&held.keys, &first.keys),
            "the same set, not a copy"
        );

        // A refresh that found the same keys: newer, adopted, but no change
        // (so the shared token cache is not scanned).
        let refreshed = shared(2, &["k1"]);
        assert!(!published.publish(refreshed.clone()));
        published.bring_up_to_date(&mut worker);
        assert_eq!(worker.local_generation(), Some(2));
        assert!(
            !published.publish(shared(1, &["k9"])),
            "an older set is ignored"
        );
        assert!(
            published.publish(shared(3, &["k2"])),
            "a rotation is a change"
        );
        published.bring_up_to_date(&mut worker);
        assert_eq!(worker.keys_loaded(), 1);
        assert_eq!(worker.local_generation(), Some(3));
    }

    #[test]
    fn a_read_after_a_write_sees_it_even_with_a_copy_in_front() {
        let host = NativeHost { config: None };
        let key = "entragate.test.read_copies";
        assert_eq!(host.shared_get(key), SharedValue::default());
        host.shared_set(key, b"one", None).unwrap();
        let first = host.shared_get(key);
        assert_eq!(first.data.as_deref(), Some(&b"one"[..]));
        // Served from this thread's copy: the same value and CAS.
        assert_eq!(host.shared_get(key), first);
        // Written from another thread: this thread's copy is stale at once.
        std::thread::spawn(move || {
            NativeHost { config: None }
                .shared_set(key, b"two", first.cas)
                .unwrap();
        })
        .join()
        .unwrap();
        let second = host.shared_get(key);
        assert_eq!(second.data.as_deref(), Some(&b"two"[..]));
        assert_ne!(second.cas, first.cas);
        // A CAS from the stale copy is refused, as with a locked read.
        assert_eq!(
            host.shared_set(key, b"three", first.cas),
            Err(SharedWriteError::CasMismatch)
        );
    }
}
