//! The sidecar-to-sidecar hop with and without mTLS (`mesh_plain`, `mesh_mtls`): a second Envoy plays the
//! caller's sidecar, forwarding over keep-alive connections to the benchmark Envoy's `entragate` listener in
//! clear, or to `entragate_mtls` over mTLS. Both paths cross the same two Envoys and the same filter, so the
//! difference between them is what TLS costs per request. Certificates come from `bootstrap certs`' code
//! (entragate_bootstrap::certs) for the example policy's Fraud Detector (callee) and Transaction Processor
//! (caller), in the layout the rendered sidecars read (file-based SDS).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use entragate_bootstrap::certs::{self, MeshCa};
use entragate_mesh::{self as mesh, Override};

/// The certificate directories `(callee, caller)` under `dir`, issued by a fresh CA.
pub fn certificates(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (callee, caller) = (
        dir.join("fraud-detector"),
        dir.join("transaction-processor"),
    );
    let overrides = [
        format!(
            "services.fraud-detector.sidecar.certificates={}",
            callee.display()
        ),
        format!(
            "services.transaction-processor.sidecar.certificates={}",
            caller.display()
        ),
    ]
    .iter()
    .map(|o| Override::parse(o).map_err(anyhow::Error::msg))
    .collect::<anyhow::Result<Vec<_>>>()?;
    let text =
        std::fs::read_to_string(entragate_tests::repo_root().join("examples/fintech/mesh.yaml"))?;
    let policy =
        mesh::from_str(&text, "mesh.yaml", &overrides).map_err(|e| anyhow::anyhow!("{e}"))?;
    let day = Duration::from_secs(86400);
    let (ca, _) = MeshCa::load_or_create(&dir.join("ca"), "cluster.local", day)
        .map_err(anyhow::Error::msg)?;
    for name in ["fraud-detector", "transaction-processor"] {
        let service = policy
            .service(name)
            .ok_or_else(|| anyhow::anyhow!("{name} not in the example policy"))?;
        certs::provision(&ca, service, day, false).map_err(anyhow::Error::msg)?;
    }
    Ok((callee, caller))
}

/// The caller-side Envoy: listener `mesh_plain` -> `plain` (clear), `mesh_mtls` -> `mtls` (mTLS, SNI, the
/// callee's SPIFFE identity checked). Keep-alive upstream connections, as between real sidecars.
pub fn caller_config(plain: SocketAddr, mtls: SocketAddr, certs: &Path) -> String {
    let dir = certs.display();
    let listener = |name: &str| {
        format!(
            r#"  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: callee
              domains: ["*"]
              routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: {name} }} }}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
"#
        )
    };
    let cluster = |name: &str, addr: SocketAddr, tls: &str| {
        format!(
            r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: "{}", port_value: {} }} }} }} }}] }}]
{tls}"#,
            addr.ip(),
            addr.port()
        )
    };
    let sds = |name: &str, file: &str| {
        format!(
            r#"name: {name}, sds_config: {{ resource_api_version: V3, path_config_source: {{ path: "{dir}/{file}", watched_directory: {{ path: "{dir}" }} }} }}"#
        )
    };
    let tls = format!(
        r#"    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: fraud-detector
        common_tls_context:
          tls_certificate_sds_secret_configs: [{{ {} }}]
          combined_validation_context:
            default_validation_context:
              match_typed_subject_alt_names:
              - {{ san_type: URI, matcher: {{ exact: "spiffe://cluster.local/ns/default/sa/fraud-detector" }} }}
            validation_context_sds_secret_config: {{ {} }}
"#,
        sds("entragate_workload_certificate", "certificate.sds.yaml"),
        sds("entragate_mesh_ca", "validation.sds.yaml")
    );
    format!(
        "node: {{ id: bench-caller, cluster: bench-caller }}\nadmin:\n  address:\n    socket_address: {{ address: 127.0.0.1, port_value: 0 }}\nstatic_resources:\n  listeners:\n{}{}  clusters:\n{}{}",
        listener("mesh_plain"),
        listener("mesh_mtls"),
        cluster("mesh_plain", plain, ""),
        cluster("mesh_mtls", mtls, &tls),
    )
}
