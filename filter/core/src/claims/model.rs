//! The typed view of an Entra access token's payload.

/// The claims entragate reads. Unknown claims are ignored.
///
/// Decoding is strict about types of the claims listed here: e.g. `exp` as a
/// string, or `roles` as a string instead of an array, makes the token invalid
/// rather than silently dropping the claim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    pub iss: Option<String>,
    /// `aud`: Entra sends a string; an array is accepted (any element may match).
    pub aud: Vec<String>,
    /// Seconds since the epoch; JSON integers only (as Entra writes them).
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    /// Tenant id (GUID).
    pub tid: Option<String>,
    /// Token version: "1.0" or "2.0".
    pub ver: Option<String>,
    /// v2 caller application id.
    pub azp: Option<String>,
    /// v1 caller application id.
    pub appid: Option<String>,
    /// "app" for app-only (client credentials) tokens.
    pub idtyp: Option<String>,
    pub oid: Option<String>,
    pub sub: Option<String>,
    /// App roles (application permissions), from the `roles` array.
    pub roles: Vec<String>,
    /// Delegated scopes, split from the space-separated `scp` string.
    pub scopes: Vec<String>,
}

impl Claims {
    /// The calling application's client id, from the claim of the token's
    /// own version: `appid` for `ver` 1.0, `azp` for `ver` 2.0.
    ///
    /// Decision: the other version's claim is never consulted. Entra puts
    /// `appid` only in v1 tokens and `azp` only in v2 tokens; a token carrying
    /// the other one is not what Entra issues, and taking "whichever is there"
    /// let a v1 token be judged by an `azp` the docs said we ignore. A v1
    /// token without `appid` (or v2 without `azp`) names no caller, so rules
    /// with `allowed_callers` refuse it (`caller_not_allowed`). Unknown
    /// versions never reach authorization (`validate_claims` refuses them).
    pub fn caller_app_id(&self) -> Option<&str> {
        match self.ver.as_deref() {
            Some("1.0") => self.appid.as_deref(),
            Some("2.0") => self.azp.as_deref(),
            _ => None,
        }
    }

    /// True when Entra marks the token as app-only (`idtyp=app`).
    pub fn is_app_token(&self) -> bool {
        self.idtyp.as_deref() == Some("app")
    }
}
