//! Installing a pinned PyPI tool into its own venv under `.cache/`, idempotently.
//!
//! A marker file in the venv records the requirements it was installed with, so the usual call (everything
//! present) starts no process, and a changed pin reinstalls. Without the marker (a venv made by an older
//! checkout, or by hand) the installed distributions' versions are checked before anything is downloaded.
//! A lock file serialises installers: test binaries run in parallel and may all find the venv missing.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PyPI tool pinned to exact versions, in `.cache/<venv>`.
pub struct PipTool {
    pub venv: &'static str,
    /// `name==version` (extras allowed: `moto[server]==5.2.5`); every one pinned exactly.
    pub requirements: &'static [&'static str],
}

/// In the venv: the requirements it was installed with, one a line.
const MARKER: &str = ".entragate-installed";

/// Exits 0 when every `name==version` argument is installed at that version.
const CHECK_VERSIONS: &str = "\
import importlib.metadata as m, sys
for req in sys.argv[1:]:
    name, _, version = req.partition('==')
    if m.version(name.split('[')[0]) != version:
        sys.exit(1)
";

impl PipTool {
    /// `.cache/<venv>`.
    pub fn venv_dir(&self) -> PathBuf {
        crate::cache_dir().join(self.venv)
    }

    /// `<venv>/bin/<name>`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.venv_dir().join("bin").join(name)
    }

    fn is_marked(&self, venv: &Path) -> bool {
        fs::read_to_string(venv.join(MARKER))
            .is_ok_and(|text| text.lines().eq(self.requirements.iter().copied()))
    }

    fn versions_match(&self, python: &Path) -> bool {
        python.is_file()
            && Command::new(python)
                .args(["-c", CHECK_VERSIONS])
                .args(self.requirements)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
    }
}

/// Installs `tool` unless its venv already holds the pinned versions; returns the venv. Prints what it does
/// (`setup: …`), as `cargo xtask setup` shows it; a test shows it when it fails.
pub fn ensure(tool: &PipTool) -> io::Result<PathBuf> {
    let venv = tool.venv_dir();
    let wanted = tool.requirements.join(" ");
    if tool.is_marked(&venv) {
        println!("setup: {wanted} already in {}", venv.display());
        return Ok(venv);
    }
    let cache = crate::cache_dir();
    fs::create_dir_all(&cache)?;
    let lock = File::create(cache.join(format!("{}.lock", tool.venv)))?;
    lock_exclusive(&lock)?;
    // Another process may have installed it while this one waited for the lock.
    if !tool.is_marked(&venv) {
        let python = venv.join("bin").join("python");
        if !tool.versions_match(&python) {
            if !python.is_file() {
                println!("setup: creating python venv {}", venv.display());
                let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
                run(Command::new(python3).args(["-m", "venv"]).arg(&venv))?;
            }
            println!("setup: installing {wanted} from PyPI");
            run(Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(tool.requirements))?;
            if !tool.versions_match(&python) {
                return Err(io::Error::other(format!(
                    "{wanted} installed in {}, but the installed versions differ",
                    venv.display()
                )));
            }
        }
        fs::write(venv.join(MARKER), tool.requirements.join("\n"))?;
    }
    println!("setup: {wanted} in {}", venv.display());
    drop(lock); // closing the file releases the lock
    Ok(venv)
}

/// `flock(LOCK_EX)`, released when `file` closes.
fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock(2) on a file descriptor `file` owns for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn run(command: &mut Command) -> io::Result<()> {
    let status = command.status().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start {:?}: {e}", command.get_program()),
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{command:?} failed: {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_must_list_exactly_the_pinned_requirements() {
        const TOOL: PipTool = PipTool {
            venv: "unused",
            requirements: &["a[x]==1.0", "b==2"],
        };
        let venv =
            std::env::temp_dir().join(format!("entragate-tools-marker-{}", std::process::id()));
        fs::create_dir_all(&venv).unwrap();
        assert!(!TOOL.is_marked(&venv), "no marker yet");
        for (content, marked) in [
            ("a[x]==1.0\nb==2", true),
            ("a[x]==1.0", false),
            ("a[x]==0.9\nb==2", false),
            ("a[x]==1.0\nb==2\nc==3", false),
        ] {
            fs::write(venv.join(MARKER), content).unwrap();
            assert_eq!(TOOL.is_marked(&venv), marked, "{content:?}");
        }
        fs::remove_dir_all(&venv).unwrap();
    }
}
