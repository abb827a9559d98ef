//! `bootstrap certs`: a local mesh CA and one workload certificate per service, for demos and tests (in
//! production the same files come from ACM Private CA, cert-manager, Vault ...).
//!
//! - The CA (`ca.crt`, `ca.key`, ECDSA P-256) lives in its own directory, created once and reused, so
//!   re-issuing a service's certificate keeps it trusted by every other sidecar.
//! - A service's certificate carries exactly its workload identity from mesh.yaml as a SAN, is usable for
//!   both TLS server and client authentication, and expires (`--valid-for`).
//! - It is written into the service's certificate directory (`sidecar.certificates`) in the Kubernetes
//!   atomic-writer layout: a fresh `..<generation>` directory holds `tls.crt`, `tls.key` and `ca.crt`; the
//!   `..data` symlink is swapped to it with one rename; `tls.crt` etc. are symlinks through `..data`. Envoy
//!   watches the directory (file-based SDS, [`entragate_mesh::render::transport`]) and loads the new pair on that
//!   rename, with no restart and no half-written pair ever visible.
//! - Without `--rotate`, a certificate with more than a third of its lifetime left is kept.

use base64::Engine as _;
use entragate_mesh::policy::{Service, WorkloadIdentity};
use entragate_mesh::render::transport::{self, CA_FILE, CERT_FILE, KEY_FILE};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CA_KEY: &str = "ca.key";
/// When the certificate of the current generation expires (seconds since the epoch), and when it was issued.
const VALIDITY_FILE: &str = "validity";
const DATA_LINK: &str = "..data";
/// Clock skew between hosts: a certificate is valid from a little before it was issued.
const BACKDATE: Duration = Duration::from_secs(300);

/// The mesh CA: its certificate (PEM) and what signs with it.
pub struct MeshCa {
    pub certificate_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What happened to one service's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Issued { not_after: u64 },
    Kept { not_after: u64 },
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(text: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| format!("no {label} PEM block"))?;
    let rest = &text[start + begin.len()..];
    let stop = rest
        .find(&end)
        .ok_or_else(|| format!("unterminated {label} PEM block"))?;
    let b64: String = rest[..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad {label} PEM: {e}"))
}

/// The CA's parameters: the same subject and key always describe the same CA, so a reloaded key signs
/// certificates that chain to the `ca.crt` written the first time.
fn ca_params(trust_domain: &str) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "entragate");
    dn.push(
        DnType::CommonName,
        format!("entragate mesh CA {trust_domain}"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn at(seconds: u64) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())
}

fn serial() -> Result<rcgen::SerialNumber, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    bytes[0] &= 0x7f; // positive
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    fs::write(path, contents)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn create_dir(path: &Path, mode: u32) -> Result<(), String> {
    fs::create_dir_all(path)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

impl MeshCa {
    /// Loads the CA from `dir`, or creates it there (valid for `lifetime`) when `dir` holds none.
    pub fn load_or_create(
        dir: &Path,
        trust_domain: &str,
        lifetime: Duration,
    ) -> Result<(MeshCa, bool), String> {
        let params = ca_params(trust_domain)?;
        let cert_path = dir.join(CA_FILE);
        let key_path = dir.join(CA_KEY);
        if key_path.exists() {
            let key_pem = fs::read_to_string(&key_path)
                .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
            let key = KeyPair::try_from(pem_body(&key_pem, "PRIVATE KEY")?.as_slice())
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            let certificate_pem = fs::read_to_string(&cert_path)
                .map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
            return Ok((
                MeshCa {
                    certificate_pem,
                    issuer: Issuer::new(params, key),
                },
                false,
            ));
        }
        create_dir(dir, 0o700)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let mut params = params;
        params.not_before = at(now().saturating_sub(BACKDATE.as_secs()))?;
        params.not_after = at(now().saturating_add(lifetime.as_secs()))?;
        params.serial_number = Some(serial()?);
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let certificate_pem = pem("CERTIFICATE", cert.der());
        write_file(
            &key_path,
            pem("PRIVATE KEY", &key.serialize_der()).as_bytes(),
            0o600,
        )?;
        write_file(&cert_path, certificate_pem.as_bytes(), 0o644)?;
        Ok((
            MeshCa {
                certificate_pem,
                issuer: Issuer::new(params, key),
            },
            true,
        ))
    }

    /// A certificate for `workload`, `(chain PEM, key PEM)`.
    pub fn issue(
        &self,
        workload: &WorkloadIdentity,
        not_before: u64,
        not_after: u64,
    ) -> Result<(String, String), String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        let san = match workload {
            WorkloadIdentity::Uri(uri) => SanType::URI(
                uri.as_str()
                    .try_into()
                    .map_err(|e: rcgen::Error| format!("`{uri}` cannot be a URI SAN: {e}"))?,
            ),
            WorkloadIdentity::Dns(name) => SanType::DnsName(
                name.as_str()
                    .try_into()
                    .map_err(|e: rcgen::Error| format!("`{name}` cannot be a DNS SAN: {e}"))?,
            ),
        };
        params.subject_alt_names = vec![san];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "entragate");
        dn.push(DnType::CommonName, workload.value());
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = at(not_before)?;
        params.not_after = at(not_after)?;
        params.serial_number = Some(serial()?);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        Ok((
            pem("CERTIFICATE", cert.der()),
            pem("PRIVATE KEY", &key.serialize_der()),
        ))
    }
}

/// `(issued, expires)` of the directory's current generation, if any.
fn current_validity(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join(DATA_LINK).join(VALIDITY_FILE)).ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??))
}

/// Issues (or keeps) `service`'s certificate in its `sidecar.certificates` directory.
pub fn provision(
    ca: &MeshCa,
    service: &Service,
    lifetime: Duration,
    rotate: bool,
) -> Result<Outcome, String> {
    let dir = PathBuf::from(&service.sidecar.certificates);
    let now = now();
    if let (false, Some((issued, expires))) = (rotate, current_validity(&dir)) {
        // Renew once two thirds of the lifetime have passed, as cert-manager does by default.
        if expires > now && (expires - now) * 3 > expires.saturating_sub(issued) {
            return Ok(Outcome::Kept { not_after: expires });
        }
    }
    create_dir(&dir, 0o755)?;
    let not_after = now.saturating_add(lifetime.as_secs());
    let (chain, key) = ca.issue(
        &service.workload,
        now.saturating_sub(BACKDATE.as_secs()),
        not_after,
    )?;
    // A generation name no earlier run used: the nanosecond clock.
    let generation = format!(
        "..{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let staged = dir.join(&generation);
    create_dir(&staged, 0o755)?;
    write_file(&staged.join(CERT_FILE), chain.as_bytes(), 0o644)?;
    write_file(&staged.join(KEY_FILE), key.as_bytes(), 0o600)?;
    write_file(&staged.join(CA_FILE), ca.certificate_pem.as_bytes(), 0o644)?;
    write_file(
        &staged.join(VALIDITY_FILE),
        format!("{now} {not_after}\n").as_bytes(),
        0o644,
    )?;
    let previous = fs::read_link(dir.join(DATA_LINK)).ok();
    // The one atomic step: `..data` now names the new generation.
    let tmp_link = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp_link);
    symlink(&generation, &tmp_link)
        .and_then(|()| fs::rename(&tmp_link, dir.join(DATA_LINK)))
        .map_err(|e| format!("cannot switch {}: {e}", dir.display()))?;
    for file in [CERT_FILE, KEY_FILE, CA_FILE] {
        let link = dir.join(file);
        if fs::read_link(&link).is_err() {
            let _ = fs::remove_file(&link);
            symlink(Path::new(DATA_LINK).join(file), &link)
                .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
        }
    }
    for (name, contents) in transport::sds_files(&service.sidecar.certificates)? {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            write_file(&path, contents.as_bytes(), 0o644)?;
        }
    }
    if let Some(old) = previous.filter(|old| old.as_os_str() != generation.as_str()) {
        let _ = fs::remove_dir_all(dir.join(old));
    }
    Ok(Outcome::Issued { not_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() {
        let der = (0u8..200).collect::<Vec<_>>();
        let text = pem("PRIVATE KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(pem_body(&text, "PRIVATE KEY").unwrap(), der);
        assert!(pem_body(&text, "CERTIFICATE").is_err());
    }

    #[test]
    fn a_reloaded_ca_keeps_its_certificate_and_key() {
        let dir = std::env::temp_dir().join(format!("entragate-ca-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let year = Duration::from_secs(365 * 86400);
        let (first, created) = MeshCa::load_or_create(&dir, "t.local", year).unwrap();
        assert!(created);
        let (second, created) = MeshCa::load_or_create(&dir, "t.local", year).unwrap();
        assert!(!created);
        assert_eq!(first.certificate_pem, second.certificate_pem);
        assert_eq!(
            fs::metadata(dir.join(CA_KEY)).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
