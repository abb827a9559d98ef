//! Decoding a compact JWS (RFC 7515 section 7.1) into header, claims and signature.
//!
//! Nothing here is trusted yet: the result still has to pass the signature check
//! and claim validation. Decoding is nevertheless strict, following RFC 8725:
//!
//! - Exactly three parts. Five parts is a JWE (encrypted, not signed), which we do
//!   not accept; two or four parts is truncation or garbage.
//! - Each part is unpadded base64url with canonical trailing bits (RFC 7515
//!   section 2 and 3.2). Accepting padding, whitespace or the standard alphabet
//!   would let several strings decode to the same token, and `signing_input` is
//!   the string as sent, so such variants would only confuse caches and logs.
//! - `alg` must be one of the configured algorithms, compared exactly
//!   (RFC 8725 section 3.1). The header never *selects* a verification method
//!   outside the allow-list: `none`, `None`, `NONE`, `HS256` (the
//!   "HMAC with the RSA public key as secret" attack) and `rs256` are all refused
//!   here, before any key is looked up.
//! - `crit` is refused whatever its value: we implement no extension, and
//!   RFC 7515 section 4.1.11 requires rejecting a JWS whose critical extensions
//!   are not understood. (An empty or malformed `crit` is itself invalid.)
//! - `jku`, `x5u`, `jwk` and `x5c` are ignored: a key supplied or pointed to by
//!   the token proves nothing (RFC 8725 section 3.10). Keys come only from the
//!   tenant's JWKS, looked up by `kid` (or `x5t` for v1 tokens that carry only it).
//! - `typ` is not checked: Entra sends `JWT` on every token type, so it would
//!   not distinguish anything (RFC 8725 section 3.11 explicit typing is not
//!   available for Entra access tokens).
//! - Duplicate header parameters are refused (RFC 7515 section 4), and the
//!   whole header must be well-formed UTF-8 JSON, skipped parameters included
//!   (see [`super::strict_json`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;

use crate::claims::decode::{decode_claims, present_string, starts_with_object};
use crate::claims::model::Claims;
use crate::error::AuthError;
use crate::options::{Algorithm, VerifyOptions};
use crate::token::strict_json::check_well_formed;

/// Longest accepted `kid`/`x5t`, in bytes. Entra's are 27-43 characters; the
/// bound keeps key names cheap to hash, compare and log.
pub const MAX_KEY_ID_BYTES: usize = 256;

/// The JOSE header parameters entragate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    /// One of the configured algorithms.
    pub alg: Algorithm,
    /// Key id. When present it is the key selector; `x5t` is then only a hint.
    pub kid: Option<String>,
    /// SHA-1 certificate thumbprint; names the key when `kid` is absent (v1 tokens).
    /// At least one of `kid`/`x5t` is present. Both are non-empty, at most
    /// [`MAX_KEY_ID_BYTES`] long and printable ASCII.
    pub x5t: Option<String>,
}

/// A structurally valid compact JWS. Its signature has NOT been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJws<'a> {
    pub header: JoseHeader,
    /// Parsed but untrusted until the signature is verified.
    pub claims: Claims,
    /// `BASE64URL(header) '.' BASE64URL(payload)` exactly as received: the bytes
    /// the signature covers.
    pub signing_input: &'a str,
    /// The decoded signature. Its length is checked against the key at verify time.
    pub signature: Vec<u8>,
}

/// Decodes and structurally checks `token` (already extracted from the header).
///
/// Check order: size, part count, header (base64url, JSON, `alg`, `crit`, key
/// name), payload (base64url, claims), signature (base64url, non-empty). The
/// header comes first so a token with a forbidden `alg` is reported as such
/// whatever else is wrong with it.
pub fn decode<'a>(token: &'a str, options: &VerifyOptions) -> Result<DecodedJws<'a>, AuthError> {
    // Repeated from extraction so this function is safe to call on its own.
    if token.len() > options.max_token_bytes {
        return Err(AuthError::TokenTooLong);
    }
    let (signing_input, signature_b64) = token
        .rsplit_once('.')
        .ok_or(AuthError::TokenNotCompactJws)?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or(AuthError::TokenNotCompactJws)?;
    // A third dot anywhere means four or more parts (a JWE has five).
    if payload_b64.contains('.') || header_b64.is_empty() || payload_b64.is_empty() {
        return Err(AuthError::TokenNotCompactJws);
    }

    let header = decode_header(&base64url(header_b64)?, &options.algorithms)?;
    let claims = decode_claims(&base64url(payload_b64)?)?;
    let signature = base64url(signature_b64)?;
    // An empty signature is an unsecured JWS (RFC 7515 appendix A.5) in disguise.
    if signature.is_empty() {
        return Err(AuthError::TokenNotCompactJws);
    }

    Ok(DecodedJws {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// Strict unpadded base64url: the `URL_SAFE_NO_PAD` engine refuses padding,
/// whitespace, `+`/`/` and non-zero trailing bits.
fn base64url(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::TokenNotBase64Url)
}

/// The wire shape of the header parameters we read; all others are skipped.
/// `jku`, `x5u`, `jwk`, `x5c` are deliberately absent (see the module docs).
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default, deserialize_with = "present_string")]
    alg: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    kid: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    x5t: Option<String>,
    /// True when `crit` is present at all, with any value (even `null`).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

fn decode_header(json: &[u8], allowed: &[Algorithm]) -> Result<JoseHeader, AuthError> {
    // Derived deserializers also accept a JSON array (by position); a header is an object.
    if !starts_with_object(json) {
        return Err(AuthError::TokenHeaderInvalid);
    }
    // Every parameter, read or skipped, must be well-formed (RFC 7515 5.2).
    check_well_formed(json).map_err(|_| AuthError::TokenHeaderInvalid)?;
    let raw: RawHeader = serde_json::from_slice(json).map_err(|_| AuthError::TokenHeaderInvalid)?;

    let name = raw.alg.ok_or(AuthError::TokenHeaderInvalid)?;
    let alg = Algorithm::from_name(&name)
        .filter(|alg| allowed.contains(alg))
        .ok_or(AuthError::AlgorithmNotAllowed)?;
    if raw.crit {
        return Err(AuthError::CriticalHeaderUnsupported);
    }

    check_key_name(raw.kid.as_deref())?;
    check_key_name(raw.x5t.as_deref())?;
    if raw.kid.is_none() && raw.x5t.is_none() {
        return Err(AuthError::KeyIdMissing);
    }
    Ok(JoseHeader {
        alg,
        kid: raw.kid,
        x5t: raw.x5t,
    })
}

/// A present key name must be usable: empty names no key; overlong or
/// non-printable names are refused so they cannot bloat lookups or inject into
/// logs (key names are logged on unknown-key refreshes).
fn check_key_name(name: Option<&str>) -> Result<(), AuthError> {
    match name {
        None => Ok(()),
        Some("") => Err(AuthError::KeyIdMissing),
        Some(name) if name.len() > MAX_KEY_ID_BYTES => Err(AuthError::TokenHeaderInvalid),
        Some(name) if !name.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(AuthError::TokenHeaderInvalid)
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::signature::{PureRustVerifier, SignatureVerifier};
    use crate::token::test_keys::{self, b64, sign_rs256, signing_input, TestKey};
    use sha2::{Digest, Sha256};

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const KID: &str = "key-primary";
    const HEADER: &str = r#"{"typ":"JWT","alg":"RS256","x5t":"key-primary","kid":"key-primary"}"#;
    const CLAIMS: &str = r#"{"aud":"6e74172b-be56-4843-9ff4-e66a39bb12e3","iss":"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0","iat":1767225600,"nbf":1767225600,"exp":1767230400,"azp":"c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6","idtyp":"app","roles":["Fraud.Scan"],"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47","ver":"2.0"}"#;

    fn options() -> VerifyOptions {
        VerifyOptions::single_tenant(
            TENANT,
            vec!["6e74172b-be56-4843-9ff4-e66a39bb12e3".to_string()],
        )
    }

    fn key() -> &'static TestKey {
        test_keys::primary()
    }

    fn token() -> String {
        sign_rs256(key(), HEADER, CLAIMS)
    }

    fn decode_err(token: &str) -> AuthError {
        decode(token, &options()).unwrap_err()
    }

    /// Decode, then verify with the primary key: the whole pre-claims path.
    fn decode_and_verify(token: &str, key: &TestKey) -> Result<(), AuthError> {
        let jws = decode(token, &options())?;
        PureRustVerifier.verify(
            jws.header.alg,
            &key.public,
            jws.signing_input.as_bytes(),
            &jws.signature,
        )
    }

    /// A token with an arbitrary header and a 256-byte dummy signature.
    fn with_header(header: &str) -> String {
        format!("{}.{}", signing_input(header, CLAIMS), b64(&[7u8; 256]))
    }

    /// A token with an arbitrary payload.
    fn with_claims(claims: &str) -> String {
        format!("{}.{}", signing_input(HEADER, claims), b64(&[7u8; 256]))
    }

    /// The three parts of a well-formed compact JWS.
    fn parts(token: &str) -> (&str, &str, &str) {
        let mut it = token.split('.');
        let parts = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert_eq!(it.next(), None);
        parts
    }

    /// HMAC-SHA256 (RFC 2104), enough to forge the key-confusion token.
    fn hmac_sha256(secret: &[u8], message: &[u8]) -> Vec<u8> {
        let mut key = if secret.len() > 64 {
            Sha256::digest(secret).to_vec()
        } else {
            secret.to_vec()
        };
        key.resize(64, 0);
        let inner: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
        let outer: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
        let inner_hash = Sha256::new()
            .chain_update(&inner)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(&outer)
            .chain_update(inner_hash)
            .finalize()
            .to_vec()
    }

    #[test]
    fn decodes_an_entra_shaped_rs256_token() {
        let token = token();
        let jws = decode(&token, &options()).unwrap();
        assert_eq!(
            jws.header,
            JoseHeader {
                alg: Algorithm::RS256,
                kid: Some(KID.to_string()),
                x5t: Some(KID.to_string()),
            }
        );
        assert_eq!(jws.claims.ver.as_deref(), Some("2.0"));
        assert_eq!(jws.claims.roles, vec!["Fraud.Scan"]);
        assert_eq!(jws.signature.len(), 256);
        let (expected_input, _) = token.rsplit_once('.').unwrap();
        assert_eq!(jws.signing_input, expected_input);
        assert!(std::ptr::eq(
            jws.signing_input,
            &token[..expected_input.len()]
        ));
    }

    #[test]
    fn valid_token_verifies_with_its_key() {
        assert_eq!(decode_and_verify(&token(), key()), Ok(()));
    }

    #[test]
    fn tampered_payload_fails_verification() {
        let token = token();
        let (h, _, s) = parts(&token);
        let forged_claims = CLAIMS.replace("Fraud.Scan", "Fraud.Admin");
        let forged = format!("{h}.{}.{s}", b64(forged_claims.as_bytes()));
        assert_eq!(
            decode_and_verify(&forged, key()),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn tampered_header_fails_verification() {
        let token = token();
        let (_, p, s) = parts(&token);
        let header = HEADER.replace("key-primary\",\"kid", "other\",\"kid");
        let forged = format!("{}.{p}.{s}", b64(header.as_bytes()));
        assert_eq!(
            decode_and_verify(&forged, key()),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn tampered_signature_fails_verification() {
        let token = token();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        *sig.get_mut(17).unwrap() ^= 0x80;
        let forged = format!("{input}.{}", b64(&sig));
        assert_eq!(
            decode_and_verify(&forged, key()),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn token_signed_by_another_key_fails_verification() {
        let forged = sign_rs256(test_keys::other(), HEADER, CLAIMS);
        assert_eq!(
            decode_and_verify(&forged, key()),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn alg_none_in_any_spelling_is_not_allowed() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#);
            let unsigned = format!("{}.", signing_input(&header, CLAIMS));
            assert_eq!(
                decode_err(&unsigned),
                AuthError::AlgorithmNotAllowed,
                "{alg}"
            );
            // Also with a non-empty "signature".
            assert_eq!(
                decode_err(&with_header(&header)),
                AuthError::AlgorithmNotAllowed,
                "{alg}"
            );
        }
    }

    #[test]
    fn hmac_with_the_public_key_as_secret_is_not_allowed() {
        // The classic key-confusion forgery: HS256 keyed with the RSA public key.
        // It must die on the allow-list, before any key is involved.
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{KID}"}}"#);
        let input = signing_input(&header, CLAIMS);
        let public = &key().public;
        let n_and_e = [public.n.as_slice(), &public.e].concat();
        for secret in [public.n.as_slice(), n_and_e.as_slice()] {
            let forged = format!("{input}.{}", b64(&hmac_sha256(secret, input.as_bytes())));
            assert_eq!(decode_err(&forged), AuthError::AlgorithmNotAllowed);
        }
    }

    #[test]
    fn algorithms_outside_the_allow_list_are_refused() {
        for alg in [
            "HS256", "HS384", "HS512", "ES256", "PS256", "EdDSA", "RSA-OAEP", "rs256", "Rs256",
            "RS256 ", " RS256", "RS384", "RS512", "",
        ] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#);
            assert_eq!(
                decode_err(&with_header(&header)),
                AuthError::AlgorithmNotAllowed,
                "{alg:?}"
            );
        }
    }

    #[test]
    fn configured_algorithms_are_accepted() {
        let mut options = options();
        options.algorithms = vec![Algorithm::RS256, Algorithm::RS512];
        let header = format!(r#"{{"alg":"RS512","kid":"{KID}"}}"#);
        let token = with_header(&header);
        let jws = decode(&token, &options).unwrap();
        assert_eq!(jws.header.alg, Algorithm::RS512);
        let header = format!(r#"{{"alg":"RS384","kid":"{KID}"}}"#);
        assert_eq!(
            decode(&with_header(&header), &options).unwrap_err(),
            AuthError::AlgorithmNotAllowed
        );
    }

    #[test]
    fn an_empty_allow_list_allows_nothing() {
        let mut options = options();
        options.algorithms.clear();
        assert_eq!(
            decode(&token(), &options).unwrap_err(),
            AuthError::AlgorithmNotAllowed
        );
    }

    #[test]
    fn alg_must_be_a_present_string() {
        for header in [
            r#"{"kid":"k"}"#,
            r#"{"alg":null,"kid":"k"}"#,
            r#"{"alg":256,"kid":"k"}"#,
            r#"{"alg":["RS256"],"kid":"k"}"#,
        ] {
            assert_eq!(
                decode_err(&with_header(header)),
                AuthError::TokenHeaderInvalid,
                "{header}"
            );
        }
    }

    #[test]
    fn any_crit_is_unsupported() {
        for crit in [r#"["exp"]"#, r#"["b64"]"#, "[]", "null", r#""x""#, "{}"] {
            let header = format!(r#"{{"alg":"RS256","kid":"{KID}","crit":{crit}}}"#);
            assert_eq!(
                decode_err(&with_header(&header)),
                AuthError::CriticalHeaderUnsupported,
                "{crit}"
            );
        }
    }

    #[test]
    fn embedded_or_remote_keys_are_ignored() {
        // An attacker embeds their own key and signs with it: the header parses
        // (the parameters are ignored) but verification uses the JWKS key only.
        let attacker = &test_keys::other().public;
        let header = format!(
            r#"{{"alg":"RS256","kid":"{KID}","jku":"https://evil.example/keys","x5u":"https://evil.example/cert","jwk":{{"kty":"RSA","n":"{}","e":"{}"}},"x5c":["MIIB"]}}"#,
            b64(&attacker.n),
            b64(&attacker.e)
        );
        let forged = sign_rs256(test_keys::other(), &header, CLAIMS);
        let jws = decode(&forged, &options()).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some(KID));
        assert_eq!(
            decode_and_verify(&forged, key()),
            Err(AuthError::SignatureInvalid)
        );
        // And a genuine token carrying junk in those parameters still verifies.
        let genuine = sign_rs256(key(), &header, CLAIMS);
        assert_eq!(decode_and_verify(&genuine, key()), Ok(()));
    }

    #[test]
    fn wrong_number_of_parts_is_not_a_compact_jws() {
        let token = token();
        let (h, p, s) = parts(&token);
        for bad in [
            String::new(),
            h.to_string(),
            format!("{h}.{p}"),
            format!("{h}.{p}.{s}.{s}"),
            format!("{h}.{p}.{s}."),
            format!("{h}.{p}.{s}.{p}.{s}"),
            format!(".{h}.{p}.{s}"),
            format!("{h}..{s}"),
            format!(".{p}.{s}"),
            "..".to_string(),
            "....".to_string(),
        ] {
            assert_eq!(decode_err(&bad), AuthError::TokenNotCompactJws, "{bad}");
        }
    }

    #[test]
    fn a_jwe_is_refused() {
        let header = b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"k"}"#);
        let jwe = format!("{header}.a2V5.aXY.Y2lwaGVy.dGFn");
        assert_eq!(decode_err(&jwe), AuthError::TokenNotCompactJws);
    }

    #[test]
    fn an_empty_signature_is_refused() {
        let unsigned = format!("{}.", signing_input(HEADER, CLAIMS));
        assert_eq!(decode_err(&unsigned), AuthError::TokenNotCompactJws);
    }

    #[test]
    fn padding_whitespace_and_standard_alphabet_are_not_base64url() {
        let token = token();
        let (h, p, s) = parts(&token);
        for bad in [
            format!("{h}=.{p}.{s}"),
            format!("{h}.{p}==.{s}"),
            format!("{h}.{p}.{s}="),
            format!("{h}.{p}.{s}=="),
            format!("{h} .{p}.{s}"),
            format!("{h}.{p}.{s} "),
            format!("{h}.{p}.{s}\n"),
            format!("{h}.{p}.\t{s}"),
            format!("{h}.{p}\r\n.{s}"),
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/") + "+/"),
            format!("{h}.{p}+.{s}"),
            format!("{h}/.{p}.{s}"),
            format!("{h}.{p}.{s}\0"),
            format!("{h}.{p}.{s} garbage"),
        ] {
            assert_eq!(decode_err(&bad), AuthError::TokenNotBase64Url, "{bad:?}");
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_not_base64url() {
        // "e30" is "{}"; "e31" decodes to the same bytes if trailing bits were ignored.
        assert_eq!(URL_SAFE_NO_PAD.decode("e30").unwrap(), b"{}");
        let bad = format!("{}.e31.{}", b64(HEADER.as_bytes()), b64(&[1; 256]));
        assert_eq!(decode_err(&bad), AuthError::TokenNotBase64Url);
    }

    #[test]
    fn an_impossible_base64_length_is_refused() {
        // 4n+1 characters can never be base64.
        let bad = format!(
            "{}.{}.AAAAA",
            b64(HEADER.as_bytes()),
            b64(CLAIMS.as_bytes())
        );
        assert_eq!(decode_err(&bad), AuthError::TokenNotBase64Url);
    }

    #[test]
    fn trailing_garbage_inside_a_part_is_refused() {
        let mut header = HEADER.to_string();
        header.push_str(" x");
        assert_eq!(
            decode_err(&with_header(&header)),
            AuthError::TokenHeaderInvalid
        );
        let mut claims = CLAIMS.to_string();
        claims.push('}');
        assert_eq!(
            decode_err(&with_claims(&claims)),
            AuthError::TokenClaimsInvalid
        );
    }

    #[test]
    fn extra_signature_bytes_fail_verification() {
        let token = token();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig.extend_from_slice(b"xyz");
        let forged = format!("{input}.{}", b64(&sig));
        assert_eq!(
            decode_and_verify(&forged, key()),
            Err(AuthError::SignatureInvalid)
        );
    }

    #[test]
    fn header_must_be_a_json_object() {
        for header in [
            "",
            "[]",
            r#"["RS256","k"]"#,
            r#""RS256""#,
            "null",
            "1",
            "{",
            "not json",
        ] {
            let token = format!("{}.{}", signing_input(header, CLAIMS), b64(&[1; 256]));
            let expected = if header.is_empty() {
                AuthError::TokenNotCompactJws
            } else {
                AuthError::TokenHeaderInvalid
            };
            assert_eq!(decode_err(&token), expected, "{header:?}");
        }
    }

    #[test]
    fn duplicate_header_parameters_are_refused() {
        for header in [
            r#"{"alg":"RS256","alg":"none","kid":"k"}"#,
            r#"{"alg":"none","alg":"RS256","kid":"k"}"#,
            r#"{"alg":"RS256","kid":"a","kid":"b"}"#,
            r#"{"alg":"RS256","x5t":"a","x5t":"b"}"#,
            r#"{"alg":"RS256","kid":"k","crit":[],"crit":[]}"#,
            r#"{"alg":"RS256","kid":"k","\u0061lg":"HS256"}"#,
        ] {
            assert_eq!(
                decode_err(&with_header(header)),
                AuthError::TokenHeaderInvalid,
                "{header}"
            );
        }
    }

    #[test]
    fn claims_problems_are_reported_as_claims_invalid() {
        for claims in [
            r#"{"exp":"1767230400"}"#,
            r#"{"aud":"a","aud":"b"}"#,
            "[]",
            "",
        ] {
            let expected = if claims.is_empty() {
                AuthError::TokenNotCompactJws
            } else {
                AuthError::TokenClaimsInvalid
            };
            assert_eq!(decode_err(&with_claims(claims)), expected, "{claims:?}");
        }
    }

    #[test]
    fn x5t_names_the_key_when_kid_is_absent() {
        let header = r#"{"typ":"JWT","alg":"RS256","x5t":"thumb"}"#;
        let token = with_header(header);
        let jws = decode(&token, &options()).unwrap();
        assert_eq!(jws.header.kid, None);
        assert_eq!(jws.header.x5t.as_deref(), Some("thumb"));
    }

    #[test]
    fn kid_alone_is_enough() {
        let token = with_header(r#"{"alg":"RS256","kid":"k"}"#);
        let jws = decode(&token, &options()).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some("k"));
        assert_eq!(jws.header.x5t, None);
    }

    #[test]
    fn no_key_name_is_key_id_missing() {
        for header in [
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"RS256","kid":""}"#,
            r#"{"alg":"RS256","x5t":""}"#,
            r#"{"alg":"RS256","kid":"","x5t":"thumb"}"#,
            // Key names under other parameter names do not count.
            r#"{"alg":"RS256","KID":"k","x5t#S256":"t"}"#,
        ] {
            assert_eq!(
                decode_err(&with_header(header)),
                AuthError::KeyIdMissing,
                "{header}"
            );
        }
    }

    #[test]
    fn key_names_must_be_bounded_printable_strings() {
        let ok = "k".repeat(MAX_KEY_ID_BYTES);
        let header = format!(r#"{{"alg":"RS256","kid":"{ok}"}}"#);
        assert!(decode(&with_header(&header), &options()).is_ok());

        let long = "k".repeat(MAX_KEY_ID_BYTES + 1);
        for header in [
            format!(r#"{{"alg":"RS256","kid":"{long}"}}"#),
            format!(r#"{{"alg":"RS256","x5t":"{long}"}}"#),
            format!(r#"{{"alg":"RS256","kid":"k","x5t":"{long}"}}"#),
            r#"{"alg":"RS256","kid":"a b"}"#.to_string(),
            r#"{"alg":"RS256","kid":"a\nb"}"#.to_string(),
            r#"{"alg":"RS256","kid":"a\u0000"}"#.to_string(),
            r#"{"alg":"RS256","kid":"clé"}"#.to_string(),
            r#"{"alg":"RS256","kid":null}"#.to_string(),
            r#"{"alg":"RS256","kid":1}"#.to_string(),
            r#"{"alg":"RS256","x5t":["a"]}"#.to_string(),
        ] {
            assert_eq!(
                decode_err(&with_header(&header)),
                AuthError::TokenHeaderInvalid,
                "{header}"
            );
        }
    }

    #[test]
    fn oversized_tokens_are_refused_before_decoding() {
        let mut options = options();
        let token = token();
        options.max_token_bytes = token.len();
        assert!(decode(&token, &options).is_ok());
        options.max_token_bytes = token.len() - 1;
        assert_eq!(
            decode(&token, &options).unwrap_err(),
            AuthError::TokenTooLong
        );
        // Even garbage reports the size first.
        let garbage = "!".repeat(options.max_token_bytes + 1);
        assert_eq!(
            decode(&garbage, &options).unwrap_err(),
            AuthError::TokenTooLong
        );
    }

    #[test]
    fn header_is_judged_before_payload_and_signature() {
        let header = format!(r#"{{"alg":"none","kid":"{KID}"}}"#);
        let bad = format!("{}.!!!.!!!", b64(header.as_bytes()));
        assert_eq!(decode_err(&bad), AuthError::AlgorithmNotAllowed);
    }
}
