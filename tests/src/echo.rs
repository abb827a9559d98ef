//! The upstream behind Envoy in tests: answers every request `200` with a
//! JSON description of what it received, so tests can assert which headers
//! the filter forwarded, added or stripped, and records requests so tests can
//! assert that a rejected request never reached it.
//!
//! Response body:
//! ```json
//! {"method": "GET", "path": "/a?b=c",
//!  "headers": {"x-name": "v1, v2"},
//!  "header_list": [["x-name", "v1"], ["x-name", "v2"]],
//!  "body": "..."}
//! ```

use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use crate::server::{Handler, HttpRequest, Reply, Server};

/// One request the echo server received.
#[derive(Clone, Debug)]
pub struct EchoedRequest {
    pub method: String,
    pub path: String,
    /// Header names are lower-case; repeated headers are joined with `, `.
    pub headers: Map<String, Value>,
    pub header_list: Vec<(String, String)>,
    pub body: String,
}

impl EchoedRequest {
    fn from_http(request: &HttpRequest) -> EchoedRequest {
        let header_list: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut headers = Map::new();
        for (name, value) in &header_list {
            let joined = match headers.get(name).and_then(Value::as_str) {
                Some(previous) => format!("{previous}, {value}"),
                None => value.clone(),
            };
            headers.insert(name.clone(), Value::String(joined));
        }
        EchoedRequest {
            method: request.method.to_string(),
            path: request.path_and_query.clone(),
            headers,
            header_list,
            body: String::from_utf8_lossy(&request.body).into_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(Value::as_str)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "header_list": self.header_list,
            "body": self.body,
        })
    }
}

struct EchoHandler {
    received: Arc<Mutex<Vec<EchoedRequest>>>,
}

impl Handler for EchoHandler {
    async fn handle(&self, request: HttpRequest) -> Reply {
        let echoed = EchoedRequest::from_http(&request);
        let body = echoed.to_json();
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(echoed);
        Reply::json(StatusCode::OK, &body)
    }
}

/// A running echo upstream; stops when dropped.
pub struct Echo {
    server: Server,
    received: Arc<Mutex<Vec<EchoedRequest>>>,
}

impl Echo {
    pub fn start() -> anyhow::Result<Echo> {
        let received = Arc::default();
        let server = Server::start(
            "echo",
            EchoHandler {
                received: Arc::clone(&received),
            },
        )?;
        Ok(Echo { server, received })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr())
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<EchoedRequest> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn request_count(&self) -> usize {
        self.received().len()
    }

    pub fn last_request(&self) -> Option<EchoedRequest> {
        self.received().pop()
    }

    /// Forgets the requests received so far (long runs keep memory flat).
    pub fn clear(&self) {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
