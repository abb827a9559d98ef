//! `aws-federation`: the client assertion is a JWT from STS `GetWebIdentityToken` (IAM outbound identity
//! federation), signed by the AWS account's issuer and trusted by the app registration's federated identity
//! credential. Nothing secret is stored anywhere: the role's temporary AWS credentials come from the
//! standard chain (ECS task role, EKS Pod Identity/IRSA, instance profile).

use super::aws_error::AwsCallError;
use super::config::FederationConfig;
use super::{AssertionFuture, AssertionSource, ClientAssertion, CredentialKind};
use aws_config::SdkConfig;
use aws_sdk_sts::Client;

const OPERATION: &str = "STS GetWebIdentityToken";

/// Asks STS for one web identity token per token request.
pub struct FederationSource {
    client: Client,
    endpoint: String,
    audience: String,
    signing_algorithm: String,
    duration_secs: i32,
}

impl FederationSource {
    pub fn new(sdk: &SdkConfig, config: &FederationConfig) -> Self {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        // GetWebIdentityToken is not served by the global endpoint (sts.amazonaws.com): the SDK's default
        // regional endpoint is the right one.
        let endpoint = config
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        let mut builder = aws_sdk_sts::config::Builder::from(sdk);
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        FederationSource {
            client: Client::from_conf(builder.build()),
            endpoint,
            audience: config.audience.clone(),
            signing_algorithm: config.signing_algorithm.clone(),
            duration_secs: i32::try_from(config.token_lifetime.as_secs()).unwrap_or(300),
        }
    }

    async fn fetch(&self) -> Result<ClientAssertion, AwsCallError> {
        let output = self
            .client
            .get_web_identity_token()
            .audience(&self.audience)
            .signing_algorithm(&self.signing_algorithm)
            .duration_seconds(self.duration_secs)
            .send()
            .await
            .map_err(|e| AwsCallError::from_sdk(OPERATION, &self.endpoint, &e, hint))?;
        match output.web_identity_token {
            Some(jwt) if !jwt.is_empty() => Ok(ClientAssertion::new(jwt)),
            _ => Err(AwsCallError {
                operation: OPERATION,
                endpoint: self.endpoint.clone(),
                class: super::AwsFailure::Unavailable,
                code: "EmptyResponse".into(),
                message: "the response carried no WebIdentityToken".into(),
                hint: None,
            }),
        }
    }
}

/// Advice for the failures an operator meets while setting federation up.
fn hint(code: &str) -> Option<String> {
    Some(match code {
        "OutboundWebIdentityFederationDisabledException" => {
            "outbound identity federation is off for this AWS account: run \
             `aws iam enable-outbound-web-identity-federation` (once per account)"
                .into()
        }
        "AccessDenied" | "AccessDeniedException" => {
            "the role needs sts:GetWebIdentityToken (optionally conditioned on sts:IdentityTokenAudience)".into()
        }
        "SessionDurationEscalationException" => {
            "token_lifetime exceeds what the role's policy allows (sts:DurationSeconds)".into()
        }
        "NoCredentials" => "no AWS credentials: the task/pod role must be available to the agent".into(),
        _ => return None,
    })
}

impl AssertionSource for FederationSource {
    fn kind(&self) -> CredentialKind {
        CredentialKind::AwsFederation
    }

    fn describe(&self) -> String {
        format!(
            "{OPERATION} at {} (audience {}, {}, {}s)",
            self.endpoint, self.audience, self.signing_algorithm, self.duration_secs
        )
    }

    fn assertion(&self) -> AssertionFuture<'_> {
        Box::pin(self.fetch())
    }
}
