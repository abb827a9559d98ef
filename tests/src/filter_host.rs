//! Which host runs the filter under test: the proxy-wasm filter (default) or
//! the Envoy dynamic module (`filter/native`). The suites that start a callee
//! through `tests/tests/support` (and a caller through
//! `tests/tests/outbound_support`) take it from `ENTRAGATE_FILTER_HOST`, so the
//! same tests run against either build (issue 12, item 5), not copies.

use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::envoy::{native_module_path, wasm_path, TemplateVars};
use crate::util::repo_root;

/// Where Envoy 1.40 looks for a dynamic module named in the configuration
/// (`dynamic_module_config.name`, as `bootstrap render --filter native` writes it).
pub const SEARCH_PATH_ENV: &str = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH";

/// Env var selecting the host: `wasm` (default) or `native`.
pub const FILTER_HOST_ENV: &str = "ENTRAGATE_FILTER_HOST";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterHost {
    Wasm,
    Native,
}

impl FilterHost {
    /// From `ENTRAGATE_FILTER_HOST`; anything but `wasm`/`native` is a
    /// mistake worth failing on rather than silently testing wasm.
    pub fn from_env() -> FilterHost {
        match std::env::var(FILTER_HOST_ENV).as_deref() {
            Err(_) | Ok("wasm") => FilterHost::Wasm,
            Ok("native") => FilterHost::Native,
            Ok(other) => panic!("{FILTER_HOST_ENV}={other}: expected `wasm` or `native`"),
        }
    }

    /// Envoy's prefix for the filter's own counters on `/stats`.
    pub fn stat_prefix(self) -> &'static str {
        match self {
            FilterHost::Wasm => "wasmcustom.",
            FilterHost::Native => "dynamicmodulescustom.",
        }
    }

    /// `name` (e.g. `entragate.allowed`) as this host shows it on `/stats`.
    pub fn stat(self, name: &str) -> String {
        format!("{}{name}", self.stat_prefix())
    }

    /// Envoy's prefix for the filter's counters on `/stats/prometheus`: it strips
    /// `wasmcustom` (the wasm extension registers it as a custom stat namespace),
    /// but renders the module's `dynamicmodulescustom` like any of its own stats
    /// (`envoy_` + the namespace): checked against 1.40.0 by `audit_log`.
    pub fn prometheus_prefix(self) -> &'static str {
        match self {
            FilterHost::Wasm => "",
            FilterHost::Native => "envoy_dynamicmodulescustom_",
        }
    }

    /// Envoy's log component of the filter's own lines.
    pub fn log_component(self) -> &'static str {
        match self {
            FilterHost::Wasm => "wasm",
            FilterHost::Native => "dynamic_modules",
        }
    }

    /// What the filter logs at load when signatures are checked natively:
    /// wasm calls Envoy's `verify_signature` foreign function, the module
    /// links its own crypto crate.
    pub fn native_signature_log(self) -> &'static str {
        match self {
            FilterHost::Wasm => "signatures checked by host verify_signature",
            FilterHost::Native => "signatures checked natively (aws-lc-rs)",
        }
    }

    /// The callee sidecar template for this host (same placeholders, except
    /// the filter binary's).
    pub fn callee_template(self) -> String {
        let path = match self {
            FilterHost::Wasm => repo_root().join("envoy/callee.yaml"),
            FilterHost::Native => repo_root().join("tests/tests/fixtures/native-callee.yaml"),
        };
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// The caller sidecar template for this host (the outbound role; same
    /// placeholders, except the filter binary's).
    pub fn caller_template(self) -> String {
        let path = match self {
            FilterHost::Wasm => repo_root().join("envoy/caller.yaml"),
            FilterHost::Native => repo_root().join("tests/tests/fixtures/native-caller.yaml"),
        };
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// The callee listener for a sidecar whose listeners come from a watched
    /// file (LDS; `tests/tests/fixtures/callee-lds.yaml`), so a test can
    /// replace the filter configuration of a running Envoy. Placeholders:
    /// VERSION, LISTENER_PORT, PLUGIN_CONFIG and the filter binary's.
    pub fn callee_lds_listener_template(self) -> String {
        let path = match self {
            FilterHost::Wasm => repo_root().join("tests/tests/fixtures/callee-lds-listener.json"),
            FilterHost::Native => {
                repo_root().join("tests/tests/fixtures/native-callee-lds-listener.json")
            }
        };
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// The environment Envoy needs to load a sidecar rendered by `bootstrap render` for this host: for
    /// the native module, `ENVOY_DYNAMIC_MODULES_SEARCH_PATH` naming the directory of the module under
    /// test (Envoy loads `lib<name>.so` from it, so the file must keep the name the renderer expects).
    pub fn rendered_sidecar_env(self) -> anyhow::Result<Vec<(String, String)>> {
        if self == FilterHost::Wasm {
            return Ok(Vec::new());
        }
        let module = native_module_path()?;
        let expected = format!(
            "lib{}.so",
            entragate_mesh::render::envoy::NATIVE_MODULE_NAME
        );
        if module.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
            bail!(
                "{}: a rendered sidecar loads the module by name, so it must be called {expected}",
                module.display()
            );
        }
        // Absolute: Envoy resolves the search path from its own working directory.
        let dir: PathBuf =
            std::fs::canonicalize(module.parent().context("the native module's directory")?)?;
        Ok(vec![(SEARCH_PATH_ENV.into(), dir.display().to_string())])
    }

    /// Sets the filter binary's placeholder (`WASM_PATH` or `NATIVE_MODULE`).
    pub fn with_filter(self, vars: TemplateVars) -> anyhow::Result<TemplateVars> {
        Ok(match self {
            FilterHost::Wasm => vars.set("WASM_PATH", wasm_path()?.display()),
            FilterHost::Native => vars.set("NATIVE_MODULE", native_module_path()?.display()),
        })
    }
}
