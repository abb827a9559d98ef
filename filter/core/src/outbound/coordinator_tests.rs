//! Drives [`TokenCoordinator`] through the fake host in many orders.

use std::rc::Rc;

use serde_json::json;

use super::*;
use crate::jwks::fake_host::{DispatchedCallout, FakeEnvoy, FakeHost};
use crate::outbound::policy::{AgentKey, AgentSettings, FetchPolicy, TokenSource};
use crate::shared::test_support::{self, respond};

const T0: u64 = 1_700_000_000_000;
const KEY: &str = "5f2b9c0d1e3a4b6c7d8e9f00112233445566778899aabbccddeeff0011223344";
const HOUR_S: u64 = 3_599;
/// Lease of one agent callout with the test settings (timeout 2000 + margin).
const LEASE: u64 = 2_000 + LEASE_MARGIN_MS;

fn agent() -> AgentSettings {
    AgentSettings {
        cluster: "entragate_agent".into(),
        authority: "entragate-agent".into(),
        token_path: "/v1/token".into(),
        key: AgentKey::parse(KEY).unwrap(),
        timeout_ms: 2_000,
    }
}

fn source() -> TokenSource {
    TokenSource {
        scope: "fraud".into(),
        path: "/v1/token?scope=fraud".into(),
    }
}

fn fetch_policy() -> FetchPolicy {
    FetchPolicy {
        request_wait_ms: 5_000,
        retry_initial_ms: 200,
        retry_max_ms: 5_000,
    }
}

/// A token that is unique per `n` and looks like a JWT.
fn jwt(n: u32) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.eyJuIjo{n}fQ.c2lnbmF0dXJl{n}")
}

fn ok(n: u32, expires_in_s: u64) -> CalloutResponse {
    let body = json!({
        "access_token": jwt(n), "token_type": "Bearer", "expires_at": 0,
        "expires_in": expires_in_s, "scope": "api://fraud/.default", "name": "fraud"
    });
    respond(Some(200), body.to_string().as_bytes())
}

fn unavailable(reason: &str, retry_after_secs: Option<u64>) -> CalloutResponse {
    let body = json!({
        "error": "token_unavailable", "scope": "fraud", "reason": reason,
        "retry_after_secs": retry_after_secs
    });
    respond(Some(503), body.to_string().as_bytes())
}

struct Worker {
    host: FakeHost,
    coord: TokenCoordinator,
}

impl Worker {
    fn tick(&mut self) -> TickOutcome {
        self.coord.on_tick(&mut self.host)
    }

    fn token(&mut self) -> TokenAvailability {
        self.coord.token(&self.host)
    }

    /// The header this worker would attach now, if any.
    fn header(&mut self) -> Option<String> {
        match self.token() {
            TokenAvailability::Ready(t) => Some(t.header_value.clone()),
            _ => None,
        }
    }

    fn answer(&mut self, token: CalloutToken, response: CalloutResponse) -> FetchOutcome {
        self.coord
            .on_callout_response(&mut self.host, token, response)
    }
}

fn workers(envoy: &FakeEnvoy, n: u32) -> Vec<Worker> {
    workers_with(envoy, n, TokenTiming::default())
}

fn workers_with(envoy: &FakeEnvoy, n: u32, timing: TokenTiming) -> Vec<Worker> {
    (0..n)
        .map(|id| Worker {
            host: envoy.host(id),
            coord: TokenCoordinator::new(&agent(), &source(), timing, fetch_policy(), id),
        })
        .collect()
}

fn tick_all(ws: &mut [Worker]) -> Vec<TickOutcome> {
    ws.iter_mut().map(Worker::tick).collect()
}

/// Tick every worker (advancing by fast ticks) until one new callout is
/// dispatched; returns it.
fn next_dispatch(envoy: &FakeEnvoy, ws: &mut [Worker]) -> DispatchedCallout {
    test_support::next_dispatch(envoy, 10_000, || {
        tick_all(ws);
    })
}

fn answer(ws: &mut [Worker], c: &DispatchedCallout, response: CalloutResponse) -> FetchOutcome {
    ws[c.worker_id as usize].answer(c.token, response)
}

fn boot(envoy: &FakeEnvoy, ws: &mut [Worker], n: u32, expires_in_s: u64) {
    let c = next_dispatch(envoy, ws);
    assert!(matches!(
        answer(ws, &c, ok(n, expires_in_s)),
        FetchOutcome::Updated { .. }
    ));
}

/// The token the workers share, as worker 0 sees it.
fn current(ws: &mut [Worker]) -> Rc<CachedToken> {
    match ws[0].token() {
        TokenAvailability::Ready(token) => token,
        other => panic!("no token: {other:?}"),
    }
}

fn state(envoy: &FakeEnvoy, w: &Worker) -> StateRecord {
    test_support::stored_state(envoy, &w.coord.names().state)
}

#[test]
fn cold_start_two_workers_many_requests_one_callout_with_the_agent_key() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let waits = |w: &mut Worker| w.token() == TokenAvailability::Pending;
    test_support::cold_start(&envoy, &mut ws, waits, |ws| {
        tick_all(ws);
    });
    let calls = envoy.callouts();
    assert_eq!(calls.len(), 1);
    let req = &calls[0].request;
    assert_eq!(req.cluster, "entragate_agent");
    assert_eq!(req.authority, "entragate-agent");
    assert_eq!(req.path, "/v1/token?scope=fraud");
    assert_eq!(req.timeout_ms, 2_000);
    assert_eq!(
        req.headers,
        [("x-entragate-agent-key".to_string(), KEY.to_string())]
    );
    assert!(
        !format!("{:?}", ws[0].coord).contains(KEY),
        "Debug hides the key"
    );
}

#[test]
fn one_answer_serves_every_worker_without_further_callouts() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let c = next_dispatch(&envoy, &mut ws);
    let fetcher = c.worker_id as usize;
    let other = 1 - fetcher;
    let out = answer(&mut ws, &c, ok(1, HOUR_S));
    assert_eq!(
        out,
        FetchOutcome::Updated {
            generation: 1,
            expires_in_ms: HOUR_S * 1000
        }
    );
    assert!(out.settled() && out.fetch_succeeded() == Some(true));
    let expected = format!("Bearer {}", jwt(1));
    assert_eq!(ws[fetcher].header().as_deref(), Some(expected.as_str()));
    // The other worker finds it on its next request, before any tick.
    assert_eq!(ws[other].header().as_deref(), Some(expected.as_str()));
    let tick = ws[other].tick();
    assert!(
        tick.recheck_waiters,
        "a settled fetch wakes the other worker's waiters"
    );
    // Requests read no shared data while the local copy is usable.
    envoy.take_reads();
    for _ in 0..100 {
        ws[0].header().unwrap();
        ws[1].header().unwrap();
    }
    assert_eq!(envoy.take_reads(), vec![]);
    // Nothing to do until the refresh point (55 minutes in).
    for _ in 0..100 {
        tick_all(&mut ws);
        envoy.advance(30_000);
    }
    assert_eq!(envoy.callout_count(), 1);
    let fetched: u64 = ws.iter().map(|w| w.coord.stats().fetch_ok).sum();
    assert_eq!(fetched, 1);
}

#[test]
fn refresh_is_ahead_of_expiry_in_the_background_by_one_worker() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    boot(&envoy, &mut ws, 1, HOUR_S);
    let refresh_at = T0 + HOUR_S * 1000 - 300_000;
    let first = current(&mut ws);
    assert!(first.refresh_at_ms >= refresh_at && first.refresh_at_ms < refresh_at + 100);
    envoy.set_now(first.refresh_at_ms - 1);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 1, "not before the refresh point");
    envoy.set_now(first.refresh_at_ms);
    let c = next_dispatch(&envoy, &mut ws);
    // While the refresh is in flight, requests keep the current token.
    let old = format!("Bearer {}", jwt(1));
    assert_eq!(ws[0].header(), Some(old.clone()));
    assert_eq!(ws[1].header(), Some(old));
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 2, "single flight during the refresh");
    assert!(matches!(
        answer(&mut ws, &c, ok(2, HOUR_S)),
        FetchOutcome::Updated { generation: 2, .. }
    ));
    tick_all(&mut ws);
    let new = format!("Bearer {}", jwt(2));
    assert_eq!(ws[0].header(), Some(new.clone()));
    assert_eq!(ws[1].header(), Some(new));
}

#[test]
fn failed_refresh_keeps_the_token_until_its_end_then_fails_closed_with_the_reason() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    boot(&envoy, &mut ws, 1, 60);
    let token = current(&mut ws);
    // 60 s token: refresh 6 s before expiry, unusable 3 s before.
    assert_eq!(token.expires_at_ms - token.refresh_at_ms, 6_000);
    assert_eq!(token.usable_until_ms - token.refresh_at_ms, 3_000);
    envoy.set_now(token.refresh_at_ms);
    let down = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure";
    let mut failures = 0;
    while envoy.now() < token.usable_until_ms {
        let before = envoy.callout_count();
        tick_all(&mut ws);
        if envoy.callout_count() > before {
            let c = envoy.last_callout().unwrap();
            let out = answer(&mut ws, &c, respond(Some(503), down));
            assert!(matches!(out, FetchOutcome::Failed { .. }), "{out:?}");
            failures += 1;
        }
        if envoy.now() < token.usable_until_ms {
            assert!(ws[0].header().is_some() && ws[1].header().is_some());
        }
        envoy.advance(FAST_TICK_MS);
    }
    assert!(failures >= 3, "retried with backoff: {failures}");
    envoy.set_now(token.usable_until_ms);
    // Past the end of use: if a retry is in flight requests wait, else refuse.
    tick_all(&mut ws);
    let s = state(&envoy, &ws[0]);
    match ws[0].token() {
        TokenAvailability::Unavailable(reason) => {
            assert!(
                reason.contains("agent cluster answered HTTP 503: upstream connect error"),
                "{reason}"
            );
            assert!(reason.contains(&token.fingerprint), "{reason}");
            assert!(!reason.contains(&jwt(1)));
        }
        TokenAvailability::Pending => assert!(s.lease_active(envoy.now()), "{s:?}"),
        TokenAvailability::Ready(_) => panic!("an expired token must not be attached"),
    }
}

#[test]
fn cold_start_failure_refuses_at_once_during_backoff_then_recovers() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let c = next_dispatch(&envoy, &mut ws);
    let out = answer(
        &mut ws,
        &c,
        unavailable("agent starting: reading the client secret", None),
    );
    let FetchOutcome::Failed { retry_in_ms, .. } = out else {
        panic!("{out:?}");
    };
    assert!((180..=200).contains(&retry_in_ms), "{retry_in_ms}");
    for w in ws.iter_mut() {
        match w.token() {
            TokenAvailability::Unavailable(reason) => assert_eq!(
                reason,
                "agent has no valid token: agent starting: reading the client secret"
            ),
            other => panic!("{other:?}"),
        }
    }
    envoy.advance(retry_in_ms);
    assert_eq!(
        ws[1].token(),
        TokenAvailability::Pending,
        "retry due: wait for it"
    );
    let c = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &c, ok(1, HOUR_S));
    assert!(ws[0].header().is_some() && ws[1].header().is_some());
    let s = state(&envoy, &ws[0]);
    assert_eq!(
        (s.consecutive_failures, s.next_attempt_ms, s.last_error),
        (0, 0, None)
    );
}

#[test]
fn the_agents_retry_after_is_honoured_up_to_retry_max() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1);
    let c = next_dispatch(&envoy, &mut ws);
    let out = answer(&mut ws, &c, unavailable("429 from Entra", Some(3)));
    assert!(
        matches!(
            out,
            FetchOutcome::Failed {
                retry_in_ms: 3_000,
                ..
            }
        ),
        "{out:?}"
    );
    envoy.advance(2_999);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 1);
    envoy.advance(1);
    let c = next_dispatch(&envoy, &mut ws);
    let out = answer(&mut ws, &c, unavailable("429 from Entra", Some(600)));
    assert!(
        matches!(
            out,
            FetchOutcome::Failed {
                retry_in_ms: 5_000,
                ..
            }
        ),
        "capped: {out:?}"
    );
}

#[test]
fn agent_configuration_errors_are_named() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1);
    let c = next_dispatch(&envoy, &mut ws);
    answer(
        &mut ws,
        &c,
        respond(Some(401), br#"{"error":"unauthorized"}"#),
    );
    let TokenAvailability::Unavailable(reason) = ws[0].token() else {
        panic!("must refuse");
    };
    assert!(reason.contains("agent refused the agent key"), "{reason}");
    envoy.advance(1_000);
    let c = next_dispatch(&envoy, &mut ws);
    answer(
        &mut ws,
        &c,
        respond(
            Some(404),
            br#"{"error":"unknown_scope","reason":"fraud is not a configured scope"}"#,
        ),
    );
    let TokenAvailability::Unavailable(reason) = ws[0].token() else {
        panic!("must refuse");
    };
    assert!(
        reason.contains("fraud is not a configured scope"),
        "{reason}"
    );
}

#[test]
fn dispatch_refused_by_the_host_is_a_failure_on_the_tick() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1);
    ws[0].host.fail_dispatch = Some("no cluster entragate_agent".into());
    let mut failure = None;
    for _ in 0..10 {
        let out = ws[0].tick();
        if out.failure.is_some() {
            assert!(out.recheck_waiters);
            failure = out.failure;
            break;
        }
        envoy.advance(FAST_TICK_MS);
    }
    let failure = failure.expect("dispatch failure reported");
    assert_eq!(
        failure,
        AgentFailure::DispatchFailed("no cluster entragate_agent".into())
    );
    assert_eq!(ws[0].coord.stats().fetch_failed, 1);
    assert!(matches!(ws[0].token(), TokenAvailability::Unavailable(_)));
}

#[test]
fn answers_nobody_waits_for_are_ignored() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    assert_eq!(ws[0].answer(999, ok(1, 60)), FetchOutcome::Ignored);
    let c = next_dispatch(&envoy, &mut ws);
    let other = 1 - c.worker_id as usize;
    // Only the worker that dispatched may answer it.
    assert_eq!(ws[other].answer(c.token, ok(1, 60)), FetchOutcome::Ignored);
    assert_eq!(ws[other].coord.stats().ignored_responses, 2);
    assert!(ws[c.worker_id as usize].coord.awaits(c.token));
    assert!(answer(&mut ws, &c, ok(1, 60)).settled());
    assert_eq!(
        answer(&mut ws, &c, ok(1, 60)),
        FetchOutcome::Ignored,
        "a duplicate answer changes nothing"
    );
}

#[test]
fn a_late_answer_after_the_lease_was_taken_over_writes_nothing() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let first = next_dispatch(&envoy, &mut ws);
    let slow = first.worker_id as usize;
    // The callout is never answered in time: the lease expires, the worker
    // abandons it, and some worker fetches again.
    envoy.advance(LEASE);
    let second = next_dispatch(&envoy, &mut ws);
    assert_ne!(first.token, second.token);
    // The first answer arrives late: it is no longer awaited.
    assert_eq!(
        ws[slow].answer(first.token, ok(1, 60)),
        FetchOutcome::Ignored
    );
    assert!(answer(&mut ws, &second, ok(2, 60)).settled());
    assert_eq!(ws[0].header(), Some(format!("Bearer {}", jwt(2))));
}

#[test]
fn a_fetch_whose_lease_was_stolen_is_discarded() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let c = next_dispatch(&envoy, &mut ws);
    // Someone else owns the lease now (a reloaded VM took over).
    let mut s = state(&envoy, &ws[0]);
    s.lease_owner = Some("w9-1-0".into());
    s.lease_until_ms = envoy.now() + LEASE;
    envoy.put_raw(&ws[0].coord.names().state, &s.encode().unwrap());
    assert_eq!(
        answer(&mut ws, &c, ok(1, 60)),
        FetchOutcome::Discarded { error: None }
    );
    assert!(envoy.shared_raw(&ws[0].coord.names().token).is_none());
    assert_eq!(
        ws[0].token(),
        TokenAvailability::Pending,
        "the new owner's fetch is awaited"
    );
}

#[test]
fn a_lost_lease_race_does_not_dispatch_twice() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    // Worker 0's first tick creates the state record (creation takes no lease).
    assert!(!ws[0].tick().started_fetch);
    envoy.advance(FAST_TICK_MS);
    // Worker 1 takes the lease between worker 0's read and its CAS write.
    let e2 = envoy.clone();
    let names = ws[1].coord.names().clone();
    envoy.before_next_set(move || {
        let mut s = StateRecord::decode(&e2.shared_raw(&names.state).unwrap()).unwrap();
        s.lease_owner = Some("w1-x-0".into());
        s.lease_until_ms = e2.now() + LEASE;
        e2.put_raw(&names.state, &s.encode().unwrap());
    });
    let out = ws[0].tick();
    assert!(!out.started_fetch);
    assert_eq!(out.next_tick_ms, FAST_TICK_MS);
    assert_eq!(envoy.callout_count(), 0);
}

#[test]
fn unreadable_shared_records_do_not_wedge_the_workers() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    envoy.put_raw(&ws[0].coord.names().state, b"garbage");
    envoy.put_raw(&ws[0].coord.names().token, b"{\"v\":1}");
    assert_eq!(ws[0].token(), TokenAvailability::Pending);
    boot(&envoy, &mut ws, 1, 60);
    assert!(ws[0].header().is_some() && ws[1].header().is_some());
}

#[test]
fn a_short_lived_token_is_refreshed_repeatedly_without_a_gap() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    boot(&envoy, &mut ws, 1, 20);
    let mut n = 1;
    let mut seen = vec![];
    // Serve requests every 50 ms for 100 s; answer each refresh at once.
    for _ in 0..2_000 {
        let before = envoy.callout_count();
        tick_all(&mut ws);
        if envoy.callout_count() > before {
            n += 1;
            let c = envoy.last_callout().unwrap();
            answer(&mut ws, &c, ok(n, 20));
        }
        for w in ws.iter_mut() {
            let header = w.header().expect("never without a token");
            if seen.last() != Some(&header) {
                seen.push(header);
            }
        }
        envoy.advance(50);
    }
    // 100 s of 20 s tokens refreshed 2 s early: one fetch every 18 s.
    assert!((5..=7).contains(&(n - 1)), "{n}");
    assert!(seen.len() >= 5);
}

#[test]
fn the_token_is_never_logged() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    boot(&envoy, &mut ws, 1, 60);
    let fp = current(&mut ws).fingerprint.clone();
    let logs = envoy.logs();
    assert!(logs.iter().any(|l| l.message.contains(&fp)), "{logs:?}");
    for line in logs {
        assert!(!line.message.contains(&jwt(1)), "{}", line.message);
        assert!(!line.message.contains(KEY), "{}", line.message);
    }
}
