//! Everything that can go wrong while reading the secret, each with its own clear message.

use std::fmt;

/// A failure to obtain usable credentials from Secrets Manager. Messages never contain secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// No region from `--region`, the config file, `AWS_REGION` or the profile.
    NoRegion,
    /// The AWS credential chain found nothing usable.
    NoCredentials { detail: String },
    /// `ResourceNotFoundException` — wrong id, or the secret lives in another region.
    NotFound { secret_id: String, region: String },
    /// `AccessDeniedException` / rejected AWS credentials / KMS decrypt denied.
    AccessDenied {
        secret_id: String,
        region: String,
        detail: String,
    },
    /// The endpoint could not be reached (DNS, refused, TLS, timeout): wrong region name, wrong
    /// `--endpoint-url`, or no network path.
    Unreachable {
        endpoint: String,
        region: String,
        detail: String,
    },
    /// Secrets Manager is throttling or failing internally: worth retrying.
    ServiceUnavailable { code: String, detail: String },
    /// Any other error answered by Secrets Manager (scheduled for deletion, invalid parameter…).
    Service { code: String, detail: String },
    /// The secret is stored as `SecretBinary`, not `SecretString`.
    NotAString,
    /// `SecretString` is not a JSON object; `detail` is the parser's position message, never content.
    NotJson { detail: String },
    /// Required keys are absent (or empty). `hints` are near-miss key names (`client_secret`, …).
    MissingFields {
        missing: Vec<&'static str>,
        hints: Vec<String>,
    },
    /// A key is present with an unusable value (not a string, both casings disagree…).
    InvalidField { field: &'static str, reason: String },
    /// The loader has no way to (re-)read the secret (used by tests and fixed credentials).
    Unsupported,
}

impl SecretError {
    /// Worth retrying with backoff (the agent keeps trying at start-up); the others need a human.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SecretError::Unreachable { .. } | SecretError::ServiceUnavailable { .. }
        )
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NoRegion => write!(
                f,
                "no AWS region configured: pass --region, set region in the config file, or set AWS_REGION"
            ),
            SecretError::NoCredentials { detail } => write!(
                f,
                "no AWS credentials: {detail}"
            ),
            SecretError::NotFound { secret_id, region } => write!(
                f,
                "secret {secret_id} was not found in region {region}: check the secret id and the region \
                 (--region / AWS_REGION); a secret exists in one region only unless replicated"
            ),
            SecretError::AccessDenied { secret_id, region, detail } => write!(
                f,
                "access denied reading secret {secret_id} in region {region}: the caller's IAM identity needs \
                 secretsmanager:GetSecretValue on it (and kms:Decrypt on its key): {detail}"
            ),
            SecretError::Unreachable { endpoint, region, detail } => write!(
                f,
                "cannot reach Secrets Manager at {endpoint} (region {region}): {detail}; check the region name, \
                 --endpoint-url / AWS_ENDPOINT_URL and the network path"
            ),
            SecretError::ServiceUnavailable { code, detail } => {
                write!(f, "Secrets Manager is unavailable ({code}): {detail}")
            }
            SecretError::Service { code, detail } => write!(f, "Secrets Manager refused the request ({code}): {detail}"),
            SecretError::NotAString => write!(
                f,
                "the secret is stored as binary (SecretBinary); store it as a JSON SecretString \
                 {{\"ClientId\":…,\"ClientSecret\":…,\"TenantId\":…}}"
            ),
            SecretError::NotJson { detail } => write!(
                f,
                "the secret value is not a JSON object ({detail}); expected {{\"ClientId\":…,\"ClientSecret\":…,\"TenantId\":…}}"
            ),
            SecretError::MissingFields { missing, hints } => {
                write!(f, "the secret JSON lacks required field(s): {}", missing.join(", "))?;
                write!(f, " (PascalCase or camelCase keys are accepted)")?;
                if !hints.is_empty() {
                    write!(f, "; found similar key(s): {}", hints.join(", "))?;
                }
                Ok(())
            }
            SecretError::InvalidField { field, reason } => write!(f, "secret field {field}: {reason}"),
            SecretError::Unsupported => write!(f, "this credential source cannot be re-read"),
        }
    }
}

impl std::error::Error for SecretError {}
