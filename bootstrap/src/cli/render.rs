//! `bootstrap render`: one service's sidecar configuration from the mesh policy.

use super::check::PolicyArgs;
use crate::agent::key;
use crate::exit::Failure;
use crate::mesh::render::envoy::{self, EnvoyOptions};
use crate::mesh::render::envoy_gateway::{self, GatewayOptions};
use crate::mesh::render::istio::{self, KubeOptions};
use crate::mesh::render::wasm::WasmModule;
use crate::{info, warn};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A complete Envoy bootstrap for the service's sidecar.
    Envoy,
    /// Istio WasmPlugin, ServiceEntry and DestinationRule.
    Istio,
    /// Envoy Gateway EnvoyExtensionPolicy and EnvoyPatchPolicy.
    EnvoyGateway,
}

#[derive(Clone, Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The service whose sidecar to render.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    #[arg(long, value_enum, default_value = "envoy")]
    pub format: Format,
    /// Write files into this directory (NAME.envoy.yaml and, for a caller, NAME.bootstrap.toml;
    /// NAME.istio.yaml; NAME.envoy-gateway.yaml) instead of printing to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The filter module, hashed for the configuration's sha256 (and Envoy's local filename unless
    /// --wasm-url). After `cargo xtask build-wasm`: <target>/wasm32-wasip1/release/entragate_filter.wasm.
    #[arg(
        long,
        env = "ENTRAGATE_WASM",
        value_name = "PATH",
        required_unless_present = "wasm_sha256"
    )]
    pub wasm: Option<PathBuf>,
    /// Where the module is loaded from: a file name for envoy; file://, oci:// or https:// for istio;
    /// https:// or oci:// for envoy-gateway [default: the --wasm path].
    #[arg(long, value_name = "URL")]
    pub wasm_url: Option<String>,
    /// The module's SHA-256 (hex) when the file is not at hand; needs --wasm-url.
    #[arg(
        long,
        value_name = "HEX",
        requires = "wasm_url",
        conflicts_with = "wasm"
    )]
    pub wasm_sha256: Option<String>,
    /// Agent key file of a calling service (created, mode 0600, if absent; `bootstrap agent` reuses it)
    /// [default: the policy's sidecar.agent_key_file].
    #[arg(long, value_name = "PATH")]
    pub agent_key_file: Option<PathBuf>,
    /// Kubernetes namespace of the rendered resources (istio, envoy-gateway).
    #[arg(long, default_value = "default", value_name = "NS")]
    pub namespace: String,
    /// The Gateway the EnvoyPatchPolicy targets (envoy-gateway).
    #[arg(long, default_value = "eg", value_name = "NAME")]
    pub gateway: String,
}

fn module(args: &RenderArgs) -> Result<WasmModule, Failure> {
    match (&args.wasm, &args.wasm_sha256) {
        (Some(path), _) => {
            WasmModule::from_file(path, args.wasm_url.as_deref()).map_err(Failure::Usage)
        }
        (None, Some(hex)) => {
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Failure::Usage(format!(
                    "--wasm-sha256 {hex:?} is not 64 hex digits"
                )));
            }
            Ok(WasmModule {
                reference: args.wasm_url.clone().unwrap_or_default(),
                sha256: hex.to_ascii_lowercase(),
            })
        }
        (None, None) => Err(Failure::Usage(
            "pass --wasm PATH (or --wasm-url with --wasm-sha256)".into(),
        )),
    }
}

pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let policy = args.policy.load()?;
    for w in policy.warnings() {
        warn!("{}: {}", w.path, w.message);
    }
    let service = policy.service(&args.service).ok_or_else(|| {
        let names: Vec<&str> = policy.services().iter().map(|s| s.name.as_str()).collect();
        Failure::Usage(format!(
            "no service `{}` in the policy (services: {})",
            args.service,
            names.join(", ")
        ))
    })?;
    let wasm = module(&args)?;
    let kube = KubeOptions {
        namespace: args.namespace.clone(),
        wasm: wasm.clone(),
    };
    let mut files: Vec<(String, String, bool)> = Vec::new(); // (file name, contents, private)
    match args.format {
        Format::Envoy => {
            let key_path = args
                .agent_key_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(&service.sidecar.agent_key_file));
            let agent_key = if service.is_caller() {
                let path = key_path.clone();
                let (k, origin) = key::load_or_create(&path, false).map_err(Failure::Usage)?;
                if origin == key::KeyOrigin::Generated {
                    info!("agent key written to {} (mode 0600); start the agent with --agent-key-file {0}", path.display());
                }
                Some(k.as_str().to_string())
            } else {
                None
            };
            let options = EnvoyOptions { wasm, agent_key };
            let text = envoy::render(&policy, service, &options).map_err(Failure::Usage)?;
            files.push((
                format!("{}.envoy.yaml", service.name),
                text,
                service.is_caller(),
            ));
            if let Some(toml) =
                envoy::agent_config(&policy, service, &key_path.display().to_string())
            {
                files.push((format!("{}.bootstrap.toml", service.name), toml, false));
            }
        }
        Format::Istio => {
            let text = istio::render(&policy, service, &kube).map_err(Failure::Usage)?;
            files.push((format!("{}.istio.yaml", service.name), text, false));
        }
        Format::EnvoyGateway => {
            let options = GatewayOptions {
                kube,
                gateway: args.gateway.clone(),
            };
            let text = envoy_gateway::render(&policy, service, &options).map_err(Failure::Usage)?;
            files.push((format!("{}.envoy-gateway.yaml", service.name), text, false));
        }
    }
    match &args.out {
        Some(dir) => write_files(dir, &files),
        None => {
            let mut out = std::io::stdout().lock();
            // Only the sidecar configuration goes to stdout; the agent file needs --out.
            if let Some((_, text, _)) = files.first() {
                out.write_all(text.as_bytes())
                    .map_err(|e| Failure::Internal(format!("cannot write output: {e}")))?;
            }
            Ok(())
        }
    }
}

fn write_files(dir: &Path, files: &[(String, String, bool)]) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", dir.display())))?;
    for (name, text, private) in files {
        let path = dir.join(name);
        if *private {
            key::write_private(&path, text.as_bytes()).map_err(Failure::Usage)?;
        } else {
            std::fs::write(&path, text)
                .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
        }
        info!("wrote {}", path.display());
    }
    Ok(())
}
