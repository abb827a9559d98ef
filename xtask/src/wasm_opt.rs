//! Shrinking the built filter with binaryen (Debian package `binaryen`,
//! installed on first use): `wasm-opt -Oz` removes about a fifth of the module
//! (docs/performance.md, "Size"); a smaller module compiles faster in each
//! worker's V8 and uses less memory per VM. Then `wasm-metadce` drops the
//! proxy-wasm callbacks the filter does not implement (see [`KEPT_EXPORTS`]).

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

/// The exports Envoy needs from this filter. The proxy-wasm Rust SDK exports
/// every callback of the ABI, and Envoy calls each exported one on every
/// stream (response headers, body, trailers, log...), a V8 entry and a context
/// lookup each time for nothing: the filter only acts on request headers.
/// Envoy treats a missing callback as "continue", so removing the unused ones
/// is safe; the integration tests run the pruned module. A new callback the
/// filter starts to implement must be added here.
const KEPT_EXPORTS: [&str; 12] = [
    "memory",
    "_initialize",
    "proxy_abi_version_0_2_1",
    "proxy_on_memory_allocate",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_tick",
    "proxy_on_context_create",
    "proxy_on_request_headers",
    "proxy_on_http_call_response",
    "proxy_on_done",
    "proxy_on_delete",
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
    prune_exports(&optimized)?;
    std::fs::rename(&optimized, wasm).map_err(|e| format!("replacing {}: {e}", wasm.display()))?;
    if let Some(stamp) = stamp(wasm) {
        let _ = std::fs::write(&marker, stamp);
    }
    Ok(())
}

/// Removes every export not in [`KEPT_EXPORTS`] (and the code only they
/// reached) with `wasm-metadce`, whose graph lists what stays reachable.
fn prune_exports(wasm: &Path) -> Result<(), String> {
    // Written by hand: the export names are plain identifiers (no JSON escaping needed), and a JSON
    // library here would be compiled a second time in CI with xtask's own features.
    let names: Vec<String> = KEPT_EXPORTS
        .iter()
        .map(|e| format!("\"export:{e}\""))
        .collect();
    let mut graph = vec![format!(
        r#"{{"name":"envoy","root":true,"reaches":[{}]}}"#,
        names.join(",")
    )];
    for (export, name) in KEPT_EXPORTS.iter().zip(&names) {
        graph.push(format!(r#"{{"name":{name},"export":"{export}"}}"#));
    }
    let graph_path = wasm.with_extension("metadce.json");
    std::fs::write(&graph_path, format!("[{}]", graph.join(",")))
        .map_err(|e| format!("writing {}: {e}", graph_path.display()))?;
    let pruned = wasm.with_extension("pruned.wasm");
    // metadce prints the removed items on stdout; only failures matter.
    let output = Command::new("wasm-metadce")
        .args(FEATURES)
        .arg("-f")
        .arg(&graph_path)
        .arg(wasm)
        .arg("-o")
        .arg(&pruned)
        .output()
        .map_err(|e| format!("running wasm-metadce: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "wasm-metadce failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::rename(&pruned, wasm).map_err(|e| format!("replacing {}: {e}", wasm.display()))
}

fn available() -> bool {
    Command::new("wasm-opt")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
