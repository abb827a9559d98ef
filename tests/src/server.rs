//! A minimal HTTP/1.1 server on its own thread, shared by the IdP and the echo
//! upstream.
//!
//! Each server runs a single-threaded tokio runtime on a dedicated OS thread,
//! so it keeps answering whatever the test does with its own thread (blocking
//! calls, a `current_thread` test runtime, a panic unwinding). Dropping the
//! [`Server`] stops it and joins the thread, which releases the port.
//!
//! Besides answering requests, the server can simulate an endpoint that is
//! down: a handler may ask for the connection to be closed without a response
//! ([`Reply::Close`]), and [`Server::set_refusing`] stops listening altogether
//! (new connections are refused, open ones are cut) until switched back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// A request as handlers see it: the body is already read in full.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// Path and query, exactly as received.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpRequest {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a handler wants done with a request.
pub enum Reply {
    Respond(Response<Full<Bytes>>),
    /// Drop the connection without writing a response (a crashed upstream).
    Close,
}

impl Reply {
    pub fn new(status: StatusCode, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
        let mut response = Response::new(Full::new(body.into()));
        *response.status_mut() = status;
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(value),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        Reply::Respond(response)
    }

    pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
        Reply::json_with(status, &[], value)
    }

    pub fn json_with(
        status: StatusCode,
        headers: &[(&str, String)],
        value: &serde_json::Value,
    ) -> Reply {
        let mut all = vec![(
            "content-type",
            "application/json; charset=utf-8".to_string(),
        )];
        all.extend_from_slice(headers);
        Reply::new(status, &all, value.to_string())
    }
}

/// Request handling logic plugged into a [`Server`].
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: HttpRequest) -> impl Future<Output = Reply> + Send;
}

enum Command {
    /// Acknowledged with whether the server is in the requested state.
    SetRefusing(bool, std_mpsc::Sender<bool>),
    Shutdown,
}

/// A running server; stops on drop.
pub struct Server {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and starts serving. The socket is listening when
    /// this returns, so no readiness wait is needed.
    pub fn start<H: Handler>(name: &str, handler: H) -> anyhow::Result<Server> {
        Server::start_on(name, SocketAddr::from(([127, 0, 0, 1], 0)), handler)
    }

    /// Like [`Server::start`] on a chosen address. Only the standalone IdP
    /// binary (for docker-compose) uses a non-loopback one; tests never do.
    pub fn start_on<H: Handler>(
        name: &str,
        bind: SocketAddr,
        handler: H,
    ) -> anyhow::Result<Server> {
        let listener =
            std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = std_mpsc::channel();
        let handler = Arc::new(handler);
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(anyhow!("tokio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = started_tx.send(Ok(()));
                            serve(listener, addr, handler, receiver).await;
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(anyhow!("listener: {e}")));
                        }
                    }
                });
            })
            .context("spawning server thread")?;
        started_rx
            .recv()
            .map_err(|_| anyhow!("{name} server thread died during startup"))??;
        Ok(Server {
            addr,
            commands,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `true`: close the listening socket (connections are refused) and cut
    /// open connections. `false`: listen again on the same port. Returns once
    /// the change is in effect; `false` if the port could not be bound again
    /// (another process took it meanwhile).
    pub fn set_refusing(&self, refusing: bool) -> bool {
        let (ack_tx, ack_rx) = std_mpsc::channel();
        self.commands
            .send(Command::SetRefusing(refusing, ack_tx))
            .is_ok()
            && ack_rx.recv().unwrap_or(false)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve<H: Handler>(
    listener: TcpListener,
    addr: SocketAddr,
    handler: Arc<H>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    // Open connections watch this; bumping it cuts them all.
    let (cut_tx, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        let accept = async {
            match &listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(Command::Shutdown) => return,
                Some(Command::SetRefusing(refusing, ack)) => {
                    if refusing {
                        listener = None;
                        cut_tx.send_modify(|generation| *generation += 1);
                    } else if listener.is_none() {
                        listener = rebind(addr).await;
                    }
                    let _ = ack.send(listener.is_none() == refusing);
                }
            },
            accepted = accept => {
                if let Some((stream, _)) = accepted {
                    let handler = Arc::clone(&handler);
                    let mut cut = cut_tx.subscribe();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            let handler = Arc::clone(&handler);
                            async move { dispatch(handler, request).await }
                        });
                        let connection = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            _ = connection => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        }
    }
}

/// Listens on `addr` again. tokio sets SO_REUSEADDR, so TIME_WAIT sockets
/// do not block this; a few retries cover a port briefly held elsewhere.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..50 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// Returned to hyper to make it drop the connection without a response.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed on purpose")
    }
}

impl std::error::Error for CloseConnection {}

async fn dispatch<H: Handler>(
    handler: Arc<H>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, CloseConnection> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(CloseConnection),
    };
    let request = HttpRequest {
        method: parts.method,
        path_and_query: parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        ),
        headers: parts.headers,
        body,
    };
    match handler.handle(request).await {
        Reply::Respond(response) => Ok(response),
        Reply::Close => Err(CloseConnection),
    }
}
