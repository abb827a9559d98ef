//! Shrinking the built filter with binaryen's `wasm-opt -Oz` (Debian package
//! `binaryen`, installed on first use). It removes about a fifth of the module
//! (docs/performance.md, "Size"); a smaller module compiles faster in each
//! worker's V8 and uses less memory per VM.

use std::path::Path;
use std::process::Command;

use crate::cmd;

/// Features rustc's wasm32-wasip1 output uses, which wasm-opt must accept.
const FEATURES: [&str; 4] = [
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
];

/// Optimises `wasm` in place, unless it already is (a marker next to it
/// records the size and mtime of the last optimised file, so a no-op cargo
/// build does not re-run wasm-opt). Without wasm-opt the module is left as
/// cargo built it, with a warning: it is only larger, not different.
pub fn optimize(wasm: &Path) -> Result<(), String> {
    let marker = wasm.with_extension("wasm-opt");
    let stamp = |path: &Path| -> Option<String> {
        let meta = std::fs::metadata(path).ok()?;
        Some(format!("{} {:?}", meta.len(), meta.modified().ok()?))
    };
    if stamp(wasm).is_some() && std::fs::read_to_string(&marker).ok() == stamp(wasm) {
        return Ok(());
    }
    if !available() {
        let _ = cmd::run(Command::new("apt-get").args(["install", "-y", "-qq", "binaryen"]));
    }
    if !available() {
        println!("build-wasm: wasm-opt not available; the module is not size-optimised");
        return Ok(());
    }
    let optimized = wasm.with_extension("opt.wasm");
    cmd::run(
        Command::new("wasm-opt")
            .arg("-Oz")
            .args(FEATURES)
            .arg(wasm)
            .arg("-o")
            .arg(&optimized),
    )?;
    std::fs::rename(&optimized, wasm).map_err(|e| format!("replacing {}: {e}", wasm.display()))?;
    if let Some(stamp) = stamp(wasm) {
        let _ = std::fs::write(&marker, stamp);
    }
    Ok(())
}

fn available() -> bool {
    Command::new("wasm-opt")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
