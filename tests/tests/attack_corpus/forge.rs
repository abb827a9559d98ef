//! What the corpus cases are built from: the keys an attacker (and a second
//! tenant) holds, and helpers to assemble compact JWS strings by hand when
//! [`TokenBuilder`] cannot express the attack (raw JSON with duplicate members,
//! HMAC variants, spliced signatures).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entragate_tests::{unix_now, Idp, SigningKey, TokenBuilder};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// A second tenant with its own IdP and keys.
pub const FOREIGN_TENANT: &str = "0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";
/// An application that is not on the allow-list of `/fraud/analyze`.
pub const OTHER_CALLER: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
/// The route every token case targets: app role `Fraud.Scan`, callers restricted.
pub const ANALYZE: &str = "/fraud/analyze";

/// Everything a case may need to build its request.
pub struct Ctx<'a> {
    /// The tenant's IdP (the keys in its JWKS are the trusted ones).
    pub idp: &'a Idp,
    /// Another tenant's IdP: valid Entra-shaped tokens, but not ours.
    pub foreign: &'a Idp,
    /// A 2048-bit key that is in no JWKS.
    pub attacker: Arc<SigningKey>,
    /// A 1024-bit key that *is* in the tenant's JWKS (the filter must skip it).
    pub weak: Arc<SigningKey>,
    /// A published key that does not sign the tenant's tokens.
    pub standby: Arc<SigningKey>,
    /// Where a `jku`/`x5u` points: the echo upstream, so a fetch would show
    /// up in its request count (which must stay 0 for refused cases).
    pub attacker_url: String,
}

impl Ctx<'_> {
    /// A valid v2 app token builder (passes every check on `/fraud/analyze`).
    pub fn app(&self) -> TokenBuilder {
        self.idp.app_token_v2()
    }

    /// A valid token.
    pub fn good(&self) -> String {
        self.app().build()
    }

    /// The kid of the key that signs the tenant's tokens.
    pub fn kid(&self) -> String {
        self.idp.signing_key().kid().to_string()
    }

    /// `iss` of the tenant's v2 tokens.
    pub fn issuer(&self) -> String {
        self.idp.issuer_v2()
    }

    /// The tenant's v2 issuer with `from` replaced by `to`.
    pub fn issuer_with(&self, from: &str, to: &str) -> String {
        self.issuer().replace(from, to)
    }

    /// Attacker-signed, with `kid` naming the tenant's signing key.
    pub fn attacker_signed_with_trusted_kid(&self) -> TokenBuilder {
        self.app()
            .signed_with(&self.attacker)
            .header("kid", self.kid())
            .header("x5t", self.kid())
    }
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(header) . BASE64URL(payload)`.
pub fn signing_input(header: &str, payload: &str) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// RS256-signs raw JSON texts with `key` (for JSON a builder cannot produce).
pub fn rs256(key: &SigningKey, header: &str, payload: &str) -> String {
    let input = signing_input(header, payload);
    let signature = key.sign_rs256(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// RS256-signs raw header and payload bytes (for bytes that are not UTF-8).
pub fn rs256_bytes(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign_rs256(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// `{` + `member` + `,` + the rest of `json` after its `{`, as bytes.
fn lead_bytes(json: &str, member: &[u8]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    out.extend_from_slice(member);
    out.push(b',');
    out.extend_from_slice(json.strip_prefix('{').unwrap_or(json).as_bytes());
    out
}

/// A valid token, tenant-signed, whose payload starts with the raw `member`.
pub fn signed_with_claim_bytes(c: &Ctx<'_>, member: &[u8]) -> String {
    let b = c.app();
    rs256_bytes(
        &c.idp.signing_key(),
        header_text(&b).as_bytes(),
        &lead_bytes(&payload_text(&b), member),
    )
}

/// A valid token, tenant-signed, whose header starts with the raw `member`.
pub fn signed_with_header_bytes(c: &Ctx<'_>, member: &[u8]) -> String {
    let b = c.app();
    rs256_bytes(
        &c.idp.signing_key(),
        &lead_bytes(&header_text(&b), member),
        payload_text(&b).as_bytes(),
    )
}

/// The builder's header as JSON text.
pub fn header_text(builder: &TokenBuilder) -> String {
    Value::Object(builder.header_json()).to_string()
}

/// The builder's payload as JSON text.
pub fn payload_text(builder: &TokenBuilder) -> String {
    Value::Object(builder.claims_json().clone()).to_string()
}

/// `{...}` with `, member` appended before the closing brace: how a duplicate
/// JSON member (which `serde_json::Map` cannot hold) is written.
pub fn with_member(json: &str, member: &str) -> String {
    match json.rfind('}') {
        Some(end) => format!("{},{member}}}", &json[..end]),
        None => json.to_string(),
    }
}

/// `{ member, ...}`: the member goes first.
pub fn with_leading_member(json: &str, member: &str) -> String {
    match json.strip_prefix('{') {
        Some(rest) => format!("{{{member},{rest}"),
        None => json.to_string(),
    }
}

/// Signs the builder's header and payload with the tenant's key after the
/// raw JSON edits `edit_header` / `edit_payload`.
pub fn signed_raw(
    c: &Ctx<'_>,
    builder: &TokenBuilder,
    edit_header: impl FnOnce(String) -> String,
    edit_payload: impl FnOnce(String) -> String,
) -> String {
    rs256(
        &c.idp.signing_key(),
        &edit_header(header_text(builder)),
        &edit_payload(payload_text(builder)),
    )
}

/// The three parts of a compact JWS (empty strings for missing parts).
pub fn parts(token: &str) -> (String, String, String) {
    let mut it = token.splitn(3, '.');
    let mut next = || it.next().unwrap_or_default().to_string();
    (next(), next(), next())
}

/// The HMAC algorithms of the key-confusion attack.
#[derive(Clone, Copy)]
pub enum Hs {
    H256,
    H384,
    H512,
}

/// The builder's token with `alg` set to the HMAC algorithm, MACed with `secret`
/// (what a verifier trusting `alg` would check against the "key" it holds).
pub fn hmac_token(builder: TokenBuilder, hs: Hs, secret: &[u8]) -> String {
    let alg = match hs {
        Hs::H256 => "HS256",
        Hs::H384 => "HS384",
        Hs::H512 => "HS512",
    };
    let builder = builder.header("alg", alg);
    let input = signing_input(&header_text(&builder), &payload_text(&builder));
    let mac = match hs {
        Hs::H256 => Hmac::<Sha256>::new_from_slice(secret).map(|mut m| {
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }),
        Hs::H384 => Hmac::<Sha384>::new_from_slice(secret).map(|mut m| {
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }),
        Hs::H512 => Hmac::<Sha512>::new_from_slice(secret).map(|mut m| {
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }),
    }
    .unwrap_or_default();
    format!("{input}.{}", b64(mac))
}

/// The RSA public key of `key` as SubjectPublicKeyInfo DER.
pub fn public_der(key: &SigningKey) -> Vec<u8> {
    use rsa::pkcs8::EncodePublicKey as _;
    key.public_key()
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default()
}

/// `key` exactly as the tenant's JWKS publishes it, as JSON text.
pub fn public_jwk_json(c: &Ctx<'_>, key: &SigningKey) -> String {
    key.jwk(&c.issuer()).to_string()
}

/// Seconds since the epoch, shifted.
pub fn now_plus(seconds: i64) -> i64 {
    unix_now() + seconds
}

/// The valid token with one character of the signature changed (not the last
/// one, whose low bits are padding).
pub fn flip_signature_bit(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = chars.len().saturating_sub(10);
    if let Some(c) = chars.get_mut(at) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// The valid token with the last signature character replaced by one whose
/// unused low bits are set: same bytes to a lenient decoder, invalid base64url
/// to a strict one (RFC 4648 3.5 canonical encoding).
pub fn non_canonical_tail(token: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = token.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        if let Some(index) = ALPHABET.iter().position(|b| b == last) {
            *last = ALPHABET[index ^ 1];
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}
