//! Small helpers shared by tests: polling, ports, paths, an HTTP client.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often the polling helpers re-check their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `check` until it yields `Some`, or fails after `timeout` naming
/// `what` was awaited. This is how tests synchronise with asynchronous effects
/// (a background JWKS refresh, a stat being bumped) instead of sleeping.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_for`] for a plain condition.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// A port that was free a moment ago on 127.0.0.1. Prefer letting the server
/// bind port 0 itself (all harness servers and the Envoy configs do); this is
/// for the rare case where a port must be known before anything binds it.
pub fn free_port() -> anyhow::Result<u16> {
    let [port] = free_ports()?;
    Ok(port)
}

/// `N` distinct ports that were free a moment ago on 127.0.0.1. Each is held
/// until all are picked: calling [`free_port`] `N` times can get the same port
/// twice (the kernel reuses a port as soon as it is released), which once made
/// the demo's policy refuse two services on one port.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let held = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let ports = held
        .iter()
        .map(|listener| listener.local_addr().map(|addr| addr.port()))
        .collect::<Result<Vec<_>, _>>()?;
    ports
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected {N} ports"))
}

/// An address where nothing listens (a freshly released port), for
/// "upstream is down" scenarios.
pub fn unused_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The workspace root (the harness crate lives one level below it).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// A client for talking to the harness servers and Envoy: never goes through
/// a proxy from the environment (all targets are loopback), bounded timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}
