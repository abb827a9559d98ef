//! `bootstrap token`: acquire one token and describe it. For debugging access problems (wrong audience,
//! missing role…) without ever exposing the token unless asked.

use super::common::{self, IdpArgs, SecretArgs};
use crate::config;
use crate::exit::Failure;
use crate::secret::CredentialStore;
use crate::text::duration as dur;
use crate::token::cache::CallerIdentity;
use crate::token::{timing, TokenCache};
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;

#[derive(Clone, Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub idp: IdpArgs,
    /// Scope or resource to request, as [NAME=]SCOPE [default: the config file's scope, if it has exactly one].
    #[arg(long, value_name = "[NAME=]SCOPE")]
    pub scope: Option<String>,
    /// Print the access token itself on stdout (metadata then goes to stderr). Treat the output as a secret.
    #[arg(long)]
    pub print_token: bool,
    /// Print the metadata as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Token requests to try in all when the identity provider is unreachable, throttling or failing.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
}

pub async fn run(args: TokenArgs) -> Result<(), Failure> {
    let file = common::load_file(&args.secret)?;
    let (endpoint, retry) = common::idp_settings(&args.idp, &file)?;
    let credential = common::credential_config(&file)?;
    let spec = match (&args.scope, file.scopes.as_slice()) {
        (Some(s), _) => s.clone(),
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(Failure::Usage(
                "pass --scope api://<resource>/.default".into(),
            ))
        }
        (None, _) => {
            return Err(Failure::Usage(
                "the config file has several scopes: pick one with --scope".into(),
            ))
        }
    };
    let scope = config::parse_scope_spec(&spec).map_err(Failure::Usage)?;
    let identity =
        match common::assertion_identity(&credential, &args.secret, &file, &endpoint).await {
            Some(id) => {
                crate::info!(
                    "requesting token for {} from {}",
                    scope.scope,
                    endpoint.url(&id.tenant_id)
                );
                CallerIdentity::Assertion(Arc::new(id))
            }
            None => {
                let aws = common::aws_settings(&args.secret, &file)?;
                let source = common::secret_source(&aws).await?;
                let (credentials, _) = common::read_secret(&source).await?;
                crate::info!(
                    "requesting token for {} from {}",
                    scope.scope,
                    endpoint.url(&credentials.tenant_id)
                );
                CallerIdentity::Secret(Arc::new(CredentialStore::new(
                    credentials,
                    Box::new(source),
                )))
            }
        };
    let cache = TokenCache::with_identity(endpoint, identity, vec![scope.clone()], retry);
    let token = cache
        .get(&scope.name, args.max_attempts)
        .await
        .map_err(|e| Failure::Idp(e.to_string()))?;

    let refresh_after = timing::refresh_after(token.lifetime, token.refresh_in_hint);
    let claims = jwt_claims(token.secret());
    let meta = json!({
        "scope": scope.scope,
        "token_type": token.token_type,
        "expires_in_secs": token.lifetime.as_secs(),
        "expires_at": token.expires_at_unix,
        "refresh_in_hint_secs": token.refresh_in_hint.map(|d| d.as_secs()),
        "agent_would_refresh_after_secs": refresh_after.as_secs(),
        "sha256_prefix": token.fingerprint,
        "token_requests": cache.requests(&scope.name),
        "claims": claims,
    });
    let text = if args.json {
        format!("{meta}\n")
    } else {
        human(&scope.scope, &token, refresh_after, meta.get("claims"))
    };
    let mut stdout = std::io::stdout().lock();
    let result = if args.print_token {
        // Token alone on stdout so `TOKEN=$(bootstrap token --print-token …)` works; metadata on stderr.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        writeln!(stdout, "{}", token.secret())
    } else {
        stdout.write_all(text.as_bytes())
    };
    result.map_err(|e| Failure::Internal(format!("cannot write output: {e}")))
}

fn human(
    scope: &str,
    token: &crate::token::Token,
    refresh_after: std::time::Duration,
    claims: Option<&Value>,
) -> String {
    let expires = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(token.expires_at_unix),
    );
    let mut out = format!(
        "scope:       {scope}\ntoken type:  {}\nexpires in:  {} (at {expires})\nrefresh:     the agent would refresh after {}{}\nsha256:      {}…\n",
        token.token_type,
        dur(token.lifetime),
        dur(refresh_after),
        token.refresh_in_hint.map(|h| format!(" (refresh_in hint {})", dur(h))).unwrap_or_default(),
        token.fingerprint,
    );
    match claims {
        Some(Value::Object(map)) if !map.is_empty() => {
            out.push_str("claims:\n");
            for (k, v) in map {
                let shown = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push_str(&format!("  {k:<8} {shown}\n"));
            }
        }
        _ => out.push_str("claims:     (not a JWT: opaque token)\n"),
    }
    out
}

/// The claims that explain authorization outcomes. The signature is not checked: this is a description for
/// people, not a validation (the callee's filter validates).
pub fn jwt_claims(token: &str) -> Value {
    const SHOWN: [&str; 11] = [
        "aud", "iss", "tid", "azp", "appid", "idtyp", "roles", "scp", "ver", "iat", "exp",
    ];
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Value::Null;
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))
    else {
        return Value::Null;
    };
    let Ok(Value::Object(all)) = serde_json::from_slice::<Value>(&bytes) else {
        return Value::Null;
    };
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| SHOWN.contains(&k.as_str()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_of_a_jwt_and_of_garbage() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"aud":"api://x","roles":["Fraud.Scan"],"azp":"c1","secretish":"nope"}"#);
        let c = jwt_claims(&format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"));
        assert_eq!(c["aud"], "api://x");
        assert_eq!(c["roles"][0], "Fraud.Scan");
        assert!(c.get("secretish").is_none());
        assert_eq!(jwt_claims("opaque"), Value::Null);
        assert_eq!(jwt_claims("a.!!!.c"), Value::Null);
    }
}
