//! Safe identifiers for secrets in logs.
//!
//! Tokens are bearer credentials: anything that logs one hands it to whoever
//! reads the logs. We log only a short SHA-256 prefix, which lets operators
//! correlate log lines for the same token without being able to replay it.

use sha2::{Digest, Sha256};

/// First 12 hex characters of SHA-256 of `secret` (48 bits: enough to correlate,
/// useless for replay).
pub fn fingerprint(secret: &str) -> String {
    fingerprint_of_sha256(&Sha256::digest(secret.as_bytes()).into())
}

/// [`fingerprint`] of a secret whose SHA-256 is already known (the
/// verified-token cache's key), without hashing it again.
pub fn fingerprint_of_sha256(digest: &[u8; 32]) -> String {
    // By hand, not `format!`: every request with a token is fingerprinted
    // for the audit record.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(12);
    for byte in digest.iter().take(6) {
        for nibble in [byte >> 4, byte & 0x0f] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// Marks, in a logged path, where a query string (or fragment) was removed.
pub const QUERY_REDACTED: &str = "?<redacted>";

/// The request path as it may be logged: without its query string and fragment.
///
/// A query string can carry credentials: `?access_token=` (RFC 6750 section
/// 2.3, which the filter does not accept but clients still send), signed URLs,
/// API keys. Decisions do not depend on it (rules match the path alone), so
/// it is left out entirely; [`QUERY_REDACTED`] shows that there was one.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.find(['?', '#']) {
        Some(end) => std::borrow::Cow::Owned(format!("{}{QUERY_REDACTED}", &path[..end])),
        None => std::borrow::Cow::Borrowed(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_lower_hex_of_the_first_six_bytes() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
    }

    #[test]
    fn of_a_known_digest_is_the_same_fingerprint() {
        let secret = "eyJhbGciOiJSUzI1NiJ9.payload.signature";
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        assert_eq!(fingerprint_of_sha256(&digest), fingerprint(secret));
    }

    #[test]
    fn is_short_stable_and_not_the_input() {
        let a = fingerprint("eyJhbGciOiJSUzI1NiJ9.payload.signature");
        assert_eq!(a.len(), 12);
        assert_eq!(a, fingerprint("eyJhbGciOiJSUzI1NiJ9.payload.signature"));
        assert_ne!(a, fingerprint("eyJhbGciOiJSUzI1NiJ9.payload.signaturf"));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn loggable_path_drops_the_query_string_and_fragment() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let path = format!("/fraud/analyze?access_token={token}");
        let logged = loggable_path(&path);
        assert_eq!(logged, "/fraud/analyze?<redacted>");
        assert!(!logged.contains("eyJ"));
        assert_eq!(loggable_path("/a#access_token=x"), "/a?<redacted>");
        assert_eq!(loggable_path("/a?"), "/a?<redacted>");
        assert_eq!(loggable_path("?x=1"), "?<redacted>");
    }

    #[test]
    fn loggable_path_keeps_a_path_without_query_as_is() {
        assert!(matches!(
            loggable_path("/fraud/reports/daily"),
            std::borrow::Cow::Borrowed("/fraud/reports/daily")
        ));
        assert_eq!(loggable_path(""), "");
    }
}
