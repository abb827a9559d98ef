//! The agent key: 32 random bytes (64 hex characters) that the local Envoy presents in
//! `x-entragate-agent-key`. Only holders of the key file (0600) can read tokens from the agent; other
//! local processes on the loopback interface get 401.
//!
//! The key lives in the file given by `--agent-key-file`. If the file already holds a valid key with
//! private permissions, it is reused: an agent restarted while Envoy runs keeps serving the Envoy that was
//! configured with it. `--rotate-agent-key` forces a new one (then the Envoy config must be re-rendered).

use sha2::{Digest, Sha256};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Header carrying the key on every `/v1/token` request.
pub const AGENT_KEY_HEADER: &str = "x-entragate-agent-key";

const KEY_BYTES: usize = 32;

/// The shared secret between agent and local Envoy.
pub struct AgentKey {
    hex: Zeroizing<String>,
    digest: [u8; 32],
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentKey([redacted sha256:{}])", self.fingerprint())
    }
}

/// Whether the key was created now or taken over from an earlier run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Generated,
    Reused,
}

impl AgentKey {
    /// A fresh key from the OS random generator.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|e| format!("OS random generator failed: {e}"))?;
        Ok(Self::from_valid_hex(Zeroizing::new(crate::text::hex(
            bytes.as_ref(),
        ))))
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.len() != KEY_BYTES * 2 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("an agent key is {} hex characters", KEY_BYTES * 2));
        }
        Ok(Self::from_valid_hex(Zeroizing::new(t.to_ascii_lowercase())))
    }

    fn from_valid_hex(hex: Zeroizing<String>) -> Self {
        let digest = Sha256::digest(hex.as_bytes()).into();
        AgentKey { hex, digest }
    }

    /// The key text, as Envoy must send it.
    pub fn as_str(&self) -> &str {
        &self.hex
    }

    /// sha256 prefix for logs.
    pub fn fingerprint(&self) -> String {
        crate::text::fingerprint(&self.hex)
    }

    /// Constant-time check of a presented header value. Hashing first makes the comparison independent of
    /// the presented length as well as its content.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        presented.ct_eq(&self.digest).into()
    }
}

/// Reuses the key in `path` when it is valid and private, otherwise writes a new one there (mode 0600,
/// atomically: a reader never sees a half-written key).
pub fn load_or_create(path: &Path, rotate: bool) -> Result<(AgentKey, KeyOrigin), String> {
    if !rotate {
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                if !meta.file_type().is_file() {
                    return Err(format!(
                        "agent key file {} exists but is not a regular file",
                        path.display()
                    ));
                }
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "agent key file {} has permissions {mode:04o}; it must be private (0600). \
                         Remove it or pass --rotate-agent-key",
                        path.display()
                    ));
                }
                let text =
                    Zeroizing::new(fs::read_to_string(path).map_err(|e| {
                        format!("cannot read agent key file {}: {e}", path.display())
                    })?);
                if let Ok(key) = AgentKey::from_hex(&text) {
                    return Ok((key, KeyOrigin::Reused));
                }
                // Not a key (e.g. an empty placeholder): replace it below.
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot inspect agent key file {}: {e}",
                    path.display()
                ))
            }
        }
    }
    let key = AgentKey::generate()?;
    let mut contents = Zeroizing::new(key.as_str().to_string());
    contents.push('\n');
    write_private(path, contents.as_bytes())?;
    Ok((key, KeyOrigin::Generated))
}

/// Writes `contents` to `path` with mode 0600 via a temporary file in the same directory and a rename.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = dir.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("entragate-key-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("agent-key")
    }

    #[test]
    fn verify_is_exact() {
        let k = AgentKey::generate().unwrap();
        assert_eq!(k.as_str().len(), 64);
        assert!(k.verify(k.as_str().as_bytes()));
        assert!(!k.verify(b""));
        assert!(!k.verify(&k.as_str().as_bytes()[..63]));
        assert!(!k.verify(format!("{}0", k.as_str()).as_bytes()));
        assert_ne!(AgentKey::generate().unwrap().as_str(), k.as_str());
        assert!(!format!("{k:?}").contains(k.as_str()));
    }

    #[test]
    fn creates_private_file_then_reuses_it() {
        let path = temp_path("reuse");
        let (k1, o1) = load_or_create(&path, false).unwrap();
        assert_eq!(o1, KeyOrigin::Generated);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), k1.as_str());
        let (k2, o2) = load_or_create(&path, false).unwrap();
        assert_eq!((o2, k2.as_str()), (KeyOrigin::Reused, k1.as_str()));
        let (k3, o3) = load_or_create(&path, true).unwrap();
        assert_eq!(o3, KeyOrigin::Generated);
        assert_ne!(k3.as_str(), k1.as_str());
    }

    #[test]
    fn refuses_world_readable_key_and_replaces_garbage() {
        let path = temp_path("perms");
        fs::write(&path, "x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path, false).unwrap_err().contains("0644"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let (_, origin) = load_or_create(&path, false).unwrap();
        assert_eq!(origin, KeyOrigin::Generated);
    }
}
