//! Running child commands and locating the workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: xtask lives one level below it.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that invoked us (so rustup toolchain overrides carry through).
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(repo_root());
    command
}

/// Runs a command with inherited stdio, echoing it first, and fails on a
/// non-zero exit.
pub fn run(command: &mut Command) -> Result<(), String> {
    println!("$ {}", describe(command));
    let status = command
        .status()
        .map_err(|e| format!("could not start `{}`: {e}", describe(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(command)))
    }
}

/// Runs a command and returns its stdout (stderr is passed through).
pub fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start `{}`: {e}", describe(command)))?;
    if !out.status.success() {
        return Err(format!("`{}` failed ({})", describe(command), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` and config files, as cargo itself resolved it
/// when it built this program (`cargo xtask` runs `<target>/debug/xtask`). Read from our own path rather
/// than `cargo metadata`, whose JSON would need a JSON library here, compiled a second time in CI with
/// xtask's own features.
pub fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating the xtask binary: {e}"))?;
    // `<target>/debug/xtask`, or `<target>/debug/deps/xtask-<hash>` for xtask's own unit tests.
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.file_name().is_some_and(|name| name != "deps"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in a cargo target folder", exe.display()))
}

/// Builds the workspace binaries `bins` (dev profile) in one cargo invocation and returns the folder they
/// are in (`<target>/debug`).
///
/// `--workspace` makes cargo resolve features for the whole workspace, as the test build
/// (`cargo nextest run --workspace`) does, so after the tests this links at most the binaries themselves.
/// Selecting only the binaries' packages (`-p`, `cargo run -p`) resolved features for those alone
/// (e.g. serde_json without axum's `raw_value`) and recompiled most of the dependency tree, the AWS SDK
/// included, in every CI run. On a fresh clone it still builds only what `bins` need.
pub fn build_bins(bins: &[&str]) -> Result<PathBuf, String> {
    let mut command = cargo();
    command.args(["build", "--quiet", "--workspace"]);
    for bin in bins {
        command.args(["--bin", bin]);
    }
    run(&mut command)?;
    Ok(target_dir()?.join("debug"))
}

/// Prints `<task>: <path> (<bytes> bytes, <KiB> KiB)` for a built artifact.
pub fn report_size(task: &str, path: &Path) -> Result<(), String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("built, but cannot read {}: {e}", path.display()))?
        .len();
    println!(
        "{task}: {} ({} bytes, {:.1} KiB)",
        path.display(),
        size,
        size as f64 / 1024.0
    );
    Ok(())
}
