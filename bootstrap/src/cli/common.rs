//! Options shared by the subcommands (where the secret is, which authority to ask) and their resolution
//! against the config file: a flag wins over the file, the file over the built-in default.

use crate::config::{self, FileConfig};
use crate::credential::{
    load_sdk_config, AssertionIdentity, AssertionSource, CredentialConfig, FederationSource,
    KmsCertificateSource,
};
use crate::exit::Failure;
use crate::secret::{AwsSettings, Credentials, FieldReport, SecretError, SecretsManagerSource};
use crate::token::backoff::{random_unit, Backoff};
use crate::token::{RetryPolicy, TokenEndpoint, DEFAULT_AUTHORITY};
use crate::{info, warn};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where the secret is.
#[derive(Clone, Debug, Args)]
pub struct SecretArgs {
    /// TOML config file (see README); flags override its values.
    #[arg(long, env = "ENTRAGATE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Secrets Manager secret id or ARN holding {"ClientId","ClientSecret","TenantId"}
    /// (camelCase keys accepted), e.g. fintech/transaction-processor/identity.
    #[arg(long, env = "ENTRAGATE_SECRET_ID", value_name = "ID")]
    pub secret_id: Option<String>,
    /// AWS region of the secret [default: the SDK chain: AWS_REGION, AWS_DEFAULT_REGION, profile].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Secrets Manager endpoint, for local emulators [default: AWS_ENDPOINT_URL, else the regional endpoint].
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile from ~/.aws/config [default: AWS_PROFILE, else "default"].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// How to reach the identity provider.
#[derive(Clone, Debug, Args)]
pub struct IdpArgs {
    /// Entra authority [default: https://login.microsoftonline.com]. Sovereign clouds:
    /// https://login.microsoftonline.us, https://login.chinacloudapi.cn; tests: http://127.0.0.1:PORT
    /// (plain http is accepted for loopback only).
    #[arg(long, env = "ENTRAGATE_AUTHORITY", value_name = "URL")]
    pub authority: Option<String>,
    /// Timeout of one token request [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub idp_timeout: Option<Duration>,
    /// First retry delay after a failed token request (doubles up to --retry-max, jittered) [default: 500ms].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub retry_initial: Option<Duration>,
    /// Largest retry delay; also the pace of retries after a permanent rejection [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub retry_max: Option<Duration>,
}

/// Loads the config file named by `--config` (or none).
pub fn load_file(args: &SecretArgs) -> Result<FileConfig, Failure> {
    match &args.config {
        Some(path) => config::load(path).map_err(Failure::Usage),
        None => Ok(FileConfig::default()),
    }
}

/// The `[credential]` table compiled (no table: the client secret at `secret_id`).
pub fn credential_config(file: &FileConfig) -> Result<CredentialConfig, Failure> {
    match &file.credential {
        None => Ok(CredentialConfig::Secret),
        Some(raw) => CredentialConfig::try_from(raw).map_err(Failure::Usage),
    }
}

/// A secretless caller's identity: its app registration and the STS or KMS source of its assertions.
/// `None` for the `secret` kind. Region and profile come from the flags, then the file, then the SDK chain.
pub async fn assertion_identity(
    config: &CredentialConfig,
    args: &SecretArgs,
    file: &FileConfig,
    endpoint: &TokenEndpoint,
) -> Option<AssertionIdentity> {
    let region = args.region.clone().or_else(|| file.region.clone());
    let profile = args.profile.clone().or_else(|| file.profile.clone());
    let (app, source): (_, Box<dyn AssertionSource>) = match config {
        CredentialConfig::Secret => return None,
        CredentialConfig::AwsFederation(f) => {
            let sdk = load_sdk_config(region.as_deref(), profile.as_deref()).await;
            (&f.app, Box::new(FederationSource::new(&sdk, f)))
        }
        CredentialConfig::KmsCertificate(k) => {
            let sdk = load_sdk_config(region.as_deref(), profile.as_deref()).await;
            let aud = endpoint.url(&k.app.tenant_id);
            (&k.app, Box::new(KmsCertificateSource::new(&sdk, k, aud)))
        }
    };
    info!(
        "credential {}: client {} in tenant {}, assertions from {} (no client secret)",
        source.kind(),
        app.client_id,
        app.tenant_id,
        source.describe()
    );
    Some(AssertionIdentity {
        client_id: app.client_id.clone(),
        tenant_id: app.tenant_id.clone(),
        source,
    })
}

/// Secret location from flags, then the file.
pub fn aws_settings(args: &SecretArgs, file: &FileConfig) -> Result<AwsSettings, Failure> {
    let secret_id = args
        .secret_id
        .clone()
        .or_else(|| file.secret_id.clone())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Failure::Usage("no secret id: pass --secret-id, set ENTRAGATE_SECRET_ID or secret_id in the config file".into()))?;
    Ok(AwsSettings {
        secret_id: secret_id.trim().to_string(),
        region: args.region.clone().or_else(|| file.region.clone()),
        endpoint_url: args
            .endpoint_url
            .clone()
            .or_else(|| file.endpoint_url.clone()),
        profile: args.profile.clone().or_else(|| file.profile.clone()),
    })
}

/// The token endpoint and retry policy from flags, then the file.
pub fn idp_settings(
    args: &IdpArgs,
    file: &FileConfig,
) -> Result<(TokenEndpoint, RetryPolicy), Failure> {
    let authority = args
        .authority
        .clone()
        .or_else(|| file.authority.clone())
        .unwrap_or_else(|| DEFAULT_AUTHORITY.into());
    let file_duration = |v: &Option<String>| {
        v.as_deref()
            .map(config::parse_duration)
            .transpose()
            .map_err(Failure::Usage)
    };
    let timeout = match args.idp_timeout {
        Some(d) => d,
        None => file_duration(&file.idp_timeout)?.unwrap_or(Duration::from_secs(10)),
    };
    let defaults = RetryPolicy::default();
    let initial = match args.retry_initial {
        Some(d) => d,
        None => file_duration(&file.retry_initial)?.unwrap_or(defaults.initial),
    };
    let max = match args.retry_max {
        Some(d) => d,
        None => file_duration(&file.retry_max)?.unwrap_or(defaults.max),
    };
    if initial.is_zero() || max < initial {
        return Err(Failure::Usage(
            "--retry-initial must be > 0 and <= --retry-max".into(),
        ));
    }
    let endpoint = TokenEndpoint::new(&authority, timeout).map_err(Failure::Usage)?;
    Ok((endpoint, RetryPolicy { initial, max }))
}

/// Builds the SDK client for `settings` and says which secret is being read.
pub async fn secret_source(settings: &AwsSettings) -> Result<SecretsManagerSource, Failure> {
    let source = SecretsManagerSource::from_settings(settings).await?;
    let endpoint =
        if settings.endpoint_url.is_some() || !source.endpoint().contains(".amazonaws.com") {
            format!(", endpoint {}", source.endpoint())
        } else {
            String::new()
        };
    info!(
        "reading secret {} from Secrets Manager (region {}{endpoint})…",
        source.secret_id(),
        source.region()
    );
    Ok(source)
}

/// Reads the secret once.
pub async fn read_secret(
    source: &SecretsManagerSource,
) -> Result<(Credentials, FieldReport), SecretError> {
    let (credentials, report) = source.fetch().await?;
    let fields: Vec<&str> = report.found.iter().map(|f| f.field).collect();
    info!(
        "secret read: {} present (version {})",
        fields.join(", "),
        credentials.version_id.as_deref().unwrap_or("unknown")
    );
    Ok((credentials, report))
}

/// Reads the secret, retrying transient failures (endpoint unreachable, throttling) with backoff until
/// `deadline` elapses (forever when `None`); permanent failures (not found, access denied, bad JSON) return
/// at once because only a person can fix them.
pub async fn read_secret_retrying(
    source: &SecretsManagerSource,
    deadline: Option<Duration>,
) -> Result<Credentials, SecretError> {
    let started = std::time::Instant::now();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        match read_secret(source).await {
            Ok((c, _)) => return Ok(c),
            Err(e) if e.is_transient() && deadline.is_none_or(|d| started.elapsed() < d) => {
                let delay = backoff.next_delay(random_unit());
                warn!(
                    "{e}; retrying in {} (attempt {})",
                    crate::text::duration(delay),
                    backoff.attempts()
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}
