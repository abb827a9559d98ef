//! What runs beside a service in one ECS task or Kubernetes pod, independent of the platform's format
//! (`ecs` and `kubernetes` map it to a task definition or a Deployment):
//!
//! 1. `entragate-render`, run to completion first: `bootstrap render --format envoy` from the reviewed policy
//!    into the shared volume [`RUN_DIR`], copying the module there (`--copy-wasm`: the Envoy image does not
//!    hold it) and, for a caller, creating the agent key in the same volume. Rendering in the task/pod means
//!    the sidecar's configuration, the agent's configuration and the agent key are written together, from the
//!    same inputs, so Envoy and the agent always agree on the key, and the key never leaves the task/pod.
//! 2. `entragate-agent` (callers only): `bootstrap agent` with the rendered configuration; healthy once every
//!    scope has a servable token (`GET /healthz` on loopback, probed from inside the container: the agent
//!    listens on loopback only, which a probe from outside the pod/task cannot reach).
//! 3. `envoy`: the rendered bootstrap.
//! 4. `app`: started after the sidecars.
//!
//! Every entragate container runs as [`RUNTIME_UID`], the `bootstrap` image's user, so the files render
//! writes private (0600) are readable by the agent and Envoy and by nothing else.

use crate::policy::Service;

/// The volume the render step writes and the agent and Envoy read.
pub const RUN_DIR: &str = "/run/entragate";
pub const RUN_VOLUME: &str = "entragate-run";
/// The module inside the `bootstrap` image (deploy/docker/bootstrap.Dockerfile).
pub const MODULE_IN_IMAGE: &str = "/usr/share/entragate/entragate_filter.wasm";
/// The `bootstrap` image's user (deploy/docker/bootstrap.Dockerfile `useradd --uid`).
pub const RUNTIME_UID: u32 = 10001;
/// The Envoy the project tests with (`entragate_tools::ENVOY_VERSION`, checked by `tests/tests/compose.rs`).
pub const DEFAULT_ENVOY_IMAGE: &str = "envoyproxy/envoy:v1.40.0";
pub const RENDER_CONTAINER: &str = "entragate-render";
pub const AGENT_CONTAINER: &str = "entragate-agent";
pub const ENVOY_CONTAINER: &str = "envoy";
pub const APP_CONTAINER: &str = "app";

/// Images and the policy's place inside the render container.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    pub app_image: String,
    /// `entragate-bootstrap` (deploy/docker/bootstrap.Dockerfile), or an image built from it.
    pub bootstrap_image: String,
    pub envoy_image: String,
    /// `--set PATH=VALUE` overrides the policy was rendered with, passed on to the render step.
    pub overrides: Vec<String>,
}

/// One service's containers, platform-neutral.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    /// `bootstrap` arguments of the render step.
    pub render_args: Vec<String>,
    /// `bootstrap` arguments of the agent, for a caller.
    pub agent: Option<Agent>,
    /// Arguments after `envoy`.
    pub envoy_args: Vec<String>,
    /// The sidecar's inbound listener (callees): the only port the task/pod exposes.
    pub inbound_port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub args: Vec<String>,
    /// Probed from inside the agent's container (`curl` is in the `bootstrap` image).
    pub health_command: Vec<String>,
}

/// Plans `service`'s containers; `policy_path` is where the render container finds the policy.
pub fn plan(
    service: &Service,
    options: &WorkloadOptions,
    policy_path: &str,
) -> Result<Workload, String> {
    if !service.is_callee() && !service.is_caller() {
        return Err(format!(
            "`{}` has no rules and calls no service: it needs no sidecar",
            service.name
        ));
    }
    for (flag, image) in [
        ("--app-image", &options.app_image),
        ("--bootstrap-image", &options.bootstrap_image),
        ("--envoy-image", &options.envoy_image),
    ] {
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            return Err(format!("{flag} {image:?} is not an image reference"));
        }
    }
    let name = service.name.clone();
    let mut render_args: Vec<String> = [
        "render",
        "--policy",
        policy_path,
        "--service",
        &name,
        "--format",
        "envoy",
        "--wasm",
        MODULE_IN_IMAGE,
        "--copy-wasm",
        "--out",
        RUN_DIR,
    ]
    .map(str::to_string)
    .to_vec();
    let agent = if service.is_caller() {
        if service.identity.is_none() {
            return Err(format!(
                "`{name}` calls other services but has no `identity`: its agent has no secret to read"
            ));
        }
        render_args.extend(["--agent-key-file".into(), format!("{RUN_DIR}/agent-key")]);
        Some(Agent {
            args: vec![
                "agent".into(),
                "--config".into(),
                format!("{RUN_DIR}/{name}.bootstrap.toml"),
            ],
            health_command: vec![
                "curl".into(),
                "-fsS".into(),
                "-o".into(),
                "/dev/null".into(),
                format!("http://{}/healthz", service.sidecar.agent),
            ],
        })
    } else {
        None
    };
    for o in &options.overrides {
        render_args.extend(["--set".into(), o.clone()]);
    }
    Ok(Workload {
        envoy_args: vec![
            "-c".into(),
            format!("{RUN_DIR}/{name}.envoy.yaml"),
            "--concurrency".into(),
            "2".into(),
        ],
        inbound_port: service.is_callee().then_some(service.ports.inbound),
        name,
        render_args,
        agent,
    })
}
