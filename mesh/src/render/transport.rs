//! The sidecar-to-sidecar hop (`transport` in mesh.yaml) as Envoy TLS contexts.
//!
//! Certificates are never rendered inline: each sidecar reads two Envoy file-based SDS resources from its
//! certificate directory (`path_config_source` + `watched_directory`, so a renewed certificate is picked up
//! without a restart):
//!
//! - [`CERTIFICATE_SDS`] names secret [`CERTIFICATE_SECRET`]: `tls.crt` (chain) and `tls.key`;
//! - [`VALIDATION_SDS`] names secret [`CA_SECRET`]: `ca.crt`, the mesh CA.
//!
//! The PEM names and the `..data` symlink swap are the Kubernetes atomic-writer layout (a cert-manager
//! Secret mounted as a volume): one rename replaces the three files at once, which Envoy sees as a move in
//! the watched directory and reloads as a pair. `bootstrap certs` writes the same layout.

use super::yaml::{b, list, map, s};
use crate::policy::{MeshPolicy, Service, TransportMode, WorkloadIdentity};
use serde_yaml_ng::Value;

pub const CERTIFICATE_SDS: &str = "certificate.sds.yaml";
pub const VALIDATION_SDS: &str = "validation.sds.yaml";
pub const CERTIFICATE_SECRET: &str = "entragate_workload_certificate";
pub const CA_SECRET: &str = "entragate_mesh_ca";
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
pub const CA_FILE: &str = "ca.crt";

const TLS_SOCKET: &str = "envoy.transport_sockets.tls";
const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// One SDS secret read from `<directory>/<file>`, reloaded when a file is moved into `directory`.
fn sds_secret(name: &str, directory: &str, file: &str) -> Value {
    map([
        ("name", s(name)),
        (
            "sds_config",
            map([
                ("resource_api_version", s("V3")),
                (
                    "path_config_source",
                    map([
                        ("path", s(format!("{directory}/{file}"))),
                        ("watched_directory", map([("path", s(directory))])),
                    ]),
                ),
            ]),
        ),
    ])
}

fn san_matchers(identities: &[&WorkloadIdentity]) -> Value {
    list(
        identities
            .iter()
            .map(|id| {
                map([
                    ("san_type", s(id.san_type())),
                    ("matcher", map([("exact", s(id.value()))])),
                ])
            })
            .collect(),
    )
}

/// `common_tls_context`: this sidecar's certificate (when it presents one) and the mesh CA, accepting only
/// peers whose certificate carries one of `peers` (empty: any certificate the mesh CA issued).
fn common_tls_context(service: &Service, present: bool, peers: &[&WorkloadIdentity]) -> Value {
    let dir = service.sidecar.certificates.as_str();
    let mut validation = map([]);
    if !peers.is_empty() {
        validation = map([("match_typed_subject_alt_names", san_matchers(peers))]);
    }
    let mut context = map([(
        "combined_validation_context",
        map([
            ("default_validation_context", validation),
            (
                "validation_context_sds_secret_config",
                sds_secret(CA_SECRET, dir, VALIDATION_SDS),
            ),
        ]),
    )]);
    if present {
        super::yaml::insert(
            &mut context,
            "tls_certificate_sds_secret_configs",
            list(vec![sds_secret(CERTIFICATE_SECRET, dir, CERTIFICATE_SDS)]),
        );
    }
    context
}

/// The callee's inbound listener: terminates TLS; in `mtls` requires a client certificate from the mesh CA
/// naming one of the services that call it. `None` in `plaintext`.
pub fn downstream(policy: &MeshPolicy, callee: &Service) -> Option<Value> {
    let mode = policy.transport().mode;
    let mut context = map([]);
    match mode {
        TransportMode::Plaintext => return None,
        TransportMode::Tls => {
            // The callee only proves who it is; no client certificate is asked for.
            super::yaml::insert(
                &mut context,
                "common_tls_context",
                map([(
                    "tls_certificate_sds_secret_configs",
                    list(vec![sds_secret(
                        CERTIFICATE_SECRET,
                        &callee.sidecar.certificates,
                        CERTIFICATE_SDS,
                    )]),
                )]),
            );
        }
        TransportMode::Mtls => {
            let callers = callers(policy, callee);
            super::yaml::insert(&mut context, "require_client_certificate", b(true));
            super::yaml::insert(
                &mut context,
                "common_tls_context",
                common_tls_context(callee, true, &callers),
            );
        }
    }
    Some(transport_socket(
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        context,
    ))
}

/// The workload identities of the services that call `callee`: the only client certificates its listener
/// accepts in `mtls` (the sidecar's inbound listener and, on Envoy Gateway, the callee's Gateway listener).
pub fn callers<'a>(policy: &'a MeshPolicy, callee: &Service) -> Vec<&'a WorkloadIdentity> {
    policy
        .services()
        .iter()
        .filter(|s| s.destinations.contains(&callee.name))
        .map(|s| &s.workload)
        .collect()
}

/// The caller's cluster for `callee`: originates TLS with SNI, verifies the callee's workload identity, and in
/// `mtls` presents the caller's certificate. `None` in `plaintext`.
pub fn upstream(policy: &MeshPolicy, caller: &Service, callee: &Service) -> Option<Value> {
    let mode = policy.transport().mode;
    if mode == TransportMode::Plaintext {
        return None;
    }
    let context = map([
        ("sni", s(sni(callee))),
        (
            "common_tls_context",
            common_tls_context(caller, mode == TransportMode::Mtls, &[&callee.workload]),
        ),
    ]);
    Some(transport_socket(
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        context,
    ))
}

/// SNI must be a host name: the callee's DNS identity, else its host, else (an IP host) its service name.
pub fn sni(callee: &Service) -> String {
    match &callee.workload {
        WorkloadIdentity::Dns(name) => name.clone(),
        WorkloadIdentity::Uri(_) if callee.host.parse::<std::net::IpAddr>().is_err() => {
            callee.host.clone()
        }
        WorkloadIdentity::Uri(_) => callee.name.clone(),
    }
}

fn transport_socket(kind: &str, mut context: Value) -> Value {
    let mut typed = map([("@type", s(kind))]);
    if let (Value::Mapping(t), Value::Mapping(c)) = (&mut typed, &mut context) {
        t.extend(std::mem::take(c));
    }
    map([("name", s(TLS_SOCKET)), ("typed_config", typed)])
}

/// The two SDS resource files of a certificate directory, `(file name, contents)`: the sidecar's
/// certificate pair and the mesh CA, by path inside `directory`.
pub fn sds_files(directory: &str) -> Result<Vec<(&'static str, String)>, String> {
    let watched = || map([("path", s(directory))]);
    let file = |name: &str| map([("filename", s(format!("{directory}/{name}")))]);
    let resource = |name: &str, key: &str, body: Value| {
        let mut secret = map([("@type", s(SECRET_TYPE)), ("name", s(name))]);
        super::yaml::insert(&mut secret, key, body);
        map([("resources", list(vec![secret]))])
    };
    let certificate = resource(
        CERTIFICATE_SECRET,
        "tls_certificate",
        map([
            ("certificate_chain", file(CERT_FILE)),
            ("private_key", file(KEY_FILE)),
            ("watched_directory", watched()),
        ]),
    );
    let validation = resource(
        CA_SECRET,
        "validation_context",
        map([
            ("trusted_ca", file(CA_FILE)),
            ("watched_directory", watched()),
        ]),
    );
    let header = "# Envoy file-based SDS resource written by `bootstrap certs`; see docs/mesh-policy.md, \"Transport\".\n";
    Ok(vec![
        (
            CERTIFICATE_SDS,
            format!("{header}{}", super::yaml::to_string(&certificate)?),
        ),
        (
            VALIDATION_SDS,
            format!("{header}{}", super::yaml::to_string(&validation)?),
        ),
    ])
}
