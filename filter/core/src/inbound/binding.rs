//! Token bound to the workload: over mTLS, the token's caller must be the application that runs as the
//! connection's peer workload.
//!
//! Entra does not bind client-credentials tokens to a key, so a bearer token copied from one workload is
//! valid from any other. The mTLS peer certificate, verified by Envoy against the mesh CA, names the calling
//! workload (`connection.uri_san_peer_certificate` / `connection.dns_san_peer_certificate`); the policy says
//! which application (client id) runs as each workload. A token whose caller (`azp`/`appid`) is not that
//! application is refused with [`AuthError::WorkloadMismatch`], however valid it is otherwise.
//!
//! Configured as `workload_binding` in the plugin configuration (docs/configuration.md): the workload ->
//! client id map and the names of the rules it applies to. Pure: the adapter reads the peer identities.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::AuthError;
use crate::guid::is_guid;
use crate::inbound::policy::RouteTable;
use crate::plugin_config::checks::{fail, Result};

/// `workload_binding` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkloadBinding {
    /// Workload identity (URI or DNS SAN) -> the client id of the app running as it. Required, non-empty.
    pub workloads: Option<RawWorkloads>,
    /// Names of the rules whose requests are bound. Required (may be empty).
    pub rules: Option<Vec<String>>,
}

/// The `workloads` object's members in document order. Read without a map
/// type so that a repeated identity is seen (and refused) instead of silently
/// keeping the last one, and so the module carries no B-tree code for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawWorkloads(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for RawWorkloads {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawWorkloads;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of workload identity -> client id")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawWorkloads, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, String>()? {
                    members.push(member);
                }
                Ok(RawWorkloads(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// The compiled binding: which app runs as which workload. Which rules are
/// bound is compiled into the rules themselves ([`Rule::is_bound_to_workload`]),
/// so no rule name is compared at request time.
///
/// [`Rule::is_bound_to_workload`]: crate::inbound::policy::Rule::is_bound_to_workload
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadBinding {
    /// `(workload identity, lower-case client id)`.
    workloads: Vec<(String, String)>,
}

impl WorkloadBinding {
    /// Compiles the map and marks the named rules of `routes` as bound.
    pub fn compile(raw: RawWorkloadBinding, routes: &mut RouteTable) -> Result<WorkloadBinding> {
        let Some(RawWorkloads(map)) = raw.workloads else {
            return fail("workload_binding.workloads", "required");
        };
        if map.is_empty() {
            return fail("workload_binding.workloads", "must not be empty");
        }
        let mut workloads = Vec::with_capacity(map.len());
        for (identity, client_id) in map {
            let field = format!("workload_binding.workloads.{identity}");
            if identity.is_empty() || identity.chars().any(char::is_control) {
                return fail(
                    field,
                    "a workload identity must be non-empty, without control characters",
                );
            }
            if workloads.iter().any(|(known, _)| *known == identity) {
                return fail(field, "listed twice");
            }
            if !is_guid(&client_id) {
                return fail(
                    field,
                    "must be a GUID (the client id of the app running as the workload)",
                );
            }
            workloads.push((identity, client_id.to_ascii_lowercase()));
        }
        let Some(rules) = raw.rules else {
            return fail(
                "workload_binding.rules",
                "required (the names of the bound rules)",
            );
        };
        for (i, name) in rules.iter().enumerate() {
            let field = format!("workload_binding.rules[{i}]");
            match routes.rules().iter().position(|r| r.name() == name) {
                None => return fail(field, format!("no rule is named `{name}`")),
                Some(index) if !routes.bind_to_workload(index) => {
                    return fail(
                        field,
                        format!("`{name}` is anonymous: there is no token to bind"),
                    )
                }
                Some(_) => {}
            }
        }
        Ok(WorkloadBinding { workloads })
    }

    /// `peer`: the identities of the connection's verified peer certificate (empty without one);
    /// `caller`: the token's verified caller app id.
    pub fn check(
        &self,
        peer: &[String],
        caller: Option<&str>,
    ) -> std::result::Result<(), AuthError> {
        let app = self
            .workloads
            .iter()
            .find(|(identity, _)| peer.iter().any(|p| p == identity))
            .map(|(_, app)| app.as_str());
        match (app, caller) {
            (Some(app), Some(caller)) if app.eq_ignore_ascii_case(caller) => Ok(()),
            _ => Err(AuthError::WorkloadMismatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::config::FilterPolicy;

    const TP: &str = "spiffe://cluster.local/ns/default/sa/transaction-processor";
    const TP_APP: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
    const REPORTING: &str = "spiffe://cluster.local/ns/default/sa/reporting";
    const REPORTING_APP: &str = "8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f";

    fn policy(binding: serde_json::Value) -> std::result::Result<FilterPolicy, String> {
        let config = serde_json::json!({
            "tenant_id": "4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f",
            "audiences": ["api://fraud"],
            "jwks": {"cluster": "entra_idp", "authority": "login.microsoftonline.com"},
            "rules": [
                {"name": "health", "path": {"exact": "/healthz"}, "anonymous": true},
                {"name": "analyze", "path": {"exact": "/fraud/analyze"}, "app_roles": {"any_of": ["Fraud.Scan"]}}
            ],
            "workload_binding": binding
        });
        FilterPolicy::from_json(config.to_string().as_bytes()).map_err(|e| e.to_string())
    }

    fn binding() -> WorkloadBinding {
        let policy = policy(serde_json::json!({
            "workloads": {TP: TP_APP.to_ascii_uppercase(), REPORTING: REPORTING_APP},
            "rules": ["analyze"]
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        policy.workload_binding.unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn the_peer_workload_must_run_the_tokens_caller() {
        let b = binding();
        assert_eq!(b.check(&[TP.into()], Some(TP_APP)), Ok(()));
        // The reporting workload replaying the transaction processor's token.
        assert_eq!(
            b.check(&[REPORTING.into()], Some(TP_APP)),
            Err(AuthError::WorkloadMismatch)
        );
        // No client certificate, an unknown workload, a token without a caller.
        assert_eq!(b.check(&[], Some(TP_APP)), Err(AuthError::WorkloadMismatch));
        assert_eq!(
            b.check(
                &["spiffe://cluster.local/ns/default/sa/x".into()],
                Some(TP_APP)
            ),
            Err(AuthError::WorkloadMismatch)
        );
        assert_eq!(
            b.check(&[TP.into()], None),
            Err(AuthError::WorkloadMismatch)
        );
        // Any one of the peer's identities (URI or DNS SAN) may be the bound one.
        assert_eq!(
            b.check(&["tp.local".into(), TP.into()], Some(TP_APP)),
            Ok(())
        );
    }

    #[test]
    fn mistakes_are_refused_with_the_field_named() {
        for (binding, field) in [
            (
                serde_json::json!({"rules": []}),
                "workload_binding.workloads",
            ),
            (
                serde_json::json!({"workloads": {}, "rules": []}),
                "workload_binding.workloads",
            ),
            (
                serde_json::json!({"workloads": {TP: "nope"}, "rules": []}),
                "workload_binding.workloads.spiffe",
            ),
            (
                serde_json::json!({"workloads": {TP: TP_APP}}),
                "workload_binding.rules",
            ),
            (
                serde_json::json!({"workloads": {TP: TP_APP}, "rules": ["nope"]}),
                "workload_binding.rules[0]",
            ),
            (
                serde_json::json!({"workloads": {TP: TP_APP}, "rules": ["health"]}),
                "workload_binding.rules[0]",
            ),
            (
                serde_json::json!({"workloads": {TP: TP_APP}, "rules": [], "extra": 1}),
                "extra",
            ),
        ] {
            let error = policy(binding.clone()).err().unwrap_or_default();
            assert!(
                error.contains(field),
                "{binding}: `{field}` not in `{error}`"
            );
        }
    }

    #[test]
    fn a_workload_listed_twice_is_refused_not_overwritten() {
        // `json!` cannot repeat a member name: splice the text.
        let config = serde_json::json!({
            "tenant_id": "4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f",
            "audiences": ["api://fraud"],
            "jwks": {"cluster": "entra_idp", "authority": "login.microsoftonline.com"},
            "rules": [{"name": "analyze", "path": {"exact": "/fraud/analyze"}}],
            "workload_binding": {"workloads": {"W": TP_APP}, "rules": ["analyze"]}
        })
        .to_string()
        .replace(
            &format!(r#"{{"W":"{TP_APP}"}}"#),
            &format!(r#"{{"{TP}":"{TP_APP}","{TP}":"{REPORTING_APP}"}}"#),
        );
        assert!(config.contains(REPORTING_APP), "{config}");
        let error = FilterPolicy::from_json(config.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("listed twice"), "{error}");
    }

    #[test]
    fn the_mismatch_has_its_own_reason_status_and_metric() {
        let spec = AuthError::WorkloadMismatch.spec();
        assert_eq!(spec.status, 403);
        assert_eq!(spec.metric, "workload_mismatch");
        // As for a caller not on a rule's allow-list: a valid token, refused for who presents it (RFC 6750 3.1).
        assert_eq!(spec.code, crate::error::ErrorCode::InsufficientScope);
    }
}
