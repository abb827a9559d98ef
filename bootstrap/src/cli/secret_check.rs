//! `bootstrap secret-check`: read and validate the secret, print which fields were found, never values.

use super::common::{self, SecretArgs};
use crate::exit::Failure;
use clap::Args;
use entragate_core::guid::is_guid;
use std::io::Write;

#[derive(Clone, Debug, Args)]
pub struct SecretCheckArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
}

pub async fn run(args: SecretCheckArgs) -> Result<(), Failure> {
    let file = common::load_file(&args.secret)?;
    let aws = common::aws_settings(&args.secret, &file)?;
    let source = common::secret_source(&aws).await?;
    let (credentials, report) = source.fetch().await?;
    let mut out = format!(
        "secret {} (region {}, version {})\n",
        source.secret_id(),
        source.region(),
        credentials.version_id.as_deref().unwrap_or("unknown")
    );
    for seen in &report.found {
        // Format notes only: the values themselves are never printed.
        let note = match seen.field {
            "ClientId" if is_guid(&credentials.client_id) => "GUID format: ok",
            "ClientId" => "warning: not a GUID (Entra application ids are GUIDs)",
            "TenantId" if is_guid(&credentials.tenant_id) => "GUID format: ok",
            "TenantId" => "domain name (a tenant GUID is preferred)",
            _ => "present, non-empty",
        };
        out.push_str(&format!(
            "  {:<13} found as {:<15} {note}\n",
            seen.field,
            format!("{:?}", seen.key)
        ));
    }
    if !report.other_keys.is_empty() {
        out.push_str(&format!(
            "  other keys:   {} (ignored)\n",
            report.other_keys.join(", ")
        ));
    }
    out.push_str("ok: the secret has every field bootstrap needs\n");
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| Failure::Internal(format!("cannot write output: {e}")))
}
