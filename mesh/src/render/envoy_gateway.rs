//! `--format envoy-gateway`: the callee side of a service behind Envoy Gateway.
//!
//! - `EnvoyExtensionPolicy` (`gateway.envoyproxy.io/v1alpha1`) targeting the service's `HTTPRoute`, with one
//!   `wasm` extension: `name`, `rootID`, `code` (`type: HTTP` with `http.url`/`sha256`, or `type: Image` with
//!   `image.url`/`sha256`), the plugin `config`, and `failOpen: false`;
//! - `EnvoyPatchPolicy` adding the cluster the filter's JWKS callouts use (Envoy Gateway generates cluster
//!   names itself and none for wasm callouts). Upstream rules (envoyproxy/gateway
//!   `api/v1alpha1/envoypatchpolicy_types.go`): the policy "and the TargetRef MUST be in the same namespace
//!   for this Policy to have effect", so it goes to the Gateway's namespace (`--gateway-namespace`), not the
//!   route's; patch policies must be enabled (`extensionApis.enableEnvoyPatchPolicy`) and the API is marked
//!   unstable upstream. The cluster is named per callee (`entragate_jwks_<service>`): two callees behind one
//!   Gateway would otherwise each add a cluster `entra_idp`, and Envoy rejects duplicate cluster names.

use super::istio::KubeOptions;
use super::yaml::{self, b, list, map, s};
use crate::plugin::{self, INBOUND_ROOT_ID};
use crate::policy::{FailurePolicy, MeshPolicy, Service};

/// Where Envoy Gateway runs: namespace (of the HTTPRoute) and module as for Istio, plus the `Gateway` to
/// patch and its namespace.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    pub kube: KubeOptions,
    pub gateway: String,
    pub gateway_namespace: String,
}

/// The JWKS cluster the patch policy adds for `service`: unique per callee, so several callees' patch
/// policies on one Gateway never add the same cluster twice.
pub fn jwks_cluster_name(service: &Service) -> String {
    format!("entragate_jwks_{}", service.cluster_name())
}

pub fn render(
    policy: &MeshPolicy,
    service: &Service,
    options: &GatewayOptions,
) -> Result<String, String> {
    if !service.is_callee() {
        return Err(format!(
            "`{}` has no rules: the envoy-gateway format renders the callee (validating) side only",
            service.name
        ));
    }
    let wasm = &options.kube.wasm;
    let code = if let Some(image) = wasm.reference.strip_prefix("oci://") {
        map([
            ("type", s("Image")),
            (
                "image",
                map([("url", s(image)), ("sha256", s(wasm.sha256.clone()))]),
            ),
        ])
    } else if wasm.reference.starts_with("https://") || wasm.reference.starts_with("http://") {
        map([
            ("type", s("HTTP")),
            (
                "http",
                map([
                    ("url", s(wasm.reference.clone())),
                    ("sha256", s(wasm.sha256.clone())),
                ]),
            ),
        ])
    } else {
        return Err(format!(
            "Envoy Gateway fetches modules over HTTP(S) or from an OCI registry: pass --wasm-url https://... or oci://..., not `{}`",
            wasm.reference
        ));
    };
    let cluster = jwks_cluster_name(service);
    let config = plugin::inbound(policy.identity_provider(), service, &cluster);
    plugin::check_inbound(&config, service).map_err(|e| e.to_string())?;
    let metadata = |name: String, namespace: &str| {
        map([
            ("name", s(name)),
            ("namespace", s(namespace)),
            (
                "labels",
                map([("app.kubernetes.io/managed-by", s("entragate-bootstrap"))]),
            ),
        ])
    };
    let extension = map([
        ("apiVersion", s("gateway.envoyproxy.io/v1alpha1")),
        ("kind", s("EnvoyExtensionPolicy")),
        (
            "metadata",
            metadata(
                format!("entragate-{}", service.name),
                &options.kube.namespace,
            ),
        ),
        (
            "spec",
            map([
                (
                    "targetRefs",
                    list(vec![map([
                        ("group", s("gateway.networking.k8s.io")),
                        ("kind", s("HTTPRoute")),
                        ("name", s(service.name.clone())),
                    ])]),
                ),
                (
                    "wasm",
                    list(vec![map([
                        ("name", s(INBOUND_ROOT_ID)),
                        ("rootID", s(INBOUND_ROOT_ID)),
                        ("code", code),
                        ("config", yaml::from_json(&config)?),
                        (
                            "failOpen",
                            b(service.sidecar.failure_policy == FailurePolicy::FailOpen),
                        ),
                    ])]),
                ),
            ]),
        ),
    ]);
    let patch = map([
        ("apiVersion", s("gateway.envoyproxy.io/v1alpha1")),
        ("kind", s("EnvoyPatchPolicy")),
        (
            "metadata",
            metadata(
                format!("entragate-{}-jwks", service.name),
                &options.gateway_namespace,
            ),
        ),
        (
            "spec",
            map([
                (
                    "targetRef",
                    map([
                        ("group", s("gateway.networking.k8s.io")),
                        ("kind", s("Gateway")),
                        ("name", s(options.gateway.clone())),
                    ]),
                ),
                ("type", s("JSONPatch")),
                (
                    "jsonPatches",
                    list(vec![map([
                        (
                            "type",
                            s("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
                        ),
                        ("name", s(cluster.clone())),
                        (
                            "operation",
                            map([
                                ("op", s("add")),
                                ("path", s("")),
                                (
                                    "value",
                                    super::envoy::jwks_cluster(policy, service, &cluster),
                                ),
                            ]),
                        ),
                    ])]),
                ),
            ]),
        ),
    ]);
    let mut out = format!(
        "# Envoy Gateway resources of `{}`, generated by `bootstrap render` from the mesh policy; re-render, do not edit.\n",
        service.name
    );
    out.push_str(&yaml::documents(&[extension, patch])?);
    Ok(out)
}
