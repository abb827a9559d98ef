//! `bootstrap check`: validate the mesh policy, print the who-can-call-whom table and the warnings.

use crate::exit::Failure;
use clap::Args;
use entragate_mesh::{self as mesh, MeshErrors, MeshPolicy, Override};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Debug, Args)]
pub struct PolicyArgs {
    /// The mesh policy (docs/mesh-policy.md), e.g. examples/fintech/mesh.yaml.
    #[arg(long, env = "ENTRAGATE_POLICY", value_name = "PATH")]
    pub policy: PathBuf,
    /// Override a policy value before validation, as PATH=VALUE with a dotted path; repeatable. For local
    /// runs: identity_provider.authority=http://127.0.0.1:8080, services.NAME.host=127.0.0.1,
    /// services.NAME.ports.inbound=18006, services.NAME.sidecar.agent=127.0.0.1:15901.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = Override::parse)]
    pub overrides: Vec<Override>,
}

impl PolicyArgs {
    /// Loads the policy; on errors prints every one (stderr) and fails with exit code 6.
    pub fn load(&self) -> Result<MeshPolicy, Failure> {
        mesh::load(&self.policy, &self.overrides).map_err(|e| report_errors(&e))
    }
}

#[derive(Clone, Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Prints the errors, one per line, and returns the failure carrying their count.
pub fn report_errors(errors: &MeshErrors) -> Failure {
    let mut err = std::io::stderr().lock();
    for line in errors.lines() {
        let _ = writeln!(err, "error: {line}");
    }
    Failure::Policy(format!("{} error(s)", errors.0.len()))
}

/// The text `check` prints for a valid policy.
pub fn summary(policy: &MeshPolicy, file: &str) -> String {
    let idp = policy.identity_provider();
    let mut out = format!(
        "mesh policy {file}: {} services, tenant {}, authority {}\n\n",
        policy.services().len(),
        idp.tenant_id,
        idp.authority.url
    );
    let transport = policy.transport();
    out.push_str(&format!("transport: {}", transport.mode.as_str()));
    if transport.mode != mesh::policy::TransportMode::Plaintext {
        out.push_str(" (workload identities:");
        for s in policy.services() {
            out.push_str(&format!(" {}={}", s.name, s.workload.value()));
        }
        out.push(')');
    }
    out.push_str("\n\n");
    out.push_str(&mesh::table::render(policy));
    if !policy.warnings().is_empty() {
        out.push('\n');
        for w in policy.warnings() {
            out.push_str(&format!("{w}\n"));
        }
    }
    out.push_str(&format!(
        "\nok: no errors, {} warning(s)\n",
        policy.warnings().len()
    ));
    out
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let policy = args.policy.load()?;
    let text = summary(&policy, &args.policy.policy.display().to_string());
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::Internal(format!("cannot write output: {e}")))
}
