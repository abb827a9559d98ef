//! What the JWKS and outbound coordinators share: both keep one fetch per Envoy
//! by a CAS lease in a shared-data state record, so the record, its encoding
//! and the lease steps are written once here and each role only adds its own
//! fields and its own fetch.
//!
//! - [`record`]: versioned JSON encoding and the hashed record-name prefix.
//! - [`state_record`]: the lease/backoff state record, generic over a role's extra fields.
//! - [`leased_state`]: reading and writing that record by CAS (lease, settle, backoff).
//! - `test_support` (tests): helpers both coordinators' tests drive the fake host with.

pub mod leased_state;
pub mod record;
pub mod state_record;
#[cfg(test)]
pub mod test_support;
