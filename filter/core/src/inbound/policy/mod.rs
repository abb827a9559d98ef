//! Route policy: which rule applies to a request, what it requires of the
//! verified token, and which identity headers go to the upstream.
//!
//! - [`routes`]: rules and the first-match route table (with the path-safety check).
//! - [`authorize`](mod@authorize): roles/scopes/caller checks and the unmatched-route default.
//! - [`headers`]: claim headers stripped from requests and set after success.
//!
//! Everything here is built once by [`crate::inbound::config`]; the request path only
//! matches and compares.

pub mod authorize;
pub mod headers;
pub mod routes;

pub use authorize::{
    authorize, Access, CallerRestriction, Denial, Permissions, Requirement, Requirements,
    UnmatchedRequests,
};
pub use headers::{ClaimHeader, ClaimHeaders, ClaimSource};
pub use routes::{is_ambiguous_path, MethodMatch, PathMatch, RouteLookup, RouteTable, Rule};
