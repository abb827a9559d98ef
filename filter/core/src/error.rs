//! The refusal tables of both roles.
//!
//! Every reason a request can be refused is a variant of [`AuthError`] (the
//! callee role, and the filter being unable to decide) or [`OutboundError`]
//! (the caller role), and each variant is mapped exactly once, in its table
//! row, to the HTTP status, the reply's code (challenge and body `error`),
//! the short human description and the metric that counts it. The tables
//! generate the enums, their `ALL` lists and their `spec()`; `crate::response`
//! writes every reply from them. Nothing else in the crate decides a status
//! code, and a variant cannot lack a metric.
//!
//! Descriptions are deliberately short and never contain request data: the
//! caller learns *why* it was refused, never an echo of what it sent.

/// What a refusal says about the caller's credentials: the RFC 6750
/// challenge (`WWW-Authenticate`) and the body's `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No credentials were presented: only the realm is announced (RFC 6750
    /// 3.1, no error code); the body says `unauthorized`.
    NoToken,
    InvalidToken,
    InsufficientScope,
    /// Not an RFC 6750 code: our dependency (JWKS) or the filter failed, not
    /// the caller. No challenge.
    TemporarilyUnavailable,
    /// The caller role's refusals: no challenge (the application is not the
    /// party being authenticated); the body's `error` is the metric name.
    Named,
}

impl ErrorCode {
    /// The RFC 6750 code in the challenge, if the reply has one with a code.
    pub fn challenge_code(self) -> Option<&'static str> {
        match self {
            ErrorCode::InvalidToken => Some("invalid_token"),
            ErrorCode::InsufficientScope => Some("insufficient_scope"),
            ErrorCode::NoToken | ErrorCode::TemporarilyUnavailable | ErrorCode::Named => None,
        }
    }

    /// Whether the reply carries `WWW-Authenticate` at all.
    pub fn challenges(self) -> bool {
        matches!(
            self,
            ErrorCode::NoToken | ErrorCode::InvalidToken | ErrorCode::InsufficientScope
        )
    }
}

/// One row of a refusal table: everything the reply and the metrics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorSpec {
    pub status: u16,
    pub code: ErrorCode,
    /// Short reason for `error_description`; never contains request data.
    pub description: &'static str,
    /// The reason's name: audit field, log lines, and the counter's suffix.
    pub metric: &'static str,
    /// The counter on Envoy's `/stats` (`entragate.denied.<metric>`,
    /// `entragate.outbound.refused.<metric>`).
    pub counter: &'static str,
}

impl ErrorSpec {
    /// The body's `error` member.
    pub fn body_error(&self) -> &'static str {
        match self.code {
            ErrorCode::NoToken => "unauthorized",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::Named => self.metric,
        }
    }
}

/// Any refusal of either role: one type for the reply writer and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Inbound(AuthError),
    Outbound(OutboundError),
}

impl Reason {
    pub const fn spec(self) -> ErrorSpec {
        match self {
            Reason::Inbound(e) => e.spec(),
            Reason::Outbound(e) => e.spec(),
        }
    }

    /// Every reason of both roles (from the generated tables).
    pub fn all() -> impl Iterator<Item = Reason> {
        let inbound = AuthError::ALL.iter().copied().map(Reason::Inbound);
        inbound.chain(OutboundError::ALL.iter().copied().map(Reason::Outbound))
    }
}

impl From<AuthError> for Reason {
    fn from(e: AuthError) -> Reason {
        Reason::Inbound(e)
    }
}

impl From<OutboundError> for Reason {
    fn from(e: OutboundError) -> Reason {
        Reason::Outbound(e)
    }
}

/// Rows of a refusal table: `Variant => (status, code, description, metric)`.
/// Generates the enum, its `ALL` list and its `spec()`, so a variant cannot
/// exist without its status, reply and metric, and no list is kept by hand.
/// The counter's name is the table's prefix and the metric name.
macro_rules! refusal_table {
    (
        $(#[$meta:meta])*
        pub enum $name:ident counted as $counter:literal {
            $( $(#[$doc:meta])* $variant:ident => ($status:expr, $code:ident, $description:literal, $metric:literal), )*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$doc])* $variant, )*
        }

        impl $name {
            /// Every variant, in declaration order (generated with the enum).
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The single mapping from reason to status, code, description and metric.
            pub const fn spec(self) -> ErrorSpec {
                match self {
                    $($name::$variant => ErrorSpec {
                        status: $status,
                        code: ErrorCode::$code,
                        description: $description,
                        metric: $metric,
                        counter: concat!($counter, $metric),
                    },)*
                }
            }
        }
    };
}

refusal_table! {
    /// Why the callee role refused a request.
    #[non_exhaustive]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum AuthError counted as "entragate.denied." {
        // ----- token -----
        TokenMissing => (401, NoToken, "missing bearer token", "token_missing"),
        AuthorizationHeaderDuplicated => (401, InvalidToken, "more than one authorization header", "authorization_duplicated"),
        AuthorizationSchemeNotBearer => (401, InvalidToken, "authorization scheme is not bearer", "authorization_not_bearer"),
        TokenTooLong => (401, InvalidToken, "token too long", "token_too_long"),
        /// Not three dot-separated parts (JWE, truncated, garbage).
        TokenNotCompactJws => (401, InvalidToken, "token is not a signed JWT", "token_malformed"),
        /// A part is not unpadded base64url.
        TokenNotBase64Url => (401, InvalidToken, "token is not base64url", "token_malformed"),
        /// The JOSE header is not a JSON object of the expected shape.
        TokenHeaderInvalid => (401, InvalidToken, "token header is invalid", "token_malformed"),
        /// The claims are not a JSON object, or a registered claim has the wrong type.
        TokenClaimsInvalid => (401, InvalidToken, "token claims are invalid", "token_malformed"),
        /// `alg` is not in the configured allow-list (covers `none` and HMAC confusion).
        AlgorithmNotAllowed => (401, InvalidToken, "token algorithm not allowed", "algorithm_not_allowed"),
        /// The header lists a `crit` extension we do not implement (RFC 7515 4.1.11).
        CriticalHeaderUnsupported => (401, InvalidToken, "unsupported critical header", "crit_unsupported"),
        /// Neither `kid` nor `x5t` names the signing key.
        KeyIdMissing => (401, InvalidToken, "token names no signing key", "key_id_missing"),
        SignatureInvalid => (401, InvalidToken, "invalid signature", "signature_invalid"),

        // ----- keys -----
        /// The key named by the token is not in the tenant's JWKS, even after a refresh.
        SigningKeyUnknown => (401, InvalidToken, "signing key not found", "signing_key_unknown"),
        /// No usable JWKS was ever obtained (or the last one is older than the max staleness).
        // Our dependency failed, not the caller: 503 without blaming the token.
        KeysUnavailable => (503, TemporarilyUnavailable, "signing keys unavailable", "keys_unavailable"),
        /// The request waited for a JWKS fetch longer than the configured bound.
        KeysWaitTimedOut => (503, TemporarilyUnavailable, "timed out waiting for signing keys", "keys_wait_timeout"),

        // ----- claims -----
        ExpiryMissing => (401, InvalidToken, "token has no expiry", "expiry_missing"),
        Expired => (401, InvalidToken, "token expired", "expired"),
        NotYetValid => (401, InvalidToken, "token not yet valid", "not_yet_valid"),
        /// `iat` is later than now plus the leeway.
        IssuedInFuture => (401, InvalidToken, "token issued in the future", "issued_in_future"),
        IssuerInvalid => (401, InvalidToken, "issuer not accepted", "issuer_invalid"),
        AudienceInvalid => (401, InvalidToken, "audience not accepted", "audience_invalid"),
        TenantInvalid => (401, InvalidToken, "tenant claim invalid", "tenant_invalid"),
        TenantNotAllowed => (401, InvalidToken, "tenant not allowed", "tenant_not_allowed"),
        TokenVersionUnsupported => (401, InvalidToken, "token version not accepted", "version_unsupported"),

        // ----- access -----
        /// No rule matches the route and the default is to deny.
        RouteNotAllowed => (403, InsufficientScope, "no rule allows this route", "route_not_allowed"),
        /// The token lacks the app role(s) or scope(s) the rule requires.
        PermissionMissing => (403, InsufficientScope, "missing required role or scope", "permission_missing"),
        /// The calling application (`azp`/`appid`) is not in the rule's allow-list.
        CallerNotAllowed => (403, InsufficientScope, "caller application not allowed", "caller_not_allowed"),
        /// Caller restrictions apply but the token does not prove an app identity (`idtyp=app`).
        CallerUnverified => (403, InsufficientScope, "caller identity requires an app token", "caller_unverified"),
        /// Over mTLS, the token's caller is not the app running as the connection's peer
        /// workload ([`crate::inbound::binding`]): a token replayed from another workload.
        WorkloadMismatch => (403, InsufficientScope, "token not issued to the calling workload", "workload_mismatch"),

        // ----- the filter itself -----
        /// The filter cannot decide at all (not configured yet, or re-entered while
        /// busy): fail closed, without blaming the caller.
        FilterUnavailable => (503, TemporarilyUnavailable, "filter not configured", "filter_unavailable"),
    }
}

refusal_table! {
    /// Why the caller (outbound) role refused to send a request on. The reply
    /// also carries a description naming the cause (`crate::outbound::Refusal`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum OutboundError counted as "entragate.outbound.refused." {
        /// No usable token: the agent failed, the wait elapsed, or the filter
        /// could not set the header. Never forwarded without credentials.
        TokenUnavailable => (503, Named, "no token from the agent", "token_unavailable"),
        /// No destination matched and `unmatched_requests` is `deny`.
        DestinationNotConfigured => (403, Named, "no outbound destination is configured", "destination_not_configured"),
    }
}

impl AuthError {
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
    fn every_reason_of_either_role_has_a_consistent_row_and_a_counter() {
        let mut counters = std::collections::HashMap::new();
        let mut reasons = 0;
        for reason in Reason::all() {
            reasons += 1;
            let s = reason.spec();
            // The status follows from the code: 403 exactly for insufficient
            // scope, 503 exactly when we (or our dependency) failed, 401 for
            // the caller's credentials; the caller role picks its own.
            match s.code {
                ErrorCode::InsufficientScope => assert_eq!(s.status, 403, "{reason:?}"),
                ErrorCode::TemporarilyUnavailable => assert_eq!(s.status, 503, "{reason:?}"),
                ErrorCode::NoToken | ErrorCode::InvalidToken => {
                    assert_eq!(s.status, 401, "{reason:?}")
                }
                ErrorCode::Named => assert!(matches!(reason, Reason::Outbound(_)), "{reason:?}"),
            }
            assert!(!s.description.is_empty() && !s.description.contains('"'));
            assert!(!s.metric.is_empty(), "{reason:?} has no metric");
            assert!(s.metric.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(s.counter.starts_with("entragate.") && s.counter.ends_with(s.metric));
            // One counter counts one reason name, whichever variants share it.
            let name = counters.entry(s.counter).or_insert(s.metric);
            assert_eq!(*name, s.metric);
        }
        assert_eq!(reasons, AuthError::ALL.len() + OutboundError::ALL.len());
        // The generated lists hold every variant once (a sample per table
        // guards against a row left out of the macro's list).
        assert!(AuthError::ALL.contains(&AuthError::CallerUnverified));
        assert!(OutboundError::ALL.contains(&OutboundError::DestinationNotConfigured));
        assert_eq!(
            AuthError::TokenMissing.spec().counter,
            "entragate.denied.token_missing"
        );
        assert_eq!(
            OutboundError::TokenUnavailable.spec().counter,
            "entragate.outbound.refused.token_unavailable"
        );
    }

    #[test]
    fn only_missing_token_omits_the_error_code() {
        for e in AuthError::ALL {
            let none = e.spec().code == ErrorCode::NoToken;
            assert_eq!(none, *e == AuthError::TokenMissing, "{e:?}");
        }
    }
}
