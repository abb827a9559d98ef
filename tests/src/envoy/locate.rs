//! Finding the Envoy binary and the filter's wasm.
//!
//! `ENTRAGATE_ENVOY`, else the venv `cargo xtask setup` creates under
//! `.cache/` (found by `entragate_tools::envoy`, as setup finds it).

use std::path::PathBuf;

use anyhow::bail;

use crate::util::repo_root;

/// Env var naming the Envoy binary.
pub const ENVOY_ENV: &str = "ENTRAGATE_ENVOY";
/// When set, a missing Envoy fails tests instead of skipping them (CI).
pub const REQUIRE_ENVOY_ENV: &str = "ENTRAGATE_REQUIRE_ENVOY";
/// Env var naming the filter's `.wasm`.
pub const WASM_ENV: &str = "ENTRAGATE_WASM";
/// Env var naming the filter as an Envoy dynamic module (`.so`).
pub const NATIVE_MODULE_ENV: &str = "ENTRAGATE_NATIVE_MODULE";

/// The Envoy binary to run.
pub fn envoy_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENVOY_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{ENVOY_ENV}={} does not exist (unset it to use the one `cargo xtask setup` installs)",
            path.display()
        );
    }
    let venv = entragate_tools::envoy::venv_dir();
    match entragate_tools::envoy::find_binary(&venv) {
        Some(path) => Ok(path),
        None => bail!(
            "Envoy not found: run `cargo xtask setup` (installs Envoy into {}) or set {ENVOY_ENV}",
            venv.display()
        ),
    }
}

/// For tests that need Envoy: `true` if it can run. When it is missing,
/// prints why the test is skipped and returns `false`, unless
/// `ENTRAGATE_REQUIRE_ENVOY` is set, in which case it panics (CI must not
/// pass by skipping).
///
/// ```no_run
/// # async fn t() {
/// if !entragate_tests::envoy_available("my_test") {
///     return;
/// }
/// # }
/// ```
pub fn envoy_available(test: &str) -> bool {
    match envoy_binary() {
        Ok(_) => true,
        Err(e) if std::env::var_os(REQUIRE_ENVOY_ENV).is_some() => {
            panic!("{test}: {e} ({REQUIRE_ENVOY_ENV} is set, so this is an error)")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            false
        }
    }
}

/// The filter's release wasm: `ENTRAGATE_WASM`, else
/// `<target>/wasm32-wasip1/release/entragate_filter.wasm`, honouring
/// `CARGO_TARGET_DIR`.
pub fn wasm_path() -> anyhow::Result<PathBuf> {
    built_artifact(
        WASM_ENV,
        "wasm32-wasip1/release/entragate_filter.wasm",
        "filter wasm",
        "build-wasm",
    )
}

/// `env`, else `<target>/<relative>` (honouring `CARGO_TARGET_DIR`); an error
/// naming the xtask that builds it when the file is missing.
fn built_artifact(env: &str, relative: &str, what: &str, xtask: &str) -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| repo_root().join("target"), PathBuf::from)
            .join(relative),
    };
    if !path.is_file() {
        bail!(
            "{what} not found at {}: run `cargo xtask {xtask}` (or set {env})",
            path.display()
        );
    }
    Ok(path)
}

/// The filter as an Envoy dynamic module: `ENTRAGATE_NATIVE_MODULE`, else
/// `<target>/release-native/libentragate_native.so` (what `cargo xtask
/// build-native` builds), honouring `CARGO_TARGET_DIR`.
pub fn native_module_path() -> anyhow::Result<PathBuf> {
    built_artifact(
        NATIVE_MODULE_ENV,
        "release-native/libentragate_native.so",
        "native module",
        "build-native",
    )
}
