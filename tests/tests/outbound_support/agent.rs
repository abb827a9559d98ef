//! The real `bootstrap agent`, as a child process.
//!
//! The binary is `bootstrap_for_tests` from this package (the same CLI as
//! `bootstrap`, built fresh by cargo for these tests), or `ENTRAGATE_BOOTSTRAP`.
//! Its environment is hermetic: fixed AWS test credentials, no profile files,
//! no instance metadata, nothing inherited that could point it elsewhere.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use entragate_tests::process::{hermetic_aws_env, kill_with_parent};
use entragate_tests::wait_for;

/// Env var naming another `bootstrap` binary to test.
pub const BOOTSTRAP_ENV: &str = "ENTRAGATE_BOOTSTRAP";

pub fn binary() -> PathBuf {
    std::env::var_os(BOOTSTRAP_ENV).map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_bootstrap_for_tests")),
        PathBuf::from,
    )
}

/// How to start an agent.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    pub secret_id: String,
    pub region: String,
    pub moto_endpoint: String,
    /// `http://127.0.0.1:<idp port>`.
    pub authority: String,
    /// `[NAME=]SCOPE`.
    pub scope: String,
    /// Holds the agent key (reused across restarts), address file and logs.
    pub dir: PathBuf,
    /// More `agent` arguments (e.g. `--idp-timeout 1s`).
    pub extra_args: Vec<String>,
}

/// A running agent; killed when dropped.
pub struct Agent {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Agent {
    /// Starts an agent on `listen` (`127.0.0.1:0` for any port) and waits until
    /// it listens. It serves tokens once it read the secret and got one.
    pub async fn start(spec: &AgentSpec, listen: &str) -> anyhow::Result<Agent> {
        let addr_file = spec.dir.join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = spec.dir.join(format!(
            "agent-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let mut command = Command::new(binary());
        command
            .args([
                "-v",
                "agent",
                "--secret-id",
                &spec.secret_id,
                "--region",
                &spec.region,
            ])
            .args(["--endpoint-url", &spec.moto_endpoint])
            .args(["--authority", &spec.authority, "--scope", &spec.scope])
            .args(["--listen", listen])
            .arg("--agent-key-file")
            .arg(spec.dir.join("agent-key"))
            .arg("--listen-addr-file")
            .arg(&addr_file)
            .args(["--retry-initial", "100ms", "--retry-max", "1s"])
            .args(&spec.extra_args)
            .stdin(Stdio::null());
        // stdout and stderr share one file (and its offset): both are the agent's output.
        let output = File::create(&log)?;
        command.stdout(output.try_clone()?).stderr(output);
        hermetic_aws_env(&mut command);
        kill_with_parent(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary().display()))?;
        let addr = wait_for(Duration::from_secs(30), "agent listen address", || {
            let exited = child.try_wait().ok().flatten();
            let text = std::fs::read_to_string(&addr_file).ok();
            async move {
                if let Some(status) = exited {
                    return Some(Err(anyhow!("agent exited during start-up ({status})")));
                }
                let text = text.filter(|t| t.ends_with('\n'))?;
                Some(
                    text.trim()
                        .parse::<SocketAddr>()
                        .map_err(anyhow::Error::from),
                )
            }
        })
        .await
        .and_then(|r| r)
        .map_err(|e| anyhow!("{e:#}\n--- agent log ---\n{}", read(&log)))?;
        Ok(Agent { child, addr, log })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// Waits until `/healthz` says every scope has a token.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = format!("http://{}/healthz", self.addr);
        let client = entragate_tests::http_client();
        wait_for(Duration::from_secs(30), "agent /healthz ready", || {
            let request = client.get(&url).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("{e:#}\n--- agent log ---\n{}", self.log()))
    }

    /// SIGTERM, then waits for the exit (the agent shuts down gracefully).
    pub fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("agent ignored SIGTERM\n--- agent log ---\n{}", self.log())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- agent log ({}) ---\n{}", self.log.display(), self.log());
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
