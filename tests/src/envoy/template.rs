//! Rendering Envoy config templates.
//!
//! Templates are YAML with `{{NAME}}` placeholders. Ports default to `0` so
//! Envoy binds free ports itself (no race between picking and binding); the
//! harness then asks the admin API which ports it got.

use std::collections::BTreeMap;

use anyhow::bail;
use serde_json::Value;

/// Placeholder values for [`render`].
#[derive(Clone, Debug, Default)]
pub struct TemplateVars {
    values: BTreeMap<String, String>,
}

impl TemplateVars {
    pub fn new() -> TemplateVars {
        TemplateVars::default()
    }

    /// `{{name}}` becomes `value` verbatim.
    pub fn set(mut self, name: &str, value: impl ToString) -> Self {
        self.values.insert(name.to_string(), value.to_string());
        self
    }

    /// `{{name}}` becomes `value` serialised as a quoted YAML string holding
    /// its JSON, e.g. for a plugin configuration:
    /// `configuration: { "@type": type.googleapis.com/google.protobuf.StringValue, value: {{PLUGIN_CONFIG}} }`.
    /// (A JSON string literal is a valid YAML double-quoted scalar.)
    pub fn json_string(self, name: &str, value: &Value) -> Self {
        let quoted = Value::String(value.to_string()).to_string();
        self.set(name, quoted)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub(crate) fn set_default(&mut self, name: &str, value: impl ToString) {
        self.values
            .entry(name.to_string())
            .or_insert_with(|| value.to_string());
    }
}

/// Replaces every `{{NAME}}`; any placeholder without a value is an error.
pub fn render(template: &str, vars: &TemplateVars) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut missing = Vec::new();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unterminated '{{{{' in template");
        };
        let name = after[..end].trim();
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None => missing.push(name.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if !missing.is_empty() {
        bail!(
            "template placeholders without a value: {}",
            missing.join(", ")
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_reports_missing() {
        let vars = TemplateVars::new()
            .set("A", 1)
            .json_string("J", &serde_json::json!({"k": "v"}));
        assert_eq!(
            render("x {{A}} {{ J }}", &vars).unwrap(),
            r#"x 1 "{\"k\":\"v\"}""#
        );
        let err = render("{{A}} {{B}} {{C}}", &vars).unwrap_err().to_string();
        assert!(err.contains("B, C"), "{err}");
    }
}
