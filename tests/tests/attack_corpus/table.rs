//! Rendering the corpus as the Markdown table in `docs/security.md`.

use std::path::PathBuf;

use super::cases::{Case, Class, Expect};

/// Marks the generated part of `docs/security.md`.
pub const BEGIN: &str = "<!-- attack-corpus:begin (generated from tests/tests/attack_corpus/cases.rs; ENTRAGATE_BLESS=1 rewrites it) -->";
pub const END: &str = "<!-- attack-corpus:end -->";
/// Set to rewrite the table instead of comparing it.
pub const BLESS_ENV: &str = "ENTRAGATE_BLESS";

pub fn security_md() -> PathBuf {
    entragate_tests::repo_root().join("docs/security.md")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The generated section: class summary, then one row per case.
pub fn render(cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str("\n\n");
    out.push_str(&format!(
        "{} cases. Status is what the caller gets from the callee sidecar; \"error\" is the RFC 6750 code in \
         `WWW-Authenticate` and the JSON body, \"reason\" its `error_description`.\n\n",
        cases.len()
    ));
    out.push_str("| class | cases | what |\n|---|---|---|\n");
    for class in Class::ALL {
        let count = cases.iter().filter(|c| c.class == *class).count();
        out.push_str(&format!(
            "| {} | {count} | {} |\n",
            class.name(),
            cell(class.summary())
        ));
    }
    out.push('\n');
    out.push_str("| id | class | hostile request | status | error | reason |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for case in cases {
        let (status, error, reason) = match case.expect {
            Expect::Accepted => ("200 (forwarded)".to_string(), "—", "—".to_string()),
            Expect::Filter {
                status,
                error,
                reason,
            } => (
                status.to_string(),
                error.unwrap_or("— (no credentials)"),
                reason.to_string(),
            ),
            Expect::Envoy { status } => (
                format!("{status} (Envoy)"),
                "—",
                "refused by Envoy's HTTP codec before the filter".to_string(),
            ),
        };
        let error = if error.starts_with('—') {
            error.to_string()
        } else {
            format!("`{error}`")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {status} | {error} | {} |\n",
            case.id,
            case.class.name(),
            cell(case.description),
            cell(&reason)
        ));
    }
    out.push('\n');
    out.push_str(END);
    out
}

/// Replaces the generated section of `document` (which must contain both markers).
pub fn splice(document: &str, section: &str) -> Option<String> {
    let start = document.find(BEGIN)?;
    let end = document[start..].find(END)? + start + END.len();
    Some(format!(
        "{}{section}{}",
        &document[..start],
        &document[end..]
    ))
}

/// The generated section currently in `document`.
pub fn current(document: &str) -> Option<&str> {
    let start = document.find(BEGIN)?;
    let end = document[start..].find(END)? + start + END.len();
    Some(&document[start..end])
}
