//! `client_assertion` (RFC 7523 jwt-bearer) checked the way Entra checks it, with Entra's AADSTS codes:
//!
//! * a **certificate assertion** (`iss` = `sub` = the client id): the certificate named by `x5t#S256` must
//!   be registered on the app (else AADSTS700027), the PS256 signature must verify with its key
//!   (AADSTS700027), `aud` must be this tenant's v2.0 token endpoint (AADSTS50013), `exp`/`nbf` must hold
//!   (AADSTS700024) and the `jti` must be new (AADSTS50013);
//! * a **federated assertion** (any other issuer): a federated identity credential of the app must match
//!   the issuer (AADSTS700211), then the subject (AADSTS700213), then the audience (AADSTS700212),
//!   case-sensitively; the issuer's discovery document and JWKS are fetched from the issuer itself and
//!   the RS256 signature must verify (AADSTS700027); `exp`/`nbf` must hold (AADSTS700024).

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hyper::StatusCode;
use rsa::pkcs1v15;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{pss, BigUint, RsaPublicKey};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::errors::EntraError;
use super::model::{Directory, FederatedCredential};
use super::random;

/// Leeway Entra allows for clock skew on assertion times.
const SKEW_SECS: i64 = 300;

/// A decoded (not yet verified) compact JWS.
struct Jws {
    header: Value,
    claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

fn invalid(code: u32, message: String) -> EntraError {
    EntraError::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
}

fn decode(assertion: &str) -> Result<Jws, EntraError> {
    let malformed = || {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.".to_string(),
        )
    };
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let json = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    Ok(Jws {
        header: json(h).ok_or_else(malformed)?,
        claims: json(c).ok_or_else(malformed)?,
        signing_input: format!("{h}.{c}"),
        signature: URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?,
    })
}

fn str_claim<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn check_times(claims: &Value) -> Result<(), EntraError> {
    let now = random::now();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if exp + SKEW_SECS < now || nbf - SKEW_SECS > now {
        return Err(invalid(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion \
                 valid from {}, expiry time of assertion {}.",
                random::entra_timestamp(now),
                random::entra_timestamp(nbf),
                random::entra_timestamp(exp)
            ),
        ));
    }
    Ok(())
}

/// Verifies `assertion` for `client_id`. `token_endpoint` is the URL the request was sent to;
/// `seen_jti` remembers certificate assertions already used.
pub(crate) async fn verify(
    directory: &Directory,
    client_id: &str,
    token_endpoint: &str,
    assertion: &str,
    seen_jti: &std::sync::Mutex<HashSet<String>>,
) -> Result<(), EntraError> {
    let jws = decode(assertion)?;
    let iss = str_claim(&jws.claims, "iss");
    if iss.eq_ignore_ascii_case(client_id) && str_claim(&jws.claims, "sub") == iss {
        verify_certificate(directory, client_id, token_endpoint, &jws, seen_jti)
    } else {
        verify_federated(directory, client_id, &jws).await
    }
}

fn verify_certificate(
    directory: &Directory,
    client_id: &str,
    token_endpoint: &str,
    jws: &Jws,
    seen_jti: &std::sync::Mutex<HashSet<String>>,
) -> Result<(), EntraError> {
    let thumbprint = str_claim(&jws.header, "x5t#S256");
    let not_registered = || {
        invalid(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., \
                 Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, \
                 Graph Explorer or directly use MS Graph to see configured keys for app Id \
                 '{client_id}'.]"
            ),
        )
    };
    let cert = directory
        .certificates
        .iter()
        .filter(|(c, _)| c.eq_ignore_ascii_case(client_id))
        .map(|(_, der)| der)
        .find(|der| URL_SAFE_NO_PAD.encode(Sha256::digest(der)) == thumbprint)
        .ok_or_else(not_registered)?;
    let key = spki_of_certificate(cert)
        .and_then(|spki| RsaPublicKey::from_public_key_der(spki).ok())
        .ok_or_else(not_registered)?;
    if str_claim(&jws.header, "alg") != "PS256" || !verify_pss(&key, jws) {
        return Err(invalid(
            700027,
            "Client assertion failed signature validation.".to_string(),
        ));
    }
    if !audiences(&jws.claims).iter().any(|a| a == token_endpoint) {
        return Err(invalid(
            50013,
            format!(
                "Assertion failed signature validation. [Reason - The audience of the assertion is \
                 not the token endpoint '{token_endpoint}'.]"
            ),
        ));
    }
    check_times(&jws.claims)?;
    let jti = str_claim(&jws.claims, "jti");
    let fresh = !jti.is_empty() && super::state::lock(seen_jti).insert(jti.to_string());
    if !fresh {
        return Err(invalid(
            50013,
            "Assertion is invalid: the assertion was already used (jti replayed) or has no jti."
                .to_string(),
        ));
    }
    Ok(())
}

/// PS256 with the salt length of the hash (RFC 7518, AWS KMS), or the maximum salt length (what
/// moto 5.2.5's KMS emulation produces); RFC 8017 verifiers that recover the salt accept both.
fn verify_pss(key: &RsaPublicKey, jws: &Jws) -> bool {
    let Ok(signature) = pss::Signature::try_from(jws.signature.as_slice()) else {
        return false;
    };
    let max_salt = (key.size()).saturating_sub(32 + 2);
    [32, max_salt].into_iter().any(|salt| {
        pss::VerifyingKey::<Sha256>::new_with_salt_len(key.clone(), salt)
            .verify(jws.signing_input.as_bytes(), &signature)
            .is_ok()
    })
}

async fn verify_federated(
    directory: &Directory,
    client_id: &str,
    jws: &Jws,
) -> Result<(), EntraError> {
    let iss = str_claim(&jws.claims, "iss");
    let sub = str_claim(&jws.claims, "sub");
    let aud = audiences(&jws.claims);
    let records: Vec<&FederatedCredential> = directory
        .federated
        .iter()
        .filter(|(c, _)| c.eq_ignore_ascii_case(client_id))
        .map(|(_, f)| f)
        .filter(|f| f.issuer == iss)
        .collect();
    let check = " Please note that the matching is done using a case-sensitive comparison. Check \
                 your federated identity credential Subject, Audience and Issuer against the \
                 presented assertion.";
    if records.is_empty() {
        return Err(invalid(
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{iss}'.{check}"),
        ));
    }
    let records: Vec<_> = records.into_iter().filter(|f| f.subject == sub).collect();
    if records.is_empty() {
        return Err(invalid(
            700213,
            format!("No matching federated identity record found for presented assertion subject '{sub}'.{check}"),
        ));
    }
    if !records
        .iter()
        .any(|f| f.audiences.iter().any(|a| aud.contains(a)))
    {
        return Err(invalid(
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'.{check}",
                aud.join(",")
            ),
        ));
    }
    let key = issuer_key(iss, str_claim(&jws.header, "kid")).await?;
    let verified = str_claim(&jws.header, "alg") == "RS256"
        && pkcs1v15::Signature::try_from(jws.signature.as_slice())
            .map(|s| {
                pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(jws.signing_input.as_bytes(), &s)
                    .is_ok()
            })
            .unwrap_or(false);
    if !verified {
        return Err(invalid(
            700027,
            "Client assertion failed signature validation.".to_string(),
        ));
    }
    check_times(&jws.claims)
}

/// Discovery, then the JWKS, fetched from the issuer like Entra does; the key is chosen by `kid`.
async fn issuer_key(issuer: &str, kid: &str) -> Result<RsaPublicKey, EntraError> {
    let unreachable = |what: &str| {
        invalid(
            700027,
            format!("Client assertion failed signature validation. [Reason - {what} of issuer '{issuer}' could not be retrieved.]"),
        )
    };
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery = get_json(&discovery_url)
        .await
        .map_err(|_| unreachable("The OpenID configuration"))?;
    if str_claim(&discovery, "issuer") != issuer {
        return Err(unreachable("A matching OpenID configuration"));
    }
    let jwks = get_json(str_claim(&discovery, "jwks_uri"))
        .await
        .map_err(|_| unreachable("The signing keys"))?;
    let jwk = jwks
        .get("keys")
        .and_then(Value::as_array)
        .and_then(|keys| keys.iter().find(|k| str_claim(k, "kid") == kid))
        .ok_or_else(|| {
            invalid(
                700027,
                format!("Client assertion failed signature validation. [Reason - The key '{kid}' was not found at the issuer.]"),
            )
        })?;
    let n = URL_SAFE_NO_PAD
        .decode(str_claim(jwk, "n"))
        .unwrap_or_default();
    let e = URL_SAFE_NO_PAD
        .decode(str_claim(jwk, "e"))
        .unwrap_or_default();
    RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
        .map_err(|_| unreachable("A usable signing key"))
}

async fn get_json(url: &str) -> Result<Value, reqwest::Error> {
    crate::http_client()
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

/// The SubjectPublicKeyInfo of a DER certificate: Certificate → tbsCertificate → (optional `[0]`
/// version), serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo.
pub(crate) fn spki_of_certificate(der: &[u8]) -> Option<&[u8]> {
    let (_, cert_body, _) = tlv(der)?;
    let (_, tbs_body, _) = tlv(cert_body)?;
    let mut rest = tbs_body;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..5 {
        rest = tlv(rest)?.2; // serial, signature, issuer, validity, subject
    }
    let (_, _, after) = tlv(rest)?;
    Some(&rest[..rest.len() - after.len()])
}

/// One DER TLV: (tag, contents, the bytes after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}
