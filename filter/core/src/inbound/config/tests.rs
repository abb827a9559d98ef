//! End-to-end tests of configuration loading: JSON in, policy or field error out.

use serde_json::{json, Value};

use super::{ConfigError, FilterPolicy};
use crate::claims::Claims;
use crate::error::AuthError;
use crate::inbound::jwks::JwksSettings;
use crate::inbound::policy::{
    authorize, Access, ClaimHeaders, ClaimSource, MethodMatch, PathMatch, UnmatchedRequests,
};
use crate::options::{Algorithm, IssuerPolicy, TenantPolicy, VerifyOptions};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CALLER: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";

/// The smallest valid configuration.
fn minimal() -> Value {
    json!({
        "tenant_id": TENANT,
        "audiences": ["api://fintech-fraud-detector"],
        "jwks": {"cluster": "entra_idp", "authority": "login.microsoftonline.com"}
    })
}

/// The example of docs/configuration.md.
fn documented_example() -> Value {
    json!({
      "realm": "fraud-detector",
      "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
      "audiences": ["6e74172b-be56-4843-9ff4-e66a39bb12e3", "api://fintech-fraud-detector"],
      "jwks": {
        "cluster": "entra_idp",
        "authority": "login.microsoftonline.com"
      },
      "rules": [
        { "name": "health", "path": { "exact": "/healthz" }, "methods": ["GET"], "anonymous": true },
        { "name": "analyze", "path": { "prefix": "/fraud/" }, "methods": ["POST"],
          "app_roles": { "any_of": ["Fraud.Scan"] },
          "allowed_callers": ["c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6"] }
      ]
    })
}

fn compile(config: &Value) -> Result<FilterPolicy, ConfigError> {
    FilterPolicy::from_json(config.to_string().as_bytes())
}

fn accepted(config: &Value) -> FilterPolicy {
    compile(config).unwrap_or_else(|e| panic!("rejected: {e}"))
}

/// Asserts the configuration is rejected for `field` and returns the error.
fn rejected(config: &Value, field: &str) -> ConfigError {
    let error = compile(config).expect_err("must be rejected");
    assert_eq!(error.field, field, "{error}");
    assert!(!error.message.is_empty());
    error
}

/// `config` with the value at JSON pointer `pointer` replaced (or added).
fn with(config: &Value, pointer: &str, value: Value) -> Value {
    let mut config = config.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let target = config.pointer_mut(parent).expect("parent exists");
    match target {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().expect("index")] = value,
        _ => panic!("not a container: {parent}"),
    }
    config
}

/// `config` without the field at `pointer`.
fn without(config: &Value, pointer: &str) -> Value {
    let mut config = config.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    config
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("object")
        .remove(key);
    config
}

fn with_rules(rules: Value) -> Value {
    with(&minimal(), "/rules", rules)
}

// ----- whole documents -----

#[test]
fn minimal_configuration_gets_every_default() {
    let policy = accepted(&minimal());
    assert_eq!(policy.realm, "entragate");
    assert_eq!(
        policy.verify,
        VerifyOptions::single_tenant(TENANT, vec!["api://fintech-fraud-detector".into()])
    );
    assert_eq!(
        policy.jwks,
        JwksSettings::new(
            "entra_idp",
            "login.microsoftonline.com",
            &format!("/{TENANT}/discovery/v2.0/keys")
        )
    );
    assert_eq!(policy.unmatched, UnmatchedRequests::Deny);
    assert!(policy.routes.rules().is_empty());
    assert_eq!(policy.claim_headers, ClaimHeaders::default());
}

#[test]
fn documented_example_is_accepted() {
    let policy = accepted(&documented_example());
    assert_eq!(policy.realm, "fraud-detector");
    let rules = policy.routes.rules();
    assert_eq!(rules.len(), 2);
    assert!(rules[0].is_anonymous());
    assert_eq!(rules[0].path(), &PathMatch::Exact("/healthz".into()));
    assert_eq!(rules[1].methods(), &MethodMatch::OneOf(vec!["POST".into()]));
    let analyze = policy
        .routes
        .resolve("POST", "/fraud/scan?x=1", policy.unmatched)
        .expect("analyze matches")
        .expect("a rule matches");
    assert_eq!(analyze.name(), "analyze");
    let claims = Claims {
        ver: Some("2.0".into()),
        azp: Some(CALLER.into()),
        idtyp: Some("app".into()),
        roles: vec!["Fraud.Scan".into()],
        ..Claims::default()
    };
    assert_eq!(authorize(analyze.access(), &claims), Ok(()));
}

#[test]
fn every_field_set_is_compiled() {
    let config = json!({
        "realm": "api \"one\"",
        "allowed_tenants": ["72F988BF-86F1-41AF-91AB-2D7CD011DB47", "0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5",
                            "72f988bf-86f1-41af-91ab-2d7cd011db47"],
        "audiences": ["6E74172B-BE56-4843-9FF4-E66A39BB12E3", "api://x", "api://x"],
        "issuer_base": {"v1": "http://localhost:8080/sts/", "v2": "https://login.microsoftonline.us"},
        "accepted_versions": ["2.0"],
        "algorithms": ["RS512", "RS256", "RS512"],
        "leeway_seconds": 0,
        "max_token_bytes": 8192,
        "jwks": {
            "cluster": "idp", "authority": "localhost:8080",
            "keys_path": "/keys?appid=1", "discovery_path": "/common/v2.0/.well-known/openid-configuration",
            "fetch_timeout_ms": 2000, "refresh_interval_seconds": 600,
            "unknown_kid_refresh_min_interval_seconds": 30, "max_stale_seconds": 7200,
            "request_wait_ms": 1500, "retry_initial_ms": 250, "retry_max_ms": 8000
        },
        "unmatched_requests": "allow_any_valid_token",
        "rules": [],
        "claim_headers": {"x-caller-app": "caller", "x-scopes": "scopes"}
    });
    let policy = accepted(&config);
    assert_eq!(policy.realm, "api \"one\"");
    assert_eq!(
        policy.verify,
        VerifyOptions {
            algorithms: vec![Algorithm::RS512, Algorithm::RS256],
            leeway_secs: 0,
            max_token_bytes: 8192,
            audiences: vec![
                "6e74172b-be56-4843-9ff4-e66a39bb12e3".into(),
                "api://x".into()
            ],
            issuer: IssuerPolicy {
                v1_authority: "http://localhost:8080/sts".into(),
                v2_authority: "https://login.microsoftonline.us".into(),
                tenants: TenantPolicy::Multi {
                    allowed: vec![TENANT.into(), "0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5".into()]
                },
                accept_v1: false,
                accept_v2: true,
            },
        }
    );
    assert_eq!(
        policy.jwks,
        JwksSettings {
            cluster: "idp".into(),
            authority: "localhost:8080".into(),
            keys_path: "/keys?appid=1".into(),
            discovery_path: Some("/common/v2.0/.well-known/openid-configuration".into()),
            fetch_timeout_ms: 2000,
            refresh_interval_ms: 600_000,
            unknown_kid_refresh_min_interval_ms: 30_000,
            max_stale_ms: 7_200_000,
            request_wait_ms: 1500,
            retry_initial_ms: 250,
            retry_max_ms: 8000,
        }
    );
    assert_eq!(policy.unmatched, UnmatchedRequests::AllowAnyValidToken);
    let headers: Vec<_> = policy
        .claim_headers
        .headers()
        .iter()
        .map(|h| (h.name(), h.source()))
        .collect();
    assert_eq!(
        headers,
        [
            ("x-caller-app", ClaimSource::Caller),
            ("x-scopes", ClaimSource::Scopes)
        ]
    );
}

#[test]
fn parse_errors_name_the_field() {
    let config = with(
        &documented_example(),
        "/rules/1/app_role",
        json!({"any_of": ["x"]}),
    );
    let error = rejected(&config, "rules[1].app_role");
    assert!(
        error.message.contains("unknown field `app_role`"),
        "{error}"
    );
    assert!(error.message.contains("line 1 column"), "{error}");
    rejected(
        &with(&minimal(), "/jwks/refresh_interval", json!(5)),
        "jwks.refresh_interval",
    );
    rejected(
        &with(&minimal(), "/leeway_seconds", json!("5")),
        "leeway_seconds",
    );
    let error = FilterPolicy::from_json(b"not json").expect_err("rejected");
    assert_eq!(error.field, "");
}

// ----- realm -----

#[test]
fn realm() {
    rejected(&with(&minimal(), "/realm", json!("")), "realm");
    rejected(&with(&minimal(), "/realm", json!("a\r\nb")), "realm");
    rejected(&with(&minimal(), "/realm", json!("réalm")), "realm");
    rejected(&with(&minimal(), "/realm", json!("r".repeat(129))), "realm");
    assert_eq!(
        accepted(&with(&minimal(), "/realm", json!("my api"))).realm,
        "my api"
    );
}

// ----- tenants -----

#[test]
fn tenant_id_is_a_normalised_guid() {
    let policy = accepted(&with(
        &minimal(),
        "/tenant_id",
        json!(TENANT.to_ascii_uppercase()),
    ));
    assert_eq!(
        policy.verify.issuer.tenants,
        TenantPolicy::Single(TENANT.into())
    );
    for bad in [
        "common",
        "organizations",
        "",
        "72f988bf86f141af91ab2d7cd011db47",
        "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
        "72f988bf-86f1-41af-91ab-2d7cd011db4",
        "72f988bf-86f1-41af-91ab-2d7cd011db47 ",
        "72f988bg-86f1-41af-91ab-2d7cd011db47",
        "72f988bf-86f1-41af-91ab_2d7cd011db47",
    ] {
        rejected(&with(&minimal(), "/tenant_id", json!(bad)), "tenant_id");
    }
}

#[test]
fn tenant_id_or_allowed_tenants() {
    rejected(&without(&minimal(), "/tenant_id"), "tenant_id");
    rejected(
        &with(&minimal(), "/allowed_tenants", json!([TENANT])),
        "allowed_tenants",
    );
    let multi = with(
        &without(&minimal(), "/tenant_id"),
        "/allowed_tenants",
        json!([TENANT]),
    );
    let policy = accepted(&multi);
    assert_eq!(
        policy.verify.issuer.tenants,
        TenantPolicy::Multi {
            allowed: vec![TENANT.into()]
        }
    );
    assert_eq!(policy.jwks.keys_path, "/common/discovery/v2.0/keys");
    rejected(
        &with(&multi, "/allowed_tenants", json!([])),
        "allowed_tenants",
    );
    rejected(
        &with(&multi, "/allowed_tenants", json!([TENANT, "common"])),
        "allowed_tenants[1]",
    );
}

// ----- audiences -----

#[test]
fn audiences() {
    rejected(&without(&minimal(), "/audiences"), "audiences");
    let error = rejected(&with(&minimal(), "/audiences", json!([])), "audiences");
    assert_eq!(
        error.to_string(),
        "configuration field `audiences`: must not be empty"
    );
    rejected(
        &with(&minimal(), "/audiences", json!(["api://x", ""])),
        "audiences[1]",
    );
    rejected(
        &with(&minimal(), "/audiences", json!([" api://x"])),
        "audiences[0]",
    );
    rejected(
        &with(&minimal(), "/audiences", json!(["api://x\n"])),
        "audiences[0]",
    );
}

// ----- issuer authorities -----

#[test]
fn issuer_base_urls() {
    let set = |key: &str, value: &str| with(&minimal(), "/issuer_base", json!({ key: value }));
    let policy = accepted(&set("v2", "https://login.microsoftonline.com/"));
    assert_eq!(
        policy.verify.issuer.v2_authority,
        "https://login.microsoftonline.com"
    );
    assert_eq!(policy.verify.issuer.v1_authority, "https://sts.windows.net");
    assert_eq!(
        accepted(&set("v1", "http://127.0.0.1:9000"))
            .verify
            .issuer
            .v1_authority,
        "http://127.0.0.1:9000"
    );
    for bad in [
        "login.microsoftonline.com",
        "ftp://login.microsoftonline.com",
        "HTTPS://login.microsoftonline.com",
        "https://",
        "https:///path",
        "https://login.microsoftonline.com//",
        "https://login.microsoftonline.com?x=1",
        "https://login.microsoftonline.com#x",
        "https://login microsoftonline.com",
        "",
    ] {
        rejected(&set("v2", bad), "issuer_base.v2");
        rejected(&set("v1", bad), "issuer_base.v1");
    }
}

#[test]
fn the_old_top_level_authority_is_refused_with_a_hint() {
    // Renamed because it was confused with `jwks.authority`: an old config
    // must fail loudly, never be ignored (its issuer bases would be lost).
    for old in [
        json!({"v2": "https://login.microsoftonline.us"}),
        json!("login.microsoftonline.com"),
        Value::Null,
    ] {
        let error = rejected(&with(&minimal(), "/authority", old), "authority");
        assert!(error.message.contains("issuer_base"), "{error}");
        assert!(error.message.contains("jwks.authority"), "{error}");
    }
}

// ----- versions, algorithms, limits -----

#[test]
fn accepted_versions() {
    let v1_only = accepted(&with(&minimal(), "/accepted_versions", json!(["1.0"])));
    assert!(v1_only.verify.issuer.accept_v1 && !v1_only.verify.issuer.accept_v2);
    rejected(
        &with(&minimal(), "/accepted_versions", json!([])),
        "accepted_versions",
    );
    rejected(
        &with(&minimal(), "/accepted_versions", json!(["2.0", "2"])),
        "accepted_versions[1]",
    );
}

#[test]
fn algorithms_are_rsa_only() {
    let policy = accepted(&with(&minimal(), "/algorithms", json!(["RS384"])));
    assert_eq!(policy.verify.algorithms, [Algorithm::RS384]);
    rejected(&with(&minimal(), "/algorithms", json!([])), "algorithms");
    for bad in ["HS256", "none", "None", "rs256", "ES256", "PS256", ""] {
        let error = rejected(
            &with(&minimal(), "/algorithms", json!(["RS256", bad])),
            "algorithms[1]",
        );
        assert!(error.message.contains("not allowed"), "{error}");
    }
}

#[test]
fn leeway_and_token_size_bounds() {
    assert_eq!(
        accepted(&with(&minimal(), "/leeway_seconds", json!(3600)))
            .verify
            .leeway_secs,
        3600
    );
    rejected(
        &with(&minimal(), "/leeway_seconds", json!(3601)),
        "leeway_seconds",
    );
    for ok in [1024, 65536] {
        assert_eq!(
            accepted(&with(&minimal(), "/max_token_bytes", json!(ok)))
                .verify
                .max_token_bytes,
            ok
        );
    }
    for bad in [0, 1023, 65537] {
        rejected(
            &with(&minimal(), "/max_token_bytes", json!(bad)),
            "max_token_bytes",
        );
    }
}

// ----- jwks -----

#[test]
fn jwks_source() {
    rejected(&without(&minimal(), "/jwks"), "jwks");
    rejected(&without(&minimal(), "/jwks/cluster"), "jwks.cluster");
    rejected(&without(&minimal(), "/jwks/authority"), "jwks.authority");
    rejected(
        &with(&minimal(), "/jwks/cluster", json!("")),
        "jwks.cluster",
    );
    rejected(
        &with(&minimal(), "/jwks/cluster", json!("entra idp")),
        "jwks.cluster",
    );
    for bad in [
        "",
        "https://login.microsoftonline.com",
        "login.microsoftonline.com/x",
        "a b",
        "u@host",
    ] {
        rejected(
            &with(&minimal(), "/jwks/authority", json!(bad)),
            "jwks.authority",
        );
    }
    for bad in ["", "keys", "/keys#x", "/ke ys"] {
        rejected(
            &with(&minimal(), "/jwks/keys_path", json!(bad)),
            "jwks.keys_path",
        );
        rejected(
            &with(&minimal(), "/jwks/discovery_path", json!(bad)),
            "jwks.discovery_path",
        );
    }
}

#[test]
fn jwks_intervals() {
    for (field, bad) in [
        ("fetch_timeout_ms", 0),
        ("fetch_timeout_ms", 60_001),
        ("refresh_interval_seconds", 0),
        ("refresh_interval_seconds", 86_401),
        ("unknown_kid_refresh_min_interval_seconds", 0),
        ("unknown_kid_refresh_min_interval_seconds", 86_401),
        ("max_stale_seconds", 0),
        ("max_stale_seconds", 604_801),
        ("request_wait_ms", 0),
        ("request_wait_ms", 60_001),
        ("retry_initial_ms", 0),
        ("retry_max_ms", 0),
        ("retry_max_ms", 3_600_001),
    ] {
        rejected(
            &with(&minimal(), &format!("/jwks/{field}"), json!(bad)),
            &format!("jwks.{field}"),
        );
    }
    // Keys must not go stale between two scheduled refreshes.
    let config = with(&minimal(), "/jwks/refresh_interval_seconds", json!(7200));
    rejected(
        &with(&config, "/jwks/max_stale_seconds", json!(3600)),
        "jwks.max_stale_seconds",
    );
    assert_eq!(
        accepted(&with(&config, "/jwks/max_stale_seconds", json!(7200)))
            .jwks
            .max_stale_ms,
        7_200_000
    );
    // The first retry delay cannot exceed the largest one.
    rejected(
        &with(&minimal(), "/jwks/retry_initial_ms", json!(60_001)),
        "jwks.retry_initial_ms",
    );
    rejected(
        &with(&minimal(), "/jwks/retry_max_ms", json!(999)),
        "jwks.retry_initial_ms",
    );
}

// ----- unmatched requests -----

#[test]
fn unmatched_requests() {
    assert_eq!(
        accepted(&with(&minimal(), "/unmatched_requests", json!("deny"))).unmatched,
        UnmatchedRequests::Deny
    );
    for bad in ["allow", "Deny", ""] {
        rejected(
            &with(&minimal(), "/unmatched_requests", json!(bad)),
            "unmatched_requests",
        );
    }
}

// ----- rules -----

fn rule(name: &str, prefix: &str) -> Value {
    json!({"name": name, "path": {"prefix": prefix}})
}

#[test]
fn rule_name() {
    rejected(
        &with_rules(json!([{"path": {"exact": "/"}}])),
        "rules[0].name",
    );
    rejected(
        &with_rules(json!([{"name": "", "path": {"exact": "/"}}])),
        "rules[0].name",
    );
    rejected(
        &with_rules(json!([{"name": "a\nb", "path": {"exact": "/"}}])),
        "rules[0].name",
    );
    let error = rejected(
        &with_rules(json!([rule("a", "/x/"), rule("a", "/y/")])),
        "rules[1].name",
    );
    assert!(error.message.contains("rules[0]"), "{error}");
}

#[test]
fn rule_path() {
    rejected(&with_rules(json!([{"name": "a"}])), "rules[0].path");
    rejected(
        &with_rules(json!([{"name": "a", "path": {}}])),
        "rules[0].path",
    );
    rejected(
        &with_rules(json!([{"name": "a", "path": {"exact": "/a", "prefix": "/a"}}])),
        "rules[0].path",
    );
    rejected(
        &with_rules(json!([{"name": "a", "path": {"exact": "healthz"}}])),
        "rules[0].path.exact",
    );
    rejected(
        &with_rules(json!([{"name": "a", "path": {"exact": ""}}])),
        "rules[0].path.exact",
    );
    rejected(
        &with_rules(json!([{"name": "a", "path": {"exact": "/a?b=1"}}])),
        "rules[0].path.exact",
    );
    for bad in [
        "/a/../b/", "/a/./", "//a/", "/a;b/", "/a\\b/", "/a%2fb/", "/%2E/", "/a%41/", "/a/%",
    ] {
        rejected(&with_rules(json!([rule("a", bad)])), "rules[0].path.prefix");
    }
    let policy = accepted(&with_rules(json!([rule("a", "/a%20b/")])));
    assert_eq!(
        policy.routes.rules()[0].path(),
        &PathMatch::Prefix("/a%20b/".into())
    );
}

#[test]
fn rule_methods() {
    let config = |methods: Value| {
        with_rules(json!([{"name": "a", "path": {"exact": "/"}, "methods": methods}]))
    };
    rejected(&config(json!([])), "rules[0].methods");
    rejected(&config(json!(["GET", "get"])), "rules[0].methods[1]");
    rejected(&config(json!([""])), "rules[0].methods[0]");
    rejected(&config(json!(["G T"])), "rules[0].methods[0]");
    let policy = accepted(&config(json!(["GET", "POST", "GET"])));
    assert_eq!(
        policy.routes.rules()[0].methods(),
        &MethodMatch::OneOf(vec!["GET".into(), "POST".into()])
    );
}

#[test]
fn anonymous_rules_have_no_requirements() {
    let anonymous = |key: &str, value: Value| {
        let mut r = json!({"name": "h", "path": {"exact": "/healthz"}, "anonymous": true});
        r[key] = value;
        with_rules(json!([r]))
    };
    rejected(
        &anonymous("app_roles", json!({"any_of": ["A"]})),
        "rules[0].app_roles",
    );
    rejected(
        &anonymous("scopes", json!({"any_of": ["A"]})),
        "rules[0].scopes",
    );
    rejected(
        &anonymous("allowed_callers", json!([CALLER])),
        "rules[0].allowed_callers",
    );
    rejected(
        &anonymous("trust_caller_without_idtyp", json!(true)),
        "rules[0].trust_caller_without_idtyp",
    );
    let policy = accepted(&anonymous("trust_caller_without_idtyp", json!(false)));
    assert_eq!(policy.routes.rules()[0].access(), &Access::Anonymous);
    let not_anonymous =
        with_rules(json!([{"name": "h", "path": {"exact": "/"}, "anonymous": false}]));
    assert!(!accepted(&not_anonymous).routes.rules()[0].is_anonymous());
}

#[test]
fn requirements() {
    let config = |key: &str, requirement: Value| {
        let mut r = json!({"name": "a", "path": {"prefix": "/a/"}});
        r[key] = requirement;
        with_rules(json!([rule("first", "/first/"), r]))
    };
    for key in ["app_roles", "scopes"] {
        let error = rejected(
            &config(key, json!({"any_of": []})),
            &format!("rules[1].{key}.any_of"),
        );
        assert_eq!(
            error.to_string(),
            format!("configuration field `rules[1].{key}.any_of`: must not be empty")
        );
        rejected(
            &config(key, json!({"all_of": []})),
            &format!("rules[1].{key}.all_of"),
        );
        rejected(&config(key, json!({})), &format!("rules[1].{key}"));
        rejected(
            &config(key, json!({"any_of": ["A"], "all_of": ["B"]})),
            &format!("rules[1].{key}"),
        );
        rejected(
            &config(key, json!({"any_of": ["A", ""]})),
            &format!("rules[1].{key}.any_of[1]"),
        );
        rejected(
            &config(key, json!({"all_of": ["A B"]})),
            &format!("rules[1].{key}.all_of[0]"),
        );
        rejected(
            &config(key, json!({"all_of": ["A\n"]})),
            &format!("rules[1].{key}.all_of[0]"),
        );
    }
}

#[test]
fn compiled_rule_precomputes_the_challenge_scope() {
    let config = with_rules(json!([{
        "name": "a", "path": {"prefix": "/a/"},
        "app_roles": {"all_of": ["Fraud.Scan", "Fraud.Scan"]}, "scopes": {"any_of": ["Fraud.User"]}
    }]));
    let policy = accepted(&config);
    let Access::Authenticated(requirements) = policy.routes.rules()[0].access() else {
        panic!("not anonymous");
    };
    let permissions = requirements.permissions().expect("permissions");
    assert_eq!(permissions.challenge_scope(), "Fraud.Scan Fraud.User");
    let denial = authorize(policy.routes.rules()[0].access(), &Claims::default()).unwrap_err();
    assert_eq!(denial.error, AuthError::PermissionMissing);
    assert_eq!(
        denial.required_scope.as_deref(),
        Some("Fraud.Scan Fraud.User")
    );
}

#[test]
fn allowed_callers() {
    let config = |callers: Value| {
        with_rules(json!([{"name": "a", "path": {"prefix": "/a/"}, "allowed_callers": callers}]))
    };
    rejected(&config(json!([])), "rules[0].allowed_callers");
    rejected(
        &config(json!([CALLER, "my-app"])),
        "rules[0].allowed_callers[1]",
    );
    let policy = accepted(&config(json!([CALLER.to_ascii_uppercase(), CALLER])));
    let Access::Authenticated(requirements) = policy.routes.rules()[0].access() else {
        panic!("not anonymous");
    };
    let callers = requirements.callers().expect("callers");
    assert_eq!(callers.allowed(), [CALLER]);
    assert!(!callers.trusts_caller_without_idtyp());
    assert!(requirements.permissions().is_none());
}

#[test]
fn trust_caller_without_idtyp_needs_allowed_callers() {
    let lone = with_rules(
        json!([{"name": "a", "path": {"prefix": "/a/"}, "trust_caller_without_idtyp": true}]),
    );
    rejected(&lone, "rules[0].trust_caller_without_idtyp");
    let together = with(&lone, "/rules/0/allowed_callers", json!([CALLER]));
    let policy = accepted(&together);
    let Access::Authenticated(requirements) = policy.routes.rules()[0].access() else {
        panic!("not anonymous");
    };
    assert!(requirements
        .callers()
        .expect("callers")
        .trusts_caller_without_idtyp());
}

#[test]
fn shadowed_rules_are_rejected_naming_both() {
    let error = rejected(
        &with_rules(json!([
            rule("broad", "/fraud/"),
            rule("narrow", "/fraud/admin/")
        ])),
        "rules[1]",
    );
    assert!(
        error.message.contains("`narrow`") && error.message.contains("`broad`"),
        "{error}"
    );
    assert!(error.message.contains("rules[0]"), "{error}");
    let exact_after_prefix =
        json!([rule("all", "/"), {"name": "h", "path": {"exact": "/healthz"}}]);
    rejected(&with_rules(exact_after_prefix), "rules[1]");
    let same_exact = json!([
        {"name": "a", "path": {"exact": "/x"}, "methods": ["GET", "POST"]},
        {"name": "b", "path": {"exact": "/x"}, "methods": ["POST"]}
    ]);
    rejected(&with_rules(same_exact), "rules[1]");
    // Narrow first, then broad, is the intended order.
    accepted(&with_rules(json!([
        rule("narrow", "/fraud/admin/"),
        rule("broad", "/fraud/")
    ])));
    // Fewer methods earlier does not shadow.
    let methods = json!([
        {"name": "get", "path": {"prefix": "/x/"}, "methods": ["GET"]},
        {"name": "all", "path": {"prefix": "/x/"}}
    ]);
    accepted(&with_rules(methods));
}

// ----- claim headers -----

#[test]
fn claim_headers() {
    let config = |headers: Value| with(&minimal(), "/claim_headers", headers);
    assert_eq!(
        accepted(&config(json!({}))).claim_headers.names().count(),
        0
    );
    rejected(
        &config(json!({"X-Entra-Caller": "caller"})),
        "claim_headers.X-Entra-Caller",
    );
    rejected(&config(json!({":path": "caller"})), "claim_headers.:path");
    rejected(
        &config(json!({"authorization": "caller"})),
        "claim_headers.authorization",
    );
    rejected(&config(json!({"host": "tid"})), "claim_headers.host");
    rejected(
        &config(json!({"content-length": "tid"})),
        "claim_headers.content-length",
    );
    rejected(
        &config(json!({"x-envoy-peer": "tid"})),
        "claim_headers.x-envoy-peer",
    );
    rejected(&config(json!({"x a": "tid"})), "claim_headers.x a");
    let error = rejected(&config(json!({"x-a": "scp"})), "claim_headers.x-a");
    assert!(
        error
            .message
            .contains("caller, roles, scopes, tid, oid, sub, ver, idtyp"),
        "{error}"
    );
    rejected(&config(json!({"x-a": "Roles"})), "claim_headers.x-a");
}

#[test]
fn audit_fields_are_published_unless_switched_off() {
    assert!(accepted(&minimal()).audit_fields);
    assert!(!accepted(&with(&minimal(), "/audit_fields", json!(false))).audit_fields);
    rejected(
        &with(&minimal(), "/audit_fields", json!("no")),
        "audit_fields",
    );
}

#[test]
fn performance_settings() {
    use crate::options::SignatureBackend;

    let policy = accepted(&minimal());
    assert_eq!(policy.token_cache_size, 4096);
    assert_eq!(policy.signature_verifier, SignatureBackend::Auto);

    let policy = accepted(&with(&minimal(), "/token_cache_size", json!(0)));
    assert_eq!(policy.token_cache_size, 0);
    let policy = accepted(&with(&minimal(), "/token_cache_size", json!(65536)));
    assert_eq!(policy.token_cache_size, 65536);
    rejected(
        &with(&minimal(), "/token_cache_size", json!(65537)),
        "token_cache_size",
    );
    rejected(
        &with(&minimal(), "/token_cache_size", json!(-1)),
        "token_cache_size",
    );

    for (name, backend) in [
        ("auto", SignatureBackend::Auto),
        ("host", SignatureBackend::Host),
        ("pure", SignatureBackend::Pure),
    ] {
        let policy = accepted(&with(&minimal(), "/signature_verifier", json!(name)));
        assert_eq!(policy.signature_verifier, backend);
        assert_eq!(backend.name(), name);
    }
    for bad in [json!("Pure"), json!("boringssl"), json!("")] {
        rejected(
            &with(&minimal(), "/signature_verifier", bad),
            "signature_verifier",
        );
    }
}
