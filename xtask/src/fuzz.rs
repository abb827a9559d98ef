//! `cargo xtask fuzz [--smoke] [--seconds N] [--target NAME]...`: the libFuzzer
//! targets of `fuzz/` (docs/security.md, "Fuzzing").
//!
//! The fuzz crate is built directly with the nightly toolchain and the
//! sanitizer-coverage flags `libfuzzer-sys` needs, rather than through
//! cargo-fuzz: that is one `cargo build` with known flags instead of a
//! separate tool to install and keep compatible, and it lets this task read
//! libFuzzer's final statistics. Each target then runs for a bounded time
//! over its committed seeds (`fuzz/corpus/<target>/`, read-only) and a
//! working corpus that grows across runs (`.cache/fuzz/corpus/<target>/`).
//! Crashing inputs land in `.cache/fuzz/artifacts/<target>/`; a crash fails
//! the task and is reproduced with `<binary> <artifact>`.
//!
//! `--smoke` (CI, and a step of `cargo xtask test`) fuzzes each target for
//! [`SMOKE_SECONDS`] (or `ENTRAGATE_FUZZ_SECONDS`); without it each target
//! gets [`LONG_SECONDS`]. `--seconds N` sets the per-target time either way
//! (`0`: until stopped or a crash).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cmd;

/// Per-target time of `--smoke`: seven targets stay under six minutes with the build.
pub const SMOKE_SECONDS: u64 = 40;
/// Per-target time of a plain `cargo xtask fuzz`.
pub const LONG_SECONDS: u64 = 600;
/// Overrides [`SMOKE_SECONDS`] (e.g. a shorter CI budget).
pub const SECONDS_ENV: &str = "ENTRAGATE_FUZZ_SECONDS";

/// A fuzz target: binary name, dictionary, longest input libFuzzer may make.
struct Target {
    name: &'static str,
    dict: &'static str,
    max_len: u32,
}

const TARGETS: [Target; 7] = [
    Target {
        name: "token_verify",
        dict: "token.dict",
        max_len: 20_000,
    },
    Target {
        name: "token_structured",
        dict: "token.dict",
        max_len: 8_192,
    },
    Target {
        name: "jwks",
        dict: "json.dict",
        max_len: 16_384,
    },
    Target {
        name: "plugin_config",
        dict: "json.dict",
        max_len: 8_192,
    },
    Target {
        name: "token_response",
        dict: "json.dict",
        max_len: 8_192,
    },
    Target {
        name: "agent_response",
        dict: "json.dict",
        max_len: 8_192,
    },
    Target {
        name: "mesh_policy",
        dict: "mesh.dict",
        max_len: 16_384,
    },
];

/// What `libfuzzer-sys` expects the code under test to be compiled with
/// (the flags cargo-fuzz passes, without AddressSanitizer: the targets are
/// safe Rust, and ASan would halve the executions per second).
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

struct Options {
    seconds: u64,
    only: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut smoke = false;
    let mut seconds = None;
    let mut only = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--seconds" => {
                let value = args.next().and_then(|v| v.parse::<u64>().ok());
                seconds = Some(value.ok_or("--seconds needs a number of seconds")?);
            }
            "--target" => {
                let name = args.next().ok_or("--target needs a target name")?;
                if !TARGETS.iter().any(|t| t.name == name) {
                    return Err(format!("unknown fuzz target `{name}` ({})", names()));
                }
                only.push(name.clone());
            }
            other => return Err(format!("fuzz: unknown argument `{other}`")),
        }
    }
    let seconds = match seconds {
        Some(seconds) => seconds,
        None if smoke => std::env::var(SECONDS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SMOKE_SECONDS),
        None => LONG_SECONDS,
    };
    Ok(Options { seconds, only })
}

fn names() -> String {
    TARGETS
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One target's outcome, from libFuzzer's final statistics.
struct Report {
    name: &'static str,
    executions: u64,
    per_second: u64,
    new_units: u64,
    corpus: usize,
    crashes: Vec<String>,
    seconds: f64,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let root = cmd::repo_root();
    ensure_nightly()?;
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| options.only.is_empty() || options.only.iter().any(|o| o == t.name))
        .collect();
    let bin_dir = build(&root, &targets)?;
    let mut reports = Vec::new();
    for target in targets {
        reports.push(fuzz(&root, &bin_dir, target, options.seconds)?);
    }

    println!();
    println!("== fuzz summary ({} s per target)", options.seconds);
    println!(
        "{:<18} {:>12} {:>9} {:>8} {:>9} {:>8}",
        "target", "executions", "exec/s", "corpus", "new units", "crashes"
    );
    for r in &reports {
        println!(
            "{:<18} {:>12} {:>9} {:>8} {:>9} {:>8}   ({:.0} s)",
            r.name,
            r.executions,
            r.per_second,
            r.corpus,
            r.new_units,
            r.crashes.len(),
            r.seconds
        );
    }
    let crashed: Vec<&Report> = reports.iter().filter(|r| !r.crashes.is_empty()).collect();
    if crashed.is_empty() {
        return Ok(());
    }
    for r in &crashed {
        for artifact in &r.crashes {
            eprintln!(
                "fuzz: {} crashed; reproduce with {} {artifact}",
                r.name,
                bin_dir.join(r.name).display()
            );
        }
    }
    Err(format!(
        "crashes in: {}",
        crashed
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The nightly toolchain, installed once by rustup if missing.
fn ensure_nightly() -> Result<(), String> {
    let list = cmd::output(Command::new("rustup").args(["toolchain", "list"]))?;
    if list.lines().any(|line| line.starts_with("nightly")) {
        println!("fuzz: nightly toolchain present");
        return Ok(());
    }
    println!("fuzz: installing the nightly toolchain (rustup, minimal profile)");
    cmd::run(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
    ]))
}

/// A command on the nightly toolchain, free of what `cargo xtask` (running
/// on stable) put into the environment.
fn nightly(program: &str) -> Command {
    let mut command = Command::new("rustup");
    command.args(["run", "nightly", program]);
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    command
}

/// Builds the targets; returns the directory holding the binaries.
fn build(root: &Path, targets: &[&Target]) -> Result<PathBuf, String> {
    let version = cmd::output(nightly("rustc").arg("-vV"))?;
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .ok_or("`rustc -vV` printed no host triple")?
        .trim()
        .to_string();
    // Under the workspace's target directory (which honours CARGO_TARGET_DIR),
    // apart from the stable builds.
    let target_dir = cmd::target_dir()?.join("fuzz");
    let mut command = nightly("cargo");
    command
        .current_dir(root.join("fuzz"))
        .args(["build", "--release", "--target", &host])
        .arg("--target-dir")
        .arg(&target_dir)
        // `--target` keeps the flags off build scripts and proc macros.
        .env("RUSTFLAGS", RUSTFLAGS.join(" "));
    for target in targets {
        command.args(["--bin", target.name]);
    }
    println!("== fuzz: build ({} targets, nightly)", targets.len());
    cmd::run(&mut command)?;
    Ok(target_dir.join(host).join("release"))
}

fn fuzz(root: &Path, bin_dir: &Path, target: &Target, seconds: u64) -> Result<Report, String> {
    let cache = root.join(".cache").join("fuzz");
    let corpus = cache.join("corpus").join(target.name);
    let artifacts = cache.join("artifacts").join(target.name);
    let logs = cache.join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let seeds = root.join("fuzz").join("corpus").join(target.name);
    let log_path = logs.join(format!("{}.log", target.name));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let binary = bin_dir.join(target.name);
    let mut command = Command::new(&binary);
    command
        .arg(&corpus)
        .arg(&seeds)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={}", target.max_len))
        .arg(format!(
            "-dict={}",
            root.join("fuzz").join("dict").join(target.dict).display()
        ))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    println!(
        "== fuzz: {} for {seconds} s (log {})",
        target.name,
        log_path.display()
    );
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let stat = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let crashes: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_once("Test unit written to "))
        .map(|(_, path)| path.trim().to_string())
        .collect();
    let report = Report {
        name: target.name,
        executions: stat("number_of_executed_units"),
        per_second: stat("average_exec_per_sec"),
        new_units: stat("new_units_added"),
        corpus: std::fs::read_dir(&corpus).map_or(0, |d| d.count()),
        crashes,
        seconds: started.elapsed().as_secs_f64(),
    };
    if !status.success() && report.crashes.is_empty() {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{} failed ({status}) without a crash artifact:\n{}",
            target.name,
            tail.join("\n")
        ));
    }
    if !report.crashes.is_empty() {
        // The crash report: the panic message and where, for the summary.
        for line in text.lines().filter(|l| {
            l.contains("panicked at") || l.contains("ERROR: libFuzzer") || l.starts_with("  ")
        }) {
            eprintln!("  {}: {line}", target.name);
        }
    }
    Ok(report)
}
