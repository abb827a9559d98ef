//! `--format envoy-gateway`: the callee side of a service behind Envoy Gateway.
//!
//! - `EnvoyExtensionPolicy` (`gateway.envoyproxy.io/v1alpha1`) targeting the service's `HTTPRoute`, with one
//!   `wasm` extension: `name`, `rootID`, `code` (`type: HTTP` with `http.url`/`sha256`, or `type: Image` with
//!   `image.url`/`sha256`), the plugin `config`, and `failOpen: false`; with the native module
//!   (`--filter native`) one `dynamicModule` instead (`name`, `filterName`, the same plugin `config`);
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
//! - with the native module, the `EnvoyProxy` (Gateway's namespace) whose `spec.dynamicModules` allow-list
//!   registers the module by the name the policy uses, with its path in the proxy container, and which runs an
//!   Envoy that can load it (Envoy 1.40/1.41; Envoy Gateway 1.9 ships 1.39: the header states the caveat).
//!
//! Workload binding: the filter reads the peer certificate of the connection it runs on
//! (`connection.uri_san_peer_certificate`). On Envoy Gateway that is the downstream connection of the
//! Gateway's listener; with `clientValidation` the Gateway terminates the caller sidecar's mTLS there, so
//! the filter sees the caller's workload identity exactly as on a sidecar, and the binding is rendered in
//! `mtls`. It would not hold behind anything that terminates TLS before the Gateway (a TLS-terminating load
//! balancer): docs/deploy.md says so.

use super::envoy::{self, NATIVE_VERSIONS};
use super::transport;
use super::wasm::WasmModule;
use super::yaml::{self, b, list, map, s};
use crate::plugin::{self, INBOUND_ROOT_ID};
use crate::policy::{FailurePolicy, MeshPolicy, Service, TransportMode, WorkloadIdentity};
use serde_yaml_ng::Value;

/// The ConfigMap (in the Gateway's namespace, key `ca.crt`) holding the mesh CA certificate the Gateway
/// verifies callers' certificates against.
pub const MESH_CA_CONFIG_MAP: &str = "entragate-mesh-ca";

/// Where Envoy Gateway runs: the HTTPRoute's namespace, the filter build, and the `Gateway` to patch and its
/// namespace.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// The namespace of the service's `HTTPRoute` (and of the `EnvoyExtensionPolicy`).
    pub namespace: String,
    pub filter: GatewayFilter,
    pub gateway: String,
    pub gateway_namespace: String,
}

/// The filter build the Gateway's Envoy runs.
#[derive(Clone, Debug)]
pub enum GatewayFilter {
    /// The proxy-wasm module, fetched by Envoy Gateway over HTTP(S) or from an OCI registry.
    Wasm(WasmModule),
    /// The native dynamic module, loaded from the proxy's file system (`docs/native.md`).
    Native(NativeProxy),
}

/// How the Gateway's Envoy gets an Envoy that can load the native module, and the module itself.
#[derive(Clone, Debug)]
pub struct NativeProxy {
    /// The Envoy container image (1.40 or 1.41: the module's ABI); `envoyproxy/envoy:v1.40.0` by default.
    pub envoy_image: String,
    /// An OCI image holding `libentragate_native.so` at its root, mounted as an image volume (Kubernetes >=
    /// 1.35, as Envoy Gateway's dynamic-modules task does). Without it the Envoy image must hold the module
    /// at [`native_module_path`] itself (a custom image built on the Envoy one).
    pub module_image: Option<String>,
}

/// The module's name in the `EnvoyProxy` allow-list and in the `EnvoyExtensionPolicy` that refers to it (one
/// constant for both: Envoy Gateway rejects a policy whose module is not in the allow-list). Envoy Gateway's
/// pattern for it is `^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$` (`api/v1alpha1/dynamic_module_types.go`): no `_`, so
/// not [`envoy::NATIVE_MODULE_NAME`].
pub const GATEWAY_MODULE_NAME: &str = "entragate-native";

/// The `EnvoyProxy` rendered for the native module (one per Gateway: every callee behind it renders the same).
pub const NATIVE_ENVOY_PROXY: &str = "entragate-native";

/// Where the module is in the Envoy container (the image volume's mount point).
pub const NATIVE_MODULE_DIR: &str = "/etc/envoy/modules";

/// The module's absolute path in the Envoy container (`source.local.path` of the allow-list entry).
pub fn native_module_path() -> String {
    format!("{NATIVE_MODULE_DIR}/{}", envoy::native_module_file())
}

/// The Envoy image Envoy Gateway 1.9 runs by default (`DefaultEnvoyProxyImage`, `api/v1alpha1/shared_types.go`
/// at v1.9.0): Envoy 1.39, which cannot load a module built for 1.40.
pub const GATEWAY_DEFAULT_ENVOY_IMAGE: &str = "docker.io/envoyproxy/envoy:distroless-v1.39.0";

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
    let cluster = jwks_cluster_name(service);
    let mut config = plugin::inbound(policy.identity_provider(), service, &cluster);
    let mode = policy.transport().mode;
    if mode == TransportMode::Mtls {
        // The Gateway terminates the caller's mTLS on the connection the filter runs on (module docs).
        plugin::bind_workloads(&mut config, policy, service);
    }
    plugin::check_inbound(&config, service).map_err(|e| e.to_string())?;
    let (key, extension) = match &options.filter {
        GatewayFilter::Wasm(wasm) => ("wasm", wasm_extension(service, &config, wasm)?),
        GatewayFilter::Native(_) => ("dynamicModule", native_extension(&config)?),
    };
    let extension = resource(
        "EnvoyExtensionPolicy",
        format!("entragate-{}", service.name),
        &options.namespace,
        map([
            (
                "targetRefs",
                list(vec![map([
                    ("group", s(GATEWAY_API_GROUP)),
                    ("kind", s("HTTPRoute")),
                    ("name", s(service.name.clone())),
                ])]),
            ),
            (key, list(vec![extension])),
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
    if let GatewayFilter::Native(proxy) = &options.filter {
        out.push_str(&native_header(service, options, proxy));
        documents.push(native_envoy_proxy(options, proxy));
    }
    out.push_str(&yaml::documents(&documents)?);
    Ok(out)
}

/// `spec.wasm[0]`: the module fetched by Envoy Gateway, in its callee role.
fn wasm_extension(
    service: &Service,
    config: &serde_json::Value,
    wasm: &WasmModule,
) -> Result<Value, String> {
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
    Ok(map([
        ("name", s(INBOUND_ROOT_ID)),
        ("rootID", s(INBOUND_ROOT_ID)),
        ("code", code),
        ("config", yaml::from_json(config)?),
        (
            "failOpen",
            b(service.sidecar.failure_policy == FailurePolicy::FailOpen),
        ),
    ]))
}

/// `spec.dynamicModule[0]` (`api/v1alpha1/dynamic_module_types.go`, Envoy Gateway >= 1.8): the allow-listed
/// module by name, the callee role by `filterName` (passed to the module as Envoy's `filter_name`, as the
/// sidecar's `filter_name: entragate`), and the same plugin JSON as an object: Envoy Gateway serialises
/// `config` to JSON and hands it to the module as a `google.protobuf.StringValue`
/// (`internal/xds/translator/dynamicmodule.go`), which is what the sidecar's `filter_config` carries.
/// No `failOpen` (the API has none; the module fails closed) and no `terminalFilter` (the route's backend
/// answers).
fn native_extension(config: &serde_json::Value) -> Result<Value, String> {
    Ok(map([
        ("name", s(GATEWAY_MODULE_NAME)),
        ("filterName", s(INBOUND_ROOT_ID)),
        ("config", yaml::from_json(config)?),
    ]))
}

/// The `EnvoyProxy` (in the Gateway's namespace) that registers the module and runs an Envoy that loads it:
/// `spec.dynamicModules` allow-lists [`GATEWAY_MODULE_NAME`] at [`native_module_path`] (`doNotClose`, as
/// the sidecar's `do_not_close`: the module keeps process-wide state), the Envoy container's `image`
/// replaces Envoy Gateway's default, and with a module image the pod mounts it as an image volume (as
/// Envoy Gateway's dynamic-modules task does).
fn native_envoy_proxy(options: &GatewayOptions, proxy: &NativeProxy) -> Value {
    let mut container = map([("image", s(proxy.envoy_image.clone()))]);
    let mut deployment = map([]);
    if let Some(image) = &proxy.module_image {
        yaml::insert(
            &mut deployment,
            "pod",
            map([(
                "volumes",
                list(vec![map([
                    ("name", s(NATIVE_ENVOY_PROXY)),
                    (
                        "image",
                        map([
                            ("reference", s(image.clone())),
                            ("pullPolicy", s("IfNotPresent")),
                        ]),
                    ),
                ])]),
            )]),
        );
        yaml::insert(
            &mut container,
            "volumeMounts",
            list(vec![map([
                ("name", s(NATIVE_ENVOY_PROXY)),
                ("mountPath", s(NATIVE_MODULE_DIR)),
                ("readOnly", b(true)),
            ])]),
        );
    }
    yaml::insert(&mut deployment, "container", container);
    resource(
        "EnvoyProxy",
        NATIVE_ENVOY_PROXY.to_string(),
        &options.gateway_namespace,
        map([
            (
                "provider",
                map([
                    ("type", s("Kubernetes")),
                    ("kubernetes", map([("envoyDeployment", deployment)])),
                ]),
            ),
            (
                "dynamicModules",
                list(vec![map([
                    ("name", s(GATEWAY_MODULE_NAME)),
                    (
                        "source",
                        map([
                            ("type", s("Local")),
                            ("local", map([("path", s(native_module_path()))])),
                        ]),
                    ),
                    ("doNotClose", b(true)),
                ])]),
            ),
        ]),
    )
}

/// What the native rendering needs from the operator, at the top of the file: the Envoy version caveat,
/// where the module must be, and how the `EnvoyProxy` is attached.
fn native_header(service: &Service, options: &GatewayOptions, proxy: &NativeProxy) -> String {
    let mut h = format!(
        "# Filter: {NATIVE_VERSIONS}.\n\
         # VERSION CAVEAT: needs Envoy Gateway >= 1.8 (EnvoyExtensionPolicy spec.dynamicModule, EnvoyProxy spec.dynamicModules),\n\
         # and Envoy Gateway 1.9 runs Envoy 1.39 ({GATEWAY_DEFAULT_ENVOY_IMAGE}), which cannot load the module:\n\
         # the EnvoyProxy below replaces the Envoy image with {} (spec.provider.kubernetes.envoyDeployment.container.image).\n\
         # Envoy Gateway's xDS is made and tested for its own Envoy: test this pairing before production, and drop the\n\
         # image override once your Envoy Gateway ships Envoy 1.40 or 1.41 (a newer Envoy needs a module built for it).\n",
        proxy.envoy_image
    );
    h.push_str(&match &proxy.module_image {
        Some(image) => format!(
            "# The module: the image volume {image} (libentragate_native.so at its root; image volumes need Kubernetes >= 1.35),\n\
             # mounted at {NATIVE_MODULE_DIR}. Ship the .so built for the nodes' architecture (docs/native.md, \"What to ship\").\n"
        ),
        None => format!(
            "# The module: {} must exist in the Envoy image (a custom image built on {}), or be\n\
             # mounted there (an image volume: --native-image; or an init container copying it into a shared volume).\n",
            native_module_path(),
            proxy.envoy_image
        ),
    });
    h.push_str(&format!(
        "# Attach the EnvoyProxy `{NATIVE_ENVOY_PROXY}` to the Gateway `{}`: spec.infrastructure.parametersRef\n\
         # (group gateway.envoyproxy.io, kind EnvoyProxy, name {NATIVE_ENVOY_PROXY}), or to its GatewayClass (spec.parametersRef).\n\
         # Unless its spec.mergeType is set, it replaces the GatewayClass's EnvoyProxy settings: merge yours into it.\n",
        options.gateway
    ));
    if service.sidecar.failure_policy == FailurePolicy::FailOpen {
        h.push_str(envoy::NATIVE_FAILS_CLOSED);
    }
    h
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
