//! What the demo needs to know from `examples/fintech/mesh.yaml`: the tenant
//! and the applications, so that the local identity provider registers
//! exactly the apps the policy names. Read with the same validating loader
//! `bootstrap check`/`render` use (the sidecars themselves are rendered by
//! the `bootstrap render` binary, like a user would).

use anyhow::{anyhow, Context as _};
use entragate_mesh as mesh;

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

pub fn read(path: &std::path::Path) -> anyhow::Result<FintechIds> {
    let policy = mesh::load(path, &[]).map_err(|e| anyhow!("{e}"))?;
    let service = |name: &str| {
        policy
            .service(name)
            .with_context(|| format!("mesh.yaml: no service `{name}`"))
    };
    let api = service("fraud-detector")?;
    let processor = service("transaction-processor")?;
    let identity = processor
        .identity
        .as_ref()
        .context("mesh.yaml: transaction-processor has no identity")?;
    Ok(FintechIds {
        tenant: policy.identity_provider().tenant_id.clone(),
        api_client_id: api.application.client_id.clone(),
        api_app_id_uri: api
            .application
            .app_id_uri
            .clone()
            .context("mesh.yaml: fraud-detector has no app_id_uri")?,
        processor_client_id: processor.application.client_id.clone(),
        // The demo's caller keeps the seed's Secrets Manager path.
        processor_secret_id: match &identity.credential {
            mesh::policy::CallerCredential::Secret { secret_id } => secret_id.clone(),
            other => anyhow::bail!(
                "mesh.yaml: the demo's transaction-processor must use a secret, not {}",
                other.kind()
            ),
        },
        processor_region: identity.region.clone(),
        impostor_client_id: service("reporting")?.application.client_id.clone(),
    })
}
