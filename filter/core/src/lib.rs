//! entragate-core: everything the entragate filter decides, with no proxy-wasm import.
//!
//! Layout (one concern per module):
//! - [`audit`]: every decision as named values for the proxy's access log.
//! - [`error`]: the single error enum and its status/RFC 6750/metric mapping.
//! - [`cache`]: the per-worker cache of verified tokens.
//! - [`options`]: verification options with secure defaults.
//! - [`token`]: `Authorization` extraction, compact JWS decoding, signature check.
//! - [`claims`]: typed claims and issuer/audience/lifetime/tenant validation.
//! - [`jwks`]: JWKS parsing, the shared key record and the fetch state machine.
//! - [`config`]: the plugin configuration (serde) and its compilation into a policy.
//! - [`policy`]: route rules, authorization and claim headers.
//! - [`binding`]: the token bound to the mTLS peer workload.
//! - [`engine`]: the per-request flow tying the above together.
//! - [`response`]: turning a denial into status, headers and body.
//! - [`host`]: the trait the proxy adapter implements.
//! - [`outbound`]: the caller-side role (tokens from the local agent, shared per Envoy).
//! - [`retry`]: jittered exponential backoff shared by every fetch.
//! - [`shared`]: the lease/backoff state record and its CAS steps, shared by
//!   the JWKS and outbound coordinators.

pub mod audit;
pub mod binding;
pub mod cache;
pub mod claims;
pub mod config;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod guid;
pub mod host;
pub mod jwks;
pub mod options;
pub mod outbound;
pub mod policy;
pub mod response;
pub mod retry;
pub mod shared;
pub mod token;
