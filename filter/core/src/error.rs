//! The one error type of the request path.
//!
//! Every reason a request can be refused is a variant of [`AuthError`], and each
//! variant is mapped exactly once (in [`AuthError::spec`]) to the HTTP status, the
//! RFC 6750 error code, the short human description sent to the caller and the
//! metric that counts it. Nothing else in the crate decides a status code.
//!
//! Descriptions are deliberately short and never contain request data: the
//! caller learns *why* it was refused, never an echo of what it sent.

/// RFC 6750 section 3.1 error codes (plus the 503 case, which has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// No credentials were presented: only the realm is announced (RFC 6750 3.1).
    None,
    InvalidToken,
    InsufficientScope,
    /// Not an RFC 6750 code: our dependency (JWKS) failed, not the caller.
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            OAuthErrorCode::None => None,
            OAuthErrorCode::InvalidToken => Some("invalid_token"),
            OAuthErrorCode::InsufficientScope => Some("insufficient_scope"),
            OAuthErrorCode::TemporarilyUnavailable => Some("temporarily_unavailable"),
        }
    }
}

/// Everything the response writer and the metrics need to know about one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorSpec {
    pub status: u16,
    pub code: OAuthErrorCode,
    /// Short reason for `error_description`; never contains request data.
    pub description: &'static str,
    /// Suffix of the denial counter: `entragate.denied.<metric>`.
    pub metric: &'static str,
}

/// Why a request was refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthError {
    // ----- token -----
    TokenMissing,
    AuthorizationHeaderDuplicated,
    AuthorizationSchemeNotBearer,
    TokenTooLong,
    /// Not three dot-separated parts (JWE, truncated, garbage).
    TokenNotCompactJws,
    /// A part is not unpadded base64url.
    TokenNotBase64Url,
    /// The JOSE header is not a JSON object of the expected shape.
    TokenHeaderInvalid,
    /// The claims are not a JSON object, or a registered claim has the wrong type.
    TokenClaimsInvalid,
    /// `alg` is not in the configured allow-list (covers `none` and HMAC confusion).
    AlgorithmNotAllowed,
    /// The header lists a `crit` extension we do not implement (RFC 7515 4.1.11).
    CriticalHeaderUnsupported,
    /// Neither `kid` nor `x5t` names the signing key.
    KeyIdMissing,
    SignatureInvalid,

    // ----- keys -----
    /// The key named by the token is not in the tenant's JWKS, even after a refresh.
    SigningKeyUnknown,
    /// No usable JWKS was ever obtained (or the last one is older than the max staleness).
    KeysUnavailable,
    /// The request waited for a JWKS fetch longer than the configured bound.
    KeysWaitTimedOut,

    // ----- claims -----
    ExpiryMissing,
    Expired,
    NotYetValid,
    /// `iat` is later than now plus the leeway.
    IssuedInFuture,
    IssuerInvalid,
    AudienceInvalid,
    TenantInvalid,
    TenantNotAllowed,
    TokenVersionUnsupported,

    // ----- access -----
    /// No rule matches the route and the default is to deny.
    RouteNotAllowed,
    /// The token lacks the app role(s) or scope(s) the rule requires.
    PermissionMissing,
    /// The calling application (`azp`/`appid`) is not in the rule's allow-list.
    CallerNotAllowed,
    /// Caller restrictions apply but the token does not prove an app identity (`idtyp=app`).
    CallerUnverified,
}

const fn spec(
    status: u16,
    code: OAuthErrorCode,
    description: &'static str,
    metric: &'static str,
) -> ErrorSpec {
    ErrorSpec {
        status,
        code,
        description,
        metric,
    }
}

impl AuthError {
    /// All variants, for defining metrics up front and for exhaustive tests.
    pub const ALL: &'static [AuthError] = &[
        AuthError::TokenMissing,
        AuthError::AuthorizationHeaderDuplicated,
        AuthError::AuthorizationSchemeNotBearer,
        AuthError::TokenTooLong,
        AuthError::TokenNotCompactJws,
        AuthError::TokenNotBase64Url,
        AuthError::TokenHeaderInvalid,
        AuthError::TokenClaimsInvalid,
        AuthError::AlgorithmNotAllowed,
        AuthError::CriticalHeaderUnsupported,
        AuthError::KeyIdMissing,
        AuthError::SignatureInvalid,
        AuthError::SigningKeyUnknown,
        AuthError::KeysUnavailable,
        AuthError::KeysWaitTimedOut,
        AuthError::ExpiryMissing,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::IssuedInFuture,
        AuthError::IssuerInvalid,
        AuthError::AudienceInvalid,
        AuthError::TenantInvalid,
        AuthError::TenantNotAllowed,
        AuthError::TokenVersionUnsupported,
        AuthError::RouteNotAllowed,
        AuthError::PermissionMissing,
        AuthError::CallerNotAllowed,
        AuthError::CallerUnverified,
    ];

    /// The single mapping from reason to status, RFC 6750 code, description and metric.
    pub const fn spec(self) -> ErrorSpec {
        use AuthError as E;
        use OAuthErrorCode::{InsufficientScope, InvalidToken, TemporarilyUnavailable};
        match self {
            // RFC 6750 3.1: a request with no credentials gets no error code.
            E::TokenMissing => spec(
                401,
                OAuthErrorCode::None,
                "missing bearer token",
                "token_missing",
            ),
            E::AuthorizationHeaderDuplicated => spec(
                401,
                InvalidToken,
                "more than one authorization header",
                "authorization_duplicated",
            ),
            E::AuthorizationSchemeNotBearer => spec(
                401,
                InvalidToken,
                "authorization scheme is not bearer",
                "authorization_not_bearer",
            ),
            E::TokenTooLong => spec(401, InvalidToken, "token too long", "token_too_long"),
            E::TokenNotCompactJws => spec(
                401,
                InvalidToken,
                "token is not a signed JWT",
                "token_malformed",
            ),
            E::TokenNotBase64Url => spec(
                401,
                InvalidToken,
                "token is not base64url",
                "token_malformed",
            ),
            E::TokenHeaderInvalid => spec(
                401,
                InvalidToken,
                "token header is invalid",
                "token_malformed",
            ),
            E::TokenClaimsInvalid => spec(
                401,
                InvalidToken,
                "token claims are invalid",
                "token_malformed",
            ),
            E::AlgorithmNotAllowed => spec(
                401,
                InvalidToken,
                "token algorithm not allowed",
                "algorithm_not_allowed",
            ),
            E::CriticalHeaderUnsupported => spec(
                401,
                InvalidToken,
                "unsupported critical header",
                "crit_unsupported",
            ),
            E::KeyIdMissing => spec(
                401,
                InvalidToken,
                "token names no signing key",
                "key_id_missing",
            ),
            E::SignatureInvalid => {
                spec(401, InvalidToken, "invalid signature", "signature_invalid")
            }
            E::SigningKeyUnknown => spec(
                401,
                InvalidToken,
                "signing key not found",
                "signing_key_unknown",
            ),
            // Our dependency failed, not the caller: 503 without blaming the token.
            E::KeysUnavailable => spec(
                503,
                TemporarilyUnavailable,
                "signing keys unavailable",
                "keys_unavailable",
            ),
            E::KeysWaitTimedOut => spec(
                503,
                TemporarilyUnavailable,
                "timed out waiting for signing keys",
                "keys_wait_timeout",
            ),
            E::ExpiryMissing => spec(401, InvalidToken, "token has no expiry", "expiry_missing"),
            E::Expired => spec(401, InvalidToken, "token expired", "expired"),
            E::NotYetValid => spec(401, InvalidToken, "token not yet valid", "not_yet_valid"),
            E::IssuedInFuture => spec(
                401,
                InvalidToken,
                "token issued in the future",
                "issued_in_future",
            ),
            E::IssuerInvalid => spec(401, InvalidToken, "issuer not accepted", "issuer_invalid"),
            E::AudienceInvalid => spec(
                401,
                InvalidToken,
                "audience not accepted",
                "audience_invalid",
            ),
            E::TenantInvalid => spec(401, InvalidToken, "tenant claim invalid", "tenant_invalid"),
            E::TenantNotAllowed => spec(
                401,
                InvalidToken,
                "tenant not allowed",
                "tenant_not_allowed",
            ),
            E::TokenVersionUnsupported => spec(
                401,
                InvalidToken,
                "token version not accepted",
                "version_unsupported",
            ),
            E::RouteNotAllowed => spec(
                403,
                InsufficientScope,
                "no rule allows this route",
                "route_not_allowed",
            ),
            E::PermissionMissing => spec(
                403,
                InsufficientScope,
                "missing required role or scope",
                "permission_missing",
            ),
            E::CallerNotAllowed => spec(
                403,
                InsufficientScope,
                "caller application not allowed",
                "caller_not_allowed",
            ),
            E::CallerUnverified => spec(
                403,
                InsufficientScope,
                "caller identity requires an app token",
                "caller_unverified",
            ),
        }
    }

    pub const fn status(self) -> u16 {
        self.spec().status
    }

    pub const fn description(self) -> &'static str {
        self.spec().description
    }

    pub const fn metric(self) -> &'static str {
        self.spec().metric
    }
}

/// A refusal: the reason, and for a missing permission the RFC 6750 `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub error: AuthError,
    /// The `scope` of `WWW-Authenticate` (e.g. "Fraud.Scan"), only for
    /// [`AuthError::PermissionMissing`].
    pub required_scope: Option<String>,
}

impl From<AuthError> for Denial {
    fn from(error: AuthError) -> Denial {
        Denial {
            error,
            required_scope: None,
        }
    }
}

impl core::fmt::Display for AuthError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_consistent_spec() {
        for e in AuthError::ALL {
            let s = e.spec();
            // The status follows from the code: 403 exactly for insufficient
            // scope, 503 exactly when our dependency failed, 401 otherwise.
            let expected = match s.code {
                OAuthErrorCode::InsufficientScope => 403,
                OAuthErrorCode::TemporarilyUnavailable => 503,
                OAuthErrorCode::None | OAuthErrorCode::InvalidToken => 401,
            };
            assert_eq!(s.status, expected, "{e:?}");
            assert!(!s.description.is_empty() && !s.description.contains('"'));
            assert!(s.metric.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn only_missing_token_omits_the_error_code() {
        for e in AuthError::ALL {
            let none = e.spec().code == OAuthErrorCode::None;
            assert_eq!(none, *e == AuthError::TokenMissing, "{e:?}");
        }
    }
}
