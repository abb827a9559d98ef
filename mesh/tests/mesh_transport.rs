//! `transport` in mesh.yaml: parsing and validation (errors name the field), and what the Envoy renderer makes
//! of each mode. That real Envoys enforce it is tested in `tests/tests/mesh_mtls.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use entragate_mesh::policy::{TransportMode, WorkloadIdentity};
use entragate_mesh::render::envoy::{self, EnvoyOptions, FilterModule};
use entragate_mesh::render::envoy_gateway::{self, GatewayFilter, GatewayOptions};
use entragate_mesh::render::transport;
use entragate_mesh::render::wasm::{sha256_hex, WasmModule};
use entragate_mesh::{self as mesh, MeshPolicy, Override};
use serde_yaml_ng::Value;
use support::{get, str_at};

const EXAMPLE: &str = include_str!("../../examples/fintech/mesh.yaml");
const AGENT_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn with(sets: &[&str]) -> Result<MeshPolicy, String> {
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    mesh::from_str(EXAMPLE, "mesh.yaml", &overrides).map_err(|e| e.lines().join("\n"))
}

fn render(policy: &MeshPolicy, service: &str) -> Value {
    let options = EnvoyOptions {
        filter: FilterModule::Wasm(WasmModule {
            reference: "/opt/entragate_filter.wasm".into(),
            sha256: sha256_hex(b"\0asm\x01\0\0\0"),
        }),
        agent_key: Some(AGENT_KEY.into()),
    };
    let text = envoy::render(policy, policy.service(service).unwrap(), &options).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn cluster<'a>(doc: &'a Value, name: &str) -> &'a Value {
    get(doc, "static_resources.clusters")
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| str_at(c, "name") == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

#[test]
fn the_default_is_mtls_with_spiffe_identities_and_every_token_rule_bound() {
    let policy = with(&[]).unwrap();
    assert_eq!(policy.transport().mode, TransportMode::Mtls);
    assert_eq!(
        policy.service("transaction-processor").unwrap().workload,
        WorkloadIdentity::Uri("spiffe://cluster.local/ns/default/sa/transaction-processor".into())
    );
    let fraud = policy.service("fraud-detector").unwrap();
    let bound: Vec<(&str, bool)> = fraud
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.bind_to_workload))
        .collect();
    // The anonymous health probe carries no token: nothing to bind.
    assert_eq!(
        bound,
        [("health", false), ("analyze", true), ("reports", true)]
    );
    assert!(policy
        .warnings()
        .iter()
        .all(|w| !w.to_string().contains("transport")));
}

#[test]
fn mistakes_in_transport_are_refused_with_the_field_named() {
    // Shape errors come from the parser, located in the file.
    for (yaml, expected) in [
        ("transport:\n  mode: quic\n", "unknown variant `quic`"),
        ("transport:\n  modes: mtls\n", "unknown field `modes`"),
    ] {
        let text = format!("{EXAMPLE}\n{yaml}");
        let error = mesh::from_str(&text, "mesh.yaml", &[])
            .unwrap_err()
            .lines()
            .join("\n");
        let line = EXAMPLE.lines().count() + 3;
        assert!(error.contains(expected), "{error}");
        assert!(error.contains(&format!("mesh.yaml:{line}:")), "{error}");
    }
    let cases: [(&[&str], &str); 4] = [
        (&["transport.trust_domain=Bad Domain"], "transport.trust_domain"),
        (&["transport.certificates=relative/dir"], "transport.certificates"),
        (
            &["services.reporting.workload.uri=spiffe://cluster.local/ns/default/sa/transaction-processor"],
            "services.reporting.workload",
        ),
        (
            &[
                "services.reporting.workload.uri=spiffe://a/b",
                "services.reporting.workload.dns=reporting.local",
            ],
            "services.reporting.workload",
        ),
    ];
    for (sets, field) in cases {
        let error = with(sets).expect_err(&format!("{sets:?} accepted"));
        assert!(error.contains(field), "{sets:?}: `{field}` not in {error}");
    }
    // `--set` does not index lists: these edit the example's text.
    let bind = |anchor: &str, sets: &[&str]| {
        let text = EXAMPLE.replacen(
            anchor,
            &format!("{anchor}\n        bind_to_workload: true"),
            1,
        );
        assert_ne!(text, EXAMPLE, "{anchor} not in the example");
        let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        mesh::from_str(&text, "mesh.yaml", &overrides).map_err(|e| e.lines().join("\n"))
    };
    let analyze = "allowed_callers: [transaction-processor]";
    let error = bind(analyze, &["transport.mode=tls"]).unwrap_err();
    assert!(
        error.contains(
            "services.fraud-detector.rules[1].bind_to_workload: needs transport.mode mtls"
        ),
        "{error}"
    );
    assert!(bind(analyze, &[]).is_ok());
    let error = bind("anonymous: true", &[]).unwrap_err();
    assert!(
        error.contains("services.fraud-detector.rules[0].bind_to_workload")
            && error.contains("anonymous"),
        "{error}"
    );
}

#[test]
fn plaintext_is_a_warning_and_renders_no_tls() {
    let policy = with(&["transport.mode=plaintext"]).unwrap();
    assert!(policy
        .warnings()
        .iter()
        .any(|w| w.to_string().contains("transport.mode") && w.to_string().contains("clear")));
    assert!(policy
        .service("fraud-detector")
        .unwrap()
        .rules
        .iter()
        .all(|r| !r.bind_to_workload));
    for service in ["fraud-detector", "transaction-processor"] {
        let text = serde_yaml_ng::to_string(&render(&policy, service)).unwrap();
        assert!(
            !text.contains("transport_sockets.tls.v3.Downstream"),
            "{text}"
        );
        assert!(!text.contains("sds_config"), "{text}");
    }
}

#[test]
fn mtls_sidecars_verify_each_other_by_workload_identity_through_file_sds() {
    let policy = with(&["services.fraud-detector.sidecar.certificates=/certs/fd/"]).unwrap();
    let fraud = render(&policy, "fraud-detector");
    let tls = get(
        &fraud,
        "static_resources.listeners.0.filter_chains.0.transport_socket.typed_config",
    );
    assert!(str_at(tls, "@type").ends_with("DownstreamTlsContext"));
    assert_eq!(get(tls, "require_client_certificate").as_bool(), Some(true));
    let common = get(tls, "common_tls_context");
    let cert = get(common, "tls_certificate_sds_secret_configs.0");
    assert_eq!(str_at(cert, "name"), transport::CERTIFICATE_SECRET);
    // The trailing `/` is dropped: Envoy watches the directory by name.
    assert_eq!(
        str_at(cert, "sds_config.path_config_source.path"),
        "/certs/fd/certificate.sds.yaml"
    );
    assert_eq!(
        str_at(cert, "sds_config.path_config_source.watched_directory.path"),
        "/certs/fd"
    );
    let validation = get(common, "combined_validation_context");
    assert_eq!(
        str_at(validation, "validation_context_sds_secret_config.name"),
        transport::CA_SECRET
    );
    // Only the services that call it get through the handshake.
    let sans: Vec<&str> = get(
        validation,
        "default_validation_context.match_typed_subject_alt_names",
    )
    .as_sequence()
    .unwrap()
    .iter()
    .map(|m| str_at(m, "matcher.exact"))
    .collect();
    assert_eq!(
        sans,
        [
            "spiffe://cluster.local/ns/default/sa/transaction-processor",
            "spiffe://cluster.local/ns/default/sa/reporting"
        ]
    );
    // Nothing private in the rendered file.
    let text = serde_yaml_ng::to_string(&fraud).unwrap();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("inline_"),
        "{text}"
    );

    let caller = render(&policy, "transaction-processor");
    let upstream = get(
        cluster(&caller, "fraud_detector"),
        "transport_socket.typed_config",
    );
    assert!(str_at(upstream, "@type").ends_with("UpstreamTlsContext"));
    assert_eq!(str_at(upstream, "sni"), "fraud-detector");
    let matcher = get(
        upstream,
        "common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names.0",
    );
    assert_eq!(str_at(matcher, "san_type"), "URI");
    assert_eq!(
        str_at(matcher, "matcher.exact"),
        "spiffe://cluster.local/ns/default/sa/fraud-detector"
    );
    assert_eq!(
        str_at(
            upstream,
            "common_tls_context.tls_certificate_sds_secret_configs.0.sds_config.path_config_source.path"
        ),
        "/etc/entragate/tls/certificate.sds.yaml"
    );
    // Envoy's file-based SDS needs a node identity.
    assert_eq!(str_at(&caller, "node.id"), "transaction-processor");
}

#[test]
fn tls_mode_and_dns_identities() {
    let policy = with(&[
        "transport.mode=tls",
        "services.fraud-detector.workload.dns=fraud.payments.svc",
    ])
    .unwrap();
    let fraud = render(&policy, "fraud-detector");
    let tls = get(
        &fraud,
        "static_resources.listeners.0.filter_chains.0.transport_socket.typed_config",
    );
    assert!(get(tls, "require_client_certificate").is_null());
    assert!(get(tls, "common_tls_context.combined_validation_context").is_null());
    let caller = render(&policy, "transaction-processor");
    let upstream = get(
        cluster(&caller, "fraud_detector"),
        "transport_socket.typed_config",
    );
    // SNI and the SAN checked are the DNS identity; the caller presents no certificate.
    assert_eq!(str_at(upstream, "sni"), "fraud.payments.svc");
    let context = get(upstream, "common_tls_context");
    assert_eq!(
        str_at(
            context,
            "combined_validation_context.default_validation_context.match_typed_subject_alt_names.0.san_type"
        ),
        "DNS"
    );
    assert!(get(context, "tls_certificate_sds_secret_configs").is_null());
}

#[test]
fn sds_files_point_at_the_atomic_writer_layout() {
    let files = transport::sds_files("/certs/fd").unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [transport::CERTIFICATE_SDS, transport::VALIDATION_SDS]
    );
    let cert: Value = serde_yaml_ng::from_str(&files[0].1).unwrap();
    let secret = get(&cert, "resources.0");
    assert_eq!(str_at(secret, "name"), transport::CERTIFICATE_SECRET);
    assert_eq!(
        str_at(secret, "tls_certificate.certificate_chain.filename"),
        "/certs/fd/tls.crt"
    );
    assert_eq!(
        str_at(secret, "tls_certificate.private_key.filename"),
        "/certs/fd/tls.key"
    );
    let ca: Value = serde_yaml_ng::from_str(&files[1].1).unwrap();
    assert_eq!(
        str_at(&ca, "resources.0.validation_context.trusted_ca.filename"),
        "/certs/fd/ca.crt"
    );
}

/// `--format envoy-gateway`: the callee's Gateway listener carries the mode (a `ClientTrafficPolicy` in the
/// Gateway's namespace), and the filter binds tokens to the caller's workload only where the Gateway
/// terminates the caller's mTLS.
#[test]
fn envoy_gateway_carries_the_transport_of_each_mode() {
    let gateway = |sets: &[&str]| -> Vec<Value> {
        let policy = with(sets).unwrap();
        let options = GatewayOptions {
            namespace: "fintech".into(),
            filter: GatewayFilter::Wasm(WasmModule {
                reference: "https://artifacts.example.com/entragate_filter.wasm".into(),
                sha256: sha256_hex(b"\0asm\x01\0\0\0"),
            }),
            gateway: "eg".into(),
            gateway_namespace: "envoy-gateway-system".into(),
        };
        let fraud = policy.service("fraud-detector").unwrap();
        let text = envoy_gateway::render(&policy, fraud, &options).unwrap();
        serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    };
    let client_traffic = |docs: &[Value]| -> Option<Value> {
        docs.iter()
            .find(|d| str_at(d, "kind") == "ClientTrafficPolicy")
            .cloned()
    };
    let binding = |docs: &[Value]| get(&docs[0], "spec.wasm.0.config.workload_binding").clone();

    let mtls = gateway(&[]);
    let policy = client_traffic(&mtls).expect("mtls: a ClientTrafficPolicy");
    // Policy target references are local: the policy lives with the Gateway it targets.
    assert_eq!(
        str_at(&policy, "metadata.namespace"),
        "envoy-gateway-system"
    );
    let target = get(&policy, "spec.targetRefs.0");
    assert_eq!(str_at(target, "kind"), "Gateway");
    assert_eq!(str_at(target, "name"), "eg");
    assert_eq!(str_at(target, "sectionName"), "fraud-detector");
    let validation = get(&policy, "spec.tls.clientValidation");
    // Required (no `optional: true`), verified against the mesh CA alone: a ConfigMap, never a key.
    assert!(get(validation, "optional").is_null());
    assert_eq!(str_at(validation, "caCertificateRefs.0.kind"), "ConfigMap");
    assert_eq!(
        str_at(validation, "caCertificateRefs.0.name"),
        envoy_gateway::MESH_CA_CONFIG_MAP
    );
    let uris: Vec<&str> = get(validation, "subjectAltNames.uris")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(str_at(m, "type"), "Exact");
            str_at(m, "value")
        })
        .collect();
    assert_eq!(
        uris,
        [
            "spiffe://cluster.local/ns/default/sa/transaction-processor",
            "spiffe://cluster.local/ns/default/sa/reporting"
        ]
    );
    let bound = binding(&mtls);
    let reporting = policy_client_id("reporting");
    assert_eq!(
        bound["workloads"]["spiffe://cluster.local/ns/default/sa/reporting"].as_str(),
        Some(reporting.as_str()),
        "identities map to client ids: {bound:?}"
    );
    assert!(get(&bound, "rules").as_sequence().unwrap().len() >= 2);

    // A DNS identity is matched as a DNS name.
    let dns = gateway(&["services.reporting.workload.dns=reporting.fintech.svc"]);
    let names = get(
        &client_traffic(&dns).unwrap(),
        "spec.tls.clientValidation.subjectAltNames",
    )
    .clone();
    assert_eq!(str_at(&names, "dnsNames.0.value"), "reporting.fintech.svc");
    assert_eq!(get(&names, "uris").as_sequence().unwrap().len(), 1);

    // tls: the listener's TLS floor, no client certificate asked for, nothing to bind to.
    let tls = gateway(&["transport.mode=tls"]);
    let policy = client_traffic(&tls).expect("tls: a ClientTrafficPolicy");
    assert_eq!(str_at(&policy, "spec.tls.minVersion"), "1.2");
    assert!(get(&policy, "spec.tls.clientValidation").is_null());
    assert!(binding(&tls).is_null());

    // plaintext: no TLS resource at all, no binding.
    let plain = gateway(&["transport.mode=plaintext"]);
    assert!(client_traffic(&plain).is_none());
    assert_eq!(plain.len(), 2);
    assert!(binding(&plain).is_null());
}

fn policy_client_id(service: &str) -> String {
    with(&[])
        .unwrap()
        .service(service)
        .unwrap()
        .application
        .client_id
        .to_string()
}
