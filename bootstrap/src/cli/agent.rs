//! `bootstrap agent`: the long-running sidecar process.

use super::common::{self, IdpArgs, SecretArgs};
use crate::agent::{key, router, AgentState, KeyOrigin, AGENT_KEY_HEADER};
use crate::config;
use crate::credential::AssertionIdentity;
use crate::exit::Failure;
use crate::secret::{CredentialStore, SecretError};
use crate::token::cache::CallerIdentity;
use crate::token::TokenCache;
use crate::{info, warn};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default listen address: loopback only, a fixed port so a restarted agent is found by the same Envoy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:15901";

#[derive(Clone, Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub idp: IdpArgs,
    /// Scope to keep a token for, as [NAME=]SCOPE; repeat for several. A resource such as
    /// api://fintech-fraud-detector gets /.default appended. NAME (default: the resource without scheme)
    /// is the path segment in GET /v1/token/NAME.
    #[arg(long = "scope", value_name = "[NAME=]SCOPE")]
    pub scopes: Vec<String>,
    /// Loopback address to serve tokens on; port 0 picks a free port (see --listen-addr-file)
    /// [default: 127.0.0.1:15901].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// File holding the key Envoy must send in x-entragate-agent-key (mode 0600). Reused if it already
    /// holds a valid private key, so a restarted agent keeps serving the running Envoy; else generated.
    #[arg(long, env = "ENTRAGATE_AGENT_KEY_FILE", value_name = "PATH")]
    pub agent_key_file: Option<PathBuf>,
    /// Generate a new agent key even if --agent-key-file holds one (Envoy's config must then be re-rendered).
    #[arg(long)]
    pub rotate_agent_key: bool,
    /// Write the bound address (e.g. 127.0.0.1:43117) to this file once listening; useful with port 0.
    #[arg(long, value_name = "PATH")]
    pub listen_addr_file: Option<PathBuf>,
}

/// Runs until SIGTERM/SIGINT.
pub async fn run(args: AgentArgs) -> Result<(), Failure> {
    let file = common::load_file(&args.secret)?;
    let (endpoint, retry) = common::idp_settings(&args.idp, &file)?;
    let credential = common::credential_config(&file)?;
    let identity =
        match common::assertion_identity(&credential, &args.secret, &file, &endpoint).await {
            Some(id) => Identity::Assertion(id),
            None => Identity::Secret(common::aws_settings(&args.secret, &file)?),
        };
    let specs = if args.scopes.is_empty() {
        file.scopes.clone()
    } else {
        args.scopes.clone()
    };
    let scopes = config::parse_scopes(&specs).map_err(Failure::Usage)?;
    if scopes.is_empty() {
        return Err(Failure::Usage("no scopes: pass --scope api://<resource>/.default (repeatable) or set scopes in the config file".into()));
    }
    let listen_text = args
        .listen
        .clone()
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen: SocketAddr = listen_text.parse().map_err(|e| {
        Failure::Usage(format!(
            "--listen {listen_text:?} is not an IP:port address: {e}"
        ))
    })?;
    if !listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "--listen {listen} is not a loopback address: the agent serves tokens to the local Envoy only"
        )));
    }
    let key_path = args
        .agent_key_file
        .clone()
        .or_else(|| file.agent_key_file.clone().map(PathBuf::from))
        .ok_or_else(|| Failure::Usage("no agent key file: pass --agent-key-file PATH (Envoy's config is rendered from it)".into()))?;
    let addr_file = args
        .listen_addr_file
        .clone()
        .or_else(|| file.listen_addr_file.clone().map(PathBuf::from));

    // Bind before anything slow, so a port clash is reported at once.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Serve(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Serve(format!("cannot read the bound address: {e}")))?;
    let (agent_key, origin) =
        key::load_or_create(&key_path, args.rotate_agent_key).map_err(Failure::Serve)?;
    info!(
        "agent key {} {} (mode 0600, sha256 {}); Envoy must send it in {AGENT_KEY_HEADER}",
        match origin {
            KeyOrigin::Generated => "written to",
            KeyOrigin::Reused => "reused from",
        },
        key_path.display(),
        agent_key.fingerprint()
    );
    if let Some(path) = &addr_file {
        std::fs::write(path, format!("{bound}\n"))
            .map_err(|e| Failure::Serve(format!("cannot write {}: {e}", path.display())))?;
    }

    let state = AgentState::new(Arc::new(agent_key));
    let server_state = state.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        axum::serve(listener, router(server_state))
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    info!("listening on {bound} (tokens are served once acquired; GET /healthz for readiness)");

    let work = start(identity, endpoint, retry, scopes, state, bound);
    tokio::pin!(work);
    let outcome = tokio::select! {
        r = &mut work => r,
        s = shutdown_signal() => { info!("{s} received: shutting down"); Ok(()) }
        r = wait_server_exit(&server) => Err(r),
    };
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    outcome
}

/// Where the agent's proof of identity comes from.
enum Identity {
    /// The client secret in Secrets Manager.
    Secret(crate::secret::AwsSettings),
    /// Client assertions from STS or KMS.
    Assertion(AssertionIdentity),
}

/// Reads the secret (if any), starts one refresher per scope, and reports readiness changes; returns only
/// on a permanent secret error.
async fn start(
    identity: Identity,
    endpoint: crate::token::TokenEndpoint,
    retry: crate::token::RetryPolicy,
    scopes: Vec<crate::token::cache::ScopeConfig>,
    state: AgentState,
    bound: SocketAddr,
) -> Result<(), Failure> {
    let identity = match identity {
        Identity::Secret(aws) => {
            let source = common::secret_source(&aws).await?;
            // Unreachable/throttled at start: keep retrying (the network or the endpoint may come up); a
            // permanent error ends the agent with exit code 3 so the orchestrator shows it.
            let credentials = common::read_secret_retrying(&source, None)
                .await
                .map_err(|e: SecretError| Failure::Secret(e))?;
            info!(
                "using token endpoint {}",
                endpoint.url(&credentials.tenant_id)
            );
            CallerIdentity::Secret(Arc::new(CredentialStore::new(
                credentials,
                Box::new(source),
            )))
        }
        Identity::Assertion(id) => {
            // Nothing to read up front: each token request fetches its own assertion, and failures are
            // retried by the refreshers and reported in /healthz and the 503 reason.
            info!("using token endpoint {}", endpoint.url(&id.tenant_id));
            CallerIdentity::Assertion(Arc::new(id))
        }
    };
    let names: Vec<String> = scopes.iter().map(|s| s.name.clone()).collect();
    let cache = Arc::new(TokenCache::with_identity(endpoint, identity, scopes, retry));
    state.set_cache(Arc::clone(&cache));
    for name in &names {
        tokio::spawn(Arc::clone(&cache).run_refresher(name.clone()));
    }
    // Readiness transitions, polled: cheap, and keeps the refresher free of presentation concerns.
    let mut was_ready = false;
    loop {
        let statuses = cache.status();
        let ready = statuses.iter().all(|s| s.ready);
        if ready && !was_ready {
            let list: Vec<String> = statuses
                .iter()
                .map(|s| format!("{} ({})", s.name, s.scope))
                .collect();
            info!("ready: serving tokens on {bound} for {}", list.join(", "));
        } else if !ready && was_ready {
            let missing: Vec<&str> = statuses
                .iter()
                .filter(|s| !s.ready)
                .map(|s| s.name.as_str())
                .collect();
            warn!(
                "not ready: no valid token for {}; Envoy gets 503 for those scopes",
                missing.join(", ")
            );
        }
        was_ready = ready;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_server_exit(server: &tokio::task::JoinHandle<std::io::Result<()>>) -> Failure {
    // Poll rather than await the handle: it is awaited again for the graceful stop.
    loop {
        if server.is_finished() {
            return Failure::Serve("the HTTP server stopped unexpectedly".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
