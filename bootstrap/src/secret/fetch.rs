//! Reads the secret with the AWS SDK (standard credential and region chain) and turns every SDK failure
//! into a distinct [`SecretError`].

use super::parse::{parse_secret_json, FieldReport};
use super::store::{CredentialLoader, LoadFuture};
use super::{Credentials, SecretError};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::Client;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where to find the secret. `None` fields fall back to the SDK's standard chain (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_PROFILE`, `~/.aws/config`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub secret_id: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// A Secrets Manager secret holding the caller's credentials.
#[derive(Clone, Debug)]
pub struct SecretsManagerSource {
    client: Client,
    sdk: Option<SdkConfig>,
    secret_id: String,
    region: String,
    endpoint: String,
}

impl SecretsManagerSource {
    /// Builds the SDK client from `settings` plus the standard AWS chains.
    pub async fn from_settings(settings: &AwsSettings) -> Result<Self, SecretError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            // Fail fast enough for a person to see an answer; the agent retries on its own schedule.
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile.clone());
        }
        let sdk = loader.load().await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or(SecretError::NoRegion)?;
        let endpoint = settings
            .endpoint_url
            .clone()
            .or_else(|| sdk.endpoint_url().map(str::to_string))
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
        let client = Client::new(&sdk);
        Ok(SecretsManagerSource {
            client,
            sdk: Some(sdk),
            secret_id: settings.secret_id.clone(),
            region,
            endpoint,
        })
    }

    /// Wraps an already configured client (tests seed and read a local emulator with fixed credentials).
    /// `endpoint` only labels error messages.
    pub fn from_client(client: Client, secret_id: &str, endpoint: &str) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "(none)".into());
        SecretsManagerSource {
            client,
            sdk: None,
            secret_id: secret_id.to_string(),
            region,
            endpoint: endpoint.into(),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint being called (custom or the regional default), for status lines.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Reads and parses the secret.
    pub async fn fetch(&self) -> Result<(Credentials, FieldReport), SecretError> {
        let output = match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return Err(self.classify(e).await),
        };
        let version_id = output.version_id.clone();
        let Some(json) = output.secret_string.map(Zeroizing::new) else {
            return Err(SecretError::NotAString);
        };
        let (mut credentials, report) = parse_secret_json(&json)?;
        credentials.version_id = version_id;
        Ok((credentials, report))
    }

    async fn classify(&self, err: SdkError<GetSecretValueError>) -> SecretError {
        let detail = crate::text::error_chain(&err, 400);
        match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let e = service.err();
                let body = service
                    .raw()
                    .body()
                    .bytes()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                // Some emulators and proxies answer the JSON protocol with an XML error document.
                let code = e
                    .code()
                    .map(str::to_string)
                    .or_else(|| xml_tag(&body, "Code"))
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let message = e
                    .message()
                    .map(str::to_string)
                    .or_else(|| xml_tag(&body, "Message"))
                    .unwrap_or_default();
                self.classify_service(&code, status, crate::text::sanitize(&message, 300))
            }
            SdkError::TimeoutError(_) => self.unreachable("timed out".into()),
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => self.unreachable(detail),
            SdkError::ResponseError(_) => SecretError::Service {
                code: "UnparseableResponse".into(),
                detail: format!(
                    "the endpoint {} did not answer like Secrets Manager: {detail}",
                    self.endpoint
                ),
            },
            // Identity resolution and other local failures land here: say so clearly when it is credentials.
            _ => match self.credentials_problem().await {
                Some(problem) => SecretError::NoCredentials { detail: problem },
                None => self.unreachable(detail),
            },
        }
    }

    fn classify_service(&self, code: &str, status: u16, message: String) -> SecretError {
        let (secret_id, region) = (self.secret_id.clone(), self.region.clone());
        match code {
            "ResourceNotFoundException" => SecretError::NotFound { secret_id, region },
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "MissingAuthenticationToken"
            | "IncompleteSignature"
            | "DecryptionFailure" => SecretError::AccessDenied {
                secret_id,
                region,
                detail: format!("{code}: {message}"),
            },
            "ThrottlingException"
            | "InternalServiceError"
            | "InternalFailure"
            | "ServiceUnavailable" => SecretError::ServiceUnavailable {
                code: code.into(),
                detail: message,
            },
            _ if status == 401 || status == 403 => SecretError::AccessDenied {
                secret_id,
                region,
                detail: format!("{code}: {message}"),
            },
            _ if status >= 500 || status == 429 => SecretError::ServiceUnavailable {
                code: code.into(),
                detail: message,
            },
            _ => SecretError::Service {
                code: code.into(),
                detail: message,
            },
        }
    }

    fn unreachable(&self, detail: String) -> SecretError {
        SecretError::Unreachable {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            detail,
        }
    }

    /// `Some(reason)` when the credential chain yields nothing (asked only after a failure, so the happy
    /// path resolves credentials once, inside the SDK).
    async fn credentials_problem(&self) -> Option<String> {
        use aws_sdk_secretsmanager::config::ProvideCredentials;
        let sdk = self.sdk.as_ref()?;
        let Some(provider) = sdk.credentials_provider() else {
            return Some("no credentials provider is configured".into());
        };
        match provider.provide_credentials().await {
            Ok(_) => None,
            Err(e) => {
                let chain = crate::text::error_chain(&e, 300);
                // The SDK's own text lists every provider in one long line; say it plainly instead.
                Some(if chain.contains("no credentials found in chain") {
                    "tried environment variables, profile files, web identity (IRSA), ECS/EKS container \
                     credentials and the EC2 instance role; none had credentials"
                        .into()
                } else {
                    chain
                })
            }
        }
    }
}

/// The text of the first `<tag>…</tag>` in `xml` (a tolerant peek, not a parser).
fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&format!("</{tag}>"))?;
    xml.get(start..start + len)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

impl CredentialLoader for SecretsManagerSource {
    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move { self.fetch().await.map(|(credentials, _)| credentials) })
    }
}

#[cfg(test)]
mod tests {
    use super::xml_tag;

    #[test]
    fn peeks_into_xml_errors() {
        let xml = "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>bad</Message></Error></Errors></ErrorResponse>";
        assert_eq!(
            xml_tag(xml, "Code").as_deref(),
            Some("InvalidClientTokenId")
        );
        assert_eq!(xml_tag(xml, "Message").as_deref(), Some("bad"));
        assert_eq!(xml_tag(xml, "Missing"), None);
        assert_eq!(xml_tag("<Code></Code>", "Code"), None);
        assert_eq!(xml_tag("<Code>unterminated", "Code"), None);
    }
}
