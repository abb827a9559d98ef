//! The request flow with the verified-token cache: hits skip only decoding and
//! the signature; key membership, lifetime and authorization are re-checked.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::inbound::cache::VerifiedTokenCache;
use crate::token::signature::PureRustVerifier;
use crate::token::test_keys::{self, sign_rs256, TestKey};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const CALLER: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
const IAT: i64 = 1_767_225_600;
const EXP: i64 = IAT + 3600;
const LEEWAY: i64 = 300;

fn policy(cache_size: u64) -> FilterPolicy {
    let config = json!({
        "tenant_id": TENANT,
        "audiences": [AUDIENCE],
        "jwks": {"cluster": "idp", "authority": "idp"},
        "token_cache_size": cache_size,
        "rules": [
            {"name": "scan", "path": {"prefix": "/scan/"}, "app_roles": {"any_of": ["Fraud.Scan"]}},
            {"name": "admin", "path": {"prefix": "/admin/"}, "app_roles": {"any_of": ["Fraud.Admin"]}}
        ]
    });
    FilterPolicy::from_json(config.to_string().as_bytes()).unwrap()
}

fn token_signed_by(key: &TestKey) -> String {
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","kid":"{}"}}"#,
        key.public.kid
    );
    let claims = json!({
        "aud": AUDIENCE, "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": IAT, "nbf": IAT, "exp": EXP, "azp": CALLER, "idtyp": "app",
        "roles": ["Fraud.Scan"], "tid": TENANT, "ver": "2.0"
    });
    sign_rs256(key, &header, &claims.to_string())
}

fn token() -> String {
    token_signed_by(test_keys::primary())
}

fn keys() -> KeySet {
    KeySet {
        keys: vec![
            test_keys::other().public.clone(),
            test_keys::primary().public.clone(),
        ],
    }
}

/// Counts signature checks, to tell hits from misses.
#[derive(Default)]
struct CountingVerifier {
    calls: Cell<u32>,
}

impl SignatureVerifier for CountingVerifier {
    fn verify(
        &self,
        alg: crate::options::Algorithm,
        key: &RsaPublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        self.calls.set(self.calls.get() + 1);
        PureRustVerifier.verify(alg, key, signing_input, signature)
    }
}

struct Fixture {
    policy: FilterPolicy,
    keys: KeySet,
    cache: VerifiedTokenCache,
    verifier: CountingVerifier,
}

impl Fixture {
    fn new(cache_size: u64) -> Fixture {
        let policy = policy(cache_size);
        Fixture {
            cache: VerifiedTokenCache::new(policy.token_cache_size),
            policy,
            keys: keys(),
            verifier: CountingVerifier::default(),
        }
    }

    fn run(&mut self, path: &str, token: &str, now: i64) -> Step {
        self.run_from(&[], path, token, now)
    }

    /// A request on a connection whose peer certificate names `peer`.
    fn run_from(&mut self, peer: &[&str], path: &str, token: &str, now: i64) -> Step {
        self.flow_from(peer, path, token, now).1
    }

    /// The flow after its decision, for its audit trail.
    fn flow_from(
        &mut self,
        peer: &[&str],
        path: &str,
        token: &str,
        now: i64,
    ) -> (RequestFlow, Step) {
        let mut flow = RequestFlow::new(RequestInput {
            method: "GET".into(),
            path: path.into(),
            authorization: vec![format!("Bearer {token}")],
            peer_identities: peer.iter().map(|p| p.to_string()).collect(),
        });
        let step = flow.start_verify(
            &self.policy,
            &KeyAvailability::Ready(Rc::new(Arc::new(self.keys.clone()))),
            &self.verifier,
            &mut self.cache,
            now,
        );
        (flow, step)
    }

    fn signature_checks(&self) -> u32 {
        self.verifier.calls.get()
    }
}

fn allowed(step: &Step) -> bool {
    matches!(step, Step::Done(Decision::Allow { .. }))
}

fn denied_with(step: &Step) -> Option<AuthError> {
    match step {
        Step::Done(Decision::Deny(denial)) => Some(denial.error),
        _ => None,
    }
}

#[test]
fn a_miss_and_a_hit_name_the_token_by_the_same_fingerprint_without_hashing_it_again() {
    let mut f = Fixture::new(16);
    let token = token();
    let (miss, step) = f.flow_from(&[], "/scan/1", &token, IAT + 10);
    assert!(allowed(&step));
    let (hit, step) = f.flow_from(&[], "/scan/1", &token, IAT + 11);
    assert!(allowed(&step));
    assert_eq!(f.signature_checks(), 1, "the second was a hit");
    let expected = crate::fingerprint::fingerprint(&token);
    assert_eq!(
        miss.audit().token_fingerprint.as_deref(),
        Some(expected.as_str())
    );
    assert_eq!(
        hit.audit().token_fingerprint.as_deref(),
        Some(expected.as_str())
    );
}

#[test]
fn a_repeated_token_is_verified_once_and_decided_the_same() {
    let mut f = Fixture::new(16);
    let token = token();
    let first = f.run("/scan/1", &token, IAT + 10);
    let second = f.run("/scan/1", &token, IAT + 20);
    assert!(allowed(&first), "{first:?}");
    assert_eq!(first, second);
    assert_eq!(f.signature_checks(), 1);
    assert_eq!(f.cache.stats().hits, 1);
    assert_eq!(f.cache.len(), 1);
}

#[test]
fn hits_are_still_authorized_per_route() {
    let mut f = Fixture::new(16);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    let step = f.run("/admin/1", &token, IAT + 20);
    assert_eq!(denied_with(&step), Some(AuthError::PermissionMissing));
    match step {
        Step::Done(Decision::Deny(denial)) => {
            assert_eq!(denial.required_scope.as_deref(), Some("Fraud.Admin"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.signature_checks(), 1);
    // An unmatched route is refused before the token is even looked at.
    assert_eq!(
        denied_with(&f.run("/other", &token, IAT + 30)),
        Some(AuthError::RouteNotAllowed)
    );
}

#[test]
fn hits_never_outlive_exp_plus_leeway() {
    let mut f = Fixture::new(16);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    // Within the leeway after exp: still accepted, as on a miss.
    assert!(allowed(&f.run("/scan/1", &token, EXP + LEEWAY - 1)));
    assert_eq!(f.signature_checks(), 1);
    // Past it: the same error as a full check gives, and the entry is gone.
    assert_eq!(
        denied_with(&f.run("/scan/1", &token, EXP + LEEWAY + 1)),
        Some(AuthError::Expired)
    );
    assert!(f.cache.is_empty());
    let mut fresh = Fixture::new(16);
    assert_eq!(
        denied_with(&fresh.run("/scan/1", &token, EXP + LEEWAY + 1)),
        Some(AuthError::Expired)
    );
}

#[test]
fn hits_honour_nbf_if_the_clock_goes_back() {
    let mut f = Fixture::new(16);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    assert_eq!(
        denied_with(&f.run("/scan/1", &token, IAT - LEEWAY - 10)),
        Some(AuthError::NotYetValid)
    );
}

#[test]
fn a_token_whose_key_left_the_jwks_is_verified_again() {
    let mut f = Fixture::new(16);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    // Rotation removed the key: no hit; the kid is now unknown, which asks
    // for a refresh exactly as for a token never seen.
    f.keys = KeySet {
        keys: vec![test_keys::other().public.clone()],
    };
    assert_eq!(
        f.run("/scan/1", &token, IAT + 20),
        Step::AwaitKeys {
            force_refresh: true
        }
    );
    assert!(f.cache.is_empty());
}

#[test]
fn a_kid_republished_with_other_material_does_not_keep_the_token_alive() {
    let mut f = Fixture::new(16);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    let mut impostor = test_keys::other().public.clone();
    impostor.kid = test_keys::primary().public.kid.clone();
    f.keys = KeySet {
        keys: vec![impostor],
    };
    assert_eq!(
        denied_with(&f.run("/scan/1", &token, IAT + 20)),
        Some(AuthError::SignatureInvalid)
    );
    assert_eq!(f.signature_checks(), 2);
}

#[test]
fn only_fully_valid_tokens_are_cached() {
    let mut f = Fixture::new(16);
    // Bad signature: refused every time, never cached.
    let valid = token();
    let at = valid.rfind('.').unwrap() + 10;
    let swapped = if &valid[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &valid[..at], &valid[at + 1..]);
    for _ in 0..2 {
        assert_eq!(
            denied_with(&f.run("/scan/1", &forged, IAT + 10)),
            Some(AuthError::SignatureInvalid)
        );
    }
    // Valid signature but expired: refused every time, never cached.
    for _ in 0..2 {
        assert_eq!(
            denied_with(&f.run("/scan/1", &token(), EXP + LEEWAY + 5)),
            Some(AuthError::Expired)
        );
    }
    assert!(f.cache.is_empty());
    assert_eq!(f.signature_checks(), 4);
}

#[test]
fn a_token_signed_by_another_published_key_is_its_own_entry() {
    let mut f = Fixture::new(16);
    let a = token();
    let b = token_signed_by(test_keys::other());
    assert!(allowed(&f.run("/scan/1", &a, IAT + 10)));
    assert!(allowed(&f.run("/scan/1", &b, IAT + 10)));
    assert!(allowed(&f.run("/scan/1", &a, IAT + 10)));
    assert!(allowed(&f.run("/scan/1", &b, IAT + 10)));
    assert_eq!(f.signature_checks(), 2);
    assert_eq!(f.cache.len(), 2);
}

#[test]
fn size_zero_disables_the_cache() {
    let mut f = Fixture::new(0);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    assert_eq!(f.signature_checks(), 2);
    assert_eq!(f.cache.stats().hits, 0);
}

#[test]
fn without_ready_keys_the_cache_is_not_consulted() {
    let mut f = Fixture::new(16);
    let token = token();
    assert!(allowed(&f.run("/scan/1", &token, IAT + 10)));
    let mut flow = RequestFlow::new(RequestInput {
        method: "GET".into(),
        path: "/scan/1".into(),
        authorization: vec![format!("Bearer {token}")],
        peer_identities: Vec::new(),
    });
    let step = flow.start_verify(
        &f.policy,
        &KeyAvailability::Unavailable,
        &f.verifier,
        &mut f.cache,
        IAT + 20,
    );
    assert_eq!(denied_with(&step), Some(AuthError::KeysUnavailable));
}

#[test]
fn a_bound_rule_checks_the_peer_workload_on_misses_and_hits() {
    const TP: &str = "spiffe://cluster.local/ns/default/sa/transaction-processor";
    const REPORTING: &str = "spiffe://cluster.local/ns/default/sa/reporting";
    let mut f = Fixture::new(16);
    let config = json!({
        "tenant_id": TENANT,
        "audiences": [AUDIENCE],
        "jwks": {"cluster": "idp", "authority": "idp"},
        "rules": [
            {"name": "scan", "path": {"prefix": "/scan/"}, "app_roles": {"any_of": ["Fraud.Scan"]}},
            {"name": "open", "path": {"prefix": "/open/"}}
        ],
        "workload_binding": {
            "workloads": {TP: CALLER, REPORTING: "8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f"},
            "rules": ["scan"]
        }
    });
    f.policy = FilterPolicy::from_json(config.to_string().as_bytes()).unwrap();
    let token = token();
    // The replayed token: valid, but presented over the reporting workload's connection.
    let replayed = f.run_from(&[REPORTING], "/scan/1", &token, IAT + 10);
    assert_eq!(denied_with(&replayed), Some(AuthError::WorkloadMismatch));
    assert!(allowed(&f.run_from(&[TP], "/scan/1", &token, IAT + 10)));
    // Now a cache hit: the binding is decided per request, never cached.
    let checks = f.signature_checks();
    let hit = f.run_from(&[REPORTING], "/scan/1", &token, IAT + 20);
    assert_eq!(denied_with(&hit), Some(AuthError::WorkloadMismatch));
    assert_eq!(f.signature_checks(), checks, "served from the cache");
    // No client certificate at all: fails closed.
    assert_eq!(
        denied_with(&f.run_from(&[], "/scan/1", &token, IAT + 20)),
        Some(AuthError::WorkloadMismatch)
    );
    // An unbound rule does not look at the peer.
    assert!(allowed(&f.run_from(
        &[REPORTING],
        "/open/1",
        &token,
        IAT + 20
    )));
}
