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
//! - unless the transport is plaintext, a `ClientTrafficPolicy` for the callee's Gateway listener (the
//!   listener named after the service, `sectionName`; the policy targets the Gateway, so it lives in the
//!   Gateway's namespace: `api/v1alpha1/clienttrafficpolicy_types.go` allows only `Gateway`/`ListenerSet`
//!   targets, and policy target references are local). TLS itself is terminated by that listener
//!   (`protocol: HTTPS`, `tls.mode: Terminate`, `certificateRefs` to the callee's workload certificate): the
//!   Gateway is the user's and is not rendered. The policy sets TLS 1.2 as the floor and, in `mtls`,
//!   `clientValidation` (`api/v1alpha1/tls_types.go`): `caCertificateRefs` to the ConfigMap
//!   [`MESH_CA_CONFIG_MAP`] (key `ca.crt`, the mesh CA only, no private key; ConfigMap rather than a Secret
//!   so that no Secret holding `tls.key` is ever named), and `subjectAltNames` listing the callers' workload
//!   identities, as the sidecar's inbound listener does. `optional` is left out and `mode` too (its default
//!   is `RequireAndVerify`, and older Envoy Gateway CRDs do not know the field): a client without a
//!   certificate of the mesh CA is refused during the handshake.
//!
//! Workload binding: the filter reads the peer certificate of the connection it runs on
//! (`connection.uri_san_peer_certificate`). On Envoy Gateway that is the downstream connection of the
//! Gateway's listener; with `clientValidation` the Gateway terminates the caller sidecar's mTLS there, so
//! the filter sees the caller's workload identity exactly as on a sidecar, and the binding is rendered in
//! `mtls`. It would not hold behind anything that terminates TLS before the Gateway (a TLS-terminating load
//! balancer): docs/deploy.md says so.

use super::istio::KubeOptions;
use super::transport;
use super::yaml::{self, b, list, map, s};
use crate::plugin::{self, INBOUND_ROOT_ID};
use crate::policy::{FailurePolicy, MeshPolicy, Service, TransportMode, WorkloadIdentity};
use serde_yaml_ng::Value;

/// The ConfigMap (in the Gateway's namespace, key `ca.crt`) holding the mesh CA certificate the Gateway
/// verifies callers' certificates against.
pub const MESH_CA_CONFIG_MAP: &str = "entragate-mesh-ca";

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
    let mut config = plugin::inbound(policy.identity_provider(), service, &cluster);
    let mode = policy.transport().mode;
    if mode == TransportMode::Mtls {
        // The Gateway terminates the caller's mTLS on the connection the filter runs on (module docs).
        plugin::bind_workloads(&mut config, policy, service);
    }
    plugin::check_inbound(&config, service).map_err(|e| e.to_string())?;
    let extension = resource(
        "EnvoyExtensionPolicy",
        format!("entragate-{}", service.name),
        &options.kube.namespace,
        map([
            (
                "targetRefs",
                list(vec![map([
                    ("group", s(GATEWAY_API_GROUP)),
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
    );
    let patch = resource(
        "EnvoyPatchPolicy",
        format!("entragate-{}-jwks", service.name),
        &options.gateway_namespace,
        map([
            ("targetRef", gateway_ref(options)),
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
    );
    let mut documents = vec![extension, patch];
    if mode != TransportMode::Plaintext {
        // The callee's listener only: other listeners of the Gateway keep their own TLS settings.
        let mut listener = gateway_ref(options);
        yaml::insert(&mut listener, "sectionName", s(service.name.clone()));
        documents.push(resource(
            "ClientTrafficPolicy",
            format!("entragate-{}", service.name),
            &options.gateway_namespace,
            map([
                ("targetRefs", list(vec![listener])),
                ("tls", client_tls(policy, service, mode)),
            ]),
        ));
    }
    let mut out = format!(
        "# Envoy Gateway resources of `{}`, generated by `bootstrap render` from the mesh policy; re-render, do not edit.\n",
        service.name
    );
    out.push_str(&yaml::documents(&documents)?);
    Ok(out)
}

const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// An Envoy Gateway policy object labelled as rendered by entragate.
fn resource(kind: &str, name: String, namespace: &str, spec: Value) -> Value {
    map([
        ("apiVersion", s("gateway.envoyproxy.io/v1alpha1")),
        ("kind", s(kind)),
        (
            "metadata",
            map([
                ("name", s(name)),
                ("namespace", s(namespace)),
                (
                    "labels",
                    map([("app.kubernetes.io/managed-by", s("entragate-bootstrap"))]),
                ),
            ]),
        ),
        ("spec", spec),
    ])
}

/// The Gateway the policies attach to (a local reference: the policy lives in the Gateway's namespace).
fn gateway_ref(options: &GatewayOptions) -> Value {
    map([
        ("group", s(GATEWAY_API_GROUP)),
        ("kind", s("Gateway")),
        ("name", s(options.gateway.clone())),
    ])
}

/// `ClientTrafficPolicy.spec.tls`: TLS 1.2 at least; in `mtls` a client certificate of the mesh CA carrying
/// the workload identity of one of `callee`'s callers (any mesh certificate when no service calls it).
fn client_tls(policy: &MeshPolicy, callee: &Service, mode: TransportMode) -> Value {
    let mut tls = map([("minVersion", s("1.2"))]);
    if mode != TransportMode::Mtls {
        return tls;
    }
    let mut validation = map([(
        "caCertificateRefs",
        list(vec![map([
            ("group", s("")),
            ("kind", s("ConfigMap")),
            ("name", s(MESH_CA_CONFIG_MAP)),
        ])]),
    )]);
    let callers = transport::callers(policy, callee);
    let exact = |kind: fn(&WorkloadIdentity) -> bool| {
        callers
            .iter()
            .filter(|id| kind(id))
            .map(|id| map([("type", s("Exact")), ("value", s(id.value()))]))
            .collect::<Vec<_>>()
    };
    let mut names = map([]);
    for (key, matchers) in [
        ("uris", exact(|id| matches!(id, WorkloadIdentity::Uri(_)))),
        (
            "dnsNames",
            exact(|id| matches!(id, WorkloadIdentity::Dns(_))),
        ),
    ] {
        if !matchers.is_empty() {
            yaml::insert(&mut names, key, list(matchers));
        }
    }
    if !callers.is_empty() {
        yaml::insert(&mut validation, "subjectAltNames", names);
    }
    yaml::insert(&mut tls, "clientValidation", validation);
    tls
}
