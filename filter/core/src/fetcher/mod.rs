//! What both roles' fetches share: one fetch per Envoy for any document (the
//! callee's JWKS, the caller's agent token), by a CAS lease in a shared-data
//! state record. The protocol is written once here; each document type only
//! adds its hooks ([`single_flight::Document`]) and its own records.
//!
//! - [`single_flight`]: the generic per-worker fetcher (tick, callout answers,
//!   lease, settling, backoff) and the hooks a document implements.
//! - [`waiters`]: requests paused until a fetch settles, and their deadlines.
//! - [`record`]: versioned JSON encoding and the hashed record-name prefix.
//! - [`state_record`]: the lease/backoff state record, generic over a document's extra fields.
//! - [`leased_state`]: reading and writing that record by CAS (lease, settle, backoff).
//! - [`memory_store`]: Envoy's shared-data CAS rules in process memory (native host, tests).
//! - `fake_host` (tests): an in-memory [`crate::host::Host`] (one Envoy, many workers).
//! - `test_support` (tests): helpers the fetcher's and the documents' tests drive the fake host with.

#[cfg(test)]
pub mod fake_host;
pub mod leased_state;
pub mod memory_store;
pub mod record;
pub mod single_flight;
pub mod state_record;
#[cfg(test)]
pub mod test_support;
pub mod waiters;
