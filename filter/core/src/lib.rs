//! entragate-core: everything the entragate filter decides, with no proxy-wasm import.
//!
//! Two roles, each a folder, over common parts; neither role imports the other:
//! - [`inbound`]: the callee role (validate the caller's token per request).
//! - [`outbound`]: the caller role (attach the agent's token to requests).
//!
//! Common parts:
//! - [`host`]: the traits a proxy adapter implements (clock, shared store, callouts, logs).
//! - [`fetcher`]: one fetch per Envoy for any document (the JWKS, an agent
//!   token): lease, settle, backoff, waiters.
//! - [`metrics`]: what both roles' metric tables share (kinds, the table macro, host ids).
//! - [`error`] / [`response`]: the error enum and its status/RFC 6750/metric mapping.
//! - [`token`]: `Authorization` extraction, compact JWS decoding, signature check.
//! - [`claims`]: typed claims and issuer/audience/lifetime/tenant validation.
//! - [`keys`]: RSA signing keys and key sets.
//! - [`options`]: verification options with secure defaults.
//! - [`plugin_config`]: JSON documents, field checks and errors both configurations share.
//! - [`retry`]: jittered exponential backoff shared by every fetch.
//! - [`fingerprint`] / [`guid`]: token fingerprints for logs, GUID syntax.

pub mod claims;
pub mod error;
pub mod fetcher;
pub mod fingerprint;
pub mod guid;
pub mod host;
pub mod inbound;
pub mod keys;
pub mod metrics;
pub mod options;
pub mod outbound;
pub mod plugin_config;
pub mod response;
pub mod retry;
pub mod token;

// The callee role's configuration and audit fields at their former paths:
// `bootstrap` (split separately) renders and checks plugin configurations with them.
pub use inbound::{audit, config};
