//! Verification options: one struct, secure defaults (cf. jsonwebtoken's `Validation`).

/// JWS algorithms entragate can verify. RSA family only: Entra signs access
/// tokens with RS256, and accepting HMAC or `none` is how key-confusion attacks work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
}

impl Algorithm {
    /// The JOSE `alg` name. Matching is exact and case-sensitive (RFC 7515).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::RS256),
            "RS384" => Some(Algorithm::RS384),
            "RS512" => Some(Algorithm::RS512),
            _ => None,
        }
    }
}

/// Which implementation checks RSA signatures (`signature_verifier` in the
/// configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureBackend {
    /// The host's native verifier when it has one that passes a self-test at
    /// start-up (Envoy's `verify_signature`, BoringSSL), else pure Rust.
    #[default]
    Auto,
    /// The host's native verifier or nothing: the configuration is refused on
    /// a host without it (for operators who want the fast path guaranteed).
    Host,
    /// Pure Rust only (hosts whose foreign function misbehaves; tests).
    Pure,
}

impl SignatureBackend {
    pub fn name(self) -> &'static str {
        match self {
            SignatureBackend::Auto => "auto",
            SignatureBackend::Host => "host",
            SignatureBackend::Pure => "pure",
        }
    }
}

/// Which tenants' tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantPolicy {
    /// One tenant (GUID, lowercase): issuer must name exactly this tenant.
    Single(String),
    /// Multi-tenant API (`{tenantid}` issuer template): `tid` must be a GUID equal
    /// to the issuer's tenant segment and be one of `allowed` (lowercase GUIDs).
    /// An empty list is rejected at configuration time: "any tenant" is never implicit.
    Multi { allowed: Vec<String> },
}

/// How the expected issuer is built for each token version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPolicy {
    /// Base of v1 issuers, without trailing slash. Default `https://sts.windows.net`.
    /// v1 issuer = `{v1_authority}/{tid}/`.
    pub v1_authority: String,
    /// Base of v2 issuers, without trailing slash. Default `https://login.microsoftonline.com`.
    /// v2 issuer = `{v2_authority}/{tid}/v2.0`.
    pub v2_authority: String,
    pub tenants: TenantPolicy,
    /// Accept v1.0 tokens. Default true.
    pub accept_v1: bool,
    /// Accept v2.0 tokens. Default true.
    pub accept_v2: bool,
}

/// Everything signature and claim checks need, compiled once from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Allowed `alg` values. Default `[RS256]`. The header's `alg` must be in this
    /// list; it never selects an algorithm outside it.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`/`nbf`, seconds. Default 300 (Microsoft.Identity.Web's default).
    pub leeway_secs: u64,
    /// Tokens longer than this (bytes) are rejected before any decoding. Default 16384.
    pub max_token_bytes: usize,
    /// Accepted `aud` values (client id and/or `api://` URI); any one must match.
    pub audiences: Vec<String>,
    pub issuer: IssuerPolicy,
}

impl VerifyOptions {
    pub const DEFAULT_LEEWAY_SECS: u64 = 300;
    pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
    pub const DEFAULT_V1_AUTHORITY: &'static str = "https://sts.windows.net";
    pub const DEFAULT_V2_AUTHORITY: &'static str = "https://login.microsoftonline.com";

    /// Secure defaults for a single-tenant API.
    pub fn single_tenant(tenant_id: &str, audiences: Vec<String>) -> VerifyOptions {
        VerifyOptions {
            algorithms: vec![Algorithm::RS256],
            leeway_secs: Self::DEFAULT_LEEWAY_SECS,
            max_token_bytes: Self::DEFAULT_MAX_TOKEN_BYTES,
            audiences,
            issuer: IssuerPolicy {
                v1_authority: Self::DEFAULT_V1_AUTHORITY.to_string(),
                v2_authority: Self::DEFAULT_V2_AUTHORITY.to_string(),
                tenants: TenantPolicy::Single(tenant_id.to_ascii_lowercase()),
                accept_v1: true,
                accept_v2: true,
            },
        }
    }
}
