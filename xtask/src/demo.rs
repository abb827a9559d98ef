//! `cargo xtask demo`: installs what is missing, builds the filter, then runs
//! the demo program (`tests/src/bin/demo.rs`) against the real Envoy.

use crate::{cmd, setup, wasm};

pub fn run() -> Result<(), String> {
    let setup = setup::run()?;
    println!("== build-wasm");
    let wasm = wasm::build()?;
    println!("== demo");
    cmd::run(
        cmd::cargo()
            .args(["run", "--quiet", "-p", "entragate-tests", "--bin", "demo"])
            .env("ENTRAGATE_WASM", &wasm)
            .env("ENTRAGATE_ENVOY", &setup.envoy),
    )
}
