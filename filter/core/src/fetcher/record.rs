//! Encoding shared by every shared-data record: JSON carrying a format
//! version `v`, and key names under a prefix hashed from the record's source.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Not JSON of the expected shape.
    Malformed,
    /// Written by another format version.
    VersionUnsupported(u32),
    /// A stored key's `n`/`e` is not base64url (JWKS key records only).
    KeyEncoding,
    /// Serialization failed (does not happen for these types; kept total).
    Serialize,
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Malformed => f.write_str("record is malformed"),
            RecordError::VersionUnsupported(v) => write!(f, "record version {v} unsupported"),
            RecordError::KeyEncoding => f.write_str("stored key is not base64url"),
            RecordError::Serialize => f.write_str("record could not be serialized"),
        }
    }
}

pub fn encode_record<T: Serialize>(record: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(record).map_err(|_| RecordError::Serialize)
}

/// Decode a record only if its `v` is `version`. The version is checked
/// first, so a record of another format is reported as such rather than as
/// malformed (its fields may well differ).
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8], version: u32) -> Result<T, RecordError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    let found = serde_json::from_slice::<Versioned>(bytes)
        .map(|r| r.v)
        .map_err(|_| RecordError::Malformed)?;
    if found != version {
        return Err(RecordError::VersionUnsupported(found));
    }
    serde_json::from_slice(bytes).map_err(|_| RecordError::Malformed)
}

/// `entragate.<role>.v<version>.<16 hex of sha256(parts)>`.
///
/// Hashing the source keeps two sources (two tenants, two scopes) apart while
/// the same config in every worker (and after a VM reload) lands on the same
/// keys; the version in the name keeps two filter builds with different
/// formats from reading each other's records.
pub fn record_prefix(role: &str, version: u32, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let hex: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("entragate.{role}.v{version}.{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_stable_and_length_prefixed() {
        let a = record_prefix("x", 3, &["ab", "c"]);
        assert_eq!(a, record_prefix("x", 3, &["ab", "c"]));
        assert_ne!(a, record_prefix("x", 3, &["a", "bc"]));
        assert!(a.starts_with("entragate.x.v3."));
        assert_eq!(a.len(), "entragate.x.v3.".len() + 16);
    }

    #[test]
    fn decode_checks_the_version_before_the_shape() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct R {
            v: u32,
            n: u8,
        }
        let bytes = encode_record(&R { v: 2, n: 1 }).unwrap();
        assert_eq!(decode_record::<R>(&bytes, 2), Ok(R { v: 2, n: 1 }));
        assert_eq!(
            decode_record::<R>(br#"{"v":5}"#, 2),
            Err(RecordError::VersionUnsupported(5))
        );
        assert_eq!(
            decode_record::<R>(br#"{"v":2}"#, 2),
            Err(RecordError::Malformed)
        );
        assert_eq!(decode_record::<R>(b"{", 2), Err(RecordError::Malformed));
    }
}
