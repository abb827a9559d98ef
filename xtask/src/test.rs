//! `cargo xtask test`: everything CI checks, in order, with a summary.
//!
//! Steps after setup keep running when one fails so a single run reports every
//! problem (a fmt nit should not hide a failing test); the exit code is
//! non-zero if any step failed.

use std::process::Command;
use std::time::Instant;

use crate::{cmd, fuzz, native, setup, wasm};

struct Step {
    name: &'static str,
    ok: bool,
    seconds: f64,
}

pub fn run() -> Result<(), String> {
    let started = Instant::now();
    let setup = setup::run()?;
    let mut steps = Vec::new();

    step(&mut steps, "fmt", || {
        cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))
    });
    step(&mut steps, "clippy", || {
        cmd::run(cmd::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    step(&mut steps, "build-wasm", || wasm::build().map(|_| ()));
    // The test-panic module first: it is built where the shipped one is, then
    // copied aside, and the shipped build after it recompiles only our crate.
    step(&mut steps, "build-native (test-panic)", || {
        native::build_test_panic().map(|_| ())
    });
    step(&mut steps, "build-native", || native::build().map(|_| ()));
    // The modules to ship, one per architecture, each built against glibc
    // 2.28 and checked (ELF machine, glibc symbol versions, exported hooks).
    // The x86_64 one is what the native-host suites below load; the aarch64
    // one is only checked: there is no aarch64 Envoy (or emulator) here.
    let mut portable = None;
    step(&mut steps, "build-native --portable x86_64", || {
        portable = Some(native::build_portable(native::Arch::X86_64)?);
        Ok(())
    });
    step(&mut steps, "build-native --portable aarch64", || {
        native::build_portable(native::Arch::Aarch64).map(|_| ())
    });
    // The pure core runs inside Envoy's V8 as wasm: run its unit tests compiled
    // to wasm32-wasip1 too (under Wasmtime), not only natively.
    step(&mut steps, "core tests as wasm", || {
        let runner = format!(
            "{} {}",
            setup.wasmtime_python.display(),
            cmd::repo_root()
                .join("xtask/scripts/wasi-runner.py")
                .display()
        );
        cmd::run(
            cmd::cargo()
                .args([
                    "test",
                    "-p",
                    "entragate-core",
                    "--target",
                    setup::WASM_TARGET,
                ])
                .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", runner),
        )
    });

    // Tests get explicit paths so they never guess; Envoy is required here
    // because setup just installed it, so a missing binary is a failure, not
    // a skip.
    let wasm_path = wasm::artifact_path()?;
    let native_path = native::artifact_path()?;
    let native_panic_path = native::test_panic_artifact_path()?;
    let with_env = |command: &mut Command| {
        command
            .env("ENTRAGATE_WASM", &wasm_path)
            .env(native::ENV, &native_path)
            .env(native::TEST_PANIC_ENV, &native_panic_path)
            .env("ENTRAGATE_ENVOY", &setup.envoy)
            .env("ENTRAGATE_REQUIRE_ENVOY", "1");
    };
    if nextest_available() {
        step(&mut steps, "test (nextest)", || {
            let mut command = cmd::cargo();
            command.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
            with_env(&mut command);
            cmd::run(&mut command)
        });
        // The callee and caller suites again with the dynamic module as the
        // filter of every callee and caller they start (issue 12): the
        // binaries the step above built, same profile and features, so
        // nothing is compiled again. The module is the portable x86_64 one,
        // the one shipped, with `native_module` run against it too (the step
        // above ran that suite against the plain build); the plain build only
        // if the portable build failed (that step already failed the run).
        let native_host_module = portable.clone().unwrap_or_else(|| native_path.clone());
        step(&mut steps, "test (native host)", || {
            let mut command = cmd::cargo();
            // `--workspace` as above, not `-p entragate-tests`: a narrower
            // package selection unifies features differently and recompiled
            // 24 crates (114 s on a fresh clone).
            command.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
            // mesh_mtls: every sidecar as `bootstrap render --filter native` renders it (the callee with
            // the workload binding: the module reads the mTLS peer's SANs; the callers' outbound role).
            let suites = [
                "native_module",
                "callee_filter",
                "audit_log",
                "attack_corpus",
                "fast_paths",
                "mesh_mtls",
                "caller_e2e",
                "secretless_e2e",
                "log_hygiene",
                "chaos",
            ];
            for suite in suites.iter().chain(&["mesh_e2e"]) {
                command.args(["--test", suite]);
            }
            // `mesh_e2e` only for the chain: its other test validates wasm
            // renderings.
            let mut filter: Vec<String> = suites.iter().map(|s| format!("binary({s})")).collect();
            filter.push("(binary(mesh_e2e) & test(runs_end_to_end))".into());
            command.args(["-E", &filter.join(" | ")]);
            with_env(&mut command);
            command.env(native::ENV, &native_host_module);
            cmd::run(command.env("ENTRAGATE_FILTER_HOST", "native"))
        });
        // nextest does not run doctests. After nextest, so that they link against the libraries it just
        // built: first, they paid for compiling the whole workspace (258 s on a fresh clone, for 3 doctests).
        step(&mut steps, "doctests", || {
            let mut command = cmd::cargo();
            command.args(["test", "--workspace", "--doc"]);
            with_env(&mut command);
            cmd::run(&mut command)
        });
    } else {
        step(&mut steps, "test", || {
            let mut command = cmd::cargo();
            command.args(["test", "--workspace", "--no-fail-fast"]);
            with_env(&mut command);
            cmd::run(&mut command)
        });
    }

    // The README's first command, non-interactive: the FinTech story must
    // behave (the demo exits non-zero if any step does not).
    step(&mut steps, "demo", || crate::demo::run(&[]));

    // 20 s of mixed valid/invalid traffic across a key rotation (the
    // `cargo xtask soak` criteria, shortened): no wrong decision, no 5xx.
    step(&mut steps, "soak (smoke)", || {
        let mut command = crate::soak::command(&wasm_path, &setup.envoy)?;
        command.arg("--smoke");
        with_env(&mut command);
        cmd::run(&mut command)
    });

    // Bounded fuzzing of every target (`fuzz::SMOKE_SECONDS` each, or
    // ENTRAGATE_FUZZ_SECONDS): a crash fails the step with its reproducer.
    step(&mut steps, "fuzz (smoke)", || {
        fuzz::run(&["--smoke".to_string()])
    });

    println!();
    println!("== summary");
    for s in &steps {
        let verdict = if s.ok { "ok    " } else { "FAILED" };
        println!("{verdict} {:<32} {:>7.1}s", s.name, s.seconds);
    }
    println!("total {:.1}s", started.elapsed().as_secs_f64());
    let failed: Vec<&str> = steps.iter().filter(|s| !s.ok).map(|s| s.name).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed steps: {}", failed.join(", ")))
    }
}

fn step(steps: &mut Vec<Step>, name: &'static str, body: impl FnOnce() -> Result<(), String>) {
    println!();
    println!("== {name}");
    let started = Instant::now();
    let result = body();
    if let Err(message) = &result {
        eprintln!("xtask: {name}: {message}");
    }
    steps.push(Step {
        name,
        ok: result.is_ok(),
        seconds: started.elapsed().as_secs_f64(),
    });
}

fn nextest_available() -> bool {
    cmd::cargo()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
