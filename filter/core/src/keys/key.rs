//! A verified-shape RSA public key taken from a JWKS.

/// An RSA signing key as published in the tenant's JWKS.
///
/// Only keys that passed the JWKS filter exist as this type: `kty=RSA`,
/// `use=sig` when `use` is present, modulus of at least 2048 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// `kid` of the JWK (Entra: equal to `x5t`).
    pub kid: String,
    /// `x5t` of the JWK, if present (used when a token header carries only `x5t`).
    pub x5t: Option<String>,
    /// Modulus, big-endian, without leading zero bytes.
    pub n: Vec<u8>,
    /// Public exponent, big-endian, without leading zero bytes.
    pub e: Vec<u8>,
}

impl RsaPublicKey {
    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        match self.n.first() {
            None => 0,
            Some(first) => self.n.len() * 8 - first.leading_zeros() as usize,
        }
    }
}
