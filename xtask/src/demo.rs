//! `cargo xtask demo [--keep-running]`: installs what is missing, builds the
//! filter, `bootstrap`, the two FinTech services and the demo program
//! (`tests/src/bin/demo/`) in one cargo invocation (so they sit side by side
//! in the target folder, where the demo finds them), then runs the story.

use crate::{cmd, setup, wasm};

pub fn run(args: &[String]) -> Result<(), String> {
    let setup = setup::run()?;
    println!("== build-wasm");
    let wasm = wasm::build()?;
    println!("== build");
    cmd::run(cmd::cargo().args([
        "build",
        "--quiet",
        "-p",
        "entragate-tests",
        "--bin",
        "demo",
        "-p",
        "entragate-bootstrap",
        "--bin",
        "bootstrap",
        "-p",
        "fintech-services",
        // `--bin` filters apply to every selected package, so name these too.
        "--bin",
        "fraud-detector",
        "--bin",
        "transaction-processor",
    ]))?;
    println!("== demo");
    let demo = cmd::target_dir()?.join("debug").join("demo");
    cmd::run(
        std::process::Command::new(demo)
            .args(args)
            .current_dir(cmd::repo_root())
            .env("ENTRAGATE_WASM", &wasm)
            .env("ENTRAGATE_ENVOY", &setup.envoy),
    )
}
