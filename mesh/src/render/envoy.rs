//! `--format envoy`: a complete Envoy bootstrap for one service's sidecar, modelled on `envoy/callee.yaml`
//! and `envoy/caller.yaml`:
//!
//! - listener `inbound` (services with rules): path normalisation, the filter in its callee role
//!   (`root_id: entragate`), then the local application (`local_app`);
//! - listener `outbound` on loopback (services that call others): one virtual host per called service
//!   (`Host: fraud-detector`, `fraud-detector:*`), the filter in its caller role (`root_id:
//!   entragate_outbound`) attaching the token for the route's cluster, one cluster per called service;
//! - transport (mesh.yaml `transport`, [`super::transport`]): the inbound listener terminates TLS (in `mtls`
//!   requiring a client certificate from the mesh CA), each called service's cluster originates TLS with SNI
//!   and checks the callee's workload identity;
//! - cluster `entra_idp` to the authority (TLS with SAN check unless a plain-http loopback test IdP), cluster
//!   `entragate_agent` to the bootstrap agent, admin on 127.0.0.1.

use super::access_log::inbound_access_log;
use super::transport;
use super::wasm::WasmModule;
use super::yaml::{self, b, list, map, n, s};
use crate::plugin::{self, AGENT_CLUSTER, INBOUND_ROOT_ID, JWKS_CLUSTER, OUTBOUND_ROOT_ID};
use crate::policy::{CallerCredential, FailurePolicy, MeshPolicy, Service, TransportMode};
use serde_yaml_ng::Value;

/// The filter Envoy runs: the portable wasm module or the native dynamic module (`docs/native.md`).
#[derive(Clone, Debug)]
pub enum FilterModule {
    Wasm(WasmModule),
    /// `libentragate_native.so`, found by Envoy in `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`. Both roles.
    Native,
}

/// The dynamic module's name: Envoy 1.40 loads `lib<name>.so` from `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`.
pub const NATIVE_MODULE_NAME: &str = "entragate_native";

/// The module's file name (`lib<name>.so`).
pub fn native_module_file() -> String {
    format!("lib{NATIVE_MODULE_NAME}.so")
}

/// Which Envoy the module loads in, for the rendered headers: the ABI it was built against and Envoy's
/// promise that a module built for 1.X runs on 1.X and 1.(X+1).
pub const NATIVE_VERSIONS: &str =
    "the native dynamic module (ABI v0.2.0, built for Envoy 1.40; runs on Envoy 1.40 and 1.41)";

/// Header line when the policy asks for FAIL_OPEN: stricter than asked, never weaker, said rather than silent.
pub const NATIVE_FAILS_CLOSED: &str = "# sidecar.failure_policy FAIL_OPEN does not apply: the native module fails closed on its own failures (a panic answers 503).\n";

/// What the policy does not say: the module and, for a caller, the agent key.
#[derive(Clone, Debug)]
pub struct EnvoyOptions {
    pub filter: FilterModule,
    /// Contents of the agent key file (64 hex characters); required when the service calls others.
    pub agent_key: Option<String>,
}

/// Renders the sidecar bootstrap of `service`.
pub fn render(
    policy: &MeshPolicy,
    service: &Service,
    options: &EnvoyOptions,
) -> Result<String, String> {
    let idp = policy.identity_provider();
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    if service.is_callee() {
        let mut config = plugin::inbound(idp, service, JWKS_CLUSTER);
        plugin::bind_workloads(&mut config, policy, service);
        plugin::check_inbound(&config, service).map_err(|e| e.to_string())?;
        listeners.push(inbound_listener(policy, service, &config, &options.filter)?);
        clusters.push(static_cluster(
            "local_app",
            "127.0.0.1",
            service.ports.app.unwrap_or_default(),
        ));
        clusters.push(jwks_cluster(policy, service, JWKS_CLUSTER));
    }
    if service.is_caller() {
        let key = options.agent_key.as_deref().ok_or_else(|| {
            format!(
                "`{}` calls other services: its sidecar needs the agent key (--agent-key-file)",
                service.name
            )
        })?;
        let config = plugin::outbound(policy, service, key.trim());
        plugin::check_outbound(&config, service).map_err(|e| e.to_string())?;
        listeners.push(outbound_listener(
            policy,
            service,
            &config,
            &options.filter,
        )?);
        for callee in service
            .destinations
            .iter()
            .filter_map(|d| policy.service(d))
        {
            clusters.push(peer_cluster(policy, service, callee));
        }
        clusters.push(static_cluster(
            AGENT_CLUSTER,
            &service.sidecar.agent.ip().to_string(),
            service.sidecar.agent.port(),
        ));
    }
    if listeners.is_empty() {
        return Err(format!(
            "`{}` has no rules and calls no service: its sidecar would have nothing to do",
            service.name
        ));
    }
    let document = map([
        // File-based SDS subscriptions (the transport's certificates) need a node identity.
        (
            "node",
            map([
                ("id", s(service.name.clone())),
                ("cluster", s(service.name.clone())),
            ]),
        ),
        (
            "admin",
            map([("address", socket_address("127.0.0.1", service.ports.admin))]),
        ),
        (
            "static_resources",
            map([("listeners", list(listeners)), ("clusters", list(clusters))]),
        ),
    ]);
    let mut out = header(policy, service, &options.filter);
    out.push_str(&yaml::to_string(&document)?);
    Ok(out)
}

fn header(policy: &MeshPolicy, service: &Service, filter: &FilterModule) -> String {
    let mut roles = Vec::new();
    if service.is_callee() {
        roles.push("validates inbound requests".to_string());
    }
    if service.is_caller() {
        roles.push(format!(
            "attaches tokens for {}",
            service.destinations.join(", ")
        ));
    }
    let mut h = format!(
        "# Envoy sidecar of `{}`, generated by `bootstrap render` from the mesh policy; re-render, do not edit.\n\
         # The sidecar {}.\n",
        service.name,
        roles.join(" and "),
    );
    h.push_str(&match filter {
        FilterModule::Wasm(wasm) => format!(
            "# entragate_filter.wasm sha256: {} (Envoy does not hash local files: deploy exactly this module)\n",
            wasm.sha256
        ),
        FilterModule::Native => format!(
            "# Filter: {NATIVE_VERSIONS}.\n\
             # Envoy loads lib{NATIVE_MODULE_NAME}.so from the directory named by ENVOY_DYNAMIC_MODULES_SEARCH_PATH:\n\
             # set it in Envoy's environment (e.g. ENVOY_DYNAMIC_MODULES_SEARCH_PATH=/etc/envoy/modules) and ship the\n\
             # .so built for this architecture and glibc (docs/native.md, \"What to ship\").\n"
        ),
    });
    if matches!(filter, FilterModule::Native)
        && service.sidecar.failure_policy == FailurePolicy::FailOpen
    {
        h.push_str(NATIVE_FAILS_CLOSED);
    }
    if service.is_caller() {
        h.push_str("# Carries the agent key: keep this file private (mode 0600) and the admin interface on loopback.\n");
    }
    let transport = policy.transport();
    h.push_str(&match transport.mode {
        TransportMode::Plaintext => {
            "# Transport: plaintext - tokens cross the wire in clear; for a loopback demo only.\n"
                .to_string()
        }
        mode => format!(
            "# Transport: {} as {} ({}), certificates by file-based SDS from {}.\n",
            mode.as_str(),
            service.workload.value(),
            service.workload.san_type(),
            service.sidecar.certificates
        ),
    });
    if !policy.identity_provider().authority.tls {
        h.push_str("# The authority is a plain-http loopback test IdP: for local testing only.\n");
    }
    h
}

fn socket_address(address: &str, port: u16) -> Value {
    map([(
        "socket_address",
        map([("address", s(address)), ("port_value", n(port))]),
    )])
}

fn endpoint_cluster(name: &str, kind: &str, timeout: &str, host: &str, port: u16) -> Value {
    map([
        ("name", s(name)),
        ("type", s(kind)),
        ("connect_timeout", s(timeout)),
        (
            "load_assignment",
            map([
                ("cluster_name", s(name)),
                (
                    "endpoints",
                    list(vec![map([(
                        "lb_endpoints",
                        list(vec![map([(
                            "endpoint",
                            map([("address", socket_address(host, port))]),
                        )])]),
                    )])]),
                ),
            ]),
        ),
    ])
}

fn static_cluster(name: &str, ip: &str, port: u16) -> Value {
    endpoint_cluster(name, "STATIC", "1s", ip, port)
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// The cluster reaching another service's sidecar (its inbound listener), over TLS unless plaintext.
fn peer_cluster(policy: &MeshPolicy, caller: &Service, callee: &Service) -> Value {
    let kind = if is_ip(&callee.host) {
        "STATIC"
    } else {
        "STRICT_DNS"
    };
    let mut cluster = endpoint_cluster(
        &callee.cluster_name(),
        kind,
        "2s",
        &callee.host,
        callee.ports.inbound,
    );
    if let Some(socket) = transport::upstream(policy, caller, callee) {
        yaml::insert(&mut cluster, "transport_socket", socket);
    }
    cluster
}

/// The authority (JWKS callouts): TLS with SNI and a SAN check for a real Entra host.
pub(crate) fn jwks_cluster(policy: &MeshPolicy, service: &Service, name: &str) -> Value {
    let authority = &policy.identity_provider().authority;
    let kind = if authority.is_ip() {
        "STATIC"
    } else {
        "STRICT_DNS"
    };
    let mut cluster = endpoint_cluster(name, kind, "2s", &authority.host, authority.port);
    if !authority.is_ip() {
        yaml::insert(&mut cluster, "dns_lookup_family", s("V4_PREFERRED"));
    }
    if authority.tls {
        yaml::insert(
            &mut cluster,
            "transport_socket",
            map([
                ("name", s("envoy.transport_sockets.tls")),
                (
                    "typed_config",
                    map([
                        (
                            "@type",
                            s("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
                        ),
                        ("sni", s(authority.host.clone())),
                        (
                            "common_tls_context",
                            map([(
                                "validation_context",
                                map([
                                    ("trusted_ca", map([("filename", s(service.sidecar.ca_file.clone()))])),
                                    (
                                        "match_typed_subject_alt_names",
                                        list(vec![map([
                                            ("san_type", s("DNS")),
                                            ("matcher", map([("exact", s(authority.host.clone()))])),
                                        ])]),
                                    ),
                                ]),
                            )]),
                        ),
                    ]),
                ),
            ]),
        );
    }
    cluster
}

/// The plugin JSON as both hosts take it: a `StringValue` holding the JSON text.
fn plugin_json(config: &serde_json::Value) -> Result<Value, String> {
    let json =
        serde_json::to_string_pretty(config).map_err(|e| format!("cannot write JSON: {e}"))?;
    Ok(map([
        (
            "@type",
            s("type.googleapis.com/google.protobuf.StringValue"),
        ),
        ("value", s(json)),
    ]))
}

/// The filter as an Envoy dynamic module: the same plugin JSON as the wasm filter's configuration, and
/// the role chosen by `filter_name` as the wasm filter's by `root_id` (`entragate`, `entragate_outbound`).
fn native_filter(role: &str, config: &serde_json::Value) -> Result<Value, String> {
    Ok(map([
        ("name", s(role)),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"),
                ),
                (
                    "dynamic_module_config",
                    map([
                        ("name", s(NATIVE_MODULE_NAME)),
                        // The module keeps process-wide state (key set, token cache, the fetched JWKS and token):
                        // never unload it when a listener update drops the last filter config.
                        ("do_not_close", b(true)),
                    ]),
                ),
                ("filter_name", s(role)),
                ("filter_config", plugin_json(config)?),
            ]),
        ),
    ]))
}

/// The filter in one of its roles.
fn wasm_filter(
    root_id: &str,
    service: &Service,
    config: &serde_json::Value,
    wasm: &WasmModule,
) -> Result<Value, String> {
    let failure = match service.sidecar.failure_policy {
        FailurePolicy::FailClosed => "FAIL_CLOSED",
        FailurePolicy::FailOpen => "FAIL_OPEN",
    };
    Ok(map([
        ("name", s(root_id)),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"),
                ),
                (
                    "config",
                    map([
                        ("name", s(root_id)),
                        ("root_id", s(root_id)),
                        ("failure_policy", s(failure)),
                        ("configuration", plugin_json(config)?),
                        (
                            "vm_config",
                            map([
                                ("vm_id", s("entragate")),
                                ("runtime", s("envoy.wasm.runtime.v8")),
                                (
                                    "code",
                                    map([(
                                        "local",
                                        map([("filename", s(wasm.reference.clone()))]),
                                    )]),
                                ),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
    ]))
}

fn router() -> Value {
    map([
        ("name", s("envoy.filters.http.router")),
        (
            "typed_config",
            map([(
                "@type",
                s("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"),
            )]),
        ),
    ])
}

fn route_to(cluster: &str) -> Value {
    map([
        ("match", map([("prefix", s("/"))])),
        ("route", map([("cluster", s(cluster))])),
    ])
}

fn listener(name: &str, address: &str, port: u16, hcm: Value, tls: Option<Value>) -> Value {
    let mut chain = map([(
        "filters",
        list(vec![map([
            ("name", s("envoy.filters.network.http_connection_manager")),
            ("typed_config", hcm),
        ])]),
    )]);
    if let Some(socket) = tls {
        yaml::insert(&mut chain, "transport_socket", socket);
    }
    map([
        ("name", s(name)),
        ("address", socket_address(address, port)),
        ("filter_chains", list(vec![chain])),
    ])
}

fn inbound_listener(
    policy: &MeshPolicy,
    service: &Service,
    config: &serde_json::Value,
    filter: &FilterModule,
) -> Result<Value, String> {
    let filter = match filter {
        FilterModule::Wasm(wasm) => wasm_filter(INBOUND_ROOT_ID, service, config, wasm)?,
        FilterModule::Native => native_filter(INBOUND_ROOT_ID, config)?,
    };
    let hcm = map([
        (
            "@type",
            s("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
        ),
        ("stat_prefix", s("inbound")),
        // Rules match literal paths: normalise first so `/a/../b`, `//b` and encoded slashes cannot sidestep them.
        ("normalize_path", b(true)),
        ("merge_slashes", b(true)),
        ("path_with_escaped_slashes_action", s("REJECT_REQUEST")),
        // Every decision, auditable from the access log (docs/configuration.md, "Audit").
        ("access_log", inbound_access_log()),
        (
            "route_config",
            map([
                ("name", s("inbound")),
                (
                    "virtual_hosts",
                    list(vec![map([
                        ("name", s(service.name.clone())),
                        ("domains", list(vec![s("*")])),
                        ("routes", list(vec![route_to("local_app")])),
                    ])]),
                ),
            ]),
        ),
        (
            "http_filters",
            list(vec![filter, router()]),
        ),
    ]);
    Ok(listener(
        "inbound",
        &service.sidecar.inbound_address,
        service.ports.inbound,
        hcm,
        transport::downstream(policy, service),
    ))
}

fn outbound_listener(
    policy: &MeshPolicy,
    service: &Service,
    config: &serde_json::Value,
    filter: &FilterModule,
) -> Result<Value, String> {
    let filter = match filter {
        FilterModule::Wasm(wasm) => wasm_filter(OUTBOUND_ROOT_ID, service, config, wasm)?,
        FilterModule::Native => native_filter(OUTBOUND_ROOT_ID, config)?,
    };
    let hosts: Vec<Value> = service
        .destinations
        .iter()
        .filter_map(|d| policy.service(d))
        .map(|callee| {
            map([
                ("name", s(callee.name.clone())),
                (
                    "domains",
                    list(vec![
                        s(callee.name.clone()),
                        s(format!("{}:*", callee.name)),
                    ]),
                ),
                ("routes", list(vec![route_to(&callee.cluster_name())])),
            ])
        })
        .collect();
    let hcm = map([
        (
            "@type",
            s("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
        ),
        ("stat_prefix", s("outbound")),
        ("route_config", map([("name", s("outbound")), ("virtual_hosts", list(hosts))])),
        (
            "http_filters",
            list(vec![filter, router()]),
        ),
    ]);
    Ok(listener(
        "outbound",
        "127.0.0.1",
        service.ports.outbound,
        hcm,
        None,
    ))
}

/// The `bootstrap agent` configuration file (TOML) of a calling service, matching its rendered sidecar.
/// `agent_key_file` is the key file the sidecar config was rendered with
/// (`render --agent-key-file`, else the policy's), so agent and Envoy agree.
pub fn agent_config(
    policy: &MeshPolicy,
    service: &Service,
    agent_key_file: &str,
) -> Option<String> {
    let identity = service.identity.as_ref()?;
    if !service.is_caller() {
        return None;
    }
    let q = |v: &str| serde_json::Value::String(v.to_string()).to_string();
    let scopes: Vec<String> = service
        .destinations
        .iter()
        .filter_map(|d| policy.service(d))
        .map(|c| q(&format!("{}={}", c.name, c.application.default_scope())))
        .collect();
    let mut text = format!(
        "# `bootstrap agent --config` file of `{}`, generated by `bootstrap render`; re-render, do not edit.\n",
        service.name
    );
    if let CallerCredential::Secret { secret_id } = &identity.credential {
        text.push_str(&format!("secret_id = {}\n", q(secret_id)));
    }
    text.push_str(&format!(
        "region = {}\nauthority = {}\nscopes = [{}]\nlisten = {}\nagent_key_file = {}\n",
        q(&identity.region),
        q(&policy.identity_provider().authority.url),
        scopes.join(", "),
        q(&service.sidecar.agent.to_string()),
        q(agent_key_file),
    ));
    // Secretless kinds: the app registration is named here, since no secret carries it.
    let app = format!(
        "client_id = {}\ntenant_id = {}\n",
        q(&service.application.client_id),
        q(&policy.identity_provider().tenant_id)
    );
    match &identity.credential {
        CallerCredential::Secret { .. } => {}
        CallerCredential::AwsFederation { audience } => text.push_str(&format!(
            "\n[credential]\nkind = \"aws-federation\"\n{app}audience = {}\n",
            q(audience)
        )),
        CallerCredential::KmsCertificate {
            key_id,
            certificate,
        } => text.push_str(&format!(
            "\n[credential]\nkind = \"kms-certificate\"\n{app}key_id = {}\ncertificate = {}\n",
            q(key_id),
            q(certificate)
        )),
    }
    Some(text)
}
