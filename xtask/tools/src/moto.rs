//! The one launcher of `moto_server` (PyPI `moto[server]`, pinned as [`crate::MOTO`]) on 127.0.0.1: a local
//! Secrets Manager and KMS for the agent's real AWS SDK, in bootstrap's tests, the harness and the demo.
//!
//! `ENTRAGATE_MOTO_SERVER=/path/to/moto_server` uses another installation. The server runs under `sh`,
//! which kills it when our end of its stdin closes, i.e. when the owning process exits however it exits.

use std::io::{self, BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Overrides the `moto_server` executable.
pub const MOTO_SERVER_ENV: &str = "ENTRAGATE_MOTO_SERVER";

/// `moto_server`, installing the pinned version into the cache venv if needed.
pub fn server_binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(MOTO_SERVER_ENV) {
        return Ok(PathBuf::from(path));
    }
    crate::pip::ensure(&crate::MOTO)?;
    Ok(crate::MOTO.bin("moto_server"))
}

/// A running moto server; dropping it stops the server.
pub struct MotoServer {
    pub port: u16,
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    child: Child,
    stdin: ChildStdin,
}

impl MotoServer {
    /// Starts a server on a free loopback port (3 tries: the port may be taken between probe and bind),
    /// with extra environment for moto (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn start(env: &[(&str, &str)]) -> io::Result<MotoServer> {
        let bin = server_binary()?;
        let mut last = None;
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            match MotoServer::spawn(&bin, port, env) {
                Ok(moto) => return Ok(moto),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no attempt")))
    }

    /// A server on `port` (e.g. the port of one that was stopped), empty.
    pub fn start_on(port: u16) -> io::Result<MotoServer> {
        MotoServer::spawn(&server_binary()?, port, &[])
    }

    fn spawn(bin: &Path, port: u16, env: &[(&str, &str)]) -> io::Result<MotoServer> {
        let mut child = Command::new("sh")
            .arg("-c")
            // Server in the background; the wrapper blocks on stdin and kills it at EOF.
            .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; echo started; cat >/dev/null; kill $pid; wait $pid"#)
            .arg(bin)
            .arg(port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", bin.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other(
                "moto_server's wrapper has no stdin/stdout",
            ));
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        // Python start-up on a loaded 2-core machine can take seconds.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(MotoServer {
                    port,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    child,
                    stdin,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stdin);
        let _ = child.wait();
        Err(io::Error::other(format!(
            "moto_server did not listen on port {port} within 60 s"
        )))
    }

    /// Stops the server (its state is gone) and waits until it exited: afterwards its port refuses
    /// connections.
    pub fn stop(self) -> io::Result<()> {
        let MotoServer {
            mut child, stdin, ..
        } = self;
        drop(stdin); // `sh` kills moto when its stdin closes
        child.wait()?;
        Ok(())
    }
}
