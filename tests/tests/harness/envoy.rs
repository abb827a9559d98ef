//! The Envoy runner: starts the real Envoy, proxies, exposes stats and logs,
//! validates configs.

use std::time::Duration;

use entragate_tests::{envoy_available, http_client, Echo, Envoy, TemplateVars};

const PASSTHROUGH: &str = include_str!("../fixtures/envoy-passthrough.yaml");

#[tokio::test]
async fn envoy_starts_and_proxies_to_echo() {
    if !envoy_available("envoy_starts_and_proxies_to_echo") {
        return;
    }
    let echo = Echo::start().unwrap();
    let envoy = Envoy::start(
        PASSTHROUGH,
        TemplateVars::new().set("ECHO_PORT", echo.port()),
    )
    .await
    .unwrap();
    assert_ne!(envoy.listener().port(), 0);
    assert_eq!(envoy.listener_named("main"), Some(envoy.listener()));

    let response = http_client()
        .get(envoy.url("/hello?x=1"))
        .header("x-test", "through-envoy")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["server"], "envoy");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/hello?x=1");
    assert_eq!(body["headers"]["x-test"], "through-envoy");
    assert!(
        body["headers"]["x-request-id"].is_string(),
        "Envoy added its headers: {body}"
    );
    assert_eq!(echo.request_count(), 1);

    let stats = envoy.stats().await.unwrap();
    assert_eq!(stats.get("server.concurrency"), Some(&2));
    let total = envoy
        .wait_for_stat(
            "cluster.echo.upstream_rq_200",
            Duration::from_secs(10),
            |v| v >= 1,
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert!(
        envoy.logs().contains("starting main dispatch loop"),
        "{}",
        envoy.log_tail(20)
    );
}

#[tokio::test]
async fn envoys_run_side_by_side() {
    if !envoy_available("envoys_run_side_by_side") {
        return;
    }
    let echo = Echo::start().unwrap();
    let vars = TemplateVars::new().set("ECHO_PORT", echo.port());
    let (a, b) = tokio::join!(
        Envoy::start(PASSTHROUGH, vars.clone()),
        Envoy::start(PASSTHROUGH, vars)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.listener(), b.listener());
    for envoy in [&a, &b] {
        let status = http_client()
            .get(envoy.url("/"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
}

#[test]
fn validate_accepts_good_and_rejects_broken_configs() {
    if !envoy_available("validate_accepts_good_and_rejects_broken_configs") {
        return;
    }
    Envoy::validate_template(PASSTHROUGH, TemplateVars::new().set("ECHO_PORT", 8080)).unwrap();

    let broken = PASSTHROUGH.replace("cluster: echo", "cluster: echo, no_such_field: 1");
    let error =
        Envoy::validate_template(&broken, TemplateVars::new().set("ECHO_PORT", 8080)).unwrap_err();
    assert!(error.contains("no_such_field"), "{error}");
}

#[tokio::test]
async fn startup_failure_reports_envoys_log() {
    if !envoy_available("startup_failure_reports_envoys_log") {
        return;
    }
    let broken = PASSTHROUGH.replace("type: STATIC", "type: NOT_A_TYPE");
    let error = Envoy::start(&broken, TemplateVars::new().set("ECHO_PORT", 1))
        .await
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(text.contains("exited during startup"), "{text}");
    assert!(text.contains("NOT_A_TYPE"), "{text}");
}

#[tokio::test]
async fn missing_placeholder_values_are_reported() {
    // Checked before Envoy is even looked for.
    let error = Envoy::start(PASSTHROUGH, TemplateVars::new())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("without a value: ECHO_PORT"), "{text}");
}
