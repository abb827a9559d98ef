//! Validation and compilation of a [`RawConfig`] into a [`FilterPolicy`].
//!
//! Every check of `docs/configuration.md` lives here, and every error names the
//! field it is about. The output is normalised (lower-case GUIDs, defaults
//! filled in, seconds converted to milliseconds) so the request path never
//! re-validates or looks anything up by name.

use std::ops::RangeInclusive;

use super::raw::{RawClaimHeaders, RawConfig, RawJwks, RawPathMatch, RawRequirement, RawRule};
use super::FilterPolicy;
use crate::guid::is_guid;
use crate::inbound::binding::WorkloadBinding;
use crate::inbound::cache::DEFAULT_CAPACITY as DEFAULT_TOKEN_CACHE_SIZE;
use crate::inbound::jwks::JwksSettings;
use crate::inbound::policy::headers::check_header_name;
use crate::inbound::policy::routes::is_valid_method;
use crate::inbound::policy::{
    is_ambiguous_path, Access, CallerRestriction, ClaimHeaders, ClaimSource, MethodMatch,
    PathMatch, Permissions, Requirement, Requirements, RouteTable, Rule, UnmatchedRequests,
};
use crate::options::{Algorithm, IssuerPolicy, SignatureBackend, TenantPolicy, VerifyOptions};
use crate::plugin_config::checks::{fail, number, required, word, Result};
use crate::plugin_config::ConfigError;

/// Largest tolerated clock skew: beyond an hour, `exp` stops meaning much.
const MAX_LEEWAY_SECS: u64 = 3_600;
/// Entra access tokens are 1.5-3 KB; below 1 KiB even valid tokens fail, and
/// above 64 KiB the limit no longer protects the decoder.
const TOKEN_BYTES_RANGE: RangeInclusive<u64> = 1_024..=65_536;
const FETCH_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
const REFRESH_INTERVAL_SECS_RANGE: RangeInclusive<u64> = 1..=86_400;
const UNKNOWN_KID_INTERVAL_SECS_RANGE: RangeInclusive<u64> = 1..=86_400;
const MAX_STALE_SECS_RANGE: RangeInclusive<u64> = 1..=604_800;
const REQUEST_WAIT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
const RETRY_MS_RANGE: RangeInclusive<u64> = 1..=3_600_000;
/// Up to 64 Ki entries (tens of MB per worker at most); 0 disables the cache.
const TOKEN_CACHE_SIZE_RANGE: RangeInclusive<u64> = 0..=65_536;
/// Longest rule name / realm: they end up in logs and headers.
const MAX_LABEL_CHARS: usize = 128;

impl TryFrom<RawConfig> for FilterPolicy {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<FilterPolicy> {
        let realm = compile_realm(raw.realm)?;
        let tenants = compile_tenants(raw.tenant_id, raw.allowed_tenants)?;
        let audiences = compile_audiences(raw.audiences)?;
        if raw.authority {
            return Err(ConfigError::new(
                "authority",
                "renamed `issuer_base` (the issuer base URLs {\"v1\": ..., \"v2\": ...} compared \
                 with `iss`, never fetched); the host the keys are fetched from is `jwks.authority`",
            ));
        }
        let issuer_base = raw.issuer_base.unwrap_or_default();
        let v1_authority = compile_issuer_base(
            issuer_base.v1,
            "issuer_base.v1",
            VerifyOptions::DEFAULT_V1_AUTHORITY,
        )?;
        let v2_authority = compile_issuer_base(
            issuer_base.v2,
            "issuer_base.v2",
            VerifyOptions::DEFAULT_V2_AUTHORITY,
        )?;
        let (accept_v1, accept_v2) = compile_versions(raw.accepted_versions)?;
        let algorithms = compile_algorithms(raw.algorithms)?;
        let leeway_secs = number(
            raw.leeway_seconds,
            "leeway_seconds",
            VerifyOptions::DEFAULT_LEEWAY_SECS,
            0..=MAX_LEEWAY_SECS,
        )?;
        let max_token_bytes = compile_max_token_bytes(raw.max_token_bytes)?;
        let jwks = compile_jwks(raw.jwks, &tenants)?;
        let unmatched = compile_unmatched(raw.unmatched_requests)?;
        let mut routes = compile_rules(raw.rules.unwrap_or_default())?;
        let claim_headers = compile_claim_headers(raw.claim_headers)?;
        let token_cache_size = compile_token_cache_size(raw.token_cache_size)?;
        let signature_verifier = compile_signature_verifier(raw.signature_verifier)?;
        let workload_binding = raw
            .workload_binding
            .map(|b| WorkloadBinding::compile(b, &mut routes))
            .transpose()?;

        let verify = VerifyOptions {
            algorithms,
            leeway_secs,
            max_token_bytes,
            audiences,
            issuer: IssuerPolicy {
                v1_authority,
                v2_authority,
                tenants,
                accept_v1,
                accept_v2,
            },
        };
        Ok(FilterPolicy {
            realm,
            verify,
            jwks,
            routes,
            unmatched,
            claim_headers,
            token_cache_size,
            signature_verifier,
            workload_binding,
            audit_fields: raw.audit_fields.unwrap_or(true),
        })
    }
}

// ----- generic checks -----

/// A non-empty list with each element checked, de-duplicated in order.
fn list(
    values: Vec<String>,
    field: &str,
    check: impl Fn(String, &str) -> Result<String>,
) -> Result<Vec<String>> {
    if values.is_empty() {
        return fail(field, "must not be empty");
    }
    let mut checked: Vec<String> = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let value = check(value, &format!("{field}[{index}]"))?;
        if !checked.contains(&value) {
            checked.push(value);
        }
    }
    Ok(checked)
}

/// A GUID in canonical 8-4-4-4-12 form, returned lower-case: Entra emits
/// lower-case GUIDs, and normalising here makes later comparisons exact.
fn guid(value: String, field: &str) -> Result<String> {
    if is_guid(&value) {
        Ok(value.to_ascii_lowercase())
    } else {
        fail(
            field,
            "must be a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47",
        )
    }
}

/// A short label (realm, rule name): printable ASCII, because it is written
/// into logs and into a quoted string of `WWW-Authenticate`.
fn label(value: String, field: &str) -> Result<String> {
    if value.is_empty() {
        return fail(field, "must not be empty");
    }
    if value.len() > MAX_LABEL_CHARS {
        return fail(
            field,
            format!("must be at most {MAX_LABEL_CHARS} characters"),
        );
    }
    if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return fail(field, "must be printable ASCII (no control characters)");
    }
    Ok(value)
}

// ----- token verification -----

fn compile_realm(realm: Option<String>) -> Result<String> {
    match realm {
        Some(realm) => label(realm, "realm"),
        None => Ok(FilterPolicy::DEFAULT_REALM.to_string()),
    }
}

fn compile_tenants(
    tenant_id: Option<String>,
    allowed_tenants: Option<Vec<String>>,
) -> Result<TenantPolicy> {
    match (tenant_id, allowed_tenants) {
        (Some(_), Some(_)) => fail(
            "allowed_tenants",
            "must not be combined with `tenant_id`: use `tenant_id` for a single-tenant API, `allowed_tenants` for a multi-tenant one",
        ),
        (Some(tenant_id), None) => Ok(TenantPolicy::Single(guid(tenant_id, "tenant_id")?)),
        (None, Some(allowed)) => Ok(TenantPolicy::Multi {
            allowed: list(allowed, "allowed_tenants", guid)?,
        }),
        (None, None) => fail(
            "tenant_id",
            "is required (or `allowed_tenants` for a multi-tenant API)",
        ),
    }
}

fn compile_audiences(audiences: Option<Vec<String>>) -> Result<Vec<String>> {
    let audiences = required(audiences, "audiences")?;
    list(audiences, "audiences", |audience, field| {
        if audience.is_empty() {
            return fail(field, "must not be empty");
        }
        if audience.trim() != audience || audience.chars().any(char::is_control) {
            return fail(
                field,
                "must not have surrounding whitespace or control characters",
            );
        }
        // Client-id audiences are GUIDs, which Entra writes in lower case.
        if is_guid(&audience) {
            Ok(audience.to_ascii_lowercase())
        } else {
            Ok(audience)
        }
    })
}

/// An issuer base URL. One trailing slash is tolerated and removed (it is what
/// a browser shows); the issuer templates add their own `/`.
fn compile_issuer_base(value: Option<String>, field: &str, default: &str) -> Result<String> {
    let Some(value) = value else {
        return Ok(default.to_string());
    };
    let base = value.strip_suffix('/').unwrap_or(&value);
    let Some(rest) = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
    else {
        return fail(field, "must start with https:// or http://");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return fail(field, "must name a host");
    }
    if base.ends_with('/') {
        return fail(field, "must not end with `//`");
    }
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        return fail(
            field,
            "must not contain whitespace, a query string or a fragment",
        );
    }
    Ok(base.to_string())
}

fn compile_versions(versions: Option<Vec<String>>) -> Result<(bool, bool)> {
    let Some(versions) = versions else {
        return Ok((true, true));
    };
    if versions.is_empty() {
        return fail(
            "accepted_versions",
            "must not be empty (omit it to accept both)",
        );
    }
    let (mut v1, mut v2) = (false, false);
    for (index, version) in versions.iter().enumerate() {
        match version.as_str() {
            "1.0" => v1 = true,
            "2.0" => v2 = true,
            _ => {
                return fail(
                    format!("accepted_versions[{index}]"),
                    "must be \"1.0\" or \"2.0\"",
                )
            }
        }
    }
    Ok((v1, v2))
}

fn compile_algorithms(algorithms: Option<Vec<String>>) -> Result<Vec<Algorithm>> {
    let Some(names) = algorithms else {
        return Ok(vec![Algorithm::RS256]);
    };
    if names.is_empty() {
        return fail("algorithms", "must not be empty (omit it for RS256)");
    }
    let mut compiled = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        // HMAC and `none` are refused by name: accepting them is how
        // algorithm-confusion attacks forge tokens with public keys.
        let Some(algorithm) = Algorithm::from_name(name) else {
            return fail(
                format!("algorithms[{index}]"),
                format!("`{name}` is not allowed: only RS256, RS384 and RS512 are supported"),
            );
        };
        if !compiled.contains(&algorithm) {
            compiled.push(algorithm);
        }
    }
    Ok(compiled)
}

fn compile_max_token_bytes(value: Option<u64>) -> Result<usize> {
    let default = VerifyOptions::DEFAULT_MAX_TOKEN_BYTES as u64;
    let bytes = number(value, "max_token_bytes", default, TOKEN_BYTES_RANGE)?;
    usize::try_from(bytes)
        .map_err(|_| ConfigError::new("max_token_bytes", "is too large for this platform"))
}

// ----- performance -----

fn compile_token_cache_size(value: Option<u64>) -> Result<usize> {
    let size = number(
        value,
        "token_cache_size",
        DEFAULT_TOKEN_CACHE_SIZE as u64,
        TOKEN_CACHE_SIZE_RANGE,
    )?;
    usize::try_from(size)
        .map_err(|_| ConfigError::new("token_cache_size", "is too large for this platform"))
}

fn compile_signature_verifier(value: Option<String>) -> Result<SignatureBackend> {
    match value.as_deref() {
        None | Some("auto") => Ok(SignatureBackend::Auto),
        Some("host") => Ok(SignatureBackend::Host),
        Some("pure") => Ok(SignatureBackend::Pure),
        Some(_) => fail(
            "signature_verifier",
            "must be \"auto\", \"host\" or \"pure\"",
        ),
    }
}

// ----- JWKS -----

fn compile_jwks(raw: Option<RawJwks>, tenants: &TenantPolicy) -> Result<JwksSettings> {
    let raw = required(raw, "jwks")?;
    let cluster = word(required(raw.cluster, "jwks.cluster")?, "jwks.cluster")?;
    let authority = compile_callout_authority(required(raw.authority, "jwks.authority")?)?;
    let keys_path = match raw.keys_path {
        Some(path) => callout_path(path, "jwks.keys_path")?,
        None => default_keys_path(tenants),
    };
    let discovery_path = raw
        .discovery_path
        .map(|path| callout_path(path, "jwks.discovery_path"))
        .transpose()?;

    let fetch_timeout_ms = number(
        raw.fetch_timeout_ms,
        "jwks.fetch_timeout_ms",
        JwksSettings::DEFAULT_FETCH_TIMEOUT_MS,
        FETCH_TIMEOUT_MS_RANGE,
    )?;
    let refresh_interval_secs = number(
        raw.refresh_interval_seconds,
        "jwks.refresh_interval_seconds",
        JwksSettings::DEFAULT_REFRESH_INTERVAL_MS / 1000,
        REFRESH_INTERVAL_SECS_RANGE,
    )?;
    let unknown_kid_secs = number(
        raw.unknown_kid_refresh_min_interval_seconds,
        "jwks.unknown_kid_refresh_min_interval_seconds",
        JwksSettings::DEFAULT_UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS / 1000,
        UNKNOWN_KID_INTERVAL_SECS_RANGE,
    )?;
    let max_stale_secs = number(
        raw.max_stale_seconds,
        "jwks.max_stale_seconds",
        JwksSettings::DEFAULT_MAX_STALE_MS / 1000,
        MAX_STALE_SECS_RANGE,
    )?;
    // Keys that expire before the next scheduled refresh would make every
    // refresh interval end in 503s.
    if max_stale_secs < refresh_interval_secs {
        return fail(
            "jwks.max_stale_seconds",
            format!("must be at least `jwks.refresh_interval_seconds` ({refresh_interval_secs})"),
        );
    }
    let request_wait_ms = number(
        raw.request_wait_ms,
        "jwks.request_wait_ms",
        JwksSettings::DEFAULT_REQUEST_WAIT_MS,
        REQUEST_WAIT_MS_RANGE,
    )?;
    let retry_initial_ms = number(
        raw.retry_initial_ms,
        "jwks.retry_initial_ms",
        JwksSettings::DEFAULT_RETRY_INITIAL_MS,
        RETRY_MS_RANGE,
    )?;
    let retry_max_ms = number(
        raw.retry_max_ms,
        "jwks.retry_max_ms",
        JwksSettings::DEFAULT_RETRY_MAX_MS,
        RETRY_MS_RANGE,
    )?;
    if retry_initial_ms > retry_max_ms {
        return fail(
            "jwks.retry_initial_ms",
            format!("must not exceed `jwks.retry_max_ms` ({retry_max_ms})"),
        );
    }

    Ok(JwksSettings {
        cluster,
        authority,
        keys_path,
        discovery_path,
        fetch_timeout_ms,
        refresh_interval_ms: refresh_interval_secs.saturating_mul(1000),
        unknown_kid_refresh_min_interval_ms: unknown_kid_secs.saturating_mul(1000),
        max_stale_ms: max_stale_secs.saturating_mul(1000),
        request_wait_ms,
        retry_initial_ms,
        retry_max_ms,
    })
}

/// `host` or `host:port`, as sent in `:authority`; a URL here is a common
/// mistake (the scheme belongs to the Envoy cluster's transport socket).
fn compile_callout_authority(authority: String) -> Result<String> {
    let authority = word(authority, "jwks.authority")?;
    if authority.contains('/')
        || authority.contains('?')
        || authority.contains('#')
        || authority.contains('@')
    {
        return fail(
            "jwks.authority",
            "must be a host name with optional port (e.g. login.microsoftonline.com), without scheme or path",
        );
    }
    Ok(authority)
}

fn callout_path(path: String, field: &str) -> Result<String> {
    let path = word(path, field)?;
    if !path.starts_with('/') {
        return fail(field, "must start with `/`");
    }
    if path.contains('#') {
        return fail(field, "must not contain a fragment");
    }
    Ok(path)
}

/// Entra's keys endpoint; multi-tenant APIs use the `common` document, whose
/// keys sign tokens of every tenant.
fn default_keys_path(tenants: &TenantPolicy) -> String {
    match tenants {
        TenantPolicy::Single(tenant) => format!("/{tenant}/discovery/v2.0/keys"),
        TenantPolicy::Multi { .. } => "/common/discovery/v2.0/keys".to_string(),
    }
}

// ----- routes -----

fn compile_unmatched(value: Option<String>) -> Result<UnmatchedRequests> {
    match value.as_deref() {
        None | Some("deny") => Ok(UnmatchedRequests::Deny),
        Some("allow_any_valid_token") => Ok(UnmatchedRequests::AllowAnyValidToken),
        Some(_) => fail(
            "unmatched_requests",
            "must be \"deny\" or \"allow_any_valid_token\"",
        ),
    }
}

fn compile_rules(raw_rules: Vec<RawRule>) -> Result<RouteTable> {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw_rules.len());
    for (index, raw) in raw_rules.into_iter().enumerate() {
        let field = format!("rules[{index}]");
        let rule = compile_rule(raw, &field)?;
        for (earlier_index, earlier) in rules.iter().enumerate() {
            if earlier.name() == rule.name() {
                return fail(
                    format!("{field}.name"),
                    format!(
                        "`{}` is already the name of rules[{earlier_index}]",
                        rule.name()
                    ),
                );
            }
            // A rule that can never match is a configuration bug, often a
            // security one (a stricter rule placed after a broader one).
            if earlier.shadows(&rule) {
                return fail(
                    field,
                    format!(
                        "rule `{}` is never used: the earlier rule `{}` (rules[{earlier_index}]) matches every path and method it matches",
                        rule.name(),
                        earlier.name()
                    ),
                );
            }
        }
        rules.push(rule);
    }
    Ok(RouteTable::new(rules))
}

fn compile_rule(raw: RawRule, field: &str) -> Result<Rule> {
    let name_field = format!("{field}.name");
    let name = label(required(raw.name, &name_field)?, &name_field)?;
    let path = compile_path_match(raw.path, &format!("{field}.path"))?;
    let methods = compile_methods(raw.methods, &format!("{field}.methods"))?;
    let access = compile_access(
        raw.anonymous.unwrap_or(false),
        raw.app_roles,
        raw.scopes,
        raw.allowed_callers,
        raw.trust_caller_without_idtyp.unwrap_or(false),
        field,
    )?;
    Ok(Rule::new(name, path, methods, access))
}

fn compile_path_match(raw: Option<RawPathMatch>, field: &str) -> Result<PathMatch> {
    let raw = required(raw, field)?;
    let (path, kind, make): (String, &str, fn(String) -> PathMatch) = match (raw.exact, raw.prefix)
    {
        (Some(path), None) => (path, "exact", PathMatch::Exact),
        (None, Some(path)) => (path, "prefix", PathMatch::Prefix),
        (Some(_), Some(_)) => return fail(field, "must set exactly one of `exact` and `prefix`"),
        (None, None) => return fail(field, "must set one of `exact` or `prefix`"),
    };
    let field = format!("{field}.{kind}");
    if !path.starts_with('/') {
        return fail(field, "must start with `/`");
    }
    if path.contains(['?', '#']) {
        return fail(
            field,
            "must not contain `?` or `#`: the query string and fragment are ignored when matching",
        );
    }
    // Such paths are never matched at request time (see routes), so a rule
    // written with one would silently never apply.
    if is_ambiguous_path(&path) {
        return fail(
            field,
            "must be a normalised path: no `.` or `..` segments, `//`, `;`, backslashes, control characters or escapes of unreserved characters, `/`, `\\`, `%` or `;`",
        );
    }
    Ok(make(path))
}

fn compile_methods(methods: Option<Vec<String>>, field: &str) -> Result<MethodMatch> {
    let Some(methods) = methods else {
        return Ok(MethodMatch::Any);
    };
    if methods.is_empty() {
        return fail(field, "must not be empty (omit it to match any method)");
    }
    let methods = list(methods, field, |method, field| {
        if is_valid_method(&method) {
            Ok(method)
        } else {
            fail(field, "must be an upper-case HTTP method such as `GET`")
        }
    })?;
    Ok(MethodMatch::OneOf(methods))
}

fn compile_access(
    anonymous: bool,
    app_roles: Option<RawRequirement>,
    scopes: Option<RawRequirement>,
    allowed_callers: Option<Vec<String>>,
    trust_caller_without_idtyp: bool,
    field: &str,
) -> Result<Access> {
    if anonymous {
        // No token is checked on an anonymous rule, so a requirement there
        // would look like protection while protecting nothing.
        let requirements = [
            ("app_roles", app_roles.is_some()),
            ("scopes", scopes.is_some()),
            ("allowed_callers", allowed_callers.is_some()),
            ("trust_caller_without_idtyp", trust_caller_without_idtyp),
        ];
        if let Some((key, _)) = requirements.iter().find(|(_, set)| *set) {
            return fail(
                format!("{field}.{key}"),
                "must not be set on an anonymous rule: no token is checked there",
            );
        }
        return Ok(Access::Anonymous);
    }
    let app_roles = app_roles
        .map(|r| compile_requirement(r, &format!("{field}.app_roles")))
        .transpose()?;
    let scopes = scopes
        .map(|r| compile_requirement(r, &format!("{field}.scopes")))
        .transpose()?;
    let callers = match allowed_callers {
        Some(callers) => Some(CallerRestriction::new(
            list(callers, &format!("{field}.allowed_callers"), guid)?,
            trust_caller_without_idtyp,
        )),
        None if trust_caller_without_idtyp => {
            return fail(
                format!("{field}.trust_caller_without_idtyp"),
                "only applies together with `allowed_callers`",
            )
        }
        None => None,
    };
    Ok(Access::Authenticated(Requirements::new(
        Permissions::new(app_roles, scopes),
        callers,
    )))
}

fn compile_requirement(raw: RawRequirement, field: &str) -> Result<Requirement> {
    match (raw.any_of, raw.all_of) {
        (Some(values), None) => Ok(Requirement::AnyOf(permission_values(
            values,
            &format!("{field}.any_of"),
        )?)),
        (None, Some(values)) => Ok(Requirement::AllOf(permission_values(
            values,
            &format!("{field}.all_of"),
        )?)),
        (Some(_), Some(_)) => fail(field, "must set exactly one of `any_of` and `all_of`"),
        (None, None) => fail(field, "must set one of `any_of` or `all_of`"),
    }
}

/// Role and scope values: Entra allows no whitespace in them (`scp` is
/// space-separated), so a value with whitespace could never be granted.
fn permission_values(values: Vec<String>, field: &str) -> Result<Vec<String>> {
    list(values, field, word)
}

// ----- claim headers -----

fn compile_claim_headers(raw: Option<RawClaimHeaders>) -> Result<ClaimHeaders> {
    let Some(RawClaimHeaders(entries)) = raw else {
        return Ok(ClaimHeaders::default());
    };
    let mut headers = Vec::with_capacity(entries.len());
    for (name, source) in entries {
        let field = format!("claim_headers.{name}");
        check_header_name(&name).map_err(|reason| ConfigError::new(&field, reason))?;
        let Some(source) = ClaimSource::from_name(&source) else {
            let known: Vec<&str> = ClaimSource::ALL.iter().map(|s| s.name()).collect();
            return fail(
                field,
                format!(
                    "unknown claim source `{source}`; expected one of {}",
                    known.join(", ")
                ),
            );
        };
        headers.push((name, source));
    }
    Ok(ClaimHeaders::new(headers))
}
