//! `cargo xtask build-native`: the filter as an Envoy dynamic module (`.so`).
//!
//! Built with the `release-native` profile: the workspace's `release` profile
//! aborts on panic (right for the wasm VM), while the native module must
//! unwind so each hook can catch a panic and fail only that request
//! (Cargo.toml, `[profile.release-native]`).

use std::path::{Path, PathBuf};
use std::process::Command;

use entragate_tools as tools;

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

/// The oldest glibc the portable module links against: Envoy 1.40.0's own
/// binary needs 2.30, so a module that needs no more than this loads wherever
/// that Envoy runs (a module built on this Debian 12 machine needs 2.34).
pub const PORTABLE_GLIBC: &str = "2.28";
const PORTABLE_TARGET: &str = "x86_64-unknown-linux-gnu";

/// `cargo xtask build-native --portable`: the module linked against glibc
/// [`PORTABLE_GLIBC`] with Zig (`cargo-zigbuild`), whatever glibc this machine
/// has, then checked: no symbol may need a newer glibc. This is the module to
/// ship; the plain build is for tests on this machine.
pub fn build_portable() -> Result<PathBuf, String> {
    let zig = tools::pip::ensure(&tools::ZIG).map_err(|e| format!("installing Zig: {e}"))?;
    let zigbuild = ensure_cargo_zigbuild()?;
    // cargo-zigbuild finds Zig as `python3 -m ziglang` from the venv.
    let path = std::env::join_paths(
        std::iter::once(zig.join("bin")).chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    )
    .map_err(|e| format!("PATH: {e}"))?;
    let target = format!("{PORTABLE_TARGET}.{PORTABLE_GLIBC}");
    cmd::run(
        Command::new(&zigbuild)
            .args([
                "zigbuild",
                "--profile",
                PROFILE,
                "-p",
                PACKAGE,
                "--target",
                &target,
            ])
            .current_dir(cmd::repo_root())
            .env("PATH", path),
    )?;
    let module = cmd::target_dir()?
        .join(PORTABLE_TARGET)
        .join(PROFILE)
        .join(ARTIFACT);
    let needed = newest_glibc(&module)?;
    if version_key(&needed) > version_key(PORTABLE_GLIBC) {
        return Err(format!(
            "{} needs GLIBC_{needed}, newer than the {PORTABLE_GLIBC} it was built for",
            module.display()
        ));
    }
    cmd::report_size("build-native --portable", &module)?;
    println!("build-native --portable: needs glibc >= {needed} (Envoy 1.40.0 itself needs 2.30)");
    Ok(module)
}

/// `cargo-zigbuild` at the pinned version, installed under `.cache/` once.
fn ensure_cargo_zigbuild() -> Result<PathBuf, String> {
    let root = tools::cache_dir().join("cargo-zigbuild");
    let binary = root.join("bin").join("cargo-zigbuild");
    let installed = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let wanted = format!("cargo-zigbuild {}", tools::CARGO_ZIGBUILD_VERSION);
    if installed.as_deref() != Some(wanted.as_str()) {
        println!("setup: installing {wanted} (cargo install)");
        cmd::run(cmd::cargo().args([
            "install",
            "--locked",
            "--quiet",
            "--root",
            &root.display().to_string(),
            "--version",
            tools::CARGO_ZIGBUILD_VERSION,
            "cargo-zigbuild",
        ]))?;
    }
    Ok(binary)
}

/// The newest `GLIBC_x.y` symbol version `module` needs (`objdump -T`).
fn newest_glibc(module: &Path) -> Result<String, String> {
    let output = Command::new("objdump")
        .arg("-T")
        .arg(module)
        .output()
        .map_err(|e| format!("objdump: {e}"))?;
    if !output.status.success() {
        return Err(format!("objdump -T {} failed", module.display()));
    }
    String::from_utf8_lossy(&output.stdout)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .max_by_key(|v| version_key(v))
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no GLIBC symbol versions found", module.display()))
}

/// `2.28` -> `[2, 28]`, for comparing versions numerically.
fn version_key(version: &str) -> Vec<u32> {
    version.split('.').filter_map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn glibc_versions_compare_numerically() {
        assert!(version_key("2.34") > version_key("2.28"));
        assert!(version_key("2.9") < version_key("2.28"));
        assert_eq!(version_key("2.28"), vec![2, 28]);
    }
}
