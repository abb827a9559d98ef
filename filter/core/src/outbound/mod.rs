//! The outbound (caller-side) role: attach the caller's Entra token to
//! requests for configured destinations.
//!
//! The token comes from the local `bootstrap agent` (an HTTP callout with the
//! agent key), is shared by every worker of one Envoy through shared data (one
//! callout per Envoy, single-flight by a CAS lease, like the JWKS), refreshed
//! in the background before it expires, and never logged (only its sha256
//! prefix). Without a usable token a request is refused with 503 and a reason:
//! it is never sent on without credentials.
//!
//! - [`raw`] / [`compile`] / [`policy`]: the configuration, as written and compiled.
//! - [`agent`]: reading the agent's answers.
//! - [`timing`]: when a token is refreshed and until when it is attached.
//! - [`record`]: the shared-data records.
//! - [`coordinator`]: the per-worker state machine sharing one fetch per Envoy.
//! - [`metrics`]: the role's metric table (names every host defines).
//! - [`request`]: per-request decisions (which destination, inject/wait/refuse).

pub mod agent;
pub mod compile;
pub mod coordinator;
pub mod metrics;
pub mod policy;
pub mod raw;
pub mod record;
pub mod request;
pub mod timing;

pub use agent::{parse_agent_response, AgentFailure, AgentToken};
pub use coordinator::{
    CachedToken, FetchOutcome, TickOutcome, TokenAvailability, TokenCoordinator, TokenUpdate,
};
pub use metrics::{OutboundMetric, OutboundMetricIds};
pub use policy::{OutboundPolicy, UnmatchedOutbound, AGENT_KEY_HEADER};
pub use request::{inject, plan, step, wait_timeout, ForwardReason, Plan, Refusal, Step};
pub use timing::{TokenSchedule, TokenTiming};
