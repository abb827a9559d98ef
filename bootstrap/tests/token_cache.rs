//! Token cache behaviour against a local token endpoint stub: single flight, backoff on 5xx and network
//! errors, `Retry-After` on 429, one secret re-read on `invalid_client`, refresh ahead of expiry, and
//! never serving an expired token. No AWS here: credentials come from an in-test loader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use entragate_bootstrap::secret::{
    CredentialLoader, CredentialStore, Credentials, LoadFuture, SecretError,
};
use entragate_bootstrap::token::cache::ScopeConfig;
use entragate_bootstrap::token::{
    AcquireError, FetchError, RetryPolicy, TokenCache, TokenEndpoint,
};
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::idp::{Fault, StubIdp, CORRELATION_ID};

const CLIENT: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SCOPE: &str = "api://fintech-fraud-detector/.default";

/// Loader returning whatever secret the test put in Secrets Manager "now".
struct InTestSecret(Arc<Mutex<String>>);

impl CredentialLoader for InTestSecret {
    fn load(&self) -> LoadFuture<'_> {
        let secret = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(creds(&secret)) })
    }
}

struct FailingLoader;

impl CredentialLoader for FailingLoader {
    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async {
            Err(SecretError::Unreachable {
                endpoint: "http://127.0.0.1:1".into(),
                region: "us-east-1".into(),
                detail: "refused".into(),
            })
        })
    }
}

fn creds(secret: &str) -> Credentials {
    Credentials::new(
        CLIENT.into(),
        TENANT.into(),
        SecretString::from(secret.to_string()),
    )
}

struct Setup {
    idp: StubIdp,
    cache: Arc<TokenCache>,
    stored: Arc<Mutex<String>>,
}

fn setup(lifetime: u64, initial_secret: &str, retry: RetryPolicy, timeout: Duration) -> Setup {
    let idp = StubIdp::start(CLIENT, TENANT, "s3cret", lifetime);
    let stored = Arc::new(Mutex::new(initial_secret.to_string()));
    let store = Arc::new(CredentialStore::new(
        creds(initial_secret),
        Box::new(InTestSecret(Arc::clone(&stored))),
    ));
    let endpoint = TokenEndpoint::new(&idp.authority, timeout).unwrap();
    let scopes = vec![ScopeConfig {
        name: "fraud".into(),
        scope: SCOPE.into(),
    }];
    let cache = Arc::new(TokenCache::new(endpoint, store, scopes, retry));
    Setup { idp, cache, stored }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(40),
        max: Duration::from_millis(400),
    }
}

fn default_setup() -> Setup {
    setup(3600, "s3cret", fast(), Duration::from_secs(5))
}

#[tokio::test]
async fn concurrent_callers_cause_one_request() {
    let s = default_setup();
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let cache = Arc::clone(&s.cache);
            tokio::spawn(async move { cache.get("fraud", 3).await.map(|t| t.fingerprint.clone()) })
        })
        .collect();
    let mut fingerprints = Vec::new();
    for c in calls {
        fingerprints.push(c.await.unwrap().unwrap());
    }
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), 1, "all callers share one token");
    assert_eq!(s.idp.requests(), 1);
    // A cached, fresh token is served without any request.
    for _ in 0..200 {
        s.cache.serve("fraud").unwrap();
    }
    s.cache.get("fraud", 1).await.unwrap();
    assert_eq!(s.idp.requests(), 1);
    assert_eq!(s.cache.requests("fraud"), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_growing_backoff() {
    let s = default_setup();
    s.idp.push_fault(Fault::ServerError(503));
    s.idp.push_fault(Fault::ServerError(500));
    s.idp.push_fault(Fault::Garbage);
    s.cache.get("fraud", 5).await.unwrap();
    let seen = s.idp.seen();
    assert_eq!(
        seen.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 500, 200, 200]
    );
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    // Equal jitter: the n-th delay is at least half of 40ms * 2^n.
    assert!(gaps[0] >= Duration::from_millis(20), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(40), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(80), "{gaps:?}");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let s = default_setup();
    s.idp.push_fault(Fault::Throttle(Some(1)));
    let start = Instant::now();
    s.cache.get("fraud", 3).await.unwrap();
    let seen = s.idp.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].status, 429);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "waited {:?}",
        seen[1].at - seen[0].at
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let s = default_setup();
    for _ in 0..3 {
        s.idp.push_fault(Fault::ServerError(503));
    }
    let err = s.cache.get("fraud", 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            AcquireError::Fetch(FetchError::Server { status: 503, .. })
        ),
        "{err}"
    );
    assert_eq!(s.idp.requests(), 2);
    assert!(s.cache.serve("fraud").is_err(), "nothing to serve");
}

#[tokio::test]
async fn slow_identity_provider_times_out_and_is_retried() {
    let s = setup(3600, "s3cret", fast(), Duration::from_millis(300));
    s.idp.push_fault(Fault::Slow(Duration::from_millis(1500)));
    let start = Instant::now();
    s.cache.get("fraud", 3).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        start.elapsed() < Duration::from_millis(1400),
        "did not wait for the slow answer"
    );
}

#[tokio::test]
async fn network_errors_are_retried() {
    let port = support::free_port();
    let endpoint =
        TokenEndpoint::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
    let store = Arc::new(CredentialStore::new(creds("x"), Box::new(FailingLoader)));
    let cache = TokenCache::new(
        endpoint,
        store,
        vec![ScopeConfig {
            name: "a".into(),
            scope: SCOPE.into(),
        }],
        fast(),
    );
    let err = cache.get("a", 3).await.unwrap_err();
    assert!(
        matches!(err, AcquireError::Fetch(FetchError::Network(_))),
        "{err}"
    );
    assert_eq!(cache.requests("a"), 3);
    assert!(
        err.to_string().contains("cannot reach the token endpoint"),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_client_rereads_a_rotated_secret_once() {
    // The agent started with the old secret; it was rotated in Secrets Manager and revoked at the IdP.
    let s = setup(3600, "old-secret", fast(), Duration::from_secs(5));
    s.idp.set_secrets(&["new-secret"]);
    *s.stored.lock().unwrap() = "new-secret".into();
    let token = s.cache.get("fraud", 1).await.unwrap();
    assert_eq!(
        s.idp.seen().iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 200]
    );
    assert_eq!(s.cache.credentials().unwrap().rereads(), 1);
    assert_eq!(
        s.cache.credentials().unwrap().current().1.client_secret(),
        "new-secret"
    );
    assert!(!token.secret().is_empty());
}

#[tokio::test]
async fn invalid_client_with_unchanged_secret_reports_entra_details() {
    let s = setup(3600, "Qq-unique-secret-77", fast(), Duration::from_secs(5));
    let err = s.cache.get("fraud", 3).await.unwrap_err();
    let AcquireError::InvalidClient {
        error,
        secret_changed: false,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(error.error, "invalid_client");
    assert_eq!(error.aadsts, Some(7_000_215));
    assert_eq!(error.correlation_id.as_deref(), Some(CORRELATION_ID));
    let msg = err.to_string();
    assert!(
        msg.contains("AADSTS7000215") && msg.contains(CORRELATION_ID) && msg.contains("unchanged"),
        "{msg}"
    );
    assert!(
        !msg.contains("Qq-unique-secret-77"),
        "the secret must not appear: {msg}"
    );
    assert_eq!(s.idp.requests(), 1, "a permanent error is not retried");
    assert_eq!(
        s.cache.credentials().unwrap().rereads(),
        1,
        "re-read exactly once"
    );
}

#[tokio::test]
async fn other_rejections_are_not_retried() {
    let idp = StubIdp::start(CLIENT, "another-tenant", "s3cret", 3600);
    let store = Arc::new(CredentialStore::new(
        creds("s3cret"),
        Box::new(FailingLoader),
    ));
    let endpoint = TokenEndpoint::new(&idp.authority, Duration::from_secs(5)).unwrap();
    let cache = TokenCache::new(
        endpoint,
        store,
        vec![ScopeConfig {
            name: "a".into(),
            scope: SCOPE.into(),
        }],
        fast(),
    );
    let err = cache.get("a", 5).await.unwrap_err();
    let AcquireError::Fetch(FetchError::Rejected(e)) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (e.error.as_str(), e.aadsts),
        ("invalid_request", Some(90002))
    );
    assert_eq!(idp.requests(), 1);
}

#[tokio::test]
async fn refresher_refreshes_before_expiry_without_a_gap() {
    // 3 s tokens: refresh at 80% (2.4 s), served until 90% (2.7 s).
    let s = setup(3, "s3cret", fast(), Duration::from_secs(5));
    let refresher = tokio::spawn(Arc::clone(&s.cache).run_refresher("fraud".into()));
    support::wait_for_async("first token", Duration::from_secs(5), || async {
        s.cache.serve("fraud").ok()
    })
    .await;
    let start = Instant::now();
    let mut fingerprints = Vec::new();
    while start.elapsed() < Duration::from_millis(5200) {
        let t = s.cache.serve("fraud").expect("a token is always available");
        assert!(t.expires_at() > Instant::now(), "never an expired token");
        if fingerprints.last() != Some(&t.fingerprint) {
            fingerprints.push(t.fingerprint.clone());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    refresher.abort();
    assert!(fingerprints.len() >= 3, "refreshed: {fingerprints:?}");
    // Refreshes happen at ~2.4 s intervals: not earlier (no storm), and well before the 3 s expiry (the
    // upper bound is loose so a loaded CI machine does not make this flaky).
    let seen = s.idp.seen();
    for w in seen.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(2300) && gap < Duration::from_millis(3000),
            "gap {gap:?}"
        );
    }
}

#[tokio::test]
async fn refresher_rides_out_an_outage_and_rereads_after_rotation() {
    // 4 s tokens: refresh at 3.2 s, served until 3.6 s — 400 ms for two retries and a re-read.
    let s = setup(4, "s3cret", fast(), Duration::from_secs(5));
    let refresher = tokio::spawn(Arc::clone(&s.cache).run_refresher("fraud".into()));
    support::wait_for_async("first token", Duration::from_secs(5), || async {
        s.cache.serve("fraud").ok()
    })
    .await;
    // Next refresh first meets two 503s, then a rotated secret.
    s.idp.push_fault(Fault::ServerError(503));
    s.idp.push_fault(Fault::ServerError(502));
    s.idp.set_secrets(&["rotated"]);
    *s.stored.lock().unwrap() = "rotated".into();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(4500) {
        s.cache
            .serve("fraud")
            .expect("served throughout the outage and the rotation");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    refresher.abort();
    let statuses: Vec<u16> = s.idp.seen().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..5], [200, 503, 502, 401, 200], "{statuses:?}");
    assert_eq!(s.cache.credentials().unwrap().rereads(), 1);
}

#[tokio::test]
async fn an_expired_token_is_never_served() {
    let s = setup(
        2,
        "s3cret",
        RetryPolicy {
            initial: Duration::from_millis(40),
            max: Duration::from_millis(200),
        },
        Duration::from_secs(5),
    );
    let refresher = tokio::spawn(Arc::clone(&s.cache).run_refresher("fraud".into()));
    let first = support::wait_for_async("first token", Duration::from_secs(5), || async {
        s.cache.serve("fraud").ok()
    })
    .await;
    // From now on the IdP rejects the (unchanged) secret: refreshes fail permanently.
    s.idp.set_secrets(&["revoked-everything"]);
    // Poll until it is withdrawn; every token handed out until then must still be valid.
    let started = Instant::now();
    let err = loop {
        match s.cache.serve("fraud") {
            Ok(t) => assert!(
                t.expires_at() > Instant::now(),
                "an expired token was served"
            ),
            Err(e) => break e,
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "token never withdrawn"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Withdrawn at the serve margin (90% of the lifetime), not earlier.
    assert!(Instant::now() >= first.serve_until(), "withdrawn too early");
    assert!(err.reason.contains("AADSTS7000215"), "{}", err.reason);
    refresher.abort();
}
