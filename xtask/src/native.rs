//! `cargo xtask build-native`: the filter as an Envoy dynamic module (`.so`).
//!
//! Built with the `release-native` profile: the workspace's `release` profile
//! aborts on panic (right for the wasm VM), while the native module must
//! unwind so each hook can catch a panic and fail only that request
//! (Cargo.toml, `[profile.release-native]`).

use std::path::{Path, PathBuf};
use std::process::Command;

use entragate_tools::{self as tools, elf};

use crate::{cmd, setup};

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

/// The architectures the portable module is built for: one `.so` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The `--arch` value.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub fn parse(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|arch| arch.name() == name)
    }

    /// The Rust target: also the folder under `target/` the module lands in.
    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// `e_machine` as `readelf -h` prints it.
    fn elf_machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "Advanced Micro Devices X86-64",
            Arch::Aarch64 => "AArch64",
        }
    }
}

/// Where `cargo xtask build-native --portable --arch <arch>` leaves the module.
pub fn portable_artifact_path(arch: Arch) -> Result<PathBuf, String> {
    Ok(cmd::target_dir()?
        .join(arch.triple())
        .join(PROFILE)
        .join(ARTIFACT))
}

/// `cargo xtask build-native --portable [--arch <arch>]`: the module for
/// `arch`, linked against glibc [`PORTABLE_GLIBC`] with Zig
/// (`cargo-zigbuild`) whatever glibc this machine has, then checked by
/// [`check_portable`]. This is the module to ship; the plain build is for
/// tests on this machine.
///
/// Zig is the C compiler of AWS-LC too (its `cc` builder, no CMake; on Linux
/// its assembly is `.S` files the C compiler assembles, no NASM), so the same
/// command cross-builds: only the Rust standard library of the target is
/// added (`rustup target add`).
pub fn build_portable(arch: Arch) -> Result<PathBuf, String> {
    setup::ensure_rust_target(arch.triple())?;
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
    let target = format!("{}.{PORTABLE_GLIBC}", arch.triple());
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
    let module = portable_artifact_path(arch)?;
    let needed = check_portable(&module, arch)?;
    let task = format!("build-native --portable --arch {}", arch.name());
    cmd::report_size(&task, &module)?;
    println!(
        "{task}: {} module, needs glibc >= {needed} (Envoy 1.40.0 itself needs 2.30), exports the {} hooks Envoy 1.40 requires",
        arch.elf_machine(),
        elf::DYNAMIC_MODULE_HOOKS.len()
    );
    Ok(module)
}

/// What makes `module` shippable for `arch`, read from the file (the same
/// check for every architecture, since one of them cannot be loaded here): it
/// is an ELF for `arch`, no symbol needs a glibc newer than
/// [`PORTABLE_GLIBC`], and it exports every hook Envoy 1.40 resolves. Returns
/// the newest glibc it needs.
pub fn check_portable(module: &Path, arch: Arch) -> Result<String, String> {
    let machine = elf::machine(module)?;
    if machine != arch.elf_machine() {
        return Err(format!(
            "{} is a {machine} ELF, not {}",
            module.display(),
            arch.elf_machine()
        ));
    }
    let symbols = elf::dynamic_symbols(module)?;
    let needed = elf::newest_glibc(&symbols)
        .ok_or_else(|| format!("{}: no GLIBC symbol versions found", module.display()))?;
    if elf::version_key(&needed) > elf::version_key(PORTABLE_GLIBC) {
        return Err(format!(
            "{} needs GLIBC_{needed}, newer than the {PORTABLE_GLIBC} it was built for",
            module.display()
        ));
    }
    let exported = elf::envoy_symbols(&symbols, true);
    let missing: Vec<&str> = elf::DYNAMIC_MODULE_HOOKS
        .iter()
        .copied()
        .filter(|hook| !exported.contains(*hook))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} does not export {}",
            module.display(),
            missing.join(", ")
        ));
    }
    Ok(needed)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The check on the plain build (`cargo xtask test` builds it before the
    /// tests run; skipped when it is absent): checked as the other
    /// architecture it is refused for its ELF machine; as its own, it exports
    /// every hook and can only be refused for its glibc (on a machine with a
    /// glibc newer than 2.28, such as Debian 12's 2.36, it is).
    #[test]
    fn the_portable_check_refuses_what_cannot_ship() {
        let module = match artifact_path() {
            Ok(path) if path.exists() => path,
            _ => {
                eprintln!("SKIPPED: no plain build (cargo xtask build-native)");
                return;
            }
        };
        let host = Arch::ALL
            .into_iter()
            .find(|arch| arch.name() == std::env::consts::ARCH);
        let Some(host) = host else {
            eprintln!("SKIPPED: no portable build for {}", std::env::consts::ARCH);
            return;
        };
        match check_portable(&module, host) {
            Ok(needed) => println!("the plain build needs only glibc {needed}"),
            Err(refusal) => assert!(
                refusal.contains(&format!("newer than the {PORTABLE_GLIBC}")),
                "{refusal}"
            ),
        }
        for other in Arch::ALL.into_iter().filter(|arch| *arch != host) {
            let refusal = check_portable(&module, other).expect_err("wrong machine accepted");
            assert!(
                refusal.contains(&format!("not {}", other.elf_machine())),
                "{refusal}"
            );
        }
    }

    #[test]
    fn arch_names_round_trip() {
        for arch in Arch::ALL {
            assert_eq!(Arch::parse(arch.name()), Some(arch));
            assert!(arch.triple().starts_with(arch.name()));
        }
        assert_eq!(Arch::parse("arm64"), None);
    }
}
