//! The echo upstream reflects and records what it receives.

use entragate_tests::{http_client, Echo};

#[tokio::test]
async fn echo_reflects_method_path_headers_and_body() {
    let echo = Echo::start().unwrap();
    let response = http_client()
        .post(echo.url("/some/path?q=1"))
        .header("x-one", "a")
        .header("x-two", "b")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/some/path?q=1");
    assert_eq!(body["headers"]["x-one"], "a");
    assert_eq!(body["headers"]["x-two"], "b");
    assert_eq!(body["body"], "payload");

    assert_eq!(echo.request_count(), 1);
    let recorded = echo.last_request().unwrap();
    assert_eq!(recorded.header("X-One"), Some("a"));
    assert_eq!(recorded.to_json(), body);
}
