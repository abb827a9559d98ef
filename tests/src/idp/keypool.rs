//! Where the IdP's 2048-bit keys come from.
//!
//! Generating a 2048-bit RSA key takes about a second of CPU here, and every
//! IdP needs at least two; with each test in its own process (nextest) that
//! would dominate the suite. Keys are therefore generated at runtime once and
//! kept in the git-ignored `.cache/test-keys/` for later test processes.
//!
//! Within one process every key handed out is distinct (a process-wide
//! cursor), so two IdPs in the same test never share a key and a token from
//! one never verifies against the other. Across processes keys are shared,
//! which is harmless: processes do not talk to each other's servers.
//!
//! Set `ENTRAGATE_FRESH_KEYS=1` to bypass the cache. Writes are atomic
//! (temp file + rename), so concurrent test processes need no locking: if two
//! generate the same slot at once, each simply uses its own.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;

use super::keys::SigningKey;
use super::KEY_BITS;
use crate::util::repo_root;

/// Slots beyond this are generated fresh and not cached.
const POOL_SIZE: usize = 64;
const FRESH_ENV: &str = "ENTRAGATE_FRESH_KEYS";

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// A 2048-bit key no other caller in this process has received.
pub fn next_key() -> anyhow::Result<SigningKey> {
    let slot = NEXT_SLOT.fetch_add(1, Ordering::SeqCst);
    if slot >= POOL_SIZE || std::env::var_os(FRESH_ENV).is_some() {
        return SigningKey::generate(KEY_BITS);
    }
    let path = pool_dir().join(format!("rsa{KEY_BITS}-{slot:02}.pem"));
    if let Some(private) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|pem| RsaPrivateKey::from_pkcs8_pem(&pem).ok())
        .filter(|key| key.size() * 8 == KEY_BITS)
    {
        return SigningKey::from_private(private);
    }
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), KEY_BITS)?;
    // Caching is an optimisation: failing to write is not an error.
    let _ = store(&path, &private);
    SigningKey::from_private(private)
}

fn pool_dir() -> PathBuf {
    repo_root().join(".cache").join("test-keys")
}

fn store(path: &std::path::Path, private: &RsaPrivateKey) -> anyhow::Result<()> {
    let dir = pool_dir();
    std::fs::create_dir_all(&dir)?;
    let pem = private.to_pkcs8_pem(LineEnding::LF)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        super::random::uuid()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
