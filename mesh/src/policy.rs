//! The validated mesh policy: immutable, every reference resolved (caller names to client ids), every default
//! applied. Only [`super::validate`] builds it.

use super::error::Warning;

/// Which Entra cloud: issuer hosts and the default authority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    Public,
    UsGov,
    China,
}

impl Cloud {
    /// Login host (v2 issuer base and default authority).
    pub fn login(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    /// v1 issuer base.
    pub fn v1_issuer(self) -> &'static str {
        match self {
            Cloud::Public | Cloud::UsGov => "https://sts.windows.net",
            Cloud::China => "https://sts.chinacloudapi.cn",
        }
    }
}

/// Where keys and tokens are fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// As written, without a trailing slash: `https://login.microsoftonline.com`.
    pub url: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Authority {
    /// `:authority` of the JWKS callout: the host, with the port unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        if (self.tls && self.port == 443) || (!self.tls && self.port == 80) {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host is an IP literal (Envoy cluster type STATIC rather than STRICT_DNS).
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityProvider {
    /// Lower-case GUID.
    pub tenant_id: String,
    pub cloud: Cloud,
    pub authority: Authority,
    pub multi_tenant: bool,
    /// Tenants accepted besides the home tenant (lower-case GUIDs).
    pub allowed_tenants: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Application {
    pub name: Option<String>,
    /// Lower-case GUID.
    pub client_id: String,
    pub app_id_uri: Option<String>,
    pub audiences: Vec<String>,
    pub app_roles: Vec<String>,
    pub scopes: Vec<String>,
}

impl Application {
    /// What a caller asks the agent (and Entra) for: `{app_id_uri or client_id}/.default`.
    pub fn default_scope(&self) -> String {
        format!(
            "{}/.default",
            self.app_id_uri.as_deref().unwrap_or(&self.client_id)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ports {
    pub inbound: u16,
    pub app: Option<u16>,
    pub outbound: u16,
    pub admin: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    FailClosed,
    FailOpen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sidecar {
    pub failure_policy: FailurePolicy,
    pub inbound_address: String,
    pub agent: std::net::SocketAddr,
    pub agent_key_file: String,
    pub ca_file: String,
    /// Directory of the sidecar's certificate files (file-based SDS); unused in `plaintext`.
    pub certificates: String,
    /// The transport uses TLS (`mtls` or `tls`): the sidecar needs its certificate directory.
    pub tls: bool,
}

/// How a caller authenticates to Entra, and the AWS region of what it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    pub credential: CallerCredential,
    pub region: String,
}

/// The agent's credential kind (`bootstrap agent`'s `[credential]`, bootstrap/src/credential).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerCredential {
    /// Client secret in Secrets Manager.
    Secret { secret_id: String },
    /// STS `GetWebIdentityToken` federated into Entra.
    AwsFederation { audience: String },
    /// A KMS-held key signing certificate assertions.
    KmsCertificate { key_id: String, certificate: String },
}

impl CallerCredential {
    pub fn kind(&self) -> super::credential_kind::CredentialKind {
        use super::credential_kind::CredentialKind;
        match self {
            CallerCredential::Secret { .. } => CredentialKind::Secret,
            CallerCredential::AwsFederation { .. } => CredentialKind::AwsFederation,
            CallerCredential::KmsCertificate { .. } => CredentialKind::KmsCertificate,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathRule {
    Exact(String),
    Prefix(String),
}

impl PathRule {
    pub fn value(&self) -> &str {
        match self {
            PathRule::Exact(p) | PathRule::Prefix(p) => p,
        }
    }

    /// `/fraud/analyze`, or `/fraud/*` for a prefix.
    pub fn display(&self) -> String {
        match self {
            PathRule::Exact(p) => p.clone(),
            PathRule::Prefix(p) => format!("{p}*"),
        }
    }

    /// Every path `other` matches is matched by `self` (the filter's shadowing rule).
    pub fn covers(&self, other: &PathRule) -> bool {
        match (self, other) {
            (PathRule::Exact(a), PathRule::Exact(b)) => a == b,
            (PathRule::Exact(_), PathRule::Prefix(_)) => false,
            (PathRule::Prefix(a), PathRule::Exact(b) | PathRule::Prefix(b)) => {
                b.starts_with(a.as_str())
            }
        }
    }
}

/// A caller allowed by a rule, by service name and by client id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub service: String,
    pub client_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Anonymous,
    Token {
        roles: Vec<String>,
        scopes: Vec<String>,
        /// `require: all`: every listed role (or scope) is needed.
        all: bool,
        /// Empty: any caller (holding the roles).
        callers: Vec<Caller>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    pub name: String,
    pub path: PathRule,
    /// Empty: any method.
    pub methods: Vec<String>,
    pub access: Access,
    /// The token's caller must be the app whose workload identity the mTLS peer certificate carries.
    pub bind_to_workload: bool,
}

impl Rule {
    /// `POST`, or `*` for any method.
    pub fn methods_display(&self) -> String {
        if self.methods.is_empty() {
            "*".into()
        } else {
            self.methods.join(",")
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    Deny,
    AllowAnyValidToken,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Service {
    pub name: String,
    pub host: String,
    pub application: Application,
    pub ports: Ports,
    pub sidecar: Sidecar,
    pub identity: Option<Identity>,
    /// Services this one calls (explicit `calls` plus every service whose rules name it), sorted by name.
    pub destinations: Vec<String>,
    pub unmatched: Unmatched,
    pub rules: Vec<Rule>,
    /// The identity its certificate carries (and peers verify).
    pub workload: WorkloadIdentity,
}

impl Service {
    /// The service's sidecar validates inbound requests.
    pub fn is_callee(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The service's sidecar attaches tokens to outbound calls.
    pub fn is_caller(&self) -> bool {
        !self.destinations.is_empty()
    }

    /// Envoy cluster name for calls to this service (`fraud-detector` -> `fraud_detector`).
    pub fn cluster_name(&self) -> String {
        self.name.replace('-', "_")
    }
}

/// The sidecar-to-sidecar hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportMode {
    /// Both sides present certificates from the mesh CA; each verifies the other.
    Mtls,
    /// The callee presents a certificate the caller verifies; callers are anonymous at the TLS layer.
    Tls,
    /// No TLS: tokens cross the wire in clear (loopback demos only).
    Plaintext,
}

impl TransportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportMode::Mtls => "mtls",
            TransportMode::Tls => "tls",
            TransportMode::Plaintext => "plaintext",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transport {
    pub mode: TransportMode,
    pub trust_domain: String,
    pub namespace: String,
}

/// A workload identity: the subject alternative name a service's certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadIdentity {
    Uri(String),
    Dns(String),
}

impl WorkloadIdentity {
    pub fn value(&self) -> &str {
        match self {
            WorkloadIdentity::Uri(v) | WorkloadIdentity::Dns(v) => v,
        }
    }

    /// Envoy's `SanType` name.
    pub fn san_type(&self) -> &'static str {
        match self {
            WorkloadIdentity::Uri(_) => "URI",
            WorkloadIdentity::Dns(_) => "DNS",
        }
    }
}

/// The validated policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshPolicy {
    pub(super) identity_provider: IdentityProvider,
    pub(super) transport: Transport,
    pub(super) services: Vec<Service>,
    pub(super) warnings: Vec<Warning>,
}

impl MeshPolicy {
    pub fn identity_provider(&self) -> &IdentityProvider {
        &self.identity_provider
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// In document order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Risky choices found while validating.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}
