//! Exit codes (documented in `--help` and the README) and the error type that carries them.

use crate::secret::SecretError;
use std::fmt;

/// Text appended to `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (agent: stopped by SIGTERM/SIGINT)
  1  unexpected internal error
  2  usage or configuration error (bad flag, unreadable config file, invalid scope)
  3  secret error (credentials, region, not found, denied, not JSON, missing field, unreachable)
  4  identity provider error (token request rejected or failing after retries)
  5  serve error (cannot bind the listen address, cannot write the agent key file)
  6  mesh policy error (render/check: the policy is invalid; every error is listed)";

/// A failure that ends the command, with its exit code.
#[derive(Debug)]
pub enum Failure {
    Internal(String),
    Usage(String),
    Secret(SecretError),
    Idp(String),
    Serve(String),
    /// The mesh policy is invalid; the errors themselves were already printed.
    Policy(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Internal(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Secret(_) => 3,
            Failure::Idp(_) => 4,
            Failure::Serve(_) => 5,
            Failure::Policy(_) => 6,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Internal(m) => write!(f, "internal error: {m}"),
            Failure::Usage(m) => write!(f, "configuration error: {m}"),
            Failure::Secret(e) => write!(f, "secret error: {e}"),
            Failure::Idp(m) => write!(f, "identity provider error: {m}"),
            Failure::Serve(m) => write!(f, "serve error: {m}"),
            Failure::Policy(m) => write!(f, "mesh policy error: {m}"),
        }
    }
}

impl From<SecretError> for Failure {
    fn from(e: SecretError) -> Self {
        Failure::Secret(e)
    }
}
