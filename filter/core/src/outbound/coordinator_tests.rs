//! Drives [`TokenCoordinator`] through the fake host: what the token hooks add
//! (schedule, Retry-After, refusals). The out-of-order cases of the fetch
//! itself run once, in `fetcher::single_flight`.

use std::rc::Rc;

use serde_json::json;

use super::*;
use crate::fetcher::fake_host::{DispatchedCallout, FakeEnvoy, FakeHost};
use crate::fetcher::leased_state::FAST_TICK_MS;
use crate::fetcher::test_support::{self, respond};
use crate::host::CalloutToken;
use crate::outbound::policy::{AgentKey, AgentSettings, FetchPolicy, TokenSource};
use crate::outbound::record::StateRecord;

const T0: u64 = 1_700_000_000_000;
const KEY: &str = "5f2b9c0d1e3a4b6c7d8e9f00112233445566778899aabbccddeeff0011223344";
const HOUR_S: u64 = 3_599;

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
        FetchOutcome::Updated(TokenUpdate {
            generation: 1,
            expires_in_ms: HOUR_S * 1000
        })
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
        FetchOutcome::Updated(TokenUpdate { generation: 2, .. })
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
