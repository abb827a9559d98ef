//! `bootstrap certs`: the local mesh CA and the services' workload certificates ([`crate::certs`]).

use super::check::PolicyArgs;
use crate::certs::{self, MeshCa, Outcome};
use crate::exit::Failure;
use clap::Args;
use entragate_mesh::policy::TransportMode;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Args)]
pub struct CertsArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The CA's directory (`ca.crt`, `ca.key` mode 0600): created on the first run, reused after.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Only these services (repeatable). Default: every service.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Lifetime of each workload certificate, e.g. `24h`, `30d`.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub valid_for: Duration,
    /// Lifetime of a new CA.
    #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
    pub ca_valid_for: Duration,
    /// Issue new certificates even if the current ones are still fresh (rotation).
    #[arg(long)]
    pub rotate: bool,
}

pub fn run(args: CertsArgs) -> Result<(), Failure> {
    let policy = args.policy.load()?;
    let transport = policy.transport();
    if transport.mode == TransportMode::Plaintext {
        return Err(Failure::Usage(
            "transport.mode is plaintext: the sidecars use no certificates".into(),
        ));
    }
    for name in &args.services {
        if policy.service(name).is_none() {
            return Err(Failure::Usage(format!("unknown service `{name}`")));
        }
    }
    let (ca, created) =
        MeshCa::load_or_create(&args.ca_dir, &transport.trust_domain, args.ca_valid_for)
            .map_err(Failure::Usage)?;
    crate::info!(
        "mesh CA {} {}",
        args.ca_dir.display(),
        if created { "created" } else { "reused" }
    );
    for service in policy
        .services()
        .iter()
        .filter(|s| args.services.is_empty() || args.services.contains(&s.name))
    {
        match certs::provision(&ca, service, args.valid_for, args.rotate).map_err(Failure::Usage)? {
            Outcome::Issued { not_after } => crate::info!(
                "{}: issued {} in {}, expires at {not_after} (unix)",
                service.name,
                service.workload.value(),
                service.sidecar.certificates
            ),
            Outcome::Kept { not_after } => crate::info!(
                "{}: kept (expires at {not_after} (unix); --rotate to renew now)",
                service.name
            ),
        }
    }
    Ok(())
}
