//! Rendering from the FinTech example: golden files for the Istio, Envoy Gateway and native Envoy output (regenerate with
//! `ENTRAGATE_BLESS=1`), checked structurally as well, and the plugin configurations the filter accepts.
//! That Envoy accepts the rendered bootstraps (with the real `.wasm`) is tested in `tests/tests/mesh_e2e.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use entragate_core::config::FilterPolicy;
use entragate_core::outbound::OutboundPolicy;
use entragate_mesh::policy::Service;
use entragate_mesh::render::envoy::{self, EnvoyOptions, FilterModule};
use entragate_mesh::render::envoy_gateway::{self, GatewayFilter, GatewayOptions, NativeProxy};
use entragate_mesh::render::istio::{self, KubeOptions};
use entragate_mesh::render::wasm::{sha256_hex, WasmModule};
use entragate_mesh::{self as mesh, MeshPolicy, Override};
use serde_yaml_ng::Value;
use std::path::PathBuf;
use support::{get, str_at};

const EXAMPLE: &str = include_str!("../../examples/fintech/mesh.yaml");
const BLESS_ENV: &str = "ENTRAGATE_BLESS";
/// A made-up image manifest digest: for `oci://` modules it is what goes into the output.
const OCI_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const AGENT_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn policy() -> MeshPolicy {
    mesh::from_str(EXAMPLE, "mesh.yaml", &[]).unwrap()
}

/// A stand-in module: only its hash (an `oci://` image: its digest) goes into the output.
fn module(reference: &str) -> WasmModule {
    if reference.starts_with("oci://") {
        return WasmModule::oci(reference, Some(OCI_DIGEST)).unwrap();
    }
    WasmModule {
        reference: reference.into(),
        sha256: sha256_hex(b"\0asm\x01\0\0\0"),
    }
}

/// Compares `actual` with `tests/golden/<name>`, or rewrites it when `ENTRAGATE_BLESS` is set.
fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os(BLESS_ENV).is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with {BLESS_ENV}=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the rendered output (run with {BLESS_ENV}=1 to accept):\n{actual}",
        path.display()
    );
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// The plugin configuration embedded in a resource, compiled by the filter.
fn compiled(config: &Value) -> FilterPolicy {
    let json = serde_json::to_vec(config).unwrap();
    FilterPolicy::from_json(&json).unwrap()
}

#[test]
fn istio_output_matches_the_golden_file_and_its_structure() {
    let policy = policy();
    let fraud = policy.service("fraud-detector").unwrap();
    let options = KubeOptions {
        namespace: "fintech".into(),
        wasm: module("oci://registry.example.com/entragate/filter:0.1.0"),
    };
    let text = istio::render(&policy, fraud, &options).unwrap();
    assert_eq!(
        text,
        istio::render(&policy, fraud, &options).unwrap(),
        "deterministic"
    );
    golden("fraud-detector.istio.yaml", &text);

    let docs = documents(&text);
    assert_eq!(docs.len(), 4);
    // The default transport is mtls: on Istio, the callee's pods refuse anything but Istio mTLS.
    let peer = &docs[3];
    assert_eq!(str_at(peer, "apiVersion"), "security.istio.io/v1");
    assert_eq!(str_at(peer, "kind"), "PeerAuthentication");
    assert_eq!(str_at(peer, "spec.mtls.mode"), "STRICT");
    assert_eq!(
        str_at(peer, "spec.selector.matchLabels.app"),
        "fraud-detector"
    );
    let plugin_doc = &docs[0];
    assert_eq!(
        str_at(plugin_doc, "apiVersion"),
        "extensions.istio.io/v1alpha1"
    );
    assert_eq!(str_at(plugin_doc, "kind"), "WasmPlugin");
    assert_eq!(str_at(plugin_doc, "metadata.namespace"), "fintech");
    assert_eq!(
        str_at(plugin_doc, "spec.selector.matchLabels.app"),
        "fraud-detector"
    );
    assert!(str_at(plugin_doc, "spec.url").starts_with("oci://"));
    // Istio compares `sha256` of an OCI module with the image's manifest digest (pkg/wasm/imagefetcher.go).
    assert_eq!(
        str_at(plugin_doc, "spec.sha256"),
        OCI_DIGEST.strip_prefix("sha256:").unwrap()
    );
    assert_eq!(str_at(plugin_doc, "spec.phase"), "AUTHN");
    assert_eq!(str_at(plugin_doc, "spec.failStrategy"), "FAIL_CLOSE");
    assert_eq!(str_at(plugin_doc, "spec.match.0.mode"), "SERVER");
    let config = get(plugin_doc, "spec.pluginConfig");
    // Istio names the cluster of a ServiceEntry port `outbound|<port>||<host>` (pilot/pkg/model/service.go,
    // BuildSubsetKey): the callouts go to port 80, where the sidecar originates TLS.
    assert_eq!(
        str_at(config, "jwks.cluster"),
        "outbound|80||login.microsoftonline.com"
    );
    let filter = compiled(config);
    let analyze = filter.routes.find("POST", "/fraud/analyze").unwrap();
    assert_eq!(analyze.name(), "analyze");
    assert!(
        filter.routes.find("POST", "/fraud/other").is_none(),
        "deny what no rule allows"
    );

    // Istio's TLS origination pattern (istio.io/latest/docs/tasks/traffic-management/egress/egress-tls-origination):
    // port 80 HTTP with targetPort 443, `tls.mode: SIMPLE` on port 80 only. TLS origination on 443 would wrap
    // the workloads' own HTTPS (MSAL, SDKs, the agent) a second time.
    let entry = &docs[1];
    assert_eq!(str_at(entry, "apiVersion"), "networking.istio.io/v1");
    assert_eq!(str_at(entry, "kind"), "ServiceEntry");
    assert_eq!(str_at(entry, "spec.hosts.0"), "login.microsoftonline.com");
    assert_eq!(get(entry, "spec.ports.0.number").as_u64(), Some(80));
    assert_eq!(str_at(entry, "spec.ports.0.protocol"), "HTTP");
    assert_eq!(get(entry, "spec.ports.0.targetPort").as_u64(), Some(443));
    assert_eq!(get(entry, "spec.ports.1.number").as_u64(), Some(443));
    assert_eq!(str_at(entry, "spec.ports.1.protocol"), "TLS");
    assert_eq!(str_at(entry, "spec.location"), "MESH_EXTERNAL");
    let rule = &docs[2];
    assert_eq!(str_at(rule, "kind"), "DestinationRule");
    let settings = get(rule, "spec.trafficPolicy.portLevelSettings")
        .as_sequence()
        .unwrap();
    assert_eq!(settings.len(), 1, "TLS is originated on port 80 only");
    assert_eq!(get(&settings[0], "port.number").as_u64(), Some(80));
    assert_eq!(str_at(&settings[0], "tls.mode"), "SIMPLE");
    assert_eq!(str_at(&settings[0], "tls.sni"), "login.microsoftonline.com");
    // Without subjectAltNames Istio accepts any publicly trusted certificate for the JWKS host
    // (networking/v1 ClientTLSSettings.subject_alt_names).
    assert_eq!(
        str_at(&settings[0], "tls.subjectAltNames.0"),
        "login.microsoftonline.com"
    );
    // Both scoped to the namespace (`exportTo: ["."]`): other namespaces' traffic is untouched.
    for doc in [entry, rule] {
        let export: Vec<&str> = get(doc, "spec.exportTo")
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(export, ["."], "{doc:?}");
    }

    // A plain path becomes a file:// URL; a caller-only service has no istio output.
    let local = KubeOptions {
        namespace: "fintech".into(),
        wasm: module("/opt/entragate/entragate_filter.wasm"),
    };
    let text = istio::render(&policy, fraud, &local).unwrap();
    assert_eq!(
        str_at(&documents(&text)[0], "spec.url"),
        "file:///opt/entragate/entragate_filter.wasm"
    );
    let caller = policy.service("transaction-processor").unwrap();
    assert!(istio::render(&policy, caller, &local)
        .unwrap_err()
        .contains("callee"));
}

#[test]
fn envoy_gateway_output_matches_the_golden_file_and_its_structure() {
    let policy = policy();
    let fraud = policy.service("fraud-detector").unwrap();
    let options = GatewayOptions {
        namespace: "fintech".into(),
        filter: GatewayFilter::Wasm(module(
            "https://artifacts.example.com/entragate/0.1.0/entragate_filter.wasm",
        )),
        gateway: "eg".into(),
        gateway_namespace: "envoy-gateway-system".into(),
    };
    let text = envoy_gateway::render(&policy, fraud, &options).unwrap();
    golden("fraud-detector.envoy-gateway.yaml", &text);

    let docs = documents(&text);
    // The extension, the JWKS patch and (mtls, the example's default) the listener's ClientTrafficPolicy,
    // checked in mesh_transport.rs.
    assert_eq!(docs.len(), 3);
    assert_eq!(str_at(&docs[2], "kind"), "ClientTrafficPolicy");
    let policy_doc = &docs[0];
    assert_eq!(
        str_at(policy_doc, "apiVersion"),
        "gateway.envoyproxy.io/v1alpha1"
    );
    assert_eq!(str_at(policy_doc, "kind"), "EnvoyExtensionPolicy");
    assert_eq!(str_at(policy_doc, "spec.targetRefs.0.kind"), "HTTPRoute");
    assert_eq!(
        str_at(policy_doc, "spec.targetRefs.0.name"),
        "fraud-detector"
    );
    let wasm = get(policy_doc, "spec.wasm.0");
    assert_eq!(str_at(wasm, "name"), "entragate");
    assert_eq!(str_at(wasm, "rootID"), "entragate");
    assert_eq!(str_at(wasm, "code.type"), "HTTP");
    assert_eq!(
        str_at(wasm, "code.http.sha256"),
        module("https://artifacts.example.com/entragate/0.1.0/entragate_filter.wasm").sha256
    );
    assert_eq!(get(wasm, "failOpen").as_bool(), Some(false));
    let filter = compiled(get(wasm, "config"));
    assert_eq!(filter.realm, "fraud-detector");
    assert_eq!(str_at(policy_doc, "metadata.namespace"), "fintech");
    assert_eq!(
        str_at(wasm, "config.jwks.cluster"),
        "entragate_jwks_fraud_detector"
    );
    let patch = &docs[1];
    assert_eq!(str_at(patch, "kind"), "EnvoyPatchPolicy");
    // envoyproxy/gateway api/v1alpha1/envoypatchpolicy_types.go: "This Policy and the TargetRef MUST be in
    // the same namespace for this Policy to have effect" -- the Gateway's namespace, not the route's.
    assert_eq!(str_at(patch, "metadata.namespace"), "envoy-gateway-system");
    assert_eq!(str_at(patch, "spec.targetRef.kind"), "Gateway");
    assert_eq!(str_at(patch, "spec.targetRef.name"), "eg");
    // Enum values from the same file: type JSONPatch, a Cluster resource, op add.
    assert_eq!(str_at(patch, "spec.type"), "JSONPatch");
    assert_eq!(
        str_at(patch, "spec.jsonPatches.0.type"),
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    assert_eq!(str_at(patch, "spec.jsonPatches.0.operation.op"), "add");
    assert_eq!(
        str_at(patch, "spec.jsonPatches.0.name"),
        "entragate_jwks_fraud_detector"
    );
    assert_eq!(
        str_at(patch, "spec.jsonPatches.0.operation.value.name"),
        "entragate_jwks_fraud_detector",
        "the cluster the filter calls out to is the one the patch adds"
    );
    assert_eq!(
        str_at(
            patch,
            "spec.jsonPatches.0.operation.value.transport_socket.typed_config.sni"
        ),
        "login.microsoftonline.com"
    );

    // OCI images are `type: Image` whose sha256 "must match the digest of the OCI image"
    // (api/v1alpha1/wasm_types.go); a local file is refused (Envoy Gateway fetches modules itself).
    let mut image = options.clone();
    image.filter = GatewayFilter::Wasm(module("oci://registry.example.com/entragate/filter:0.1.0"));
    let text = envoy_gateway::render(&policy, fraud, &image).unwrap();
    let wasm = get(&documents(&text)[0], "spec.wasm.0").clone();
    assert_eq!(str_at(&wasm, "code.type"), "Image");
    assert_eq!(
        str_at(&wasm, "code.image.url"),
        "registry.example.com/entragate/filter:0.1.0"
    );
    let sha = str_at(&wasm, "code.image.sha256");
    assert_eq!(sha, OCI_DIGEST.strip_prefix("sha256:").unwrap());
    // The CRD's pattern for it (wasm_types.go): `^[a-f0-9]{64}$`.
    assert!(sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    let mut file = options;
    file.filter = GatewayFilter::Wasm(module("/opt/entragate_filter.wasm"));
    assert!(envoy_gateway::render(&policy, fraud, &file)
        .unwrap_err()
        .contains("HTTP(S) or from an OCI"));
}

#[test]
fn envoy_bootstraps_carry_both_roles_and_compile_in_the_filter() {
    let policy = policy();
    let wasm = module("/opt/entragate/entragate_filter.wasm");
    let fraud = policy.service("fraud-detector").unwrap();
    let options = EnvoyOptions {
        filter: FilterModule::Wasm(wasm.clone()),
        agent_key: None,
    };
    let text = envoy::render(&policy, fraud, &options).unwrap();
    assert!(text.contains(&format!("# entragate_filter.wasm sha256: {}", wasm.sha256)));
    let doc = &documents(&text)[0];
    assert_eq!(
        str_at(doc, "admin.address.socket_address.address"),
        "127.0.0.1"
    );
    let inbound = get(doc, "static_resources.listeners.0");
    assert_eq!(str_at(inbound, "name"), "inbound");
    let hcm = get(inbound, "filter_chains.0.filters.0.typed_config");
    assert_eq!(get(hcm, "normalize_path").as_bool(), Some(true));
    let wasm_config = get(hcm, "http_filters.0.typed_config.config");
    assert_eq!(str_at(wasm_config, "root_id"), "entragate");
    assert_eq!(str_at(wasm_config, "failure_policy"), "FAIL_CLOSED");
    assert_eq!(
        str_at(wasm_config, "vm_config.code.local.filename"),
        wasm.reference
    );
    let json = str_at(wasm_config, "configuration.value");
    FilterPolicy::from_json(json.as_bytes()).unwrap();
    let clusters: Vec<&str> = get(doc, "static_resources.clusters")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| str_at(c, "name"))
        .collect();
    assert_eq!(clusters, ["local_app", "entra_idp"]);
    let idp = get(doc, "static_resources.clusters.1");
    assert_eq!(
        str_at(idp, "transport_socket.typed_config.sni"),
        "login.microsoftonline.com"
    );

    // The caller: outbound listener, a cluster per callee, the agent cluster and the agent key.
    let tp = policy.service("transaction-processor").unwrap();
    assert!(envoy::render(&policy, tp, &options)
        .unwrap_err()
        .contains("agent key"));
    let with_key = EnvoyOptions {
        filter: FilterModule::Wasm(wasm),
        agent_key: Some(AGENT_KEY.into()),
    };
    let text = envoy::render(&policy, tp, &with_key).unwrap();
    let doc = &documents(&text)[0];
    let outbound = get(doc, "static_resources.listeners.0");
    assert_eq!(str_at(outbound, "name"), "outbound");
    assert_eq!(
        str_at(outbound, "address.socket_address.address"),
        "127.0.0.1"
    );
    let hcm = get(outbound, "filter_chains.0.filters.0.typed_config");
    assert_eq!(
        str_at(hcm, "route_config.virtual_hosts.0.domains.0"),
        "fraud-detector"
    );
    assert_eq!(
        str_at(hcm, "route_config.virtual_hosts.0.routes.0.route.cluster"),
        "fraud_detector"
    );
    let config = get(hcm, "http_filters.0.typed_config.config");
    assert_eq!(str_at(config, "root_id"), "entragate_outbound");
    let outbound_policy =
        OutboundPolicy::from_json(str_at(config, "configuration.value").as_bytes()).unwrap();
    assert_eq!(
        outbound_policy.select("fraud-detector", Some("fraud_detector")),
        Some(0)
    );
    let clusters: Vec<&str> = get(doc, "static_resources.clusters")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| str_at(c, "name"))
        .collect();
    assert_eq!(clusters, ["fraud_detector", "entragate_agent"]);
    assert_eq!(
        get(doc, "static_resources.clusters.1.load_assignment.endpoints.0.lb_endpoints.0.endpoint.address.socket_address.port_value")
            .as_u64(),
        Some(15901)
    );

    let toml = envoy::agent_config(&policy, tp, "/run/entragate/agent-key").unwrap();
    assert!(
        toml.contains("secret_id = \"fintech/transaction-processor/identity\""),
        "{toml}"
    );
    assert!(
        toml.contains("scopes = [\"fraud-detector=api://fintech-fraud-detector/.default\"]"),
        "{toml}"
    );
    assert!(envoy::agent_config(&policy, fraud, "/run/entragate/agent-key").is_none());
}

/// Two callees behind one Gateway: each patch policy adds its own cluster, so Envoy never receives two
/// clusters of the same name (it rejects duplicate cluster names in a CDS update), and each filter uses its own.
#[test]
fn envoy_gateway_clusters_are_unique_per_callee() {
    let two_callees = EXAMPLE.replace(
        "  # A caller. Its sidecar attaches",
        "  ledger:\n    application:\n      client_id: 0f0e0d0c-0b0a-4908-8706-050403020100\n      app_roles: [Ledger.Write]\n    ports: { inbound: 15106, app: 8180, admin: 15100 }\n    rules:\n      - name: write\n        path: /ledger\n        methods: [POST]\n        roles: [Ledger.Write]\n        allowed_callers: [transaction-processor]\n\n  # A caller. Its sidecar attaches",
    );
    let policy = mesh::from_str(&two_callees, "mesh.yaml", &[]).unwrap();
    let options = GatewayOptions {
        namespace: "fintech".into(),
        filter: GatewayFilter::Wasm(module("oci://registry.example.com/entragate/filter:0.1.0")),
        gateway: "eg".into(),
        gateway_namespace: "envoy-gateway-system".into(),
    };
    let mut clusters = Vec::new();
    let mut policies = Vec::new();
    for name in ["fraud-detector", "ledger"] {
        let text = envoy_gateway::render(&policy, policy.service(name).unwrap(), &options).unwrap();
        let docs = documents(&text);
        let cluster = str_at(&docs[1], "spec.jsonPatches.0.operation.value.name").to_string();
        assert_eq!(str_at(&docs[0], "spec.wasm.0.config.jwks.cluster"), cluster);
        clusters.push(cluster);
        policies.push(str_at(&docs[1], "metadata.name").to_string());
    }
    assert_ne!(clusters[0], clusters[1], "{clusters:?}");
    assert_ne!(policies[0], policies[1], "{policies:?}");
}

/// An `oci://` module's sha256 is the image digest, given or pinned, never a file's hash.
#[test]
fn oci_modules_carry_the_image_digest() {
    let hex = OCI_DIGEST.strip_prefix("sha256:").unwrap();
    let given = WasmModule::oci("oci://registry.example.com/f:0.1.0", Some(OCI_DIGEST)).unwrap();
    assert_eq!(given.sha256, hex);
    let pinned = format!("oci://registry.example.com/f@{OCI_DIGEST}");
    assert_eq!(WasmModule::oci(&pinned, None).unwrap().sha256, hex);
    assert_eq!(WasmModule::oci(&pinned, Some(hex)).unwrap().sha256, hex);
    let other = format!("sha256:{}", "2".repeat(64));
    assert!(WasmModule::oci(&pinned, Some(&other))
        .unwrap_err()
        .contains("differs"));
    assert!(WasmModule::oci("oci://registry.example.com/f:0.1.0", None)
        .unwrap_err()
        .contains("--wasm-digest"));
    assert!(WasmModule::oci("oci://r/f:1", Some("sha256:abc"))
        .unwrap_err()
        .contains("--wasm-digest"));
    let file = std::env::temp_dir().join(format!("entragate-oci-{}.wasm", std::process::id()));
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    let refused = WasmModule::from_file(&file, Some("oci://registry.example.com/f:0.1.0"));
    std::fs::remove_file(&file).unwrap();
    assert!(refused.unwrap_err().contains("image digest"));
}

fn with(sets: &[&str]) -> MeshPolicy {
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    mesh::from_str(EXAMPLE, "mesh.yaml", &overrides).unwrap()
}

/// The plugin JSON of `service`'s first listener rendered with the wasm filter: what every native rendering
/// of the same policy must carry.
fn wasm_plugin_json(policy: &MeshPolicy, service: &Service, agent_key: Option<&str>) -> String {
    let wasm = EnvoyOptions {
        filter: FilterModule::Wasm(module("/opt/entragate_filter.wasm")),
        agent_key: agent_key.map(str::to_string),
    };
    let text = envoy::render(policy, service, &wasm).unwrap();
    str_at(
        get(&documents(&text)[0], "static_resources.listeners.0"),
        "filter_chains.0.filters.0.typed_config.http_filters.0.typed_config.config.configuration.value",
    )
    .to_string()
}

const NATIVE: EnvoyOptions = EnvoyOptions {
    filter: FilterModule::Native,
    agent_key: None,
};

/// `--filter native`: the callee's filter is the dynamic module, found by name through the search path
/// the header names, with the same plugin JSON as the wasm filter's configuration.
#[test]
fn a_native_callee_sidecar_loads_the_dynamic_module_with_the_same_plugin_json() {
    let policy = with(&["transport.mode=plaintext"]);
    let fraud = policy.service("fraud-detector").unwrap();
    let text = envoy::render(&policy, fraud, &NATIVE).unwrap();
    assert!(text.contains("ENVOY_DYNAMIC_MODULES_SEARCH_PATH"), "{text}");
    assert!(text.contains("libentragate_native.so"), "{text}");
    assert!(!text.contains("filters.http.wasm"), "{text}");
    assert!(!text.contains("vm_config"), "{text}");
    let doc = &documents(&text)[0];
    let filter = get(
        doc,
        "static_resources.listeners.0.filter_chains.0.filters.0.typed_config.http_filters.0.typed_config",
    );
    assert_eq!(
        str_at(filter, "@type"),
        "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
    );
    assert_eq!(
        str_at(filter, "dynamic_module_config.name"),
        envoy::NATIVE_MODULE_NAME
    );
    assert_eq!(
        get(filter, "dynamic_module_config.do_not_close").as_bool(),
        Some(true)
    );
    assert_eq!(str_at(filter, "filter_name"), "entragate");
    let json = str_at(filter, "filter_config.value");

    // The same plugin JSON as the wasm rendering of the same policy.
    assert_eq!(json, wasm_plugin_json(&policy, fraud, None));
    FilterPolicy::from_json(json.as_bytes()).unwrap();

    // FAIL_OPEN is a wasm VM setting: the module fails closed, and the header says so.
    assert!(!text.contains("FAIL_OPEN"), "{text}");
    let open = with(&[
        "transport.mode=plaintext",
        "services.fraud-detector.sidecar.failure_policy=FAIL_OPEN",
    ]);
    let fraud = open.service("fraud-detector").unwrap();
    let text = envoy::render(&open, fraud, &NATIVE).unwrap();
    assert!(text.contains("FAIL_OPEN does not apply"), "{text}");
}

/// Rules bound to the workload (the example's default mtls binds the fraud detector's token rules) render
/// for the native module exactly as for wasm: the same `workload_binding` in the same plugin JSON, behind
/// the same mTLS listener. The module reads the peer certificate's SANs like the wasm filter
/// (`tests/tests/mesh_mtls.rs` runs the replay test against both).
#[test]
fn a_native_callee_keeps_the_workload_binding_and_matches_the_golden_file() {
    let policy = policy();
    let fraud = policy.service("fraud-detector").unwrap();
    let bound: Vec<&str> = fraud
        .rules
        .iter()
        .filter(|r| r.bind_to_workload)
        .map(|r| r.name.as_str())
        .collect();
    assert!(!bound.is_empty());
    let text = envoy::render(&policy, fraud, &NATIVE).unwrap();
    golden("fraud-detector.native.envoy.yaml", &text);

    let doc = &documents(&text)[0];
    let listener = get(doc, "static_resources.listeners.0");
    let json = str_at(
        listener,
        "filter_chains.0.filters.0.typed_config.http_filters.0.typed_config.filter_config.value",
    );
    let config: serde_json::Value = serde_json::from_str(json).unwrap();
    let rules: Vec<&str> = config["workload_binding"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(rules, bound);
    let workloads = config["workload_binding"]["workloads"].as_object().unwrap();
    let tp = policy.service("transaction-processor").unwrap();
    assert!(workloads.contains_key(tp.workload.value()), "{workloads:?}");
    FilterPolicy::from_json(json.as_bytes()).unwrap();
    // The peer certificate is required and checked against the mesh CA, as for wasm.
    let tls = get(listener, "filter_chains.0.transport_socket.typed_config");
    assert_eq!(
        get(tls, "require_client_certificate").as_bool(),
        Some(true),
        "{text}"
    );

    assert_eq!(json, wasm_plugin_json(&policy, fraud, None));
}

/// `--filter native` for a caller: the module in its outbound role (`filter_name: entragate_outbound`, as
/// the wasm filter's `root_id`), with the same outbound plugin JSON as the wasm rendering.
#[test]
fn a_native_caller_sidecar_loads_the_module_in_its_outbound_role() {
    let plain = with(&["transport.mode=plaintext"]);
    let tp = plain.service("transaction-processor").unwrap();
    let native = EnvoyOptions {
        filter: FilterModule::Native,
        agent_key: Some(AGENT_KEY.into()),
    };
    let text = envoy::render(&plain, tp, &native).unwrap();
    assert!(!text.contains("filters.http.wasm"), "{text}");
    assert!(text.contains("Carries the agent key"), "{text}");
    let doc = &documents(&text)[0];
    let outbound = get(doc, "static_resources.listeners.0");
    assert_eq!(str_at(outbound, "name"), "outbound");
    let filter = get(
        outbound,
        "filter_chains.0.filters.0.typed_config.http_filters.0.typed_config",
    );
    assert_eq!(
        str_at(filter, "@type"),
        "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
    );
    assert_eq!(
        str_at(filter, "dynamic_module_config.name"),
        envoy::NATIVE_MODULE_NAME
    );
    assert_eq!(str_at(filter, "filter_name"), "entragate_outbound");
    let json = str_at(filter, "filter_config.value");

    assert_eq!(json, wasm_plugin_json(&plain, tp, Some(AGENT_KEY)));
    let outbound_policy = OutboundPolicy::from_json(json.as_bytes()).unwrap();
    assert_eq!(
        outbound_policy.select("fraud-detector", Some("fraud_detector")),
        Some(0)
    );

    // The whole caller sidecar under the example's mtls (the callee's SAN checked upstream).
    let policy = policy();
    let tp = policy.service("transaction-processor").unwrap();
    let text = envoy::render(&policy, tp, &native).unwrap();
    golden("transaction-processor.native.envoy.yaml", &text);
}

fn native_gateway(module_image: Option<&str>) -> GatewayOptions {
    GatewayOptions {
        namespace: "fintech".into(),
        filter: GatewayFilter::Native(NativeProxy {
            envoy_image: "envoyproxy/envoy:v1.40.0".into(),
            module_image: module_image.map(str::to_string),
        }),
        gateway: "eg".into(),
        gateway_namespace: "envoy-gateway-system".into(),
    }
}

/// The `EnvoyProxy` allow-list entries' names and the `EnvoyExtensionPolicy` modules' names of a rendering.
fn module_names(docs: &[Value]) -> (Vec<String>, Vec<String>) {
    let names = |kind: &str, path: &str| -> Vec<String> {
        docs.iter()
            .filter(|d| str_at(d, "kind") == kind)
            .flat_map(|d| get(d, path).as_sequence().cloned().unwrap_or_default())
            .map(|entry| str_at(&entry, "name").to_string())
            .collect()
    };
    (
        names("EnvoyProxy", "spec.dynamicModules"),
        names("EnvoyExtensionPolicy", "spec.dynamicModule"),
    )
}

/// `--format envoy-gateway --filter native`: a `dynamicModule` extension with the same plugin JSON as the
/// wasm extension (Envoy Gateway hands `config` to the module as JSON in a `StringValue`, the sidecar's
/// `filter_config`), the callee role by `filterName`, and the `EnvoyProxy` that allow-lists the module under
/// the name the policy uses and runs Envoy 1.40, with the version caveat at the top.
#[test]
fn a_native_envoy_gateway_callee_allow_lists_the_module_it_uses_and_matches_the_golden_file() {
    let policy = policy();
    let fraud = policy.service("fraud-detector").unwrap();
    let options = native_gateway(Some("registry.example.com/entragate/native:0.1.0"));
    let text = envoy_gateway::render(&policy, fraud, &options).unwrap();
    golden("fraud-detector.native.envoy-gateway.yaml", &text);

    // The caveat, before the first document.
    let header: String = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "ABI v0.2.0, built for Envoy 1.40; runs on Envoy 1.40 and 1.41",
        "Envoy Gateway >= 1.8",
        "Envoy Gateway 1.9 runs Envoy 1.39",
        "envoyproxy/envoy:v1.40.0",
        "spec.infrastructure.parametersRef",
        "Kubernetes >= 1.35",
    ] {
        assert!(
            header.contains(needle),
            "{needle:?} not in the header:\n{header}"
        );
    }

    let docs = documents(&text);
    let kinds: Vec<&str> = docs.iter().map(|d| str_at(d, "kind")).collect();
    assert_eq!(
        kinds,
        [
            "EnvoyExtensionPolicy",
            "EnvoyPatchPolicy",
            "ClientTrafficPolicy",
            "EnvoyProxy"
        ]
    );
    let extension = &docs[0];
    assert!(
        get(extension, "spec.wasm").is_null(),
        "no wasm beside the module"
    );
    let module = get(extension, "spec.dynamicModule.0");
    assert_eq!(str_at(module, "name"), envoy_gateway::GATEWAY_MODULE_NAME);
    // The module chooses the callee role by filter_name, as the sidecar's `filter_name: entragate`.
    assert_eq!(str_at(module, "filterName"), "entragate");
    assert!(get(module, "failOpen").is_null() && get(module, "terminalFilter").is_null());
    let filter = compiled(get(module, "config"));
    assert_eq!(filter.realm, "fraud-detector");
    // The Gateway terminates the caller's mTLS: the binding is kept, as for wasm.
    assert!(get(module, "config.workload_binding.workloads").is_mapping());

    // The same plugin JSON as the wasm extension of the same policy.
    let wasm = GatewayOptions {
        filter: GatewayFilter::Wasm(module_for_gateway()),
        ..options.clone()
    };
    let wasm_docs = documents(&envoy_gateway::render(&policy, fraud, &wasm).unwrap());
    assert_eq!(
        get(module, "config"),
        get(&wasm_docs[0], "spec.wasm.0.config")
    );
    // The JWKS cluster and the listener's TLS do not depend on the filter build.
    assert_eq!(docs[1], wasm_docs[1]);
    assert_eq!(docs[2], wasm_docs[2]);

    let proxy = &docs[3];
    assert_eq!(str_at(proxy, "metadata.namespace"), "envoy-gateway-system");
    assert_eq!(
        str_at(proxy, "metadata.name"),
        envoy_gateway::NATIVE_ENVOY_PROXY
    );
    assert_eq!(str_at(proxy, "spec.provider.type"), "Kubernetes");
    let deployment = get(proxy, "spec.provider.kubernetes.envoyDeployment");
    assert_eq!(
        str_at(deployment, "container.image"),
        "envoyproxy/envoy:v1.40.0"
    );
    let entry = get(proxy, "spec.dynamicModules.0");
    assert_eq!(str_at(entry, "source.type"), "Local");
    assert_eq!(
        str_at(entry, "source.local.path"),
        "/etc/envoy/modules/libentragate_native.so"
    );
    assert_eq!(get(entry, "doNotClose").as_bool(), Some(true));
    // The image volume is mounted where the allow-list entry says the module is.
    assert_eq!(
        str_at(deployment, "pod.volumes.0.image.reference"),
        "registry.example.com/entragate/native:0.1.0"
    );
    let volume = str_at(deployment, "pod.volumes.0.name");
    let mount = get(deployment, "container.volumeMounts.0");
    assert_eq!(str_at(mount, "name"), volume);
    assert!(
        str_at(entry, "source.local.path").starts_with(&format!("{}/", str_at(mount, "mountPath")))
    );
    assert_eq!(get(mount, "readOnly").as_bool(), Some(true));

    // Without a module image: no volume, and the header says where the Envoy image must hold the module.
    let text = envoy_gateway::render(&policy, fraud, &native_gateway(None)).unwrap();
    let docs = documents(&text);
    let deployment = get(&docs[3], "spec.provider.kubernetes.envoyDeployment");
    assert!(
        get(deployment, "pod").is_null() && get(deployment, "container.volumeMounts").is_null()
    );
    assert!(
        text.contains("/etc/envoy/modules/libentragate_native.so must exist in the Envoy image"),
        "{text}"
    );
    // The dynamicModule API has no failOpen: a FAIL_OPEN policy renders fail closed, and the header says so.
    assert!(!text.contains("FAIL_OPEN"), "{text}");
    let open = with(&["services.fraud-detector.sidecar.failure_policy=FAIL_OPEN"]);
    let text = envoy_gateway::render(
        &open,
        open.service("fraud-detector").unwrap(),
        &native_gateway(None),
    )
    .unwrap();
    assert!(text.contains("FAIL_OPEN does not apply"), "{text}");
}

fn module_for_gateway() -> WasmModule {
    module("https://artifacts.example.com/entragate/0.1.0/entragate_filter.wasm")
}

/// Envoy Gateway rejects an `EnvoyExtensionPolicy` whose module is not in the `EnvoyProxy`'s allow-list
/// (`internal/gatewayapi/envoyextensionpolicy.go`: "is not registered in the EnvoyProxy dynamicModules
/// allowlist"): every module the policy names is allow-listed, in every mode and for every callee, and the
/// name fits the CRD's pattern.
#[test]
fn every_module_the_native_gateway_policy_names_is_in_the_envoy_proxy_allow_list() {
    for mode in ["mtls", "tls", "plaintext"] {
        let policy = with(&[&format!("transport.mode={mode}")]);
        for service in policy.services().iter().filter(|s| s.is_callee()) {
            for image in [None, Some("registry.example.com/entragate/native:0.1.0")] {
                let text = envoy_gateway::render(&policy, service, &native_gateway(image)).unwrap();
                let (allowed, used) = module_names(&documents(&text));
                assert!(!used.is_empty(), "{text}");
                for name in &used {
                    assert!(
                        allowed.contains(name),
                        "`{name}` is not allow-listed: {allowed:?}"
                    );
                    // dynamic_module_types.go: `^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`, 1..=253.
                    assert!((1..=253).contains(&name.len()));
                    assert!(name
                        .bytes()
                        .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-')));
                    assert!(!name.starts_with(['.', '-']) && !name.ends_with(['.', '-']));
                }
            }
        }
    }
    // The check itself bites: a policy naming another module is caught.
    let policy = policy();
    let fraud = policy.service("fraud-detector").unwrap();
    let text = envoy_gateway::render(&policy, fraud, &native_gateway(None)).unwrap();
    let renamed = text.replace(
        &format!(
            "- name: {}\n    filterName",
            envoy_gateway::GATEWAY_MODULE_NAME
        ),
        "- name: another-module\n    filterName",
    );
    assert_ne!(renamed, text, "the rename must hit the policy's entry");
    let (allowed, used) = module_names(&documents(&renamed));
    assert!(used.iter().any(|n| !allowed.contains(n)));
}
