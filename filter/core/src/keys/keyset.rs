//! The set of signing keys of one JWKS, and how a token header selects one.

use crate::keys::RsaPublicKey;

/// The usable keys of one JWKS document. A new document replaces the whole set,
/// so a key removed by the IdP (rotation) stops verifying at the next refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<RsaPublicKey>,
}

impl KeySet {
    /// The key a token header names, if any.
    ///
    /// - With a `kid`, only an exact `kid` match counts. We never "try every key":
    ///   that would turn an unknown `kid` into N signature checks and blur the
    ///   difference between "unknown key" and "bad signature".
    /// - Without a `kid`, `x5t` is matched against each key's `x5t`, or against its
    ///   `kid` when the key has no `x5t` (Entra sets `kid == x5t`; v1 tokens may
    ///   carry only `x5t`).
    /// - With neither, nothing matches.
    pub fn find(&self, kid: Option<&str>, x5t: Option<&str>) -> Option<&RsaPublicKey> {
        match (kid, x5t) {
            (Some(kid), _) => self.keys.iter().find(|k| k.kid == kid),
            (None, Some(x5t)) => self.keys.iter().find(|k| match &k.x5t {
                Some(own) => own == x5t,
                None => k.kid == x5t,
            }),
            (None, None) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::*;

    fn key(kid: &str, x5t: Option<&str>) -> RsaPublicKey {
        RsaPublicKey {
            kid: kid.to_string(),
            x5t: x5t.map(str::to_string),
            n: vec![0xC0; 256],
            e: vec![1, 0, 1],
        }
    }

    fn set() -> KeySet {
        KeySet {
            keys: vec![
                key("a", Some("a")),
                key("b", Some("thumb-b")),
                key("c", None),
            ],
        }
    }

    #[test]
    fn kid_matches_exactly() {
        let s = set();
        assert_eq!(s.find(Some("b"), None).map(|k| k.kid.as_str()), Some("b"));
        assert_eq!(s.find(Some("B"), None), None);
        assert_eq!(s.find(Some(""), None), None);
    }

    #[test]
    fn unknown_kid_does_not_fall_back_to_x5t() {
        let s = set();
        assert_eq!(s.find(Some("zzz"), Some("a")), None);
    }

    #[test]
    fn x5t_only_matches_x5t_or_kid_of_keys_without_x5t() {
        let s = set();
        assert_eq!(
            s.find(None, Some("thumb-b")).map(|k| k.kid.as_str()),
            Some("b")
        );
        // Key b has its own x5t, so its kid is not an x5t match.
        assert_eq!(s.find(None, Some("b")), None);
        assert_eq!(s.find(None, Some("c")).map(|k| k.kid.as_str()), Some("c"));
        assert_eq!(s.find(None, None), None);
    }

    #[test]
    fn empty_set_finds_nothing() {
        let s = KeySet::default();
        assert!(s.is_empty());
        assert_eq!(s.find(Some("a"), Some("a")), None);
    }
}
