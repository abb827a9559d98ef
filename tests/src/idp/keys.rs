//! RSA signing keys published the way Entra publishes them.
//!
//! Entra's JWKS entries carry a self-signed certificate (`x5c`) and use the
//! certificate's SHA-1 thumbprint (base64url) both as `kid` and as `x5t`, with
//! no `alg` member. Keys here are generated at runtime (never checked in) and
//! wrapped in an rcgen self-signed certificate so all of that is genuine.

use std::fmt;

use anyhow::Context as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs1v15::SigningKey as Pkcs1v15SigningKey;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// One RSA key pair with its Entra-style certificate and identifiers.
///
/// `Debug` deliberately prints only the `kid` and size: private keys must
/// never end up in test output.
pub struct SigningKey {
    private: RsaPrivateKey,
    cert_der: Vec<u8>,
    kid: String,
}

impl SigningKey {
    /// Generates a fresh key of `bits` (2048 like Entra; 1024 for weak-key
    /// tests) with a self-signed certificate.
    pub fn generate(bits: usize) -> anyhow::Result<SigningKey> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), bits)
            .with_context(|| format!("generating a {bits}-bit RSA key"))?;
        SigningKey::from_private(private)
    }

    /// Wraps an existing key in a fresh self-signed certificate.
    pub(crate) fn from_private(private: RsaPrivateKey) -> anyhow::Result<SigningKey> {
        let cert_der = self_signed_cert(&private)?;
        let kid = URL_SAFE_NO_PAD.encode(Sha1::digest(&cert_der));
        Ok(SigningKey {
            private,
            cert_der,
            kid,
        })
    }

    /// `kid` and `x5t`: base64url SHA-1 thumbprint of the certificate.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn bits(&self) -> usize {
        self.private.size() * 8
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// The DER certificate published in `x5c`.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// SubjectPublicKeyInfo PEM of the public key: the classic "HS256 with the
    /// public key as secret" attack uses exactly these bytes.
    pub fn public_key_pem(&self) -> String {
        self.public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The private key as PKCS#8 DER. Only for tests that prove the key
    /// never appears anywhere it should not (log hygiene).
    pub fn private_key_pkcs8_der(&self) -> Vec<u8> {
        self.private
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature over `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Vec<u8> {
        Pkcs1v15SigningKey::<Sha256>::new(self.private.clone())
            .sign(message)
            .to_vec()
    }

    /// A certificate for another party's RSA public key (SubjectPublicKeyInfo DER, e.g. from KMS
    /// `GetPublicKey`), issued by this key acting as a CA: what a caller registers in Entra when its private
    /// key lives in KMS.
    pub fn issue_certificate(
        &self,
        subject_cn: &str,
        subject_spki_der: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        use rsa::pkcs8::DecodePublicKey as _;
        let public = RsaPublicKey::from_public_key_der(subject_spki_der)
            .context("the subject key is not an RSA SubjectPublicKeyInfo")?;
        let subject = SubjectKey {
            pkcs1: public
                .to_pkcs1_der()
                .context("encoding subject key")?
                .into_vec(),
        };
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "entragate test CA");
        let issuer = rcgen::Issuer::new(ca, CertSigner::new(&self.private)?);
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, subject_cn);
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&subject, &issuer)
            .context("issuing certificate")?;
        Ok(cert.der().to_vec())
    }

    /// PS256 (RSASSA-PSS, SHA-256, salt = hash length) signature over `message`: what a caller's
    /// certificate assertion carries.
    pub fn sign_ps256(&self, message: &[u8]) -> Vec<u8> {
        use rsa::signature::RandomizedSigner as _;
        rsa::pss::SigningKey::<Sha256>::new(self.private.clone())
            .sign_with_rng(&mut rand::thread_rng(), message)
            .to_vec()
    }

    /// SubjectPublicKeyInfo DER of the public key.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The JWKS entry, shaped like Entra's (`issuer` is the per-key issuer
    /// Entra adds; there is no `alg`).
    pub fn jwk(&self, issuer: &str) -> Value {
        let public = self.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            "x5c": [STANDARD.encode(&self.cert_der)],
            "issuer": issuer,
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

fn self_signed_cert(private: &RsaPrivateKey) -> anyhow::Result<Vec<u8>> {
    let signer = CertSigner::new(private)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "accounts.entragate.test");
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(&signer)
        .context("self-signing certificate")?;
    Ok(cert.der().to_vec())
}

/// Lets rcgen sign with the `rsa` crate. rcgen's own backends (ring,
/// aws-lc-rs) refuse RSA keys under 2048 bits, and the weak-key tests need a
/// genuine certificate for a 1024-bit key too.
struct CertSigner {
    key: Pkcs1v15SigningKey<Sha256>,
    /// PKCS#1 `RSAPublicKey`: the SubjectPublicKeyInfo bit string for RSA.
    public_der: Vec<u8>,
}

impl CertSigner {
    fn new(private: &RsaPrivateKey) -> anyhow::Result<CertSigner> {
        Ok(CertSigner {
            key: Pkcs1v15SigningKey::<Sha256>::new(private.clone()),
            public_der: private
                .to_public_key()
                .to_pkcs1_der()
                .context("encoding public key")?
                .into_vec(),
        })
    }
}

impl rcgen::PublicKeyData for CertSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public_der
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for CertSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_vec())
    }
}

/// A positive random serial (rcgen only invents one with a crypto backend).
fn random_serial() -> rcgen::SerialNumber {
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut serial);
    serial[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&serial)
}

/// The public half of a key held elsewhere (KMS): rcgen needs only its PKCS#1 bytes.
struct SubjectKey {
    pkcs1: Vec<u8>,
}

impl rcgen::PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.pkcs1
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}
