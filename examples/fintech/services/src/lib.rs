//! Shared plumbing for the FinTech demo services: how they take their listen
//! address and announce that they are ready.
//!
//! Both services bind the address given by `--listen` (default: the `LISTEN`
//! environment variable, else `127.0.0.1:0`) and print one line
//! `listening on ADDR` on stdout once the socket accepts connections, so a
//! supervisor (the demo, a test) can wait for that line instead of sleeping
//! or guessing ports.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Reads `--listen ADDR` from the command line, else `LISTEN`, else port 0 on loopback.
pub fn listen_address(args: &[String], default: &str) -> Result<SocketAddr, String> {
    let from_args = args
        .windows(2)
        .find(|pair| pair[0] == "--listen")
        .map(|pair| pair[1].clone());
    let text = from_args
        .or_else(|| std::env::var("LISTEN").ok())
        .unwrap_or_else(|| default.to_string());
    text.parse()
        .map_err(|e| format!("--listen `{text}` is not an address: {e}"))
}

/// The value after `--name` on the command line, else the environment variable `env`.
pub fn option(args: &[String], name: &str, env: &str) -> Option<String> {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].clone())
        .or_else(|| std::env::var(env).ok())
}

/// Binds and announces the address (`listening on 127.0.0.1:PORT`).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("listening on {bound}");
    Ok(listener)
}

/// Resolves when the process gets SIGINT or SIGTERM (containers stop with SIGTERM).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_flag_wins_over_default() {
        let args = vec!["--listen".to_string(), "127.0.0.1:8080".to_string()];
        assert_eq!(listen_address(&args, "127.0.0.1:0").unwrap().port(), 8080);
    }

    #[test]
    fn bad_listen_address_is_named() {
        let args = vec!["--listen".to_string(), "nowhere".to_string()];
        let error = listen_address(&args, "127.0.0.1:0").unwrap_err();
        assert!(error.contains("`nowhere`"), "{error}");
    }
}
