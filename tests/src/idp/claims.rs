//! Default payloads, shaped like the tokens Entra issues (see the claim
//! reference for v1/v2 access tokens): every claim an Entra token of that kind
//! carries, with fresh opaque values and times from the real clock.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::ids;
use super::random;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `iat`, `nbf` and `exp` for a token issued now.
fn times(lifetime: Duration) -> (i64, i64, i64) {
    let now = random::now();
    (now, now, now + lifetime.as_secs() as i64)
}

/// v2 app-only token from the client-credentials flow: `azp`, `idtyp=app`,
/// `roles` array, no `scp`.
pub fn app_v2(issuer: &str, tenant: &str, lifetime: Duration) -> Map<String, Value> {
    let (iat, nbf, exp) = times(lifetime);
    object(json!({
        "aud": ids::API_APP_ID,
        "iss": issuer,
        "iat": iat,
        "nbf": nbf,
        "exp": exp,
        "aio": random::aio(),
        "azp": ids::CLIENT_ID,
        "azpacr": "1",
        "idtyp": "app",
        "oid": ids::CLIENT_SP_OBJECT_ID,
        "rh": random::rh(),
        "roles": [ids::CLIENT_ROLE],
        "sub": ids::CLIENT_SP_OBJECT_ID,
        "tid": tenant,
        "uti": random::uti(),
        "ver": "2.0",
    }))
}

/// v1 app-only token: `sts.windows.net` issuer, `appid`/`appidacr`, `idp`,
/// App ID URI audience.
pub fn app_v1(issuer: &str, tenant: &str, lifetime: Duration) -> Map<String, Value> {
    let (iat, nbf, exp) = times(lifetime);
    object(json!({
        "aud": ids::API_APP_ID_URI,
        "iss": issuer,
        "iat": iat,
        "nbf": nbf,
        "exp": exp,
        "aio": random::aio(),
        "appid": ids::CLIENT_ID,
        "appidacr": "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": ids::CLIENT_SP_OBJECT_ID,
        "rh": random::rh(),
        "roles": [ids::CLIENT_ROLE],
        "sub": ids::CLIENT_SP_OBJECT_ID,
        "tid": tenant,
        "uti": random::uti(),
        "ver": "1.0",
    }))
}

/// v2 delegated (user) token: `scp` string, user `oid`, pairwise `sub`,
/// `name`/`preferred_username`, no `roles`.
pub fn user_v2(issuer: &str, tenant: &str, lifetime: Duration) -> Map<String, Value> {
    let (iat, nbf, exp) = times(lifetime);
    object(json!({
        "aud": ids::API_APP_ID,
        "iss": issuer,
        "iat": iat,
        "nbf": nbf,
        "exp": exp,
        "aio": random::aio(),
        "azp": ids::USER_CLIENT_ID,
        "azpacr": "0",
        "name": "Analyst One",
        "oid": ids::USER_OBJECT_ID,
        "preferred_username": "analyst@entragate.test",
        "rh": random::rh(),
        "scp": ids::USER_SCOPES,
        "sub": "uQ8p2dK4n5mR7sT9vW1xY3zA5bC7dE9fG1hJ3kL5mN7",
        "tid": tenant,
        "uti": random::uti(),
        "ver": "2.0",
    }))
}
