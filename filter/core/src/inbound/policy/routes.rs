//! Route rules and the table that picks the rule for a request.
//!
//! Matching is deliberately literal: bytes of the `:path` (without query string
//! and fragment) against the rule's exact path or prefix, and the method
//! compared case-sensitively. That is only sound when Envoy has normalised the
//! path first (`normalize_path: true`, `merge_slashes: true`,
//! `path_with_escaped_slashes_action: REJECT_REQUEST` or `UNESCAPE_AND_REDIRECT`).
//!
//! As defence in depth, a path that an upstream could still interpret as a
//! *different* path (dot segments, encoded dots/slashes/backslashes, `;`
//! parameters, ...) is reported as [`RouteLookup::AmbiguousPath`] and never
//! matches a rule: otherwise `/public/..%2fadmin` would match an anonymous
//! `/public/` rule and reach `/admin` on a decoding upstream.

use super::authorize::{Access, UnmatchedRequests};
use crate::error::AuthError;

/// How a rule matches the request path (query string excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path equals this string.
    Exact(String),
    /// The path starts with this string (literal bytes: `/fraud` also matches
    /// `/fraudulent`, so prefixes should normally end with `/`).
    Prefix(String),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }

    /// True when every path this matches is also matched by `self`.
    fn covers(&self, other: &PathMatch) -> bool {
        match (self, other) {
            (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
            (PathMatch::Exact(_), PathMatch::Prefix(_)) => false,
            (PathMatch::Prefix(a), PathMatch::Exact(b) | PathMatch::Prefix(b)) => {
                b.starts_with(a.as_str())
            }
        }
    }
}

/// Which request methods a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodMatch {
    Any,
    /// Upper-case method tokens, de-duplicated. `HEAD` is not implied by `GET`.
    OneOf(Vec<String>),
}

impl MethodMatch {
    fn matches(&self, method: &str) -> bool {
        match self {
            MethodMatch::Any => true,
            MethodMatch::OneOf(methods) => methods.iter().any(|m| m == method),
        }
    }

    fn covers(&self, other: &MethodMatch) -> bool {
        match (self, other) {
            (MethodMatch::Any, _) => true,
            (MethodMatch::OneOf(_), MethodMatch::Any) => false,
            (MethodMatch::OneOf(mine), MethodMatch::OneOf(theirs)) => {
                theirs.iter().all(|m| mine.contains(m))
            }
        }
    }
}

/// One compiled rule: where it applies and what it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    name: String,
    path: PathMatch,
    methods: MethodMatch,
    access: Access,
    /// Over mTLS the token's caller must be the app running as the peer
    /// workload (`workload_binding`, [`crate::inbound::binding`]).
    bound_to_workload: bool,
}

impl Rule {
    /// Only configuration compilation builds rules, so their invariants
    /// (validated names, paths, methods, requirements) always hold.
    pub(crate) fn new(name: String, path: PathMatch, methods: MethodMatch, access: Access) -> Rule {
        Rule {
            name,
            path,
            methods,
            access,
            bound_to_workload: false,
        }
    }

    /// Whether the rule requires the token's caller to be the peer workload's app.
    pub fn is_bound_to_workload(&self) -> bool {
        self.bound_to_workload
    }

    /// The configured rule name, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &PathMatch {
        &self.path
    }

    pub fn methods(&self) -> &MethodMatch {
        &self.methods
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// True when the rule needs no token at all.
    pub fn is_anonymous(&self) -> bool {
        matches!(self.access, Access::Anonymous)
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.methods.matches(method) && self.path.matches(path)
    }

    /// True when every request `later` matches is already matched by `self`,
    /// so `later` (declared after `self`) can never decide anything.
    pub(crate) fn shadows(&self, later: &Rule) -> bool {
        self.path.covers(&later.path) && self.methods.covers(&later.methods)
    }
}

/// Result of looking a request up in the [`RouteTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteLookup<'a> {
    /// The first rule matching the method and path.
    Matched(&'a Rule),
    /// No rule matches: `unmatched_requests` decides.
    Unmatched,
    /// The path could mean another path to an upstream (see [`is_ambiguous_path`]).
    /// It matches no rule; the safe answer is to refuse it outright.
    AmbiguousPath,
}

/// The rules in declared order; the first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    rules: Vec<Rule>,
}

impl RouteTable {
    pub(crate) fn new(rules: Vec<Rule>) -> RouteTable {
        RouteTable { rules }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Binds rule `index` to the peer workload (configuration compilation
    /// only). False if there is no such rule or it is anonymous: an anonymous
    /// request has no token to bind.
    pub(crate) fn bind_to_workload(&mut self, index: usize) -> bool {
        match self.rules.get_mut(index) {
            Some(rule) if !rule.is_anonymous() => {
                rule.bound_to_workload = true;
                true
            }
            _ => false,
        }
    }

    /// Looks up the rule for a request. `path` is the `:path` pseudo-header;
    /// its query string and fragment are ignored.
    pub fn lookup(&self, method: &str, path: &str) -> RouteLookup<'_> {
        let path = strip_query_and_fragment(path);
        if is_ambiguous_path(path) {
            return RouteLookup::AmbiguousPath;
        }
        match self.rules.iter().find(|rule| rule.matches(method, path)) {
            Some(rule) => RouteLookup::Matched(rule),
            None => RouteLookup::Unmatched,
        }
    }

    /// The first rule matching the request, or `None` when no rule matches or
    /// the path is ambiguous. Not used by the filter (which needs
    /// [`RouteTable::resolve`]); kept only because `bootstrap`'s rendering test
    /// checks rendered rules with it and bootstrap is being split separately:
    /// remove it with that test's switch to `resolve`.
    pub fn find(&self, method: &str, path: &str) -> Option<&Rule> {
        match self.lookup(method, path) {
            RouteLookup::Matched(rule) => Some(rule),
            RouteLookup::Unmatched | RouteLookup::AmbiguousPath => None,
        }
    }

    /// The rule that decides a request, before any token is looked at:
    /// `Ok(Some(rule))` for the first match, `Ok(None)` when no rule matches
    /// and `unmatched_requests` lets any valid token through. An unmatched
    /// request under `deny`, and an ambiguous path whatever `unmatched` says
    /// (it may reach a route whose rule it did not match), are refused with
    /// [`AuthError::RouteNotAllowed`].
    pub fn resolve(
        &self,
        method: &str,
        path: &str,
        unmatched: UnmatchedRequests,
    ) -> Result<Option<&Rule>, AuthError> {
        match (self.lookup(method, path), unmatched) {
            (RouteLookup::Matched(rule), _) => Ok(Some(rule)),
            (RouteLookup::Unmatched, UnmatchedRequests::AllowAnyValidToken) => Ok(None),
            (RouteLookup::Unmatched, UnmatchedRequests::Deny) | (RouteLookup::AmbiguousPath, _) => {
                Err(AuthError::RouteNotAllowed)
            }
        }
    }
}

fn strip_query_and_fragment(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(end) => path.get(..end).unwrap_or(path),
        None => path,
    }
}

/// True when `path` (query already removed) could be resolved by a server to a
/// path other than its literal bytes, or is not an origin-form path at all:
///
/// - it does not start with `/` (`*`, absolute-form);
/// - it contains `//` (servers merge slashes);
/// - it contains a backslash, NUL or other control character (Windows-style
///   separators, C-string truncation, header smuggling);
/// - a segment is `.` or `..`, also when followed by `;params` (`..;/` is
///   resolved as `..` by Java servlet containers);
/// - it contains `;` at all (matrix parameters are stripped by some frameworks,
///   so `/admin;x` reaches `/admin` there);
/// - it contains a malformed `%` escape, or an escape of something that needs
///   no escaping or changes structure: unreserved characters (`%2e` is `.`,
///   `%41` is `A`), `/`, `\`, `%` (double encoding), `;` and control bytes.
///
/// Legitimate encodings (`%20`, `%3A`, UTF-8 bytes such as `%C3%A9`) are fine.
pub fn is_ambiguous_path(path: &str) -> bool {
    if !path.starts_with('/') || path.contains("//") {
        return true;
    }
    if path
        .bytes()
        .any(|b| b == b'\\' || b == b';' || b.is_ascii_control())
    {
        return true;
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return true;
    }
    has_ambiguous_escape(path.as_bytes())
}

fn has_ambiguous_escape(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(position) = rest.iter().position(|&b| b == b'%') {
        let after = rest.get(position + 1..).unwrap_or_default();
        let decoded = match after {
            [high, low, ..] => hex_value(*high)
                .zip(hex_value(*low))
                .map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match decoded {
            None => return true,
            Some(byte) if escape_is_ambiguous(byte) => return true,
            Some(_) => rest = after.get(2..).unwrap_or_default(),
        }
    }
    false
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// An escaped byte that a decoding upstream would treat differently from us.
fn escape_is_ambiguous(byte: u8) -> bool {
    let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
    unreserved || matches!(byte, b'/' | b'\\' | b'%' | b';') || byte.is_ascii_control()
}

/// True for an upper-case HTTP method token (RFC 9110 `token`, no lower-case
/// letters: methods are case-sensitive and every standard one is upper-case).
pub(crate) fn is_valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= 32
        && method.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::policy::authorize::Requirements;

    fn rule(name: &str, path: PathMatch, methods: &[&str]) -> Rule {
        let methods = if methods.is_empty() {
            MethodMatch::Any
        } else {
            MethodMatch::OneOf(methods.iter().map(|m| m.to_string()).collect())
        };
        Rule::new(
            name.to_string(),
            path,
            methods,
            Access::Authenticated(Requirements::default()),
        )
    }

    fn exact(p: &str) -> PathMatch {
        PathMatch::Exact(p.to_string())
    }

    fn prefix(p: &str) -> PathMatch {
        PathMatch::Prefix(p.to_string())
    }

    fn table() -> RouteTable {
        RouteTable::new(vec![
            rule("health", exact("/healthz"), &["GET"]),
            rule("analyze", prefix("/fraud/"), &["POST"]),
            rule("fraud-read", prefix("/fraud/"), &["GET", "HEAD"]),
            rule("root", prefix("/"), &[]),
        ])
    }

    fn found(method: &str, path: &str) -> Option<String> {
        matched(&table(), method, path)
    }

    fn matched(table: &RouteTable, method: &str, path: &str) -> Option<String> {
        match table.lookup(method, path) {
            RouteLookup::Matched(rule) => Some(rule.name().to_string()),
            RouteLookup::Unmatched | RouteLookup::AmbiguousPath => None,
        }
    }

    #[test]
    fn exact_compares_the_whole_path() {
        assert_eq!(found("GET", "/healthz").as_deref(), Some("health"));
        assert_eq!(found("GET", "/healthz/").as_deref(), Some("root"));
        assert_eq!(found("GET", "/healthzz").as_deref(), Some("root"));
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        assert_eq!(found("GET", "/healthz?full=1").as_deref(), Some("health"));
        assert_eq!(found("GET", "/healthz#x").as_deref(), Some("health"));
        assert_eq!(
            found("GET", "/healthz?a=/..;%2e").as_deref(),
            Some("health")
        );
    }

    #[test]
    fn first_matching_rule_wins_and_method_must_match() {
        assert_eq!(found("POST", "/fraud/scan").as_deref(), Some("analyze"));
        assert_eq!(found("GET", "/fraud/scan").as_deref(), Some("fraud-read"));
        assert_eq!(found("HEAD", "/fraud/scan").as_deref(), Some("fraud-read"));
        assert_eq!(found("DELETE", "/fraud/scan").as_deref(), Some("root"));
        // Methods are case-sensitive.
        assert_eq!(found("post", "/fraud/scan").as_deref(), Some("root"));
    }

    #[test]
    fn prefix_is_a_literal_byte_prefix() {
        let table = RouteTable::new(vec![rule("f", prefix("/fraud"), &[])]);
        assert!(matched(&table, "GET", "/fraudulent").is_some());
        assert!(matched(&table, "GET", "/fraud").is_some());
        assert!(matched(&table, "GET", "/Fraud").is_none());
    }

    #[test]
    fn unmatched_is_reported() {
        let table = RouteTable::new(vec![rule("h", exact("/healthz"), &["GET"])]);
        assert_eq!(table.lookup("GET", "/other"), RouteLookup::Unmatched);
        assert_eq!(table.lookup("POST", "/healthz"), RouteLookup::Unmatched);
        assert_eq!(
            RouteTable::default().lookup("GET", "/"),
            RouteLookup::Unmatched
        );
    }

    #[test]
    fn ambiguous_paths_match_no_rule_even_a_catch_all() {
        let table = table();
        for path in [
            "/fraud/../admin",
            "/fraud/./scan",
            "/fraud/..",
            "/fraud/%2e%2e/admin",
            "/fraud/%2E%2E/admin",
            "/fraud/.%2e/admin",
            "/fraud/..%2fadmin",
            "/fraud/..%2Fadmin",
            "/fraud/..%5cadmin",
            "/fraud/..%5Cadmin",
            "/fraud\\..\\admin",
            "/fraud/\0",
            "/fraud/%00",
            "/fraud/%252e%252e/admin",
            "/fraud/..;/admin",
            "/fraud;x=1/scan",
            "/fraud/%3b",
            "//fraud/scan",
            "/fraud//scan",
            "/fraud/%41",
            "/fraud/%7e",
            "/fraud/%",
            "/fraud/%2",
            "/fraud/%zz",
            "/fraud/\r\nx: y",
            "fraud/scan",
            "*",
            "",
            "http://host/fraud/scan",
        ] {
            assert_eq!(
                table.lookup("POST", path),
                RouteLookup::AmbiguousPath,
                "{path:?}"
            );
            assert_eq!(
                table.resolve("POST", path, UnmatchedRequests::AllowAnyValidToken),
                Err(AuthError::RouteNotAllowed),
                "refused even when unmatched requests are allowed: {path:?}"
            );
        }
    }

    #[test]
    fn harmless_escapes_and_dots_inside_names_still_match() {
        for path in [
            "/fraud/a%20b",
            "/fraud/%3A",
            "/fraud/caf%C3%A9",
            "/fraud/v1.2/scan",
            "/fraud/...",
            "/fraud/.well-known",
            "/fraud/",
        ] {
            assert!(!is_ambiguous_path(path), "{path:?}");
            assert_eq!(found("POST", path).as_deref(), Some("analyze"), "{path:?}");
        }
    }

    #[test]
    fn shadowing() {
        let any = |p| rule("a", p, &[]);
        assert!(any(prefix("/a/")).shadows(&any(prefix("/a/b/"))));
        assert!(any(prefix("/a/")).shadows(&any(exact("/a/b"))));
        assert!(any(prefix("/a/")).shadows(&any(prefix("/a/"))));
        assert!(any(exact("/a")).shadows(&any(exact("/a"))));
        assert!(!any(exact("/a")).shadows(&any(prefix("/a"))));
        assert!(!any(prefix("/a/b/")).shadows(&any(prefix("/a/"))));
        assert!(!any(exact("/a")).shadows(&any(exact("/b"))));
        let get = rule("g", prefix("/a/"), &["GET"]);
        let get_post = rule("gp", prefix("/a/"), &["POST", "GET"]);
        assert!(get_post.shadows(&get));
        assert!(!get.shadows(&get_post));
        assert!(!get.shadows(&any(prefix("/a/"))));
        assert!(any(prefix("/")).shadows(&get));
    }

    #[test]
    fn method_tokens() {
        for m in ["GET", "POST", "PROPFIND", "M-SEARCH", "X_1"] {
            assert!(is_valid_method(m), "{m}");
        }
        for m in ["", "get", "Get", "GET ", "GE T", "GET\n", "PÖST", "GET:"] {
            assert!(!is_valid_method(m), "{m:?}");
        }
        assert!(!is_valid_method(&"A".repeat(33)));
    }

    #[test]
    fn resolve_applies_unmatched_requests() {
        let table = table();
        let allow = UnmatchedRequests::AllowAnyValidToken;
        let deny = UnmatchedRequests::Deny;
        let name = |r: Result<Option<&Rule>, AuthError>| r.map(|r| r.map(|r| r.name().to_string()));
        assert_eq!(
            name(table.resolve("GET", "/healthz", deny)),
            Ok(Some("health".into()))
        );
        let only = RouteTable::new(vec![rule("h", exact("/healthz"), &["GET"])]);
        assert_eq!(only.resolve("GET", "/other", allow), Ok(None));
        assert_eq!(
            only.resolve("GET", "/other", deny),
            Err(AuthError::RouteNotAllowed)
        );
        assert_eq!(
            only.resolve("GET", "/a/../healthz", allow),
            Err(AuthError::RouteNotAllowed)
        );
        assert_eq!(UnmatchedRequests::default(), UnmatchedRequests::Deny);
    }
}
