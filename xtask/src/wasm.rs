//! `cargo xtask build-wasm`: the filter as Envoy loads it.

use std::path::PathBuf;

use crate::cmd;
use crate::setup::WASM_TARGET;

pub const PACKAGE: &str = "entragate-filter";
pub const ARTIFACT: &str = "entragate_filter.wasm";

/// Builds the release wasm and returns its path.
pub fn build() -> Result<PathBuf, String> {
    cmd::run(cmd::cargo().args(["build", "--release", "--target", WASM_TARGET, "-p", PACKAGE]))?;
    let wasm = artifact_path()?;
    crate::wasm_opt::optimize(&wasm)?;
    let size = std::fs::metadata(&wasm)
        .map_err(|e| format!("built, but cannot read {}: {e}", wasm.display()))?
        .len();
    println!(
        "build-wasm: {} ({} bytes, {:.1} KiB)",
        wasm.display(),
        size,
        size as f64 / 1024.0
    );
    Ok(wasm)
}

pub fn artifact_path() -> Result<PathBuf, String> {
    Ok(cmd::target_dir()?
        .join(WASM_TARGET)
        .join("release")
        .join(ARTIFACT))
}
