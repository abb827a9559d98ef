//! What the demo needs to know from `examples/fintech/mesh.yaml`: the tenant
//! and the applications, so that the local identity provider registers
//! exactly the apps the policy names (the policy itself is rendered by
//! `bootstrap render`, like a user would).

use anyhow::{anyhow, Context as _};
use serde_yaml_ng::Value;

pub struct FintechIds {
    pub tenant: String,
    pub api_client_id: String,
    pub api_app_id_uri: String,
    pub processor_client_id: String,
    pub processor_secret_id: String,
    pub processor_region: String,
    /// The third service: a valid caller of the API, without `Fraud.Scan`.
    pub impostor_client_id: String,
}

fn text<'a>(root: &'a Value, path: &[&str]) -> anyhow::Result<&'a str> {
    let mut node = root;
    for key in path {
        node = node
            .get(*key)
            .ok_or_else(|| anyhow!("mesh.yaml: `{}` is missing", path.join(".")))?;
    }
    node.as_str()
        .ok_or_else(|| anyhow!("mesh.yaml: `{}` is not a string", path.join(".")))
}

pub fn read(path: &std::path::Path) -> anyhow::Result<FintechIds> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let root: Value =
        serde_yaml_ng::from_str(&source).with_context(|| format!("parsing {}", path.display()))?;
    let secret = text(
        &root,
        &["services", "transaction-processor", "identity", "secret"],
    )?;
    Ok(FintechIds {
        tenant: text(&root, &["identity_provider", "tenant_id"])?.to_string(),
        api_client_id: text(
            &root,
            &["services", "fraud-detector", "application", "client_id"],
        )?
        .to_string(),
        api_app_id_uri: text(
            &root,
            &["services", "fraud-detector", "application", "app_id_uri"],
        )?
        .to_string(),
        processor_client_id: text(
            &root,
            &[
                "services",
                "transaction-processor",
                "application",
                "client_id",
            ],
        )?
        .to_string(),
        processor_secret_id: secret
            .strip_prefix("aws-secretsmanager:")
            .ok_or_else(|| {
                anyhow!("mesh.yaml: transaction-processor's secret is not aws-secretsmanager:")
            })?
            .to_string(),
        processor_region: text(
            &root,
            &["services", "transaction-processor", "identity", "region"],
        )?
        .to_string(),
        impostor_client_id: text(
            &root,
            &["services", "reporting", "application", "client_id"],
        )?
        .to_string(),
    })
}
