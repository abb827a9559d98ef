//! One classification of AWS SDK failures for the assertion sources (STS and KMS alike): what failed,
//! whether retrying can help, and a hint naming the fix for the failures an operator will meet.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use std::fmt;

/// Broad classes, which decide retry pacing (transient: backoff; the others: the agent's slow retry pace,
/// since a fix such as an IAM policy change needs no restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsFailure {
    /// Connect/DNS/TLS/timeout: wrong endpoint or region, or no network path.
    Unreachable,
    /// Throttling or an internal error of the service.
    Unavailable,
    /// AWS credentials missing or rejected, or IAM denies the action.
    Denied,
    /// The feature or the key is switched off (federation disabled, KMS key disabled or pending deletion).
    Disabled,
    /// Anything else the service answered (bad parameter, key not found…).
    Refused,
}

/// A failed STS or KMS call, safe to log (never contains a token or signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCallError {
    /// `STS GetWebIdentityToken` or `KMS Sign`.
    pub operation: &'static str,
    pub endpoint: String,
    pub class: AwsFailure,
    /// The AWS error code (`AccessDenied`, `DisabledException`…) or a local description.
    pub code: String,
    pub message: String,
    /// What to do about it, when we know.
    pub hint: Option<String>,
}

impl AwsCallError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self.class,
            AwsFailure::Unreachable | AwsFailure::Unavailable
        )
    }

    /// Classifies an SDK error; `hint_for(code)` adds operation-specific advice.
    pub fn from_sdk<E, R>(
        operation: &'static str,
        endpoint: &str,
        err: &SdkError<E, R>,
        hint_for: impl Fn(&str) -> Option<String>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug + 'static,
    {
        let (class, code, message) = match err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let message = crate::text::sanitize(e.message().unwrap_or_default(), 300);
                (classify_code(&code), code, message)
            }
            SdkError::TimeoutError(_) => (
                AwsFailure::Unreachable,
                "Timeout".to_string(),
                "timed out".to_string(),
            ),
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => (
                AwsFailure::Unreachable,
                "Unreachable".to_string(),
                crate::text::error_chain(err, 300),
            ),
            SdkError::ResponseError(_) => (
                AwsFailure::Unavailable,
                "UnparseableResponse".to_string(),
                crate::text::error_chain(err, 300),
            ),
            // Credential resolution and other local failures: most often no AWS credentials at all.
            _ => (
                AwsFailure::Denied,
                "NoCredentials".to_string(),
                crate::text::error_chain(err, 300),
            ),
        };
        let hint = hint_for(&code).or_else(|| match class {
            AwsFailure::Unreachable => Some(format!(
                "check the region and endpoint ({endpoint}) and the network path"
            )),
            _ => None,
        });
        AwsCallError {
            operation,
            endpoint: endpoint.to_string(),
            class,
            code,
            message,
            hint,
        }
    }
}

fn classify_code(code: &str) -> AwsFailure {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "MissingAuthenticationToken"
        | "IncompleteSignature" => AwsFailure::Denied,
        "OutboundWebIdentityFederationDisabledException"
        | "DisabledException"
        | "KMSInvalidStateException" => AwsFailure::Disabled,
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "InternalFailure"
        | "InternalError"
        | "KMSInternalException"
        | "DependencyTimeoutException"
        | "ServiceUnavailable" => AwsFailure::Unavailable,
        _ => AwsFailure::Refused,
    }
}

impl fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.class {
            AwsFailure::Unreachable => "cannot reach the endpoint",
            AwsFailure::Unavailable => "service unavailable",
            AwsFailure::Denied => "access denied",
            AwsFailure::Disabled => "disabled",
            AwsFailure::Refused => "refused",
        };
        write!(f, "{} failed, {what} ({}", self.operation, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        write!(f, ")")?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsCallError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify_code("AccessDenied"), AwsFailure::Denied);
        assert_eq!(
            classify_code("OutboundWebIdentityFederationDisabledException"),
            AwsFailure::Disabled
        );
        assert_eq!(classify_code("DisabledException"), AwsFailure::Disabled);
        assert_eq!(
            classify_code("ThrottlingException"),
            AwsFailure::Unavailable
        );
        assert_eq!(classify_code("NotFoundException"), AwsFailure::Refused);
    }
}
