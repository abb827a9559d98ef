//! Parsing the JWKS document and the optional OIDC discovery document.
//!
//! The parser is deliberately forgiving per key and strict per document: one odd
//! key (an EC key, an encryption key, a short modulus) is skipped and reported,
//! but a document that yields no usable key at all is an error, because an empty
//! key set must never replace a good one.
//!
//! Entra publishes RSA keys with `kid == x5t`, an `x5c` chain, an `issuer`
//! template and **no `alg`**, so a missing `alg` is normal. Only `kid`, `x5t`,
//! `n` and `e` are kept: the certificate chain is not needed to verify tokens.
//!
//! Base64url decision: trailing `=` padding is tolerated (some JWK producers emit
//! it, and it carries no information), but the standard alphabet (`+`, `/`) and
//! non-canonical trailing bits are rejected, as RFC 7518 6.3.1 requires base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::keys::KeySet;
use crate::keys::RsaPublicKey;

/// Largest document accepted. Entra's JWKS is a few KiB; anything far larger is
/// not a JWKS and parsing it would only cost memory in every worker.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// Most entries accepted in `keys` (usable or not). Entra publishes fewer than ten.
pub const MAX_KEYS: usize = 100;
/// Smallest modulus accepted (NIST SP 800-131A; Entra uses 2048).
pub const MIN_MODULUS_BITS: usize = 2048;
/// Largest modulus accepted: the default limit of `rsa::RsaPublicKey::new`, so
/// every key we keep can actually be used by the signature verifier, and the
/// cost of one verification stays bounded.
pub const MAX_MODULUS_BITS: usize = 4096;
/// Largest public exponent accepted, again the `rsa` crate's limit (2^33 - 1).
const MAX_EXPONENT: u64 = (1 << 33) - 1;

/// Why one JWK was left out of the key set. Never carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    NotAnObject,
    KtyNotRsa,
    /// `use` is present and is not `sig` (e.g. an `enc` key).
    UseNotSig,
    KidMissing,
    /// `alg` is present and is not RS256/RS384/RS512.
    AlgNotSupported,
    /// `n` or `e` is missing or not base64url.
    EncodingInvalid,
    ModulusTooSmall,
    ModulusTooLarge,
    /// `e` is even, smaller than 3 or larger than the verifier accepts.
    ExponentInvalid,
    /// A second key with a `kid` already seen: lookups must be unambiguous.
    DuplicateKid,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotAnObject => "not an object",
            SkipReason::KtyNotRsa => "kty not RSA",
            SkipReason::UseNotSig => "use not sig",
            SkipReason::KidMissing => "kid missing",
            SkipReason::AlgNotSupported => "alg not RS256/RS384/RS512",
            SkipReason::EncodingInvalid => "n/e not base64url",
            SkipReason::ModulusTooSmall => "modulus under 2048 bits",
            SkipReason::ModulusTooLarge => "modulus over 4096 bits",
            SkipReason::ExponentInvalid => "exponent invalid",
            SkipReason::DuplicateKid => "duplicate kid",
        }
    }
}

/// Why a whole document was rejected. The previous key set (if any) stays in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    TooLarge {
        bytes: usize,
    },
    NotJson,
    /// The document is JSON but has no `keys` array.
    NoKeysArray,
    TooManyKeys {
        count: usize,
    },
    /// `keys` was empty or every key was skipped.
    NoUsableKeys {
        skipped: Vec<SkipReason>,
    },
    /// The discovery document has no string `jwks_uri`.
    DiscoveryNoJwksUri,
    /// `jwks_uri` is not an absolute http(s) URL with a path.
    DiscoveryJwksUriInvalid,
    /// `jwks_uri` names a host other than the configured authority; the callout
    /// always goes to the configured cluster and authority, so the path would be
    /// requested from the wrong server.
    DiscoveryAuthorityMismatch,
}

impl core::fmt::Display for JwksError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JwksError::TooLarge { bytes } => {
                write!(
                    f,
                    "document too large ({bytes} bytes, max {MAX_DOCUMENT_BYTES})"
                )
            }
            JwksError::NotJson => f.write_str("document is not JSON"),
            JwksError::NoKeysArray => f.write_str("document has no keys array"),
            JwksError::TooManyKeys { count } => {
                write!(f, "too many keys ({count}, max {MAX_KEYS})")
            }
            JwksError::NoUsableKeys { skipped } => {
                write!(f, "no usable keys ({})", skip_summary(skipped))
            }
            JwksError::DiscoveryNoJwksUri => f.write_str("discovery document has no jwks_uri"),
            JwksError::DiscoveryJwksUriInvalid => {
                f.write_str("discovery jwks_uri is not an http(s) URL")
            }
            JwksError::DiscoveryAuthorityMismatch => {
                f.write_str("discovery jwks_uri host differs from the configured authority")
            }
        }
    }
}

impl std::error::Error for JwksError {}

/// A parsed JWKS: the usable keys and why the others were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedJwks {
    pub key_set: KeySet,
    pub skipped: Vec<SkipReason>,
}

impl ParsedJwks {
    /// One line for the log: counts only, never key material.
    pub fn summary(&self) -> String {
        if self.skipped.is_empty() {
            format!("{} keys", self.key_set.len())
        } else {
            format!(
                "{} keys, {} skipped ({})",
                self.key_set.len(),
                self.skipped.len(),
                skip_summary(&self.skipped)
            )
        }
    }
}

/// `"kty not RSA: 2, use not sig: 1"`, in a stable order.
pub fn skip_summary(skipped: &[SkipReason]) -> String {
    let mut counts: Vec<(SkipReason, usize)> = Vec::new();
    for reason in skipped {
        match counts.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((*reason, 1)),
        }
    }
    counts.sort();
    if counts.is_empty() {
        return "none skipped".to_string();
    }
    counts
        .iter()
        .map(|(r, n)| format!("{}: {n}", r.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse a JWKS document into the keys usable for RS256/384/512 verification.
pub fn parse_jwks(body: &[u8]) -> Result<ParsedJwks, JwksError> {
    let doc = parse_object(body)?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err(JwksError::NoKeysArray);
    };
    if entries.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys {
            count: entries.len(),
        });
    }
    let mut keys: Vec<RsaPublicKey> = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        match parse_key(entry) {
            Ok(key) if keys.iter().any(|k| k.kid == key.kid) => {
                skipped.push(SkipReason::DuplicateKid)
            }
            Ok(key) => keys.push(key),
            Err(reason) => skipped.push(reason),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys { skipped });
    }
    Ok(ParsedJwks {
        key_set: KeySet { keys },
        skipped,
    })
}

/// Extract the path (with query, if any) of `jwks_uri` from an OIDC discovery
/// document, checking that it points at `authority` (ports are ignored, so a
/// test IdP on a non-default port still matches its host name).
pub fn parse_discovery(body: &[u8], authority: &str) -> Result<String, JwksError> {
    let doc = parse_object(body)?;
    let Some(Value::String(uri)) = doc.get("jwks_uri") else {
        return Err(JwksError::DiscoveryNoJwksUri);
    };
    let (host, path) = split_http_url(uri).ok_or(JwksError::DiscoveryJwksUriInvalid)?;
    if !strip_port(host).eq_ignore_ascii_case(strip_port(authority)) {
        return Err(JwksError::DiscoveryAuthorityMismatch);
    }
    Ok(path.to_string())
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, JwksError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(JwksError::TooLarge { bytes: body.len() });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        // Valid JSON but not an object (`[]`, `"x"`) has no `keys` member either.
        Ok(_) => Err(JwksError::NoKeysArray),
        Err(_) => Err(JwksError::NotJson),
    }
}

fn parse_key(entry: &Value) -> Result<RsaPublicKey, SkipReason> {
    let Value::Object(jwk) = entry else {
        return Err(SkipReason::NotAnObject);
    };
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if text("kty") != Some("RSA") {
        return Err(SkipReason::KtyNotRsa);
    }
    // RFC 7517 4.2: `use` is optional; when present only `sig` keys may verify.
    if jwk.contains_key("use") && text("use") != Some("sig") {
        return Err(SkipReason::UseNotSig);
    }
    let kid = match text("kid") {
        Some(kid) if !kid.is_empty() => kid.to_string(),
        _ => return Err(SkipReason::KidMissing),
    };
    // Entra omits `alg`; when another IdP sets it, it must be an RSA PKCS#1 v1.5 one.
    if jwk.contains_key("alg") && !matches!(text("alg"), Some("RS256" | "RS384" | "RS512")) {
        return Err(SkipReason::AlgNotSupported);
    }
    let n = text("n")
        .and_then(decode_unsigned)
        .ok_or(SkipReason::EncodingInvalid)?;
    let e = text("e")
        .and_then(decode_unsigned)
        .ok_or(SkipReason::EncodingInvalid)?;
    let key = RsaPublicKey {
        kid,
        x5t: text("x5t").filter(|t| !t.is_empty()).map(str::to_string),
        n,
        e,
    };
    if key.bits() < MIN_MODULUS_BITS {
        return Err(SkipReason::ModulusTooSmall);
    }
    if key.bits() > MAX_MODULUS_BITS {
        return Err(SkipReason::ModulusTooLarge);
    }
    if !exponent_ok(&key.e) {
        return Err(SkipReason::ExponentInvalid);
    }
    Ok(key)
}

/// Base64url (padding tolerated) to a big-endian integer without leading zeros.
fn decode_unsigned(text: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes.get(first..).unwrap_or_default().to_vec())
}

fn exponent_ok(e: &[u8]) -> bool {
    if e.len() > 8 {
        return false;
    }
    let value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (3..=MAX_EXPONENT).contains(&value) && value % 2 == 1
}

/// `https://host[:port]/path?q` -> (`host[:port]`, `/path?q`); fragment dropped.
fn split_http_url(uri: &str) -> Option<(&str, &str)> {
    let lower_scheme = |p: &str| {
        uri.get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    let rest = if lower_scheme("https://") {
        uri.get("https://".len()..)?
    } else if lower_scheme("http://") {
        uri.get("http://".len()..)?
    } else {
        return None;
    };
    let slash = rest.find('/')?;
    let (host, path) = rest.split_at(slash);
    let path = path.split('#').next().unwrap_or(path);
    let valid_host = !host.is_empty() && !host.contains('@');
    let valid_path = path.bytes().all(|b| b.is_ascii_graphic());
    (valid_host && valid_path).then_some((host, path))
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A modulus of exactly `bits` bits (top bit set, odd).
    fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0xA5u8; bits / 8];
        n[0] = 0xC3;
        n
    }

    /// One key in the exact shape Entra publishes (no `alg`).
    fn entra_key(kid: &str, bits: usize) -> Value {
        json!({
            "kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
            "n": b64(&modulus(bits)), "e": "AQAB",
            "x5c": ["MIICzDCCAbSgAwIBAgIUBdNl9O0TTRGgofEBLpfLXQDIRucw"],
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"
        })
    }

    fn doc(keys: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn entra_shape_without_alg_parses() {
        let parsed = parse_jwks(&doc(vec![entra_key("k1", 2048), entra_key("k2", 2048)])).unwrap();
        assert_eq!(parsed.key_set.len(), 2);
        assert!(parsed.skipped.is_empty());
        let k = &parsed.key_set.keys[0];
        assert_eq!(k.kid, "k1");
        assert_eq!(k.x5t.as_deref(), Some("k1"));
        assert_eq!(k.bits(), 2048);
        assert_eq!(k.e, vec![1, 0, 1]);
        assert_eq!(parsed.summary(), "2 keys");
    }

    #[test]
    fn unsuitable_keys_are_skipped_not_fatal() {
        let mut ec = entra_key("ec", 2048);
        ec["kty"] = json!("EC");
        let mut enc = entra_key("enc", 2048);
        enc["use"] = json!("enc");
        let mut no_kid = entra_key("x", 2048);
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut hs = entra_key("hs", 2048);
        hs["alg"] = json!("HS256");
        let mut none = entra_key("none", 2048);
        none["alg"] = json!("none");
        let mut rs384 = entra_key("rs384", 2048);
        rs384["alg"] = json!("RS384");
        let mut bad_n = entra_key("badn", 2048);
        bad_n["n"] = json!("not+base64/");
        let mut even_e = entra_key("even", 2048);
        even_e["e"] = json!(b64(&[1, 0, 0]));
        let keys = vec![
            entra_key("good", 2048),
            ec,
            enc,
            entra_key("small", 1024),
            entra_key("huge", 8192),
            no_kid,
            hs,
            none,
            rs384,
            bad_n,
            even_e,
            json!("not an object"),
            entra_key("good", 2048),
        ];
        let parsed = parse_jwks(&doc(keys)).unwrap();
        let kids: Vec<&str> = parsed.key_set.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["good", "rs384"]);
        let mut reasons = parsed.skipped.clone();
        reasons.sort();
        use SkipReason::*;
        assert_eq!(
            reasons,
            [
                NotAnObject,
                KtyNotRsa,
                UseNotSig,
                KidMissing,
                AlgNotSupported,
                AlgNotSupported,
                EncodingInvalid,
                ModulusTooSmall,
                ModulusTooLarge,
                ExponentInvalid,
                DuplicateKid
            ]
        );
        assert!(parsed
            .summary()
            .starts_with("2 keys, 11 skipped (not an object: 1, kty not RSA: 1"));
    }

    #[test]
    fn missing_use_is_accepted() {
        let mut key = entra_key("k", 2048);
        key.as_object_mut().unwrap().remove("use");
        key.as_object_mut().unwrap().remove("x5t");
        let parsed = parse_jwks(&doc(vec![key])).unwrap();
        assert_eq!(parsed.key_set.keys[0].x5t, None);
    }

    #[test]
    fn leading_zeros_are_stripped_and_padding_tolerated() {
        let mut n = vec![0, 0];
        n.extend(modulus(2048));
        let mut key = entra_key("k", 2048);
        key["n"] = json!(format!("{}==", b64(&n)));
        key["e"] = json!("AAEAAQ==");
        let parsed = parse_jwks(&doc(vec![key])).unwrap();
        let k = &parsed.key_set.keys[0];
        assert_eq!(k.n, modulus(2048));
        assert_eq!(k.e, vec![1, 0, 1]);
    }

    #[test]
    fn a_2047_bit_modulus_padded_with_zeros_is_still_too_small() {
        let mut n = vec![0u8];
        n.extend(vec![0x7F; 256]);
        let mut key = entra_key("k", 2048);
        key["n"] = json!(b64(&n));
        let err = parse_jwks(&doc(vec![key])).unwrap_err();
        assert_eq!(
            err,
            JwksError::NoUsableKeys {
                skipped: vec![SkipReason::ModulusTooSmall]
            }
        );
    }

    #[test]
    fn document_level_errors() {
        assert_eq!(parse_jwks(b"<html>"), Err(JwksError::NotJson));
        assert_eq!(parse_jwks(b""), Err(JwksError::NotJson));
        assert_eq!(parse_jwks(b"{}"), Err(JwksError::NoKeysArray));
        assert_eq!(parse_jwks(b"[]"), Err(JwksError::NoKeysArray));
        assert_eq!(parse_jwks(br#"{"keys":{}}"#), Err(JwksError::NoKeysArray));
        assert_eq!(
            parse_jwks(br#"{"keys":[]}"#),
            Err(JwksError::NoUsableKeys { skipped: vec![] })
        );
        let only_small = doc(vec![entra_key("s", 1024)]);
        assert!(matches!(
            parse_jwks(&only_small),
            Err(JwksError::NoUsableKeys { .. })
        ));
    }

    #[test]
    fn size_and_count_are_capped() {
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            parse_jwks(&big),
            Err(JwksError::TooLarge {
                bytes: MAX_DOCUMENT_BYTES + 1
            })
        );
        let many: Vec<Value> = (0..=MAX_KEYS)
            .map(|i| json!({"kty": "EC", "kid": i.to_string()}))
            .collect();
        assert_eq!(
            parse_jwks(&doc(many)),
            Err(JwksError::TooManyKeys {
                count: MAX_KEYS + 1
            })
        );
    }

    #[test]
    fn error_text_carries_no_key_material() {
        let key = entra_key("small", 1024);
        let n = key["n"].as_str().unwrap().to_string();
        let err = parse_jwks(&doc(vec![key])).unwrap_err();
        let text = err.to_string();
        assert_eq!(text, "no usable keys (modulus under 2048 bits: 1)");
        assert!(!text.contains(&n[..16]));
    }

    #[test]
    fn discovery_yields_the_jwks_path() {
        let body = br#"{"issuer":"https://login.microsoftonline.com/t/v2.0",
            "jwks_uri":"https://login.microsoftonline.com/t/discovery/v2.0/keys"}"#;
        assert_eq!(
            parse_discovery(body, "login.microsoftonline.com").as_deref(),
            Ok("/t/discovery/v2.0/keys")
        );
        let with_query = br#"{"jwks_uri":"http://IDP:8443/keys?appid=1#frag"}"#;
        assert_eq!(
            parse_discovery(with_query, "idp").as_deref(),
            Ok("/keys?appid=1")
        );
    }

    #[test]
    fn discovery_errors() {
        let auth = "login.microsoftonline.com";
        assert_eq!(
            parse_discovery(b"{}", auth),
            Err(JwksError::DiscoveryNoJwksUri)
        );
        assert_eq!(parse_discovery(b"nope", auth), Err(JwksError::NotJson));
        for uri in [
            "ftp://login.microsoftonline.com/k",
            "https://login.microsoftonline.com",
            "/relative/keys",
            "https://user@login.microsoftonline.com/k",
            "https://login.microsoftonline.com/a b",
        ] {
            let body = serde_json::to_vec(&json!({ "jwks_uri": uri })).unwrap();
            assert_eq!(
                parse_discovery(&body, auth),
                Err(JwksError::DiscoveryJwksUriInvalid),
                "{uri}"
            );
        }
        let other = br#"{"jwks_uri":"https://evil.example/t/discovery/v2.0/keys"}"#;
        assert_eq!(
            parse_discovery(other, auth),
            Err(JwksError::DiscoveryAuthorityMismatch)
        );
    }
}
