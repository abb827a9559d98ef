//! A deliberately dumb HTTP/1.1 client over a plain TCP socket.
//!
//! Every corpus request goes through it, so that header values reach Envoy
//! byte for byte: an HTTP library refuses to send CR, LF or NUL in a header,
//! duplicates are under our control, and nothing is normalised on the way.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One request, as bytes on the wire.
#[derive(Clone, Debug)]
pub struct Attack {
    pub method: &'static str,
    /// Path and query, sent as is.
    pub target: String,
    /// Header lines in order; values are raw bytes (may hold CR, LF, NUL).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Attack {
    /// `POST /fraud/analyze` without credentials.
    pub fn anonymous() -> Attack {
        Attack {
            method: "POST",
            target: super::forge::ANALYZE.to_string(),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: br#"{"amount":120.5}"#.to_vec(),
        }
    }

    /// `POST /fraud/analyze` with `Authorization: Bearer <token>`.
    pub fn bearer(token: impl AsRef<str>) -> Attack {
        Attack::authorization(format!("Bearer {}", token.as_ref()))
    }

    /// `POST /fraud/analyze` with this exact `Authorization` value.
    pub fn authorization(value: impl Into<Vec<u8>>) -> Attack {
        Attack::anonymous().header("authorization", value)
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Attack {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Attack {
        self.target = target.into();
        self
    }

    pub fn method(mut self, method: &'static str) -> Attack {
        self.method = method;
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Attack {
        self.body = body.into();
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        out.extend_from_slice(b"host: 127.0.0.1\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(b"connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// What came back.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `attack` on a fresh connection and reads until the answer is
/// complete (headers plus `content-length` bytes) or Envoy closes the
/// connection. Not waiting for the close matters: Envoy delays closing an
/// HTTP/1 connection by up to a second (`delayed_close_timeout`).
pub async fn send(addr: SocketAddr, attack: &Attack) -> anyhow::Result<RawResponse> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(&attack.to_bytes()).await?;
        let mut raw = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            // Envoy may reset a connection it refuses; what was read so far counts.
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buffer[..n]);
            if is_complete(&raw) {
                break;
            }
        }
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .context("no answer within 20 s")??;
    parse(&raw)
}

/// Headers are in and the body has its announced length.
fn is_complete(raw: &[u8]) -> bool {
    let Ok(response) = parse(raw) else {
        return false;
    };
    let body_start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |end| end + 4);
    match response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(length) => raw.len() - body_start >= length,
        None => {
            response
                .header("transfer-encoding")
                .is_some_and(|te| te.contains("chunked"))
                && raw.ends_with(b"0\r\n\r\n")
        }
    }
}

fn parse(raw: &[u8]) -> anyhow::Result<RawResponse> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!(
            "no complete HTTP response ({} bytes: {:?})",
            raw.len(),
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(length) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(length);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}
