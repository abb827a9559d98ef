//! `cargo xtask <task>`: the project's developer and CI entry points.
//!
//! Plain Rust instead of shell scripts so the same steps run identically on a
//! developer machine and in CI, and so the lookup rules (where Envoy lives,
//! where the wasm lands) are written down once.
//!
//! Tasks:
//! - `setup`      install the wasm target, Envoy and the pinned tools of `xtask/tools` (cached in `.cache/`)
//! - `build-wasm` build the filter for `wasm32-wasip1` and report its size
//! - `build-native` build the filter as an Envoy dynamic module (`.so`); `--portable [--arch x86_64|aarch64]`:
//!   the one to ship, linked against glibc 2.28 and checked (default x86_64)
//! - `test`       setup, fmt, clippy, build-wasm, then the whole test suite
//! - `demo`       the FinTech story on loopback (`--keep-running` to keep it up until Ctrl-C)
//! - `bench`      entragate vs Envoy's jwt_authn (`--smoke` for CI); see docs/performance.md
//! - `fuzz`       libFuzzer targets of `fuzz/` (`--smoke` for CI); see docs/security.md
//! - `soak`       long mixed-traffic run with key rotations (`--minutes N`); see docs/security.md

mod bench;
mod cmd;
mod demo;
mod fuzz;
mod native;
mod setup;
mod soak;
mod test;
mod wasm;
mod wasm_opt;

use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask <setup|build-wasm|build-native [--portable [--arch x86_64|aarch64]]|test|demo|bench [--smoke]|fuzz [--smoke]|soak [--minutes N]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run().map(|_| ()),
        Some("build-wasm") => {
            println!("== build-wasm");
            wasm::build().map(|_| ())
        }
        Some("build-native") => {
            println!("== build-native");
            match args.get(1..).unwrap_or_default() {
                [] => native::build().map(|_| ()),
                [flag] if flag == "--portable" => native::build_portable(native::Arch::X86_64).map(|_| ()),
                [flag, arch_flag, arch] if flag == "--portable" && arch_flag == "--arch" => {
                    match native::Arch::parse(arch) {
                        Some(arch) => native::build_portable(arch).map(|_| ()),
                        None => Err(format!("build-native: unknown architecture `{arch}` (x86_64 or aarch64)")),
                    }
                }
                other => Err(format!(
                    "build-native: unexpected arguments {other:?} (build-native [--portable [--arch x86_64|aarch64]])"
                )),
            }
        }
        Some("test") => test::run(),
        Some("bench") => bench::run(args.get(1..).unwrap_or_default()),
        Some("demo") => demo::run(args.get(1..).unwrap_or_default()),
        Some("fuzz") => fuzz::run(args.get(1..).unwrap_or_default()),
        Some("soak") => soak::run(args.get(1..).unwrap_or_default()),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
