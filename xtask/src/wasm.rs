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
    cmd::report_size("build-wasm", &wasm)?;
    Ok(wasm)
}

pub fn artifact_path() -> Result<PathBuf, String> {
    Ok(cmd::target_dir()?
        .join(WASM_TARGET)
        .join("release")
        .join(ARTIFACT))
}
