//! How a caller authenticates to Entra: the kinds the mesh policy names per caller and the agent
//! implements (`entragate_bootstrap::credential`). Here, in the pure mesh crate, because `bootstrap check`
//! and the renderers (and the mesh fuzz target, which must build without the AWS SDK) need the names too.

use serde::Deserialize;
use std::fmt;

/// Entra's fixed audience for federated identity credentials in the public cloud.
pub const DEFAULT_FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The three ways the agent authenticates to Entra.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    Secret,
    AwsFederation,
    KmsCertificate,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Secret => "secret",
            CredentialKind::AwsFederation => "aws-federation",
            CredentialKind::KmsCertificate => "kms-certificate",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
