//! Running the real Envoy against a rendered config.
//!
//! [`Envoy::start`] renders a template (ports default to `0`, so Envoy binds
//! free ports itself), starts Envoy with `--disable-hot-restart` (no shared
//! memory, so any number of Envoys can run side by side without picking
//! unique `--base-id`s), waits until the admin API reports `LIVE`, and then
//! learns the bound listener addresses from the admin API. Logs go to a file
//! in a temporary directory; when a test panics while an [`Envoy`] is alive,
//! the tail of that log is printed to help diagnose it. The process is killed
//! on drop (and, through `PR_SET_PDEATHSIG`, if the test process dies).

mod admin;
mod locate;
mod template;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

pub use locate::{
    envoy_available, envoy_binary, native_module_path, wasm_path, ENVOY_ENV, NATIVE_MODULE_ENV,
    REQUIRE_ENVOY_ENV, WASM_ENV,
};
pub use template::{render, TemplateVars};

use crate::util::{http_client, wait_for};

/// File name of the access log in Envoy's temporary directory.
const ACCESS_LOG_FILE: &str = "access.log";

/// Keep the temp dir (config + log) after the test when this env var is set.
pub const KEEP_ENV: &str = "ENTRAGATE_KEEP_ENVOY_DIR";

/// How to run Envoy.
#[derive(Clone, Debug)]
pub struct EnvoyOptions {
    /// `-l`: trace, debug, info, warning, error, critical, off.
    pub log_level: String,
    /// `--component-log-level`, e.g. `wasm:debug,http:info`.
    pub component_log_level: Option<String>,
    /// `--concurrency`: worker threads, each with its own wasm VM.
    pub concurrency: u32,
    /// How long Envoy may take to become `LIVE`.
    pub startup_timeout: Duration,
    /// Extra environment variables for Envoy (e.g. `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`).
    pub env: Vec<(String, String)>,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            log_level: "info".into(),
            component_log_level: Some("wasm:debug".into()),
            concurrency: 2,
            startup_timeout: Duration::from_secs(30),
            env: Vec::new(),
        }
    }
}

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    config: String,
    admin: SocketAddr,
    listeners: Vec<(String, SocketAddr)>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Envoy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envoy")
            .field("pid", &self.child.id())
            .field("admin", &self.admin)
            .field("listeners", &self.listeners)
            .field("log", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl Envoy {
    /// Renders `template` with `vars` and starts Envoy with default options.
    ///
    /// Placeholders filled in when not given: `ADMIN_PORT` and
    /// `LISTENER_PORT` (`0`), and `WASM_PATH` (see [`wasm_path`]) if the
    /// template uses it.
    pub async fn start(template: &str, vars: TemplateVars) -> anyhow::Result<Envoy> {
        Envoy::start_with(template, vars, EnvoyOptions::default()).await
    }

    pub async fn start_with(
        template: &str,
        mut vars: TemplateVars,
        options: EnvoyOptions,
    ) -> anyhow::Result<Envoy> {
        vars.set_default("ADMIN_PORT", 0);
        vars.set_default("LISTENER_PORT", 0);
        if template.contains("{{WASM_PATH}}") && vars.get("WASM_PATH").is_none() {
            vars.set_default("WASM_PATH", wasm_path()?.display());
        }
        let dir = tempfile::Builder::new()
            .prefix("entragate-envoy-")
            .tempdir()?;
        let access_log_path = dir.path().join(ACCESS_LOG_FILE);
        vars.set_default("ACCESS_LOG_PATH", access_log_path.display());
        let config = render(template, &vars)?;
        let binary = envoy_binary()?;

        let config_path = dir.path().join("envoy.yaml");
        let log_path = dir.path().join("envoy.log");
        let admin_path = dir.path().join("admin-address");
        std::fs::write(&config_path, &config)?;

        let log = File::create(&log_path)?;
        let mut command = Command::new(&binary);
        command
            .arg("-c")
            .arg(&config_path)
            .arg("--concurrency")
            .arg(options.concurrency.to_string())
            .arg("-l")
            .arg(&options.log_level)
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(levels) = &options.component_log_level {
            command.arg("--component-log-level").arg(levels);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        kill_with_parent(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;

        let mut envoy = Envoy {
            child,
            dir: Some(dir),
            log_path,
            config,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: Vec::new(),
            client: http_client(),
        };
        envoy
            .await_live(&admin_path, options.startup_timeout)
            .await
            .map_err(|e| anyhow!("{e:#}\n--- envoy log (tail) ---\n{}", envoy.log_tail(60)))?;
        Ok(envoy)
    }

    async fn await_live(&mut self, admin_path: &Path, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let remaining = || deadline.saturating_duration_since(Instant::now());

        // Envoy writes the admin address once the admin listener is bound.
        let admin = wait_for(remaining(), "Envoy admin address", || {
            let exited = self.child.try_wait().ok().flatten();
            let address = std::fs::read_to_string(admin_path).ok();
            async move {
                if let Some(status) = exited {
                    return Some(Err(anyhow!("Envoy exited during startup ({status})")));
                }
                address?.trim().parse::<SocketAddr>().ok().map(Ok)
            }
        })
        .await??;
        self.admin = admin;

        let client = self.client.clone();
        let ready_url = format!("http://{admin}/ready");
        let child = &mut self.child;
        wait_for(remaining(), "Envoy /ready to report LIVE", || {
            let exited = child.try_wait().ok().flatten();
            let client = client.clone();
            let url = ready_url.clone();
            async move {
                if let Some(status) = exited {
                    return Some(Err(anyhow!("Envoy exited during startup ({status})")));
                }
                let response = client.get(&url).send().await.ok()?;
                let ok = response.status().is_success();
                let body = response.text().await.ok()?;
                (ok && body.trim() == "LIVE").then_some(Ok(()))
            }
        })
        .await??;

        let listeners = self.admin_get("/listeners?format=json").await?;
        self.listeners = admin::parse_listeners(&listeners)?;
        Ok(())
    }

    // ---- addresses ----

    /// The first listener's bound address.
    pub fn listener(&self) -> SocketAddr {
        self.listeners
            .first()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |(_, addr)| *addr)
    }

    /// A listener by its `name` in the config.
    pub fn listener_named(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, addr)| *addr)
    }

    /// All listeners, in config order.
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// `http://<first listener><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listener())
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    // ---- observation ----

    /// The rendered config Envoy runs with.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Everything Envoy logged so far.
    /// The access log, when the template writes it to `{{ACCESS_LOG_PATH}}`
    /// (left to its default: a file beside Envoy's own log).
    pub fn access_log(&self) -> String {
        self.log_path
            .parent()
            .map(|dir| std::fs::read_to_string(dir.join(ACCESS_LOG_FILE)).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let logs = self.logs();
        let all: Vec<&str> = logs.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// GET on the admin API; fails on a non-2xx answer.
    pub async fn admin_get(&self, path_and_query: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{path_and_query}", self.admin);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {body}");
        }
        Ok(body)
    }

    /// Counters and gauges from `/stats?format=json`. Metrics the filter
    /// defines through proxy-wasm appear with Envoy's `wasmcustom.` prefix.
    pub async fn stats(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        admin::parse_stats(&self.admin_get("/stats?format=json").await?)
    }

    /// One counter or gauge, `None` if Envoy has no such stat (yet).
    pub async fn stat(&self, name: &str) -> anyhow::Result<Option<u64>> {
        Ok(self.stats().await?.get(name).copied())
    }

    /// Waits until stat `name` exists and satisfies `accept`; returns its value.
    pub async fn wait_for_stat(
        &self,
        name: &str,
        timeout: Duration,
        accept: impl Fn(u64) -> bool,
    ) -> anyhow::Result<u64> {
        let accept = &accept;
        wait_for(timeout, &format!("stat {name}"), || async move {
            self.stat(name).await.ok().flatten().filter(|v| accept(*v))
        })
        .await
        .map_err(|e| {
            e.context(format!(
                "stat {name} never matched; Envoy log tail:\n{}",
                self.log_tail(30)
            ))
        })
    }

    // ---- validation ----

    /// `envoy --mode validate` on a rendered config: `Err` carries Envoy's
    /// explanation.
    pub fn validate(config: &str) -> Result<(), String> {
        let binary = envoy_binary().map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("envoy.yaml");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let output = Command::new(binary)
            .arg("--mode")
            .arg("validate")
            .arg("-c")
            .arg(&path)
            .arg("--disable-hot-restart")
            .arg("-l")
            .arg("warning")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// [`validate`](Self::validate) for a template.
    pub fn validate_template(template: &str, mut vars: TemplateVars) -> Result<(), String> {
        vars.set_default("ADMIN_PORT", 0);
        vars.set_default("LISTENER_PORT", 0);
        vars.set_default("ACCESS_LOG_PATH", "/dev/null");
        let config = render(template, &vars).map_err(|e| e.to_string())?;
        Envoy::validate(&config)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- envoy log tail ({}) ---\n{}\n--- end of envoy log ---",
                self.log_path.display(),
                self.log_tail(80)
            );
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("keeping Envoy config and log in {}", dir.keep().display());
            }
        }
    }
}

/// Asks the kernel to SIGKILL Envoy when the thread that started it exits,
/// so an aborted or killed test run leaves no orphan Envoy behind.
fn kill_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
