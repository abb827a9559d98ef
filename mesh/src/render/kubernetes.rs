//! `--format kubernetes`: one service with its entragate sidecars as Kubernetes objects (EKS or any
//! cluster, Kubernetes >= 1.29 for native sidecars):
//!
//! The pods render from the reviewed mesh policy in the `ConfigMap` [`POLICY_CONFIG_MAP`] (one per namespace,
//! mesh-wide: `kubectl create configmap entragate-policy --from-file=mesh.yaml`). Rendered:
//!
//! - `ServiceAccount` `NAME`: the pod's AWS identity, by EKS Pod Identity (an association for this service
//!   account) or IRSA (`--aws-role-arn` adds the `eks.amazonaws.com/role-arn` annotation);
//! - `Deployment` `NAME`: [`super::workload`]'s containers. `entragate-render` is a regular init container
//!   (runs to completion first); the agent and Envoy are native sidecars (`initContainers` with
//!   `restartPolicy: Always`: they start, in order, before the app and stop after it). The shared volume
//!   is a memory-backed `emptyDir`, so the agent key exists only in the pod. Probes need no `host:`: the
//!   agent's is an `exec` inside its container (it listens on the pod's loopback, which the kubelet's HTTP
//!   probes, sent to the pod IP, cannot reach; `httpGet.host: 127.0.0.1` would probe the node), and
//!   Envoy's inbound listener is probed on the pod IP by `tcpSocket`;
//! - `Service` `NAME` (callees): targets the sidecar's inbound port, never the app;
//! - unless the transport is plaintext, Envoy mounts its certificate directory (`sidecar.certificates`) from a
//!   projected volume: the Secret [`tls_secret`] (`tls.crt`, `tls.key`, `ca.crt`, e.g. written by a
//!   cert-manager `Certificate` whose SAN is the workload identity) and the rendered `ConfigMap`
//!   `entragate-sds-NAME` with the two file-based SDS resources.

use super::transport::{self, CA_FILE, CERT_FILE, KEY_FILE};
use super::workload::{
    self, Workload, WorkloadOptions, AGENT_CONTAINER, APP_CONTAINER, ENVOY_CONTAINER,
    RENDER_CONTAINER, RUNTIME_UID, RUN_DIR, RUN_VOLUME,
};
use super::yaml::{self, b, list, map, n, s};
use crate::policy::Service;
use serde_yaml_ng::Value;

/// Where the pod mounts the policy ConfigMap, and its name.
pub const POLICY_DIR: &str = "/etc/entragate/policy";
pub const POLICY_CONFIG_MAP: &str = "entragate-policy";
const POLICY_VOLUME: &str = "entragate-policy";
const TLS_VOLUME: &str = "entragate-tls";

#[derive(Clone, Debug)]
pub struct KubernetesOptions {
    pub workload: WorkloadOptions,
    pub namespace: String,
    /// IRSA: the IAM role the service account assumes (leave out for EKS Pod Identity).
    pub aws_role_arn: Option<String>,
}

pub fn render(service: &Service, options: &KubernetesOptions) -> Result<String, String> {
    let policy_path = format!("{POLICY_DIR}/mesh.yaml");
    let plan = workload::plan(service, &options.workload, &policy_path)?;
    let name = service.name.clone();
    let labels = || {
        map([
            ("app", s(name.clone())),
            ("app.kubernetes.io/managed-by", s("entragate-bootstrap")),
        ])
    };
    let metadata = |object: String| {
        map([
            ("name", s(object)),
            ("namespace", s(options.namespace.clone())),
            ("labels", labels()),
        ])
    };
    let mut documents = Vec::new();
    let mut account = metadata(name.clone());
    if let Some(arn) = &options.aws_role_arn {
        yaml::insert(
            &mut account,
            "annotations",
            map([("eks.amazonaws.com/role-arn", s(arn.clone()))]),
        );
    }
    documents.push(map([
        ("apiVersion", s("v1")),
        ("kind", s("ServiceAccount")),
        ("metadata", account),
    ]));
    let mut volumes = vec![
        map([
            ("name", s(RUN_VOLUME)),
            (
                "emptyDir",
                map([("medium", s("Memory")), ("sizeLimit", s("32Mi"))]),
            ),
        ]),
        map([
            ("name", s(POLICY_VOLUME)),
            ("configMap", map([("name", s(POLICY_CONFIG_MAP))])),
        ]),
    ];
    let tls = service
        .sidecar
        .tls
        .then_some(service.sidecar.certificates.as_str());
    if tls.is_some() {
        volumes.push(tls_volume(&name));
        documents.push(map([
            ("apiVersion", s("v1")),
            ("kind", s("ConfigMap")),
            ("metadata", metadata(sds_config_map(&name))),
            ("data", sds_data(&service.sidecar.certificates)?),
        ]));
    }
    let pod = map([
        ("serviceAccountName", s(name.clone())),
        ("volumes", list(volumes)),
        (
            "initContainers",
            list(init_containers(&plan, &options.workload, tls)),
        ),
        (
            "containers",
            list(vec![map([
                ("name", s(APP_CONTAINER)),
                ("image", s(options.workload.app_image.clone())),
            ])]),
        ),
    ]);
    documents.push(map([
        ("apiVersion", s("apps/v1")),
        ("kind", s("Deployment")),
        ("metadata", metadata(name.clone())),
        (
            "spec",
            map([
                (
                    "selector",
                    map([("matchLabels", map([("app", s(name.clone()))]))]),
                ),
                (
                    "template",
                    map([("metadata", map([("labels", labels())])), ("spec", pod)]),
                ),
            ]),
        ),
    ]));
    if let Some(port) = plan.inbound_port {
        documents.push(map([
            ("apiVersion", s("v1")),
            ("kind", s("Service")),
            ("metadata", metadata(name.clone())),
            (
                "spec",
                map([
                    ("selector", map([("app", s(name.clone()))])),
                    (
                        "ports",
                        list(vec![map([
                            ("name", s("http")),
                            ("port", n(port)),
                            ("targetPort", s("inbound")),
                        ])]),
                    ),
                ]),
            ),
        ]));
    }
    let mut out = format!(
        "# Kubernetes objects of `{name}` with its entragate sidecars, generated by `bootstrap render` from the \
         mesh policy; re-render, do not edit.\n"
    );
    out.push_str(&yaml::documents(&documents)?);
    Ok(out)
}

fn strings(items: &[String]) -> Value {
    list(items.iter().map(|i| s(i.clone())).collect())
}

/// Our containers run as the bootstrap image's user, unprivileged, on a read-only root.
fn restricted() -> Value {
    map([
        ("runAsNonRoot", b(true)),
        ("runAsUser", n(RUNTIME_UID)),
        ("runAsGroup", n(RUNTIME_UID)),
        ("allowPrivilegeEscalation", b(false)),
        ("readOnlyRootFilesystem", b(true)),
        ("capabilities", map([("drop", list(vec![s("ALL")]))])),
    ])
}

/// The Secret holding the service's workload certificate (`tls.crt`, `tls.key`, `ca.crt`: what a cert-manager
/// `Certificate` with the workload identity as SAN writes), and the ConfigMap holding the SDS files.
pub fn tls_secret(name: &str) -> String {
    format!("{name}-workload-tls")
}

fn sds_config_map(name: &str) -> String {
    format!("entragate-sds-{name}")
}

/// One projected volume, so the kubelet's atomic writer swaps certificate, key and CA together (`..data`),
/// which Envoy's watched directory sees as one move.
fn tls_volume(name: &str) -> Value {
    let items = [CERT_FILE, KEY_FILE, CA_FILE]
        .iter()
        .map(|f| map([("key", s(*f)), ("path", s(*f))]))
        .collect();
    map([
        ("name", s(TLS_VOLUME)),
        (
            "projected",
            map([(
                "sources",
                list(vec![
                    map([(
                        "secret",
                        map([("name", s(tls_secret(name))), ("items", list(items))]),
                    )]),
                    map([("configMap", map([("name", s(sds_config_map(name)))]))]),
                ]),
            )]),
        ),
    ])
}

fn sds_data(directory: &str) -> Result<Value, String> {
    let mut data = serde_yaml_ng::Mapping::new();
    for (file, contents) in transport::sds_files(directory)? {
        data.insert(s(file), s(contents));
    }
    Ok(Value::Mapping(data))
}

fn run_mount(read_only: bool) -> Value {
    map([
        ("name", s(RUN_VOLUME)),
        ("mountPath", s(RUN_DIR)),
        ("readOnly", b(read_only)),
    ])
}

/// `tls`: the certificate directory Envoy reads, when the transport uses TLS.
fn init_containers(plan: &Workload, options: &WorkloadOptions, tls: Option<&str>) -> Vec<Value> {
    let mut containers = vec![map([
        ("name", s(RENDER_CONTAINER)),
        ("image", s(options.bootstrap_image.clone())),
        ("args", strings(&plan.render_args)),
        ("securityContext", restricted()),
        (
            "volumeMounts",
            list(vec![
                run_mount(false),
                map([
                    ("name", s(POLICY_VOLUME)),
                    ("mountPath", s(POLICY_DIR)),
                    ("readOnly", b(true)),
                ]),
            ]),
        ),
    ])];
    if let Some(agent) = &plan.agent {
        let probe = |period: u32, failures: u32| {
            map([
                ("exec", map([("command", strings(&agent.health_command))])),
                ("periodSeconds", n(period)),
                ("failureThreshold", n(failures)),
            ])
        };
        containers.push(map([
            ("name", s(AGENT_CONTAINER)),
            ("image", s(options.bootstrap_image.clone())),
            // A native sidecar: the app starts once its startup probe passed (tokens ready).
            ("restartPolicy", s("Always")),
            ("args", strings(&agent.args)),
            ("startupProbe", probe(2, 60)),
            ("readinessProbe", probe(10, 3)),
            ("securityContext", restricted()),
            ("volumeMounts", list(vec![run_mount(true)])),
        ]));
    }
    let mut mounts = vec![run_mount(true)];
    if let Some(dir) = tls {
        mounts.push(map([
            ("name", s(TLS_VOLUME)),
            ("mountPath", s(dir)),
            ("readOnly", b(true)),
        ]));
    }
    let mut envoy = map([
        ("name", s(ENVOY_CONTAINER)),
        ("image", s(options.envoy_image.clone())),
        ("restartPolicy", s("Always")),
        ("args", strings(&plan.envoy_args)),
        ("securityContext", restricted()),
        ("volumeMounts", list(mounts)),
    ]);
    if let Some(port) = plan.inbound_port {
        yaml::insert(
            &mut envoy,
            "ports",
            list(vec![map([
                ("name", s("inbound")),
                ("containerPort", n(port)),
            ])]),
        );
        let probe = |period: u32, failures: u32| {
            map([
                ("tcpSocket", map([("port", s("inbound"))])),
                ("periodSeconds", n(period)),
                ("failureThreshold", n(failures)),
            ])
        };
        yaml::insert(&mut envoy, "startupProbe", probe(1, 30));
        yaml::insert(&mut envoy, "readinessProbe", probe(10, 3));
    }
    containers.push(envoy);
    containers
}
