//! The filter module a rendered configuration points at: where it is and its SHA-256.

use sha2::{Digest, Sha256};
use std::path::Path;

/// A `.wasm` as referenced by a rendered configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmModule {
    /// The local file name Envoy loads (`--format envoy`), or a `file://`, `oci://` or `https://` URL
    /// (`istio`, `envoy-gateway`).
    pub reference: String,
    /// Lower-case hex SHA-256 of the module.
    pub sha256: String,
}

impl WasmModule {
    /// Hashes the module at `path`; `reference` defaults to the path itself.
    pub fn from_file(path: &Path, reference: Option<&str>) -> Result<WasmModule, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the filter module {}: {e}", path.display()))?;
        if !bytes.starts_with(b"\0asm") {
            return Err(format!("{} is not a WebAssembly module", path.display()));
        }
        Ok(WasmModule {
            reference: reference.map_or_else(|| path.display().to_string(), str::to_string),
            sha256: sha256_hex(&bytes),
        })
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
