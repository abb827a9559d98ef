//! Fault injection and request counters.

use std::time::{Duration, Instant};

use entragate_tests::{http_client, Counters, Endpoint, Fault, Idp};

async fn status_of(url: &str) -> u16 {
    http_client()
        .get(url)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn jwks_faults_change_the_answer() {
    let idp = Idp::start().unwrap();
    let url = idp.jwks_uri();

    idp.set_fault(Endpoint::Jwks, Fault::Status(500));
    assert_eq!(status_of(&url).await, 500);

    idp.set_fault(Endpoint::Jwks, Fault::Garbage);
    let response = http_client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).is_err());

    idp.set_fault(Endpoint::Jwks, Fault::EmptyKeys);
    let body: serde_json::Value = http_client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, serde_json::json!({"keys": []}));

    idp.set_fault(
        Endpoint::Jwks,
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
    );
    let response = http_client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    idp.set_fault(Endpoint::Jwks, Fault::Oversized { bytes: 600_000 });
    let text = http_client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.len() > 600_000);
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["keys"], idp.jwks()["keys"], "only the size is wrong");

    idp.set_fault(Endpoint::Jwks, Fault::None);
    assert_eq!(status_of(&url).await, 200);
}

#[tokio::test]
async fn slow_fault_delays_the_normal_answer() {
    let idp = Idp::start().unwrap();
    idp.set_fault(Endpoint::Jwks, Fault::Slow(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(status_of(&idp.jwks_uri()).await, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn closed_connection_fault_gives_no_response() {
    let idp = Idp::start().unwrap();
    idp.set_fault(Endpoint::Jwks, Fault::CloseConnection);
    let error = http_client().get(idp.jwks_uri()).send().await.unwrap_err();
    assert!(!error.is_status(), "{error}");
    // Other endpoints are unaffected.
    assert_eq!(status_of(&idp.discovery_url()).await, 200);
}

#[tokio::test]
async fn down_idp_refuses_connections_until_back_up() {
    let idp = Idp::start().unwrap();
    assert_eq!(status_of(&idp.jwks_uri()).await, 200);
    idp.set_down(true);
    let error = http_client().get(idp.jwks_uri()).send().await.unwrap_err();
    assert!(
        error.is_connect(),
        "expected connection refused, got {error}"
    );
    idp.set_down(false);
    assert_eq!(status_of(&idp.jwks_uri()).await, 200);
}

#[tokio::test]
async fn counted_fault_recovers_by_itself() {
    let idp = Idp::start().unwrap();
    idp.set_fault_times(Endpoint::Jwks, Fault::Status(503), 2);
    assert_eq!(status_of(&idp.jwks_uri()).await, 503);
    assert_eq!(status_of(&idp.jwks_uri()).await, 503);
    assert_eq!(status_of(&idp.jwks_uri()).await, 200);
}

#[tokio::test]
async fn counters_count_every_request_per_endpoint() {
    let idp = Idp::start().unwrap();
    assert_eq!(idp.counters(), Counters::default());
    idp.set_fault_times(Endpoint::Jwks, Fault::Status(500), 1);
    for _ in 0..3 {
        status_of(&idp.jwks_uri()).await;
    }
    status_of(&idp.discovery_url()).await;
    http_client()
        .post(idp.token_endpoint())
        .send()
        .await
        .unwrap();
    assert_eq!(
        idp.counters(),
        Counters {
            discovery: 1,
            jwks: 3,
            token: 1
        }
    );

    // A fetch in the background is observed by polling, not by sleeping.
    let url = idp.jwks_uri();
    tokio::spawn(async move { status_of(&url).await });
    idp.wait_for_jwks_fetches(4, Duration::from_secs(5))
        .await
        .unwrap();
    let error = idp
        .wait_for_jwks_fetches(10, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("hit 4 times"), "{error:#}");

    idp.reset_counters();
    assert_eq!(idp.jwks_fetches(), 0);
}
