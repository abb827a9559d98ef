//! The outbound (caller-side) role's proxy-wasm adapter: the filter instance
//! Envoy loads with `root_id: entragate_outbound` (see `crate::role`).
//!
//! - [`root`]: per-worker root context (configuration, ticks, agent callouts,
//!   resuming requests that waited for a token).
//! - [`http`]: per-request context (finds the destination, attaches the token).
//! - [`worker`]: state shared by the root and request contexts of one worker VM.
//! - [`metrics`]: counters on Envoy's `/stats`.
//!
//! All decisions are made by `entragate_core::outbound`; this module only
//! copies request data in and writes the outcome back.

pub mod http;
pub mod metrics;
pub mod root;
pub mod worker;
