//! Taking the bearer token out of the `Authorization` header (RFC 6750 section 2.1).
//!
//! This runs on every request before anything else touches the token, so it is
//! deliberately strict and cheap:
//!
//! - Exactly one `Authorization` value. Two values are ambiguous (which one would
//!   a backend or another filter look at?), so they are refused rather than
//!   picking one.
//! - The scheme is `Bearer`, compared case-insensitively (RFC 7235 section 2.1:
//!   auth-scheme is case-insensitive), followed by one or more spaces
//!   (RFC 6750: `"Bearer" 1*SP b64token`). Tabs are not accepted as separators.
//! - The length limit is applied before the token is inspected any further, so
//!   an oversized header costs one comparison.
//! - The token must consist only of base64url characters and `.`: that is all a
//!   compact JWS can contain. This is narrower than RFC 6750's `b64token`
//!   (which also allows `~ + /` and trailing `=`), because those characters can
//!   never appear in a valid JWT, and refusing them here also keeps control
//!   characters (CR, LF, NUL) and spaces out of everything downstream.
//!
//! Empty credentials: a header value that is empty (or only spaces) counts as
//! "no credentials" ([`AuthError::TokenMissing`], RFC 6750 section 3.1: no error
//! code). `Bearer` followed by nothing is a client that tried to authenticate and
//! sent a malformed token, so it is [`AuthError::TokenNotCompactJws`].

use crate::error::AuthError;

/// The authentication scheme, matched case-insensitively.
const BEARER: &str = "Bearer";

/// Returns the bearer token from the request's `Authorization` header values.
///
/// `authorization_values` holds every `Authorization` value of the request, in
/// order. The returned slice borrows from the single value.
///
/// Errors: [`AuthError::TokenMissing`] (no header, or an empty value),
/// [`AuthError::AuthorizationHeaderDuplicated`] (more than one value),
/// [`AuthError::AuthorizationSchemeNotBearer`], [`AuthError::TokenTooLong`],
/// [`AuthError::TokenNotCompactJws`] (`Bearer` without a token) and
/// [`AuthError::TokenNotBase64Url`] (a character no JWS can contain).
pub fn bearer_token<S: AsRef<str>>(
    authorization_values: &[S],
    max_token_bytes: usize,
) -> Result<&str, AuthError> {
    let value = match authorization_values {
        [] => return Err(AuthError::TokenMissing),
        [value] => value.as_ref(),
        _ => return Err(AuthError::AuthorizationHeaderDuplicated),
    };
    if value.bytes().all(|b| b == b' ') {
        return Err(AuthError::TokenMissing);
    }
    // Proxies (Envoy included) may fold repeated headers into one value joined
    // by commas (RFC 9110 5.3): `Bearer a.b.c, Bearer x.y.z`. A second
    // `scheme credentials` element after a comma is the duplicate-header case.
    if is_folded_credential_list(value) {
        return Err(AuthError::AuthorizationHeaderDuplicated);
    }

    // `split_once` keeps the scheme comparison independent of the token's length.
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case(BEARER) {
        return Err(AuthError::AuthorizationSchemeNotBearer);
    }
    let token = rest.trim_start_matches(' ');

    // Before any per-byte work on the token: bounds the cost of hostile input.
    if token.len() > max_token_bytes {
        return Err(AuthError::TokenTooLong);
    }
    if token.is_empty() {
        return Err(AuthError::TokenNotCompactJws);
    }
    if !all_jws_bytes(token) {
        return Err(AuthError::TokenNotBase64Url);
    }
    Ok(token)
}

/// The token [`bearer_token`] would return, without its per-byte checks
/// (alphabet, folded credential lists): one value, the `Bearer` scheme, a
/// non-empty token within the length limit. Only for recognising a token
/// verified before: the same bytes passed every check then, so a hit needs
/// none of them again. Anything else goes through [`bearer_token`], which
/// decides (and names the error) exactly as if this had not been called.
pub fn bearer_token_shape<S: AsRef<str>>(
    authorization_values: &[S],
    max_token_bytes: usize,
) -> Option<&str> {
    let [value] = authorization_values else {
        return None;
    };
    let (scheme, rest) = value.as_ref().split_once(' ')?;
    let token = rest.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case(BEARER) && !token.is_empty() && token.len() <= max_token_bytes)
        .then_some(token)
}

/// True for `cred1, cred2` where a later element has the `scheme SP token` shape.
fn is_folded_credential_list(value: &str) -> bool {
    value
        .split(',')
        .skip(1)
        .any(|element| element.trim_start_matches(' ').contains(' '))
}

/// Whether every byte is in the base64url alphabet (RFC 4648 section 5) or
/// is the JWS part separator.
fn all_jws_bytes(token: &str) -> bool {
    // Every request's token (about a kilobyte) goes through here. Each byte's
    // test is branch-free and the results are folded with `|`, so the
    // compiler checks 16-32 bytes per instruction (a lookup table costs a
    // load per byte, and the branchy form showed up in the native profile);
    // a bad chunk still ends the scan early.
    token
        .as_bytes()
        .chunks(64)
        .all(|chunk| !chunk.iter().fold(false, |bad, &b| bad | !is_jws_byte(b)))
}

/// One byte of [`all_jws_bytes`]: `A-Z a-z 0-9 - _ .`, without branches
/// (`b | 0x20` lower-cases ASCII letters and maps no other byte into `a-z`).
#[inline(always)]
fn is_jws_byte(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'_')
        | (b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jws_bytes_are_the_base64url_alphabet_and_the_dot() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
            assert_eq!(is_jws_byte(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn the_shape_is_the_token_bearer_token_returns_whenever_it_returns_one() {
        let cases: &[&[&str]] = &[
            &["Bearer a.b.c"],
            &["bearer   a.b.c"],
            &["Bearer a.b.c, Bearer x.y.z"],
            &["Bearer a+b.c"],
            &["Basic a.b.c"],
            &["Bearer "],
            &["Bearer"],
            &[""],
            &["Bearer a.b.c", "Bearer a.b.c"],
            &[],
        ];
        for values in cases {
            let shape = bearer_token_shape(values, 16);
            if let Ok(token) = bearer_token(values, 16) {
                assert_eq!(shape, Some(token), "{values:?}");
            }
            if shape.is_none() {
                assert!(bearer_token(values, 16).is_err(), "{values:?}");
            }
        }
        // Only the cheap checks: a shape is not a verdict.
        assert_eq!(bearer_token_shape(&["Bearer a+b.c"], 16), Some("a+b.c"));
        assert_eq!(bearer_token_shape(&["Bearer a.b.c"], 4), None, "too long");
    }

    #[test]
    fn one_bad_byte_anywhere_in_a_long_token_is_found() {
        let good = "aZ09-_.".repeat(300);
        assert!(all_jws_bytes(&good));
        assert!(all_jws_bytes(""));
        for position in [0, 1, 63, 64, 65, 1000, good.len() - 1] {
            for bad in ["+", "/", "=", " ", ",", "\0", "\u{e9}"] {
                let mut token = good.clone();
                token.replace_range(position..=position, bad);
                assert!(!all_jws_bytes(&token), "{bad:?} at {position}");
            }
        }
    }

    #[test]
    fn folded_duplicate_headers_are_reported_as_duplicates() {
        assert_eq!(
            bearer_token(&["Bearer a.b.c, Bearer a.b.c"], 16384),
            Err(AuthError::AuthorizationHeaderDuplicated)
        );
        assert_eq!(
            bearer_token(&["Bearer a.b.c,Bearer x.y.z"], 16384),
            Err(AuthError::AuthorizationHeaderDuplicated)
        );
    }

    const MAX: usize = 16 * 1024;
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    fn extract(values: &[&str]) -> Result<String, AuthError> {
        bearer_token(values, MAX).map(str::to_string)
    }

    #[test]
    fn accepts_a_single_bearer_value() {
        assert_eq!(
            extract(&[&format!("Bearer {TOKEN}")]),
            Ok(TOKEN.to_string())
        );
    }

    #[test]
    fn the_token_borrows_from_the_header_value() {
        let header = format!("Bearer {TOKEN}");
        let values = [header.as_str()];
        let token = bearer_token(&values, MAX).unwrap();
        assert!(std::ptr::eq(token, &header[7..]));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                extract(&[&format!("{scheme} {TOKEN}")]),
                Ok(TOKEN.to_string())
            );
        }
    }

    #[test]
    fn several_spaces_after_the_scheme_are_accepted() {
        assert_eq!(
            extract(&[&format!("Bearer    {TOKEN}")]),
            Ok(TOKEN.to_string())
        );
    }

    #[test]
    fn no_header_is_missing() {
        assert_eq!(extract(&[]), Err(AuthError::TokenMissing));
    }

    #[test]
    fn an_empty_value_is_missing() {
        assert_eq!(extract(&[""]), Err(AuthError::TokenMissing));
        assert_eq!(extract(&["   "]), Err(AuthError::TokenMissing));
    }

    #[test]
    fn two_values_are_refused_even_if_both_are_valid() {
        let v = format!("Bearer {TOKEN}");
        assert_eq!(
            extract(&[&v, &v]),
            Err(AuthError::AuthorizationHeaderDuplicated)
        );
        assert_eq!(
            extract(&[&v, "Basic abc"]),
            Err(AuthError::AuthorizationHeaderDuplicated)
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Digest username=x",
            "DPoP abc",
            "Bearerabc",
            format!("Bearer\t{TOKEN}").as_str(),
            format!(" Bearer {TOKEN}").as_str(),
            TOKEN,
            "Bear",
        ] {
            assert_eq!(
                extract(&[value]),
                Err(AuthError::AuthorizationSchemeNotBearer),
                "{value:?}"
            );
        }
    }

    #[test]
    fn bearer_without_a_token_is_malformed() {
        for value in ["Bearer", "Bearer ", "bearer    "] {
            assert_eq!(
                extract(&[value]),
                Err(AuthError::TokenNotCompactJws),
                "{value:?}"
            );
        }
    }

    #[test]
    fn length_limit_is_inclusive() {
        let token = "a".repeat(MAX);
        assert_eq!(extract(&[&format!("Bearer {token}")]), Ok(token));
        let token = "a".repeat(MAX + 1);
        assert_eq!(
            extract(&[&format!("Bearer {token}")]),
            Err(AuthError::TokenTooLong)
        );
    }

    #[test]
    fn length_is_checked_before_the_characters() {
        // Invalid characters in an oversized token still report the size: the
        // character scan must not run on it at all.
        let token = "\n".repeat(MAX + 1);
        assert_eq!(
            extract(&[&format!("Bearer {token}")]),
            Err(AuthError::TokenTooLong)
        );
    }

    #[test]
    fn characters_outside_base64url_are_refused() {
        for bad in [
            "abc\r\ndef",
            "abc\ndef",
            "abc\0def",
            "abc def",
            "abc\tdef",
            "abc=",
            "abc==",
            "ab+c",
            "ab/c",
            "ab~c",
            "ab\"c",
            "abc,def",
            "abc ",
            "abcé",
        ] {
            assert_eq!(
                extract(&[&format!("Bearer {bad}")]),
                Err(AuthError::TokenNotBase64Url),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn structure_is_not_judged_here() {
        // Part counting belongs to the JWS decoder; this only extracts.
        assert_eq!(extract(&["Bearer a.b.c.d.e"]), Ok("a.b.c.d.e".to_string()));
        assert_eq!(extract(&["Bearer ..."]), Ok("...".to_string()));
    }
}
