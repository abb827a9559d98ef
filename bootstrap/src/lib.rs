//! entragate-bootstrap: the caller-side agent of entragate.
//!
//! It reads the caller's Entra ID client credentials from AWS Secrets Manager, keeps client-credentials access
//! tokens fresh for the configured scopes, and serves them over loopback to the local Envoy, which attaches them
//! to outbound requests. The binary (`bootstrap`) is a thin CLI over this library so that integration tests can
//! drive the same code paths in-process.

pub mod agent;
pub mod certs;
pub mod cli;
pub mod config;
pub mod credential;
pub mod environment;
pub mod exit;
pub mod log;
pub mod secret;
pub mod token;

// The token endpoint's response parser and the text helpers are the crate `entragate-token-response`
// (pure, so the fuzz target builds them without the AWS SDK); the agent's modules keep their paths.
pub use entragate_token_response::text;
