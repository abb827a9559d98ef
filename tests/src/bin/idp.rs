//! The local Entra-compatible identity provider as a standalone server, for
//! docker-compose (`docker-compose.yml`) and manual experiments. Tests and
//! `cargo xtask demo` start it in-process instead.
//!
//! ```text
//! idp [--listen ADDR] [--tenant GUID] [--api APP_ID=APP_ID_URI]...
//!     [--client CLIENT_ID:SECRET[:API_APP_ID=ROLE,ROLE...]]...
//! ```
//!
//! Serves Entra's URL layout (discovery, JWKS, `/{tenant}/oauth2/v2.0/token`)
//! and issues v2 app tokens signed with freshly generated keys. The listen
//! address defaults to `127.0.0.1:9400`; in a container use `0.0.0.0:9400`.
//! Prints `listening on ADDR` when ready and stops on SIGINT/SIGTERM.

use std::process::ExitCode;

use entragate_tests::{ApiApp, ClientApp, Idp, TokenVersion};

struct Options {
    listen: std::net::SocketAddr,
    tenant: String,
    apis: Vec<ApiApp>,
    clients: Vec<ClientApp>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9400)),
        tenant: entragate_tests::ids::TENANT_ID.to_string(),
        apis: Vec::new(),
        clients: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                options.listen = text
                    .parse()
                    .map_err(|e| format!("--listen `{text}`: {e}"))?;
            }
            "--tenant" => options.tenant = value()?,
            "--api" => {
                let text = value()?;
                let (app_id, uri) = text
                    .split_once('=')
                    .ok_or_else(|| format!("--api `{text}`: expected APP_ID=APP_ID_URI"))?;
                options.apis.push(ApiApp::new(app_id, uri, TokenVersion::V2));
            }
            "--client" => {
                let text = value()?;
                let mut parts = text.splitn(3, ':');
                let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
                    return Err(format!("--client `{id}`: expected CLIENT_ID:SECRET[:API=ROLES]", id = text.split(':').next().unwrap_or("")));
                };
                let mut client = ClientApp::new(id, secret);
                if let Some(grant) = parts.next() {
                    let (api, roles) = grant
                        .split_once('=')
                        .ok_or_else(|| format!("--client {id}: grant must be API_APP_ID=ROLE,ROLE"))?;
                    client = client.grant(api, roles.split(',').filter(|r| !r.is_empty()));
                }
                options.clients.push(client);
            }
            "-h" | "--help" => {
                return Err("usage: idp [--listen ADDR] [--tenant GUID] [--api APP_ID=URI]... [--client ID:SECRET[:API=ROLES]]...".into())
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("idp: {message}");
            return ExitCode::from(2);
        }
    };
    // Fresh keys, never the test suite's cached ones: this IdP may outlive a
    // test run and be reachable by others (docker-compose).
    std::env::set_var("ENTRAGATE_FRESH_KEYS", "1");
    let idp = match Idp::builder()
        .tenant(&options.tenant)
        .bind(options.listen)
        .start()
    {
        Ok(idp) => idp,
        Err(error) => {
            eprintln!("idp: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    for api in options.apis {
        idp.register_api(api);
    }
    for client in options.clients {
        // Never print the secret: only which client exists.
        println!("client {}", client.client_id);
        idp.register_client(client);
    }
    println!("tenant {}", idp.tenant_id());
    println!("jwks {}", idp.jwks_path());
    println!("listening on {}", idp.addr());
    wait_for_stop();
    ExitCode::SUCCESS
}

/// Blocks until SIGINT or SIGTERM (the IdP serves on its own thread).
fn wait_for_stop() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    });
}
