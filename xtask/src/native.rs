//! `cargo xtask build-native`: the filter as an Envoy dynamic module (`.so`).
//!
//! Built with the `release-native` profile: the workspace's `release` profile
//! aborts on panic (right for the wasm VM), while the native module must
//! unwind so each hook can catch a panic and fail only that request
//! (Cargo.toml, `[profile.release-native]`).

use std::path::PathBuf;

use crate::cmd;

pub const PACKAGE: &str = "entragate-native";
pub const PROFILE: &str = "release-native";
pub const ARTIFACT: &str = "libentragate_native.so";
/// Env var the integration tests read the module's path from.
pub const ENV: &str = "ENTRAGATE_NATIVE_MODULE";
/// Env var naming the test-only build that panics on purpose.
pub const TEST_PANIC_ENV: &str = "ENTRAGATE_NATIVE_MODULE_TEST_PANIC";
/// Where the test-panic module is copied, so the shipped module's path never
/// holds it for longer than the build that follows.
const TEST_PANIC_TARGET: &str = "native-test-panic";

/// Builds the release module and returns its path.
pub fn build() -> Result<PathBuf, String> {
    cmd::run(cmd::cargo().args(["build", "--profile", PROFILE, "-p", PACKAGE]))?;
    let module = artifact_path()?;
    cmd::report_size("build-native", &module)?;
    Ok(module)
}

pub fn artifact_path() -> Result<PathBuf, String> {
    Ok(cmd::target_dir()?.join(PROFILE).join(ARTIFACT))
}

/// Builds the module with the `test-panic` feature (a request to
/// `/__entragate_test_panic` panics inside the hook) for the test showing that
/// Envoy keeps serving, and copies it aside. Never shipped.
///
/// Same target directory as [`build`]: only this crate differs (the feature
/// enables nothing in its dependencies), so AWS-LC is compiled once per CI
/// run, not twice. The build writes the shipped module's path, so callers run
/// [`build`] after it (`cargo xtask test` does).
pub fn build_test_panic() -> Result<PathBuf, String> {
    cmd::run(cmd::cargo().args([
        "build",
        "--profile",
        PROFILE,
        "-p",
        PACKAGE,
        "--features",
        "test-panic",
    ]))?;
    let copy = test_panic_artifact_path()?;
    if let Some(dir) = copy.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::copy(artifact_path()?, &copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(copy)
}

pub fn test_panic_artifact_path() -> Result<PathBuf, String> {
    Ok(cmd::target_dir()?.join(TEST_PANIC_TARGET).join(ARTIFACT))
}
