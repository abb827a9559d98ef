//! Turning a refusal of either role into the local reply sent instead of the
//! upstream's.
//!
//! Status, code, description and metric come only from the refusal tables
//! ([`crate::error`]); this module decides formatting, never policy. Nothing from the request (least of
//! all the token) is ever echoed: the reply is built from static descriptions,
//! the configured realm and the rule's configured scope values.
//!
//! - 401 without credentials: `WWW-Authenticate: Bearer realm="..."` only
//!   (RFC 6750 3.1: no error code when no token was sent).
//! - 401 with a bad token: `..., error="invalid_token", error_description="..."`.
//! - 403: `..., error="insufficient_scope", error_description="..."` plus
//!   `scope="..."` when the rule names roles/scopes.
//! - 503: no challenge (the caller's credentials are not at fault), `retry-after`.
//! - the caller role's refusals: no challenge; the body's `error` names the
//!   reason and `error_description` the cause.
//!
//! The body is always `{"error": "...", "error_description": "..."}` with
//! `content-type: application/json` and `cache-control: no-store`.

use serde::Serialize;

use crate::error::{Denial, ErrorCode, ErrorSpec, Reason};

/// A reply produced by the filter itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u16,
    /// Lower-case names (HTTP/2 style, as Envoy stores them).
    pub headers: Vec<(String, String)>,
    /// JSON: `{"error": "...", "error_description": "..."}`.
    pub body: String,
}

/// Seconds a client should wait before retrying a 503: roughly one fetch
/// (the JWKS, or the agent's token).
pub const RETRY_AFTER_SECS: u32 = 5;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// Builds the reply for any refusal of either role. Status, challenge, body
/// `error` and `retry-after` come from the reason's table row; `description`
/// replaces the row's (the caller role names the cause, e.g. the agent's
/// failure); `required_scope` is announced with `insufficient_scope`.
pub fn local_response(
    reason: Reason,
    description: Option<&str>,
    realm: &str,
    required_scope: Option<&str>,
) -> LocalResponse {
    let spec = reason.spec();
    let description = description.unwrap_or(spec.description);
    let mut headers = Vec::with_capacity(4);
    if let Some(challenge) = challenge(&spec, description, realm, required_scope) {
        headers.push(("www-authenticate".to_string(), challenge));
    }
    if spec.status == 503 {
        headers.push(("retry-after".to_string(), RETRY_AFTER_SECS.to_string()));
    }
    headers.push(("content-type".to_string(), "application/json".to_string()));
    // Refusals must not be cached by any intermediary.
    headers.push(("cache-control".to_string(), "no-store".to_string()));

    let body = ErrorBody {
        error: spec.body_error(),
        error_description: description,
    };
    LocalResponse {
        status: spec.status,
        headers,
        body: body_json(&body),
    }
}

/// Builds the reply for a request the callee role refused.
pub fn denial_response(denial: &Denial, realm: &str) -> LocalResponse {
    local_response(
        denial.error.into(),
        None,
        realm,
        denial.required_scope.as_deref(),
    )
}

/// The `WWW-Authenticate` value, or `None` when the caller's credentials are
/// not at fault (503, and the caller role's refusals).
fn challenge(
    spec: &ErrorSpec,
    description: &str,
    realm: &str,
    required_scope: Option<&str>,
) -> Option<String> {
    if !spec.code.challenges() {
        return None;
    }
    let mut value = format!("Bearer realm={}", quoted(realm));
    if let Some(code) = spec.code.challenge_code() {
        value.push_str(&format!(", error={}", quoted(code)));
        value.push_str(&format!(", error_description={}", quoted(description)));
        let scope = required_scope.filter(|s| !s.is_empty());
        if let (ErrorCode::InsufficientScope, Some(scope)) = (spec.code, scope) {
            value.push_str(&format!(", scope={}", quoted(scope)));
        }
    }
    Some(value)
}

/// An RFC 9110 quoted-string: `"` and `\` are backslash-escaped. Control
/// characters cannot occur (realm and scopes are validated at configuration
/// time, descriptions are static) but are dropped here as a last line of
/// defence against header injection.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn body_json(body: &ErrorBody<'_>) -> String {
    // Serializing two strings cannot fail; the fallback keeps the reply valid
    // JSON even so, rather than panicking in the request path.
    serde_json::to_string(body).unwrap_or_else(|_| String::from(r#"{"error":"server_error"}"#))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;
    use crate::error::{AuthError, OutboundError};
    use serde_json::Value;

    fn header<'a>(response: &'a LocalResponse, name: &str) -> Option<&'a str> {
        let mut found = response.headers.iter().filter(|(n, _)| n == name);
        let value = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{name} set twice");
        value
    }

    fn respond(error: AuthError) -> LocalResponse {
        denial_response(&Denial::from(error), "fraud-detector")
    }

    #[test]
    fn missing_token_announces_only_the_realm() {
        let r = respond(AuthError::TokenMissing);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(r#"Bearer realm="fraud-detector""#)
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(body["error_description"], "missing bearer token");
    }

    #[test]
    fn invalid_token() {
        let r = respond(AuthError::Expired);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(
                r#"Bearer realm="fraud-detector", error="invalid_token", error_description="token expired""#
            )
        );
        assert_eq!(
            r.body,
            r#"{"error":"invalid_token","error_description":"token expired"}"#
        );
        assert_eq!(header(&r, "retry-after"), None);
    }

    #[test]
    fn insufficient_scope_with_and_without_scope() {
        let denial = Denial {
            error: AuthError::PermissionMissing,
            required_scope: Some("Fraud.Scan Fraud.Read".into()),
        };
        let r = denial_response(&denial, "fraud-detector");
        assert_eq!(r.status, 403);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(concat!(
                r#"Bearer realm="fraud-detector", error="insufficient_scope", "#,
                r#"error_description="missing required role or scope", scope="Fraud.Scan Fraud.Read""#
            ))
        );
        let r = respond(AuthError::CallerNotAllowed);
        assert_eq!(r.status, 403);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(
                r#"Bearer realm="fraud-detector", error="insufficient_scope", error_description="caller application not allowed""#
            )
        );
        assert_eq!(
            r.body,
            r#"{"error":"insufficient_scope","error_description":"caller application not allowed"}"#
        );
    }

    #[test]
    fn empty_scope_is_not_announced() {
        let denial = Denial {
            error: AuthError::PermissionMissing,
            required_scope: Some(String::new()),
        };
        let r = denial_response(&denial, "r");
        assert!(!header(&r, "www-authenticate").unwrap().contains("scope=\""));
    }

    #[test]
    fn scope_is_only_sent_with_insufficient_scope() {
        let denial = Denial {
            error: AuthError::Expired,
            required_scope: Some("Fraud.Scan".into()),
        };
        let r = denial_response(&denial, "r");
        assert!(!header(&r, "www-authenticate").unwrap().contains("scope="));
    }

    #[test]
    fn unavailable_keys_are_not_blamed_on_the_caller() {
        for error in [AuthError::KeysUnavailable, AuthError::KeysWaitTimedOut] {
            let r = respond(error);
            assert_eq!(r.status, 503);
            assert_eq!(header(&r, "www-authenticate"), None);
            assert_eq!(header(&r, "retry-after"), Some("5"));
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
        }
    }

    #[test]
    fn realm_and_scope_are_quote_escaped() {
        let denial = Denial {
            error: AuthError::PermissionMissing,
            required_scope: Some(r#"a"b\c"#.into()),
        };
        let r = denial_response(&denial, "my \"api\"\r\n\\");
        let challenge = header(&r, "www-authenticate").unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="my \"api\"\\", "#),
            "{challenge}"
        );
        assert!(challenge.ends_with(r#"scope="a\"b\\c""#), "{challenge}");
        assert!(!challenge.contains('\r') && !challenge.contains('\n'));
    }

    #[test]
    fn every_error_gets_a_consistent_reply() {
        for reason in Reason::all() {
            let spec = reason.spec();
            let error = reason;
            let r = local_response(reason, None, "fraud-detector", None);
            assert_eq!(r.status, spec.status, "{error:?}");
            assert_eq!(header(&r, "content-type"), Some("application/json"));
            assert_eq!(header(&r, "cache-control"), Some("no-store"));
            assert_eq!(
                header(&r, "www-authenticate").is_some(),
                matches!(reason, Reason::Inbound(_)) && spec.status != 503,
                "{error:?}"
            );
            assert_eq!(
                header(&r, "retry-after"),
                (spec.status == 503).then_some("5"),
                "{error:?}"
            );
            for (name, value) in &r.headers {
                assert_eq!(name, &name.to_ascii_lowercase());
                assert!(!value.chars().any(|c| c.is_control()), "{error:?}");
            }
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error_description"], spec.description, "{error:?}");
            assert_eq!(body.as_object().unwrap().len(), 2);
        }
    }

    #[test]
    fn the_caller_roles_refusals_name_the_cause_without_a_challenge() {
        let r = local_response(
            OutboundError::TokenUnavailable.into(),
            Some("agent down"),
            "ignored",
            None,
        );
        assert_eq!(r.status, 503);
        assert_eq!(header(&r, "www-authenticate"), None);
        assert_eq!(header(&r, "retry-after"), Some("5"));
        assert_eq!(
            r.body,
            r#"{"error":"token_unavailable","error_description":"agent down"}"#
        );
        let r = local_response(
            OutboundError::DestinationNotConfigured.into(),
            Some("no outbound destination is configured for x"),
            "",
            None,
        );
        assert_eq!((r.status, header(&r, "retry-after")), (403, None));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "destination_not_configured");
    }

    #[test]
    fn a_filter_that_cannot_decide_fails_closed_with_503() {
        let r = local_response(
            AuthError::FilterUnavailable.into(),
            Some("filter busy"),
            "r",
            None,
        );
        assert_eq!((r.status, header(&r, "retry-after")), (503, Some("5")));
        assert_eq!(header(&r, "www-authenticate"), None);
        assert_eq!(
            r.body,
            r#"{"error":"temporarily_unavailable","error_description":"filter busy"}"#
        );
    }
}
