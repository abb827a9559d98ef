//! Choosing the signature verifier once per configuration (per worker VM).

use entragate_core::options::SignatureBackend;
use entragate_core::token::{HostVerifier, PureRustVerifier, SignatureVerifier};

use crate::inbound::foreign::HostForeignFunctions;

/// The verifier to use and a log line saying which one and why.
pub struct Selected {
    pub verifier: Box<dyn SignatureVerifier>,
    /// True when signatures are checked by the host (native code).
    pub native: bool,
    pub description: String,
}

/// `Err` only for `host` when the host's verifier is missing or fails its
/// self-test: the configuration is then refused.
pub fn select(backend: SignatureBackend) -> Result<Selected, String> {
    if backend == SignatureBackend::Pure {
        return Ok(pure("pure Rust (signature_verifier: pure)".to_string()));
    }
    let host = HostVerifier::new(HostForeignFunctions);
    match (host.self_test(), backend) {
        (Ok(()), _) => Ok(Selected {
            verifier: Box::new(host),
            native: true,
            description: "host verify_signature (native, self-test passed)".to_string(),
        }),
        (Err(reason), SignatureBackend::Host) => Err(format!(
            "signature_verifier is \"host\" but the host's verify_signature is unusable: {reason}"
        )),
        (Err(reason), _) => Ok(pure(format!(
            "pure Rust (host verify_signature unusable: {reason})"
        ))),
    }
}

fn pure(description: String) -> Selected {
    Selected {
        verifier: Box::new(PureRustVerifier),
        native: false,
        description,
    }
}
