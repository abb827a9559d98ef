//! The filter's plugin configurations (docs/configuration.md) generated from the policy, and the proof that
//! the filter accepts them: each is compiled with `entragate_core`'s own configuration compiler, the code the
//! `.wasm` runs at start-up.

use super::error::MeshError;
use super::policy::{Access, IdentityProvider, MeshPolicy, PathRule, Rule, Service, Unmatched};
use entragate_core::config::{ConfigError, FilterPolicy};
use entragate_core::outbound::policy::OutboundPolicy;
use serde_json::{json, Map, Value};

/// Envoy cluster names the rendered sidecar defines.
pub const JWKS_CLUSTER: &str = "entra_idp";
pub const AGENT_CLUSTER: &str = "entragate_agent";
/// Plugin root ids: the callee (validating) and caller (token-attaching) roles of the same `.wasm`.
pub const INBOUND_ROOT_ID: &str = "entragate";
pub const OUTBOUND_ROOT_ID: &str = "entragate_outbound";

/// The callee-side configuration of `service`; `jwks_cluster` is the cluster reaching the authority.
pub fn inbound(idp: &IdentityProvider, service: &Service, jwks_cluster: &str) -> Value {
    let mut config = Map::new();
    config.insert("realm".into(), json!(service.name));
    if idp.allowed_tenants.is_empty() {
        config.insert("tenant_id".into(), json!(idp.tenant_id));
    } else {
        let tenants: Vec<&String> = std::iter::once(&idp.tenant_id)
            .chain(&idp.allowed_tenants)
            .collect();
        config.insert("allowed_tenants".into(), json!(tenants));
    }
    config.insert("audiences".into(), json!(service.application.audiences));
    config.insert(
        "issuer_base".into(),
        json!({ "v1": idp.cloud.v1_issuer(), "v2": idp.cloud.login() }),
    );
    config.insert(
        "jwks".into(),
        json!({ "cluster": jwks_cluster, "authority": idp.authority.host_header() }),
    );
    config.insert(
        "unmatched_requests".into(),
        json!(match service.unmatched {
            Unmatched::Deny => "deny",
            Unmatched::AllowAnyValidToken => "allow_any_valid_token",
        }),
    );
    config.insert(
        "rules".into(),
        Value::Array(service.rules.iter().map(rule).collect()),
    );
    Value::Object(config)
}

/// Adds `workload_binding` (docs/configuration.md) to a callee configuration when some of its rules are
/// bound: every service's workload identity with its client id, and the bound rules' names. Only where the
/// callee's own listener terminates mTLS (the Envoy sidecar, Istio), so the filter sees the peer certificate.
pub fn bind_workloads(config: &mut Value, policy: &MeshPolicy, service: &Service) {
    let rules: Vec<&str> = service
        .rules
        .iter()
        .filter(|r| r.bind_to_workload)
        .map(|r| r.name.as_str())
        .collect();
    if rules.is_empty() {
        return;
    }
    let workloads: Map<String, Value> = policy
        .services()
        .iter()
        .map(|s| {
            (
                s.workload.value().to_string(),
                json!(s.application.client_id),
            )
        })
        .collect();
    if let Value::Object(config) = config {
        config.insert(
            "workload_binding".into(),
            json!({ "workloads": workloads, "rules": rules }),
        );
    }
}

fn rule(rule: &Rule) -> Value {
    let mut r = Map::new();
    r.insert("name".into(), json!(rule.name));
    r.insert(
        "path".into(),
        match &rule.path {
            PathRule::Exact(p) => json!({ "exact": p }),
            PathRule::Prefix(p) => json!({ "prefix": p }),
        },
    );
    if !rule.methods.is_empty() {
        r.insert("methods".into(), json!(rule.methods));
    }
    match &rule.access {
        Access::Anonymous => {
            r.insert("anonymous".into(), json!(true));
        }
        Access::Token {
            roles,
            scopes,
            all,
            callers,
        } => {
            let mode = if *all { "all_of" } else { "any_of" };
            if !roles.is_empty() {
                r.insert("app_roles".into(), json!({ mode: roles }));
            }
            if !scopes.is_empty() {
                r.insert("scopes".into(), json!({ mode: scopes }));
            }
            if !callers.is_empty() {
                let ids: Vec<&str> = callers.iter().map(|c| c.client_id.as_str()).collect();
                r.insert("allowed_callers".into(), json!(ids));
            }
        }
    }
    Value::Object(r)
}

/// The caller-side configuration of `service`: one destination per service it calls, matched by the
/// destination's cluster. `agent_key` is the content of the agent key file.
pub fn outbound(policy: &MeshPolicy, service: &Service, agent_key: &str) -> Value {
    let destinations: Vec<Value> = service
        .destinations
        .iter()
        .filter_map(|name| policy.service(name))
        .map(|callee| {
            json!({
                "name": callee.name,
                "scope": callee.application.default_scope(),
                "clusters": [callee.cluster_name()],
            })
        })
        .collect();
    json!({
        "agent": { "cluster": AGENT_CLUSTER, "key": agent_key },
        "destinations": destinations,
        // Every route leads to a destination; anything else is refused rather than sent without a token.
        "unmatched_requests": "deny",
    })
}

/// Compiles the callee configuration with the filter's compiler.
pub fn check_inbound(config: &Value, service: &Service) -> Result<(), MeshError> {
    FilterPolicy::from_json(config.to_string().as_bytes())
        .map(|_| ())
        .map_err(|e| mesh_error(&e, service))
}

/// Compiles the caller configuration with the filter's compiler.
pub fn check_outbound(config: &Value, service: &Service) -> Result<(), MeshError> {
    OutboundPolicy::from_json(config.to_string().as_bytes())
        .map(|_| ())
        .map_err(|e| {
            // Never echo the configuration: it carries the agent key.
            MeshError::new(
                format!("services.{}", service.name),
                format!(
                    "the filter refuses the generated outbound configuration (field `{}`): {}",
                    e.field, e.message
                ),
            )
        })
}

/// Both roles of every service, with a placeholder agent key (the real key is checked at render time).
pub(super) fn check_all(policy: &MeshPolicy) -> Vec<MeshError> {
    let placeholder_key = "0".repeat(64);
    let mut errors = Vec::new();
    for service in policy.services() {
        if service.is_callee() {
            let mut config = inbound(policy.identity_provider(), service, JWKS_CLUSTER);
            bind_workloads(&mut config, policy, service);
            if let Err(e) = check_inbound(&config, service) {
                errors.push(e);
            }
        }
        if service.is_caller() {
            let config = outbound(policy, service, &placeholder_key);
            if let Err(e) = check_outbound(&config, service) {
                errors.push(e);
            }
        }
    }
    errors
}

/// `rules[1].path` of the plugin configuration is `services.<name>.rules[1].path` of the policy (rules map
/// one to one); other fields are named as the filter's.
fn mesh_error(e: &ConfigError, service: &Service) -> MeshError {
    let base = format!("services.{}", service.name);
    if e.field.starts_with("rules[") {
        MeshError::new(format!("{base}.{}", e.field), e.message.clone())
    } else {
        MeshError::new(
            base,
            format!(
                "the filter refuses field `{}` of the generated configuration: {}",
                e.field, e.message
            ),
        )
    }
}
