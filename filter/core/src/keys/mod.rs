//! Signing keys as the token check uses them: one RSA public key, and the
//! set a token header selects from. Where they come from (the callee's JWKS
//! fetch, `crate::inbound::jwks`) is the role's business.
//!
//! - [`key`]: a verified-shape RSA public key.
//! - [`keyset`]: the key set and how a token header selects a key.

pub mod key;
pub mod keyset;

pub use key::RsaPublicKey;
pub use keyset::KeySet;
