//! The local Secrets Manager (moto) for the caller-side tests: the harness's
//! [`entragate_tests::moto`] plus one server shared by all tests of a test
//! binary (tests use distinct secret names).

use std::sync::OnceLock;

pub use entragate_tests::moto::*;

static SHARED: OnceLock<Moto> = OnceLock::new();

/// The server shared by this test binary's tests.
pub fn shared() -> &'static Moto {
    SHARED.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("moto_server: {e:#}")))
}
