//! The agent config file's `[credential]` table: parsed strictly (unknown keys rejected), then compiled into
//! an immutable [`CredentialConfig`] with every problem reported by its key name.
//!
//! ```toml
//! [credential]
//! kind = "aws-federation"             # or "kms-certificate", or "secret" (the default: top-level secret_id)
//! client_id = "c1d8f1a2-…"            # the app registration (not secret)
//! tenant_id = "4b1f9c2e-…"
//! audience = "api://AzureADTokenExchange"   # default; must equal the federated credential's audience
//! signing_algorithm = "RS256"         # or ES384
//! token_lifetime = "5m"               # DurationSeconds of GetWebIdentityToken, 60s..1h
//! # endpoint_url = "http://127.0.0.1:4566"  # STS (or KMS) endpoint, for local emulators
//! ```
//!
//! ```toml
//! [credential]
//! kind = "kms-certificate"
//! client_id = "…"
//! tenant_id = "…"
//! key_id = "arn:aws:kms:us-east-1:111122223333:key/…"   # an RSA SIGN_VERIFY key; alias/… works too
//! certificate = "/etc/entragate/transaction-processor.pem" # the certificate registered in Entra (public)
//! assertion_lifetime = "5m"           # Entra's docs advise 5-10 minutes at most
//! ```

use super::jwt::thumbprint_s256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

// Shared with the mesh policy (pure, no AWS SDK): defined there once.
pub use entragate_mesh::credential_kind::{CredentialKind, DEFAULT_FEDERATION_AUDIENCE};
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// `[credential]` as written. One flat table: which keys are allowed depends on `kind`, checked in
/// [`CredentialConfig::try_from`] so the error names the key and the kind.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub kind: Option<CredentialKind>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub audience: Option<String>,
    pub signing_algorithm: Option<String>,
    pub token_lifetime: Option<String>,
    pub key_id: Option<String>,
    pub certificate: Option<String>,
    pub assertion_lifetime: Option<String>,
    pub endpoint_url: Option<String>,
}

/// The app registration a secretless caller signs in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRegistration {
    pub client_id: String,
    pub tenant_id: String,
}

/// STS `GetWebIdentityToken` parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationConfig {
    pub app: AppRegistration,
    pub audience: String,
    /// `RS256` or `ES384`.
    pub signing_algorithm: String,
    pub token_lifetime: Duration,
    pub endpoint_url: Option<String>,
}

/// KMS-held certificate key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsCertificateConfig {
    pub app: AppRegistration,
    pub key_id: String,
    pub certificate_path: PathBuf,
    /// `x5t#S256` of the certificate: the only part of it the assertion carries.
    pub x5t_s256: String,
    pub assertion_lifetime: Duration,
    pub endpoint_url: Option<String>,
}

/// The compiled credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialConfig {
    /// Client secret from Secrets Manager (`secret_id` at top level / `--secret-id`).
    Secret,
    AwsFederation(FederationConfig),
    KmsCertificate(KmsCertificateConfig),
}

impl CredentialConfig {
    pub fn kind(&self) -> CredentialKind {
        match self {
            CredentialConfig::Secret => CredentialKind::Secret,
            CredentialConfig::AwsFederation(_) => CredentialKind::AwsFederation,
            CredentialConfig::KmsCertificate(_) => CredentialKind::KmsCertificate,
        }
    }
}

fn err(key: &str, why: impl fmt::Display) -> String {
    format!("credential.{key}: {why}")
}

fn required(value: &Option<String>, key: &str, kind: CredentialKind) -> Result<String, String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(err(key, format!("required for kind = \"{kind}\""))),
    }
}

fn not_for(value: &Option<String>, key: &str, kind: CredentialKind) -> Result<(), String> {
    match value {
        Some(_) => Err(err(
            key,
            format!("not used by kind = \"{kind}\"; remove it"),
        )),
        None => Ok(()),
    }
}

fn lifetime(
    value: &Option<String>,
    key: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let Some(text) = value else {
        return Ok(DEFAULT_LIFETIME);
    };
    let d = crate::config::parse_duration(text).map_err(|e| err(key, e))?;
    if d < min || d > max {
        return Err(err(
            key,
            format!(
                "{text:?} is outside {}..{}",
                crate::text::duration(min),
                crate::text::duration(max)
            ),
        ));
    }
    Ok(d)
}

fn app(raw: &RawCredential, kind: CredentialKind) -> Result<AppRegistration, String> {
    let client_id = required(&raw.client_id, "client_id", kind)?;
    let tenant_id = required(&raw.tenant_id, "tenant_id", kind)?;
    for (key, v) in [("client_id", &client_id), ("tenant_id", &tenant_id)] {
        // Both end up in the token URL and in claims compared exactly by Entra.
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(err(key, format!("{v:?} is not an id or domain")));
        }
    }
    Ok(AppRegistration {
        client_id,
        tenant_id,
    })
}

fn endpoint(raw: &RawCredential) -> Result<Option<String>, String> {
    match &raw.endpoint_url {
        None => Ok(None),
        Some(u) => url::Url::parse(u)
            .map(|_| Some(u.clone()))
            .map_err(|e| err("endpoint_url", format!("{u:?} is not a URL: {e}"))),
    }
}

/// Reads a PEM (or DER) certificate and returns its DER bytes.
pub fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        err(
            "certificate",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let der = if bytes.starts_with(b"-----") {
        let text = String::from_utf8_lossy(&bytes);
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
            .map(str::trim)
            .collect();
        if body.is_empty() {
            return Err(err(
                "certificate",
                format!("{} holds no CERTIFICATE PEM block", path.display()),
            ));
        }
        STANDARD.decode(body).map_err(|e| {
            err(
                "certificate",
                format!("{}: bad base64 in the PEM block: {e}", path.display()),
            )
        })?
    } else {
        bytes
    };
    // A DER certificate is a SEQUENCE; anything else is not a certificate (a private key would be caught
    // by the BEGIN line above).
    if der.first() != Some(&0x30) || der.len() < 64 {
        return Err(err(
            "certificate",
            format!("{} is not an X.509 certificate", path.display()),
        ));
    }
    Ok(der)
}

impl TryFrom<&RawCredential> for CredentialConfig {
    type Error = String;

    fn try_from(raw: &RawCredential) -> Result<Self, String> {
        let kind = raw.kind.ok_or_else(|| {
            err(
                "kind",
                "required: \"secret\", \"aws-federation\" or \"kms-certificate\"",
            )
        })?;
        let federation_only = [
            (&raw.audience, "audience"),
            (&raw.signing_algorithm, "signing_algorithm"),
            (&raw.token_lifetime, "token_lifetime"),
        ];
        let certificate_only = [
            (&raw.key_id, "key_id"),
            (&raw.certificate, "certificate"),
            (&raw.assertion_lifetime, "assertion_lifetime"),
        ];
        match kind {
            CredentialKind::Secret => {
                for (v, key) in federation_only.iter().chain(&certificate_only).chain(&[
                    (&raw.client_id, "client_id"),
                    (&raw.tenant_id, "tenant_id"),
                    (&raw.endpoint_url, "endpoint_url"),
                ]) {
                    // The secret itself names client and tenant: a second source of truth would drift.
                    not_for(v, key, kind)?;
                }
                Ok(CredentialConfig::Secret)
            }
            CredentialKind::AwsFederation => {
                for (v, key) in certificate_only {
                    not_for(v, key, kind)?;
                }
                let app = app(raw, kind)?;
                let audience = raw
                    .audience
                    .clone()
                    .unwrap_or_else(|| DEFAULT_FEDERATION_AUDIENCE.into());
                if audience.trim().is_empty() || audience.chars().any(char::is_whitespace) {
                    return Err(err("audience", "must be one audience without whitespace"));
                }
                let signing_algorithm = raw
                    .signing_algorithm
                    .clone()
                    .unwrap_or_else(|| "RS256".into());
                if !matches!(signing_algorithm.as_str(), "RS256" | "ES384") {
                    return Err(err(
                        "signing_algorithm",
                        format!("{signing_algorithm:?}: STS signs with RS256 or ES384"),
                    ));
                }
                Ok(CredentialConfig::AwsFederation(FederationConfig {
                    app,
                    audience,
                    signing_algorithm,
                    // GetWebIdentityToken's DurationSeconds range.
                    token_lifetime: lifetime(
                        &raw.token_lifetime,
                        "token_lifetime",
                        Duration::from_secs(60),
                        Duration::from_secs(3600),
                    )?,
                    endpoint_url: endpoint(raw)?,
                }))
            }
            CredentialKind::KmsCertificate => {
                for (v, key) in federation_only {
                    not_for(v, key, kind)?;
                }
                let app = app(raw, kind)?;
                let key_id = required(&raw.key_id, "key_id", kind)?;
                let certificate_path =
                    PathBuf::from(required(&raw.certificate, "certificate", kind)?);
                let der = read_certificate(&certificate_path)?;
                Ok(CredentialConfig::KmsCertificate(KmsCertificateConfig {
                    app,
                    key_id,
                    x5t_s256: thumbprint_s256(&der),
                    certificate_path,
                    // Entra sets no limit; its docs advise a few minutes. A stolen assertion is as good as
                    // the key until it expires, so more than 10 minutes is refused.
                    assertion_lifetime: lifetime(
                        &raw.assertion_lifetime,
                        "assertion_lifetime",
                        Duration::from_secs(60),
                        Duration::from_secs(600),
                    )?,
                    endpoint_url: endpoint(raw)?,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<CredentialConfig, String> {
        let raw: RawCredential = toml::from_str(text).map_err(|e| e.to_string())?;
        CredentialConfig::try_from(&raw)
    }

    #[test]
    fn federation_defaults_and_errors_name_the_key() {
        let c = raw("kind = \"aws-federation\"\nclient_id = \"c\"\ntenant_id = \"t\"").unwrap();
        let CredentialConfig::AwsFederation(f) = c else {
            panic!("not federation")
        };
        assert_eq!(f.audience, DEFAULT_FEDERATION_AUDIENCE);
        assert_eq!(f.signing_algorithm, "RS256");
        assert_eq!(f.token_lifetime, Duration::from_secs(300));
        let e = raw("kind = \"aws-federation\"\ntenant_id = \"t\"").unwrap_err();
        assert!(e.contains("credential.client_id: required"), "{e}");
        let e = raw("kind = \"aws-federation\"\nclient_id = \"c\"\ntenant_id = \"t\"\nsigning_algorithm = \"HS256\"").unwrap_err();
        assert!(e.contains("credential.signing_algorithm"), "{e}");
        let e = raw("kind = \"aws-federation\"\nclient_id = \"c\"\ntenant_id = \"t\"\ntoken_lifetime = \"2h\"").unwrap_err();
        assert!(e.contains("credential.token_lifetime"), "{e}");
        let e =
            raw("kind = \"aws-federation\"\nclient_id = \"c\"\ntenant_id = \"t\"\nkey_id = \"k\"")
                .unwrap_err();
        assert!(e.contains("credential.key_id: not used"), "{e}");
        assert!(raw("kind = \"aws-federation\"\nclientid = \"c\"").is_err());
        let e = raw("kind = \"password\"").unwrap_err();
        assert!(e.contains("kind"), "{e}");
    }

    #[test]
    fn certificate_must_be_readable_and_a_certificate() {
        let e = raw("kind = \"kms-certificate\"\nclient_id = \"c\"\ntenant_id = \"t\"\nkey_id = \"k\"\ncertificate = \"/nonexistent/cert.pem\"").unwrap_err();
        assert!(e.contains("credential.certificate: cannot read"), "{e}");
        let e = raw(
            "kind = \"kms-certificate\"\nclient_id = \"c\"\ntenant_id = \"t\"\ncertificate = \"x\"",
        )
        .unwrap_err();
        assert!(e.contains("credential.key_id: required"), "{e}");
        assert_eq!(raw("kind = \"secret\"").unwrap(), CredentialConfig::Secret);
        assert!(raw("kind = \"secret\"\nclient_id = \"c\"").is_err());
    }
}
