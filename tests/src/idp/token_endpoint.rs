//! `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant, checked
//! in the order Entra reports problems, answering with an Entra-shaped token
//! response or error.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{json, Value};

use super::claims;
use super::errors::EntraError;
use super::model::{ApiApp, ClientApp, Directory, TokenVersion};
use super::routes::require_post;
use super::state::{lock, State, TokenRequest};
use super::token::TokenBuilder;
use crate::server::{HttpRequest, Reply};

/// Form fields and credentials of one request.
struct Form {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    scope: Option<String>,
    auth_method: &'static str,
}

/// RFC 7523 `client_assertion_type`, the only one Entra accepts.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl Form {
    fn parse(request: &HttpRequest) -> Form {
        let mut form = Form {
            grant_type: None,
            client_id: None,
            client_secret: None,
            client_assertion_type: None,
            client_assertion: None,
            scope: None,
            auth_method: "none",
        };
        for (name, value) in form_urlencoded::parse(&request.body) {
            let value = Some(value.into_owned());
            match name.as_ref() {
                "grant_type" => form.grant_type = value,
                "client_id" => form.client_id = value,
                "client_secret" => form.client_secret = value,
                "scope" => form.scope = value,
                "client_assertion_type" => form.client_assertion_type = value,
                "client_assertion" => form.client_assertion = value,
                _ => {}
            }
        }
        if form.client_assertion.is_some() {
            form.auth_method = "private_key_jwt";
        } else if form.client_secret.is_some() {
            form.auth_method = "client_secret_post";
        } else if let Some((id, secret)) = basic_credentials(request) {
            form.auth_method = "client_secret_basic";
            form.client_id.get_or_insert(id);
            form.client_secret = Some(secret);
        }
        form
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 2.3.1).
fn basic_credentials(request: &HttpRequest) -> Option<(String, String)> {
    let encoded = request.header("authorization")?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

pub(crate) async fn handle(state: &Arc<State>, tenant: &str, request: &HttpRequest) -> Reply {
    let form = Form::parse(request);
    let directory = lock(&state.directory).clone();
    let tenant = if directory
        .tenants
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant))
    {
        tenant.to_string()
    } else {
        // `/common` and friends: the client's home tenant, i.e. the default.
        directory.default_tenant().to_string()
    };
    let client_request_id = request.header("client-request-id").map(str::to_string);

    let outcome = match require_post(request) {
        Ok(()) => issue(state, &directory, &tenant, &form).await,
        Err(e) => Err(e),
    };
    let reply = match outcome {
        Ok(body) => Reply::json_with(
            StatusCode::OK,
            &[
                ("cache-control", "no-store, no-cache".to_string()),
                ("pragma", "no-cache".to_string()),
            ],
            &body,
        ),
        Err(error) => Reply::json_with(
            error.status,
            &[("cache-control", "no-store, no-cache".to_string())],
            &error.body(&directory.authority, client_request_id.as_deref()),
        ),
    };
    let status = match &reply {
        Reply::Respond(response) => response.status().as_u16(),
        Reply::Close => 0,
    };
    lock(&state.token_log).push(TokenRequest {
        tenant,
        grant_type: form.grant_type,
        client_id: form.client_id,
        scope: form.scope,
        auth_method: form.auth_method,
        client_request_id,
        status,
    });
    reply
}

async fn issue(
    state: &State,
    directory: &Directory,
    tenant: &str,
    form: &Form,
) -> Result<Value, EntraError> {
    let grant_type = form
        .grant_type
        .as_deref()
        .ok_or_else(|| EntraError::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(EntraError::unsupported_grant(grant_type));
    }
    let client_id = form
        .client_id
        .as_deref()
        .ok_or_else(|| EntraError::missing_parameter("client_id"))?;
    let client = directory
        .clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
        .ok_or_else(|| EntraError::unknown_client(client_id, tenant))?;
    match (&form.client_assertion, &form.client_secret) {
        (Some(assertion), None) => {
            if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
                return Err(EntraError::missing_parameter("client_assertion_type"));
            }
            let token_endpoint = format!("{}/{tenant}/oauth2/v2.0/token", state.base_url());
            super::client_assertion::verify(
                directory,
                client_id,
                &token_endpoint,
                assertion,
                &state.seen_jti,
            )
            .await?;
        }
        (None, Some(secret)) => {
            if !constant_time_eq(secret.as_bytes(), client.secret.as_bytes()) {
                return Err(EntraError::bad_secret(client_id));
            }
        }
        _ => return Err(EntraError::missing_secret()),
    }
    let scope = form
        .scope
        .as_deref()
        .ok_or_else(|| EntraError::missing_parameter("scope"))?;
    // Client credentials only accept a single `<resource>/.default` scope.
    let resource = scope
        .strip_suffix("/.default")
        .filter(|r| !r.is_empty() && !r.contains(' '))
        .ok_or_else(|| EntraError::invalid_scope(scope))?;
    let api = directory
        .apis
        .iter()
        .find(|api| api.matches(resource))
        .ok_or_else(|| EntraError::unknown_resource(resource, tenant))?;

    let token = mint(state, directory, tenant, client, api).build();
    lock(&state.issued).push(token.clone());
    let lifetime = directory.token_lifetime.as_secs();
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    });
    if let Some(refresh_in) = directory.refresh_in {
        body["refresh_in"] = json!(refresh_in.as_secs());
    }
    Ok(body)
}

/// The access token Entra would issue `client` for `api`.
fn mint(
    state: &State,
    directory: &Directory,
    tenant: &str,
    client: &ClientApp,
    api: &ApiApp,
) -> TokenBuilder {
    let lifetime = directory.token_lifetime;
    let key = Arc::clone(&lock(&state.keys).current);
    let builder = match api.token_version {
        TokenVersion::V2 => TokenBuilder::new(
            claims::app_v2(&directory.issuer_v2(tenant), tenant, lifetime),
            key,
        )
        .aud(&api.app_id)
        .claim("azp", client.client_id.as_str()),
        TokenVersion::V1 => TokenBuilder::new(
            claims::app_v1(&directory.issuer_v1(tenant), tenant, lifetime),
            key,
        )
        .aud(&api.app_id_uri)
        .claim("appid", client.client_id.as_str()),
    };
    let roles = client.roles_for(&api.app_id);
    let builder = builder
        .oid(&client.sp_object_id)
        .subject(&client.sp_object_id);
    // Entra omits `roles` entirely when the client holds none.
    if roles.is_empty() {
        builder.without_claim("roles")
    } else {
        builder.roles(roles)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
