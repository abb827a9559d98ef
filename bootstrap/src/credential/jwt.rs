//! The certificate client assertion exactly as Entra documents it ("Microsoft identity platform application
//! authentication certificate credentials"): header `alg` PS256, `typ` JWT, `x5t#S256` = base64url SHA-256 of
//! the certificate's DER; claims `aud` = the tenant's v2.0 token endpoint, `iss` = `sub` = client id, a
//! unique `jti`, `nbf`/`iat` now and a short `exp`. Pure: the signature is added by the caller (KMS).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::time::{Duration, SystemTime};

/// What goes into one assertion.
pub struct AssertionClaims<'a> {
    pub client_id: &'a str,
    pub token_endpoint: &'a str,
    /// base64url SHA-256 thumbprint of the certificate DER.
    pub x5t_s256: &'a str,
    pub jti: &'a str,
    pub now: SystemTime,
    pub lifetime: Duration,
}

/// `base64url(header) . base64url(claims)`: the bytes the signature covers.
pub fn signing_input(c: &AssertionClaims<'_>) -> String {
    let header = json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": c.x5t_s256 });
    let now = crate::text::unix_secs(c.now);
    let claims = json!({
        "aud": c.token_endpoint,
        "iss": c.client_id,
        "sub": c.client_id,
        "jti": c.jti,
        "nbf": now,
        "iat": now,
        "exp": now + c.lifetime.as_secs(),
    });
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The compact JWS: signing input plus the base64url signature.
pub fn compact(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `x5t#S256` of a DER certificate.
pub fn thumbprint_s256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der))
}

/// A random (version 4) UUID for `jti`: Entra may refuse an assertion whose `jti` it has seen.
pub fn random_jti() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for jti: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::text::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn assertion_has_the_documented_shape() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let input = signing_input(&AssertionClaims {
            client_id: "cid",
            token_endpoint: "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            x5t_s256: "thumb",
            jti: "j1",
            now,
            lifetime: Duration::from_secs(300),
        });
        let (h, c) = input.split_once('.').unwrap();
        let (h, c) = (decode(h), decode(c));
        assert_eq!(h["alg"], "PS256");
        assert_eq!(h["typ"], "JWT");
        assert_eq!(h["x5t#S256"], "thumb");
        assert_eq!(
            c["aud"],
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(
            (c["iss"].as_str(), c["sub"].as_str()),
            (Some("cid"), Some("cid"))
        );
        assert_eq!(c["nbf"], 1_800_000_000u64);
        assert_eq!(c["iat"], 1_800_000_000u64);
        assert_eq!(c["exp"], 1_800_000_300u64);
        assert_eq!(compact("a.b", &[0xff]), "a.b._w");
    }

    #[test]
    fn jti_is_a_fresh_uuid() {
        let (a, b) = (random_jti().unwrap(), random_jti().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
