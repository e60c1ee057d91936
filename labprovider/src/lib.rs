//! The scripted provider: a real HTTP server on loopback that plays model
//! turns from a script (or a responder function) in both wire formats. Tests
//! and the product's demo talk to it exactly as they would to a real
//! provider.
//!
//! Owns: serving `POST /v1/chat/completions` (OpenAI streaming chunks) and
//! `POST /v1/messages` (Anthropic streaming events) on `127.0.0.1:0`,
//! validating each request like a real provider would (400 with the
//! provider's error JSON), answering valid ones with the next `Turn`, issuing
//! tool-call ids (`call_1`…, `toolu_1`…) and recording every request body
//! byte for byte.
//! Must never: listen on anything but loopback, consume a turn for a request
//! it rejected, or panic on a request.

mod inspect;
mod render;
mod validate;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use inspect::{last_tool_result, last_user_text};

/// The largest request body the server accepts (a real provider's limit is
/// of this order; over it the answer is 413).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// One model turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// The model answers with text and ends its turn.
    Text(String),
    /// The model calls tools: (name, arguments) each; ids are issued by the
    /// server.
    ToolCalls(Vec<(String, Value)>),
    /// The model says something, then calls tools (as real models often do).
    TextThenToolCalls(String, Vec<(String, Value)>),
    /// The provider fails the request: `status` with `body` as
    /// `application/json`, before any streaming.
    Error { status: u16, body: String },
}

type Responder = Box<dyn Fn(&Value) -> Turn + Send + Sync>;

enum Script {
    Turns {
        remaining: VecDeque<Turn>,
        played: usize,
    },
    Responder(Responder),
}

struct Shared {
    script: Mutex<Script>,
    received: Mutex<Vec<Vec<u8>>>,
    next_openai_call: AtomicU64,
    next_anthropic_call: AtomicU64,
    next_response: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
}

/// A running scripted provider. Dropping it (or `shutdown`) stops it.
pub struct ScriptedProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedProvider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedProvider {
    /// Serves both wire formats on `127.0.0.1:0`, answering each valid
    /// request with the next of `turns`. Once they are used up, requests get
    /// a 400 saying so.
    pub async fn start(turns: Vec<Turn>) -> std::io::Result<ScriptedProvider> {
        ScriptedProvider::serve(Script::Turns {
            remaining: turns.into(),
            played: 0,
        })
        .await
    }

    /// Like `start`, but each valid request's turn is whatever `responder`
    /// returns for its JSON body (see `last_tool_result`, `last_user_text`).
    pub async fn start_with(
        responder: impl Fn(&Value) -> Turn + Send + Sync + 'static,
    ) -> std::io::Result<ScriptedProvider> {
        ScriptedProvider::serve(Script::Responder(Box::new(responder))).await
    }

    async fn serve(script: Script) -> std::io::Result<ScriptedProvider> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            received: Mutex::new(Vec::new()),
            next_openai_call: AtomicU64::new(1),
            next_anthropic_call: AtomicU64::new(1),
            next_response: AtomicU64::new(1),
        });
        let router = Router::new()
            .route("/v1/chat/completions", post(openai_endpoint))
            .route("/v1/messages", post(anthropic_endpoint))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "scripted provider stopped with an error");
            }
        });
        Ok(ScriptedProvider {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:PORT/v1`, for `ProviderKind::OpenAi`.
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`, for `ProviderKind::Anthropic`.
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request body received (valid or not), byte for byte, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.received).clone()
    }

    /// Stops accepting connections; open ones finish their current response.
    pub fn shutdown(mut self) {
        self.stop_serving();
    }

    fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for ScriptedProvider {
    fn drop(&mut self) {
        self.stop_serving();
    }
}

/// A poisoned lock still guards consistent data here (every critical
/// section is a single push or pop), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn openai_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&shared, Wire::OpenAi, &headers, &body)
}

async fn anthropic_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&shared, Wire::Anthropic, &headers, &body)
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": {"message": "no such endpoint: this scripted provider serves POST /v1/chat/completions and POST /v1/messages", "type": "not_found_error"}})
            .to_string(),
    )
}

fn answer(shared: &Shared, wire: Wire, headers: &HeaderMap, body: &[u8]) -> Response {
    lock(&shared.received).push(body.to_vec());
    let request: Value = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return invalid_request(
                wire,
                &format!("We could not parse the JSON body of your request: {e}"),
            );
        }
    };
    let accepted = match wire {
        Wire::OpenAi => validate::openai(&request),
        Wire::Anthropic => validate::anthropic(headers, &request),
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(message) => {
            tracing::debug!(?wire, %message, "scripted provider rejected a request");
            return invalid_request(wire, &message);
        }
    };
    let turn = {
        let mut script = lock(&shared.script);
        match &mut *script {
            Script::Turns { remaining, played } => match remaining.pop_front() {
                Some(turn) => {
                    *played += 1;
                    Ok(turn)
                }
                None => Err(*played),
            },
            Script::Responder(responder) => Ok(responder(&request)),
        }
    };
    let turn = match turn {
        Ok(turn) => turn,
        Err(played) => {
            return invalid_request(
                wire,
                &format!("the scripted provider has no turn left ({played} were played)"),
            );
        }
    };
    let (text, calls) = match turn {
        Turn::Error { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(status, body);
        }
        Turn::Text(text) => (text, Vec::new()),
        Turn::ToolCalls(calls) => (String::new(), calls),
        Turn::TextThenToolCalls(text, calls) => (text, calls),
    };
    let counter = match wire {
        Wire::OpenAi => (&shared.next_openai_call, "call_"),
        Wire::Anthropic => (&shared.next_anthropic_call, "toolu_"),
    };
    let utterance = render::Utterance {
        text,
        calls: calls
            .into_iter()
            .map(|(name, arguments)| {
                let id = format!("{}{}", counter.1, counter.0.fetch_add(1, Ordering::Relaxed));
                (id, name, arguments)
            })
            .collect(),
    };
    let input_tokens = render::tokens_for(body.len());
    let response_number = shared.next_response.fetch_add(1, Ordering::Relaxed);
    let events = match wire {
        Wire::OpenAi => {
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            render::openai(
                &utterance,
                &format!("chatcmpl-scripted-{response_number}"),
                &accepted.model,
                accepted.include_usage,
                input_tokens,
                created,
            )
        }
        Wire::Anthropic => render::anthropic(
            &utterance,
            &format!("msg_scripted_{response_number}"),
            &accepted.model,
            input_tokens,
        ),
    };
    let frames = futures_util::stream::iter(
        events
            .into_iter()
            .map(|event| Ok::<Bytes, Infallible>(Bytes::from(event))),
    );
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// 400 with the provider's own error JSON shape.
fn invalid_request(wire: Wire, message: &str) -> Response {
    let body = match wire {
        Wire::OpenAi => json!({"error": {
            "message": message,
            "type": "invalid_request_error",
            "param": null,
            "code": null,
        }}),
        Wire::Anthropic => json!({"type": "error", "error": {
            "type": "invalid_request_error",
            "message": message,
        }}),
    };
    json_response(StatusCode::BAD_REQUEST, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
