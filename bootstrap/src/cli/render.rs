//! `bootstrap render`: one service's sidecar configuration from the mesh policy.

use super::check::PolicyArgs;
use crate::agent::key;
use crate::exit::Failure;
use crate::{info, warn};
use clap::{Args, ValueEnum};
use entragate_mesh::render::ecs::{self, EcsOptions};
use entragate_mesh::render::envoy::{self, EnvoyOptions, FilterModule};
use entragate_mesh::render::envoy_gateway::{self, GatewayFilter, GatewayOptions, NativeProxy};
use entragate_mesh::render::istio::{self, KubeOptions};
use entragate_mesh::render::kubernetes::{self, KubernetesOptions};
use entragate_mesh::render::wasm::{self, WasmModule};
use entragate_mesh::render::workload::{self, WorkloadOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A complete Envoy bootstrap for the service's sidecar.
    Envoy,
    /// Istio WasmPlugin, ServiceEntry and DestinationRule.
    Istio,
    /// Envoy Gateway EnvoyExtensionPolicy, EnvoyPatchPolicy and (unless plaintext) ClientTrafficPolicy.
    EnvoyGateway,
    /// An Amazon ECS task definition (Fargate): render step, agent, Envoy and the app.
    Ecs,
    /// Kubernetes objects (EKS): ServiceAccount, Deployment with native sidecars, Service.
    Kubernetes,
}

/// Which build of the filter the sidecar loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Filter {
    /// The proxy-wasm module (entragate_filter.wasm): every format, both roles.
    Wasm,
    /// The Envoy dynamic module (libentragate_native.so, Envoy 1.40/1.41): --format envoy (both roles) and
    /// envoy-gateway (docs/native.md).
    Native,
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
    /// The filter build: wasm (portable, the default) or native (an Envoy dynamic module; see docs/native.md).
    #[arg(long, value_enum, default_value = "wasm")]
    pub filter: Filter,
    /// Write files into this directory (NAME.envoy.yaml and, for a caller, NAME.bootstrap.toml;
    /// NAME.istio.yaml; NAME.envoy-gateway.yaml; NAME.ecs.json; NAME.kubernetes.yaml) instead of
    /// printing to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The filter module, hashed for the configuration's sha256 (and Envoy's local filename unless
    /// --wasm-url). After `cargo xtask build-wasm`: <target>/wasm32-wasip1/release/entragate_filter.wasm.
    #[arg(long, env = "ENTRAGATE_WASM", value_name = "PATH")]
    pub wasm: Option<PathBuf>,
    /// Where the module is loaded from: a file name for envoy; file://, oci:// or https:// for istio;
    /// https:// or oci:// for envoy-gateway [default: the --wasm path]. An oci:// url needs the image
    /// digest: --wasm-digest, or the url pinned as oci://registry/repo@sha256:<hex>.
    #[arg(long, value_name = "URL")]
    pub wasm_url: Option<String>,
    /// The OCI image's manifest digest (sha256:<hex>) of an oci:// --wasm-url: what Istio and Envoy
    /// Gateway verify (not the .wasm file's hash).
    #[arg(long, value_name = "DIGEST", requires = "wasm_url")]
    pub wasm_digest: Option<String>,
    /// envoy: copy the module into --out and reference it there (for an Envoy whose image does not hold
    /// the module, e.g. the render step of an ECS task or a pod).
    #[arg(long, requires = "out", conflicts_with = "wasm_url")]
    pub copy_wasm: bool,
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
    /// Kubernetes namespace of the rendered resources (istio, envoy-gateway: the HTTPRoute's, kubernetes).
    #[arg(long, default_value = "default", value_name = "NS")]
    pub namespace: String,
    /// The Gateway the EnvoyPatchPolicy and ClientTrafficPolicy target (envoy-gateway).
    #[arg(long, default_value = "eg", value_name = "NAME")]
    pub gateway: String,
    /// The Gateway's namespace, where the EnvoyPatchPolicy and ClientTrafficPolicy must live (their
    /// target references are local: Envoy Gateway ignores them in any other namespace) [default: --namespace].
    #[arg(long, value_name = "NS")]
    pub gateway_namespace: Option<String>,
    /// envoy-gateway --filter native: an OCI image holding libentragate_native.so at its root, mounted into
    /// the Gateway's Envoy as an image volume (Kubernetes >= 1.35). Without it the Envoy image (--envoy-image)
    /// must hold the module at /etc/envoy/modules/libentragate_native.so.
    #[arg(long, value_name = "IMAGE")]
    pub native_image: Option<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

/// The task or pod around the sidecars (ecs, kubernetes).
#[derive(Clone, Debug, Args)]
pub struct WorkloadArgs {
    /// The service's own image (ecs, kubernetes).
    #[arg(long, value_name = "IMAGE")]
    pub app_image: Option<String>,
    /// The entragate-bootstrap image (deploy/docker/bootstrap.Dockerfile; for ecs one built from it with
    /// the policy at /etc/entragate/mesh.yaml) (ecs, kubernetes).
    #[arg(long, value_name = "IMAGE")]
    pub bootstrap_image: Option<String>,
    /// The Envoy image (ecs, kubernetes; envoy-gateway --filter native: the EnvoyProxy's, Envoy 1.40/1.41).
    #[arg(long, value_name = "IMAGE", default_value = workload::DEFAULT_ENVOY_IMAGE)]
    pub envoy_image: String,
    /// ecs: the role ECS pulls images and writes logs with.
    #[arg(long, value_name = "ARN")]
    pub execution_role_arn: Option<String>,
    /// ecs: the task's role (a caller's agent reads its secret with it).
    #[arg(long, value_name = "ARN")]
    pub task_role_arn: Option<String>,
    /// kubernetes: IRSA role for the service account (leave out with EKS Pod Identity).
    #[arg(long, value_name = "ARN")]
    pub aws_role_arn: Option<String>,
}

impl WorkloadArgs {
    fn options(&self, policy: &PolicyArgs) -> Result<WorkloadOptions, Failure> {
        let required = |value: &Option<String>, flag: &str| {
            value
                .clone()
                .ok_or_else(|| Failure::Usage(format!("--format ecs and kubernetes need {flag}")))
        };
        Ok(WorkloadOptions {
            app_image: required(&self.app_image, "--app-image")?,
            bootstrap_image: required(&self.bootstrap_image, "--bootstrap-image")?,
            envoy_image: self.envoy_image.clone(),
            overrides: policy
                .overrides
                .iter()
                .map(|o| format!("{}={}", o.path.join("."), o.value))
                .collect(),
        })
    }
}

fn module(args: &RenderArgs) -> Result<WasmModule, Failure> {
    let url = args.wasm_url.as_deref();
    if let Some(url) = url.filter(|u| wasm::is_oci(u)) {
        if args.wasm_sha256.is_some() {
            return Err(Failure::Usage(
                "--wasm-sha256 is the module's hash; an oci:// --wasm-url is verified against the image digest: pass --wasm-digest".into(),
            ));
        }
        // The local file (if given) is not hashed: its hash is not what the platform checks.
        return WasmModule::oci(url, args.wasm_digest.as_deref()).map_err(Failure::Usage);
    }
    if args.wasm_digest.is_some() {
        return Err(Failure::Usage(format!(
            "--wasm-digest is the digest of an OCI image: --wasm-url must be oci://..., not `{}`",
            url.unwrap_or_default()
        )));
    }
    match (&args.wasm, &args.wasm_sha256) {
        (_, Some(hex)) => {
            let Some(url) = url else {
                return Err(Failure::Usage("--wasm-sha256 needs --wasm-url".into()));
            };
            Ok(WasmModule {
                reference: url.to_string(),
                sha256: wasm::digest_hex(hex, "--wasm-sha256").map_err(Failure::Usage)?,
            })
        }
        (Some(path), None) => WasmModule::from_file(path, url).map_err(Failure::Usage),
        (None, None) => Err(Failure::Usage(
            "pass --wasm PATH (or --wasm-url with --wasm-sha256, or an oci:// --wasm-url with --wasm-digest)"
                .into(),
        )),
    }
}

/// `--copy-wasm`: the module copied into `--out` under its usual name, referenced there.
fn copy_module(args: &RenderArgs) -> Result<WasmModule, Failure> {
    let (Some(source), Some(dir)) = (&args.wasm, &args.out) else {
        return Err(Failure::Usage(
            "--copy-wasm needs --wasm PATH and --out DIR".into(),
        ));
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let target = dir.join("entragate_filter.wasm");
    let module = WasmModule::from_file(source, Some(&target.display().to_string()))
        .map_err(Failure::Usage)?;
    std::fs::copy(source, &target).map_err(|e| {
        Failure::Usage(format!(
            "cannot copy {} to {}: {e}",
            source.display(),
            target.display()
        ))
    })?;
    Ok(module)
}

pub fn run(args: RenderArgs) -> Result<(), Failure> {
    if args.filter == Filter::Native && !matches!(args.format, Format::Envoy | Format::EnvoyGateway)
    {
        // Istio (>= 1.31) has no API for dynamic modules yet (EnvoyFilter, docs/deploy.md); the others
        // embed an Envoy bootstrap rendered with --format envoy.
        return Err(Failure::Usage(
            "--filter native renders --format envoy and envoy-gateway only (Istio: docs/deploy.md, \"The native module\")".into(),
        ));
    }
    if args.native_image.is_some()
        && (args.filter != Filter::Native || args.format != Format::EnvoyGateway)
    {
        return Err(Failure::Usage(
            "--native-image is for --format envoy-gateway --filter native".into(),
        ));
    }
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
            let filter = match args.filter {
                // The module is found by name through Envoy's search path: nothing to hash or copy.
                Filter::Native => FilterModule::Native,
                Filter::Wasm if args.copy_wasm => FilterModule::Wasm(copy_module(&args)?),
                Filter::Wasm => FilterModule::Wasm(module(&args)?),
            };
            let options = EnvoyOptions { filter, agent_key };
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
            let kube = KubeOptions {
                namespace: args.namespace.clone(),
                wasm: module(&args)?,
            };
            let text = istio::render(&policy, service, &kube).map_err(Failure::Usage)?;
            files.push((format!("{}.istio.yaml", service.name), text, false));
        }
        Format::EnvoyGateway => {
            let filter = match args.filter {
                // The module is loaded from the proxy's file system: nothing to hash or fetch.
                Filter::Native => GatewayFilter::Native(NativeProxy {
                    envoy_image: args.workload.envoy_image.clone(),
                    module_image: args.native_image.clone(),
                }),
                Filter::Wasm => GatewayFilter::Wasm(module(&args)?),
            };
            let options = GatewayOptions {
                namespace: args.namespace.clone(),
                filter,
                gateway_namespace: args
                    .gateway_namespace
                    .clone()
                    .unwrap_or_else(|| args.namespace.clone()),
                gateway: args.gateway.clone(),
            };
            let text = envoy_gateway::render(&policy, service, &options).map_err(Failure::Usage)?;
            files.push((format!("{}.envoy-gateway.yaml", service.name), text, false));
        }
        Format::Ecs => {
            let w = &args.workload;
            let options = EcsOptions {
                workload: w.options(&args.policy)?,
                execution_role_arn: w.execution_role_arn.clone().ok_or_else(|| {
                    Failure::Usage(
                        "--format ecs needs --execution-role-arn (ECS pulls private images with it)"
                            .into(),
                    )
                })?,
                task_role_arn: w.task_role_arn.clone(),
            };
            let text = ecs::render(service, &options).map_err(Failure::Usage)?;
            files.push((format!("{}.ecs.json", service.name), text, false));
        }
        Format::Kubernetes => {
            let options = KubernetesOptions {
                workload: args.workload.options(&args.policy)?,
                namespace: args.namespace.clone(),
                aws_role_arn: args.workload.aws_role_arn.clone(),
            };
            let text = kubernetes::render(service, &options).map_err(Failure::Usage)?;
            files.push((format!("{}.kubernetes.yaml", service.name), text, false));
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
