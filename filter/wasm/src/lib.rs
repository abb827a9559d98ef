//! entragate-filter: the thin proxy-wasm adapter around `entragate-core`.
//!
//! This crate only maps hostcalls onto the pure core, one folder per role
//! (as in the core) over the plumbing both share:
//! - [`inbound`]: the callee role (token validation).
//! - [`outbound`]: the caller role (attach the agent's token to requests).
//! - [`role`]: choosing the role by Envoy `root_id`.
//! - [`host`]: the core's host traits implemented with hostcalls.
//! - [`refusals`]: sending the core's refusal replies and defining their counters.
//! - [`root_hostcalls`]: hostcall plumbing both roles' root contexts share
//!   (configuration, callout answers, worker ids, ticks, resuming paused requests).

pub mod host;
pub mod inbound;
pub mod outbound;
pub mod refusals;
pub mod role;
pub mod root_hostcalls;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(role::RoleRoot::new(context_id))
    });
}}
