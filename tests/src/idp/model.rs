//! The directory the IdP serves: tenants, applications and what each client
//! was granted, plus the knobs tests turn (issuer authority, token lifetime).

use std::fmt;
use std::time::Duration;

use super::ids;

/// Which access-token format an API receives (the API app manifest's
/// `requestedAccessTokenVersion` in Entra).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenVersion {
    V1,
    V2,
}

/// A protected API (resource application). Clients ask for it with
/// `scope=<app_id_uri>/.default` or `scope=<app_id>/.default`.
#[derive(Clone, Debug)]
pub struct ApiApp {
    /// Application (client) ID: `aud` of v2 tokens.
    pub app_id: String,
    /// Application ID URI: `aud` of v1 tokens.
    pub app_id_uri: String,
    pub token_version: TokenVersion,
}

impl ApiApp {
    pub fn new(app_id: &str, app_id_uri: &str, token_version: TokenVersion) -> ApiApp {
        ApiApp {
            app_id: app_id.to_string(),
            app_id_uri: app_id_uri.to_string(),
            token_version,
        }
    }

    /// Does `resource` (the part of the scope before `/.default`) name this API?
    pub(crate) fn matches(&self, resource: &str) -> bool {
        let resource = resource.trim_end_matches('/');
        resource.eq_ignore_ascii_case(&self.app_id) || resource == self.app_id_uri
    }
}

/// A confidential client (daemon) that uses the client-credentials grant.
#[derive(Clone)]
pub struct ClientApp {
    pub client_id: String,
    pub secret: String,
    /// Object ID of its service principal: `oid`/`sub` of its tokens.
    pub sp_object_id: String,
    /// App roles granted per API: `(api app_id, roles)`.
    pub granted_roles: Vec<(String, Vec<String>)>,
}

impl ClientApp {
    pub fn new(client_id: &str, secret: &str) -> ClientApp {
        ClientApp {
            client_id: client_id.to_string(),
            secret: secret.to_string(),
            sp_object_id: super::random::uuid(),
            granted_roles: Vec::new(),
        }
    }

    /// Grants app roles on the API with application ID `api_app_id`.
    pub fn grant<I, S>(mut self, api_app_id: &str, roles: I) -> ClientApp
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.granted_roles.push((
            api_app_id.to_string(),
            roles.into_iter().map(Into::into).collect(),
        ));
        self
    }

    pub(crate) fn roles_for(&self, api_app_id: &str) -> Vec<String> {
        self.granted_roles
            .iter()
            .filter(|(api, _)| api.eq_ignore_ascii_case(api_app_id))
            .flat_map(|(_, roles)| roles.iter().cloned())
            .collect()
    }
}

impl fmt::Debug for ClientApp {
    // The secret stays out of test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientApp")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("sp_object_id", &self.sp_object_id)
            .field("granted_roles", &self.granted_roles)
            .finish()
    }
}

/// A federated identity credential on an app registration: Entra exchanges a token from `issuer` whose
/// `sub` and `aud` match exactly (case-sensitive) for an access token of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    /// `api://AzureADTokenExchange` for Entra ID.
    pub audiences: Vec<String>,
}

impl FederatedCredential {
    pub fn new(issuer: &str, subject: &str) -> FederatedCredential {
        FederatedCredential {
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            audiences: vec!["api://AzureADTokenExchange".to_string()],
        }
    }
}

/// Mutable IdP settings.
#[derive(Clone, Debug)]
pub(crate) struct Directory {
    /// Known tenant IDs; the first is the default `tid`.
    pub tenants: Vec<String>,
    /// Authority of v2 issuers: `{authority}/{tid}/v2.0`.
    pub authority: String,
    /// Authority of v1 issuers: `{v1_authority}/{tid}/`.
    pub v1_authority: String,
    pub token_lifetime: Duration,
    pub refresh_in: Option<Duration>,
    pub apis: Vec<ApiApp>,
    pub clients: Vec<ClientApp>,
    /// Federated identity credentials: `(client id, credential)`.
    pub federated: Vec<(String, FederatedCredential)>,
    /// Registered certificates (DER): `(client id, certificate)`.
    pub certificates: Vec<(String, Vec<u8>)>,
}

impl Directory {
    pub fn new(tenant: &str) -> Directory {
        Directory {
            tenants: vec![tenant.to_string()],
            authority: ids::ENTRA_AUTHORITY.to_string(),
            v1_authority: ids::ENTRA_V1_AUTHORITY.to_string(),
            token_lifetime: Duration::from_secs(3599),
            refresh_in: None,
            apis: vec![ApiApp::new(
                ids::API_APP_ID,
                ids::API_APP_ID_URI,
                TokenVersion::V2,
            )],
            clients: vec![ClientApp {
                client_id: ids::CLIENT_ID.to_string(),
                secret: ids::CLIENT_SECRET.to_string(),
                sp_object_id: ids::CLIENT_SP_OBJECT_ID.to_string(),
                granted_roles: vec![(
                    ids::API_APP_ID.to_string(),
                    vec![ids::CLIENT_ROLE.to_string()],
                )],
            }],
            federated: Vec::new(),
            certificates: Vec::new(),
        }
    }

    pub fn default_tenant(&self) -> &str {
        self.tenants.first().map_or(ids::TENANT_ID, String::as_str)
    }

    pub fn issuer_v2(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.authority.trim_end_matches('/'))
    }

    pub fn issuer_v1(&self, tenant: &str) -> String {
        format!("{}/{tenant}/", self.v1_authority.trim_end_matches('/'))
    }
}
