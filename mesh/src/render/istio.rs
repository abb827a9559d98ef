//! `--format istio`: the callee side of a service on an Istio mesh.
//!
//! - `WasmPlugin` (`extensions.istio.io/v1alpha1`): the module by `file://`/`oci://`/`https://` URL and
//!   SHA-256, phase `AUTHN`, `failStrategy: FAIL_CLOSE`, inbound traffic only (`match: [{mode: SERVER}]`), the
//!   plugin configuration as `pluginConfig`, selecting the service's pods by `app: <service>`;
//! - `ServiceEntry` (`networking.istio.io/v1`, Istio >= 1.22) for the Entra host and a `DestinationRule`
//!   originating TLS, both `exportTo: ["."]` (only this namespace sees them). Istio's TLS origination pattern
//!   (istio.io "Egress TLS Origination"): port 80 `HTTP` with `targetPort: 443` and `tls.mode: SIMPLE` on
//!   port 80, so the filter's plain-HTTP callouts leave as HTTPS through cluster
//!   `outbound|80||login.microsoftonline.com` (Istio's `model.BuildSubsetKey`,
//!   `pilot/pkg/model/service.go`: `direction|port|subset|hostname`). Port 443 is declared `TLS` with no
//!   origination, so the workloads' own HTTPS (MSAL, SDKs, the agent) passes through untouched instead of
//!   being wrapped twice. The origination checks the certificate's name (`subjectAltNames`).
//!
//! - `PeerAuthentication` (`security.istio.io/v1`) `mtls.mode: STRICT` for the service's pods unless the
//!   policy's transport is plaintext: Istio's workload mTLS is the sidecar-to-sidecar transport.
//!
//! The caller side (token attachment) needs the agent key in the plugin configuration; on Istio it is rendered
//! with `--format envoy` semantics by hand for now (see docs/mesh-policy.md).

use super::wasm::WasmModule;
use super::yaml::{self, list, map, n, s};
use crate::plugin::{self, INBOUND_ROOT_ID};
use crate::policy::{FailurePolicy, MeshPolicy, Service, TransportMode};

/// Kubernetes placement.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    pub namespace: String,
    pub wasm: WasmModule,
}

/// `file:///abs/path` for a plain path; URLs unchanged.
pub fn module_url(reference: &str) -> String {
    if reference.contains("://") {
        reference.to_string()
    } else {
        format!("file://{reference}")
    }
}

pub fn render(
    policy: &MeshPolicy,
    service: &Service,
    options: &KubeOptions,
) -> Result<String, String> {
    if !service.is_callee() {
        return Err(format!(
            "`{}` has no rules: the istio format renders the callee (validating) side only",
            service.name
        ));
    }
    let url = module_url(&options.wasm.reference);
    if !(url.starts_with("file://") || url.starts_with("oci://") || url.starts_with("https://")) {
        return Err(format!(
            "Istio loads modules from file://, oci:// or https:// URLs, not `{url}`"
        ));
    }
    let authority = &policy.identity_provider().authority;
    // The port the filter's callouts use: 80 with TLS origination for a TLS authority, else its own.
    let callout_port = if authority.tls {
        ORIGINATION_PORT
    } else {
        authority.port
    };
    let cluster = outbound_cluster(callout_port, &authority.host);
    let mut config = plugin::inbound(policy.identity_provider(), service, &cluster);
    // Istio's inbound listener terminates the mesh mTLS: the filter sees the caller's SPIFFE identity.
    plugin::bind_workloads(&mut config, policy, service);
    plugin::check_inbound(&config, service).map_err(|e| e.to_string())?;
    let metadata = |name: String| {
        map([
            ("name", s(name)),
            ("namespace", s(options.namespace.clone())),
            (
                "labels",
                map([("app.kubernetes.io/managed-by", s("entragate-bootstrap"))]),
            ),
        ])
    };
    let this_namespace = || list(vec![s(".")]);
    let wasm_plugin = map([
        ("apiVersion", s("extensions.istio.io/v1alpha1")),
        ("kind", s("WasmPlugin")),
        ("metadata", metadata(format!("entragate-{}", service.name))),
        (
            "spec",
            map([
                (
                    "selector",
                    map([("matchLabels", map([("app", s(service.name.clone()))]))]),
                ),
                ("url", s(url)),
                ("sha256", s(options.wasm.sha256.clone())),
                ("phase", s("AUTHN")),
                (
                    "failStrategy",
                    s(match service.sidecar.failure_policy {
                        FailurePolicy::FailClosed => "FAIL_CLOSE",
                        FailurePolicy::FailOpen => "FAIL_OPEN",
                    }),
                ),
                ("pluginName", s(INBOUND_ROOT_ID)),
                ("match", list(vec![map([("mode", s("SERVER"))])])),
                ("pluginConfig", yaml::from_json(&config)?),
            ]),
        ),
    ]);
    let entry_name = format!("entra-id-{}", authority.host.replace('.', "-"));
    let service_entry = map([
        ("apiVersion", s("networking.istio.io/v1")),
        ("kind", s("ServiceEntry")),
        ("metadata", metadata(entry_name.clone())),
        (
            "spec",
            map([
                ("hosts", list(vec![s(authority.host.clone())])),
                ("exportTo", this_namespace()),
                ("ports", list(entry_ports(authority.tls, authority.port))),
                (
                    "resolution",
                    s(if authority.is_ip() { "STATIC" } else { "DNS" }),
                ),
                ("location", s("MESH_EXTERNAL")),
            ]),
        ),
    ]);
    let mut documents = vec![wasm_plugin, service_entry];
    if authority.tls {
        // The filter's callouts are plain HTTP inside Envoy: the cluster must originate TLS itself.
        documents.push(map([
            ("apiVersion", s("networking.istio.io/v1")),
            ("kind", s("DestinationRule")),
            ("metadata", metadata(entry_name)),
            (
                "spec",
                map([
                    ("host", s(authority.host.clone())),
                    ("exportTo", this_namespace()),
                    (
                        "trafficPolicy",
                        map([(
                            "portLevelSettings",
                            list(vec![map([
                                ("port", map([("number", n(ORIGINATION_PORT))])),
                                (
                                    "tls",
                                    map([
                                        ("mode", s("SIMPLE")),
                                        ("sni", s(authority.host.clone())),
                                        // Without it any publicly trusted certificate would do.
                                        ("subjectAltNames", list(vec![s(authority.host.clone())])),
                                    ]),
                                ),
                            ])]),
                        )]),
                    ),
                ]),
            ),
        ]));
    }
    // Istio's own mTLS carries the transport: the callee's pods accept mesh mTLS only (no plaintext port).
    // Istio issues SPIFFE identities from the pod's service account, which the Deployment sets to the
    // service name (`kubernetes` format), so they match the policy's default workload identities.
    let mode = policy.transport().mode;
    if mode != TransportMode::Plaintext {
        documents.push(map([
            ("apiVersion", s("security.istio.io/v1")),
            ("kind", s("PeerAuthentication")),
            ("metadata", metadata(format!("entragate-{}", service.name))),
            (
                "spec",
                map([
                    (
                        "selector",
                        map([("matchLabels", map([("app", s(service.name.clone()))]))]),
                    ),
                    ("mtls", map([("mode", s("STRICT"))])),
                ]),
            ),
        ]));
    }
    let mut out = format!(
        "# Istio resources of `{}`, generated by `bootstrap render` from the mesh policy; re-render, do not edit.\n",
        service.name
    );
    out.push_str(&yaml::documents(&documents)?);
    Ok(out)
}

/// The ServiceEntry port the filter's callouts use when TLS is originated by the sidecar.
pub const ORIGINATION_PORT: u16 = 80;

/// Istio's outbound cluster name for a host and port (`model.BuildSubsetKey`, no subset).
pub fn outbound_cluster(port: u16, host: &str) -> String {
    format!("outbound|{port}||{host}")
}

/// A TLS authority: 80 `HTTP` -> `targetPort` 443 (originated) and 443 `TLS` (passed through);
/// a plain-http test authority: its port as `HTTP`.
fn entry_ports(tls: bool, port: u16) -> Vec<serde_yaml_ng::Value> {
    if !tls {
        return vec![map([
            ("number", n(port)),
            ("name", s("http")),
            ("protocol", s("HTTP")),
        ])];
    }
    vec![
        map([
            ("number", n(ORIGINATION_PORT)),
            ("name", s("http-tls-origination")),
            ("protocol", s("HTTP")),
            ("targetPort", n(port)),
        ]),
        map([
            ("number", n(port)),
            ("name", s("tls")),
            ("protocol", s("TLS")),
        ]),
    ]
}
