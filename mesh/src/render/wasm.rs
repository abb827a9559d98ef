//! The filter module a rendered configuration points at: where it is and the SHA-256 the platform checks.
//!
//! What that SHA-256 is depends on where the module comes from:
//! - a local file or an `https://` URL: the hash of the module's bytes (Envoy's `remote.sha256`, Istio's
//!   `pkg/wasm/httpfetcher.go`, Envoy Gateway's `code.http.sha256`);
//! - an `oci://` image: the **image manifest digest**, never the module's hash. Istio's
//!   `pkg/wasm/imagefetcher.go` compares `sha256` with `img.Digest()` and Envoy Gateway's `code.image.sha256`
//!   "must match the digest of the OCI image"; with the file's hash both refuse the module (and, failing
//!   closed, every request). So for OCI the digest is an input: `--wasm-digest` or a url pinned `@sha256:`.

use sha2::{Digest, Sha256};
use std::path::Path;

/// A `.wasm` as referenced by a rendered configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmModule {
    /// The local file name Envoy loads (`--format envoy`), or a `file://`, `oci://` or `https://` URL
    /// (`istio`, `envoy-gateway`).
    pub reference: String,
    /// Lower-case hex SHA-256 the platform verifies: the module's for files and HTTP(S), the image
    /// manifest digest for `oci://`.
    pub sha256: String,
}

impl WasmModule {
    /// Hashes the module at `path`; `reference` defaults to the path itself. Not for `oci://` references
    /// (see [`WasmModule::oci`]).
    pub fn from_file(path: &Path, reference: Option<&str>) -> Result<WasmModule, String> {
        if reference.is_some_and(is_oci) {
            return Err(
                "an oci:// module is verified against its image digest, not the file's hash: use WasmModule::oci"
                    .into(),
            );
        }
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

    /// An `oci://` image whose manifest digest is `digest` (`sha256:<hex>` or `<hex>`, from `--wasm-digest`)
    /// or pinned in the url (`oci://registry/repo@sha256:<hex>`). Both given: they must agree.
    pub fn oci(url: &str, digest: Option<&str>) -> Result<WasmModule, String> {
        if !is_oci(url) {
            return Err(format!(
                "--wasm-digest is the digest of an OCI image: --wasm-url must be oci://..., not `{url}`"
            ));
        }
        let pinned = match url.rsplit_once("@sha256:") {
            Some((_, hex)) => Some(digest_hex(hex, "the @sha256: of --wasm-url")?),
            None => None,
        };
        let given = digest.map(|d| digest_hex(d, "--wasm-digest")).transpose()?;
        let sha256 = match (pinned, given) {
            (Some(p), Some(g)) if p != g => {
                return Err(format!(
                    "--wasm-digest sha256:{g} differs from the digest pinned in --wasm-url (sha256:{p})"
                ))
            }
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => {
                return Err(format!(
                    "`{url}`: Istio and Envoy Gateway verify an OCI module against the image's manifest digest, \
                     not the .wasm file's hash: pass --wasm-digest sha256:<hex> (printed by `skopeo inspect` or \
                     `crane digest`) or pin the url as oci://registry/repo@sha256:<hex>"
                ))
            }
        };
        Ok(WasmModule {
            reference: url.to_string(),
            sha256,
        })
    }
}

pub fn is_oci(reference: &str) -> bool {
    reference.starts_with("oci://")
}

/// `sha256:<64 hex>` or `<64 hex>` to lower-case hex; `what` names the input in the error.
pub fn digest_hex(text: &str, what: &str) -> Result<String, String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} {text:?} is not a SHA-256 digest (sha256: and 64 hex digits)"
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
