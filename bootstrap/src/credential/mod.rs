//! How the agent proves the caller's identity to Entra ID. Three kinds:
//!
//! * `secret`: a client secret read from AWS Secrets Manager (the original path, [`crate::secret`]);
//! * `aws-federation`: no secret at all. The workload's IAM role calls STS `GetWebIdentityToken` and the
//!   AWS-signed JWT is the `client_assertion`; Entra trusts it through a *federated identity credential* on
//!   the app registration (issuer = the account's outbound federation issuer, exact subject, audience
//!   `api://AzureADTokenExchange`);
//! * `kms-certificate`: the app registration holds a certificate whose private key lives in AWS KMS; the
//!   agent builds the client assertion Entra documents for certificates and has KMS `Sign` it, so the key
//!   never leaves KMS.
//!
//! Assertions are fetched per token request (a federation JWT is short-lived, a certificate assertion must
//! carry a fresh `jti`), inside the token cache's per-scope single flight, and retried with the cache's one
//! backoff path like every other failure.

mod aws_error;
pub mod config;
mod federation;
mod jwt;
mod kms_certificate;

pub use aws_error::{AwsCallError, AwsFailure};
pub use config::{CredentialConfig, CredentialKind, RawCredential};
pub use federation::FederationSource;
pub use kms_certificate::KmsCertificateSource;

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// `client_assertion_type` for a JWT client assertion (RFC 7523), the only one Entra accepts.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A signed client assertion. It authenticates the caller as well as a secret does for its lifetime, so it is
/// kept like one: redacted `Debug`, zeroized on drop, logged only as a SHA-256 prefix.
pub struct ClientAssertion {
    value: SecretString,
    pub fingerprint: String,
}

impl ClientAssertion {
    pub fn new(value: String) -> Self {
        let fingerprint = crate::text::fingerprint(&value);
        ClientAssertion {
            value: SecretString::from(value),
            fingerprint,
        }
    }

    /// The JWT, for the token request body only.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientAssertion([redacted sha256:{}])", self.fingerprint)
    }
}

/// Future returned by [`AssertionSource::assertion`].
pub type AssertionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ClientAssertion, AwsCallError>> + Send + 'a>>;

/// Produces one fresh client assertion per call (STS or KMS in production).
pub trait AssertionSource: Send + Sync {
    /// `aws-federation` or `kms-certificate`, for status lines.
    fn kind(&self) -> CredentialKind;
    /// What is being asked (role audience, key id…), for status lines; never secret.
    fn describe(&self) -> String;
    fn assertion(&self) -> AssertionFuture<'_>;
}

/// A caller that authenticates with client assertions: its app registration and the assertion source.
pub struct AssertionIdentity {
    pub client_id: String,
    pub tenant_id: String,
    pub source: Box<dyn AssertionSource>,
}

impl fmt::Debug for AssertionIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionIdentity")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("source", &self.source.describe())
            .finish()
    }
}

/// What the token request carries to authenticate the client.
#[derive(Clone, Copy)]
pub enum ClientAuth<'a> {
    Secret(&'a str),
    Assertion(&'a ClientAssertion),
}

/// The SDK configuration for STS/KMS: the standard credential and region chains, with an optional region and
/// profile from the agent config, and the same fail-fast timeouts as the Secrets Manager client (the token
/// cache retries on its own schedule).
pub async fn load_sdk_config(region: Option<&str>, profile: Option<&str>) -> aws_config::SdkConfig {
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(20))
            .build(),
    );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}
