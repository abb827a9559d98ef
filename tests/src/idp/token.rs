//! Minting JWTs: Entra-shaped defaults, then any override a test needs,
//! including deliberately broken or malicious tokens.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::keys::SigningKey;
use super::random;

/// How the token's signature is produced.
#[derive(Clone, Debug)]
pub enum Signature {
    /// RS256 with the builder's key (the IdP's current key unless chosen
    /// with [`TokenBuilder::signed_with`]).
    Rs256,
    /// No signature at all: `header.payload.` (use with `alg: none`).
    Empty,
    /// Exactly these bytes, base64url-encoded as the third segment.
    Raw(Vec<u8>),
    /// HMAC-SHA256 with this secret.
    Hs256(Vec<u8>),
}

/// Builds one token. Obtain it from `Idp::app_token_v2()` and friends, which
/// fill in claims the way Entra issues them; everything can be overridden.
///
/// ```no_run
/// # fn demo(idp: &entragate_tests::Idp) {
/// let token = idp
///     .app_token_v2()
///     .roles(["Fraud.Scan"])
///     .expires_in(std::time::Duration::from_secs(60))
///     .header("kid", "unknown-kid")
///     .build();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TokenBuilder {
    claims: Map<String, Value>,
    /// Explicit header changes, applied after the signature's defaults
    /// (`None` removes the member).
    header_overrides: Vec<(String, Option<Value>)>,
    /// Names the token in `kid`/`x5t` and signs it for [`Signature::Rs256`].
    key: Arc<SigningKey>,
    signature: Signature,
}

impl TokenBuilder {
    pub(crate) fn new(claims: Map<String, Value>, key: Arc<SigningKey>) -> TokenBuilder {
        TokenBuilder {
            claims,
            header_overrides: Vec::new(),
            key,
            signature: Signature::Rs256,
        }
    }

    // ---- claims ----

    /// Sets (or replaces) one claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_string(), value.into());
        self
    }

    /// Removes a claim entirely.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Replaces the whole payload.
    pub fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims = claims;
        self
    }

    pub fn aud(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    pub fn iss(self, iss: &str) -> Self {
        self.claim("iss", iss)
    }

    pub fn tid(self, tid: &str) -> Self {
        self.claim("tid", tid)
    }

    /// Sets `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    pub fn oid(self, oid: &str) -> Self {
        self.claim("oid", oid)
    }

    /// `roles` as Entra sends them: a JSON array of app-role values.
    pub fn roles<I, S>(self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let roles: Vec<Value> = roles.into_iter().map(|r| Value::String(r.into())).collect();
        self.claim("roles", roles)
    }

    /// `scp` as Entra sends it: one space-separated string.
    pub fn scp(self, scp: &str) -> Self {
        self.claim("scp", scp)
    }

    /// `exp` = now + `lifetime` (keeps `iat`/`nbf` as they are).
    pub fn expires_in(self, lifetime: Duration) -> Self {
        self.claim("exp", random::now() + lifetime.as_secs() as i64)
    }

    /// A token that expired `ago` (issued an hour before that).
    pub fn expired_since(self, ago: Duration) -> Self {
        let exp = random::now() - ago.as_secs() as i64;
        self.claim("exp", exp)
            .claim("iat", exp - 3600)
            .claim("nbf", exp - 3600)
    }

    /// A token not valid for another `delay` (`nbf` in the future).
    pub fn not_before_in(self, delay: Duration) -> Self {
        self.claim("nbf", random::now() + delay.as_secs() as i64)
    }

    // ---- header ----

    /// Sets a header member (`alg`, `kid`, `x5t`, `crit`, `jku`, `typ`, ...).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header_overrides
            .push((name.to_string(), Some(value.into())));
        self
    }

    /// Removes a header member (e.g. `kid`, to send only `x5t` as some v1
    /// tokens do).
    pub fn without_header(mut self, name: &str) -> Self {
        self.header_overrides.push((name.to_string(), None));
        self
    }

    // ---- signature ----

    /// Signs with `key` (published or not); `kid`/`x5t` follow the key.
    pub fn signed_with(mut self, key: &Arc<SigningKey>) -> Self {
        self.key = Arc::clone(key);
        self.signature = Signature::Rs256;
        self
    }

    /// The `alg: none` attack: header says `none`, signature is empty
    /// (`kid`/`x5t` still name a published key).
    pub fn alg_none(mut self) -> Self {
        self.signature = Signature::Empty;
        self.header("alg", "none")
    }

    /// HS256 with an arbitrary secret (header `alg: HS256`).
    pub fn hs256(mut self, secret: &[u8]) -> Self {
        self.signature = Signature::Hs256(secret.to_vec());
        self.header("alg", "HS256")
    }

    /// The algorithm-confusion attack: HS256 keyed with the RSA public key's
    /// PEM, as a naive verifier that trusts `alg` would compute it. The
    /// `kid` still names the published key.
    pub fn hs256_with_public_key(self) -> Self {
        let pem = self.key.public_key_pem();
        self.hs256(pem.as_bytes())
    }

    /// Uses exactly these signature bytes (the header keeps `RS256`).
    pub fn raw_signature(mut self, signature: Vec<u8>) -> Self {
        self.signature = Signature::Raw(signature);
        self
    }

    // ---- output ----

    /// The header that [`build`](Self::build) will encode.
    pub fn header_json(&self) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("typ".into(), json!("JWT"));
        header.insert("alg".into(), json!("RS256"));
        header.insert("x5t".into(), json!(self.key.kid()));
        header.insert("kid".into(), json!(self.key.kid()));
        for (name, value) in &self.header_overrides {
            match value {
                Some(value) => header.insert(name.clone(), value.clone()),
                None => header.remove(name),
            };
        }
        header
    }

    /// The payload that [`build`](Self::build) will encode.
    pub fn claims_json(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Encodes and signs: `base64url(header).base64url(payload).base64url(sig)`.
    pub fn build(&self) -> String {
        let header = Value::Object(self.header_json()).to_string();
        let payload = Value::Object(self.claims.clone()).to_string();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = match &self.signature {
            Signature::Rs256 => self.key.sign_rs256(signing_input.as_bytes()),
            Signature::Empty => Vec::new(),
            Signature::Raw(bytes) => bytes.clone(),
            Signature::Hs256(secret) => hs256(secret, signing_input.as_bytes()),
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}
