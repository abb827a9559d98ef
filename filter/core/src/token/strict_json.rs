//! Whole-document well-formedness of the JOSE header and the claims set.
//!
//! The typed parsers ([`crate::claims::decode`], the header parser in
//! [`super::jws`]) read only the members entragate uses and skip the others
//! with serde's `IgnoredAny`. serde_json skips a string *without* checking
//! it: invalid UTF-8 bytes, overlong encodings and lone-surrogate escapes
//! (`"\uDDDD"`) inside an ignored claim passed, and so did numbers outside
//! the double range (`1e400`). RFC 7519 section 7.2 requires the claims set
//! (and RFC 7515 section 5.2 the header) to be UTF-8 JSON, and a backend that
//! re-parses the token with a strict parser would refuse what we allowed: a
//! parser differential, which is exactly what a strict validator must not
//! leave open. So every member, used or not, is parsed once here first.
//!
//! Rules (a violation is a refusal of the whole token):
//! - the bytes are UTF-8 (no BOM: a JWT part starts with `{`);
//! - every string, key or value, decodes: no lone surrogate in `\u` escapes;
//! - every number is finite as a double (serde_json refuses `1e400`);
//! - member names are unique in every object (RFC 7519 section 4 and RFC 7515
//!   section 4 require unique names; RFC 8259 leaves duplicates undefined, and
//!   parsers disagree on which one wins);
//! - nesting is bounded by serde_json's recursion limit (128).

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// Why a document is not well-formed. Only for tests and logs of the caller:
/// the request-path error stays the part's own `AuthError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotWellFormed;

/// Checks `json` against the rules in the module docs.
pub fn check_well_formed(json: &[u8]) -> Result<(), NotWellFormed> {
    // `from_utf8` first: it is the clearest statement of the rule, and it
    // also covers bytes outside strings, which the JSON grammar refuses anyway.
    std::str::from_utf8(json).map_err(|_| NotWellFormed)?;
    // `from_slice` (not `from_str`): the typed parsers use the slice reader
    // too, so the wasm module carries one instantiation of it, not two.
    serde_json::from_slice::<WellFormed>(json)
        .map(|_| ())
        .map_err(|_| NotWellFormed)
}

/// A JSON value that was fully parsed and then dropped.
struct WellFormed;

impl<'de> Deserialize<'de> for WellFormed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WellFormedVisitor)
    }
}

/// A member name: deserialized as a string, so serde_json decodes it fully.
struct MemberName(String);

impl<'de> Deserialize<'de> for MemberName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(MemberName)
    }
}

struct WellFormedVisitor;

impl<'de> Visitor<'de> for WellFormedVisitor {
    type Value = WellFormed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_i64<E>(self, _: i64) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_u64<E>(self, _: u64) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WellFormed, E> {
        // serde_json already refuses overflow; kept explicit so the rule holds
        // whatever the parser's number mode.
        if v.is_finite() {
            Ok(WellFormed)
        } else {
            Err(E::custom("number out of range"))
        }
    }

    // Strings reach these only after serde_json decoded them (UTF-8 checked,
    // escapes resolved, lone surrogates refused).
    fn visit_str<E>(self, _: &str) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_string<E>(self, _: String) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_unit<E>(self) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WellFormed, A::Error> {
        while seq.next_element::<WellFormed>()?.is_some() {}
        Ok(WellFormed)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WellFormed, A::Error> {
        let mut names = BTreeSet::new();
        while let Some(MemberName(name)) = map.next_key::<MemberName>()? {
            if !names.insert(name) {
                return Err(A::Error::custom("duplicate member name"));
            }
            map.next_value::<WellFormed>()?;
        }
        Ok(WellFormed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &[u8]) -> bool {
        check_well_formed(json).is_ok()
    }

    #[test]
    fn accepts_entra_shaped_documents() {
        assert!(ok(br#"{"typ":"JWT","alg":"RS256","kid":"k","x5t":"k"}"#));
        assert!(ok(
            br#"{"aud":"a","roles":["R"],"exp":1767230400,"xms_ftd":{"a":[1,2.5,-3e2,true,null]}}"#
        ));
        // Valid escapes, a surrogate pair, and non-ASCII UTF-8.
        assert!(ok(br#"{"name":"\u00e9\ud83d\ude00\n\""}"#));
        assert!(ok("{\"name\":\"Zoë 😀\"}".as_bytes()));
        // Largest finite and tiny numbers, huge integers (as doubles).
        assert!(ok(
            br#"{"a":1.7976931348623157e308,"b":5e-324,"c":123456789012345678901234567890}"#
        ));
    }

    #[test]
    fn refuses_invalid_utf8_anywhere() {
        for bad in [
            &b"{\"name\":\"\xff\"}"[..],        // not UTF-8 at all
            b"{\"name\":\"\xc0\xaf\"}",         // overlong '/'
            b"{\"name\":\"\xe0\x80\xaf\"}",     // overlong, 3 bytes
            b"{\"name\":\"\xed\xa0\x80\"}",     // encoded surrogate (CESU)
            b"{\"name\":\"\xf4\x90\x80\x80\"}", // above U+10FFFF
            b"{\"name\":\"\xc3\"}",             // truncated sequence
            b"{\"n\xff\":1}",                   // in a member name
            b"\xef\xbb\xbf{\"a\":1}",           // BOM
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn refuses_lone_surrogate_escapes() {
        for bad in [
            br#"{"name":"\uDDDD"}"#.as_slice(),
            br#"{"name":"\ud800"}"#,
            br#"{"name":"\ud800x"}"#,
            br#"{"name":"\udc00\ud800"}"#,
            br#"{"\ud800":1}"#,
            br#"{"a":["\uDFFF"]}"#,
        ] {
            assert!(!ok(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn refuses_numbers_outside_the_double_range() {
        assert!(!ok(br#"{"a":1e400}"#));
        assert!(!ok(br#"{"a":-1e400}"#));
        assert!(!ok(br#"{"a":[{"b":1e309}]}"#));
    }

    #[test]
    fn refuses_duplicate_member_names_at_any_depth() {
        assert!(!ok(br#"{"name":"a","name":"b"}"#));
        // An escaped spelling is the same name.
        assert!(!ok(br#"{"name":"a","\u006eame":"b"}"#));
        assert!(!ok(br#"{"x":{"y":1,"y":2}}"#));
        // The same name in sibling objects is fine.
        assert!(ok(br#"{"x":{"y":1},"z":{"y":2}}"#));
    }

    #[test]
    fn refuses_what_json_refuses() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\":1,}",
            b"{\"a\":01}",
            b"{\"a\":NaN}",
            b"{\"a\":1} x",
            b"{'a':1}",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(!ok(deep.as_bytes()));
    }
}
