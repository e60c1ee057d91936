//! Test support for the provider tests: a tiny raw HTTP/1.1 server on
//! loopback that replays hand-written, byte-exact responses, and helpers to
//! build `Provider`s.
//!
//! Owns: serving one scripted reply per connection (every reply says
//! `connection: close`, so each request gets its own connection) and
//! recording each request's head and body.
//! Must never: listen on anything but loopback, or run unbounded (every
//! stall ends by itself).

#![allow(dead_code)] // each test file uses a different part

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_copilotd::provider::{Provider, ProviderConfig, ProviderKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

/// An obviously fake key.
pub const FAKE_KEY: &str = "test-key-not-a-real-secret";

/// What the server does after writing a reply.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    Close,
    /// Keep the connection open without writing, for this long.
    Stall(Duration),
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub bytes: Vec<u8>,
    /// Write in pieces of this many bytes (exercises chunk boundaries).
    pub write_in: usize,
    pub then: Then,
}

impl Reply {
    /// 200 with an event stream, read to the close (no content-length).
    pub fn sse(body: &str) -> Reply {
        Reply::raw(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n{body}"
            )
            .into_bytes(),
        )
    }

    /// A JSON response with `status` and extra header lines.
    pub fn json(status: u16, extra_headers: &str, body: &str) -> Reply {
        Reply::raw(
            format!(
                "HTTP/1.1 {status} Status\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    pub fn raw(bytes: Vec<u8>) -> Reply {
        Reply {
            bytes,
            write_in: 4096,
            then: Then::Close,
        }
    }

    pub fn in_pieces_of(mut self, size: usize) -> Reply {
        self.write_in = size.max(1);
        self
    }

    pub fn then_stall(mut self, how_long: Duration) -> Reply {
        self.then = Then::Stall(how_long);
        self
    }
}

#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Request line and headers, as text.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }
}

pub struct RawServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    /// Serves `replies` in order, one per connection; connections beyond
    /// them get a 599 so a test sees the surplus.
    pub async fn start(replies: Vec<Reply>) -> RawServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let queue = Arc::clone(&queue);
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    serve_one(stream, queue, recorded).await;
                });
            }
        });
        RawServer {
            addr,
            requests,
            task,
        }
    }

    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut stream: TcpStream,
    queue: Arc<Mutex<VecDeque<Reply>>>,
    recorded: Arc<Mutex<Vec<RawRequest>>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let reply = queue.lock().unwrap().pop_front();
    recorded.lock().unwrap().push(request);
    let reply = reply.unwrap_or_else(|| Reply::json(599, "", "{\"error\":\"no reply left\"}"));
    for piece in reply.bytes.chunks(reply.write_in) {
        if stream.write_all(piece).await.is_err() {
            return;
        }
        let _ = stream.flush().await;
    }
    match reply.then {
        Then::Close => {
            let _ = stream.shutdown().await;
        }
        Then::Stall(how_long) => tokio::time::sleep(how_long).await,
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let request = RawRequest {
        head,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(RawRequest { body, ..request })
}

pub fn config(kind: ProviderKind, base_url: String) -> ProviderConfig {
    ProviderConfig {
        kind,
        base_url,
        model: "test-model".to_owned(),
        api_key: Some(Zeroizing::new(FAKE_KEY.to_owned())),
        timeout: Duration::from_secs(5),
        max_retries: 3,
    }
}

pub fn provider(kind: ProviderKind, base_url: String) -> Provider {
    Provider::new(config(kind, base_url)).unwrap()
}

/// A minimal body (the raw server does not look at it).
pub fn any_body() -> serde_json::Value {
    serde_json::json!({"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "stream": true})
}

/// Sends `body`, collecting the text deltas.
pub async fn send_collecting(
    provider: &Provider,
    body: &serde_json::Value,
) -> (
    Result<gatehouse_copilotd::provider::Completion, gatehouse_copilotd::provider::ProviderError>,
    Vec<String>,
) {
    let mut deltas = Vec::new();
    let result = provider
        .send(body, &mut |delta| match delta {
            gatehouse_copilotd::provider::Delta::Text(text) => deltas.push(text),
        })
        .await;
    (result, deltas)
}
