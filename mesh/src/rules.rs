//! Route rules of one service: paths, methods, what each requires, callers resolved to client ids, and the
//! checks that catch a rule that can never decide anything (duplicate or shadowed routes).

use super::error::Findings;
use super::model::{RawRequire, RawRule};
use super::policy::{Access, Application, Caller, PathRule, Rule, TransportMode};

/// What rules need to know about the other services.
pub(super) struct Directory {
    /// `(name, client_id)` in document order.
    pub services: Vec<(String, String)>,
}

impl Directory {
    pub fn client_id(&self, name: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
    }

    pub fn names(&self) -> String {
        let mut names: Vec<&str> = self.services.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.join(", ")
    }
}

/// Compiles `raw` (the rules of service `name`, whose application is `app`).
pub(super) fn compile(
    raw: Vec<RawRule>,
    name: &str,
    app: &Application,
    directory: &Directory,
    mode: TransportMode,
    f: &mut Findings,
) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.len());
    for (index, raw_rule) in raw.into_iter().enumerate() {
        let path = format!("services.{name}.rules[{index}]");
        let Some(rule) = rule(raw_rule, &path, name, app, directory, mode, f) else {
            continue;
        };
        if let Some(message) = conflict(&rules, &rule) {
            f.error(&path, message);
            continue;
        }
        rules.push(rule);
    }
    rules
}

/// Why `rule` cannot follow `earlier` (same name, same route, or never reachable).
fn conflict(earlier: &[Rule], rule: &Rule) -> Option<String> {
    for (i, e) in earlier.iter().enumerate() {
        if e.name == rule.name {
            return Some(format!(
                "the rule name `{}` is already used by rules[{i}]",
                rule.name
            ));
        }
        if e.path == rule.path && same_methods(&e.methods, &rule.methods) {
            return Some(format!(
                "duplicate route: rules[{i}] (`{}`) already matches {} {}",
                e.name,
                rule.methods_display(),
                rule.path.display()
            ));
        }
        if e.path.covers(&rule.path) && methods_cover(&e.methods, &rule.methods) {
            return Some(format!(
                "rule `{}` is never used: the earlier rule `{}` (rules[{i}]) matches every path and method it matches",
                rule.name, e.name
            ));
        }
    }
    None
}

fn same_methods(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|m| b.contains(m))
}

/// Empty means any method.
fn methods_cover(mine: &[String], theirs: &[String]) -> bool {
    mine.is_empty() || (!theirs.is_empty() && theirs.iter().all(|m| mine.contains(m)))
}

fn rule(
    raw: RawRule,
    path: &str,
    service: &str,
    app: &Application,
    directory: &Directory,
    mode: TransportMode,
    f: &mut Findings,
) -> Option<Rule> {
    let errors_before = f.errors.len();
    let anonymous = raw.anonymous.unwrap_or(false);
    // Only an mTLS peer certificate names the calling workload; a token-less rule has no caller to bind.
    let bind_to_workload = match raw.bind_to_workload {
        Some(true) if mode != TransportMode::Mtls => {
            f.error(
                format!("{path}.bind_to_workload"),
                format!(
                    "needs transport.mode mtls (it is {}): only a client certificate names the calling workload",
                    mode.as_str()
                ),
            );
            false
        }
        Some(true) if anonymous => {
            f.error(
                format!("{path}.bind_to_workload"),
                "an anonymous rule has no token whose caller could be bound",
            );
            false
        }
        Some(bind) => bind,
        None => mode == TransportMode::Mtls && !anonymous,
    };
    let route = match (raw.path, raw.prefix) {
        (Some(p), None) => Some(PathRule::Exact(p)),
        (None, Some(p)) => Some(PathRule::Prefix(p)),
        (Some(_), Some(_)) => {
            f.error(path, "set exactly one of `path` (exact) and `prefix`");
            None
        }
        (None, None) => {
            f.error(path, "set `path` (exact match) or `prefix`");
            None
        }
    };
    if let Some(r) = &route {
        if !r.value().starts_with('/') {
            let field = if matches!(r, PathRule::Exact(_)) {
                "path"
            } else {
                "prefix"
            };
            f.error(
                format!("{path}.{field}"),
                format!("`{}` must start with `/`", r.value()),
            );
        }
    }
    let mut methods: Vec<String> = Vec::new();
    match raw.methods {
        Some(list) if list.is_empty() => f.error(
            format!("{path}.methods"),
            "must not be empty (leave it out for any method)",
        ),
        Some(list) => {
            for (i, m) in list.into_iter().enumerate() {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                    f.error(
                        format!("{path}.methods[{i}]"),
                        format!("`{m}` is not an upper-case HTTP method such as GET or POST"),
                    );
                } else if !methods.contains(&m) {
                    methods.push(m);
                }
            }
        }
        None => {}
    }
    let roles = raw.roles.unwrap_or_default();
    let scopes = raw.scopes.unwrap_or_default();
    let callers_given = raw.allowed_callers.is_some();
    let caller_names = raw.allowed_callers.unwrap_or_default();
    let access = if anonymous {
        if !roles.is_empty()
            || !scopes.is_empty()
            || !caller_names.is_empty()
            || raw.require.is_some()
        {
            f.error(
                path,
                "an anonymous rule cannot also require roles, scopes or callers",
            );
        }
        Access::Anonymous
    } else {
        for (i, role) in roles.iter().enumerate() {
            if !app.app_roles.contains(role) {
                f.error(
                    format!("{path}.roles[{i}]"),
                    format!(
                        "role `{role}` is not exposed by the application of `{service}` (app_roles: {})",
                        list_or_none(&app.app_roles)
                    ),
                );
            }
        }
        for (i, scope) in scopes.iter().enumerate() {
            if !app.scopes.contains(scope) {
                f.error(
                    format!("{path}.scopes[{i}]"),
                    format!(
                        "scope `{scope}` is not exposed by the application of `{service}` (scopes: {})",
                        list_or_none(&app.scopes)
                    ),
                );
            }
        }
        let mut callers: Vec<Caller> = Vec::new();
        for (i, c) in caller_names.iter().enumerate() {
            match directory.client_id(c) {
                Some(id) if !callers.iter().any(|k| k.service == *c) => callers.push(Caller {
                    service: c.clone(),
                    client_id: id.to_string(),
                }),
                Some(_) => {}
                None => f.error(
                    format!("{path}.allowed_callers[{i}]"),
                    format!(
                        "unknown caller `{c}`: no service of that name is defined (services: {})",
                        directory.names()
                    ),
                ),
            }
        }
        if callers_given && caller_names.is_empty() {
            f.error(
                format!("{path}.allowed_callers"),
                "must not be empty (leave it out to admit any caller holding the roles)",
            );
        }
        if roles.is_empty() && scopes.is_empty() && callers.is_empty() {
            f.warn(
                path,
                "requires neither roles, scopes nor callers: any valid token of the tenant passes",
            );
        }
        Access::Token {
            roles,
            scopes,
            all: raw.require == Some(RawRequire::All),
            callers,
        }
    };
    let route = route?;
    if f.errors.len() > errors_before {
        return None;
    }
    let methods_display = if methods.is_empty() {
        "*".to_string()
    } else {
        methods.join(",")
    };
    let name = raw
        .name
        .unwrap_or_else(|| format!("{methods_display} {}", route.display()));
    if access == Access::Anonymous {
        f.warn(
            path,
            format!(
                "anonymous route: {methods_display} {} needs no token",
                route.display()
            ),
        );
    }
    Some(Rule {
        name,
        path: route,
        methods,
        access,
        bind_to_workload,
    })
}

fn list_or_none(values: &[String]) -> String {
    if values.is_empty() {
        "none".into()
    } else {
        values.join(", ")
    }
}
