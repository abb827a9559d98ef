//! Parsing the JWT payload into [`Claims`].
//!
//! Strictness is a security property here, not pedantry:
//!
//! - The payload must be one JSON object (RFC 7519 section 7.2 step 10). A JSON
//!   array is refused even though serde could map it onto the struct by position.
//! - Every claim we read must have the type Entra gives it. A claim with the wrong
//!   type makes the whole token invalid instead of being dropped: silently
//!   ignoring `"exp": "never"` would turn a malformed token into one that never
//!   expires, and ignoring `"roles": "Admin"` invites parser-differential games.
//! - A claim we read may appear only once. JSON parsers disagree on duplicate
//!   keys (first wins, last wins, error), so a token like
//!   `{"aud":"ours","aud":"theirs"}` could mean different things to us and to the
//!   backend; RFC 7519 section 4 says such a JWT must be rejected (or last-wins,
//!   which we do not rely on). `serde`'s derived deserializer reports
//!   `duplicate field` for every declared field, escaped spellings included
//!   (`"\u0065xp"` is `exp`).
//! - `null` is not a value for any claim we read (Entra never sends it).
//! - Unknown claims are skipped without being kept (`aio`, `uti`, `rh`, ...).
//!
//! Every failure is [`AuthError::TokenClaimsInvalid`].

use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;

use crate::claims::model::Claims;
use crate::error::AuthError;
use crate::token::strict_json::check_well_formed;

/// Parses the (already base64url-decoded) JWT payload.
pub fn decode_claims(json: &[u8]) -> Result<Claims, AuthError> {
    if !starts_with_object(json) {
        return Err(AuthError::TokenClaimsInvalid);
    }
    // The typed parse below skips claims we do not read without checking them;
    // the whole claims set must nevertheless be UTF-8 JSON (RFC 7519 7.2):
    // see `strict_json` for why a lenient skip is a parser differential.
    check_well_formed(json).map_err(|_| AuthError::TokenClaimsInvalid)?;
    let raw: RawClaims = serde_json::from_slice(json).map_err(|_| AuthError::TokenClaimsInvalid)?;
    Ok(raw.into_claims())
}

/// True when the first non-whitespace byte opens a JSON object.
///
/// Needed because derived struct deserializers also accept a JSON array (fields by
/// position); a JWT payload is always an object.
pub(crate) fn starts_with_object(json: &[u8]) -> bool {
    json.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|b| *b == b'{')
}

/// The wire shape of the claims we read. Field names are the claim names.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default, deserialize_with = "present_string")]
    iss: Option<String>,
    #[serde(default, deserialize_with = "audience")]
    aud: Vec<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "present_string")]
    tid: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    ver: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    azp: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    appid: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    idtyp: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    oid: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    sub: Option<String>,
    /// A plain `Vec<String>` refuses `null`, a bare string and non-string items.
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default, deserialize_with = "present_string")]
    scp: Option<String>,
}

impl RawClaims {
    fn into_claims(self) -> Claims {
        Claims {
            iss: self.iss,
            aud: self.aud,
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            tid: self.tid,
            ver: self.ver,
            azp: self.azp,
            appid: self.appid,
            idtyp: self.idtyp,
            oid: self.oid,
            sub: self.sub,
            roles: self.roles,
            // Entra separates scopes with single spaces; empty pieces (leading,
            // trailing or doubled spaces) name no scope and are dropped.
            scopes: self
                .scp
                .as_deref()
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// `deserialize_with` helper for an optional string member that, when present,
/// must be a JSON string (`null` refused). Absence is handled by `#[serde(default)]`.
/// Shared with the JOSE header parser.
pub(crate) fn present_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `aud`: a string, or an array of strings (RFC 7519 section 4.1.3).
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct AudienceVisitor;

    impl<'de> Visitor<'de> for AudienceVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }

    d.deserialize_any(AudienceVisitor)
}

/// `exp`/`nbf`/`iat`: a JSON integer of seconds (RFC 7519 NumericDate).
///
/// Decision (issue "Hostile input, round 2"): only integers written as JSON
/// integers are accepted. RFC 7519 allows fractional NumericDates, but Entra
/// always writes whole seconds as plain integers, so `1767230400.9`, `1.7e9`
/// or `1767230400.0` are tokens Entra did not produce; truncating them (as
/// earlier versions did) made up a value the issuer never stated. Strings,
/// booleans, `null` and integers outside `i64` are refused too, never clamped:
/// a clamped `exp` would be a made-up expiry.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct NumericDateVisitor;

    impl Visitor<'_> for NumericDateVisitor {
        type Value = i64;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("an integer number of seconds since the epoch")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }

        // No `visit_f64`: serde_json reports every number with a fraction or
        // an exponent as a float, and the default refuses it.
    }

    d.deserialize_any(NumericDateVisitor).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_V2: &str = r#"{
      "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
      "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
      "iat": 1767225600,
      "nbf": 1767225600,
      "exp": 1767230400,
      "aio": "E2RgYJg9b3Wvvf8u5mLQ4QQ=",
      "azp": "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6",
      "azpacr": "1",
      "idtyp": "app",
      "oid": "a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b",
      "rh": "0.AAAAv4j5cvGGr0GRqy180BHbRw.",
      "roles": ["Fraud.Scan"],
      "sub": "a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b",
      "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
      "uti": "3Q9hW1VwBkaQ2fHkLr9mAA",
      "ver": "2.0"
    }"#;

    const APP_V1: &str = r#"{
      "aud": "api://fintech-fraud-detector",
      "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
      "iat": 1767225600, "nbf": 1767225600, "exp": 1767230400,
      "appid": "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6",
      "appidacr": "1",
      "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
      "idtyp": "app",
      "roles": ["Fraud.Scan"],
      "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
      "ver": "1.0"
    }"#;

    const USER_V2: &str = r#"{
      "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
      "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
      "iat": 1767225600, "nbf": 1767225600, "exp": 1767230400,
      "azp": "0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5",
      "azpacr": "0",
      "name": "Analyst One",
      "oid": "d2e3f4a5-b6c7-4d8e-9f00-112233445566",
      "preferred_username": "analyst@fintech.example",
      "scp": "Fraud.Read Fraud.Scan",
      "sub": "uQ8p2dK4n5mR7sT9vW1xY3zA5bC7dE9fG1hJ3kL5mN7",
      "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
      "ver": "2.0"
    }"#;

    fn decode(json: &str) -> Result<Claims, AuthError> {
        decode_claims(json.as_bytes())
    }

    fn invalid(json: &str) {
        assert_eq!(decode(json), Err(AuthError::TokenClaimsInvalid), "{json}");
    }

    #[test]
    fn entra_v2_app_token() {
        let c = decode(APP_V2).unwrap();
        assert_eq!(
            c.iss.as_deref(),
            Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
        );
        assert_eq!(c.aud, vec!["6e74172b-be56-4843-9ff4-e66a39bb12e3"]);
        assert_eq!(c.exp, Some(1_767_230_400));
        assert_eq!(c.nbf, Some(1_767_225_600));
        assert_eq!(c.iat, Some(1_767_225_600));
        assert_eq!(
            c.tid.as_deref(),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert_eq!(c.ver.as_deref(), Some("2.0"));
        assert_eq!(
            c.azp.as_deref(),
            Some("c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6")
        );
        assert_eq!(c.appid, None);
        assert_eq!(c.idtyp.as_deref(), Some("app"));
        assert_eq!(
            c.oid.as_deref(),
            Some("a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b")
        );
        assert_eq!(
            c.sub.as_deref(),
            Some("a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b")
        );
        assert_eq!(c.roles, vec!["Fraud.Scan"]);
        assert!(c.scopes.is_empty());
        assert!(c.is_app_token());
        assert_eq!(
            c.caller_app_id(),
            Some("c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6")
        );
    }

    #[test]
    fn entra_v1_app_token() {
        let c = decode(APP_V1).unwrap();
        assert_eq!(c.aud, vec!["api://fintech-fraud-detector"]);
        assert_eq!(c.ver.as_deref(), Some("1.0"));
        assert_eq!(c.azp, None);
        assert_eq!(
            c.caller_app_id(),
            Some("c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6")
        );
    }

    #[test]
    fn entra_v2_user_token_splits_scopes() {
        let c = decode(USER_V2).unwrap();
        assert_eq!(c.scopes, vec!["Fraud.Read", "Fraud.Scan"]);
        assert!(c.roles.is_empty());
        assert!(!c.is_app_token());
    }

    #[test]
    fn empty_pieces_of_scp_are_dropped() {
        let c = decode(r#"{"scp":" a  b "}"#).unwrap();
        assert_eq!(c.scopes, vec!["a", "b"]);
        let c = decode(r#"{"scp":""}"#).unwrap();
        assert!(c.scopes.is_empty());
    }

    #[test]
    fn an_empty_object_decodes_to_nothing() {
        assert_eq!(decode("{}"), Ok(Claims::default()));
        assert_eq!(decode(" \n{ }\t"), Ok(Claims::default()));
    }

    #[test]
    fn unknown_claims_of_any_shape_are_ignored() {
        let c =
            decode(r#"{"x":{"y":[1,null,{"z":true}]},"wids":["a"],"ver":"2.0","xx":1}"#).unwrap();
        assert_eq!(c.ver.as_deref(), Some("2.0"));
    }

    #[test]
    fn payload_must_be_an_object() {
        for json in [
            "",
            " ",
            "[]",
            r#"["iss","aud"]"#,
            r#""{}""#,
            "null",
            "42",
            "true",
        ] {
            invalid(json);
        }
    }

    #[test]
    fn trailing_data_is_refused() {
        invalid("{} {}");
        invalid("{}x");
        invalid(r#"{"ver":"2.0"}]"#);
    }

    #[test]
    fn invalid_json_and_encoding_are_refused() {
        invalid("{");
        invalid(r#"{"ver":"2.0",}"#);
        invalid(r#"{'ver':'2.0'}"#);
        assert_eq!(
            decode_claims(b"{\"sub\":\"\xff\"}"),
            Err(AuthError::TokenClaimsInvalid)
        );
        // A lone surrogate escape is not a Unicode string.
        invalid(r#"{"sub":"\ud800"}"#);
        // A UTF-8 byte order mark is not JSON whitespace.
        assert_eq!(
            decode_claims(b"\xef\xbb\xbf{}"),
            Err(AuthError::TokenClaimsInvalid)
        );
    }

    #[test]
    fn duplicate_claims_we_read_are_refused() {
        for json in [
            r#"{"aud":"a","aud":"b"}"#,
            r#"{"exp":1,"exp":2}"#,
            r#"{"iss":"a","iss":"a"}"#,
            r#"{"tid":"a","tid":"b"}"#,
            r#"{"ver":"1.0","ver":"2.0"}"#,
            r#"{"roles":[],"roles":["Admin"]}"#,
            r#"{"scp":"a","scp":"b"}"#,
            r#"{"azp":"a","azp":"b"}"#,
            r#"{"appid":"a","appid":"b"}"#,
            r#"{"idtyp":"user","idtyp":"app"}"#,
            r#"{"nbf":1,"nbf":2}"#,
            // Escaped spelling of the same name is the same name.
            r#"{"exp":1,"\u0065xp":2}"#,
        ] {
            invalid(json);
        }
    }

    #[test]
    fn duplicate_unknown_claims_are_refused_too() {
        // RFC 7519 section 4: claim names are unique; a strict backend parser
        // would refuse this token, so we do (see `strict_json`).
        invalid(r#"{"aio":"a","aio":"b"}"#);
        invalid(r#"{"exp":1767230400,"xms":{"a":1,"a":2}}"#);
    }

    #[test]
    fn ill_formed_unknown_claims_are_refused() {
        // The fuzz finding: a lone surrogate escape in a claim we do not read.
        invalid(r#"{"exp":1767230400,"name":"\uDDDD"}"#);
        invalid(r#"{"exp":1767230400,"name":1e400}"#);
        for bytes in [
            &b"{\"exp\":1767230400,\"name\":\"\xff\"}"[..],
            b"{\"exp\":1767230400,\"name\":\"\xc0\xaf\"}",
            b"{\"exp\":1767230400,\"n\xed\xa0\x80\":1}",
        ] {
            assert_eq!(decode_claims(bytes), Err(AuthError::TokenClaimsInvalid));
        }
    }

    #[test]
    fn aud_may_be_an_array() {
        let c = decode(r#"{"aud":["api://x","6e74172b-be56-4843-9ff4-e66a39bb12e3"]}"#).unwrap();
        assert_eq!(
            c.aud,
            vec!["api://x", "6e74172b-be56-4843-9ff4-e66a39bb12e3"]
        );
        assert_eq!(decode(r#"{"aud":[]}"#).unwrap().aud, Vec::<String>::new());
    }

    #[test]
    fn aud_of_the_wrong_type_is_refused() {
        for json in [
            r#"{"aud":1}"#,
            r#"{"aud":null}"#,
            r#"{"aud":["a",1]}"#,
            r#"{"aud":[["a"]]}"#,
            r#"{"aud":{"a":1}}"#,
            r#"{"aud":true}"#,
        ] {
            invalid(json);
        }
    }

    #[test]
    fn numeric_dates_accept_integers() {
        let c = decode(r#"{"exp":0,"nbf":-5,"iat":9223372036854775807}"#).unwrap();
        assert_eq!(c.exp, Some(0));
        assert_eq!(c.nbf, Some(-5));
        assert_eq!(c.iat, Some(i64::MAX));
    }

    #[test]
    fn negative_exp_parses_and_is_left_to_validation() {
        assert_eq!(decode(r#"{"exp":-1}"#).unwrap().exp, Some(-1));
        assert_eq!(
            decode(r#"{"exp":-9223372036854775808}"#).unwrap().exp,
            Some(i64::MIN)
        );
    }

    #[test]
    fn non_integer_dates_are_refused() {
        // Entra writes whole seconds as JSON integers; anything else is a
        // token it did not issue (see `numeric_date`).
        for json in [
            r#"{"exp":1767230400.9}"#,
            r#"{"exp":1767230400.0}"#,
            r#"{"exp":1.7672304e9}"#,
            r#"{"exp":1767230400e0}"#,
            r#"{"nbf":-1.5}"#,
            r#"{"iat":1e9}"#,
            r#"{"exp":-0.0}"#,
        ] {
            invalid(json);
        }
    }

    #[test]
    fn numeric_dates_of_the_wrong_type_or_out_of_range_are_refused() {
        for json in [
            r#"{"exp":"1767230400"}"#,
            r#"{"exp":null}"#,
            r#"{"exp":true}"#,
            r#"{"exp":[1]}"#,
            r#"{"exp":{}}"#,
            // Just past i64::MAX, as an integer and as floats.
            r#"{"exp":9223372036854775808}"#,
            r#"{"exp":18446744073709551615}"#,
            r#"{"exp":100000000000000000000000}"#,
            r#"{"exp":9.3e18}"#,
            r#"{"exp":1e18}"#,
            r#"{"exp":1e400}"#,
            r#"{"exp":-1e400}"#,
            r#"{"nbf":-9.3e18}"#,
            r#"{"iat":"now"}"#,
            // Not JSON numbers at all.
            r#"{"exp":NaN}"#,
            r#"{"exp":Infinity}"#,
        ] {
            invalid(json);
        }
    }

    #[test]
    fn string_claims_of_the_wrong_type_are_refused() {
        for name in [
            "iss", "tid", "ver", "azp", "appid", "idtyp", "oid", "sub", "scp",
        ] {
            for value in ["null", "1", "true", r#"["a"]"#, "{}"] {
                invalid(&format!(r#"{{"{name}":{value}}}"#));
            }
        }
        // Entra's `ver` is a string; a number is not "the same".
        invalid(r#"{"ver":2.0}"#);
    }

    #[test]
    fn roles_must_be_an_array_of_strings() {
        for json in [
            r#"{"roles":"Fraud.Scan"}"#,
            r#"{"roles":null}"#,
            r#"{"roles":[1]}"#,
            r#"{"roles":["a",null]}"#,
            r#"{"roles":{"a":1}}"#,
        ] {
            invalid(json);
        }
    }
}
