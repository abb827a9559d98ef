//! `bootstrap agent` end to end, as a child process: moto for Secrets Manager, the stub token endpoint, and
//! an HTTP client standing in for the local Envoy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::idp::{StubIdp, CORRELATION_ID};
use support::moto;

const REGION: &str = "us-east-1";
const CLIENT: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const HEADER: &str = "x-entragate-agent-key";

fn secret_json(secret: &str) -> String {
    format!(r#"{{"ClientId":"{CLIENT}","ClientSecret":"{secret}","TenantId":"{TENANT}"}}"#)
}

/// A running agent; killed on drop. Its stderr goes to `log`.
struct Agent {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Agent {
    fn start(
        dir: &Path,
        secret_id: &str,
        endpoint: &str,
        authority: &str,
        listen: &str,
        extra: &[&str],
    ) -> Agent {
        let log = dir.join(format!("agent-{}.log", support::free_port()));
        let _ = std::fs::remove_file(dir.join("addr"));
        let child = support::bootstrap_cmd()
            .args([
                "agent",
                "--secret-id",
                secret_id,
                "--region",
                REGION,
                "--endpoint-url",
                endpoint,
            ])
            .args(["--authority", authority, "--listen", listen])
            .args([
                "--scope",
                "fraud=api://fintech-fraud-detector",
                "--scope",
                "api://fintech-ledger/.default",
            ])
            .arg("--agent-key-file")
            .arg(dir.join("agent-key"))
            .arg("--listen-addr-file")
            .arg(dir.join("addr"))
            .args(["--retry-initial", "50ms", "--retry-max", "500ms"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent {
            child,
            dir: dir.to_path_buf(),
            log,
        }
    }

    fn addr(&self) -> String {
        let path = self.dir.join("addr");
        support::wait_for("listen address file", Duration::from_secs(20), || {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|s| s.ends_with('\n'))
                .map(|s| s.trim().to_string())
        })
    }

    fn key(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent-key"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "agent ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get(addr: &str, path: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = http().get(format!("http://{addr}{path}"));
    if let Some(k) = key {
        req = req.header(HEADER, k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

async fn wait_ready(agent: &Agent, addr: &str) {
    let start = Instant::now();
    loop {
        if let Ok(r) = http().get(format!("http://{addr}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "agent not ready; log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn serves_tokens_to_the_key_holder_only() {
    let m = moto::shared();
    m.put_secret(REGION, "t/agent-serve/identity", &secret_json("s1"))
        .await;
    let idp = StubIdp::start(CLIENT, TENANT, "s1", 3599);
    let dir = support::temp_dir("serve");
    let agent = Agent::start(
        &dir,
        "t/agent-serve/identity",
        &m.endpoint,
        &idp.authority,
        "127.0.0.1:0",
        &[],
    );
    let addr = agent.addr();
    wait_ready(&agent, &addr).await;
    let key = agent.key();
    assert_eq!(key.len(), 64);
    assert_eq!(
        std::fs::metadata(dir.join("agent-key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Without or with a wrong key: 401, and nothing about scopes leaks.
    for k in [None, Some("nope"), Some(&key[..63])] {
        let (status, body) = get(&addr, "/v1/token/fraud", k).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.get("access_token").is_none());
    }
    let (status, body) = get(&addr, "/v1/token/fraud", Some(&key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api://fintech-fraud-detector/.default");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = body["expires_at"].as_u64().unwrap();
    assert!(
        expires_at > now + 3500 && expires_at <= now + 3600,
        "{expires_at} vs {now}"
    );
    let token = body["access_token"].as_str().unwrap().to_string();

    // Same token by scope, by resource, and under the derived name of the second scope.
    for path in [
        "/v1/token?scope=api://fintech-fraud-detector/.default",
        "/v1/token?scope=api%3A%2F%2Ffintech-fraud-detector",
    ] {
        let (status, body) = get(&addr, path, Some(&key)).await;
        assert_eq!(
            (status, body["access_token"].as_str()),
            (200, Some(token.as_str())),
            "{path}"
        );
    }
    let (status, body) = get(&addr, "/v1/token/fintech-ledger", Some(&key)).await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("api://fintech-ledger/.default"))
    );
    let (status, body) = get(&addr, "/v1/token/unknown", Some(&key)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_scope");

    // 200 calls: still one token request per scope.
    for _ in 0..200 {
        let (status, _) = get(&addr, "/v1/token/fraud", Some(&key)).await;
        assert_eq!(status, 200);
    }
    assert_eq!(idp.issued(), 2, "one token per scope");
    let (status, health) = get(&addr, "/healthz", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ready");
    assert_eq!(health["scopes"]["fraud"]["token_requests"], 1);

    let log = agent.log();
    assert!(log.contains("token for api://fintech-fraud-detector/.default acquired, expires in 59m, next refresh in 54m"), "{log}");
    assert!(
        log.contains(&format!("ready: serving tokens on {addr}")),
        "{log}"
    );
    assert!(
        !log.contains(&token) && !log.contains(&key) && !log.contains("s1\""),
        "secret material in log:\n{log}"
    );
    assert_eq!(agent.terminate(), Some(0));
}

#[tokio::test]
async fn rotation_while_running_and_restart_with_the_same_key() {
    let m = moto::shared();
    m.put_secret(REGION, "t/agent-rotate/identity", &secret_json("old"))
        .await;
    let idp = StubIdp::start(CLIENT, TENANT, "old", 4);
    let dir = support::temp_dir("rotate");
    let agent = Agent::start(
        &dir,
        "t/agent-rotate/identity",
        &m.endpoint,
        &idp.authority,
        "127.0.0.1:0",
        &[],
    );
    let addr = agent.addr();
    wait_ready(&agent, &addr).await;
    let key = agent.key();

    // Rotate: new secret in Secrets Manager, old one revoked at the IdP. Calls keep succeeding.
    m.put_secret(REGION, "t/agent-rotate/identity", &secret_json("new"))
        .await;
    idp.set_secrets(&["new"]);
    let start = Instant::now();
    let mut tokens = std::collections::BTreeSet::new();
    while start.elapsed() < Duration::from_millis(5500) {
        let (status, body) = get(&addr, "/v1/token/fraud", Some(&key)).await;
        assert_eq!(status, 200, "{body}\n{}", agent.log());
        tokens.insert(body["access_token"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(tokens.len() >= 2, "refreshed across the rotation");
    let log = agent.log();
    assert!(
        log.contains("re-reading secret from Secrets Manager"),
        "{log}"
    );
    assert!(log.contains("secret re-read: new credentials"), "{log}");
    assert_eq!(agent.terminate(), Some(0));

    // Restart on the same port with the same key file: the running Envoy's key still works.
    let agent = Agent::start(
        &dir,
        "t/agent-rotate/identity",
        &m.endpoint,
        &idp.authority,
        &addr,
        &[],
    );
    assert_eq!(agent.addr(), addr);
    wait_ready(&agent, &addr).await;
    assert_eq!(agent.key(), key);
    let (status, _) = get(&addr, "/v1/token/fraud", Some(&key)).await;
    assert_eq!(status, 200);
    assert!(
        agent.log().contains("agent key reused from"),
        "{}",
        agent.log()
    );
}

#[tokio::test]
async fn fails_closed_with_a_reason_when_the_idp_rejects_the_client() {
    let m = moto::shared();
    m.put_secret(REGION, "t/agent-reject/identity", &secret_json("stale"))
        .await;
    let idp = StubIdp::start(CLIENT, TENANT, "other", 3599);
    let dir = support::temp_dir("reject");
    let agent = Agent::start(
        &dir,
        "t/agent-reject/identity",
        &m.endpoint,
        &idp.authority,
        "127.0.0.1:0",
        &[],
    );
    let addr = agent.addr();
    let key = support::wait_for("key file", Duration::from_secs(10), || {
        std::fs::read_to_string(dir.join("agent-key"))
            .ok()
            .map(|s| s.trim().to_string())
    });
    let (status, body) =
        support::wait_for_async("a 503 with a reason", Duration::from_secs(20), || async {
            let (status, body) = get(&addr, "/v1/token/fraud", Some(&key)).await;
            body["reason"]
                .as_str()
                .is_some_and(|r| r.contains("AADSTS"))
                .then_some((status, body))
        })
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "token_unavailable");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("AADSTS7000215") && reason.contains(CORRELATION_ID),
        "{reason}"
    );
    let (status, health) = get(&addr, "/healthz", None).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (503, Some("not_ready"))
    );
    drop(agent);
}

#[tokio::test]
async fn secrets_manager_unreachable_at_start_is_retried_then_recovers() {
    let m = moto::shared();
    m.put_secret(REGION, "t/agent-late/identity", &secret_json("s"))
        .await;
    let idp = StubIdp::start(CLIENT, TENANT, "s", 3599);
    let dir = support::temp_dir("late");
    // Point at a closed port first: the agent keeps retrying and says why.
    let late_port = support::free_port();
    let late = format!("http://127.0.0.1:{late_port}");
    let agent = Agent::start(
        &dir,
        "t/agent-late/identity",
        &late,
        &idp.authority,
        "127.0.0.1:0",
        &[],
    );
    let addr = agent.addr();
    support::wait_for("retry message", Duration::from_secs(15), || {
        agent
            .log()
            .contains("cannot reach Secrets Manager")
            .then_some(())
    });
    let (status, health) = get(&addr, "/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (503, Some("starting")));
    let (status, body) = get(&addr, "/v1/token/fraud", Some(&agent.key())).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("starting"),
        "{body}"
    );
    assert!(agent.log().contains("retrying in"), "{}", agent.log());

    // Secrets Manager "comes up" on that port (a forwarder to moto): the agent recovers by itself.
    let forwarder = tokio::net::TcpListener::bind(("127.0.0.1", late_port))
        .await
        .unwrap();
    let moto_port = m.port;
    let fwd = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = forwarder.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", moto_port)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    wait_ready(&agent, &addr).await;
    let (status, _) = get(&addr, "/v1/token/fraud", Some(&agent.key())).await;
    assert_eq!(status, 200);
    assert_eq!(agent.terminate(), Some(0));
    fwd.abort();
}

#[tokio::test]
async fn permanent_start_errors_exit_with_their_codes() {
    let m = moto::shared();
    let idp = StubIdp::start(CLIENT, TENANT, "s", 3599);
    let dir = support::temp_dir("exit");
    let mut agent = Agent::start(
        &dir,
        "t/agent-missing-secret",
        &m.endpoint,
        &idp.authority,
        "127.0.0.1:0",
        &[],
    );
    let status = support::wait_for("exit", Duration::from_secs(20), || {
        agent.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(3), "{}", agent.log());
    assert!(
        agent.log().contains("was not found in region us-east-1"),
        "{}",
        agent.log()
    );

    let mut agent = Agent::start(&dir, "x", &m.endpoint, &idp.authority, "0.0.0.0:0", &[]);
    let status = support::wait_for("exit", Duration::from_secs(20), || {
        agent.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(2), "{}", agent.log());
    assert!(
        agent.log().contains("not a loopback address"),
        "{}",
        agent.log()
    );

    // Port already taken: serve error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let mut agent = Agent::start(&dir, "x", &m.endpoint, &idp.authority, &busy, &[]);
    let status = support::wait_for("exit", Duration::from_secs(20), || {
        agent.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(5), "{}", agent.log());
}
