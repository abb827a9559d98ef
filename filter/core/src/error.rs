//! The one error type of the request path.
//!
//! Every reason a request can be refused is a variant of [`AuthError`], and each
//! variant is mapped exactly once (in [`AuthError::spec`]) to the HTTP status, the
//! RFC 6750 error code, the short human description sent to the caller and the
//! metric that counts it. Nothing else in the crate decides a status code.
//!
//! Descriptions are deliberately short and never contain request data: the
//! caller learns *why* it was refused, never an echo of what it sent.

/// Which part of the check refused the request. Used for grouping in docs and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorGroup {
    /// The `Authorization` header or the compact JWS itself.
    Token,
    /// The signing keys (JWKS) needed to check the signature.
    Keys,
    /// The token's claims (issuer, audience, lifetime, tenant).
    Claims,
    /// Authorization: route rules, roles, scopes, callers.
    Access,
}

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
    pub group: ErrorGroup,
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
    /// Over mTLS, the token's caller is not the app running as the connection's peer workload
    /// ([`crate::binding`]): a token replayed from another workload.
    WorkloadMismatch,
}

const fn spec(
    group: ErrorGroup,
    status: u16,
    code: OAuthErrorCode,
    description: &'static str,
    metric: &'static str,
) -> ErrorSpec {
    ErrorSpec {
        group,
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
        AuthError::WorkloadMismatch,
    ];

    /// The single mapping from reason to status, RFC 6750 code, description and metric.
    pub const fn spec(self) -> ErrorSpec {
        use AuthError as E;
        use ErrorGroup::{Access, Claims, Keys, Token};
        use OAuthErrorCode::{InsufficientScope, InvalidToken, TemporarilyUnavailable};
        match self {
            // RFC 6750 3.1: a request with no credentials gets no error code.
            E::TokenMissing => spec(
                Token,
                401,
                OAuthErrorCode::None,
                "missing bearer token",
                "token_missing",
            ),
            E::AuthorizationHeaderDuplicated => spec(
                Token,
                401,
                InvalidToken,
                "more than one authorization header",
                "authorization_duplicated",
            ),
            E::AuthorizationSchemeNotBearer => spec(
                Token,
                401,
                InvalidToken,
                "authorization scheme is not bearer",
                "authorization_not_bearer",
            ),
            E::TokenTooLong => spec(Token, 401, InvalidToken, "token too long", "token_too_long"),
            E::TokenNotCompactJws => spec(
                Token,
                401,
                InvalidToken,
                "token is not a signed JWT",
                "token_malformed",
            ),
            E::TokenNotBase64Url => spec(
                Token,
                401,
                InvalidToken,
                "token is not base64url",
                "token_malformed",
            ),
            E::TokenHeaderInvalid => spec(
                Token,
                401,
                InvalidToken,
                "token header is invalid",
                "token_malformed",
            ),
            E::TokenClaimsInvalid => spec(
                Token,
                401,
                InvalidToken,
                "token claims are invalid",
                "token_malformed",
            ),
            E::AlgorithmNotAllowed => spec(
                Token,
                401,
                InvalidToken,
                "token algorithm not allowed",
                "algorithm_not_allowed",
            ),
            E::CriticalHeaderUnsupported => spec(
                Token,
                401,
                InvalidToken,
                "unsupported critical header",
                "crit_unsupported",
            ),
            E::KeyIdMissing => spec(
                Token,
                401,
                InvalidToken,
                "token names no signing key",
                "key_id_missing",
            ),
            E::SignatureInvalid => spec(
                Token,
                401,
                InvalidToken,
                "invalid signature",
                "signature_invalid",
            ),
            E::SigningKeyUnknown => spec(
                Keys,
                401,
                InvalidToken,
                "signing key not found",
                "signing_key_unknown",
            ),
            // Our dependency failed, not the caller: 503 without blaming the token.
            E::KeysUnavailable => spec(
                Keys,
                503,
                TemporarilyUnavailable,
                "signing keys unavailable",
                "keys_unavailable",
            ),
            E::KeysWaitTimedOut => spec(
                Keys,
                503,
                TemporarilyUnavailable,
                "timed out waiting for signing keys",
                "keys_wait_timeout",
            ),
            E::ExpiryMissing => spec(
                Claims,
                401,
                InvalidToken,
                "token has no expiry",
                "expiry_missing",
            ),
            E::Expired => spec(Claims, 401, InvalidToken, "token expired", "expired"),
            E::NotYetValid => spec(
                Claims,
                401,
                InvalidToken,
                "token not yet valid",
                "not_yet_valid",
            ),
            E::IssuedInFuture => spec(
                Claims,
                401,
                InvalidToken,
                "token issued in the future",
                "issued_in_future",
            ),
            E::IssuerInvalid => spec(
                Claims,
                401,
                InvalidToken,
                "issuer not accepted",
                "issuer_invalid",
            ),
            E::AudienceInvalid => spec(
                Claims,
                401,
                InvalidToken,
                "audience not accepted",
                "audience_invalid",
            ),
            E::TenantInvalid => spec(
                Claims,
                401,
                InvalidToken,
                "tenant claim invalid",
                "tenant_invalid",
            ),
            E::TenantNotAllowed => spec(
                Claims,
                401,
                InvalidToken,
                "tenant not allowed",
                "tenant_not_allowed",
            ),
            E::TokenVersionUnsupported => spec(
                Claims,
                401,
                InvalidToken,
                "token version not accepted",
                "version_unsupported",
            ),
            E::RouteNotAllowed => spec(
                Access,
                403,
                InsufficientScope,
                "no rule allows this route",
                "route_not_allowed",
            ),
            E::PermissionMissing => spec(
                Access,
                403,
                InsufficientScope,
                "missing required role or scope",
                "permission_missing",
            ),
            E::CallerNotAllowed => spec(
                Access,
                403,
                InsufficientScope,
                "caller application not allowed",
                "caller_not_allowed",
            ),
            E::CallerUnverified => spec(
                Access,
                403,
                InsufficientScope,
                "caller identity requires an app token",
                "caller_unverified",
            ),
            E::WorkloadMismatch => spec(
                Access,
                403,
                InsufficientScope,
                "token not issued to the calling workload",
                "workload_mismatch",
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
            match s.group {
                ErrorGroup::Token | ErrorGroup::Claims => assert_eq!(s.status, 401, "{e:?}"),
                ErrorGroup::Access => {
                    assert_eq!(s.status, 403, "{e:?}");
                    assert_eq!(s.code, OAuthErrorCode::InsufficientScope, "{e:?}");
                }
                ErrorGroup::Keys => assert!(s.status == 401 || s.status == 503, "{e:?}"),
            }
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
