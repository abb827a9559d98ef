//! Drives [`JwksCoordinator`] through the fake host: what the JWKS hooks add
//! (keys, staleness, unknown-kid refreshes, early retries, discovery). The
//! out-of-order cases of the fetch itself run once, in `fetcher::single_flight`.

use std::cell::RefCell;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::fetcher::fake_host::{DispatchedCallout, FakeEnvoy, FakeHost};
use crate::fetcher::test_support::{self, respond};
use crate::host::CalloutToken;
use crate::inbound::jwks::record::StateRecord;

const T0: u64 = 1_700_000_000_000;
const KEYS_PATH: &str = "/tenant/discovery/v2.0/keys";
const LEASE: u64 = JwksSettings::DEFAULT_FETCH_TIMEOUT_MS + LEASE_MARGIN_MS;
const HOUR: u64 = 3_600_000;

fn settings() -> JwksSettings {
    JwksSettings::new("entra", "login.microsoftonline.com", KEYS_PATH)
}

/// A 2048-bit modulus unique to `kid`.
fn modulus(kid: &str) -> Vec<u8> {
    let seed = Sha256::digest(kid.as_bytes());
    let mut n: Vec<u8> = seed.iter().cycle().take(256).copied().collect();
    n[0] |= 0x80;
    n
}

fn jwks(kids: &[&str]) -> Vec<u8> {
    let keys: Vec<_> = kids
        .iter()
        .map(|kid| {
            json!({
                "kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                "n": URL_SAFE_NO_PAD.encode(modulus(kid)), "e": "AQAB",
                "x5c": ["MIIC"], "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

fn ok(kids: &[&str]) -> CalloutResponse {
    respond(Some(200), &jwks(kids))
}

struct Worker {
    host: FakeHost,
    coord: JwksCoordinator,
}

impl Worker {
    fn new(envoy: &FakeEnvoy, id: u32, settings: &JwksSettings) -> Worker {
        Worker {
            host: envoy.host(id),
            coord: JwksCoordinator::new(settings.clone(), id),
        }
    }

    fn tick(&mut self) -> TickOutcome {
        self.coord.on_tick(&mut self.host)
    }

    fn keys(&mut self) -> KeyAvailability {
        self.coord.keys(&self.host)
    }

    fn kids(&mut self) -> Option<Vec<String>> {
        match self.keys() {
            KeyAvailability::Ready(set) => Some(set.keys.iter().map(|k| k.kid.clone()).collect()),
            _ => None,
        }
    }

    fn answer(&mut self, token: CalloutToken, response: CalloutResponse) -> FetchOutcome {
        self.coord
            .on_callout_response(&mut self.host, token, response)
    }

    fn unknown_kid(&mut self) -> bool {
        self.coord.request_refresh_for_unknown_kid(&self.host)
    }
}

fn workers(envoy: &FakeEnvoy, n: u32, settings: &JwksSettings) -> Vec<Worker> {
    (0..n).map(|id| Worker::new(envoy, id, settings)).collect()
}

fn tick_all(ws: &mut [Worker]) -> Vec<TickOutcome> {
    ws.iter_mut().map(Worker::tick).collect()
}

/// Tick every worker (advancing the clock by fast ticks) until a new callout
/// is dispatched; returns it.
fn next_dispatch(envoy: &FakeEnvoy, ws: &mut [Worker]) -> DispatchedCallout {
    test_support::next_dispatch(envoy, 1000, || {
        tick_all(ws);
    })
}

fn answer(
    ws: &mut [Worker],
    callout: &DispatchedCallout,
    response: CalloutResponse,
) -> FetchOutcome {
    ws[callout.worker_id as usize].answer(callout.token, response)
}

/// Cold start and a successful first fetch.
fn boot(envoy: &FakeEnvoy, ws: &mut [Worker], kids: &[&str]) {
    let c = next_dispatch(envoy, ws);
    assert!(matches!(
        answer(ws, &c, ok(kids)),
        FetchOutcome::Updated { .. }
    ));
}

fn state(envoy: &FakeEnvoy, w: &Worker) -> StateRecord {
    test_support::stored_state(envoy, &w.coord.names().state)
}

#[test]
fn cold_start_two_workers_fifty_requests_one_dispatch() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    let waits = |w: &mut Worker| w.keys() == KeyAvailability::Pending;
    test_support::cold_start(&envoy, &mut ws, waits, |ws| {
        tick_all(ws);
    });
    let calls = envoy.callouts();
    assert_eq!(calls.len(), 1);
    let req = &calls[0].request;
    assert_eq!(req.cluster, "entra");
    assert_eq!(req.authority, "login.microsoftonline.com");
    assert_eq!(req.path, KEYS_PATH);
    assert_eq!(req.timeout_ms, JwksSettings::DEFAULT_FETCH_TIMEOUT_MS);
    assert_eq!(ws[0].keys(), KeyAvailability::Pending);
}

#[test]
fn answered_fetch_makes_every_worker_ready() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    let c = next_dispatch(&envoy, &mut ws);
    let fetcher = c.worker_id as usize;
    let other = 1 - fetcher;
    let out = answer(&mut ws, &c, ok(&["k1", "k2"]));
    assert_eq!(
        out,
        FetchOutcome::Updated(KeysUpdate {
            generation: 1,
            keys: 2,
            skipped: 0
        })
    );
    assert!(out.settled());
    assert_eq!(out.fetch_succeeded(), Some(true));
    assert_eq!(ws[fetcher].kids().unwrap(), ["k1", "k2"]);
    let tick = ws[other].tick();
    assert!(tick.changed && tick.recheck_waiters);
    assert_eq!(ws[other].kids().unwrap(), ["k1", "k2"]);
    assert!(
        !ws[fetcher].tick().recheck_waiters,
        "its own settlement is not news"
    );
    assert_eq!(ws[fetcher].coord.stats().fetch_ok, 1);
    assert_eq!(ws[other].coord.stats().fetch_ok, 0);
    assert_eq!(ws[other].coord.stats().keys_loaded, 2);
    assert_eq!(ws[other].coord.local_generation(), Some(1));
    // Nothing more to do within the hour.
    for _ in 0..100 {
        tick_all(&mut ws);
        envoy.advance(30_000);
    }
    assert_eq!(envoy.callout_count(), 1);
    let s = state(&envoy, &ws[0]);
    assert_eq!(
        (s.lease_owner, s.consecutive_failures, s.last_success_ms),
        (None, 0, T0)
    );
}

#[test]
fn failed_cold_fetch_is_unavailable_backs_off_and_recovers() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    let c1 = next_dispatch(&envoy, &mut ws);
    let FetchOutcome::Failed { error, retry_in_ms } =
        answer(&mut ws, &c1, respond(Some(500), b"oops"))
    else {
        panic!("expected failure");
    };
    assert_eq!(error, FetchError::HttpStatus(500));
    assert!((900..=1000).contains(&retry_in_ms), "{retry_in_ms}");
    assert_eq!(ws[0].keys(), KeyAvailability::Unavailable);
    assert_eq!(ws[1].keys(), KeyAvailability::Unavailable);
    let other = 1 - c1.worker_id as usize;
    assert!(
        ws[other].tick().recheck_waiters,
        "other workers learn about the failure"
    );

    envoy.advance(retry_in_ms - 1);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 1, "backoff respected");
    assert_eq!(ws[0].keys(), KeyAvailability::Unavailable);
    envoy.advance(1);
    assert_eq!(ws[0].keys(), KeyAvailability::Pending, "retry is due");

    let c2 = next_dispatch(&envoy, &mut ws);
    assert_eq!(ws[1].keys(), KeyAvailability::Pending, "fetch in flight");
    let FetchOutcome::Failed { error, retry_in_ms } = answer(&mut ws, &c2, respond(None, b""))
    else {
        panic!("expected failure");
    };
    assert_eq!(error, FetchError::NoResponse);
    assert!(
        (1800..=2000).contains(&retry_in_ms),
        "doubled: {retry_in_ms}"
    );
    assert_eq!(state(&envoy, &ws[0]).consecutive_failures, 2);
    assert_eq!(
        state(&envoy, &ws[0]).last_error.as_deref(),
        Some("no response")
    );

    envoy.advance(retry_in_ms);
    let c3 = next_dispatch(&envoy, &mut ws);
    assert!(matches!(
        answer(&mut ws, &c3, ok(&["k1"])),
        FetchOutcome::Updated { .. }
    ));
    assert!(ws[0].kids().is_some() && ws[1].kids().is_some());
    let s = state(&envoy, &ws[0]);
    assert_eq!(
        (s.consecutive_failures, s.next_attempt_ms, s.last_error),
        (0, 0, None)
    );
    let total_failed: u64 = ws.iter().map(|w| w.coord.stats().fetch_failed).sum();
    assert_eq!(total_failed, 2);
}

#[test]
fn backoff_doubles_is_capped_and_jitters_deterministically() {
    let s = settings();
    for failures in 1..=12u32 {
        let base = (1000u64 << (failures - 1)).min(60_000);
        let delay = backoff_ms(&s, 0, failures, T0);
        assert!(
            base * 9 / 10 <= delay && delay <= base,
            "{failures}: {delay}"
        );
        assert_eq!(delay, backoff_ms(&s, 0, failures, T0));
    }
    let per_worker: Vec<u64> = (0..8).map(|w| backoff_ms(&s, w, 3, T0)).collect();
    assert!(
        per_worker.iter().any(|d| *d != per_worker[0]),
        "{per_worker:?}"
    );
    assert!(backoff_ms(&s, 1, u32::MAX, T0) <= 60_000);
    let mut zero = settings();
    zero.retry_initial_ms = 0;
    assert_eq!(backoff_ms(&zero, 0, 5, T0), 0);
}

#[test]
fn keys_are_refreshed_after_the_interval_by_one_worker() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    let fetched_at = envoy.now();
    envoy.set_now(fetched_at + HOUR - 1);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 1);
    envoy.advance(1);
    let c = next_dispatch(&envoy, &mut ws);
    // Requests keep being served from the current keys during the refresh.
    assert!(ws[0].kids().is_some() && ws[1].kids().is_some());
    assert_eq!(
        answer(&mut ws, &c, ok(&["k1"])),
        FetchOutcome::Updated(KeysUpdate {
            generation: 2,
            keys: 1,
            skipped: 0
        })
    );
    let other = 1 - c.worker_id as usize;
    assert!(
        ws[other].tick().changed,
        "same keys, new fetch time: still a new generation"
    );
    for _ in 0..10 {
        tick_all(&mut ws);
        envoy.advance(FAST_TICK_MS);
    }
    assert_eq!(envoy.callout_count(), 2);
}

#[test]
fn failed_refresh_keeps_keys_until_max_stale_then_unavailable() {
    let mut s = settings();
    s.max_stale_ms = 3 * HOUR;
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &s);
    boot(&envoy, &mut ws, &["k1"]);
    let fetched_at = envoy.now();
    envoy.set_now(fetched_at + HOUR);
    let mut failures = 0;
    while envoy.now() <= fetched_at + 3 * HOUR {
        let before = envoy.callout_count();
        tick_all(&mut ws);
        if envoy.callout_count() > before {
            let c = envoy.last_callout().unwrap();
            assert!(matches!(
                answer(&mut ws, &c, respond(Some(503), b"")),
                FetchOutcome::Failed { .. }
            ));
            failures += 1;
        }
        assert_eq!(ws[0].kids().unwrap(), ["k1"], "stale keys still served");
        assert_eq!(ws[1].kids().unwrap(), ["k1"]);
        envoy.advance(1000);
    }
    // Doubling to the 60 s cap (54-60 s with jitter, plus up to 1 s of tick
    // quantization): six quick retries, then about one a minute for 7137 s.
    assert!((120..=140).contains(&failures), "{failures}");
    // Past max_stale and backing off after the latest failure: 503 at once.
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, respond(Some(503), b""));
    assert_eq!(ws[0].keys(), KeyAvailability::Unavailable);
    assert_eq!(ws[1].keys(), KeyAvailability::Unavailable);
    // Recovery.
    envoy.advance(60_000);
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(&["k2"]));
    assert_eq!(ws[0].kids().unwrap(), ["k2"]);
    assert_eq!(ws[1].kids().unwrap(), ["k2"]);
}

#[test]
fn keys_too_stale_without_any_failure_wait_for_the_fetch() {
    // E.g. the host was suspended for a day: no failure recorded, a fetch is due.
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    envoy.advance(JwksSettings::DEFAULT_MAX_STALE_MS + 1);
    assert_eq!(ws[0].keys(), KeyAvailability::Pending);
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(&["k1"]));
    assert!(ws[0].kids().is_some());
}

#[test]
fn unknown_kid_refresh_is_rate_limited_per_envoy() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    envoy.advance(10_000);
    assert!(ws[0].unknown_kid());
    assert!(
        ws[1].unknown_kid(),
        "already requested: wait for the same fetch"
    );
    assert!(state(&envoy, &ws[0]).role.refresh_requested);
    let c = next_dispatch(&envoy, &mut ws);
    assert!(
        !state(&envoy, &ws[0]).role.refresh_requested,
        "consumed by the lease"
    );
    answer(&mut ws, &c, ok(&["k1", "k2"]));
    assert_eq!(ws[1].kids().unwrap(), ["k1", "k2"]);

    // Another unknown kid right after, from either worker: refused.
    assert!(!ws[0].unknown_kid());
    assert!(!ws[1].unknown_kid());
    envoy.advance(JwksSettings::DEFAULT_UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS - 1);
    assert!(!ws[1].unknown_kid());
    for _ in 0..5 {
        tick_all(&mut ws);
    }
    assert_eq!(envoy.callout_count(), 2, "refused requests caused no fetch");
    envoy.advance(1);
    assert!(ws[1].unknown_kid(), "interval over");
    next_dispatch(&envoy, &mut ws);
    let granted: u64 = ws.iter().map(|w| w.coord.stats().forced_refreshes).sum();
    assert_eq!(granted, 2);
}

#[test]
fn unknown_kid_shares_an_in_flight_fetch_and_is_refused_while_backing_off() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    envoy.advance(HOUR);
    let c = next_dispatch(&envoy, &mut ws);
    assert!(ws[1].unknown_kid(), "a refresh is already in flight");
    assert!(
        !state(&envoy, &ws[0]).role.refresh_requested,
        "no second fetch queued"
    );
    answer(&mut ws, &c, respond(Some(500), b""));
    assert!(!ws[0].unknown_kid(), "backing off after a failure");
    assert_eq!(
        ws.iter()
            .map(|w| w.coord.stats().forced_refreshes)
            .sum::<u64>(),
        0
    );
}

/// Cold start against a failing endpoint with no requests: `failures`
/// scheduled attempts, each answered 500. Returns the last retry delay.
fn fail_scheduled(envoy: &FakeEnvoy, ws: &mut [Worker], failures: u32) -> u64 {
    let mut retry = 0;
    for _ in 0..failures {
        envoy.advance(retry);
        let c = next_dispatch(envoy, ws);
        let FetchOutcome::Failed { retry_in_ms, .. } = answer(ws, &c, respond(Some(500), b""))
        else {
            panic!("expected failure");
        };
        retry = retry_in_ms;
    }
    retry
}

#[test]
fn a_request_without_keys_pulls_a_long_backoff_forward() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    // Five failures without traffic: the scheduled retry is 14.4-16 s away.
    let retry_in_ms = fail_scheduled(&envoy, &mut ws, 5);
    assert!((14_400..=16_000).contains(&retry_in_ms), "{retry_in_ms}");
    assert_eq!(
        ws[0].keys(),
        KeyAvailability::Unavailable,
        "the attempt that just failed is less than a second old"
    );
    envoy.advance(EARLY_RETRY_INTERVAL_MS - 1);
    assert_eq!(ws[1].keys(), KeyAvailability::Unavailable);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 5);

    // The endpoint heals; a second after the last attempt a request pulls the
    // retry forward and waits for it instead of getting a 503.
    envoy.advance(1);
    assert_eq!(ws[1].keys(), KeyAvailability::Pending);
    let s = state(&envoy, &ws[0]);
    assert_eq!(
        (s.next_attempt_ms, s.consecutive_failures),
        (envoy.now(), 5),
        "only the retry time moved"
    );
    assert_eq!(
        ws[0].keys(),
        KeyAvailability::Pending,
        "shares the pulled retry"
    );
    let pulled_at = envoy.now();
    let c = next_dispatch(&envoy, &mut ws);
    assert_eq!(envoy.now(), pulled_at, "dispatched on the next tick");
    assert!(matches!(
        answer(&mut ws, &c, ok(&["k1"])),
        FetchOutcome::Updated { .. }
    ));
    assert_eq!(ws[0].kids().unwrap(), ["k1"]);
    assert_eq!(ws[1].kids().unwrap(), ["k1"]);
    let early: u64 = ws.iter().map(|w| w.coord.stats().early_retries).sum();
    assert_eq!((early, envoy.callout_count()), (1, 6));
    assert!(envoy
        .logs()
        .iter()
        .any(|l| l.message.contains("retry pulled forward")));
}

#[test]
fn requests_pull_retries_forward_at_most_once_a_second_per_envoy() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 4, &settings());
    fail_scheduled(&envoy, &mut ws, 3);
    // Ten seconds of a request every 10 ms, spread over the workers, ticks
    // every 20 ms, every fetch answered 500 at once.
    let start = envoy.now();
    let mut dispatched_at = Vec::new();
    let (mut pending, mut unavailable) = (0, 0);
    let mut i = 0usize;
    while envoy.now() < start + 10_000 {
        match ws[i % 4].keys() {
            KeyAvailability::Pending => pending += 1,
            KeyAvailability::Unavailable => unavailable += 1,
            KeyAvailability::Ready(_) => panic!("no keys were ever fetched"),
        }
        if i % 2 == 0 {
            let before = envoy.callout_count();
            tick_all(&mut ws);
            if envoy.callout_count() > before {
                assert_eq!(envoy.callout_count(), before + 1, "one fetch per Envoy");
                dispatched_at.push(envoy.now());
                let c = envoy.last_callout().unwrap();
                answer(&mut ws, &c, respond(Some(500), b""));
            }
        }
        envoy.advance(10);
        i += 1;
    }
    let gaps: Vec<u64> = dispatched_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g >= EARLY_RETRY_INTERVAL_MS),
        "{gaps:?}"
    );
    // Without the pull the backoff (3.6 s and doubling) would allow 2 attempts.
    assert!((9..=10).contains(&dispatched_at.len()), "{dispatched_at:?}");
    let early: u64 = ws.iter().map(|w| w.coord.stats().early_retries).sum();
    assert_eq!(early as usize, dispatched_at.len());
    assert!(unavailable > 900, "the rest get 503 at once: {unavailable}");
    assert!(pending >= dispatched_at.len(), "{pending}");
    assert!(
        state(&envoy, &ws[0]).consecutive_failures >= 12,
        "each failed early retry still counts"
    );
}

#[test]
fn two_workers_pulling_the_same_retry_write_once() {
    let s = settings();
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &s);
    fail_scheduled(&envoy, &mut ws, 2);
    envoy.advance(EARLY_RETRY_INTERVAL_MS);
    // Worker 1 pulls the retry between worker 0's read and its CAS write.
    let racer = Rc::new(RefCell::new(Worker::new(&envoy, 1, &s)));
    let r = Rc::clone(&racer);
    envoy.before_next_set(move || assert_eq!(r.borrow_mut().keys(), KeyAvailability::Pending));
    assert_eq!(ws[0].keys(), KeyAvailability::Pending);
    let early = ws[0].coord.stats().early_retries + racer.borrow().coord.stats().early_retries;
    assert_eq!(early, 1);
    assert_eq!(racer.borrow().coord.stats().early_retries, 1);
    next_dispatch(&envoy, &mut ws);
    assert_eq!(envoy.callout_count(), 3);
}

#[test]
fn keys_past_max_stale_pull_the_retry_forward_too() {
    let mut s = settings();
    s.max_stale_ms = 2 * HOUR;
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1, &s);
    boot(&envoy, &mut ws, &["k1"]);
    envoy.advance(2 * HOUR + 1);
    let retry_in_ms = fail_scheduled(&envoy, &mut ws, 2);
    assert!(retry_in_ms > EARLY_RETRY_INTERVAL_MS, "{retry_in_ms}");
    assert_eq!(ws[0].keys(), KeyAvailability::Unavailable);
    envoy.advance(EARLY_RETRY_INTERVAL_MS);
    assert_eq!(ws[0].keys(), KeyAvailability::Pending);
    assert_eq!(ws[0].coord.stats().early_retries, 1);
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(&["k2"]));
    assert_eq!(ws[0].kids().unwrap(), ["k2"]);
}

#[test]
fn unknown_kid_before_any_state_waits_for_the_first_fetch() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1, &settings());
    assert!(ws[0].unknown_kid());
    assert_eq!(
        envoy.shared_raw(&ws[0].coord.names().state),
        None,
        "nothing written"
    );
}

#[test]
fn a_reloaded_worker_uses_the_shared_keys_without_fetching() {
    let s = settings();
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &s);
    boot(&envoy, &mut ws, &["k1"]);
    let mut fresh = Worker::new(&envoy, 0, &s);
    assert_eq!(fresh.kids().unwrap(), ["k1"]);
    fresh.tick();
    assert_eq!(envoy.callout_count(), 1);
}

#[test]
fn a_concurrent_key_write_keeps_generations_monotonic() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    envoy.advance(HOUR);
    let c = next_dispatch(&envoy, &mut ws);
    let names = ws[0].coord.names().clone();
    // Someone writes generation 5 between our read of `.keys` and our write.
    let e = envoy.clone();
    let foreign = KeysRecord::new(5, T0, &KeySet::default()).encode().unwrap();
    envoy.before_next_set(move || e.put_raw(&names.keys, &foreign));
    assert!(matches!(
        answer(&mut ws, &c, ok(&["k2"])),
        FetchOutcome::Updated(KeysUpdate { generation: 6, .. })
    ));
    let other = 1 - c.worker_id as usize;
    assert_eq!(ws[other].kids().unwrap(), ["k2"]);
    assert_eq!(ws[other].coord.local_generation(), Some(6));
}

#[test]
fn rotation_drops_old_keys() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1", "k2"]);
    envoy.advance(HOUR);
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(&["k2", "k3"]));
    for w in ws.iter_mut() {
        let KeyAvailability::Ready(set) = w.keys() else {
            panic!("not ready")
        };
        assert!(
            set.find(Some("k1"), None).is_none(),
            "removed key no longer verifies"
        );
        assert!(set.find(Some("k2"), None).is_some());
        assert!(set.find(Some("k3"), None).is_some());
    }
}

#[test]
fn empty_or_garbage_documents_never_replace_good_keys() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    for (body, expected) in [
        (
            &br#"{"keys":[]}"#[..],
            JwksError::NoUsableKeys { skipped: vec![] },
        ),
        (&b"<html>login</html>"[..], JwksError::NotJson),
    ] {
        envoy.advance(HOUR);
        let c = next_dispatch(&envoy, &mut ws);
        let generation = ws[1].coord.local_generation();
        let FetchOutcome::Failed { error, retry_in_ms } =
            answer(&mut ws, &c, respond(Some(200), body))
        else {
            panic!("expected failure");
        };
        assert_eq!(error, FetchError::Jwks(expected));
        assert_eq!(ws[0].kids().unwrap(), ["k1"]);
        assert_eq!(ws[1].coord.local_generation(), generation);
        envoy.advance(retry_in_ms);
        let c = next_dispatch(&envoy, &mut ws);
        answer(&mut ws, &c, ok(&["k1"]));
    }
}

#[test]
fn discovery_then_keys() {
    let mut s = settings();
    s.discovery_path = Some("/tenant/v2.0/.well-known/openid-configuration".into());
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &s);
    let disc = next_dispatch(&envoy, &mut ws);
    assert_eq!(
        disc.request.path,
        "/tenant/v2.0/.well-known/openid-configuration"
    );
    envoy.advance(4_000);
    let doc = br#"{"jwks_uri":"https://login.microsoftonline.com/tenant/discovery/v2.0/keys?x=1"}"#;
    assert_eq!(
        answer(&mut ws, &disc, respond(Some(200), doc)),
        FetchOutcome::Continuing
    );
    let keys = envoy.last_callout().unwrap();
    assert_eq!(
        (keys.worker_id, keys.request.path.as_str()),
        (disc.worker_id, "/tenant/discovery/v2.0/keys?x=1")
    );
    assert_eq!(
        state(&envoy, &ws[0]).lease_until_ms,
        envoy.now() + LEASE,
        "lease renewed"
    );
    assert_eq!(ws[0].keys(), KeyAvailability::Pending);
    assert!(matches!(
        answer(&mut ws, &keys, ok(&["k1"])),
        FetchOutcome::Updated { .. }
    ));
    assert!(ws[0].kids().is_some());
}

#[test]
fn discovery_failures_are_fetch_failures() {
    let mut s = settings();
    s.discovery_path = Some("/tenant/v2.0/.well-known/openid-configuration".into());
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1, &s);
    let disc = next_dispatch(&envoy, &mut ws);
    let doc = br#"{"jwks_uri":"https://elsewhere.example/tenant/discovery/v2.0/keys"}"#;
    let out = answer(&mut ws, &disc, respond(Some(200), doc));
    assert!(matches!(
        out,
        FetchOutcome::Failed {
            error: FetchError::Discovery(JwksError::DiscoveryAuthorityMismatch),
            ..
        }
    ));
    assert_eq!(envoy.callout_count(), 1, "no keys callout");
    assert_eq!(ws[0].keys(), KeyAvailability::Unavailable);
}

#[test]
fn the_per_request_check_reads_only_the_tiny_generation_key() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1", "k2", "k3"]);
    ws[1].keys(); // first request on this worker loads the set
    envoy.take_reads();
    for _ in 0..10 {
        assert!(ws[1].kids().is_some());
    }
    let reads = envoy.take_reads();
    assert_eq!(reads.len(), 10);
    let gen_key = ws[1].coord.names().generation.clone();
    assert!(
        reads
            .iter()
            .all(|(key, bytes)| *key == gen_key && *bytes <= 20),
        "{reads:?}"
    );
}

#[test]
fn tick_suggestions() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    boot(&envoy, &mut ws, &["k1"]);
    assert_eq!(ws[0].tick().next_tick_ms, SLOW_TICK_MS, "idle");
    envoy.advance(HOUR - 300);
    assert_eq!(
        ws[0].tick().next_tick_ms,
        300,
        "wakes up when the refresh is due"
    );
    envoy.advance(300);
    let out = ws[0].tick();
    assert!(out.started_fetch);
    assert_eq!(
        out.next_tick_ms, SLOW_TICK_MS,
        "own fetch: the response is an event"
    );
    assert_eq!(
        ws[1].tick().next_tick_ms,
        FAST_TICK_MS,
        "another worker's fetch: poll"
    );
}

#[test]
fn corrupt_shared_records_do_not_wedge_workers() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    let names = ws[0].coord.names().clone();
    envoy.put_raw(&names.state, b"garbage");
    envoy.put_raw(&names.generation, b"3");
    envoy.put_raw(&names.keys, b"{\"v\":1,\"junk\":true}");
    assert_eq!(ws[0].keys(), KeyAvailability::Pending);
    assert_eq!(ws[1].keys(), KeyAvailability::Pending);
    let c = next_dispatch(&envoy, &mut ws);
    assert!(matches!(
        answer(&mut ws, &c, ok(&["k1"])),
        FetchOutcome::Updated(KeysUpdate { generation: 4, .. })
    ));
    assert_eq!(ws[0].kids().unwrap(), ["k1"]);
    assert_eq!(ws[1].kids().unwrap(), ["k1"]);
    let warnings = envoy
        .logs()
        .iter()
        .filter(|l| l.message.contains("unreadable"))
        .count();
    assert_eq!(warnings, 2, "one warning per worker, not per request");
}

#[test]
fn logs_never_contain_key_material() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2, &settings());
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, respond(Some(200), &jwks(&["k1"])[..40]));
    envoy.advance(2_000);
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(&["k1", "k2"]));
    envoy.advance(HOUR);
    ws[0].unknown_kid();
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(&["k2"]));
    let logs = envoy.logs();
    assert!(logs.iter().any(|l| l.message.contains("fetched 2 keys")));
    assert!(logs.iter().any(|l| l
        .message
        .contains("fetch failed (jwks: document is not JSON)")));
    for kid in ["k1", "k2"] {
        let n = URL_SAFE_NO_PAD.encode(modulus(kid));
        for line in &logs {
            assert!(!line.message.contains(&n[..16]), "{}", line.message);
        }
    }
}

#[test]
fn an_adopting_worker_shares_the_fetchers_key_set_and_never_reads_the_record() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1, &settings());
    boot(&envoy, &mut ws, &["k1", "k2"]);
    let mut reader = Worker {
        host: envoy.host(1),
        coord: JwksCoordinator::adopting(settings(), 1),
    };
    envoy.take_reads();
    // Nothing adopted yet: it waits like any worker without keys (the state
    // record says a fetch succeeded, so it is not asked to fetch).
    assert!(!matches!(reader.keys(), KeyAvailability::Ready(_)));
    let shared = ws[0].coord.shared_keys().expect("the fetcher has keys");
    reader.coord.adopt(&shared);
    let KeyAvailability::Ready(keys) = reader.keys() else {
        panic!("adopted keys are ready");
    };
    // The very same set in memory, not a copy decoded from the record.
    assert!(Arc::ptr_eq(&keys, &shared.keys));
    assert_eq!(reader.coord.keys_loaded(), 2);
    assert!(
        envoy
            .take_reads()
            .iter()
            .all(|(key, _)| *key != reader.coord.names().generation
                && *key != reader.coord.names().keys),
        "an adopting worker reads neither the generation nor the keys record"
    );
    // An older set is never adopted over a newer one.
    let older = SharedKeys {
        generation: shared.generation - 1,
        ..shared.clone()
    };
    reader.coord.adopt(&older);
    assert_eq!(reader.coord.local_generation(), Some(shared.generation));
    // Adopted keys age like fetched ones: past max_stale they are not used.
    envoy.advance(settings().max_stale_ms + 1);
    assert!(!matches!(reader.keys(), KeyAvailability::Ready(_)));
}
