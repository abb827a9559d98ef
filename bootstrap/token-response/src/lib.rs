//! Parser for the Entra ID v2 token endpoint's responses (`/oauth2/v2.0/token`), used by the `bootstrap` agent.
//!
//! Pure and panic-free on any input (a fuzz target drives [`parse_response`]). Success:
//! `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"…"}` (maybe `refresh_in`);
//! errors: `{"error":"invalid_client","error_description":"AADSTS7000215: …","error_codes":[7000215],
//! "correlation_id":"…","trace_id":"…","timestamp":"…"}`.
//!
//! A crate of its own, with the [`text`] helpers it uses, so that the fuzz target builds exactly this code
//! without the agent's AWS SDK, axum and TLS stack.

pub mod text;

use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Largest body we accept from the token endpoint; a real response is a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest lifetime we believe: Entra issues at most 24 hours (configurable lifetimes); anything far beyond
/// is a broken or hostile endpoint and would make us serve a token long after its real expiry.
const MAX_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);

/// A successful client-credentials response.
pub struct TokenResponse {
    /// The bearer token; redacted in `Debug`.
    pub access_token: SecretString,
    /// Always `Bearer` (checked case-insensitively, normalised).
    pub token_type: String,
    /// `expires_in`: lifetime from the moment the response was received.
    pub expires_in: Duration,
    /// `ext_expires_in` when present (Entra's outage-resilience extension; informational).
    pub ext_expires_in: Option<Duration>,
    /// `refresh_in` when present and sensible (Entra's hint for when to refresh).
    pub refresh_in: Option<Duration>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("ext_expires_in", &self.ext_expires_in)
            .field("refresh_in", &self.refresh_in)
            .finish()
    }
}

/// An OAuth2 error answered by Entra, with the parts operators need to open a support case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraError {
    /// HTTP status of the response.
    pub status: u16,
    /// OAuth2 `error` (`invalid_client`, `invalid_scope`, …).
    pub error: String,
    /// The AADSTS code, from `error_codes[0]` or parsed out of `error_description`.
    pub aadsts: Option<u32>,
    /// `error_description` without the trailing "Trace ID / Correlation ID / Timestamp" block.
    pub description: Option<String>,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
    pub timestamp: Option<String>,
}

impl EntraError {
    /// `invalid_client`: wrong or expired client secret (AADSTS7000215, 7000222) — possibly rotated.
    pub fn is_invalid_client(&self) -> bool {
        self.error == "invalid_client"
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(code) = self.aadsts {
            write!(f, " AADSTS{code}")?;
        }
        write!(f, " (HTTP {})", self.status)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(c) = &self.correlation_id {
            write!(f, " [correlation_id={c}")?;
            if let Some(t) = &self.trace_id {
                write!(f, " trace_id={t}")?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

/// Why a response could not be turned into a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Entra (or a compatible IdP) answered an OAuth2 error object (boxed: errors are the cold path).
    Entra(Box<EntraError>),
    /// The response is not a usable token response nor an OAuth2 error (HTML from a proxy, truncated JSON,
    /// missing `access_token`, absurd lifetime…). `detail` never contains the token.
    Malformed { status: u16, detail: String },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Entra(e) => e.fmt(f),
            ResponseError::Malformed { status, detail } => {
                write!(
                    f,
                    "unusable token endpoint response (HTTP {status}): {detail}"
                )
            }
        }
    }
}

/// `expires_in` and friends are numbers in v2 responses but strings in v1 ones; accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Int(u64),
    Float(f64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<u64> {
        match self {
            Seconds::Int(n) => Some(*n),
            Seconds::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e12 => Some(*f as u64),
            Seconds::Float(_) => None,
            Seconds::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct RawSuccess {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<Seconds>,
    ext_expires_in: Option<Seconds>,
    refresh_in: Option<Seconds>,
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<serde_json::Value>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
    timestamp: Option<String>,
}

/// Parses one token endpoint response. 2xx must be a valid token response; anything else is reported as an
/// [`EntraError`] when the body is an OAuth2 error object, else as [`ResponseError::Malformed`].
pub fn parse_response(status: u16, body: &[u8]) -> Result<TokenResponse, ResponseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(malformed(
            status,
            format!("body larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if (200..300).contains(&status) {
        parse_success(status, body)
    } else {
        Err(parse_error(status, body))
    }
}

fn malformed(status: u16, detail: String) -> ResponseError {
    ResponseError::Malformed { status, detail }
}

fn parse_success(status: u16, body: &[u8]) -> Result<TokenResponse, ResponseError> {
    // serde_json's syntax errors carry only line/column, never input text, so they are safe to report.
    let raw: RawSuccess = serde_json::from_slice(body)
        .map_err(|e| malformed(status, format!("body is not a JSON token response ({e})")))?;
    let token = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed(status, "no access_token".into()))?;
    // The token ends up in an `Authorization` header: insist on RFC 6750 b64token characters so a broken
    // endpoint can never inject header syntax.
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
    {
        return Err(malformed(
            status,
            "access_token has characters outside RFC 6750 b64token".into(),
        ));
    }
    let access_token = SecretString::from(token);
    let token_type = match raw.token_type.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
        Some(other) => {
            return Err(malformed(
                status,
                format!(
                    "token_type {:?} is not Bearer",
                    crate::text::sanitize(other, 32)
                ),
            ))
        }
        None => return Err(malformed(status, "no token_type".into())),
    };
    let expires_in = match raw.expires_in.as_ref().and_then(Seconds::get) {
        Some(0) | None => return Err(malformed(status, "missing or zero expires_in".into())),
        Some(s) => Duration::from_secs(s),
    };
    if expires_in > MAX_LIFETIME {
        return Err(malformed(
            status,
            format!("expires_in {}s is implausibly long", expires_in.as_secs()),
        ));
    }
    let ext_expires_in = raw
        .ext_expires_in
        .as_ref()
        .and_then(Seconds::get)
        .map(Duration::from_secs);
    // A refresh hint of zero or beyond expiry is meaningless; ignore it rather than reject the token.
    let refresh_in = raw
        .refresh_in
        .as_ref()
        .and_then(Seconds::get)
        .map(Duration::from_secs)
        .filter(|r| !r.is_zero() && *r < expires_in);
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in,
        ext_expires_in,
        refresh_in,
    })
}

fn parse_error(status: u16, body: &[u8]) -> ResponseError {
    let raw: RawError = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => return malformed(status, describe_non_json(body)),
    };
    let Some(error) = raw.error.filter(|e| !e.is_empty()) else {
        return malformed(status, "JSON body without an OAuth2 \"error\" field".into());
    };
    let aadsts = raw
        .error_codes
        .first()
        .and_then(|v| v.as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| {
            raw.error_description
                .as_deref()
                .and_then(aadsts_from_description)
        });
    ResponseError::Entra(Box::new(EntraError {
        status,
        error: crate::text::sanitize(&error, 64),
        aadsts,
        description: raw.error_description.as_deref().map(short_description),
        correlation_id: raw.correlation_id.map(|c| crate::text::sanitize(&c, 64)),
        trace_id: raw.trace_id.map(|t| crate::text::sanitize(&t, 64)),
        timestamp: raw.timestamp.map(|t| crate::text::sanitize(&t, 64)),
    }))
}

/// A short, log-safe description of a non-JSON error body (often an HTML page from a proxy or gateway).
fn describe_non_json(body: &[u8]) -> String {
    if body.is_empty() {
        return "empty body".into();
    }
    let text = String::from_utf8_lossy(body);
    format!("non-JSON body: {}", crate::text::sanitize(text.trim(), 120))
}

/// Finds `AADSTS<digits>` in a description (older endpoints and some proxies omit `error_codes`).
pub fn aadsts_from_description(description: &str) -> Option<u32> {
    let start = description.find("AADSTS")? + "AADSTS".len();
    let digits: String = description
        .get(start..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Drops the `AADSTSnnn: ` prefix (the code is shown separately) and the `Trace ID: … Correlation ID: …
/// Timestamp: …` tail (shown separately, from the structured fields), and flattens whitespace.
fn short_description(description: &str) -> String {
    let mut d = description.trim();
    if let Some(rest) = d.strip_prefix("AADSTS") {
        if let Some(colon) = rest.find(':') {
            if rest
                .get(..colon)
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
            {
                d = rest.get(colon + 1..).unwrap_or("").trim_start();
            }
        }
    }
    if let Some(i) = d.find("Trace ID:") {
        d = d.get(..i).unwrap_or(d);
    }
    let flat = d.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::sanitize(&flat, 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const INVALID_CLIENT: &str = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6'.\r\nTrace ID: 0e2f7c7a-0000-4d8e-9c4a-5c7d1e0f1200\r\nCorrelation ID: 8a3c6d2e-1111-4b5a-9c3d-2e1f0a9b8c7d\r\nTimestamp: 2026-11-28 21:40:00Z","error_codes":[7000215],"timestamp":"2026-11-28 21:40:00Z","trace_id":"0e2f7c7a-0000-4d8e-9c4a-5c7d1e0f1200","correlation_id":"8a3c6d2e-1111-4b5a-9c3d-2e1f0a9b8c7d","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#;

    #[test]
    fn parses_success() {
        let body = br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.eyJhdWQi.c2ln"}"#;
        let t = parse_response(200, body).unwrap();
        assert_eq!(t.access_token.expose_secret(), "eyJ0eXAi.eyJhdWQi.c2ln");
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.expires_in, Duration::from_secs(3599));
        assert_eq!(t.ext_expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(t.refresh_in, None);
    }

    #[test]
    fn accepts_string_numbers_refresh_in_and_lowercase_bearer() {
        let body = br#"{"token_type":"bearer","expires_in":"7200","refresh_in":3600,"access_token":"abc"}"#;
        let t = parse_response(200, body).unwrap();
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.expires_in, Duration::from_secs(7200));
        assert_eq!(t.refresh_in, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn ignores_nonsense_refresh_in() {
        let body =
            br#"{"token_type":"Bearer","expires_in":60,"refresh_in":600,"access_token":"abc"}"#;
        assert_eq!(parse_response(200, body).unwrap().refresh_in, None);
        let body =
            br#"{"token_type":"Bearer","expires_in":60,"refresh_in":0,"access_token":"abc"}"#;
        assert_eq!(parse_response(200, body).unwrap().refresh_in, None);
    }

    #[test]
    fn rejects_unusable_success_bodies() {
        for body in [
            &br#"{"token_type":"Bearer","expires_in":3599}"#[..],
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":""}"#,
            br#"{"token_type":"Bearer","expires_in":0,"access_token":"abc"}"#,
            br#"{"token_type":"Bearer","access_token":"abc"}"#,
            br#"{"token_type":"pop","expires_in":3599,"access_token":"abc"}"#,
            br#"{"token_type":"Bearer","expires_in":99999999,"access_token":"abc"}"#,
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"abc\r\nX-Evil: 1"}"#,
            br#"{"token_type":"Bearer","expires_in":-5,"access_token":"abc"}"#,
            b"<html>ok</html>",
            b"",
        ] {
            match parse_response(200, body) {
                Err(ResponseError::Malformed { status: 200, .. }) => {}
                other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn malformed_detail_never_echoes_the_token() {
        let body = br#"{"token_type":"Bearer","expires_in":3599,"access_token":"SECRET TOKEN"}"#;
        let err = parse_response(200, body).unwrap_err().to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn parses_entra_error_with_codes_and_ids() {
        let ResponseError::Entra(e) = parse_response(401, INVALID_CLIENT.as_bytes()).unwrap_err()
        else {
            panic!("expected an Entra error");
        };
        assert!(e.is_invalid_client());
        assert_eq!(e.aadsts, Some(7_000_215));
        assert_eq!(
            e.correlation_id.as_deref(),
            Some("8a3c6d2e-1111-4b5a-9c3d-2e1f0a9b8c7d")
        );
        assert_eq!(
            e.trace_id.as_deref(),
            Some("0e2f7c7a-0000-4d8e-9c4a-5c7d1e0f1200")
        );
        let d = e.description.clone().unwrap();
        assert!(d.starts_with("Invalid client secret provided."), "{d}");
        assert!(!d.contains("Trace ID"), "{d}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("invalid_client AADSTS7000215 (HTTP 401): Invalid client secret"),
            "{shown}"
        );
        assert!(
            shown.contains("correlation_id=8a3c6d2e-1111-4b5a-9c3d-2e1f0a9b8c7d"),
            "{shown}"
        );
    }

    #[test]
    fn aadsts_from_description_when_codes_missing() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired."}"#;
        let ResponseError::Entra(e) = parse_response(400, body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.aadsts, Some(7_000_222));
        assert_eq!(
            e.description.as_deref(),
            Some("The provided client secret keys are expired.")
        );
        assert_eq!(aadsts_from_description("no code here"), None);
        assert_eq!(aadsts_from_description("AADSTS"), None);
        assert_eq!(
            aadsts_from_description("x AADSTS90002: Tenant not found"),
            Some(90002)
        );
    }

    #[test]
    fn non_json_and_odd_error_bodies() {
        match parse_response(502, b"<html><body>Bad gateway</body></html>").unwrap_err() {
            ResponseError::Malformed {
                status: 502,
                detail,
            } => assert!(detail.contains("Bad gateway")),
            other => panic!("{other:?}"),
        }
        match parse_response(503, b"").unwrap_err() {
            ResponseError::Malformed { detail, .. } => assert_eq!(detail, "empty body"),
            other => panic!("{other:?}"),
        }
        match parse_response(400, br#"{"message":"nope"}"#).unwrap_err() {
            ResponseError::Malformed { .. } => {}
            other => panic!("{other:?}"),
        }
        // error_codes with junk types must not panic nor invent a code.
        let ResponseError::Entra(e) =
            parse_response(400, br#"{"error":"invalid_scope","error_codes":["x",-1]}"#)
                .unwrap_err()
        else {
            panic!()
        };
        assert_eq!(e.aadsts, None);
    }

    #[test]
    fn oversized_body_is_rejected() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(
            parse_response(200, &big),
            Err(ResponseError::Malformed { .. })
        ));
    }

    #[test]
    fn debug_redacts_token() {
        let body =
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"very.secret.value"}"#;
        let t = parse_response(200, body).unwrap();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("very.secret"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }
}
