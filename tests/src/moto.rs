//! moto (a local Secrets Manager and KMS) for the harness and the demo: the one launcher,
//! [`entragate_tools::moto::MotoServer`], plus the AWS JSON-protocol calls the tests make to seed it.
//!
//! `ENTRAGATE_MOTO_SERVER=/path/to/moto_server` uses another installation.

use std::ops::Deref;

use anyhow::{bail, Context as _};
use entragate_tools::moto::MotoServer;
use serde_json::{json, Value};

/// A running moto server (its `endpoint` and `port` through `Deref`); dropping it stops the server.
pub struct Moto(MotoServer);

impl Deref for Moto {
    type Target = MotoServer;
    fn deref(&self) -> &MotoServer {
        &self.0
    }
}

impl Moto {
    /// Starts a server on a free loopback port, installing the pinned moto on first use.
    pub fn start() -> anyhow::Result<Moto> {
        Ok(Moto(
            MotoServer::start(&[]).context("moto_server did not start")?,
        ))
    }

    /// A server of the test's own (not the shared one), e.g. to stop it.
    pub fn start_own() -> anyhow::Result<Moto> {
        Moto::start()
    }

    /// A server on `port` (e.g. the port of one that was stopped), empty.
    pub fn start_on(port: u16) -> anyhow::Result<Moto> {
        Ok(Moto(MotoServer::start_on(port).with_context(|| {
            format!("moto_server did not start on port {port}")
        })?))
    }

    /// Stops the server (its secrets are gone) and waits until it exited:
    /// afterwards its port refuses connections.
    pub fn stop(self) -> anyhow::Result<()> {
        Ok(self.0.stop()?)
    }

    /// Creates an RSA-2048 SIGN_VERIFY key in moto's KMS; returns (key id, SubjectPublicKeyInfo DER).
    pub async fn create_signing_key(&self, region: &str) -> anyhow::Result<(String, Vec<u8>)> {
        use base64::Engine as _;
        let created = self
            .kms(
                region,
                "CreateKey",
                json!({ "KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY" }),
            )
            .await?;
        let key_id = created["KeyMetadata"]["KeyId"]
            .as_str()
            .context("CreateKey: no KeyId")?
            .to_string();
        let public = self
            .kms(region, "GetPublicKey", json!({ "KeyId": key_id }))
            .await?;
        let spki = base64::engine::general_purpose::STANDARD.decode(
            public["PublicKey"]
                .as_str()
                .context("GetPublicKey: no PublicKey")?,
        )?;
        Ok((key_id, spki))
    }

    /// `DisableKey` (`enabled = false`) or `EnableKey`: a KMS key an operator switched off.
    pub async fn set_key_enabled(
        &self,
        region: &str,
        key_id: &str,
        enabled: bool,
    ) -> anyhow::Result<()> {
        let action = if enabled { "EnableKey" } else { "DisableKey" };
        self.kms(region, action, json!({ "KeyId": key_id })).await?;
        Ok(())
    }

    async fn kms(&self, region: &str, action: &str, body: Value) -> anyhow::Result<Value> {
        json_call(
            &self.endpoint,
            region,
            ("TrentService", "kms"),
            action,
            body,
        )
        .await
    }

    /// Creates `name` with `value`, or stores `value` as its new current version.
    pub async fn put_secret(&self, region: &str, name: &str, value: &str) -> anyhow::Result<()> {
        put_secret_at(&self.endpoint, region, name, value).await
    }
}

/// One Secrets Manager JSON-protocol call to the moto at `endpoint`. moto
/// checks no signature; the credential scope only tells it the region.
async fn call_at(endpoint: &str, region: &str, action: &str, body: Value) -> anyhow::Result<Value> {
    json_call(
        endpoint,
        region,
        ("secretsmanager", "secretsmanager"),
        action,
        body,
    )
    .await
}

/// One AWS JSON-protocol call: `service` is (X-Amz-Target prefix, SigV4 service name).
async fn json_call(
    endpoint: &str,
    region: &str,
    service: (&str, &str),
    action: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let (target, signing_name) = service;
    let response = crate::http_client()
            .post(endpoint)
            .header("x-amz-target", format!("{target}.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{signing_name}/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{action}: HTTP {status}: {text}");
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text)?)
}

/// [`Moto::put_secret`] for the moto at `endpoint`.
pub async fn put_secret_at(
    endpoint: &str,
    region: &str,
    name: &str,
    value: &str,
) -> anyhow::Result<()> {
    let created = call_at(
        endpoint,
        region,
        "CreateSecret",
        json!({ "Name": name, "SecretString": value }),
    )
    .await;
    if created.is_err() {
        call_at(
            endpoint,
            region,
            "PutSecretValue",
            json!({ "SecretId": name, "SecretString": value }),
        )
        .await?;
    }
    Ok(())
}
