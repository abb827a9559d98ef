//! One client-credentials request to `{authority}/{tenant}/oauth2/v2.0/token`, classified for the retry logic.

use super::backoff::parse_retry_after;
use super::parse::{parse_response, EntraError, ResponseError, TokenResponse, MAX_BODY_BYTES};
use crate::credential::{ClientAuth, JWT_BEARER_ASSERTION_TYPE};
use crate::secret::Credentials;
use std::fmt;
use std::time::{Duration, SystemTime};

/// Public-cloud authority; sovereign clouds and tests override it.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Why one token request failed, sorted by what the caller should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// Connect/TLS/timeout/reset: retry with backoff.
    Network(String),
    /// 429: wait `retry_after` when given, else back off.
    RateLimited {
        retry_after: Option<Duration>,
        entra: Option<Box<EntraError>>,
    },
    /// 5xx or an unusable response: retry with backoff (honouring `Retry-After` if sent).
    Server {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// `invalid_client` (AADSTS7000215 wrong secret, 7000222 expired…): re-read the secret once.
    InvalidClient(Box<EntraError>),
    /// Any other OAuth2 error (invalid_scope, unauthorized_client, unknown tenant…): retrying will not help
    /// until someone changes the configuration.
    Rejected(Box<EntraError>),
}

impl FetchError {
    /// Transient failures worth an immediate backoff-and-retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Network(_) | FetchError::RateLimited { .. } | FetchError::Server { .. }
        )
    }

    /// Server-requested wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::RateLimited { retry_after, .. }
            | FetchError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The Entra error object, if the IdP sent one.
    pub fn entra(&self) -> Option<&EntraError> {
        match self {
            FetchError::RateLimited { entra, .. } => entra.as_deref(),
            FetchError::InvalidClient(e) | FetchError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Network(d) => write!(f, "cannot reach the token endpoint: {d}"),
            FetchError::RateLimited { retry_after, entra } => {
                write!(f, "throttled by the identity provider (HTTP 429")?;
                if let Some(r) = retry_after {
                    write!(f, ", Retry-After {}s", r.as_secs())?;
                }
                write!(f, ")")?;
                if let Some(e) = entra {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            FetchError::Server { status, detail, .. } => {
                write!(f, "identity provider error (HTTP {status}): {detail}")
            }
            FetchError::InvalidClient(e) => {
                write!(f, "identity provider rejected the client credentials: {e}")
            }
            FetchError::Rejected(e) => {
                write!(f, "identity provider rejected the token request: {e}")
            }
        }
    }
}

/// The token endpoint of one authority, with a reused connection pool.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    http: reqwest::Client,
    authority: String,
}

impl TokenEndpoint {
    /// `authority` is e.g. `https://login.microsoftonline.com`, `https://login.microsoftonline.us` or a test
    /// server `http://127.0.0.1:PORT`. `timeout` bounds each whole request.
    pub fn new(authority: &str, timeout: Duration) -> Result<Self, String> {
        let authority = authority.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&authority)
            .map_err(|e| format!("authority {authority:?} is not a URL: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => return Err(format!("authority {authority:?} has no host")),
        };
        match url.scheme() {
            "https" => {}
            // Plain HTTP would send the client secret in clear: only tolerated to a loopback test IdP.
            "http" if loopback => {}
            s => {
                return Err(format!(
                "authority must be https:// (http:// only for loopback test servers), got {s}://"
            ))
            }
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("entragate-bootstrap/", env!("CARGO_PKG_VERSION")))
            // Token responses are never redirected; following one could send the secret elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            // A corporate HTTP(S)_PROXY must not capture requests meant for a local test IdP.
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(TokenEndpoint { http, authority })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`. The tenant was validated when the secret was parsed.
    pub fn url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority)
    }

    /// Performs one request for `scope` (`api://…/.default`) with a client secret.
    pub async fn request(
        &self,
        credentials: &Credentials,
        scope: &str,
    ) -> Result<TokenResponse, FetchError> {
        self.request_as(
            &credentials.client_id,
            &credentials.tenant_id,
            ClientAuth::Secret(credentials.client_secret()),
            scope,
        )
        .await
    }

    /// Performs one request for `scope` as `client_id` of `tenant`, authenticated by `auth`.
    pub async fn request_as(
        &self,
        client_id: &str,
        tenant: &str,
        auth: ClientAuth<'_>,
        scope: &str,
    ) -> Result<TokenResponse, FetchError> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", scope),
        ];
        match auth {
            ClientAuth::Secret(secret) => form.push(("client_secret", secret)),
            ClientAuth::Assertion(assertion) => {
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        let response = self
            .http
            .post(self.url(tenant))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| FetchError::Network(describe_reqwest(&e)))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_limited(response).await.map_err(FetchError::Network)?;
        classify(status, retry_after, &body)
    }
}

/// Reads at most [`MAX_BODY_BYTES`] + 1 bytes (the parser rejects the oversize case).
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

/// Maps status + body to the retry classes.
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<TokenResponse, FetchError> {
    match parse_response(status, body) {
        Ok(token) => Ok(token),
        Err(ResponseError::Entra(e)) if status == 429 => Err(FetchError::RateLimited {
            retry_after,
            entra: Some(e),
        }),
        Err(_) if status == 429 => Err(FetchError::RateLimited {
            retry_after,
            entra: None,
        }),
        Err(ResponseError::Entra(e)) if status >= 500 => Err(FetchError::Server {
            status,
            retry_after,
            detail: e.to_string(),
        }),
        Err(ResponseError::Entra(e)) if e.is_invalid_client() => Err(FetchError::InvalidClient(e)),
        Err(ResponseError::Entra(e)) => Err(FetchError::Rejected(e)),
        // A non-OAuth body (HTML from a gateway, truncated JSON, 200 without a token) is treated as a server
        // hiccup: retrying is the only useful move.
        Err(ResponseError::Malformed { status, detail }) => Err(FetchError::Server {
            status,
            retry_after,
            detail,
        }),
    }
}

/// reqwest's Display hides the cause ("error sending request"): include the chain ("connection refused",
/// "dns error", "operation timed out"…).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut text = crate::text::error_chain(e, 300);
    if e.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        let ok = br#"{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}"#;
        assert!(classify(200, None, ok).is_ok());
        let throttled = classify(429, Some(Duration::from_secs(3)), b"").unwrap_err();
        assert_eq!(
            throttled,
            FetchError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
                entra: None
            }
        );
        assert!(throttled.is_transient());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let e = classify(503, None, b"<html>").unwrap_err();
        assert!(matches!(e, FetchError::Server { status: 503, .. }) && e.is_transient());
        let e = classify(
            500,
            None,
            br#"{"error":"temporarily_unavailable","error_codes":[50001]}"#,
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::Server { status: 500, .. }));
        let e = classify(
            401,
            None,
            br#"{"error":"invalid_client","error_codes":[7000222]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::InvalidClient(x) if x.aadsts == Some(7_000_222))
                && !e.is_transient()
        );
        let e = classify(
            400,
            None,
            br#"{"error":"invalid_scope","error_codes":[70011]}"#,
        )
        .unwrap_err();
        assert!(matches!(&e, FetchError::Rejected(x) if x.error == "invalid_scope"));
        // 200 without a token: a hiccup, retried.
        assert!(classify(200, None, b"{}").unwrap_err().is_transient());
    }

    #[test]
    fn authority_rules() {
        assert!(
            TokenEndpoint::new("https://login.microsoftonline.us/", Duration::from_secs(5)).is_ok()
        );
        assert!(TokenEndpoint::new("http://127.0.0.1:8080", Duration::from_secs(5)).is_ok());
        assert!(TokenEndpoint::new("http://localhost:8080", Duration::from_secs(5)).is_ok());
        assert!(TokenEndpoint::new("http://login.example.com", Duration::from_secs(5)).is_err());
        assert!(TokenEndpoint::new("login.microsoftonline.com", Duration::from_secs(5)).is_err());
        let ep = TokenEndpoint::new("https://login.microsoftonline.com/", Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            ep.url("contoso.onmicrosoft.com"),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }
}
