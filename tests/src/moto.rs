//! A local `moto_server` (PyPI `moto[server]`) on 127.0.0.1 standing in for
//! AWS Secrets Manager: the agent's real AWS SDK talks to it.
//!
//! It lives in the same git-ignored venv bootstrap's own tests use,
//! `<repo>/.cache/moto-venv`, created on first use. The exact install command
//! (what `cargo xtask setup` should run) is:
//!
//! ```sh
//! python3 -m venv .cache/moto-venv
//! .cache/moto-venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
//! touch .cache/moto-venv/.installed-moto-5.2.5
//! ```
//!
//! `ENTRAGATE_MOTO_SERVER=/path/to/moto_server` uses another installation.
//! It runs under `sh`, which kills it when our end of its stdin closes, i.e.
//! when the owning process exits however it exits (a test, the demo).

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{free_port, repo_root};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// Pinned like bootstrap's tests (same venv, same marker file).
pub const MOTO_VERSION: &str = "5.2.5";

/// A running moto server.
pub struct Moto {
    pub endpoint: String,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

/// `moto_server`, installing the pinned version into the cache venv if needed.
pub fn ensure_moto_server() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ENTRAGATE_MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let cache = repo_root().join(".cache");
    let venv = cache.join("moto-venv");
    let bin = venv.join("bin/moto_server");
    let marker = venv.join(format!(".installed-moto-{MOTO_VERSION}"));
    if marker.exists() && bin.exists() {
        return Ok(bin);
    }
    fs::create_dir_all(&cache)?;
    // The same lock file as bootstrap's tests: one installer at a time.
    let lock = File::create(cache.join("moto-venv.lock"))?;
    lock_exclusive(&lock)?;
    if !(marker.exists() && bin.exists()) {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv))
            .context("creating .cache/moto-venv (needs python3 with venv)")?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("moto[server]=={MOTO_VERSION}")))
        .context("pip install moto[server]")?;
        fs::write(&marker, MOTO_VERSION)?;
    }
    drop(lock); // closing the file releases the lock
    Ok(bin)
}

/// `flock(LOCK_EX)`: the same kind of lock `File::lock` (newer than this
/// crate's rust-version) takes in bootstrap's tests.
fn lock_exclusive(file: &File) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock(2) on a file descriptor we own for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().into())
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

impl Moto {
    /// Starts a server on a free loopback port (3 tries).
    pub fn start() -> anyhow::Result<Moto> {
        let bin = ensure_moto_server()?;
        let mut last = None;
        for _ in 0..3 {
            match Moto::spawn(&bin, free_port()?) {
                Ok(moto) => return Ok(moto),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt")))
            .context("moto_server did not start (3 tries)")
    }

    /// A server of the test's own (not the shared one), e.g. to stop it.
    pub fn start_own() -> anyhow::Result<Moto> {
        Moto::start()
    }

    /// A server on `port` (e.g. the port of one that was stopped), empty.
    pub fn start_on(port: u16) -> anyhow::Result<Moto> {
        Moto::spawn(&ensure_moto_server()?, port)
    }

    fn spawn(bin: &std::path::Path, port: u16) -> anyhow::Result<Moto> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; echo started; cat >/dev/null; kill $pid; wait $pid"#)
            .arg(bin)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take().context("moto stdin")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("moto stdout")?).read_line(&mut line)?;
        // Python start-up on a loaded 2-core machine can take seconds.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Moto {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    _child: Mutex::new(child),
                    _stdin: Mutex::new(stdin),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stdin);
        let _ = child.wait();
        bail!("moto_server did not listen on port {port}")
    }

    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Stops the server (its secrets are gone) and waits until it exited:
    /// afterwards its port refuses connections.
    pub fn stop(self) -> anyhow::Result<()> {
        let Moto { _child, _stdin, .. } = self;
        drop(_stdin); // `sh` kills moto when its stdin closes
        let mut child = _child.into_inner().unwrap_or_else(|p| p.into_inner());
        child.wait()?;
        Ok(())
    }

    /// Creates an RSA-2048 SIGN_VERIFY key in moto's KMS; returns (key id, SubjectPublicKeyInfo DER).
    pub async fn create_signing_key(&self, region: &str) -> anyhow::Result<(String, Vec<u8>)> {
        use base64::Engine as _;
        let created = self
            .kms(
                region,
                "CreateKey",
                json!({ "KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY" }),
            )
            .await?;
        let key_id = created["KeyMetadata"]["KeyId"]
            .as_str()
            .context("CreateKey: no KeyId")?
            .to_string();
        let public = self
            .kms(region, "GetPublicKey", json!({ "KeyId": key_id }))
            .await?;
        let spki = base64::engine::general_purpose::STANDARD.decode(
            public["PublicKey"]
                .as_str()
                .context("GetPublicKey: no PublicKey")?,
        )?;
        Ok((key_id, spki))
    }

    /// `DisableKey` (`enabled = false`) or `EnableKey`: a KMS key an operator switched off.
    pub async fn set_key_enabled(
        &self,
        region: &str,
        key_id: &str,
        enabled: bool,
    ) -> anyhow::Result<()> {
        let action = if enabled { "EnableKey" } else { "DisableKey" };
        self.kms(region, action, json!({ "KeyId": key_id })).await?;
        Ok(())
    }

    async fn kms(&self, region: &str, action: &str, body: Value) -> anyhow::Result<Value> {
        json_call(
            &self.endpoint,
            region,
            ("TrentService", "kms"),
            action,
            body,
        )
        .await
    }

    /// Creates `name` with `value`, or stores `value` as its new current version.
    pub async fn put_secret(&self, region: &str, name: &str, value: &str) -> anyhow::Result<()> {
        put_secret_at(&self.endpoint, region, name, value).await
    }
}

/// One Secrets Manager JSON-protocol call to the moto at `endpoint`. moto
/// checks no signature; the credential scope only tells it the region.
async fn call_at(endpoint: &str, region: &str, action: &str, body: Value) -> anyhow::Result<Value> {
    json_call(
        endpoint,
        region,
        ("secretsmanager", "secretsmanager"),
        action,
        body,
    )
    .await
}

/// One AWS JSON-protocol call: `service` is (X-Amz-Target prefix, SigV4 service name).
async fn json_call(
    endpoint: &str,
    region: &str,
    service: (&str, &str),
    action: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let (target, signing_name) = service;
    let response = crate::http_client()
            .post(endpoint)
            .header("x-amz-target", format!("{target}.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{signing_name}/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{action}: HTTP {status}: {text}");
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text)?)
}

/// [`Moto::put_secret`] for the moto at `endpoint`.
pub async fn put_secret_at(
    endpoint: &str,
    region: &str,
    name: &str,
    value: &str,
) -> anyhow::Result<()> {
    let created = call_at(
        endpoint,
        region,
        "CreateSecret",
        json!({ "Name": name, "SecretString": value }),
    )
    .await;
    if created.is_err() {
        call_at(
            endpoint,
            region,
            "PutSecretValue",
            json!({ "SecretId": name, "SecretString": value }),
        )
        .await?;
    }
    Ok(())
}
