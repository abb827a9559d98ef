//! The mesh policy exactly as written (`mesh.yaml`): serde mirrors, documented in `docs/mesh-policy.md`.
//!
//! Shape and types only: requiredness, defaults and every cross-reference (caller names, roles, ports) are
//! checked by [`super::validate`], which reports the path of the value at fault. Unknown fields are rejected
//! everywhere (`deny_unknown_fields`): a misspelt `allowed_caller` silently ignored would open a route.

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// The whole document.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawMesh {
    /// Format version; must be 1.
    pub version: Option<u32>,
    pub identity_provider: Option<RawIdentityProvider>,
    pub services: Option<RawServices>,
    /// How sidecars talk to each other: mTLS (default), TLS or plaintext.
    pub transport: Option<RawTransport>,
}

/// `transport`: the sidecar-to-sidecar hop.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawTransport {
    /// `mtls` (default), `tls` or `plaintext` (loopback demos only).
    pub mode: Option<RawTransportMode>,
    /// Trust domain of the default SPIFFE identities. Default `cluster.local` (Istio's).
    pub trust_domain: Option<String>,
    /// Namespace of the default SPIFFE identities. Default `default`.
    pub namespace: Option<String>,
    /// Directory of the sidecar's certificate files (Envoy file-based SDS). Default `/etc/entragate/tls`.
    pub certificates: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawTransportMode {
    Mtls,
    Tls,
    Plaintext,
}

/// A service's workload identity, as its certificate carries it: exactly one of `uri` and `dns`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// URI SAN, e.g. `spiffe://fintech.example/ns/payments/sa/transaction-processor`.
    pub uri: Option<String>,
    /// DNS SAN, e.g. `transaction-processor.payments.svc`.
    pub dns: Option<String>,
}

/// `identity_provider`: the Entra tenant and where it is reached.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityProvider {
    /// Home tenant GUID. Required.
    pub tenant_id: Option<String>,
    /// `public` (default), `usgov` or `china`: the issuer hosts and the default authority.
    pub cloud: Option<RawCloud>,
    /// Where signing keys and tokens are fetched. Default: the cloud's login host over https.
    pub authority: Option<String>,
    /// The API applications are registered as multi-tenant. Default false.
    pub multi_tenant: Option<bool>,
    /// Other tenants whose tokens are accepted (multi-tenant APIs). Default none.
    pub allowed_tenants: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawCloud {
    Public,
    Usgov,
    China,
}

/// `services`: name -> service, in document order; a name given twice is an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawServices(pub Vec<(String, RawService)>);

impl<'de> Deserialize<'de> for RawServices {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ServicesVisitor;

        impl<'de> Visitor<'de> for ServicesVisitor {
            type Value = RawServices;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of service names to services")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut services: Vec<(String, RawService)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if services.iter().any(|(seen, _)| *seen == name) {
                        return Err(A::Error::custom(format!("duplicate service `{name}`")));
                    }
                    let service = map.next_value::<RawService>()?;
                    services.push((name, service));
                }
                Ok(RawServices(services))
            }
        }

        deserializer.deserialize_map(ServicesVisitor)
    }
}

/// One service: its Entra application, its sidecar, what it may be called on and what it calls.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Where other sidecars reach this service's sidecar (DNS name or IP). Default: the service name.
    pub host: Option<String>,
    /// The service's Entra application registration. Required.
    pub application: Option<RawApplication>,
    pub ports: Option<RawPorts>,
    pub sidecar: Option<RawSidecar>,
    /// Client credentials of a calling service. Required for every caller.
    pub identity: Option<RawIdentity>,
    /// Services this one calls in addition to those whose rules name it in `allowed_callers`.
    pub calls: Option<Vec<String>>,
    /// `deny` (default) or `allow_any_valid_token`: requests no rule matches.
    pub unmatched_requests: Option<RawUnmatched>,
    /// Route rules, first match wins. Default none (every request refused).
    pub rules: Option<Vec<RawRule>>,
    /// The identity in the service's certificate. Default: URI SAN
    /// `spiffe://<transport.trust_domain>/ns/<transport.namespace>/sa/<service>`.
    pub workload: Option<RawWorkload>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    /// Display name of the app registration (informational).
    pub name: Option<String>,
    /// Application (client) id GUID. Required.
    pub client_id: Option<String>,
    /// Application ID URI, e.g. `api://fintech-fraud-detector`.
    pub app_id_uri: Option<String>,
    /// Accepted `aud` values. Default: the client id and the App ID URI.
    pub audiences: Option<Vec<String>>,
    /// App roles the API exposes.
    pub app_roles: Option<Vec<String>>,
    /// Delegated scopes the API exposes.
    pub scopes: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawPorts {
    /// Sidecar's inbound listener. Default 15006.
    pub inbound: Option<u16>,
    /// The local application behind the inbound listener. Required when the service has rules.
    pub app: Option<u16>,
    /// Sidecar's outbound listener for the application's calls. Default 15001.
    pub outbound: Option<u16>,
    /// Envoy admin (loopback). Default 15000.
    pub admin: Option<u16>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSidecar {
    /// `FAIL_CLOSED` (default) or `FAIL_OPEN`: what Envoy does when the filter's VM fails.
    pub failure_policy: Option<RawFailurePolicy>,
    /// Address the inbound listener binds. Default `0.0.0.0`.
    pub inbound_address: Option<String>,
    /// The bootstrap agent (loopback `IP:port`). Default `127.0.0.1:15901`.
    pub agent: Option<String>,
    /// The agent key file. Default `/run/entragate/agent-key`.
    pub agent_key_file: Option<String>,
    /// CA bundle for the TLS connection to the authority. Default `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<String>,
    /// This sidecar's certificate directory. Default `transport.certificates`.
    pub certificates: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum RawFailurePolicy {
    #[serde(rename = "FAIL_CLOSED")]
    FailClosed,
    #[serde(rename = "FAIL_OPEN")]
    FailOpen,
}

/// How a caller proves its identity to Entra: exactly one of `secret`, `aws_federation`, `kms_certificate`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// `aws-secretsmanager:<secret-id>`.
    pub secret: Option<String>,
    /// No secret: STS `GetWebIdentityToken` as the client assertion (Entra federated credential).
    pub aws_federation: Option<RawAwsFederation>,
    /// No secret: a certificate whose private key is in KMS signs the client assertion.
    pub kms_certificate: Option<RawKmsCertificate>,
    /// AWS region of the secret, of STS or of the KMS key.
    pub region: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawAwsFederation {
    /// Audience of the STS token; must equal the federated credential's. Default `api://AzureADTokenExchange`.
    pub audience: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawKmsCertificate {
    /// KMS key id, ARN or alias of an RSA SIGN_VERIFY key. Required.
    pub key_id: Option<String>,
    /// Path, on the caller's host, of the certificate registered on the app (PEM). Required.
    pub certificate: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawUnmatched {
    Deny,
    AllowAnyValidToken,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRequire {
    Any,
    All,
}

/// One route rule of a service.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique within the service. Default: `METHODS PATH`.
    pub name: Option<String>,
    /// Exact path. Exactly one of `path` and `prefix`.
    pub path: Option<String>,
    /// Path prefix (literal bytes).
    pub prefix: Option<String>,
    /// HTTP methods. Default: any.
    pub methods: Option<Vec<String>>,
    /// No token needed. Default false.
    pub anonymous: Option<bool>,
    /// App roles (any of them, or all with `require: all`).
    pub roles: Option<Vec<String>>,
    /// Delegated scopes (any of them, or all with `require: all`).
    pub scopes: Option<Vec<String>>,
    /// `any` (default) or `all`.
    pub require: Option<RawRequire>,
    /// Service names allowed to call; resolved to their client ids.
    pub allowed_callers: Option<Vec<String>>,
    /// The token's caller must be the app running as the connection's peer workload (mTLS). Default: true
    /// in `mtls`, unavailable otherwise.
    pub bind_to_workload: Option<bool>,
}
