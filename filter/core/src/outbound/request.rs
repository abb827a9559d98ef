//! The per-request decisions of the outbound role, free of hostcalls.
//!
//! ```text
//! plan(authority, cluster, has Authorization)
//!   ├─ no destination ── unmatched_requests=pass ─► Forward(Unmatched)
//!   │                  └─ deny ───────────────────► Refuse 403
//!   ├─ Authorization present, overwrite off ──────► Forward(KeptAuthorization)
//!   └─ Token { destination, source } ── step(availability)
//!         ├─ Ready ────────► Inject (replace every Authorization with `Bearer …`)
//!         ├─ Pending ──────► Wait (bounded by request_wait_ms; then wait_timeout → 503)
//!         └─ Unavailable ──► Refuse 503 with the reason
//! ```

use std::rc::Rc;

use super::coordinator::{CachedToken, TokenAvailability};
use super::policy::{OutboundPolicy, UnmatchedOutbound};
use crate::error::OutboundError;
use crate::host::RequestHeaders;
use crate::response::{local_response, LocalResponse};

/// What to do with a request before any token is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send it on unchanged.
    Forward(ForwardReason),
    /// It needs the token of `source` (index into the policy's sources).
    Token {
        destination: usize,
        source: usize,
    },
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardReason {
    /// No destination matched and `unmatched_requests` is `pass`.
    Unmatched,
    /// The application set its own `Authorization` and overwriting is off.
    KeptAuthorization,
}

/// What to do once the token's availability is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Inject(Rc<CachedToken>),
    Wait,
    Refuse(Refusal),
}

/// A local reply instead of forwarding (fail closed): the reason's table row
/// (status, body `error`, metric) and a description naming the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: OutboundError,
    /// Human-readable reason; never a token or the agent key.
    pub description: String,
}

impl Refusal {
    pub fn token_unavailable(description: impl Into<String>) -> Refusal {
        Refusal {
            error: OutboundError::TokenUnavailable,
            description: description.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.error.spec().status
    }

    /// The reply, written from the common refusal table.
    pub fn response(&self) -> LocalResponse {
        local_response(self.error.into(), Some(&self.description), "", None)
    }

    /// What every host logs for a request to `destination` (its name, or the
    /// authority when none matched) refused with this.
    pub fn log_line(&self, destination: &str) -> String {
        format!(
            "entragate outbound: refused request to {} status={} reason={}: {}",
            destination.escape_debug(),
            self.status(),
            self.error.spec().metric,
            self.description
        )
    }
}

/// Routes a request: `authority` is `:authority`, `cluster` the upstream
/// cluster (when the adapter looked it up), `has_authorization` whether the
/// application sent any `Authorization` header.
pub fn plan(
    policy: &OutboundPolicy,
    authority: &str,
    cluster: Option<&str>,
    has_authorization: bool,
) -> Plan {
    let Some(destination) = policy.select(authority, cluster) else {
        return match policy.unmatched {
            UnmatchedOutbound::Pass => Plan::Forward(ForwardReason::Unmatched),
            UnmatchedOutbound::Deny => Plan::Refuse(Refusal {
                error: OutboundError::DestinationNotConfigured,
                description: format!(
                    "no outbound destination is configured for {}",
                    printable(authority)
                ),
            }),
        };
    };
    if has_authorization && !policy.overwrite_authorization {
        return Plan::Forward(ForwardReason::KeptAuthorization);
    }
    let source = policy.destinations.get(destination).map_or(0, |d| d.source);
    Plan::Token {
        destination,
        source,
    }
}

/// The next step for a request that needs a token.
pub fn step(availability: TokenAvailability) -> Step {
    match availability {
        TokenAvailability::Ready(token) => Step::Inject(token),
        TokenAvailability::Pending => Step::Wait,
        TokenAvailability::Unavailable(reason) => Step::Refuse(Refusal::token_unavailable(reason)),
    }
}

/// Attaches the token: every `Authorization` the application sent is removed
/// first, so the request leaves with exactly one, ours. If it cannot be set,
/// the request is refused rather than sent on without credentials.
pub fn inject(headers: &mut dyn RequestHeaders, token: &CachedToken) -> Result<(), Refusal> {
    headers.remove("authorization");
    headers
        .set("authorization", &token.header_value)
        .map_err(|_| Refusal::token_unavailable("could not set the Authorization header"))
}

/// A waiting request's bound elapsed.
pub fn wait_timeout(waited_ms: u64) -> Refusal {
    Refusal::token_unavailable(format!("no token from the agent within {waited_ms} ms"))
}

/// `:authority` as it may appear in a reply: printable ASCII, bounded.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HeaderList;
    use crate::outbound::policy::{AgentKey, AgentSettings, Destination, FetchPolicy};
    use crate::outbound::timing::TokenTiming;

    fn policy(unmatched: UnmatchedOutbound, overwrite: bool) -> OutboundPolicy {
        OutboundPolicy {
            agent: AgentSettings {
                cluster: "a".into(),
                authority: "a".into(),
                token_path: "/v1/token".into(),
                key: AgentKey::parse(&"cd".repeat(32)).unwrap(),
                timeout_ms: 1,
            },
            sources: vec![],
            destinations: vec![
                Destination {
                    name: "x".into(),
                    hosts: vec!["x".into()],
                    clusters: vec![],
                    source: 0,
                },
                Destination {
                    name: "y".into(),
                    hosts: vec![],
                    clusters: vec!["y".into()],
                    source: 1,
                },
            ],
            overwrite_authorization: overwrite,
            unmatched,
            timing: TokenTiming::default(),
            fetch: FetchPolicy {
                request_wait_ms: 1,
                retry_initial_ms: 1,
                retry_max_ms: 1,
            },
        }
    }

    #[test]
    fn routing() {
        let p = policy(UnmatchedOutbound::Pass, false);
        assert_eq!(
            plan(&p, "x:80", None, false),
            Plan::Token {
                destination: 0,
                source: 0
            }
        );
        assert_eq!(
            plan(&p, "z", Some("y"), false),
            Plan::Token {
                destination: 1,
                source: 1
            }
        );
        assert_eq!(
            plan(&p, "z", None, false),
            Plan::Forward(ForwardReason::Unmatched)
        );
        assert_eq!(
            plan(&p, "x", None, true),
            Plan::Forward(ForwardReason::KeptAuthorization),
            "the application's own Authorization is not overwritten by default"
        );
        let p = policy(UnmatchedOutbound::Deny, true);
        assert_eq!(
            plan(&p, "x", None, true),
            Plan::Token {
                destination: 0,
                source: 0
            }
        );
        let Plan::Refuse(r) = plan(&p, "evil\r\nhost", None, false) else {
            panic!("unmatched must be refused");
        };
        assert_eq!(
            (r.status(), r.error),
            (403, OutboundError::DestinationNotConfigured)
        );
        assert_eq!(
            r.description,
            "no outbound destination is configured for evilhost"
        );
    }

    #[test]
    fn steps_and_bodies() {
        assert_eq!(step(TokenAvailability::Pending), Step::Wait);
        let Step::Refuse(r) = step(TokenAvailability::Unavailable("agent down".into())) else {
            panic!("must refuse");
        };
        let response = r.response();
        assert_eq!(response.status, 503);
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "token_unavailable", "error_description": "agent down"})
        );
        assert_eq!(
            wait_timeout(250).description,
            "no token from the agent within 250 ms"
        );
    }

    #[test]
    fn inject_replaces_every_authorization_or_refuses() {
        let token = CachedToken {
            generation: 1,
            header_value: "Bearer ours".into(),
            fingerprint: "f".into(),
            expires_at_ms: 0,
            refresh_at_ms: 0,
            usable_until_ms: 0,
        };
        let mut headers = HeaderList::of(&[
            ("authorization", "Bearer app-1"),
            (":authority", "x"),
            ("authorization", "Basic app-2"),
        ]);
        assert_eq!(inject(&mut headers, &token), Ok(()));
        assert_eq!(headers.values("authorization"), ["Bearer ours"]);
        assert_eq!(headers.values(":authority"), ["x"]);

        let mut refusing = HeaderList::of(&[("authorization", "Bearer app")]);
        refusing.refuse_writes = true;
        let refusal = inject(&mut refusing, &token).unwrap_err();
        assert_eq!(
            (refusal.status(), refusal.error),
            (503, OutboundError::TokenUnavailable)
        );
        assert!(
            refusing.values("authorization").is_empty(),
            "the application's credential is not forwarded either"
        );
    }
}
