//! Reading tokens back: decoding without verification, and an independent
//! RS256 check against a JWKS document (used to prove the IdP's tokens are
//! genuinely verifiable, and handy for asserting on tokens other components
//! obtained).

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1v15::{Signature as RsaSignature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// A JWT split into its decoded parts.
#[derive(Clone, Debug)]
pub struct DecodedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

fn segment_json(segment: &str, what: &str) -> anyhow::Result<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .with_context(|| format!("{what} is not base64url"))?;
    match serde_json::from_slice(&bytes).with_context(|| format!("{what} is not JSON"))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{what} is not a JSON object"),
    }
}

/// Decodes header, claims and signature without verifying anything.
pub fn decode_jwt(token: &str) -> anyhow::Result<DecodedJwt> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        bail!("a JWS has 3 segments, this has {}", parts.len());
    };
    Ok(DecodedJwt {
        header: segment_json(header, "header")?,
        claims: segment_json(claims, "payload")?,
        signature: URL_SAFE_NO_PAD
            .decode(signature)
            .context("signature is not base64url")?,
    })
}

/// The RSA public key of a JWK (`n`, `e`).
pub fn jwk_public_key(jwk: &Value) -> anyhow::Result<RsaPublicKey> {
    let part = |name: &str| -> anyhow::Result<BigUint> {
        let text = jwk[name]
            .as_str()
            .ok_or_else(|| anyhow!("JWK has no {name}"))?;
        Ok(BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(text)?))
    };
    Ok(RsaPublicKey::new(part("n")?, part("e")?)?)
}

/// base64url SHA-1 of the JWK's first `x5c` certificate: what Entra uses as
/// `kid` and `x5t`.
pub fn x5c_thumbprint(jwk: &Value) -> anyhow::Result<String> {
    let cert = jwk["x5c"][0]
        .as_str()
        .ok_or_else(|| anyhow!("JWK has no x5c"))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha1::digest(STANDARD.decode(cert)?)))
}

/// Verifies an RS256 token against `jwks` (selecting the key by `kid`, else
/// `x5t`) and returns its claims. Checks only the signature, not the claims.
pub fn verify_rs256(token: &str, jwks: &Value) -> anyhow::Result<Map<String, Value>> {
    let decoded = decode_jwt(token)?;
    if decoded.header.get("alg").and_then(Value::as_str) != Some("RS256") {
        bail!("alg is not RS256: {:?}", decoded.header.get("alg"));
    }
    let kid = decoded
        .header
        .get("kid")
        .or_else(|| decoded.header.get("x5t"))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("token names no key (kid/x5t)"))?;
    let jwk = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"].as_str() == Some(kid))
        .ok_or_else(|| anyhow!("no key {kid} in the JWKS"))?;
    let key = VerifyingKey::<Sha256>::new(jwk_public_key(jwk)?);
    let signing_input = token
        .rsplit_once('.')
        .map(|(input, _)| input)
        .unwrap_or_default();
    let signature = RsaSignature::try_from(decoded.signature.as_slice())?;
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|_| anyhow!("RS256 signature does not verify with key {kid}"))?;
    Ok(decoded.claims)
}
