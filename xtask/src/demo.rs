//! `cargo xtask demo [--keep-running]`: installs what is missing, builds the
//! filter, `bootstrap`, the two FinTech services and the demo program
//! (`tests/src/bin/demo/`) in one cargo invocation (so they sit side by side
//! in the target folder, where the demo finds them, and with the test build's
//! features: see [`cmd::build_bins`]), then runs the story.

use crate::{cmd, setup, wasm};

pub fn run(args: &[String]) -> Result<(), String> {
    let setup = setup::run()?;
    println!("== build-wasm");
    let wasm = wasm::build()?;
    println!("== build");
    let bin_dir = cmd::build_bins(&[
        "demo",
        "bootstrap",
        "fraud-detector",
        "transaction-processor",
    ])?;
    println!("== demo");
    let demo = bin_dir.join("demo");
    cmd::run(
        std::process::Command::new(demo)
            .args(args)
            .current_dir(cmd::repo_root())
            .env("ENTRAGATE_WASM", &wasm)
            .env("ENTRAGATE_ENVOY", &setup.envoy),
    )
}
