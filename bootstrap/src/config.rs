//! Agent configuration: an optional TOML file, overridden field by field by command-line flags.
//!
//! ```toml
//! secret_id = "fintech/transaction-processor/identity"
//! region = "us-east-1"
//! # endpoint_url = "http://127.0.0.1:5000"        # local emulator
//! # authority = "https://login.microsoftonline.us" # sovereign cloud
//! scopes = ["fraud-detector=api://fintech-fraud-detector/.default"]
//! listen = "127.0.0.1:15901"
//! agent_key_file = "/run/entragate/agent-key"
//! ```

use crate::token::cache::ScopeConfig;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The TOML file. Every field is optional; unknown keys are rejected so typos do not pass silently.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub secret_id: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub authority: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub listen: Option<String>,
    pub agent_key_file: Option<String>,
    pub listen_addr_file: Option<String>,
    /// Humantime durations: "10s", "500ms", "1m".
    pub idp_timeout: Option<String>,
    pub retry_initial: Option<String>,
    pub retry_max: Option<String>,
    /// `[credential]`: how the agent authenticates to Entra (default: the client secret at `secret_id`).
    pub credential: Option<crate::credential::RawCredential>,
}

/// Reads and parses the config file.
pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Parses a humantime duration ("10s", "1m30s") from a flag or the file.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Parses `[name=]resource-or-scope`. A resource (`api://fintech-fraud-detector`, an app id GUID,
/// `https://graph.microsoft.com`) gets `/.default` appended, as the client-credentials flow requires. The
/// name, the agent URL's path segment, defaults to the resource without scheme.
pub fn parse_scope_spec(spec: &str) -> Result<ScopeConfig, String> {
    let spec = spec.trim();
    let (name, raw) = match spec.split_once('=') {
        // `=` cannot occur in a scope URI's authority/path we accept, so the first `=` splits a name off.
        Some((n, s)) if !n.contains("://") => (Some(n.trim()), s.trim()),
        _ => (None, spec),
    };
    if raw.is_empty() {
        return Err(format!("scope {spec:?} is empty"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "scope {spec:?} contains whitespace; give one scope per --scope"
        ));
    }
    let resource = raw
        .strip_suffix("/.default")
        .unwrap_or(raw)
        .trim_end_matches('/');
    if resource.is_empty() {
        return Err(format!("scope {spec:?} names no resource"));
    }
    if raw.contains("/.default") && !raw.ends_with("/.default") {
        return Err(format!(
            "scope {spec:?}: /.default must be the last path segment"
        ));
    }
    let scope = format!("{resource}/.default");
    let name = match name {
        Some(n) => n.to_string(),
        None => derive_name(resource),
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "scope name {name:?} must be 1-64 characters of letters, digits, '-', '_' or '.' (write name=scope)"
        ));
    }
    Ok(ScopeConfig { name, scope })
}

/// `api://fintech-fraud-detector` → `fintech-fraud-detector`; `https://graph.microsoft.com` →
/// `graph.microsoft.com`; other characters become `-`.
pub fn derive_name(resource: &str) -> String {
    let without_scheme = resource
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(resource);
    let mapped: String = without_scheme
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    trimmed.chars().take(64).collect()
}

/// Parses all specs and rejects duplicate names or scopes.
pub fn parse_scopes(specs: &[String]) -> Result<Vec<ScopeConfig>, String> {
    let mut out: Vec<ScopeConfig> = Vec::new();
    for spec in specs {
        let cfg = parse_scope_spec(spec)?;
        if let Some(prev) = out
            .iter()
            .find(|c| c.name == cfg.name || c.scope == cfg.scope)
        {
            return Err(format!(
                "scope {:?} clashes with {:?} (same name or scope); give distinct names with name=scope",
                cfg.scope, prev.scope
            ));
        }
        out.push(cfg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(name: &str, scope: &str) -> ScopeConfig {
        ScopeConfig {
            name: name.into(),
            scope: scope.into(),
        }
    }

    #[test]
    fn scope_specs() {
        assert_eq!(
            parse_scope_spec("api://fintech-fraud-detector/.default").unwrap(),
            sc(
                "fintech-fraud-detector",
                "api://fintech-fraud-detector/.default"
            )
        );
        assert_eq!(
            parse_scope_spec("api://fintech-fraud-detector").unwrap(),
            sc(
                "fintech-fraud-detector",
                "api://fintech-fraud-detector/.default"
            )
        );
        assert_eq!(
            parse_scope_spec("fraud=api://fintech-fraud-detector/").unwrap(),
            sc("fraud", "api://fintech-fraud-detector/.default")
        );
        assert_eq!(
            parse_scope_spec("6e74172b-be56-4843-9ff4-e66a39bb12e3").unwrap(),
            sc(
                "6e74172b-be56-4843-9ff4-e66a39bb12e3",
                "6e74172b-be56-4843-9ff4-e66a39bb12e3/.default"
            )
        );
        assert_eq!(
            parse_scope_spec("https://graph.microsoft.com/.default").unwrap(),
            sc(
                "graph.microsoft.com",
                "https://graph.microsoft.com/.default"
            )
        );
        assert!(parse_scope_spec("").is_err());
        assert!(parse_scope_spec("a b").is_err());
        assert!(parse_scope_spec("/.default").is_err());
        assert!(parse_scope_spec("bad name!=api://x").is_err());
        assert!(parse_scope_spec("api://x/.default/more").is_err());
    }

    #[test]
    fn duplicate_scopes_rejected() {
        assert!(parse_scopes(&["api://a".into(), "api://a/.default".into()]).is_err());
        assert!(parse_scopes(&["x=api://a".into(), "x=api://b".into()]).is_err());
        assert_eq!(
            parse_scopes(&["api://a".into(), "api://b".into()])
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn file_config_rejects_unknown_keys() {
        let ok: FileConfig =
            toml::from_str("secret_id = \"s\"\nscopes = [\"api://a\"]\nidp_timeout = \"5s\"")
                .unwrap();
        assert_eq!(ok.secret_id.as_deref(), Some("s"));
        assert!(toml::from_str::<FileConfig>("secretid = \"s\"").is_err());
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }
}
