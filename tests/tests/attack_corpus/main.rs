//! The attack corpus (`cases.rs`) against the real Envoy with the filter.
//!
//! One IdP, echo upstream and callee-side Envoy serve every case: each case
//! is one request over a raw socket, every mismatch is collected, and the test
//! fails once with the full list. Besides its status, error and reason, every
//! refused case must not reach the app and must not echo what it sent; after
//! the whole corpus a valid token must still pass (no crashed VM) and Envoy's
//! wasm failure counters must be zero.
//!
//! `docs/security.md` carries the corpus as a table rendered from the same
//! case list; `docs_security_md_lists_exactly_the_corpus` keeps the two equal
//! (`ENTRAGATE_BLESS=1` rewrites the table).

#[path = "../support/mod.rs"]
mod support;

mod cases;
mod forge;
mod raw_http;
mod table;

use std::collections::HashSet;
use std::sync::Arc;

use cases::{Case, Class, Expect};
use entragate_tests::{ids, Echo, Idp};
use forge::{Ctx, FOREIGN_TENANT};
use raw_http::{Attack, RawResponse};
use serde_json::Value;
use support::{require_envoy, Callee, REALM};

/// Shortest credential fragment that counts as echoed.
const WINDOW: usize = 20;

#[test]
fn case_ids_are_unique_and_every_class_is_covered() {
    let cases = cases::all();
    let mut ids = HashSet::new();
    for case in &cases {
        assert!(ids.insert(case.id), "duplicate case id {}", case.id);
        assert!(!case.description.is_empty(), "{}", case.id);
    }
    for class in Class::ALL {
        assert!(
            cases.iter().any(|c| c.class == *class),
            "class {} has no case",
            class.name()
        );
    }
    assert!(cases.len() >= 60, "the corpus shrank to {}", cases.len());
}

#[test]
fn docs_security_md_lists_exactly_the_corpus() {
    let rendered = table::render(&cases::all());
    let path = table::security_md();
    let document = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if std::env::var_os(table::BLESS_ENV).is_some() {
        let updated = table::splice(&document, &rendered).unwrap_or_else(|| {
            panic!(
                "{} lacks the markers {:?} ... {:?}",
                path.display(),
                table::BEGIN,
                table::END
            )
        });
        if updated != document {
            std::fs::write(&path, updated).unwrap();
            eprintln!("rewrote the attack corpus table in {}", path.display());
        }
        return;
    }
    let current = table::current(&document).unwrap_or_else(|| {
        panic!(
            "{} lacks the generated section markers; run with {}=1 after adding them",
            path.display(),
            table::BLESS_ENV
        )
    });
    if current != rendered {
        let first_difference = current
            .lines()
            .zip(rendered.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("\n  docs:  {a}\n  cases: {b}"))
            .unwrap_or_else(|| "\n  (one is a prefix of the other)".into());
        panic!(
            "docs/security.md is out of date with tests/tests/attack_corpus/cases.rs; rewrite it with \
             `{}=1 cargo nextest run -p entragate-tests --test attack_corpus docs_`.\nFirst difference:{first_difference}",
            table::BLESS_ENV
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_case_gets_its_documented_answer_from_the_real_envoy() {
    if !require_envoy("attack_corpus") {
        return;
    }
    // The 1024-bit key is in the JWKS from the first fetch on.
    let callee = Callee::start_with(
        |_| {},
        |idp| {
            idp.publish_weak_key().expect("a 1024-bit key");
        },
    )
    .await;
    callee.wait_for_keys().await;
    let foreign = Idp::builder()
        .tenant(FOREIGN_TENANT)
        .standby_keys(0)
        .start()
        .expect("second tenant's IdP");
    let signer = callee.idp.signing_key();
    let published = callee.idp.published_keys();
    let weak = published
        .iter()
        .find(|k| k.bits() < 2048)
        .map(Arc::clone)
        .expect("weak key published");
    let standby = published
        .iter()
        .find(|k| k.bits() >= 2048 && k.kid() != signer.kid())
        .map(Arc::clone)
        .expect("a standby key");
    let ctx = Ctx {
        idp: &callee.idp,
        foreign: &foreign,
        attacker: callee.idp.unpublished_key().expect("attacker key"),
        weak,
        standby,
        attacker_url: format!("http://{}", callee.echo.addr()),
    };

    let cases = cases::all();
    let addr = callee.envoy.listener();
    let mut failures = Vec::new();
    let mut tally = [0usize; 3];
    for case in &cases {
        let attack = (case.build)(&ctx);
        let before = callee.echo.request_count();
        let response = raw_http::send(addr, &attack).await;
        let reached_app = callee.echo.request_count() - before;
        let problems = match response {
            Ok(response) => check(case, &attack, &response, reached_app, &callee.echo),
            Err(e) => vec![format!("no HTTP answer: {e:#}")],
        };
        tally[match case.expect {
            Expect::Accepted => 0,
            Expect::Filter { .. } => 1,
            Expect::Envoy { .. } => 2,
        }] += 1;
        for problem in problems {
            failures.push(format!("{} ({}): {problem}", case.id, case.description));
        }
    }

    // Nothing pointed to by a token (`jku`, `x5u`) was ever fetched.
    let fetched: Vec<String> = callee
        .echo
        .received()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with("/attacker"))
        .collect();
    if !fetched.is_empty() {
        failures.push(format!("token-supplied URLs were fetched: {fetched:?}"));
    }
    // Unknown kids cost at most one forced JWKS refresh, not one per request.
    let jwks_fetches = callee.idp.jwks_fetches();
    if jwks_fetches > 2 {
        failures.push(format!(
            "{jwks_fetches} JWKS fetches: unknown kids must not cause a fetch each"
        ));
    }

    // The VMs survived the corpus: a valid token still passes ...
    let after = raw_http::send(addr, &Attack::bearer(ctx.good())).await;
    match after {
        Ok(response) if response.status == 200 => {}
        other => failures.push(format!(
            "a valid token after the corpus was not accepted: {other:?}"
        )),
    }
    // ... and Envoy counted no wasm failure.
    let stats = callee.envoy.stats().await.expect("stats");
    let mut wasm_failure_counters = Vec::new();
    for (name, value) in &stats {
        let wasm_failure = name.starts_with("wasm.")
            && ["fail", "crash", "abort", "panic"]
                .iter()
                .any(|word| name.contains(word));
        if wasm_failure {
            wasm_failure_counters.push(name.as_str());
        }
        if wasm_failure && *value != 0 {
            failures.push(format!("Envoy stat {name} = {value}"));
        }
    }
    let log = callee.envoy.logs();
    for marker in [
        "panicked",
        "Wasm VM failed",
        "wasm crashed",
        "Function: proxy_on",
    ] {
        if log.contains(marker) {
            failures.push(format!("Envoy log mentions {marker:?}"));
        }
    }

    eprintln!(
        "attack corpus: {} cases ({} documented acceptances, {} refused by the filter, {} refused by Envoy), {} mismatches, {jwks_fetches} JWKS fetches, wasm failure counters checked: {wasm_failure_counters:?}",
        cases.len(),
        tally[0],
        tally[1],
        tally[2],
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases did not get their documented answer:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every way `response` differs from what `case` documents.
fn check(
    case: &Case,
    attack: &Attack,
    response: &RawResponse,
    reached_app: usize,
    echo: &Echo,
) -> Vec<String> {
    let mut problems = Vec::new();
    let body = String::from_utf8_lossy(&response.body).to_string();
    if response.status != case.expect.status() {
        problems.push(format!(
            "status {} instead of {} (body {body:?}, challenge {:?})",
            response.status,
            case.expect.status(),
            response.header("www-authenticate")
        ));
        return problems;
    }
    let challenge = response.header("www-authenticate");
    match case.expect {
        Expect::Accepted => {
            if reached_app != 1 {
                problems.push(format!("accepted, but the app saw {reached_app} requests"));
            }
            // Claim headers come from the verified token only.
            let seen = echo.last_request();
            let seen = seen.as_ref();
            let caller = seen.and_then(|r| r.header("x-entra-caller"));
            let roles = seen.and_then(|r| r.header("x-entra-roles"));
            if caller != Some(ids::CLIENT_ID) || roles != Some(ids::CLIENT_ROLE) {
                problems.push(format!(
                    "forwarded with x-entra-caller {caller:?}, x-entra-roles {roles:?}"
                ));
            }
        }
        Expect::Filter { error, reason, .. } => {
            let realm = format!("Bearer realm=\"{REALM}\"");
            match (error, challenge) {
                (None, Some(c)) if c == realm => {}
                (Some(code), Some(c))
                    if c.starts_with(&realm)
                        && c.contains(&format!("error=\"{code}\""))
                        && c.contains(&format!("error_description=\"{reason}\"")) => {}
                (_, c) => problems.push(format!("challenge {c:?}")),
            }
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let body_error = error.unwrap_or("unauthorized");
            if json["error"] != body_error || json["error_description"] != reason {
                problems.push(format!("body {body:?}"));
            }
        }
        Expect::Envoy { .. } => {
            if let Some(c) = challenge {
                problems.push(format!("unexpected challenge {c:?} (the filter answered)"));
            }
        }
    }
    if case.expect != Expect::Accepted {
        if reached_app != 0 {
            problems.push(format!("refused, yet the app saw {reached_app} requests"));
        }
        if let Some(fragment) = echoed_fragment(attack, response) {
            problems.push(format!("the answer echoes what was sent: {fragment:?}"));
        }
    }
    problems
}

/// A 20-byte piece of any credential-carrying part of the request that shows
/// up in the answer (headers or body).
fn echoed_fragment(attack: &Attack, response: &RawResponse) -> Option<String> {
    let mut answer = response.body.clone();
    for (name, value) in &response.headers {
        answer.extend_from_slice(name.as_bytes());
        answer.extend_from_slice(value.as_bytes());
    }
    let windows: HashSet<&[u8]> = answer.windows(WINDOW).collect();
    attack
        .headers
        .iter()
        .filter(|(name, _)| name == "authorization")
        .map(|(_, v)| v.as_slice())
        .chain([attack.body.as_slice(), attack.target.as_bytes()])
        .flat_map(|part| part.windows(WINDOW))
        // The fixed prefix a request shares with the challenge is not an echo.
        .filter(|w| !w.starts_with(b"Bearer") && !w.starts_with(b"/fraud"))
        .find(|w| windows.contains(w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}
