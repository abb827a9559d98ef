//! `--format istio`: the callee side of a service on an Istio mesh.
//!
//! - `WasmPlugin` (`extensions.istio.io/v1alpha1`): the module by `file://`/`oci://`/`https://` URL and
//!   SHA-256, phase `AUTHN`, `failStrategy: FAIL_CLOSE`, inbound traffic only (`match: [{mode: SERVER}]`), the
//!   plugin configuration as `pluginConfig`, selecting the service's pods by `app: <service>`;
//! - `ServiceEntry` (`networking.istio.io/v1`) for the Entra host, so the sidecar has a cluster for the JWKS
//!   callouts (`outbound|443||login.microsoftonline.com`), and a `DestinationRule` originating TLS to it.
//!
//! The caller side (token attachment) needs the agent key in the plugin configuration; on Istio it is rendered
//! with `--format envoy` semantics by hand for now (see docs/mesh-policy.md).

use super::wasm::WasmModule;
use super::yaml::{self, list, map, n, s};
use crate::mesh::plugin::{self, INBOUND_ROOT_ID};
use crate::mesh::policy::{FailurePolicy, MeshPolicy, Service};

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
    let cluster = format!("outbound|{}||{}", authority.port, authority.host);
    let config = plugin::inbound(policy.identity_provider(), service, &cluster);
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
                (
                    "ports",
                    list(vec![map([
                        ("number", n(authority.port)),
                        ("name", s(if authority.tls { "tls" } else { "http" })),
                        ("protocol", s(if authority.tls { "TLS" } else { "HTTP" })),
                    ])]),
                ),
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
                    (
                        "trafficPolicy",
                        map([(
                            "portLevelSettings",
                            list(vec![map([
                                ("port", map([("number", n(authority.port))])),
                                (
                                    "tls",
                                    map([
                                        ("mode", s("SIMPLE")),
                                        ("sni", s(authority.host.clone())),
                                    ]),
                                ),
                            ])]),
                        )]),
                    ),
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
