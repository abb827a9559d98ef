//! The caller's Entra ID client credentials, as stored in AWS Secrets Manager.
//!
//! The client secret lives only in memory, inside [`secrecy::SecretString`] (zeroized on drop); every
//! `Debug` impl here redacts it, and no code path writes it to a log, a file or the agent's HTTP API.

mod error;
mod fetch;
pub mod parse;
mod store;

pub use error::SecretError;
pub use fetch::{AwsSettings, SecretsManagerSource};
pub use parse::{parse_secret_json, FieldReport, FieldSeen};
pub use store::{CredentialLoader, CredentialStore, LoadFuture};

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use subtle::ConstantTimeEq;

/// Client id, tenant and client secret of the calling application.
pub struct Credentials {
    /// Application (client) id. Not secret, but never printed by `secret-check` either (ops asked for
    /// field presence only).
    pub client_id: String,
    /// Directory (tenant) id or verified domain.
    pub tenant_id: String,
    client_secret: SecretString,
    /// Secrets Manager `VersionId` this was read from, if known (lets logs show that a rotation was seen).
    pub version_id: Option<String>,
}

impl Credentials {
    pub fn new(client_id: String, tenant_id: String, client_secret: SecretString) -> Self {
        Credentials {
            client_id,
            tenant_id,
            client_secret,
            version_id: None,
        }
    }

    /// The client secret, for the token request body only.
    pub fn client_secret(&self) -> &str {
        self.client_secret.expose_secret()
    }

    /// Whether `other` carries the same client id, tenant and secret (secret compared in constant time).
    pub fn same_as(&self, other: &Credentials) -> bool {
        let secrets_equal: bool = self
            .client_secret
            .expose_secret()
            .as_bytes()
            .ct_eq(other.client_secret.expose_secret().as_bytes())
            .into();
        secrets_equal && self.client_id == other.client_id && self.tenant_id == other.tenant_id
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_secret", &"[redacted]")
            .field("version_id", &self.version_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let c = Credentials::new(
            "cid".into(),
            "tid".into(),
            SecretString::from("hunter2-very-secret"),
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn same_as_compares_all_parts() {
        let a = Credentials::new("cid".into(), "tid".into(), SecretString::from("s1"));
        let b = Credentials::new("cid".into(), "tid".into(), SecretString::from("s1"));
        let c = Credentials::new("cid".into(), "tid".into(), SecretString::from("s2"));
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }
}
