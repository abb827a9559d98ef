//! Signing keys: parsing the JWKS document and keeping one copy per Envoy.
pub mod key;
pub mod settings;

pub use key::RsaPublicKey;
pub use settings::JwksSettings;
