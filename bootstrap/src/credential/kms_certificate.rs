//! `kms-certificate`: the app registration holds a certificate whose RSA private key lives in AWS KMS. For
//! each token request the agent builds Entra's certificate client assertion ([`super::jwt`]) and has KMS
//! `Sign` its SHA-256 digest with RSASSA-PSS (PS256): the key never leaves KMS, and nothing secret is
//! stored on the host.

use super::aws_error::{AwsCallError, AwsFailure};
use super::config::KmsCertificateConfig;
use super::jwt::{compact, random_jti, signing_input, AssertionClaims};
use super::{AssertionFuture, AssertionSource, ClientAssertion, CredentialKind};
use aws_config::SdkConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use std::time::{Duration, SystemTime};

const OPERATION: &str = "KMS Sign";

/// Signs one certificate assertion per token request.
pub struct KmsCertificateSource {
    client: Client,
    endpoint: String,
    key_id: String,
    client_id: String,
    /// `aud`: the tenant's v2.0 token endpoint, exactly as the request goes to it.
    token_endpoint: String,
    x5t_s256: String,
    lifetime: Duration,
}

impl KmsCertificateSource {
    pub fn new(sdk: &SdkConfig, config: &KmsCertificateConfig, token_endpoint: String) -> Self {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let endpoint = config
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        let mut builder = aws_sdk_kms::config::Builder::from(sdk);
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        KmsCertificateSource {
            client: Client::from_conf(builder.build()),
            endpoint,
            key_id: config.key_id.clone(),
            client_id: config.app.client_id.clone(),
            token_endpoint,
            x5t_s256: config.x5t_s256.clone(),
            lifetime: config.assertion_lifetime,
        }
    }

    fn local_error(&self, code: &str, message: String) -> AwsCallError {
        AwsCallError {
            operation: OPERATION,
            endpoint: self.endpoint.clone(),
            class: AwsFailure::Refused,
            code: code.into(),
            message,
            hint: None,
        }
    }

    async fn fetch(&self) -> Result<ClientAssertion, AwsCallError> {
        let jti = random_jti().map_err(|e| self.local_error("NoRandomness", e))?;
        let input = signing_input(&AssertionClaims {
            client_id: &self.client_id,
            token_endpoint: &self.token_endpoint,
            x5t_s256: &self.x5t_s256,
            jti: &jti,
            now: SystemTime::now(),
            lifetime: self.lifetime,
        });
        // RAW: KMS hashes the signing input itself (it is a few hundred bytes, far below KMS's 4096-byte
        // limit, and holds nothing secret). DIGEST would save those bytes, but moto 5.2.5 ignores
        // MessageType and would hash our digest again.
        let output = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(input.as_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
            .send()
            .await
            .map_err(|e| {
                AwsCallError::from_sdk(OPERATION, &self.endpoint, &e, |c| hint(c, &self.key_id))
            })?;
        let signature = output
            .signature
            .map(Blob::into_inner)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.local_error("EmptyResponse", "the response carried no Signature".into())
            })?;
        Ok(ClientAssertion::new(compact(&input, &signature)))
    }
}

fn hint(code: &str, key_id: &str) -> Option<String> {
    Some(match code {
        "DisabledException" => {
            format!("KMS key {key_id} is disabled: enable it (aws kms enable-key)")
        }
        "KMSInvalidStateException" => {
            format!("KMS key {key_id} is pending deletion or unavailable")
        }
        "NotFoundException" => format!("no KMS key {key_id} in this account and region"),
        "InvalidKeyUsageException" => {
            format!("KMS key {key_id} must be an RSA key with KeyUsage SIGN_VERIFY")
        }
        "AccessDeniedException" => format!("the role needs kms:Sign on {key_id}"),
        "NoCredentials" => {
            "no AWS credentials: the task/pod role must be available to the agent".into()
        }
        _ => return None,
    })
}

impl AssertionSource for KmsCertificateSource {
    fn kind(&self) -> CredentialKind {
        CredentialKind::KmsCertificate
    }

    fn describe(&self) -> String {
        format!(
            "{OPERATION} with key {} at {} (PS256, certificate x5t#S256 {}, assertions valid {}s)",
            self.key_id,
            self.endpoint,
            self.x5t_s256,
            self.lifetime.as_secs()
        )
    }

    fn assertion(&self) -> AssertionFuture<'_> {
        Box::pin(self.fetch())
    }
}
