//! The who-can-call-whom table `bootstrap check` prints: one line per (caller, callee, rule), callers by
//! service name, then the rules open to any caller holding the roles, anonymous routes and what happens to
//! everything else. Deterministic: callees and rules in document order, callers in rule order.

use super::policy::{Access, MeshPolicy, Unmatched};

/// One row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub caller: String,
    /// How the caller authenticates (`secret`, `aws-federation`, `kms-certificate`); `-` for no one in
    /// particular.
    pub credential: String,
    pub callee: String,
    pub methods: String,
    pub route: String,
    pub requires: String,
}

/// Every row, in order.
pub fn rows(policy: &MeshPolicy) -> Vec<Row> {
    let mut rows = Vec::new();
    for callee in policy.services() {
        for rule in &callee.rules {
            let row = |caller: String, requires: String| Row {
                credential: policy
                    .service(&caller)
                    .and_then(|s| s.identity.as_ref())
                    .map_or_else(|| "-".into(), |i| i.credential.kind().to_string()),
                caller,
                callee: callee.name.clone(),
                methods: rule.methods_display(),
                route: rule.path.display(),
                requires,
            };
            match &rule.access {
                Access::Anonymous => rows.push(row("(anyone)".into(), "no token".into())),
                Access::Token {
                    roles,
                    scopes,
                    all,
                    callers,
                } => {
                    let joiner = if *all { " and " } else { " or " };
                    let mut needs = Vec::new();
                    if !roles.is_empty() {
                        needs.push(format!("role {}", roles.join(joiner)));
                    }
                    if !scopes.is_empty() {
                        needs.push(format!("scope {}", scopes.join(joiner)));
                    }
                    let requires = if needs.is_empty() {
                        "any valid token".to_string()
                    } else {
                        needs.join(" or ")
                    };
                    if callers.is_empty() {
                        rows.push(row("(any caller)".into(), requires));
                    } else {
                        for c in callers {
                            rows.push(row(c.service.clone(), requires.clone()));
                        }
                    }
                }
            }
        }
        let (methods, route, requires) = match callee.unmatched {
            Unmatched::Deny => ("*", "(no rule matches)", "denied (403)"),
            Unmatched::AllowAnyValidToken => ("*", "(no rule matches)", "any valid token"),
        };
        if callee.is_callee() {
            rows.push(Row {
                caller: "(anyone)".into(),
                credential: "-".into(),
                callee: callee.name.clone(),
                methods: methods.into(),
                route: route.into(),
                requires: requires.into(),
            });
        }
    }
    rows
}

/// The table as aligned text, with a header line.
pub fn render(policy: &MeshPolicy) -> String {
    let header = Row {
        caller: "CALLER".into(),
        credential: "CREDENTIAL".into(),
        callee: "CALLEE".into(),
        methods: "METHODS".into(),
        route: "ROUTE".into(),
        requires: "REQUIRES".into(),
    };
    let all: Vec<Row> = std::iter::once(header).chain(rows(policy)).collect();
    let width = |get: fn(&Row) -> &str| all.iter().map(|r| get(r).len()).max().unwrap_or(0);
    let (w_caller, w_credential, w_callee, w_methods, w_route) = (
        width(|r| r.caller.as_str()),
        width(|r| r.credential.as_str()),
        width(|r| r.callee.as_str()),
        width(|r| r.methods.as_str()),
        width(|r| r.route.as_str()),
    );
    let mut out = String::new();
    for (i, r) in all.iter().enumerate() {
        let arrow = if i == 0 { "  " } else { "->" };
        let line = format!(
            "{:<w_caller$}  {:<w_credential$} {arrow} {:<w_callee$}  {:<w_methods$}  {:<w_route$}  {}",
            r.caller, r.credential, r.callee, r.methods, r.route, r.requires
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
