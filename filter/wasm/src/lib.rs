//! entragate-filter: the thin proxy-wasm adapter around `entragate-core`.
//!
//! This crate only maps hostcalls onto the pure core:
//! - [`root`]: the per-worker root context (configuration, ticks, JWKS callouts,
//!   resuming requests that waited for keys).
//! - [`root_hostcalls`]: hostcall plumbing both roles' root contexts share
//!   (callout answers, worker ids, ticks, resuming paused requests).
//! - [`http`]: the per-request context (copies headers in, applies the decision).
//! - [`host`]: `entragate_core::host::Host` implemented with hostcalls.
//! - [`worker`]: state shared by the root and request contexts of one worker VM.
//! - [`apply`]: writing a decision back (headers, local replies).
//! - [`metrics`]: counters visible on Envoy's `/stats`.
//! - [`signatures`]: choosing the signature verifier (host native or pure Rust).
//! - [`foreign`]: calling host foreign functions (`verify_signature`).
//! - [`role`]: choosing the role by Envoy `root_id` (callee validation or outbound).
//! - [`outbound`]: the caller-side role (attach the agent's token to requests).

pub mod apply;
pub mod foreign;
pub mod host;
pub mod http;
pub mod metrics;
pub mod outbound;
pub mod role;
pub mod root;
pub mod root_hostcalls;
pub mod signatures;
pub mod worker;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(role::RoleRoot::new(context_id))
    });
}}
