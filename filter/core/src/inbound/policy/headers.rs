//! Claim headers: identity facts forwarded to the upstream after success.
//!
//! The upstream trusts these headers because only the filter can set them, so
//! every configured name is stripped from *every* incoming request (anonymous
//! routes included) before anything else: otherwise a client could send
//! `x-entra-roles: Admin` itself.

use crate::claims::Claims;

/// Which claim a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimSource {
    /// Calling application: `azp` (v2) or `appid` (v1).
    Caller,
    /// App roles, comma-joined (`Fraud.Scan,Fraud.Read`).
    Roles,
    /// Delegated scopes, space-joined as in `scp` (`Fraud.Read Fraud.Scan`).
    Scopes,
    Tid,
    Oid,
    Sub,
    Ver,
    Idtyp,
}

impl ClaimSource {
    pub const ALL: &'static [ClaimSource] = &[
        ClaimSource::Caller,
        ClaimSource::Roles,
        ClaimSource::Scopes,
        ClaimSource::Tid,
        ClaimSource::Oid,
        ClaimSource::Sub,
        ClaimSource::Ver,
        ClaimSource::Idtyp,
    ];

    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            ClaimSource::Caller => "caller",
            ClaimSource::Roles => "roles",
            ClaimSource::Scopes => "scopes",
            ClaimSource::Tid => "tid",
            ClaimSource::Oid => "oid",
            ClaimSource::Sub => "sub",
            ClaimSource::Ver => "ver",
            ClaimSource::Idtyp => "idtyp",
        }
    }

    pub fn from_name(name: &str) -> Option<ClaimSource> {
        ClaimSource::ALL
            .iter()
            .copied()
            .find(|source| source.name() == name)
    }

    /// The header value, or `None` when the claim is absent or empty.
    fn value(self, claims: &Claims) -> Option<String> {
        let value = match self {
            ClaimSource::Caller => claims.caller_app_id().map(str::to_string),
            ClaimSource::Roles => Some(join_list(&claims.roles, ',')),
            ClaimSource::Scopes => Some(join_list(&claims.scopes, ' ')),
            ClaimSource::Tid => claims.tid.clone(),
            ClaimSource::Oid => claims.oid.clone(),
            ClaimSource::Sub => claims.sub.clone(),
            ClaimSource::Ver => claims.ver.clone(),
            ClaimSource::Idtyp => claims.idtyp.clone(),
        };
        value.filter(|v| !v.is_empty() && is_safe_header_value(v))
    }
}

/// Joins list elements with `separator`, leaving out elements that contain the
/// separator or whitespace: `["A,B"]` must not reach the upstream as the two
/// roles `A` and `B`. Dropping can only remove grants, never add one.
fn join_list(values: &[String], separator: char) -> String {
    let mut joined = String::new();
    let representable = values
        .iter()
        .filter(|v| !v.is_empty() && !v.contains(separator) && !v.contains(char::is_whitespace));
    for value in representable {
        if !joined.is_empty() {
            joined.push(separator);
        }
        joined.push_str(value);
    }
    joined
}

/// A header value is forwarded only without control characters (HTAB aside).
/// CR/LF would split headers, NUL truncates in C code, and Envoy refuses other
/// control bytes; dropping the header is safer than sending a mangled value.
fn is_safe_header_value(value: &str) -> bool {
    !value.chars().any(|c| c.is_ascii_control() && c != '\t')
}

/// One configured header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    /// Lower-case, validated header name.
    name: String,
    source: ClaimSource,
}

impl ClaimHeader {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn source(&self) -> ClaimSource {
        self.source
    }
}

/// The configured claim headers, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeaders {
    headers: Vec<ClaimHeader>,
}

impl ClaimHeaders {
    /// The headers used when `claim_headers` is not configured.
    pub const DEFAULT: &'static [(&'static str, ClaimSource)] = &[
        ("x-entra-caller", ClaimSource::Caller),
        ("x-entra-roles", ClaimSource::Roles),
        ("x-entra-tenant", ClaimSource::Tid),
    ];

    /// Names must already be validated ([`check_header_name`]) and unique.
    pub(crate) fn new(headers: Vec<(String, ClaimSource)>) -> ClaimHeaders {
        let headers = headers
            .into_iter()
            .map(|(name, source)| ClaimHeader { name, source })
            .collect();
        ClaimHeaders { headers }
    }

    pub fn headers(&self) -> &[ClaimHeader] {
        &self.headers
    }

    /// Names to remove from every incoming request (lower-case).
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers.iter().map(|h| h.name.as_str())
    }

    /// Headers to set on the upstream request for a verified token. A header
    /// whose claim is absent, empty or not a safe header value is left out
    /// (it was stripped, so the upstream sees no value rather than a forged one).
    pub fn values(&self, claims: &Claims) -> Vec<(&str, String)> {
        self.headers
            .iter()
            .filter_map(|h| h.source.value(claims).map(|value| (h.name.as_str(), value)))
            .collect()
    }
}

impl Default for ClaimHeaders {
    fn default() -> ClaimHeaders {
        ClaimHeaders::new(
            ClaimHeaders::DEFAULT
                .iter()
                .map(|(name, source)| ((*name).to_string(), *source))
                .collect(),
        )
    }
}

/// Headers a claim header may not replace: connection management and
/// framing (request smuggling), routing (`host`), credentials (the token
/// itself), and headers proxies or Envoy trust for their own decisions.
const RESERVED_NAMES: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "forwarded",
    "via",
    "x-request-id",
];

const RESERVED_PREFIXES: &[&str] = &["x-envoy-", "x-forwarded-", "grpc-"];

/// Checks a configured claim header name; the error is the reason to report.
///
/// Names must be lower-case because HTTP/2 and Envoy's header map are
/// lower-case: an upper-case name would be a different header to strip.
pub(crate) fn check_header_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("header name must not be empty");
    }
    if name.starts_with(':') {
        return Err("pseudo-headers cannot be claim headers");
    }
    if name.len() > 128 {
        return Err("header name must be at most 128 characters");
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("header name must be lower-case");
    }
    let is_token_char =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(is_token_char) {
        return Err("header name must be an HTTP token (letters, digits, `-` and the like)");
    }
    if RESERVED_NAMES.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(
            "header is reserved (hop-by-hop, framing, routing, credentials or proxy-owned)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn app_v1() -> Claims {
        Claims {
            appid: Some(CALLER.into()),
            idtyp: Some("app".into()),
            tid: Some(TENANT.into()),
            oid: Some("a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b".into()),
            sub: Some("a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b".into()),
            ver: Some("1.0".into()),
            roles: vec!["Fraud.Scan".into(), "Fraud.Read".into()],
            ..Claims::default()
        }
    }

    fn all_sources() -> ClaimHeaders {
        ClaimHeaders::new(
            ClaimSource::ALL
                .iter()
                .map(|s| (format!("x-{}", s.name()), *s))
                .collect(),
        )
    }

    fn value_of<'a>(values: &'a [(&str, String)], name: &str) -> Option<&'a str> {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn default_headers() {
        let headers = ClaimHeaders::default();
        assert_eq!(
            headers.names().collect::<Vec<_>>(),
            ["x-entra-caller", "x-entra-roles", "x-entra-tenant"]
        );
        assert_eq!(
            headers.values(&app_v1()),
            vec![
                ("x-entra-caller", CALLER.to_string()),
                ("x-entra-roles", "Fraud.Scan,Fraud.Read".to_string()),
                ("x-entra-tenant", TENANT.to_string()),
            ]
        );
    }

    #[test]
    fn every_source() {
        let headers = all_sources();
        let values = headers.values(&app_v1());
        assert_eq!(value_of(&values, "x-caller"), Some(CALLER));
        assert_eq!(value_of(&values, "x-roles"), Some("Fraud.Scan,Fraud.Read"));
        assert_eq!(value_of(&values, "x-scopes"), None);
        assert_eq!(value_of(&values, "x-tid"), Some(TENANT));
        assert_eq!(
            value_of(&values, "x-oid"),
            Some("a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b")
        );
        assert_eq!(
            value_of(&values, "x-sub"),
            Some("a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b")
        );
        assert_eq!(value_of(&values, "x-ver"), Some("1.0"));
        assert_eq!(value_of(&values, "x-idtyp"), Some("app"));
    }

    #[test]
    fn scopes_are_space_joined_and_v2_caller_is_azp() {
        let claims = Claims {
            ver: Some("2.0".into()),
            azp: Some("0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5".into()),
            appid: Some(CALLER.into()),
            scopes: vec!["Fraud.Read".into(), "Fraud.Scan".into()],
            ..Claims::default()
        };
        let headers = all_sources();
        let values = headers.values(&claims);
        assert_eq!(value_of(&values, "x-scopes"), Some("Fraud.Read Fraud.Scan"));
        assert_eq!(
            value_of(&values, "x-caller"),
            Some("0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5")
        );
        assert_eq!(value_of(&values, "x-roles"), None);
        assert_eq!(value_of(&values, "x-idtyp"), None);
    }

    #[test]
    fn absent_claims_give_no_headers() {
        assert!(all_sources().values(&Claims::default()).is_empty());
        let empty = Claims {
            tid: Some(String::new()),
            ..Claims::default()
        };
        assert!(all_sources().values(&empty).is_empty());
    }

    #[test]
    fn unsafe_values_are_dropped() {
        let claims = Claims {
            tid: Some("t\r\nx-entra-roles: Admin".into()),
            oid: Some("a\nb".into()),
            sub: Some("a\0b".into()),
            ver: Some("2.0\x7f".into()),
            idtyp: Some("app".into()),
            ..Claims::default()
        };
        let headers = all_sources();
        let values = headers.values(&claims);
        assert_eq!(values, vec![("x-idtyp", "app".to_string())]);
    }

    #[test]
    fn list_elements_that_cannot_be_represented_are_dropped() {
        let claims = Claims {
            roles: vec![
                "A,Admin".into(),
                "B".into(),
                "C\r\n".into(),
                "".into(),
                "D".into(),
            ],
            scopes: vec!["x y".into(), "z".into()],
            ..Claims::default()
        };
        let headers = all_sources();
        let values = headers.values(&claims);
        assert_eq!(value_of(&values, "x-roles"), Some("B,D"));
        assert_eq!(value_of(&values, "x-scopes"), Some("z"));
        let only_bad = Claims {
            roles: vec!["A,B".into()],
            ..Claims::default()
        };
        assert_eq!(value_of(&all_sources().values(&only_bad), "x-roles"), None);
    }

    #[test]
    fn source_names_round_trip() {
        for source in ClaimSource::ALL {
            assert_eq!(ClaimSource::from_name(source.name()), Some(*source));
        }
        assert_eq!(ClaimSource::from_name("Roles"), None);
        assert_eq!(ClaimSource::from_name("scp"), None);
        assert_eq!(ClaimSource::from_name("azp"), None);
    }

    #[test]
    fn header_names() {
        for ok in ["x-entra-caller", "x-user-id", "x_a", "caller", "x-1"] {
            assert_eq!(check_header_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ":path",
            ":authority",
            "X-Entra-Caller",
            "x entra",
            "x-entra:",
            "x-\n",
            "x-é",
            "authorization",
            "proxy-authorization",
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "te",
            "cookie",
            "x-envoy-original-path",
            "x-forwarded-for",
            "x-request-id",
        ] {
            assert!(check_header_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_header_name(&"x".repeat(129)).is_err());
    }
}
