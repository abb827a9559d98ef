//! The callee role: validate the caller's Entra token on every request
//! (`root_id` other than `entragate_outbound`).
//!
//! - [`config`]: the plugin configuration (serde) and its compilation into a [`config::FilterPolicy`].
//! - [`policy`]: route rules, authorization and claim headers.
//! - [`jwks`]: the JWKS document and its fetch, shared per Envoy by the common fetcher.
//! - [`cache`]: the per-worker cache of verified tokens.
//! - [`engine`]: the per-request flow tying the above together.
//! - [`request`]: reading the request headers (stripping spoofed claim headers) and
//!   setting the verified identity headers.
//! - [`binding`]: over mTLS, the token bound to the peer workload's app.
//! - [`metrics`]: the names and kinds of its metrics, for every host.
//! - [`audit`]: every decision as named values for the proxy's access log.
//!
//! It uses the common parts (token, keys, claims, fetcher, errors) and never
//! the outbound role.

pub mod audit;
pub mod binding;
pub mod cache;
pub mod config;
pub mod engine;
pub mod jwks;
pub mod metrics;
pub mod policy;
pub mod request;
