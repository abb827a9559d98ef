//! A local AWS STS endpoint for IAM outbound identity federation: the Query-protocol action
//! `GetWebIdentityToken` only (moto 5.2.5 does not implement it), driven by the real `aws-sdk-sts`. Like an
//! AWS account's issuer it signs with its own RSA key and publishes `/.well-known/openid-configuration`
//! and `/.well-known/jwks.json`, so the IdP verifies its tokens exactly as Entra verifies AWS's: by
//! fetching discovery and keys from the issuer URL (here `http://127.0.0.1:<port>`).
//!
//! The token's `sub` is the calling role's ARN ([`Sts::set_role_arn`]; SigV4 is not checked, the test
//! decides who is calling). [`Sts::set_enabled`] simulates `aws iam disable-outbound-web-identity-federation`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::idp::SigningKey;
use crate::server::{Handler, HttpRequest, Reply, Server};

/// The default role the workload runs as.
pub const DEFAULT_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/transaction-processor";

struct StsState {
    key: SigningKey,
    issuer: String,
    role_arn: Mutex<String>,
    enabled: Mutex<bool>,
    issued: Mutex<Vec<String>>,
}

/// A running local STS; stops when dropped.
pub struct Sts {
    server: Server,
    state: Arc<StsState>,
}

impl Sts {
    pub fn start() -> anyhow::Result<Sts> {
        let key = crate::idp::next_key()?;
        // The issuer is the server's own URL, known once bound: bind first, then fill it in.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        drop(listener);
        let state = Arc::new(StsState {
            key,
            issuer: format!("http://{addr}"),
            role_arn: Mutex::new(DEFAULT_ROLE_ARN.to_string()),
            enabled: Mutex::new(true),
            issued: Mutex::default(),
        });
        let server = Server::start_on(
            "sts",
            addr,
            StsHandler {
                state: Arc::clone(&state),
            },
        )?;
        Ok(Sts { server, state })
    }

    /// The endpoint for `--endpoint-url` / `credential.endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// `iss` of its tokens (the account's outbound federation issuer URL).
    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    pub fn set_role_arn(&self, arn: &str) {
        *lock(&self.state.role_arn) = arn.to_string();
    }

    /// `false`: every call fails with `OutboundWebIdentityFederationDisabledException`.
    pub fn set_enabled(&self, enabled: bool) {
        *lock(&self.state.enabled) = enabled;
    }

    /// Every token issued (for log-leak checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct StsHandler {
    state: Arc<StsState>,
}

impl Handler for StsHandler {
    async fn handle(&self, request: HttpRequest) -> Reply {
        let s = &self.state;
        let get = request.method == Method::GET;
        match request.path() {
            "/.well-known/openid-configuration" if get => Reply::json(
                StatusCode::OK,
                &json!({
                    "issuer": s.issuer,
                    "jwks_uri": format!("{}/.well-known/jwks.json", s.issuer),
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }),
            ),
            "/.well-known/jwks.json" if get => {
                let mut jwk = s.key.jwk(&s.issuer);
                if let Some(o) = jwk.as_object_mut() {
                    o.remove("issuer");
                    o.insert("alg".into(), json!("RS256"));
                }
                Reply::json(StatusCode::OK, &json!({ "keys": [jwk] }))
            }
            "/" if request.method == Method::POST => self.get_web_identity_token(&request),
            _ => error(StatusCode::NOT_FOUND, "InvalidAction", "unknown action"),
        }
    }
}

impl StsHandler {
    fn get_web_identity_token(&self, request: &HttpRequest) -> Reply {
        let s = &self.state;
        let mut action = None;
        let mut audiences = Vec::new();
        let mut algorithm = "RS256".to_string();
        let mut duration = 300u64;
        for (k, v) in form_urlencoded::parse(&request.body) {
            match k.as_ref() {
                "Action" => action = Some(v.into_owned()),
                k if k.starts_with("Audience.member.") => audiences.push(v.into_owned()),
                "SigningAlgorithm" => algorithm = v.into_owned(),
                "DurationSeconds" => duration = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        if action.as_deref() != Some("GetWebIdentityToken") {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                "only GetWebIdentityToken is implemented",
            );
        }
        if !*lock(&s.enabled) {
            return error(
                StatusCode::FORBIDDEN,
                "OutboundWebIdentityFederationDisabledException",
                "Outbound web identity federation is disabled for this account.",
            );
        }
        if audiences.is_empty() || !(60..=3600).contains(&duration) || algorithm != "RS256" {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "Audience is required, DurationSeconds must be 60-3600 and this emulator signs RS256 only",
            );
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let aud = if audiences.len() == 1 {
            json!(audiences[0])
        } else {
            json!(audiences)
        };
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": s.key.kid() });
        let claims = json!({
            "iss": s.issuer,
            "sub": *lock(&s.role_arn),
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + duration,
            "jti": crate::random_uuid(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let jwt = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(s.key.sign_rs256(input.as_bytes()))
        );
        lock(&s.issued).push(jwt.clone());
        let expiration = httpdate_iso(now + duration);
        Reply::new(
            StatusCode::OK,
            &[("content-type", "text/xml".to_string())],
            format!(
                "<GetWebIdentityTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <GetWebIdentityTokenResult><WebIdentityToken>{jwt}</WebIdentityToken>\
                 <Expiration>{expiration}</Expiration></GetWebIdentityTokenResult>\
                 <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
                 </GetWebIdentityTokenResponse>",
                crate::random_uuid()
            ),
        )
    }
}

/// `2026-12-04T18:30:00Z` for `unix` seconds (the IdP's civil-from-days conversion).
fn httpdate_iso(unix: u64) -> String {
    let unix = i64::try_from(unix).unwrap_or(i64::MAX);
    let (y, m, d) = crate::idp::random::civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    Reply::new(
        status,
        &[("content-type", "text/xml".to_string())],
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type>\
             <Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            crate::random_uuid()
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates() {
        assert_eq!(super::httpdate_iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::httpdate_iso(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
