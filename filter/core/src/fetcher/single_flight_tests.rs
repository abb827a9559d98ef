//! The out-of-order cases of the single-flight protocol, driven once here
//! against a minimal document (a text note, optionally behind an index
//! callout) rather than once per role: races on the lease, callouts answered
//! late, twice, to the wrong worker or never, and failures on dispatch.
//! The JWKS and agent-token tests keep only what their hooks add.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::*;
use crate::fetcher::fake_host::{DispatchedCallout, FakeEnvoy, FakeHost};
use crate::fetcher::leased_state::{store_next_generation, LEASE_MARGIN_MS};
use crate::fetcher::state_record::StateRecord;
use crate::fetcher::test_support::{self, respond};

const T0: u64 = 1_700_000_000_000;
const TIMEOUT: u64 = 1_000;
const LEASE: u64 = TIMEOUT + LEASE_MARGIN_MS;
const REFRESH: u64 = 3_600_000;
const NOTE_KEY: &str = "test.note";
const STATE_KEY: &str = "test.state";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct NoFields {}

impl RoleFields for NoFields {
    const FORMAT_VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoteError {
    Dispatch(String),
    Status(Option<u16>),
    Store,
}

impl Display for NoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl From<HostFailure> for NoteError {
    fn from(failure: HostFailure) -> NoteError {
        match failure {
            HostFailure::DispatchRefused(reason) => NoteError::Dispatch(reason),
            HostFailure::StoreFailed => NoteError::Store,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Index,
    Note,
}

/// `(generation, text, fetched at)` of this worker's copy.
#[derive(Debug)]
struct Note {
    indexed: bool,
    local: Option<(u64, String, UnixMillis)>,
}

fn request(path: &str) -> CalloutRequest {
    CalloutRequest {
        cluster: "notes".into(),
        authority: "notes".into(),
        path: path.into(),
        timeout_ms: TIMEOUT,
        headers: Vec::new(),
    }
}

fn decode(bytes: &[u8]) -> Option<(u64, String)> {
    let text = core::str::from_utf8(bytes).ok()?;
    let (generation, note) = text.split_once(':')?;
    Some((generation.parse().ok()?, note.to_string()))
}

impl Document for Note {
    type Fields = NoFields;
    type Phase = Step;
    type Parsed = String;
    type Stored = (u64, String);
    type Adopted = u64;
    type Error = NoteError;

    const WHAT: &'static str = "the note";

    fn first_request(&self) -> (Step, CalloutRequest) {
        if self.indexed {
            (Step::Index, request("/index"))
        } else {
            (Step::Note, request("/note"))
        }
    }

    fn parse(
        &self,
        phase: Step,
        response: CalloutResponse,
    ) -> Result<Answer<Step, String>, NoteError> {
        if response.status != Some(200) {
            return Err(NoteError::Status(response.status));
        }
        let body = String::from_utf8_lossy(&response.body).into_owned();
        Ok(match phase {
            Step::Index => Answer::Next(Step::Note, request(&body)),
            Step::Note => Answer::Done(body),
        })
    }

    fn sync(&mut self, host: &dyn Host, _settled: bool, now: UnixMillis) -> bool {
        let Some((generation, note)) = host.shared_get(NOTE_KEY).data.and_then(|d| decode(&d))
        else {
            return false;
        };
        if self
            .local
            .as_ref()
            .is_some_and(|(g, _, _)| *g >= generation)
        {
            return false;
        }
        self.local = Some((generation, note, now));
        true
    }

    fn wanted(&self, _fields: &NoFields, now: UnixMillis) -> Result<&'static str, UnixMillis> {
        match &self.local {
            None => Ok("nothing yet"),
            Some((_, _, at)) if now >= at + REFRESH => Ok("refresh"),
            Some((_, _, at)) => Err(at + REFRESH),
        }
    }

    fn store(
        &mut self,
        host: &dyn Host,
        parsed: String,
        _now: UnixMillis,
    ) -> Result<(u64, String), NoteError> {
        let floor = self.local.as_ref().map_or(0, |(g, _, _)| *g);
        let generation = store_next_generation(
            host,
            NOTE_KEY,
            |d| decode(d).map(|(g, _)| g),
            || floor,
            |g| Some(format!("{g}:{parsed}").into_bytes()),
        )
        .ok_or(NoteError::Store)?;
        Ok((generation, parsed))
    }

    fn adopt(&mut self, _host: &dyn Host, stored: (u64, String), now: UnixMillis) -> u64 {
        self.local = Some((stored.0, stored.1, now));
        stored.0
    }

    fn retry_delay_ms(
        &self,
        _error: &NoteError,
        _worker: u32,
        failures: u32,
        _now: UnixMillis,
    ) -> u64 {
        1_000 * u64::from(failures)
    }

    fn kept(&self, _now: UnixMillis) -> String {
        format!("keeping {:?}", self.local.as_ref().map(|(g, _, _)| g))
    }
}

type Outcome = FetchOutcome<u64, NoteError>;

struct Worker {
    host: FakeHost,
    fetcher: Fetcher<Note>,
}

impl Worker {
    fn new(envoy: &FakeEnvoy, id: u32) -> Worker {
        Worker::with(envoy, id, false)
    }

    fn with(envoy: &FakeEnvoy, id: u32, indexed: bool) -> Worker {
        let note = Note {
            indexed,
            local: None,
        };
        let state = LeasedState::new(STATE_KEY.into(), "note".into(), id, LEASE);
        Worker {
            host: envoy.host(id),
            fetcher: Fetcher::new(note, state),
        }
    }

    fn tick(&mut self) -> TickOutcome<NoteError> {
        self.fetcher.on_tick(&mut self.host)
    }

    fn answer(&mut self, token: CalloutToken, response: CalloutResponse) -> Outcome {
        self.fetcher
            .on_callout_response(&mut self.host, token, response)
    }

    fn note(&self) -> Option<String> {
        self.fetcher
            .document()
            .local
            .as_ref()
            .map(|(_, n, _)| n.clone())
    }
}

fn workers(envoy: &FakeEnvoy, n: u32) -> Vec<Worker> {
    (0..n).map(|id| Worker::new(envoy, id)).collect()
}

fn tick_all(ws: &mut [Worker]) -> Vec<TickOutcome<NoteError>> {
    ws.iter_mut().map(Worker::tick).collect()
}

fn next_dispatch(envoy: &FakeEnvoy, ws: &mut [Worker]) -> DispatchedCallout {
    test_support::next_dispatch(envoy, 1000, || {
        tick_all(ws);
    })
}

fn answer(ws: &mut [Worker], c: &DispatchedCallout, response: CalloutResponse) -> Outcome {
    ws[c.worker_id as usize].answer(c.token, response)
}

fn ok(text: &str) -> CalloutResponse {
    respond(Some(200), text.as_bytes())
}

fn state(envoy: &FakeEnvoy) -> StateRecord<NoFields> {
    test_support::stored_state(envoy, STATE_KEY)
}

#[test]
fn one_answer_serves_every_worker() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 3);
    let c = next_dispatch(&envoy, &mut ws);
    assert_eq!(c.request.path, "/note");
    assert_eq!(answer(&mut ws, &c, ok("hello")), FetchOutcome::Updated(1));
    let ticks = tick_all(&mut ws);
    let fetcher = c.worker_id as usize;
    for (i, t) in ticks.iter().enumerate() {
        assert_eq!(t.changed, i != fetcher, "worker {i}");
        assert_eq!(t.next_tick_ms, SLOW_TICK_MS);
    }
    assert!(ws.iter().all(|w| w.note().as_deref() == Some("hello")));
    assert_eq!(envoy.callout_count(), 1);
    assert_eq!(ws[fetcher].fetcher.stats().fetch_ok, 1);
}

#[test]
fn same_millisecond_ticks_dispatch_once() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 3);
    // Worker 0 only creates the state record (creation cannot be exclusive), so
    // worker 1 takes the lease by CAS and worker 2 finds it taken.
    let first = tick_all(&mut ws);
    let started: Vec<bool> = first.iter().map(|o| o.started_fetch).collect();
    assert_eq!(started, [false, true, false]);
    assert_eq!(first[0].next_tick_ms, FAST_TICK_MS);
    assert_eq!(first[2].next_tick_ms, FAST_TICK_MS);
    let c = envoy.last_callout().unwrap();
    answer(&mut ws, &c, ok("one"));
    // A refresh due for everyone in the same millisecond: still one fetch.
    envoy.advance(REFRESH);
    let second = tick_all(&mut ws);
    assert_eq!(second.iter().filter(|o| o.started_fetch).count(), 1);
    assert_eq!(envoy.callout_count(), 2);
}

#[test]
fn interleaved_lease_race_dispatches_once() {
    let envoy = FakeEnvoy::new(T0);
    let mut w0 = Worker::new(&envoy, 0);
    let w1 = Rc::new(RefCell::new(Worker::new(&envoy, 1)));
    w0.tick(); // creates the state record
    envoy.advance(FAST_TICK_MS);
    // w1 runs its whole tick between w0's state read and w0's lease write.
    let racer = Rc::clone(&w1);
    envoy.before_next_set(move || assert!(racer.borrow_mut().tick().started_fetch));
    let out = w0.tick();
    assert!(!out.started_fetch);
    assert_eq!(out.next_tick_ms, FAST_TICK_MS);
    assert_eq!(envoy.callout_count(), 1);
    assert_eq!(envoy.last_callout().unwrap().worker_id, 1);
}

#[test]
fn interleaved_state_creation_race_dispatches_once() {
    let envoy = FakeEnvoy::new(T0);
    let mut w0 = Worker::new(&envoy, 0);
    let w1 = Rc::new(RefCell::new(Worker::new(&envoy, 1)));
    // Both see "no state": w1 creates it between w0's read and w0's own create.
    let racer = Rc::clone(&w1);
    envoy.before_next_set(move || assert!(!racer.borrow_mut().tick().started_fetch));
    w0.tick();
    envoy.advance(FAST_TICK_MS);
    w0.tick();
    w1.borrow_mut().tick();
    assert_eq!(envoy.callout_count(), 1);
}

#[test]
fn lease_expires_when_a_callout_is_never_answered() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let lost = next_dispatch(&envoy, &mut ws);
    let other = 1 - lost.worker_id as usize;
    assert_eq!(
        ws[other].tick().next_tick_ms,
        FAST_TICK_MS,
        "polls while another worker fetches"
    );
    envoy.advance(LEASE - 1);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 1);
    envoy.advance(1);
    let retry = next_dispatch(&envoy, &mut ws);
    assert_ne!(lost.token, retry.token);
    assert_eq!(answer(&mut ws, &retry, ok("new")), FetchOutcome::Updated(1));
    // The lost callout finally answers: its worker abandoned it, so it is ignored.
    assert_eq!(answer(&mut ws, &lost, ok("old")), FetchOutcome::Ignored);
    tick_all(&mut ws);
    assert!(ws.iter().all(|w| w.note().as_deref() == Some("new")));
    assert!(envoy.logs().iter().any(|l| l.message.contains("abandoned")));
}

#[test]
fn answers_nobody_waits_for_are_ignored() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    assert_eq!(ws[0].answer(999, ok("x")), FetchOutcome::Ignored);
    let c = next_dispatch(&envoy, &mut ws);
    let fetcher = c.worker_id as usize;
    assert_eq!(
        ws[fetcher].answer(c.token + 100, ok("x")),
        FetchOutcome::Ignored
    );
    // Only the worker that dispatched may answer it.
    assert_eq!(
        ws[1 - fetcher].answer(c.token, ok("x")),
        FetchOutcome::Ignored
    );
    assert!(ws[fetcher].fetcher.awaits(c.token) && ws[fetcher].fetcher.fetch_in_flight());
    assert!(answer(&mut ws, &c, ok("one")).settled());
    assert_eq!(
        answer(&mut ws, &c, ok("again")),
        FetchOutcome::Ignored,
        "answered twice"
    );
    assert_eq!(ws[fetcher].note().as_deref(), Some("one"));
    let ignored: u64 = ws.iter().map(|w| w.fetcher.stats().ignored_responses).sum();
    assert_eq!(ignored, 4);
}

#[test]
fn an_answer_after_the_dispatching_worker_was_replaced_is_harmless() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let c = next_dispatch(&envoy, &mut ws);
    let id = c.worker_id;
    ws[id as usize] = Worker::new(&envoy, id); // VM reload
    assert_eq!(
        ws[id as usize].answer(c.token, ok("x")),
        FetchOutcome::Ignored
    );
    // The old lease blocks nobody forever.
    envoy.advance(LEASE);
    let retry = next_dispatch(&envoy, &mut ws);
    answer(&mut ws, &retry, ok("one"));
    tick_all(&mut ws);
    assert!(ws.iter().all(|w| w.note().is_some()));
}

#[test]
fn a_late_result_after_the_lease_was_taken_over_is_discarded() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let first = next_dispatch(&envoy, &mut ws);
    let slow = first.worker_id as usize;
    envoy.advance(LEASE);
    // Only the other worker ticks: the slow one still believes its callout is live.
    assert!(ws[1 - slow].tick().started_fetch);
    let second = envoy.last_callout().unwrap();
    let out = ws[slow].answer(first.token, ok("old"));
    assert_eq!(out, FetchOutcome::Discarded { error: None });
    assert_eq!((out.settled(), out.fetch_succeeded()), (false, None));
    assert_eq!(envoy.shared_raw(NOTE_KEY), None, "nothing written");
    assert!(
        state(&envoy).lease_active(envoy.now()),
        "the new holder keeps its lease"
    );
    assert_eq!(
        answer(&mut ws, &second, ok("new")),
        FetchOutcome::Updated(1)
    );
    ws[slow].tick();
    assert_eq!(ws[slow].note().as_deref(), Some("new"));
}

#[test]
fn a_late_failure_after_the_lease_was_taken_over_records_nothing() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let first = next_dispatch(&envoy, &mut ws);
    let slow = first.worker_id as usize;
    envoy.advance(LEASE);
    assert!(ws[1 - slow].tick().started_fetch);
    let out = ws[slow].answer(first.token, respond(Some(502), b""));
    assert_eq!(
        out,
        FetchOutcome::Discarded {
            error: Some(NoteError::Status(Some(502)))
        }
    );
    assert!(!out.settled());
    assert_eq!(
        out.fetch_succeeded(),
        Some(false),
        "still counted as a failed fetch"
    );
    let s = state(&envoy);
    assert_eq!(s.consecutive_failures, 0);
    assert!(
        s.lease_active(envoy.now()),
        "the new holder keeps its lease"
    );
}

#[test]
fn a_failure_settles_backs_off_and_the_next_attempt_waits_for_it() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    let c = next_dispatch(&envoy, &mut ws);
    let out = answer(&mut ws, &c, respond(None, b""));
    assert_eq!(
        out,
        FetchOutcome::Failed {
            error: NoteError::Status(None),
            retry_in_ms: 1_000
        }
    );
    assert!(out.settled());
    let others = tick_all(&mut ws);
    assert!(others
        .iter()
        .all(|t| t.recheck_waiters || t.next_tick_ms == 1_000));
    let s = state(&envoy);
    assert_eq!(
        (s.lease_owner.as_deref(), s.consecutive_failures),
        (None, 1)
    );
    assert_eq!(s.last_error.as_deref(), Some("Status(None)"));
    envoy.advance(999);
    assert!(tick_all(&mut ws).iter().all(|t| !t.started_fetch));
    envoy.advance(1);
    let retry = next_dispatch(&envoy, &mut ws);
    assert_eq!(
        answer(&mut ws, &retry, ok("healed")),
        FetchOutcome::Updated(1)
    );
    assert_eq!(state(&envoy).consecutive_failures, 0);
}

#[test]
fn a_dispatch_refused_by_the_host_is_a_failure_on_the_tick() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 2);
    ws[0].host.fail_dispatch = Some("cluster not found".into());
    ws[0].tick(); // creates state
    envoy.advance(FAST_TICK_MS);
    let out = ws[0].tick();
    assert!(!out.started_fetch && out.recheck_waiters);
    assert_eq!(
        out.failure,
        Some(NoteError::Dispatch("cluster not found".into()))
    );
    assert_eq!(out.next_tick_ms, 1_000);
    let s = state(&envoy);
    assert_eq!(
        (s.lease_owner.as_deref(), s.consecutive_failures),
        (None, 1)
    );
    assert_eq!(ws[0].fetcher.stats().fetch_failed, 1);
    envoy.advance(1_000);
    assert!(
        ws[1].tick().started_fetch,
        "a healthy worker retries after the backoff"
    );
}

#[test]
fn a_second_callout_renews_the_lease_and_a_lost_lease_stops_the_fetch() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws: Vec<Worker> = (0..2).map(|id| Worker::with(&envoy, id, true)).collect();
    let index = next_dispatch(&envoy, &mut ws);
    assert_eq!(index.request.path, "/index");
    envoy.advance(LEASE - 1);
    assert_eq!(
        answer(&mut ws, &index, ok("/note/7")),
        FetchOutcome::Continuing
    );
    let note = envoy.last_callout().unwrap();
    assert_eq!(
        (note.request.path.as_str(), note.worker_id),
        ("/note/7", index.worker_id)
    );
    // The lease now runs from the second dispatch: nobody else fetches yet.
    envoy.advance(LEASE - 1);
    tick_all(&mut ws);
    assert_eq!(envoy.callout_count(), 2);
    assert_eq!(
        answer(&mut ws, &note, ok("seven")),
        FetchOutcome::Updated(1)
    );

    // A fetch whose lease was taken over between its two callouts ends there.
    envoy.advance(REFRESH);
    let index = next_dispatch(&envoy, &mut ws);
    let mut s = state(&envoy);
    s.lease_owner = Some("w9-1-0".into());
    s.lease_until_ms = envoy.now() + LEASE;
    envoy.put_raw(STATE_KEY, &s.encode().unwrap());
    assert_eq!(
        answer(&mut ws, &index, ok("/note/8")),
        FetchOutcome::Discarded { error: None }
    );
    assert_eq!(envoy.callout_count(), 3, "no second callout");
}

#[test]
fn a_store_that_cannot_be_written_is_a_failure() {
    let envoy = FakeEnvoy::new(T0);
    let mut ws = workers(&envoy, 1);
    let c = next_dispatch(&envoy, &mut ws);
    // Every write of the note loses its CAS, past the attempts allowed (a
    // key that exists is written by CAS; a new one would always be created).
    envoy.put_raw(NOTE_KEY, b"0:x");
    let e = envoy.clone();
    fn clobber(e: FakeEnvoy, left: u32) {
        let again = e.clone();
        e.before_next_set(move || {
            again.put_raw(NOTE_KEY, format!("{left}:x").as_bytes());
            if left > 0 {
                clobber(again.clone(), left - 1);
            }
        });
    }
    clobber(e, 8);
    let out = answer(&mut ws, &c, ok("lost"));
    assert!(
        matches!(
            out,
            FetchOutcome::Failed {
                error: NoteError::Store,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(state(&envoy).consecutive_failures, 1);
}
