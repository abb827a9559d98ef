//! The callee role's proxy-wasm adapter: the filter instance Envoy loads with
//! any `root_id` other than `entragate_outbound` (see `crate::role`).
//!
//! - [`root`]: the per-worker root context (configuration, ticks, JWKS callouts,
//!   resuming requests that waited for keys).
//! - [`http`]: the per-request context (copies headers in, applies the decision).
//! - [`worker`]: state shared by the root and request contexts of one worker VM.
//! - [`apply`]: writing a decision back (headers, local replies).
//! - [`metrics`]: counters visible on Envoy's `/stats`.
//! - [`signatures`]: choosing the signature verifier (host native or pure Rust).
//! - [`foreign`]: calling host foreign functions (`verify_signature`).
//!
//! All decisions are made by `entragate_core::inbound`; this module only
//! copies request data in and writes the outcome back.

pub mod apply;
pub mod foreign;
pub mod http;
pub mod metrics;
pub mod root;
pub mod signatures;
pub mod worker;
