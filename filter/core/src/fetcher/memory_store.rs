//! Envoy's shared-data semantics in process memory: the store a host without
//! proxy-wasm shared data (the native module) runs the fetcher on, and the one
//! the tests' fake Envoy uses, so both follow the same rules.
//!
//! The rules are Envoy's `SharedData::set`, including its sharp edge: a write
//! to a key that does not exist yet always succeeds, whatever CAS is passed
//! (CAS only protects existing keys). A CAS of `None` or `Some(0)` means "no
//! check". Every successful write gets a new, store-wide CAS value (never 0).
//!
//! Not synchronised: the owner wraps it in whatever its threading needs (a
//! `RefCell` in tests, a mutex in the native module).

use std::collections::BTreeMap;

use crate::host::{SharedValue, SharedWriteError};

#[derive(Debug, Default)]
pub struct MemoryStore {
    /// key -> (value, cas)
    entries: BTreeMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl MemoryStore {
    pub fn get(&self, key: &str) -> SharedValue {
        match self.entries.get(key) {
            Some((value, cas)) => SharedValue {
                data: Some(value.clone()),
                cas: Some(*cas),
            },
            None => SharedValue::default(),
        }
    }

    /// A write with Envoy's CAS rule (see the module documentation).
    pub fn set(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        if let (Some((_, current)), Some(expected)) = (self.entries.get(key), cas) {
            if expected != 0 && expected != *current {
                return Err(SharedWriteError::CasMismatch);
            }
        }
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.entries
            .insert(key.to_string(), (value.to_vec(), self.last_cas));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_protects_existing_keys_only() {
        let mut store = MemoryStore::default();
        assert_eq!(store.get("k"), SharedValue::default());
        // Absent key: any CAS succeeds (Envoy's rule).
        assert_eq!(store.set("k", b"a", Some(42)), Ok(()));
        let first = store.get("k");
        assert_eq!(first.data.as_deref(), Some(&b"a"[..]));
        let cas = first.cas.unwrap_or_default();
        assert_ne!(cas, 0);
        assert_eq!(store.set("k", b"b", Some(cas)), Ok(()));
        // The version read first is stale now.
        assert_eq!(
            store.set("k", b"c", Some(cas)),
            Err(SharedWriteError::CasMismatch)
        );
        // No check: None or Some(0).
        assert_eq!(store.set("k", b"d", None), Ok(()));
        assert_eq!(store.set("k", b"e", Some(0)), Ok(()));
        assert_eq!(store.get("k").data.as_deref(), Some(&b"e"[..]));
    }
}
