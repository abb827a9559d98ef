//! Every decision as a set of named values the proxy can log.
//!
//! Each adapter publishes every field as an Envoy filter-state value under
//! the same key, so one access-log format serves both hosts:
//! `%FILTER_STATE(wasm.entragate_decision:PLAIN)%`. The proxy-wasm filter calls
//! `set_property(<name>)`, which Envoy stores under `wasm.<name>`; the dynamic
//! module sets the key `wasm.<name>` itself ([`AuditField::filter_state_key`]).
//! The names and their meaning are defined here once, for every host.
//!
//! What is never published: the token, any secret, or a claim whose signature
//! was not verified (see [`AuditTrail`]). The token appears only as its
//! 12-hex SHA-256 prefix ([`crate::fingerprint::fingerprint`]).

use std::borrow::Cow;

use crate::error::AuthError;
use crate::fingerprint::{fingerprint, loggable_path};
use crate::inbound::engine::{AuditTrail, Decision, RequestInput};
use crate::token::extract::bearer_token_shape;

/// One published field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditField {
    /// `allow` or `deny`.
    Decision,
    /// `anonymous`, `token` (allowed) or the denial's metric name
    /// (`expired`, `caller_not_allowed`, ...; docs/configuration.md lists them).
    Reason,
    /// HTTP status of a refusal (absent when allowed: the upstream answers).
    Status,
    /// The route rule that matched.
    Rule,
    /// Verified caller app id.
    Caller,
    /// Verified tenant id.
    Tenant,
    /// Verified app roles, space-separated.
    Roles,
    /// SHA-256 prefix of the first `Authorization` value.
    TokenFingerprint,
}

/// Writes [`AuditField::property`] and [`AuditField::filter_state_key`] from one
/// list of names, so the two can never disagree.
macro_rules! audit_field_names {
    ($($field:ident => $name:literal,)*) => {
        impl AuditField {
            /// The property name (the proxy-wasm filter's `set_property`).
            pub const fn property(self) -> &'static str {
                match self {
                    $(AuditField::$field => $name,)*
                }
            }

            /// The Envoy filter-state key the access log reads: `wasm.` + [`AuditField::property`].
            /// Envoy stores a proxy-wasm property under this key; the dynamic module sets it directly,
            /// so an access-log format written for one host reads the other.
            pub const fn filter_state_key(self) -> &'static str {
                match self {
                    $(AuditField::$field => concat!("wasm.", $name),)*
                }
            }
        }
    };
}

audit_field_names! {
    Decision => "entragate_decision",
    Reason => "entragate_reason",
    Status => "entragate_status",
    Rule => "entragate_rule",
    Caller => "entragate_caller",
    Tenant => "entragate_tenant",
    Roles => "entragate_roles",
    TokenFingerprint => "entragate_token_sha256",
}

impl AuditField {
    /// Every field, in the order they are published.
    pub const ALL: [AuditField; 8] = [
        AuditField::Decision,
        AuditField::Reason,
        AuditField::Status,
        AuditField::Rule,
        AuditField::Caller,
        AuditField::Tenant,
        AuditField::Roles,
        AuditField::TokenFingerprint,
    ];
}

/// The request's token as the audit record and the denial log line name it: the
/// [`crate::fingerprint::fingerprint`] of the bearer token of its first `Authorization` value (the
/// text after `Bearer `, so one token is one fingerprint however the scheme was spelled), or of the
/// whole value when it has no bearer shape. Taken from the flow when it already knows it (a cache
/// hit names its token without hashing it); otherwise hashed here, once per decision, for both.
pub fn token_fingerprint(input: &RequestInput, trail: &AuditTrail) -> Option<String> {
    if let Some(known) = &trail.token_fingerprint {
        return Some(known.clone());
    }
    let value = input.authorization.first()?;
    let token = bearer_token_shape(std::slice::from_ref(value), usize::MAX);
    Some(fingerprint(token.unwrap_or(value)))
}

/// The fingerprint an adapter needs for a decision: for the audit record when
/// it is published (`audit_fields`), and for a refusal's log line; `None`,
/// without hashing anything, when neither is wanted.
pub fn wanted_fingerprint(
    audit_fields: bool,
    decision: &Decision,
    input: &RequestInput,
    trail: &AuditTrail,
) -> Option<String> {
    (audit_fields || matches!(decision, Decision::Deny(_)))
        .then(|| token_fingerprint(input, trail))
        .flatten()
}

/// The fields of one decision that have a value, in [`AuditField::ALL`] order.
/// `token_fingerprint` is [`crate::fingerprint::fingerprint`] of the request's first `Authorization`
/// value (the adapter computes it once, for this record and its own log line). Values borrow from the
/// trail: this runs on every request, and the adapter only copies them into the host.
pub fn audit_record<'a>(
    decision: &Decision,
    trail: &'a AuditTrail,
    token_fingerprint: Option<&'a str>,
) -> Vec<(AuditField, Cow<'a, str>)> {
    let mut fields = Vec::with_capacity(AuditField::ALL.len());
    match decision {
        Decision::Allow { .. } => {
            fields.push((AuditField::Decision, Cow::Borrowed("allow")));
            let reason = if trail.token_verified {
                "token"
            } else {
                "anonymous"
            };
            fields.push((AuditField::Reason, Cow::Borrowed(reason)));
        }
        Decision::Deny(denial) => {
            fields.push((AuditField::Decision, Cow::Borrowed("deny")));
            fields.push((AuditField::Reason, Cow::Borrowed(denial.error.metric())));
            fields.push((
                AuditField::Status,
                Cow::Owned(denial.error.status().to_string()),
            ));
        }
    }
    let optional = [
        (AuditField::Rule, trail.rule.as_deref().map(Cow::Borrowed)),
        (
            AuditField::Caller,
            trail.caller.as_deref().map(Cow::Borrowed),
        ),
        (
            AuditField::Tenant,
            trail.tenant.as_deref().map(Cow::Borrowed),
        ),
        (
            AuditField::Roles,
            (!trail.roles.is_empty()).then(|| Cow::Owned(trail.roles.join(" "))),
        ),
        (
            AuditField::TokenFingerprint,
            token_fingerprint.map(Cow::Borrowed),
        ),
    ];
    fields.extend(
        optional
            .into_iter()
            .filter_map(|(field, value)| value.map(|value| (field, value))),
    );
    fields
}

/// The log line of a refusal, the same from every host. It names the
/// request without its query string (which may carry a credential), escapes
/// what the caller wrote, and identifies the token only by `token_hash`, the
/// fingerprint of its first `Authorization` value.
pub fn denial_log_line(
    input: &RequestInput,
    status: u16,
    error: AuthError,
    token_hash: Option<&str>,
) -> String {
    format!(
        "entragate: denied {} {} status={} reason={} token_sha256={}",
        input.method.escape_debug(),
        loggable_path(&input.path).escape_debug(),
        status,
        error.metric(),
        token_hash.unwrap_or("-")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::policy::authorize::Denial;

    fn trail() -> AuditTrail {
        AuditTrail {
            rule: Some("analyze".into()),
            caller: Some("c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6".into()),
            tenant: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
            roles: vec!["Fraud.Scan".into(), "Fraud.Read".into()],
            token_verified: true,
            token_fingerprint: None,
        }
    }

    fn value<'a>(fields: &'a [(AuditField, Cow<'_, str>)], field: AuditField) -> Option<&'a str> {
        fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_ref())
    }

    #[test]
    fn an_allowed_token_request_has_every_field_but_status() {
        let decision = Decision::Allow {
            set_headers: vec![],
            caller: trail().caller,
        };
        let token = "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
        let trail = trail();
        let fp = fingerprint(token);
        let fields = audit_record(&decision, &trail, Some(&fp));
        assert_eq!(value(&fields, AuditField::Decision), Some("allow"));
        assert_eq!(value(&fields, AuditField::Reason), Some("token"));
        assert_eq!(value(&fields, AuditField::Status), None);
        assert_eq!(value(&fields, AuditField::Rule), Some("analyze"));
        assert_eq!(
            value(&fields, AuditField::Roles),
            Some("Fraud.Scan Fraud.Read")
        );
        assert_eq!(
            value(&fields, AuditField::Tenant),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        let fp = value(&fields, AuditField::TokenFingerprint).unwrap();
        assert_eq!(fp.len(), 12);
        // Never the token, nor any part of it.
        for (_, v) in &fields {
            assert!(!v.contains("eyJ"), "{v}");
        }
    }

    #[test]
    fn a_refusal_names_reason_and_status() {
        let decision = Decision::Deny(Denial {
            error: AuthError::CallerNotAllowed,
            required_scope: None,
        });
        let trail = trail();
        let fp = fingerprint("Bearer x.y.z");
        let fields = audit_record(&decision, &trail, Some(&fp));
        assert_eq!(value(&fields, AuditField::Decision), Some("deny"));
        assert_eq!(
            value(&fields, AuditField::Reason),
            Some("caller_not_allowed")
        );
        assert_eq!(value(&fields, AuditField::Status), Some("403"));
    }

    #[test]
    fn an_anonymous_route_is_marked_and_missing_values_are_left_out() {
        let decision = Decision::Allow {
            set_headers: vec![],
            caller: None,
        };
        let trail = AuditTrail {
            rule: Some("health".into()),
            ..AuditTrail::default()
        };
        let fields = audit_record(&decision, &trail, None);
        assert_eq!(
            fields.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            vec![AuditField::Decision, AuditField::Reason, AuditField::Rule]
        );
        assert_eq!(value(&fields, AuditField::Reason), Some("anonymous"));
    }

    #[test]
    fn property_names_are_unique_and_log_friendly() {
        let mut names: Vec<&str> = AuditField::ALL.iter().map(|f| f.property()).collect();
        assert!(names.iter().all(|n| n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditField::ALL.len());
    }

    #[test]
    fn the_filter_state_key_is_where_envoy_stores_the_wasm_property() {
        for field in AuditField::ALL {
            assert_eq!(
                field.filter_state_key(),
                format!("wasm.{}", field.property())
            );
        }
        assert_eq!(
            AuditField::Decision.filter_state_key(),
            "wasm.entragate_decision"
        );
    }

    #[test]
    fn the_token_fingerprint_is_of_the_first_values_token_or_of_the_value() {
        let mut input = RequestInput {
            method: "GET".into(),
            path: "/".into(),
            authorization: vec!["Bearer a.b.c".into(), "Bearer d.e.f".into()],
            peer_identities: Vec::new(),
        };
        let trail = AuditTrail::default();
        assert_eq!(
            token_fingerprint(&input, &trail),
            Some(fingerprint("a.b.c"))
        );
        input.authorization[0] = "bearer   a.b.c".into();
        assert_eq!(
            token_fingerprint(&input, &trail),
            Some(fingerprint("a.b.c")),
            "one token, one fingerprint"
        );
        input.authorization[0] = "Basic dXNlcjpwdw==".into();
        assert_eq!(
            token_fingerprint(&input, &trail),
            Some(fingerprint("Basic dXNlcjpwdw=="))
        );
        let known = AuditTrail {
            token_fingerprint: Some("0123456789ab".into()),
            ..AuditTrail::default()
        };
        assert_eq!(
            token_fingerprint(&input, &known).as_deref(),
            Some("0123456789ab")
        );
        input.authorization.clear();
        assert_eq!(token_fingerprint(&input, &trail), None);
    }

    /// `cargo test -p entragate-core --profile release-native --lib -- --ignored --nocapture audit_record_bench`:
    /// the module's share of publishing an allowed request's record (the fingerprint of a
    /// 1 KB `Authorization` value and the record itself), without the host's writes.
    #[test]
    #[ignore = "benchmark: prints numbers, asserts nothing about speed"]
    fn audit_record_bench() {
        use std::hint::black_box;
        use std::time::Instant;
        // The fastest of many short batches: on a shared machine a long run
        // mostly measures the scheduler.
        const BATCHES: u32 = 50;
        const RUNS: u32 = 4_000;
        let authorization = format!("Bearer {}", "e".repeat(1017));
        let input = RequestInput {
            method: "POST".into(),
            path: "/fraud/analyze".into(),
            authorization: vec![authorization],
            peer_identities: Vec::new(),
        };
        let trail = trail();
        let decision = Decision::Allow {
            set_headers: vec![],
            caller: trail.caller.clone(),
        };
        let time = |f: &mut dyn FnMut() -> usize| {
            (0..BATCHES)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..RUNS {
                        black_box(f());
                    }
                    start.elapsed().as_nanos() as f64 / f64::from(RUNS)
                })
                .fold(f64::INFINITY, f64::min)
        };
        let hash = time(&mut || {
            token_fingerprint(black_box(&input), &AuditTrail::default()).map_or(0, |h| h.len())
        });
        let fp = token_fingerprint(&input, &AuditTrail::default());
        let record = time(&mut || {
            audit_record(black_box(&decision), black_box(&trail), fp.as_deref()).len()
        });
        println!("audit: token_fingerprint {hash:.0} ns, audit_record {record:.0} ns");
    }

    #[test]
    fn the_denial_line_drops_the_query_and_escapes_what_the_caller_wrote() {
        let input = RequestInput {
            method: "GET\n".into(),
            path: "/scan/1?code=secret#frag".into(),
            authorization: vec!["Bearer abc".into()],
            peer_identities: Vec::new(),
        };
        let line = denial_log_line(&input, 401, AuthError::Expired, Some("0123abcd"));
        assert!(!line.contains("secret") && !line.contains('\n'), "{line}");
        assert!(
            line.starts_with("entragate: denied GET\\n /scan/1")
                && line.ends_with("status=401 reason=expired token_sha256=0123abcd"),
            "{line}"
        );
        let anonymous = denial_log_line(&input, 403, AuthError::RouteNotAllowed, None);
        assert!(anonymous.ends_with("token_sha256=-"), "{anonymous}");
    }
}
