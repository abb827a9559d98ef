//! `cargo xtask bench [--smoke] [--seconds N] [--rounds N] [--pool N] [--hot-only] [--cases a,b] [--wasm FILE] [--native FILE]`:
//! entragate against Envoy's native `jwt_authn` in one Envoy (docs/performance.md).
//!
//! This task prepares what the benchmark needs (Envoy, `wrk`, the release
//! filter) and runs it: the benchmark itself is the `bench` binary of the
//! harness crate (`tests/src/bin/bench/`), because it uses the test IdP and
//! the Envoy runner. Keeping it there keeps `cargo xtask` free of the
//! harness's dependencies. `--smoke` runs each case about a second (CI);
//! no speed threshold is ever asserted.

use std::process::Command;

use crate::{cmd, native, setup, wasm};

pub fn run(args: &[String]) -> Result<(), String> {
    let setup = setup::run()?;
    ensure_apt_package("wrk", "wrk")?;
    let mut command = Command::new(cmd::build_bins(&["bench"])?.join("bench"));
    command
        .current_dir(cmd::repo_root())
        .args(args)
        .env("ENTRAGATE_ENVOY", &setup.envoy);
    // `--wasm FILE` measures a given build (an experiment); otherwise the
    // filter exactly as `build-wasm` ships it.
    if !args.iter().any(|a| a == "--wasm") {
        command.arg("--wasm").arg(wasm::build()?);
    }
    // Likewise the dynamic module (docs/native.md).
    if !args.iter().any(|a| a == "--native") {
        command.arg("--native").arg(native::build()?);
    }
    cmd::run(&mut command)
}

/// Installs a Debian package when its command is missing (CI machines start bare).
fn ensure_apt_package(command: &str, package: &str) -> Result<(), String> {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {command}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Ok(());
    }
    println!("bench: installing {package} (apt-get)");
    // A stale package list makes the install fail; refreshing it is harmless.
    let _ = cmd::run(Command::new("apt-get").args(["update", "-qq"]));
    cmd::run(Command::new("apt-get").args(["install", "-y", "-qq", package]))
}
