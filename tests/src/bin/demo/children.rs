//! The demo's own child processes: the `bootstrap` CLI (render, agent) and
//! the two FinTech applications. Each is killed when its handle drops and
//! when the demo dies (Ctrl-C included), so a second run finds no leftovers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use entragate_tests::process::{hermetic_aws_env, kill_with_parent};

/// Where the binaries built with the demo live: next to the demo itself
/// (`cargo xtask demo` builds them in one cargo invocation).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the demo binary")?;
    let path = exe
        .parent()
        .ok_or_else(|| anyhow!("the demo binary has no directory"))?
        .join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run the demo with `cargo xtask demo`, which builds it",
            path.display()
        );
    }
    Ok(path)
}

/// `bootstrap ARGS...` to completion; its output is returned, or the error with it.
pub fn bootstrap(args: &[String]) -> anyhow::Result<String> {
    let mut command = Command::new(sibling("bootstrap")?);
    command.args(args);
    hermetic_aws_env(&mut command);
    let output = command.output().context("running bootstrap")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!(
            "bootstrap {} failed ({}):\n{text}",
            args.join(" "),
            output.status
        );
    }
    Ok(text)
}

/// A long-running child, with its output in a log file.
pub struct Running {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a FinTech application (`fraud-detector`, `transaction-processor`)
/// and waits for its `listening on ADDR` line.
pub fn start_app(
    name: &'static str,
    args: &[String],
    dir: &Path,
) -> anyhow::Result<(Running, SocketAddr)> {
    let log = dir.join(format!("{name}.log"));
    let mut command = Command::new(sibling(name)?);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?);
    kill_with_parent(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("{name}: no stdout"))?;
    let mut line = String::new();
    // Blocks until the line arrives or the child exits (EOF): no guessing, no sleep.
    BufReader::new(stdout).read_line(&mut line)?;
    let running = Running { name, child, log };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow!("{name} did not start: {:?}\n{}", line.trim(), running.log()))?;
    Ok((running, addr))
}

/// Starts `bootstrap agent --config FILE` against the local Secrets Manager.
pub fn start_agent(config: &Path, moto_endpoint: &str, dir: &Path) -> anyhow::Result<Running> {
    let log = dir.join("agent.log");
    let mut command = Command::new(sibling("bootstrap")?);
    command
        .arg("agent")
        .arg("--config")
        .arg(config)
        .args(["--endpoint-url", moto_endpoint])
        .stdin(Stdio::null());
    let output = std::fs::File::create(&log)?;
    command.stdout(output.try_clone()?).stderr(output);
    hermetic_aws_env(&mut command);
    kill_with_parent(&mut command);
    let child = command.spawn().context("starting bootstrap agent")?;
    Ok(Running {
        name: "bootstrap agent",
        child,
        log,
    })
}

/// Polls `url` until it answers 2xx (the child's own readiness signal).
pub async fn wait_healthy(
    running: &mut Running,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = entragate_tests::http_client();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = running.exited() {
            bail!("{} exited ({status}):\n{}", running.name, running.log());
        }
        if let Ok(response) = client.get(url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{} not healthy after {timeout:?}:\n{}",
                running.name,
                running.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
