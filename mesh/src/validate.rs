//! Validation of a [`RawMesh`] into a [`MeshPolicy`]: defaults, GUIDs, the identity provider, services,
//! secrets, ports and the caller graph. Route rules are checked in [`super::rules`]; the filter's own
//! compiler gets the last word in [`super::plugin`].
//!
//! Validation continues after an error wherever it can, so one `bootstrap check` run lists every problem.

use super::error::{Findings, MeshErrors};
use super::model::{
    RawCloud, RawFailurePolicy, RawIdentity, RawIdentityProvider, RawMesh, RawService,
    RawTransport, RawTransportMode, RawUnmatched, RawWorkload,
};
use super::policy::{
    Access, Application, Authority, CallerCredential, Cloud, FailurePolicy, Identity,
    IdentityProvider, MeshPolicy, Ports, Service, Sidecar, Transport, TransportMode, Unmatched,
    WorkloadIdentity,
};
use super::rules::{self, Directory};
use entragate_core::guid::is_guid;
use std::collections::BTreeSet;

pub const DEFAULT_INBOUND_PORT: u16 = 15006;
pub const DEFAULT_OUTBOUND_PORT: u16 = 15001;
pub const DEFAULT_ADMIN_PORT: u16 = 15000;
pub const DEFAULT_AGENT: &str = "127.0.0.1:15901";
pub const DEFAULT_AGENT_KEY_FILE: &str = "/run/entragate/agent-key";
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
pub const DEFAULT_INBOUND_ADDRESS: &str = "0.0.0.0";
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_CERTIFICATES: &str = "/etc/entragate/tls";
/// The only secret store the agent reads.
pub const SECRET_SCHEME: &str = "aws-secretsmanager:";

impl TryFrom<RawMesh> for MeshPolicy {
    type Error = MeshErrors;

    fn try_from(raw: RawMesh) -> Result<MeshPolicy, MeshErrors> {
        let mut f = Findings::default();
        match raw.version {
            Some(1) => {}
            Some(v) => f.error(
                "version",
                format!("unsupported version {v}: this bootstrap reads version 1"),
            ),
            None => f.error("version", "required: `version: 1`"),
        }
        let idp = identity_provider(raw.identity_provider, &mut f);
        let (transport, certificates) = transport(raw.transport.unwrap_or_default(), &mut f);
        let raw_services = raw.services.map(|s| s.0).unwrap_or_default();
        if raw_services.is_empty() {
            f.error("services", "at least one service is required");
        }

        // First pass: everything a rule of another service may refer to.
        let directory = Directory {
            services: raw_services
                .iter()
                .map(|(name, s)| {
                    let id = s
                        .application
                        .as_ref()
                        .and_then(|a| a.client_id.as_deref())
                        .map(str::to_ascii_lowercase)
                        .unwrap_or_default();
                    (name.clone(), id)
                })
                .collect(),
        };
        let mut services = Vec::with_capacity(raw_services.len());
        for (name, raw_service) in raw_services {
            let context = ServiceContext {
                directory: &directory,
                transport: &transport,
                certificates: &certificates,
            };
            if let Some(service) = service(&name, raw_service, &context, &mut f) {
                services.push(service);
            }
        }
        resolve_destinations(&mut services, &mut f);
        check_every_service_has_a_role(&services, &mut f);
        check_unique_client_ids(&services, &mut f);
        check_ports(&services, &mut f);
        check_unique_workloads(&services, &mut f);

        let (Some(idp), true) = (idp, f.errors.is_empty()) else {
            return Err(MeshErrors(f.errors));
        };
        let policy = MeshPolicy {
            identity_provider: idp,
            transport,
            services,
            warnings: Vec::new(),
        };
        // The filter's compiler is the contract: a policy it would refuse is refused here, with the mesh path.
        let compile_errors = super::plugin::check_all(&policy);
        if !compile_errors.is_empty() {
            return Err(MeshErrors(compile_errors));
        }
        Ok(MeshPolicy {
            warnings: f.warnings,
            ..policy
        })
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower-cased.
pub(super) fn guid(value: &str, path: &str, f: &mut Findings) -> Option<String> {
    if is_guid(value) {
        Some(value.to_ascii_lowercase())
    } else {
        f.error(
            path,
            format!("`{value}` is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
        );
        None
    }
}

fn identity_provider(
    raw: Option<RawIdentityProvider>,
    f: &mut Findings,
) -> Option<IdentityProvider> {
    let Some(raw) = raw else {
        f.error("identity_provider", "required (tenant_id at least)");
        return None;
    };
    let tenant_id = match raw.tenant_id.as_deref() {
        Some(t) => guid(t, "identity_provider.tenant_id", f),
        None => {
            f.error("identity_provider.tenant_id", "required");
            None
        }
    };
    let cloud = match raw.cloud.unwrap_or(RawCloud::Public) {
        RawCloud::Public => Cloud::Public,
        RawCloud::Usgov => Cloud::UsGov,
        RawCloud::China => Cloud::China,
    };
    let authority = authority(
        raw.authority.as_deref().unwrap_or(cloud.login()),
        "identity_provider.authority",
        f,
    );
    let mut allowed_tenants = Vec::new();
    for (i, t) in raw.allowed_tenants.unwrap_or_default().iter().enumerate() {
        if let Some(t) = guid(t, &format!("identity_provider.allowed_tenants[{i}]"), f) {
            if !allowed_tenants.contains(&t) && Some(&t) != tenant_id.as_ref() {
                allowed_tenants.push(t);
            }
        }
    }
    let multi_tenant = raw.multi_tenant.unwrap_or(false);
    if multi_tenant && allowed_tenants.is_empty() {
        f.warn(
            "identity_provider.multi_tenant",
            "multi-tenant without an allow-list: any Entra ID tenant can obtain tokens for these APIs; \
             only the home tenant is accepted until identity_provider.allowed_tenants lists the others",
        );
    }
    Some(IdentityProvider {
        tenant_id: tenant_id?,
        cloud,
        authority: authority?,
        multi_tenant: multi_tenant || !allowed_tenants.is_empty(),
        allowed_tenants,
    })
}

/// `https://host[:port]`, or `http://` for a loopback test identity provider; no path, query or userinfo.
fn authority(text: &str, path: &str, f: &mut Findings) -> Option<Authority> {
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    let bad = |f: &mut Findings, why: &str| {
        f.error(path, format!("`{text}` is not a usable authority: {why}"));
        None
    };
    let Ok(url) = url::Url::parse(trimmed) else {
        return bad(
            f,
            "expected a URL such as https://login.microsoftonline.com",
        );
    };
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => {
            return bad(
                f,
                "the scheme must be https (or http for a loopback test IdP)",
            )
        }
    };
    let Some(host) = url
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_string())
    else {
        return bad(f, "no host");
    };
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return bad(
            f,
            "only scheme, host and port are allowed (no path, query or user)",
        );
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        return bad(f, "plain http is accepted for a loopback test IdP only");
    }
    Some(Authority {
        url: trimmed.to_string(),
        tls,
        port: url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 }),
        host,
    })
}

/// DNS-label service names: they become host names, cluster names and Kubernetes object names.
fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn word_list(values: Option<Vec<String>>, path: &str, f: &mut Findings) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, v) in values.unwrap_or_default().into_iter().enumerate() {
        if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            f.error(
                format!("{path}[{i}]"),
                format!("`{v}` must be non-empty, without whitespace"),
            );
        } else if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// What validating one service needs from the rest of the document.
struct ServiceContext<'a> {
    directory: &'a Directory,
    transport: &'a Transport,
    /// `transport.certificates`, or its default.
    certificates: &'a str,
}

fn service(
    name: &str,
    raw: RawService,
    context: &ServiceContext<'_>,
    f: &mut Findings,
) -> Option<Service> {
    let directory = context.directory;
    let base = format!("services.{name}");
    let errors_before = f.errors.len();
    if !valid_service_name(name) {
        f.error(
            &base,
            "service names must be DNS labels: lower-case letters, digits and `-`, at most 63 characters",
        );
    }
    let application = application(name, raw.application, &base, f);
    let host = raw.host.unwrap_or_else(|| name.to_string());
    let is_ipv6 = host.parse::<std::net::Ipv6Addr>().is_ok();
    if host.is_empty()
        || host.contains(|c: char| c.is_whitespace() || c == '/' || (c == ':' && !is_ipv6))
    {
        f.error(
            format!("{base}.host"),
            format!("`{host}` is not a host name or IP address"),
        );
    }
    let raw_ports = raw.ports.unwrap_or_default();
    let ports = Ports {
        inbound: raw_ports.inbound.unwrap_or(DEFAULT_INBOUND_PORT),
        app: raw_ports.app,
        outbound: raw_ports.outbound.unwrap_or(DEFAULT_OUTBOUND_PORT),
        admin: raw_ports.admin.unwrap_or(DEFAULT_ADMIN_PORT),
    };
    for (field, port) in [
        ("inbound", Some(ports.inbound)),
        ("app", ports.app),
        ("outbound", Some(ports.outbound)),
        ("admin", Some(ports.admin)),
    ] {
        if port == Some(0) {
            f.error(
                format!("{base}.ports.{field}"),
                "port 0 is not a port a peer can reach; use 1-65535",
            );
        }
    }
    let mut sidecar = sidecar(
        raw.sidecar.unwrap_or_default(),
        context.certificates,
        &base,
        f,
    );
    sidecar.tls = context.transport.mode != TransportMode::Plaintext;
    let workload = workload(raw.workload, name, context.transport, &base, f);
    let identity = raw
        .identity
        .and_then(|i| identity(i, &format!("{base}.identity"), f));
    let unmatched = match raw.unmatched_requests.unwrap_or(RawUnmatched::Deny) {
        RawUnmatched::Deny => Unmatched::Deny,
        RawUnmatched::AllowAnyValidToken => {
            f.warn(
                format!("{base}.unmatched_requests"),
                "allow_any_valid_token: any valid token of the tenant reaches every path no rule names",
            );
            Unmatched::AllowAnyValidToken
        }
    };
    let rules = match &application {
        Some(app) => rules::compile(
            raw.rules.unwrap_or_default(),
            name,
            app,
            directory,
            context.transport.mode,
            f,
        ),
        None => Vec::new(),
    };
    if !rules.is_empty() && ports.app.is_none() {
        f.error(format!("{base}.ports.app"), "required: the service has rules, so its sidecar forwards to the local application on this port");
    }
    if sidecar.failure_policy == FailurePolicy::FailOpen && !rules.is_empty() {
        f.warn(
            format!("{base}.sidecar.failure_policy"),
            "FAIL_OPEN: if the filter's VM fails, requests reach the service without any check",
        );
    }
    let mut calls = Vec::new();
    for (i, callee) in raw.calls.unwrap_or_default().into_iter().enumerate() {
        let path = format!("{base}.calls[{i}]");
        if callee == name {
            f.error(path, "a service does not call itself through its sidecar");
        } else if directory.client_id(&callee).is_none() {
            f.error(
                path,
                format!(
                    "unknown service `{callee}` (services: {})",
                    directory.names()
                ),
            );
        } else if !calls.contains(&callee) {
            calls.push(callee);
        }
    }
    if f.errors.len() > errors_before {
        return None;
    }
    Some(Service {
        name: name.to_string(),
        host,
        application: application?,
        ports,
        sidecar,
        identity,
        destinations: calls,
        unmatched,
        rules,
        workload: workload?,
    })
}

fn application(
    name: &str,
    raw: Option<super::model::RawApplication>,
    base: &str,
    f: &mut Findings,
) -> Option<Application> {
    let path = format!("{base}.application");
    let Some(raw) = raw else {
        f.error(
            path,
            format!(
                "required: the Entra application registration of `{name}` (client_id at least)"
            ),
        );
        return None;
    };
    let client_id = match raw.client_id.as_deref() {
        Some(id) => guid(id, &format!("{path}.client_id"), f),
        None => {
            f.error(format!("{path}.client_id"), "required");
            None
        }
    }?;
    let app_id_uri = raw.app_id_uri.filter(|u| {
        let ok = !u.is_empty() && !u.contains(char::is_whitespace) && !u.ends_with('/');
        if !ok {
            f.error(
                format!("{path}.app_id_uri"),
                format!("`{u}` must be a URI without whitespace or trailing `/`"),
            );
        }
        ok
    });
    let audiences = match raw.audiences {
        Some(list) if list.is_empty() => {
            f.error(
                format!("{path}.audiences"),
                "must not be empty (leave it out for the default)",
            );
            Vec::new()
        }
        Some(list) => word_list(Some(list), &format!("{path}.audiences"), f)
            .into_iter()
            .map(|a| {
                if is_guid(&a) {
                    a.to_ascii_lowercase()
                } else {
                    a
                }
            })
            .collect(),
        None => std::iter::once(client_id.clone())
            .chain(app_id_uri.clone())
            .collect(),
    };
    Some(Application {
        name: raw.name,
        audiences,
        app_roles: word_list(raw.app_roles, &format!("{path}.app_roles"), f),
        scopes: word_list(raw.scopes, &format!("{path}.scopes"), f),
        client_id,
        app_id_uri,
    })
}

fn sidecar(
    raw: super::model::RawSidecar,
    certificates: &str,
    base: &str,
    f: &mut Findings,
) -> Sidecar {
    let path = format!("{base}.sidecar");
    let agent_text = raw.agent.unwrap_or_else(|| DEFAULT_AGENT.into());
    let agent = match agent_text.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_loopback() && a.port() != 0 => a,
        Ok(_) => {
            f.error(format!("{path}.agent"), format!("`{agent_text}` must be a loopback IP:port (the agent serves the local Envoy only)"));
            std::net::SocketAddr::from(([127, 0, 0, 1], 15901))
        }
        Err(_) => {
            f.error(
                format!("{path}.agent"),
                format!("`{agent_text}` is not an IP:port address"),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 15901))
        }
    };
    let inbound_address = raw
        .inbound_address
        .unwrap_or_else(|| DEFAULT_INBOUND_ADDRESS.into());
    if inbound_address.parse::<std::net::IpAddr>().is_err() {
        f.error(
            format!("{path}.inbound_address"),
            format!("`{inbound_address}` is not an IP address"),
        );
    }
    Sidecar {
        failure_policy: match raw.failure_policy.unwrap_or(RawFailurePolicy::FailClosed) {
            RawFailurePolicy::FailClosed => FailurePolicy::FailClosed,
            RawFailurePolicy::FailOpen => FailurePolicy::FailOpen,
        },
        inbound_address,
        agent,
        agent_key_file: raw
            .agent_key_file
            .unwrap_or_else(|| DEFAULT_AGENT_KEY_FILE.into()),
        ca_file: raw.ca_file.unwrap_or_else(|| DEFAULT_CA_FILE.into()),
        certificates: match raw.certificates {
            Some(dir) => absolute_directory(&dir, &format!("{path}.certificates"), f),
            None => certificates.to_string(),
        },
        // Set by the caller, which knows the transport.
        tls: false,
    }
}

/// `transport`, and the default certificate directory.
fn transport(raw: RawTransport, f: &mut Findings) -> (Transport, String) {
    let mode = match raw.mode.unwrap_or(RawTransportMode::Mtls) {
        RawTransportMode::Mtls => TransportMode::Mtls,
        RawTransportMode::Tls => TransportMode::Tls,
        RawTransportMode::Plaintext => {
            f.warn(
                "transport.mode",
                "plaintext: tokens cross the wire in clear and anyone on the path can replay them; \
                 for a loopback demo only",
            );
            TransportMode::Plaintext
        }
    };
    let label = |value: Option<String>, default: &str, field: &str, f: &mut Findings| {
        let value = value.unwrap_or_else(|| default.to_string());
        // They become a URI path segment and authority: no separators, no spaces, no percent-encoding games.
        let ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok {
            f.error(
                format!("transport.{field}"),
                format!("`{value}` must be lower-case letters, digits, `-` and `.`"),
            );
        }
        value
    };
    let trust_domain = label(raw.trust_domain, DEFAULT_TRUST_DOMAIN, "trust_domain", f);
    let namespace = label(raw.namespace, DEFAULT_NAMESPACE, "namespace", f);
    let certificates = match raw.certificates {
        Some(dir) => absolute_directory(&dir, "transport.certificates", f),
        None => DEFAULT_CERTIFICATES.to_string(),
    };
    (
        Transport {
            mode,
            trust_domain,
            namespace,
        },
        certificates,
    )
}

/// An absolute directory, without a trailing `/` (Envoy watches it by name).
fn absolute_directory(dir: &str, path: &str, f: &mut Findings) -> String {
    let trimmed = dir.trim_end_matches('/');
    if !trimmed.starts_with('/') || trimmed.contains(char::is_control) {
        f.error(path, format!("`{dir}` must be an absolute directory path"));
    }
    trimmed.to_string()
}

/// `workload`: exactly one SAN, or the SPIFFE default.
fn workload(
    raw: Option<RawWorkload>,
    name: &str,
    transport: &Transport,
    base: &str,
    f: &mut Findings,
) -> Option<WorkloadIdentity> {
    let path = format!("{base}.workload");
    let Some(raw) = raw else {
        return Some(WorkloadIdentity::Uri(format!(
            "spiffe://{}/ns/{}/sa/{name}",
            transport.trust_domain, transport.namespace
        )));
    };
    match (raw.uri, raw.dns) {
        (Some(uri), None) => {
            let ok = url::Url::parse(&uri).is_ok_and(|u| u.has_host() || u.scheme() == "spiffe")
                && !uri.contains(char::is_whitespace);
            if !ok {
                f.error(
                    format!("{path}.uri"),
                    format!(
                        "`{uri}` is not a URI such as spiffe://trust-domain/ns/namespace/sa/{name}"
                    ),
                );
                return None;
            }
            Some(WorkloadIdentity::Uri(uri))
        }
        (None, Some(dns)) => {
            let ok = !dns.is_empty()
                && dns.len() <= 253
                && dns.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                f.error(format!("{path}.dns"), format!("`{dns}` is not a DNS name"));
                return None;
            }
            Some(WorkloadIdentity::Dns(dns.to_ascii_lowercase()))
        }
        _ => {
            f.error(path, "set exactly one of `uri` and `dns`");
            None
        }
    }
}

/// The workload identity is what binds a connection to an app: two services sharing one would be indistinguishable.
fn check_unique_workloads(services: &[Service], f: &mut Findings) {
    for (i, s) in services.iter().enumerate() {
        if let Some(other) = services[..i].iter().find(|o| o.workload == s.workload) {
            f.error(
                format!("services.{}.workload", s.name),
                format!(
                    "`{}` is already the workload identity of `{}`: each service needs its own",
                    s.workload.value(),
                    other.name
                ),
            );
        }
    }
}

fn identity(raw: RawIdentity, path: &str, f: &mut Findings) -> Option<Identity> {
    let credential = match (&raw.secret, &raw.aws_federation, &raw.kms_certificate) {
        (Some(s), None, None) => secret_credential(s, path, f),
        (None, Some(fed), None) => Some(CallerCredential::AwsFederation {
            audience: nonblank(
                fed.audience.as_deref(),
                &format!("{path}.aws_federation.audience"),
                f,
            )
            .unwrap_or_else(|| super::credential_kind::DEFAULT_FEDERATION_AUDIENCE.into()),
        }),
        (None, None, Some(kms)) => {
            let key_id = required_nonblank(
                kms.key_id.as_deref(),
                &format!("{path}.kms_certificate.key_id"),
                f,
            );
            let certificate = required_nonblank(
                kms.certificate.as_deref(),
                &format!("{path}.kms_certificate.certificate"),
                f,
            );
            Some(CallerCredential::KmsCertificate {
                key_id: key_id?,
                certificate: certificate?,
            })
        }
        (None, None, None) => {
            f.error(
                format!("{path}.secret"),
                "required: aws-secretsmanager:<secret-id>, or aws_federation / kms_certificate for a caller with no secret",
            );
            None
        }
        _ => {
            f.error(
                path.to_string(),
                "give exactly one of secret, aws_federation and kms_certificate",
            );
            None
        }
    };
    if matches!(credential, Some(CallerCredential::Secret { .. })) {
        // Entra recommends certificates or federated credentials over secrets for workloads.
        f.warn(
            format!("{path}.secret"),
            "a client secret can leak and must be rotated; aws_federation or kms_certificate need no secret \
             (docs/deploy.md, \"Secretless callers\")",
        );
    }
    let region = match raw.region.as_deref() {
        None => {
            f.error(
                format!("{path}.region"),
                "required: the AWS region of the secret, STS or the KMS key, e.g. us-east-1",
            );
            None
        }
        Some(r)
            if !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Some(r.to_string())
        }
        Some(r) => {
            f.error(
                format!("{path}.region"),
                format!("`{r}` is not an AWS region name (e.g. us-east-1)"),
            );
            None
        }
    };
    Some(Identity {
        credential: credential?,
        region: region?,
    })
}

/// `Some(value)` when present and without whitespace; an error naming `path` otherwise.
fn nonblank(value: Option<&str>, path: &str, f: &mut Findings) -> Option<String> {
    let v = value?;
    if v.trim().is_empty() || v.contains(char::is_whitespace) {
        f.error(path.to_string(), "must not be empty or contain whitespace");
        return None;
    }
    Some(v.to_string())
}

fn required_nonblank(value: Option<&str>, path: &str, f: &mut Findings) -> Option<String> {
    if value.is_none() {
        f.error(path.to_string(), "required");
    }
    nonblank(value, path, f)
}

fn secret_credential(s: &str, path: &str, f: &mut Findings) -> Option<CallerCredential> {
    let secret_id = match s.strip_prefix(SECRET_SCHEME) {
        Some(id) if !id.trim().is_empty() && !id.contains(char::is_whitespace) => {
            Some(id.to_string())
        }
        Some(_) => {
            f.error(
                format!("{path}.secret"),
                "the secret id after `aws-secretsmanager:` is empty or contains whitespace",
            );
            None
        }
        None => {
            f.error(
                    format!("{path}.secret"),
                    format!("`{s}` is not a supported secret reference: expected aws-secretsmanager:<secret-id>"),
                );
            None
        }
    };
    secret_id.map(|secret_id| CallerCredential::Secret { secret_id })
}

/// Adds to each service's explicit `calls` every service whose rules name it, checks callers have a secret
/// and warns about calls no rule admits.
fn resolve_destinations(services: &mut [Service], f: &mut Findings) {
    let mut admitted: Vec<(String, String, String)> = Vec::new(); // (caller, callee, rule path)
    let mut open_callees: BTreeSet<String> = BTreeSet::new(); // a token rule without allowed_callers
    for callee in services.iter() {
        for (i, rule) in callee.rules.iter().enumerate() {
            if let Access::Token { callers, .. } = &rule.access {
                if callers.is_empty() {
                    open_callees.insert(callee.name.clone());
                }
                for c in callers {
                    admitted.push((
                        c.service.clone(),
                        callee.name.clone(),
                        format!("services.{}.rules[{i}]", callee.name),
                    ));
                }
            }
        }
    }
    for service in services.iter_mut() {
        for (i, callee) in service.destinations.iter().enumerate() {
            let named = admitted
                .iter()
                .any(|(c, e, _)| *c == service.name && e == callee);
            if !named && !open_callees.contains(callee) {
                f.warn(
                    format!("services.{}.calls[{i}]", service.name),
                    format!(
                        "no rule of `{callee}` admits `{}`: its calls will be refused (403)",
                        service.name
                    ),
                );
            }
        }
        for (_, callee, _) in admitted.iter().filter(|(c, _, _)| *c == service.name) {
            if !service.destinations.contains(callee) && *callee != service.name {
                service.destinations.push(callee.clone());
            }
        }
        service.destinations.sort();
        if service.is_caller() && service.identity.is_none() {
            let why = admitted
                .iter()
                .find(|(c, _, _)| *c == service.name)
                .map_or_else(String::new, |(_, _, rule)| format!(" (allowed by {rule})"));
            f.error(
                format!("services.{}.identity", service.name),
                format!(
                    "`{}` calls {}{why} but has no `identity`: its sidecar could not obtain tokens",
                    service.name,
                    service.destinations.join(", ")
                ),
            );
        }
    }
    for service in services.iter() {
        for callee in &service.destinations {
            if services.iter().any(|s| s.name == *callee && !s.is_callee()) {
                f.error(
                    format!("services.{}.calls", service.name),
                    format!("`{callee}` has no rules: every call to it would be refused"),
                );
            }
        }
    }
}

/// A service with no rules that calls nobody would get a sidecar with nothing to do: almost always
/// rules forgotten or misplaced (e.g. indented under another key), so it is refused rather than
/// rendered as an Envoy that passes everything through unchecked. (Found by the `mesh_policy`
/// fuzz target: such a policy validated, then `render` refused it.) Reported only when nothing else is
/// wrong: a misspelt name in another service's `allowed_callers` also leaves its service with nothing to do,
/// and that error (unknown caller) is the one to fix.
fn check_every_service_has_a_role(services: &[Service], f: &mut Findings) {
    if !f.errors.is_empty() {
        return;
    }
    for s in services.iter().filter(|s| !s.is_callee() && !s.is_caller()) {
        f.error(
            format!("services.{}", s.name),
            format!(
                "`{}` has no rules and calls no service: its sidecar would have nothing to do \
                 (add `rules`, name it in another service's `allowed_callers` or `calls`, or remove it)",
                s.name
            ),
        );
    }
}

fn check_unique_client_ids(services: &[Service], f: &mut Findings) {
    for (i, s) in services.iter().enumerate() {
        if let Some(first) = services
            .iter()
            .take(i)
            .find(|o| o.application.client_id == s.application.client_id)
        {
            f.error(
                format!("services.{}.application.client_id", s.name),
                format!(
                    "`{}` is already the client id of `{}`: callers are told apart by client id",
                    s.application.client_id, first.name
                ),
            );
        }
    }
}

/// Ports a service's sidecar (and the processes beside it) use on its host: `(field path, port)`.
fn used_ports(s: &Service) -> Vec<(String, u16)> {
    let base = format!("services.{}", s.name);
    let mut ports = vec![(format!("{base}.ports.admin"), s.ports.admin)];
    if s.is_callee() {
        ports.push((format!("{base}.ports.inbound"), s.ports.inbound));
        if let Some(app) = s.ports.app {
            ports.push((format!("{base}.ports.app"), app));
        }
    }
    if s.is_caller() {
        ports.push((format!("{base}.ports.outbound"), s.ports.outbound));
        ports.push((format!("{base}.sidecar.agent"), s.sidecar.agent.port()));
    }
    ports
}

/// Within a sidecar every port is distinct; services on the same host share its ports too.
fn check_ports(services: &[Service], f: &mut Findings) {
    let mut seen: Vec<(String, String, u16)> = Vec::new(); // (host, path, port)
    for s in services {
        for (path, port) in used_ports(s) {
            if let Some((host, other, _)) = seen.iter().find(|(h, _, p)| *h == s.host && *p == port)
            {
                f.error(
                    path,
                    format!("port {port} clashes with {other} (both on host {host})"),
                );
            } else {
                seen.push((s.host.clone(), path, port));
            }
        }
    }
}
