//! A local `moto_server` (PyPI `moto[server]`, pinned) on 127.0.0.1 for the real AWS SDK to talk to.
//!
//! The server runs in a git-ignored venv at `<workspace>/.cache/moto-venv`, created on first use
//! ([`ensure_moto_server`], idempotent and safe across concurrent test binaries thanks to a file lock). Set
//! `ENTRAGATE_MOTO_SERVER=/path/to/moto_server` to use another installation.
//!
//! One server per test binary, started lazily. It is wrapped in `sh` so it dies with the test process: the
//! wrapper waits for EOF on its stdin (held open by the test process) and then kills the server.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

/// Pinned so CI and developers run the same emulator.
pub const MOTO_VERSION: &str = "5.2.5";

/// Path of a `moto_server` executable, installing the pinned version into the cache venv if needed.
pub fn ensure_moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("ENTRAGATE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let cache = super::workspace_root().join(".cache");
    let venv = cache.join("moto-venv");
    let bin = venv.join("bin").join("moto_server");
    let marker = venv.join(format!(".installed-moto-{MOTO_VERSION}"));
    if marker.exists() && bin.exists() {
        return bin;
    }
    fs::create_dir_all(&cache).unwrap();
    // Serialise installers across test binaries running in parallel.
    let lock = File::create(cache.join("moto-venv.lock")).unwrap();
    lock.lock().unwrap();
    if !(marker.exists() && bin.exists()) {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            "create the moto venv (needs python3 with venv)",
        );
        run(
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("moto[server]=={MOTO_VERSION}")),
            "pip install moto[server]",
        );
        fs::write(&marker, MOTO_VERSION).unwrap();
    }
    lock.unlock().unwrap();
    bin
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot {what}: {e}"));
    assert!(status.success(), "failed to {what}: {status}");
}

/// A running moto server.
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

static SHARED: OnceLock<Moto> = OnceLock::new();
static ENFORCING: OnceLock<Moto> = OnceLock::new();

/// The moto server shared by the tests of this binary (tests use distinct secret names).
pub fn shared() -> &'static Moto {
    SHARED.get_or_init(|| Moto::start(&[]))
}

/// A second server that enforces IAM authentication after its first request (moto's
/// `INITIAL_NO_AUTH_ACTION_COUNT`): the first request may seed a secret, later ones with the made-up test
/// credentials are refused — the "access denied / credentials rejected" case.
pub fn enforcing() -> &'static Moto {
    ENFORCING.get_or_init(|| Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "1")]))
}

impl Moto {
    fn start(env: &[(&str, &str)]) -> Moto {
        let bin = ensure_moto_server();
        for _ in 0..3 {
            let port = super::free_port();
            let mut child = Command::new("sh")
                .arg("-c")
                // Server in the background; the wrapper blocks on stdin and kills it at EOF (test exit).
                .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; echo started; cat >/dev/null; kill $pid; wait $pid"#)
                .arg(&bin)
                .arg(port.to_string())
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let stdin = child.stdin.take().unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let ready = (0..500).any(|_| {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
                false
            });
            if ready {
                return Moto {
                    port,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    _child: Mutex::new(child),
                    _stdin: Mutex::new(stdin),
                };
            }
            drop(stdin);
            let _ = child.wait();
        }
        panic!("moto_server did not start (3 tries)");
    }

    /// An SDK client for this server with fixed test credentials (moto accepts any).
    pub fn client(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "entragate-tests",
            ))
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// Creates (or overwrites) `name` with `value` in `region`.
    pub async fn put_secret(&self, region: &str, name: &str, value: &str) {
        let client = self.client(region);
        let created = client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await;
        if created.is_err() {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    }
}
