//! The client-credentials token endpoint: success and error shapes.

use std::time::Duration;

use entragate_tests::{
    decode_jwt, http_client, ids, verify_rs256, ApiApp, ClientApp, Endpoint, Fault, Idp,
    TokenVersion,
};
use serde_json::{json, Value};

use crate::keys_of;

async fn request_token(
    idp: &Idp,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = http_client()
        .post(idp.token_endpoint())
        .header("client-request-id", "11111111-2222-4333-8444-555555555555")
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn default_form(secret: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", ids::CLIENT_ID),
        ("client_secret", secret),
        ("scope", "api://entragate-test-api/.default"),
    ]
}

#[tokio::test]
async fn client_credentials_happy_path() {
    let idp = Idp::start().unwrap();
    let (status, _, body) = request_token(&idp, &default_form(ids::CLIENT_SECRET)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys_of(&body),
        ["access_token", "expires_in", "ext_expires_in", "token_type"]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);

    let claims = verify_rs256(body["access_token"].as_str().unwrap(), &idp.jwks()).unwrap();
    assert_eq!(claims["aud"], ids::API_APP_ID);
    assert_eq!(claims["azp"], ids::CLIENT_ID);
    assert_eq!(claims["oid"], ids::CLIENT_SP_OBJECT_ID);
    assert_eq!(claims["roles"], json!([ids::CLIENT_ROLE]));
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3599
    );

    let log = idp.token_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].auth_method, "client_secret_post");
    assert_eq!(log[0].status, 200);
    assert!(
        !format!("{log:?}").contains(ids::CLIENT_SECRET),
        "secrets are never recorded"
    );
}

#[tokio::test]
async fn basic_auth_lifetime_refresh_in_and_v1_apis() {
    let idp = Idp::start().unwrap();
    idp.set_token_lifetime(Duration::from_secs(120));
    idp.set_refresh_in(Some(Duration::from_secs(60)));
    idp.register_api(ApiApp::new(
        "9b0e2c1d-7a6f-4e3b-8c5d-1f2a3b4c5d6e",
        "api://legacy",
        TokenVersion::V1,
    ));
    idp.register_client(
        ClientApp::new("5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c", "s3cret+/:x")
            .grant("9b0e2c1d-7a6f-4e3b-8c5d-1f2a3b4c5d6e", ["Legacy.Call"]),
    );
    let response = http_client()
        .post(idp.token_endpoint())
        // client_secret_basic: form-urlencoded id and secret, then base64.
        .basic_auth(
            "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c",
            Some("s3cret%2B%2F%3Ax"),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api://legacy/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["refresh_in"], 60);
    let claims = decode_jwt(body["access_token"].as_str().unwrap())
        .unwrap()
        .claims;
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["aud"], "api://legacy");
    assert_eq!(claims["appid"], "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c");
    assert_eq!(claims["roles"], json!(["Legacy.Call"]));
    assert_eq!(idp.token_requests()[0].auth_method, "client_secret_basic");
}

/// Entra's error body: exactly these members, AADSTS code and IDs inside
/// `error_description`, `correlation_id` echoing `client-request-id`.
fn assert_entra_error(body: &Value, error: &str, code: u64) {
    assert_eq!(
        keys_of(body),
        [
            "correlation_id",
            "error",
            "error_codes",
            "error_description",
            "error_uri",
            "timestamp",
            "trace_id"
        ]
    );
    assert_eq!(body["error"], error);
    assert_eq!(body["error_codes"], json!([code]));
    assert_eq!(
        body["correlation_id"],
        "11111111-2222-4333-8444-555555555555"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    let suffix = format!(
        " Trace ID: {} Correlation ID: {} Timestamp: {}",
        body["trace_id"].as_str().unwrap(),
        body["correlation_id"].as_str().unwrap(),
        body["timestamp"].as_str().unwrap()
    );
    assert!(description.ends_with(&suffix), "{description}");
    let timestamp = body["timestamp"].as_str().unwrap();
    assert_eq!(timestamp.len(), "2026-01-01 00:00:00Z".len());
    assert!(timestamp.ends_with('Z'));
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

#[tokio::test]
async fn bad_secret_is_invalid_client() {
    let idp = Idp::start().unwrap();
    let (status, _, body) = request_token(&idp, &default_form("wrong")).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 7000215);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains(ids::CLIENT_ID));
    assert!(!body.to_string().contains(ids::CLIENT_SECRET));
}

#[tokio::test]
async fn other_client_errors_have_entra_codes() {
    let idp = Idp::start().unwrap();
    let mut unknown = default_form(ids::CLIENT_SECRET);
    unknown[1].1 = "00000000-1111-4222-8333-444444444444";
    let (status, _, body) = request_token(&idp, &unknown).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "unauthorized_client", 700016);

    let mut bad_scope = default_form(ids::CLIENT_SECRET);
    bad_scope[3].1 = "api://entragate-test-api/Fraud.Scan";
    let (status, _, body) = request_token(&idp, &bad_scope).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_scope", 70011);

    let mut grant = default_form(ids::CLIENT_SECRET);
    grant[0].1 = "password";
    let (status, _, body) = request_token(&idp, &grant).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "unsupported_grant_type", 70003);

    let mut resource = default_form(ids::CLIENT_SECRET);
    resource[3].1 = "api://nobody/.default";
    let (status, _, body) = request_token(&idp, &resource).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_resource", 500011);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let idp = Idp::start().unwrap();
    idp.set_fault_times(
        Endpoint::Token,
        Fault::TooManyRequests {
            retry_after_secs: 3,
        },
        1,
    );
    let (status, headers, body) = request_token(&idp, &default_form(ids::CLIENT_SECRET)).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "3");
    assert_entra_error(&body, "temporarily_unavailable", 90055);

    let (status, _, _) = request_token(&idp, &default_form(ids::CLIENT_SECRET)).await;
    assert_eq!(status, 200);
    assert_eq!(idp.counters().token, 2);
}
