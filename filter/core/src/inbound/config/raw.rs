//! The plugin configuration exactly as written: serde mirrors of the JSON.
//!
//! Every field is optional at this stage, even the required ones: requiredness,
//! defaults and value checks live in [`super::compile`], which reports them with
//! the field's path. serde's job is only shape and types; [`parse`] adds the
//! path of the field to its errors.
//!
//! Unknown fields are rejected everywhere (`deny_unknown_fields`): a misspelt
//! `app_role` silently ignored would turn a protected route into an open one.
//! A JSON `null` is treated like an absent field.

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

use crate::plugin_config::document::parse_document;
use crate::plugin_config::ConfigError;

/// The whole plugin configuration (Envoy `plugin_config.configuration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// RFC 6750 realm announced in `WWW-Authenticate`. Default `"entragate"`.
    pub realm: Option<String>,
    /// Single-tenant API: the tenant GUID. Default none; exactly one of
    /// `tenant_id` / `allowed_tenants` is required.
    pub tenant_id: Option<String>,
    /// Multi-tenant API: accepted tenant GUIDs (non-empty). Default none.
    pub allowed_tenants: Option<Vec<String>>,
    /// Accepted `aud` values. Required, non-empty; no default.
    pub audiences: Option<Vec<String>>,
    /// Issuer base URLs (compared with `iss`, never fetched). Default
    /// `{"v1": "https://sts.windows.net", "v2": "https://login.microsoftonline.com"}`.
    pub issuer_base: Option<RawIssuerBase>,
    /// The old name of `issuer_base`: refused at compile time with a hint,
    /// because it was easily confused with `jwks.authority` (the callout host).
    #[serde(default, deserialize_with = "present")]
    pub authority: bool,
    /// Accepted token versions, `"1.0"` and/or `"2.0"`. Default both.
    pub accepted_versions: Option<Vec<String>>,
    /// Allowed JWS algorithms. Default `["RS256"]`.
    pub algorithms: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`/`nbf`, seconds. Default 300.
    pub leeway_seconds: Option<u64>,
    /// Longest accepted token, bytes. Default 16384.
    pub max_token_bytes: Option<u64>,
    /// Where the signing keys come from. Required; no default.
    pub jwks: Option<RawJwks>,
    /// `"deny"` or `"allow_any_valid_token"`. Default `"deny"`.
    pub unmatched_requests: Option<String>,
    /// Route rules, first match wins. Default `[]`.
    pub rules: Option<Vec<RawRule>>,
    /// Headers set from claims. Default
    /// `{"x-entra-caller": "caller", "x-entra-roles": "roles", "x-entra-tenant": "tid"}`.
    pub claim_headers: Option<RawClaimHeaders>,
    /// Verified tokens remembered per worker; 0 disables the cache. Default 4096.
    pub token_cache_size: Option<u64>,
    /// `"auto"`, `"host"` or `"pure"`. Default `"auto"`.
    pub signature_verifier: Option<String>,
    /// Over mTLS: the token's caller must be the app running as the peer workload. Default none.
    pub workload_binding: Option<crate::inbound::binding::RawWorkloadBinding>,
    /// Publish each decision's audit record as filter state for access logs. Default true.
    pub audit_fields: Option<bool>,
}

/// Issuer base URLs (`issuer_base` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuerBase {
    /// v1 issuer base. Default `"https://sts.windows.net"`.
    pub v1: Option<String>,
    /// v2 issuer base. Default `"https://login.microsoftonline.com"`.
    pub v2: Option<String>,
}

/// JWKS source and refresh policy (`jwks` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    /// Envoy cluster reaching the identity provider. Required; no default.
    pub cluster: Option<String>,
    /// `:authority` of the callout. Required; no default.
    pub authority: Option<String>,
    /// Keys document path. Default `/{tenant_id}/discovery/v2.0/keys`
    /// (`/common/discovery/v2.0/keys` for a multi-tenant API).
    pub keys_path: Option<String>,
    /// OIDC discovery document path. Default none.
    pub discovery_path: Option<String>,
    /// Callout timeout, ms. Default 5000.
    pub fetch_timeout_ms: Option<u64>,
    /// Background refresh period, seconds. Default 3600.
    pub refresh_interval_seconds: Option<u64>,
    /// Minimum time between refreshes forced by an unknown `kid`, seconds. Default 300.
    pub unknown_kid_refresh_min_interval_seconds: Option<u64>,
    /// How long the last good keys outlive failing refreshes, seconds. Default 86400.
    pub max_stale_seconds: Option<u64>,
    /// Longest wait of a request for an in-flight fetch, ms. Default 5000.
    pub request_wait_ms: Option<u64>,
    /// First retry delay after a failed fetch, ms. Default 1000.
    pub retry_initial_ms: Option<u64>,
    /// Largest retry delay, ms. Default 60000.
    pub retry_max_ms: Option<u64>,
}

/// One route rule (`rules[]` element).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique rule name, used in logs. Required; no default.
    pub name: Option<String>,
    /// Path match. Required; no default.
    pub path: Option<RawPathMatch>,
    /// Upper-case HTTP methods. Default: any method.
    pub methods: Option<Vec<String>>,
    /// No token needed. Default false.
    pub anonymous: Option<bool>,
    /// App roles required in `roles`. Default none.
    pub app_roles: Option<RawRequirement>,
    /// Delegated scopes required in `scp`. Default none.
    pub scopes: Option<RawRequirement>,
    /// Caller client ids (`azp`/`appid`). Default: any caller.
    pub allowed_callers: Option<Vec<String>>,
    /// Accept `azp`/`appid` without `idtyp=app`. Default false.
    pub trust_caller_without_idtyp: Option<bool>,
}

/// `{"exact": "/p"}` or `{"prefix": "/p/"}`: exactly one must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPathMatch {
    /// Whole-path match. Default none.
    pub exact: Option<String>,
    /// Literal byte-prefix match. Default none.
    pub prefix: Option<String>,
}

/// `{"any_of": [..]}` or `{"all_of": [..]}`: exactly one must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    /// At least one of these values. Default none.
    pub any_of: Option<Vec<String>>,
    /// Every one of these values. Default none.
    pub all_of: Option<Vec<String>>,
}

/// `claim_headers`: header name -> claim source, in document order.
///
/// A custom deserializer (rather than a map type) keeps the written order, so
/// headers are emitted deterministically, and rejects a header named twice,
/// which a map would silently collapse to its last value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawClaimHeaders(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for RawClaimHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;

        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = RawClaimHeaders;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping header names to claim sources")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, String)> = Vec::new();
                while let Some((name, source)) = map.next_entry::<String, String>()? {
                    if entries.iter().any(|(seen, _)| *seen == name) {
                        return Err(A::Error::custom(format!("duplicate header `{name}`")));
                    }
                    entries.push((name, source));
                }
                Ok(RawClaimHeaders(entries))
            }
        }

        deserializer.deserialize_map(HeadersVisitor)
    }
}

/// `deserialize_with` for a retired member: true when present, whatever its value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Parses the configuration document. Errors carry serde_json's message (with
/// line and column) and the path of the field being read when it failed.
pub fn parse(bytes: &[u8]) -> Result<RawConfig, ConfigError> {
    parse_document(bytes)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;

    fn error_of(json: &str) -> ConfigError {
        parse(json.as_bytes()).expect_err("must be rejected")
    }

    #[test]
    fn every_field_is_optional_at_parse_time() {
        assert_eq!(parse(b"{}").unwrap(), RawConfig::default());
    }

    #[test]
    fn null_is_the_same_as_absent() {
        assert_eq!(parse(br#"{"realm": null}"#).unwrap(), RawConfig::default());
    }

    #[test]
    fn parses_the_documented_example() {
        let raw = parse(
            br#"{
              "realm": "fraud-detector",
              "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
              "audiences": ["api://x"],
              "jwks": {"cluster": "entra_idp", "authority": "login.microsoftonline.com"},
              "rules": [
                {"name": "health", "path": {"exact": "/healthz"}, "methods": ["GET"], "anonymous": true},
                {"name": "analyze", "path": {"prefix": "/fraud/"}, "app_roles": {"any_of": ["Fraud.Scan"]}}
              ],
              "claim_headers": {"x-b": "roles", "x-a": "caller"}
            }"#,
        )
        .unwrap();
        assert_eq!(raw.realm.as_deref(), Some("fraud-detector"));
        let rules = raw.rules.unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].anonymous, Some(true));
        assert_eq!(
            rules[1].app_roles.as_ref().unwrap().any_of,
            Some(vec!["Fraud.Scan".to_string()])
        );
        // Document order is kept.
        assert_eq!(
            raw.claim_headers.unwrap().0,
            vec![
                ("x-b".to_string(), "roles".to_string()),
                ("x-a".to_string(), "caller".to_string())
            ]
        );
    }

    #[test]
    fn unknown_top_level_field_is_named_with_line_and_column() {
        let e = error_of("{\n  \"tenant\": \"x\"\n}");
        assert_eq!(e.field, "tenant");
        assert!(e.message.contains("unknown field `tenant`"), "{e}");
        assert!(e.message.contains("line 2 column"), "{e}");
    }

    #[test]
    fn unknown_nested_fields_get_their_full_path() {
        assert_eq!(
            error_of(r#"{"jwks": {"clustre": "x"}}"#).field,
            "jwks.clustre"
        );
        assert_eq!(
            error_of(r#"{"issuer_base": {"v3": "x"}}"#).field,
            "issuer_base.v3"
        );
        let e = error_of(r#"{"rules": [{"name": "a"}, {"name": "b", "app_role": {}}]}"#);
        assert_eq!(e.field, "rules[1].app_role");
        let e = error_of(r#"{"rules": [{"path": {"exact": "/", "regex": ".*"}}]}"#);
        assert_eq!(e.field, "rules[0].path.regex");
        let e = error_of(r#"{"rules": [{"scopes": {"one_of": ["a"]}}]}"#);
        assert_eq!(e.field, "rules[0].scopes.one_of");
    }

    #[test]
    fn wrong_types_are_located() {
        assert_eq!(
            error_of(r#"{"leeway_seconds": "300"}"#).field,
            "leeway_seconds"
        );
        assert_eq!(
            error_of(r#"{"leeway_seconds": -1}"#).field,
            "leeway_seconds"
        );
        assert_eq!(error_of(r#"{"audiences": "api://x"}"#).field, "audiences");
        assert_eq!(error_of(r#"{"audiences": ["a", 5]}"#).field, "audiences[1]");
        assert_eq!(
            error_of(r#"{"jwks": {"fetch_timeout_ms": 1.5}}"#).field,
            "jwks.fetch_timeout_ms"
        );
        assert_eq!(error_of(r#"{"rules": {}}"#).field, "rules");
        assert_eq!(
            error_of(r#"{"rules": [{"anonymous": "yes"}]}"#).field,
            "rules[0].anonymous"
        );
        assert_eq!(
            error_of(r#"{"rules": [{"methods": ["GET", 1]}]}"#).field,
            "rules[0].methods[1]"
        );
        let e = error_of(r#"{"rules": [{"app_roles": {"all_of": ["a", null]}}]}"#);
        assert_eq!(e.field, "rules[0].app_roles.all_of[1]");
        assert_eq!(
            error_of(r#"{"claim_headers": {"x-a": 1}}"#).field,
            "claim_headers.x-a"
        );
        assert_eq!(error_of(r#"{"claim_headers": []}"#).field, "claim_headers");
    }

    #[test]
    fn duplicate_claim_header_is_rejected() {
        // serde_json reports map-level errors after the closing brace.
        let e = error_of(r#"{"claim_headers": {"x-a": "tid", "x-a": "oid"}}"#);
        assert_eq!(e.field, "claim_headers");
        assert!(e.message.contains("duplicate header `x-a`"), "{e}");
    }

    #[test]
    fn duplicate_struct_field_is_rejected() {
        let e = error_of(r#"{"realm": "a", "realm": "b"}"#);
        assert_eq!(e.field, "realm");
        assert!(e.message.contains("duplicate field `realm`"), "{e}");
        let e =
            error_of(r#"{"jwks": {"cluster": "a"}, "rules": [{}, {"name": "a", "name": "b"}]}"#);
        assert_eq!(e.field, "rules[1].name");
    }

    #[test]
    fn location_follows_lines_strings_and_nesting() {
        let json = "{\n  \"realm\": \"a,b:{[\\\"\",\n  \"rules\": [\n    {\"name\": \"x\"},\n    {\"name\": \"y\",\n     \"path\": {\"exact\": 7}}\n  ]\n}";
        let e = error_of(json);
        assert_eq!(e.field, "rules[1].path.exact", "{e}");
        assert!(e.message.contains("line 6"), "{e}");
        let e = error_of(r#"{"claim_headers": {"x-\u0061": 1}}"#);
        assert_eq!(e.field, "claim_headers.x-a");
    }

    #[test]
    fn syntax_errors_and_non_objects_name_the_document() {
        let e = error_of("{\"realm\": ");
        assert_eq!(e.field, "realm");
        assert!(e.message.contains("line 1 column"), "{e}");
        assert_eq!(
            error_of("{\"rules\": [{\"name\" \"x\"}]}").field,
            "rules[0].name"
        );
        assert_eq!(error_of("").field, "");
        assert_eq!(error_of("[]").field, "");
        assert_eq!(error_of("{} x").field, "");
    }
}
