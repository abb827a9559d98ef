//! Command-line interface. Each subcommand lives in its own module with its own `Args` struct and `run`
//! function; adding one (e.g. the mesh policy `render`/`check`) means a new module, a new [`Command`]
//! variant and one match arm in [`run`].

pub mod agent;
pub mod certs;
pub mod check;
pub mod common;
pub mod render;
pub mod secret_check;
pub mod token;

use crate::exit::{Failure, EXIT_CODES_HELP};
use crate::log::{self, Level};
use clap::{ArgAction, Parser, Subcommand};
use std::process::ExitCode;

/// `bootstrap`: caller-side companion of entragate.
#[derive(Debug, Parser)]
#[command(
    name = "bootstrap",
    version,
    about = "Caller-side entragate agent: client secret from AWS Secrets Manager, Entra ID tokens to the local Envoy",
    long_about = "Caller-side entragate agent.\n\n\
        Reads the calling service's Entra ID client credentials ({\"ClientId\",\"ClientSecret\",\"TenantId\"}) \
        from AWS Secrets Manager, acquires OAuth2 client-credentials tokens for the configured scopes, keeps \
        them fresh, and serves them over loopback to the local Envoy, which attaches them to outbound calls. \
        The service itself never touches the secret or a token.",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// More detail (token requests, served tokens); never secrets or tokens.
    #[arg(short, long, global = true, action = ArgAction::SetTrue)]
    pub verbose: bool,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: read the secret, keep tokens fresh, serve them to the local Envoy (long-running).
    #[command(after_help = EXIT_CODES_HELP)]
    Agent(agent::AgentArgs),
    /// Acquire one token and print its metadata (never the token unless --print-token). For debugging.
    #[command(after_help = EXIT_CODES_HELP)]
    Token(token::TokenArgs),
    /// Read and validate the secret; print which fields were found (never their values).
    #[command(name = "secret-check", after_help = EXIT_CODES_HELP)]
    SecretCheck(secret_check::SecretCheckArgs),
    /// Render one service's sidecar configuration (Envoy, Istio or Envoy Gateway) from the mesh policy.
    #[command(after_help = EXIT_CODES_HELP)]
    Render(render::RenderArgs),
    /// Validate the mesh policy and print who may call whom, with warnings about risky choices.
    #[command(after_help = EXIT_CODES_HELP)]
    Check(check::CheckArgs),
    /// Create the local mesh CA and issue (or rotate) the services' workload certificates (demos and tests).
    #[command(after_help = EXIT_CODES_HELP)]
    Certs(certs::CertsArgs),
}

/// Parses the command line, runs the subcommand, and maps failures to exit codes.
pub fn main() -> ExitCode {
    // clap prints usage errors itself and exits with code 2, matching our "usage error" code.
    let cli = Cli::parse();
    log::set_max_level(if cli.quiet {
        Level::Warn
    } else if cli.verbose {
        Level::Debug
    } else {
        Level::Info
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(&Failure::Internal(format!(
                "cannot start the async runtime: {e}"
            )))
        }
    };
    let result = runtime.block_on(run(cli.command));
    // Do not wait for stray blocking tasks (e.g. a hung DNS lookup) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => report(&f),
    }
}

/// Dispatches to the subcommand.
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Agent(args) => agent::run(args).await,
        Command::Token(args) => token::run(args).await,
        Command::SecretCheck(args) => secret_check::run(args).await,
        Command::Render(args) => render::run(args),
        Command::Check(args) => check::run(args),
        Command::Certs(args) => certs::run(args),
    }
}

fn report(failure: &Failure) -> ExitCode {
    crate::error!("{failure}");
    ExitCode::from(failure.code())
}
