//! Request routing for the IdP: discovery, JWKS and the token endpoint, each
//! counted and passed through its injected fault first.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::errors::EntraError;
use super::faults::{Endpoint, Fault};
use super::state::{lock, State};
use super::token_endpoint;
use crate::server::{Handler, HttpRequest, Reply};

/// Path segments that stand for "any tenant" in Entra URLs.
const MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

pub(crate) struct IdpHandler {
    pub state: Arc<State>,
}

impl Handler for IdpHandler {
    async fn handle(&self, request: HttpRequest) -> Reply {
        let segments: Vec<&str> = request.path().trim_matches('/').split('/').collect();
        let (tenant, rest) = match segments.split_first() {
            Some((tenant, rest)) => (tenant.to_string(), rest.to_vec()),
            None => return not_found(),
        };
        let endpoint = match rest.as_slice() {
            ["v2.0", ".well-known", "openid-configuration"] => Endpoint::Discovery,
            ["discovery", "v2.0", "keys"] | ["discovery", "keys"] => Endpoint::Jwks,
            ["oauth2", "v2.0", "token"] => Endpoint::Token,
            _ => return not_found(),
        };
        self.state.counters.bump(endpoint);

        let fault = lock(&self.state.faults).take(endpoint);
        if let Some(reply) = self.fault_reply(endpoint, &fault, &request) {
            return reply;
        }
        if let Fault::Slow(delay) = fault {
            tokio::time::sleep(delay).await;
        }

        if !self.tenant_known(&tenant) {
            let authority = lock(&self.state.directory).authority.clone();
            let error = EntraError::unknown_tenant(&tenant);
            return Reply::json(error.status, &error.body(&authority, None));
        }
        match endpoint {
            Endpoint::Discovery => self.discovery(&tenant),
            Endpoint::Jwks => self.jwks(&tenant),
            Endpoint::Token => token_endpoint::handle(&self.state, &tenant, &request).await,
        }
    }
}

impl IdpHandler {
    fn tenant_known(&self, tenant: &str) -> bool {
        MULTI_TENANT.contains(&tenant)
            || lock(&self.state.directory)
                .tenants
                .iter()
                .any(|t| t.eq_ignore_ascii_case(tenant))
    }

    /// Multi-tenant documents keep Entra's literal `{tenantid}` placeholder
    /// in issuers; tenant-specific ones fill it in.
    fn issuer_tenant(tenant: &str) -> &str {
        if MULTI_TENANT.contains(&tenant) {
            "{tenantid}"
        } else {
            tenant
        }
    }

    fn discovery(&self, tenant: &str) -> Reply {
        let issuer = lock(&self.state.directory).issuer_v2(Self::issuer_tenant(tenant));
        let base = format!("{}/{tenant}", self.state.base_url());
        Reply::json(
            StatusCode::OK,
            &json!({
                "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": issuer,
                "request_uri_parameter_supported": false,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
                "http_logout_supported": true,
                "frontchannel_logout_supported": true,
                "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
                "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
                "kerberos_endpoint": format!("{base}/kerberos"),
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            }),
        )
    }

    fn jwks(&self, tenant: &str) -> Reply {
        Reply::json(StatusCode::OK, &jwks_document(&self.state, tenant))
    }

    /// `Some` when the fault replaces the normal answer.
    fn fault_reply(
        &self,
        endpoint: Endpoint,
        fault: &Fault,
        request: &HttpRequest,
    ) -> Option<Reply> {
        let entra_body = |error: EntraError| {
            let authority = lock(&self.state.directory).authority.clone();
            error.body(&authority, request.header("client-request-id"))
        };
        match fault {
            Fault::None | Fault::Slow(_) => None,
            Fault::CloseConnection => Some(Reply::Close),
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Some(if endpoint == Endpoint::Token {
                    Reply::json(status, &entra_body(EntraError::server_error(status)))
                } else {
                    Reply::new(
                        status,
                        &[("content-type", "text/plain".into())],
                        "injected failure\n",
                    )
                })
            }
            Fault::Garbage => Some(Reply::new(
                StatusCode::OK,
                &[("content-type", "application/json; charset=utf-8".into())],
                "<html><body>this is not JSON {\"keys\": [",
            )),
            Fault::EmptyKeys => Some(Reply::json(
                StatusCode::OK,
                &if endpoint == Endpoint::Jwks {
                    json!({"keys": []})
                } else {
                    json!({})
                },
            )),
            Fault::Oversized { bytes } => {
                let mut body = if endpoint == Endpoint::Jwks {
                    let tenant = lock(&self.state.directory).default_tenant().to_string();
                    jwks_document(&self.state, &tenant)
                } else {
                    json!({})
                };
                body["padding"] = Value::String("x".repeat(*bytes));
                Some(Reply::json(StatusCode::OK, &body))
            }
            Fault::TooManyRequests { retry_after_secs } => {
                let headers = [("retry-after", retry_after_secs.to_string())];
                Some(if endpoint == Endpoint::Token {
                    Reply::json_with(
                        StatusCode::TOO_MANY_REQUESTS,
                        &headers,
                        &entra_body(EntraError::throttled()),
                    )
                } else {
                    Reply::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        &headers,
                        "too many requests\n",
                    )
                })
            }
        }
    }
}

/// The key set as served for `tenant`.
pub(crate) fn jwks_document(state: &State, tenant: &str) -> Value {
    let issuer = lock(&state.directory).issuer_v2(IdpHandler::issuer_tenant(tenant));
    let keys: Vec<Value> = lock(&state.keys)
        .published
        .iter()
        .map(|key| key.jwk(&issuer))
        .collect();
    json!({ "keys": keys })
}

fn not_found() -> Reply {
    Reply::new(
        StatusCode::NOT_FOUND,
        &[("content-type", "text/plain".into())],
        "not found\n",
    )
}

/// Only `POST` reaches the token logic.
pub(crate) fn require_post(request: &HttpRequest) -> Result<(), EntraError> {
    if request.method == Method::POST {
        Ok(())
    } else {
        Err(EntraError::post_only())
    }
}
