//! Reading the agent's answer to `GET /v1/token?scope=…`.
//!
//! 200 `{"access_token","token_type":"Bearer","expires_at","expires_in","scope","name"}`;
//! 401 wrong key; 404 unknown scope; 503 `{"error":"token_unavailable","reason",
//! "retry_after_secs"}`. Anything else (including Envoy's own 503 when the agent
//! is not listening) is a failure with a short, sanitised reason.
//!
//! A failure's text goes to logs, to the shared state and into the 503 body a
//! caller sees. It never contains a token: only error bodies are quoted, and
//! only their `error`/`reason` fields (or a prefix of a non-JSON body).

use crate::fetcher::single_flight::HostFailure;
use serde::Deserialize;

/// Longest token accepted from the agent (Entra tokens are 1.5-3 KB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest piece of an error body quoted in a reason.
const MAX_QUOTE_CHARS: usize = 200;

/// A usable token as the agent described it.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentToken {
    pub access_token: String,
    pub expires_in_ms: u64,
}

impl core::fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AgentToken")
            .field(
                "access_token",
                &format_args!(
                    "sha256:{}",
                    crate::fingerprint::fingerprint(&self.access_token)
                ),
            )
            .field("expires_in_ms", &self.expires_in_ms)
            .finish()
    }
}

/// Why no token came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFailure {
    /// The host refused the callout (unknown cluster, ...).
    DispatchFailed(String),
    /// No HTTP response: connection failure, reset or timeout.
    NoResponse,
    /// 401: the key in the Envoy config is not the agent's.
    WrongKey,
    /// 404: the agent has no such scope configured.
    UnknownScope(String),
    /// The agent's 503: it has no valid token (it says why and when to retry).
    Unavailable {
        reason: String,
        retry_after_ms: Option<u64>,
    },
    /// Any other status (Envoy's 503 "upstream connect error" when the agent is down).
    HttpStatus { status: u16, detail: String },
    /// A 200 whose body is not a usable token.
    Malformed(&'static str),
    /// Shared data could not be written.
    StoreFailed,
}

impl AgentFailure {
    /// The agent's own hint of when to try again, if it gave one.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            AgentFailure::Unavailable { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }
}

impl From<HostFailure> for AgentFailure {
    fn from(failure: HostFailure) -> AgentFailure {
        match failure {
            HostFailure::DispatchRefused(reason) => AgentFailure::DispatchFailed(reason),
            HostFailure::StoreFailed => AgentFailure::StoreFailed,
        }
    }
}

impl core::fmt::Display for AgentFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AgentFailure::DispatchFailed(reason) => write!(f, "callout to the agent failed: {reason}"),
            AgentFailure::NoResponse => f.write_str("agent did not answer (timeout or connection failure)"),
            AgentFailure::WrongKey => f.write_str(
                "agent refused the agent key (401): the key in the Envoy config does not match --agent-key-file",
            ),
            AgentFailure::UnknownScope(reason) => write!(f, "agent has no such scope (404): {reason}"),
            AgentFailure::Unavailable { reason, .. } => write!(f, "agent has no valid token: {reason}"),
            AgentFailure::HttpStatus { status, detail } => {
                write!(f, "agent cluster answered HTTP {status}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            AgentFailure::Malformed(what) => write!(f, "agent answer unusable: {what}"),
            AgentFailure::StoreFailed => f.write_str("shared data write failed"),
        }
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    reason: Option<String>,
    retry_after_secs: Option<u64>,
}

/// Turns a callout response into a token or a failure.
pub fn parse_agent_response(status: Option<u16>, body: &[u8]) -> Result<AgentToken, AgentFailure> {
    match status {
        None => Err(AgentFailure::NoResponse),
        Some(200) => parse_token(body),
        Some(401) => Err(AgentFailure::WrongKey),
        Some(404) => Err(AgentFailure::UnknownScope(error_detail(body))),
        Some(503) => match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody {
                error: Some(error),
                reason,
                retry_after_secs,
            }) if error == "token_unavailable" => Err(AgentFailure::Unavailable {
                reason: sanitize(reason.as_deref().unwrap_or("no reason given")),
                retry_after_ms: retry_after_secs.map(|s| s.saturating_mul(1000)),
            }),
            // Not the agent speaking: Envoy's own 503 (agent not listening).
            _ => Err(AgentFailure::HttpStatus {
                status: 503,
                detail: error_detail(body),
            }),
        },
        Some(status) => Err(AgentFailure::HttpStatus {
            status,
            detail: error_detail(body),
        }),
    }
}

fn parse_token(body: &[u8]) -> Result<AgentToken, AgentFailure> {
    // A 200 body holds a token: it is never quoted in an error.
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|_| AgentFailure::Malformed("200 without a JSON token object"))?;
    let access_token = parsed
        .access_token
        .ok_or(AgentFailure::Malformed("no access_token"))?;
    if access_token.is_empty() || access_token.len() > MAX_TOKEN_BYTES {
        return Err(AgentFailure::Malformed("access_token empty or too long"));
    }
    if !is_b64token(&access_token) {
        // It becomes a header value: anything outside RFC 6750's b64token
        // (CR/LF in particular) could smuggle headers.
        return Err(AgentFailure::Malformed(
            "access_token has characters not allowed in a bearer token",
        ));
    }
    if let Some(kind) = parsed.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(AgentFailure::Malformed("token_type is not Bearer"));
        }
    }
    let expires_in = parsed
        .expires_in
        .ok_or(AgentFailure::Malformed("no expires_in"))?;
    if expires_in == 0 {
        return Err(AgentFailure::Malformed(
            "token already expired (expires_in 0)",
        ));
    }
    Ok(AgentToken {
        access_token,
        expires_in_ms: expires_in.saturating_mul(1000),
    })
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// `error: reason` of a JSON error body, else a prefix of the body.
fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error, reason, .. }) if error.is_some() || reason.is_some() => {
            let parts: Vec<&str> = [error.as_deref(), reason.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            sanitize(&parts.join(": "))
        }
        _ => sanitize(&String::from_utf8_lossy(body)),
    }
}

/// Printable, single-line, bounded: it is logged and returned to callers.
fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTE_CHARS)
        .collect();
    if text.chars().count() > MAX_QUOTE_CHARS {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    fn ok_body(token: &str, expires_in: u64) -> Vec<u8> {
        serde_json::json!({
            "access_token": token, "token_type": "Bearer", "expires_at": 1_700_003_599u64,
            "expires_in": expires_in, "scope": "api://x/.default", "name": "x"
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_token_is_read() {
        let t = parse_agent_response(Some(200), &ok_body(JWT, 3599)).unwrap();
        assert_eq!(t.access_token, JWT);
        assert_eq!(t.expires_in_ms, 3_599_000);
        assert!(!format!("{t:?}").contains(JWT), "Debug hides the token");
    }

    #[test]
    fn unusable_tokens_are_refused_without_quoting_them() {
        for (body, what) in [
            (ok_body("a\r\nx-evil: 1", 10), "characters not allowed"),
            (ok_body("", 10), "empty"),
            (ok_body(&"a".repeat(MAX_TOKEN_BYTES + 1), 10), "too long"),
            (ok_body(JWT, 0), "expires_in 0"),
            (br#"{"access_token":"abc"}"#.to_vec(), "no expires_in"),
            (
                br#"{"access_token":"abc","expires_in":5,"token_type":"pop"}"#.to_vec(),
                "not Bearer",
            ),
            (b"<html>".to_vec(), "200 without"),
        ] {
            let e = parse_agent_response(Some(200), &body).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(what), "{text}");
            assert!(!text.contains("abc") && !text.contains(JWT), "{text}");
        }
    }

    #[test]
    fn agent_errors_keep_their_reason() {
        let body = br#"{"error":"token_unavailable","scope":"fraud","reason":"invalid_client AADSTS7000215\n(HTTP 401)","retry_after_secs":3}"#;
        let e = parse_agent_response(Some(503), body).unwrap_err();
        assert_eq!(
            e,
            AgentFailure::Unavailable {
                reason: "invalid_client AADSTS7000215 (HTTP 401)".into(),
                retry_after_ms: Some(3_000)
            }
        );
        assert_eq!(e.retry_after_ms(), Some(3_000));
        assert_eq!(
            parse_agent_response(Some(401), b"{}"),
            Err(AgentFailure::WrongKey)
        );
        let e = parse_agent_response(
            Some(404),
            br#"{"error":"unknown_scope","reason":"x is not a configured scope"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent has no such scope (404): unknown_scope: x is not a configured scope"
        );
        assert_eq!(
            parse_agent_response(None, b""),
            Err(AgentFailure::NoResponse)
        );
    }

    #[test]
    fn envoys_own_503_is_not_the_agent() {
        let e = parse_agent_response(
            Some(503),
            b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        )
        .unwrap_err();
        assert!(matches!(e, AgentFailure::HttpStatus { status: 503, .. }));
        assert!(e
            .to_string()
            .starts_with("agent cluster answered HTTP 503: upstream connect error"));
        let long = "x".repeat(1000);
        let e = parse_agent_response(Some(500), long.as_bytes()).unwrap_err();
        assert!(e.to_string().len() < 300);
    }
}
