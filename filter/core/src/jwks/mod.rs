//! Signing keys: parsing the JWKS document and keeping one copy per Envoy.
//!
//! - [`parse`]: JWKS / OIDC discovery documents to keys (skipping unusable ones).
//! - [`keyset`]: the key set and how a token header selects a key.
//! - [`record`]: the shared-data records and their key names.
//! - [`coordinator`]: the per-worker state machine sharing one fetch per Envoy.
//! - `fake_host` (tests): an in-memory [`crate::host::Host`].
pub mod coordinator;
#[cfg(test)]
pub mod fake_host;
pub mod key;
pub mod keyset;
pub mod parse;
pub mod record;
pub mod settings;

pub use coordinator::{
    FetchError, FetchOutcome, JwksCoordinator, JwksStats, KeyAvailability, KeysUpdate, TickOutcome,
};
pub use key::RsaPublicKey;
pub use keyset::KeySet;
pub use parse::{parse_discovery, parse_jwks, JwksError, ParsedJwks, SkipReason};
pub use settings::JwksSettings;
