//! `cargo xtask soak [--minutes N] [--smoke] [--rate R]`: a long run of mixed
//! valid and invalid traffic through one callee Envoy while the IdP rotates
//! its signing key every minute (docs/security.md, "Soak").
//!
//! Like `bench`, this task only prepares (Envoy, the release filter) and
//! launches: the soak itself is the `soak` binary of the harness crate
//! (`tests/src/bin/soak.rs`), which needs the test IdP and the Envoy runner.
//! It exits non-zero when a criterion fails (a wrong decision, a 5xx for a
//! valid token after warm-up, Envoy RSS growth of 10 % or more, the emergency
//! key not learned within the unknown-`kid` limit, too many unknown-`kid`
//! refreshes).

use std::path::Path;
use std::process::Command;

use crate::{cmd, setup, wasm};

pub fn run(args: &[String]) -> Result<(), String> {
    let setup = setup::run()?;
    let wasm = wasm::build()?;
    let mut command = command(&wasm, &setup.envoy)?;
    command.args(args);
    cmd::run(&mut command)
}

/// The built `soak` binary, ready to run with the release filter and Envoy (CI adds `--smoke`).
pub fn command(wasm: &Path, envoy: &Path) -> Result<Command, String> {
    let soak = cmd::build_bins(&["soak"])?.join("soak");
    let mut command = Command::new(soak);
    command
        .current_dir(cmd::repo_root())
        .env("ENTRAGATE_WASM", wasm)
        .env("ENTRAGATE_ENVOY", envoy);
    Ok(command)
}
