//! The mesh-wide policy (`mesh.yaml`): one reviewed file says who may call whom, and every sidecar's
//! configuration is rendered from it (`bootstrap render`), with a who-can-call-whom table (`bootstrap check`).
//! The format is documented in `docs/mesh-policy.md`.
//!
//! - [`model`]: the document as written (serde, unknown fields rejected);
//! - [`parse`]: YAML text (and `--set` overrides) to the model, errors with line and column;
//! - [`validate`] and [`rules`]: the model to the immutable [`MeshPolicy`] (`TryFrom`), errors with paths;
//! - [`plugin`]: the filter's plugin configurations, compiled by the filter's own compiler;
//! - [`render`]: Envoy bootstrap, Istio and Envoy Gateway resources;
//! - [`table`]: the who-can-call-whom table.

pub mod credential_kind;
pub mod error;
pub mod model;
pub mod parse;
pub mod plugin;
pub mod policy;
pub mod render;
pub mod rules;
pub mod table;
pub mod validate;

pub use error::{Location, MeshError, MeshErrors, Warning};
pub use parse::Override;
pub use policy::MeshPolicy;

use std::path::Path;

/// Parses and validates policy text; `file` names it in errors.
pub fn from_str(text: &str, file: &str, overrides: &[Override]) -> Result<MeshPolicy, MeshErrors> {
    parse::parse(text, overrides)
        .and_then(MeshPolicy::try_from)
        .map_err(|e| e.in_file(file))
}

/// Reads, parses and validates the policy file.
pub fn load(path: &Path, overrides: &[Override]) -> Result<MeshPolicy, MeshErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        MeshErrors::one(MeshError::new("", format!("cannot read the policy: {e}"))).in_file(&file)
    })?;
    from_str(&text, &file, overrides)
}
