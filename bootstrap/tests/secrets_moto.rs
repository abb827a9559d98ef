//! The real AWS SDK against a local moto_server: secret found (both casings), not found, wrong region,
//! not JSON, missing field, binary, endpoint unreachable; in-process and through `bootstrap secret-check`
//! and `bootstrap token` (exit codes and messages).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use entragate_bootstrap::secret::{SecretError, SecretsManagerSource};
use std::process::Output;
use support::idp::{StubIdp, CORRELATION_ID};
use support::moto;

const REGION: &str = "us-east-1";
const CLIENT: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SECRET_VALUE: &str = "Zx8Q~very.secret-VALUE_42";

fn pascal() -> String {
    format!(r#"{{"ClientId":"{CLIENT}","ClientSecret":"{SECRET_VALUE}","TenantId":"{TENANT}"}}"#)
}

async fn source_for(name: &str, region: &str) -> SecretsManagerSource {
    SecretsManagerSource::from_client(
        moto::shared().client(region),
        name,
        &moto::shared().endpoint,
    )
}

#[tokio::test]
async fn found_pascal_and_camel_case() {
    let m = moto::shared();
    m.put_secret(REGION, "t/found-pascal/identity", &pascal())
        .await;
    let camel = format!(
        r#"{{"clientId":"{CLIENT}","clientSecret":"{SECRET_VALUE}","tenantId":"{TENANT}","note":"x"}}"#
    );
    m.put_secret(REGION, "t/found-camel/identity", &camel).await;
    for name in ["t/found-pascal/identity", "t/found-camel/identity"] {
        let (c, report) = source_for(name, REGION).await.fetch().await.unwrap();
        assert_eq!(
            (
                c.client_id.as_str(),
                c.tenant_id.as_str(),
                c.client_secret()
            ),
            (CLIENT, TENANT, SECRET_VALUE)
        );
        assert!(c.version_id.is_some());
        assert_eq!(report.found.len(), 3);
        assert!(!format!("{c:?}").contains(SECRET_VALUE));
    }
}

#[tokio::test]
async fn not_found_and_wrong_region() {
    let m = moto::shared();
    m.put_secret(REGION, "t/regional/identity", &pascal()).await;
    let err = source_for("t/does-not-exist", REGION)
        .await
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SecretError::NotFound {
            secret_id: "t/does-not-exist".into(),
            region: REGION.into()
        }
    );
    let err = source_for("t/regional/identity", "eu-west-1")
        .await
        .fetch()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SecretError::NotFound { region, .. } if region == "eu-west-1"),
        "{err}"
    );
    assert!(err.to_string().contains("region eu-west-1"), "{err}");
}

#[tokio::test]
async fn not_json_missing_field_and_binary() {
    let m = moto::shared();
    m.put_secret(REGION, "t/plain/identity", SECRET_VALUE).await;
    let err = source_for("t/plain/identity", REGION)
        .await
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::NotJson { .. }), "{err}");
    assert!(!err.to_string().contains(SECRET_VALUE));

    m.put_secret(
        REGION,
        "t/missing/identity",
        &format!(r#"{{"ClientId":"{CLIENT}","ClientSecret":"{SECRET_VALUE}"}}"#),
    )
    .await;
    let err = source_for("t/missing/identity", REGION)
        .await
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SecretError::MissingFields {
            missing: vec!["TenantId"],
            hints: vec![]
        }
    );

    m.client(REGION)
        .create_secret()
        .name("t/binary/identity")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            pascal().into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let err = source_for("t/binary/identity", REGION)
        .await
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(err, SecretError::NotAString);
}

#[tokio::test]
async fn access_denied_is_distinct() {
    let m = moto::enforcing();
    m.put_secret(REGION, "t/denied/identity", &pascal()).await;
    let source =
        SecretsManagerSource::from_client(m.client(REGION), "t/denied/identity", &m.endpoint);
    let err = source.fetch().await.unwrap_err();
    assert!(
        matches!(&err, SecretError::AccessDenied { secret_id, .. } if secret_id == "t/denied/identity"),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains("access denied reading secret t/denied/identity")
            && msg.contains("secretsmanager:GetSecretValue"),
        "{msg}"
    );
}

#[tokio::test]
async fn unreachable_endpoint_is_a_clear_transient_error() {
    let port = support::free_port();
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new(REGION))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        .build();
    let source = SecretsManagerSource::from_client(
        aws_sdk_secretsmanager::Client::from_conf(conf),
        "t/x",
        &format!("http://127.0.0.1:{port}"),
    );
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(err, SecretError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("cannot reach Secrets Manager"),
        "{msg}"
    );
}

// ---- through the binary ----

fn secret_check(args: &[&str]) -> Output {
    support::bootstrap_cmd()
        .arg("secret-check")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn secret_check_cli_reports_fields_and_exit_codes() {
    let m = moto::shared();
    m.put_secret(REGION, "t/cli/identity", &pascal()).await;
    m.put_secret(
        REGION,
        "t/cli-missing/identity",
        &format!(r#"{{"clientId":"{CLIENT}","client_secret":"{SECRET_VALUE}"}}"#),
    )
    .await;
    m.put_secret(REGION, "t/cli-plain/identity", SECRET_VALUE)
        .await;
    let ep = m.endpoint.clone();
    let run = move |id: &str| {
        secret_check(&["--secret-id", id, "--region", REGION, "--endpoint-url", &ep])
    };

    let o = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run("t/cli/identity")
    })
    .await
    .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("ClientId") && out.contains("ClientSecret") && out.contains("TenantId"),
        "{out}"
    );
    assert!(out.contains("ok: the secret has every field"), "{out}");
    assert!(
        err.contains("reading secret t/cli/identity from Secrets Manager (region us-east-1"),
        "{err}"
    );
    assert!(
        !out.contains(SECRET_VALUE) && !err.contains(SECRET_VALUE) && !out.contains(CLIENT),
        "values leaked"
    );

    let cases = [
        ("t/cli-nope", "was not found in region us-east-1"),
        (
            "t/cli-missing/identity",
            "lacks required field(s): ClientSecret, TenantId",
        ),
        ("t/cli-plain/identity", "not a JSON object"),
    ];
    for (id, expected) in cases {
        let o = tokio::task::spawn_blocking({
            let run = run.clone();
            let id = id.to_string();
            move || run(&id)
        })
        .await
        .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "{id}: {out}{err}");
        assert!(err.contains(expected), "{id}: {err}");
        assert!(!err.contains(SECRET_VALUE), "{id}: value leaked: {err}");
    }
    let (_, err) = text(
        &secret_check_blocking(&[
            "--secret-id",
            "t/cli-missing/identity",
            "--region",
            REGION,
            "--endpoint-url",
            &m.endpoint,
        ])
        .await,
    );
    assert!(err.contains("similar key(s): client_secret"), "{err}");
}

async fn secret_check_blocking(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        secret_check(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn cli_config_errors() {
    let port = support::free_port().to_string();
    let unreachable = format!("http://127.0.0.1:{port}");
    let o = secret_check_blocking(&[
        "--secret-id",
        "x",
        "--region",
        REGION,
        "--endpoint-url",
        &unreachable,
    ])
    .await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot reach Secrets Manager"), "{err}");

    let o = secret_check_blocking(&[]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no secret id"));

    let o = secret_check_blocking(&["--secret-id", "x"]).await;
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert!(text(&o).1.contains("no AWS region"), "{:?}", text(&o));

    let o = secret_check_blocking(&["--bogus"]).await;
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_subcommand_has_help_with_exit_codes() {
    for sub in [&[][..], &["agent"], &["token"], &["secret-check"]] {
        let o = support::bootstrap_cmd()
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{sub:?}");
        assert!(
            out.contains("Exit codes:") && out.contains("3  secret error"),
            "{sub:?}: {out}"
        );
    }
}

#[tokio::test]
async fn token_cli_prints_metadata_and_token_only_on_request() {
    let m = moto::shared();
    m.put_secret(REGION, "t/token-cli/identity", &pascal())
        .await;
    let idp = StubIdp::start(CLIENT, TENANT, SECRET_VALUE, 3599);
    let base = vec![
        "token".to_string(),
        "--secret-id".into(),
        "t/token-cli/identity".into(),
        "--region".into(),
        REGION.into(),
        "--endpoint-url".into(),
        m.endpoint.clone(),
        "--authority".into(),
        idp.authority.clone(),
        "--scope".into(),
        "api://fintech-fraud-detector".into(),
    ];
    let run = |extra: &[&str]| {
        let args: Vec<String> = base
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || support::bootstrap_cmd().args(&args).output().unwrap())
    };
    let o = run(&[]).await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("scope:       api://fintech-fraud-detector/.default"),
        "{out}"
    );
    assert!(
        out.contains("expires in:  59m") && out.contains("refresh after 54m"),
        "{out}"
    );
    assert!(out.contains("Fraud.Scan"), "claims shown: {out}");
    assert!(
        !out.contains("eyJ") && !err.contains("eyJ"),
        "token leaked: {out}{err}"
    );

    let o = run(&["--print-token"]).await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.trim().starts_with("eyJ") && out.trim().lines().count() == 1,
        "{out}"
    );
    assert!(err.contains("sha256:"), "{err}");

    let o = run(&["--json"]).await.unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(meta["expires_in_secs"], 3599);
    assert_eq!(meta["agent_would_refresh_after_secs"], 3299);

    // The IdP rejects the secret: exit 4 with the AADSTS code and correlation id, never the secret.
    idp.set_secrets(&["something-else"]);
    let o = run(&[]).await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}{err}");
    assert!(
        err.contains("AADSTS7000215") && err.contains(CORRELATION_ID),
        "{err}"
    );
    assert!(
        err.contains("re-reading secret from Secrets Manager"),
        "{err}"
    );
    assert!(!err.contains(SECRET_VALUE), "{err}");
}
