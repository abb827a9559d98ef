//! Where the pinned Envoy lives once [`crate::ENVOY`] is installed.

use std::path::{Path, PathBuf};

/// The venv `cargo xtask setup` installs Envoy into.
pub fn venv_dir() -> PathBuf {
    crate::cache_dir().join(crate::ENVOY.venv)
}

/// `<venv>/lib/python*/site-packages/envoy/_bin/envoy`, whatever the Python version the venv was made with.
pub fn find_binary(venv: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python"))
        .map(|entry| entry.path().join("site-packages/envoy/_bin/envoy"))
        .filter(|path| path.is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}
