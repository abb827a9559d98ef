//! Signing keys: parsing the JWKS document and keeping one copy per Envoy.
//!
//! - [`parse`]: JWKS / OIDC discovery documents to keys (skipping unusable ones).
//! - [`record`]: the shared-data records and their key names.
//! - [`coordinator`]: the per-worker state machine sharing one fetch per Envoy.
//! - [`settings`]: where the keys come from and how often they are fetched.
//!
//! The keys themselves ([`crate::keys`]) are common: the token module checks
//! signatures with them.
pub mod coordinator;
pub mod parse;
pub mod record;
pub mod settings;

pub use coordinator::{
    FetchError, FetchOutcome, JwksCoordinator, JwksStats, KeyAvailability, KeysUpdate, TickOutcome,
};
pub use parse::{parse_discovery, parse_jwks, JwksError, ParsedJwks, SkipReason};
pub use settings::JwksSettings;
