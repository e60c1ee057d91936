//! MCP servers: the tools of the configured MCP servers (records of kind
//! `mcp-server`), offered to the model as `mcp__<server>__<tool>` and called
//! through the gate ([`call`]).
//!
//! Start-up has two halves, because copilotd has no exec once sandboxed:
//! [`launch`] runs before the sandbox and spawns every stdio server (piped
//! stdin/stdout, stderr to copilotd's log, in copilotd's process group so a
//! signal to the group reaches them); [`start`] runs once the tokio runtime
//! exists and initializes every server (stdio over the pipes, streamable
//! HTTP with rmcp's reqwest client) and lists its tools, each in its own
//! task. A server that fails to start, initialize or list is logged, shown
//! in the status, and skipped: never fatal.
//!
//! Owns the server table, tool naming (the provider's charset, unique,
//! ≤ 64 bytes) and the status. Must never: let server-supplied text (names,
//! descriptions, annotations) decide anything but what the model reads and
//! the hint reasons (classification is `gatehouse_policy::classify_mcp_tool`,
//! which only lets hints raise a class), or call a tool outside the gate.
//! Children exit when their stdin closes (any exit of copilotd closes it; the
//! MCP stdio shutdown); the sandbox forbids copilotd to signal them.

pub mod call;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use gatehouse_ipc::broker::{Broker, BrokerRequest, BrokerResponse, KeyScope, ServiceAuth};
use gatehouse_ipc::client::SharedClient;
use gatehouse_ipc::copilotd::{McpServerState, McpServerStatus};
use gatehouse_records::model::{McpAuth, McpTransport};
use gatehouse_records::store::{field_address, verify_item};
use gatehouse_records::{Filter, Kind, Store};
use rmcp::model::Tool;
use rmcp::service::{Peer, RoleClient, RunningService};
use serde_json::Value;

use crate::provider::ToolSpec;

/// Every MCP tool's name starts with this.
pub const PREFIX: &str = "mcp__";
/// The providers' limit on a tool name.
const MAX_NAME: usize = 64;
/// Most of a tool description the model reads.
const MAX_DESCRIPTION: usize = 1024;
/// Largest input schema passed to the model (bigger: an open object).
const MAX_SCHEMA: usize = 16 * 1024;
/// Most tools offered from one server (a server cannot flood the model's context).
const MAX_TOOLS: usize = 128;
/// How long a server may take to initialize, and to list its tools.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A configured server, as launched before the sandbox.
pub struct Launch {
    name: String,
    /// The org id of an org record; `None` for a private one.
    org: Option<String>,
    transport: String,
    how: How,
}

enum How {
    Stdio(std::process::Child),
    /// A streamable-HTTP server, and the request for its sealed auth (the
    /// broker releases it for this URL only) when the record has one.
    Http {
        url: String,
        auth: Option<Box<ServiceAuth>>,
    },
    Failed(String),
}

/// What [`launch`] prepared for [`start`].
#[derive(Default)]
pub struct Launched(Vec<Launch>);

impl Launched {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn describe(t: &McpTransport) -> String {
    match t {
        McpTransport::Stdio { command, args } => {
            let mut s = format!("stdio: {command}");
            for a in args {
                s.push(' ');
                s.push_str(a);
            }
            s
        }
        McpTransport::Http { url } => format!("http: {url}"),
    }
}

/// Before the sandbox: reads the configured MCP servers and spawns the stdio
/// ones. Never fails: a server that cannot be read or spawned is recorded as
/// failed.
pub fn launch(store: &Store) -> Launched {
    let list = match store.list(&Filter::kind(Kind::McpServer)) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("MCP servers: cannot list the records: {e}");
            return Launched::default();
        }
    };
    let mut out = Vec::new();
    for s in list {
        let name = s.name().to_string();
        let org = match &s.meta.scope {
            KeyScope::Org(id) => Some(id.clone()),
            KeyScope::Private => None,
        };
        let transport = s
            .fields
            .get("transport")
            .cloned()
            .map(serde_json::from_value::<McpTransport>);
        let (transport, how) = match transport {
            Some(Ok(t)) => (describe(&t), with_auth(store, &s, spawn(&name, &t))),
            Some(Err(e)) => (
                "?".to_string(),
                How::Failed(format!("its transport does not decode: {e}")),
            ),
            None => ("?".to_string(), How::Failed("it has no transport".into())),
        };
        if let How::Failed(e) = &how {
            tracing::warn!("MCP server {name}: {e}; skipped");
        }
        out.push(Launch {
            name,
            org,
            transport,
            how,
        });
    }
    Launched(out)
}

/// For an HTTP server whose record holds a sealed auth: the request the
/// broker will answer with it (the record's MAC, the field, the URL).
fn with_auth(store: &Store, s: &gatehouse_records::Summary, how: How) -> How {
    let How::Http { url, auth: None } = how else {
        return how;
    };
    match store.resolve(Kind::McpServer, Some(&s.meta.scope), &s.meta.id) {
        Ok(stored) if stored.sealed.contains_key("auth") => How::Http {
            auth: Some(Box::new(ServiceAuth {
                record: verify_item(&stored),
                field: field_address(&stored.meta, "auth", &stored.plain),
                destination: url.clone(),
            })),
            url,
        },
        Ok(_) => How::Http { url, auth: None },
        Err(e) => How::Failed(format!("its record does not read: {e}")),
    }
}

fn spawn(name: &str, t: &McpTransport) -> How {
    match t {
        McpTransport::Http { url } => How::Http {
            url: url.clone(),
            auth: None,
        },
        McpTransport::Stdio { command, args } => {
            let mut cmd = std::process::Command::new(command);
            cmd.args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit());
            match cmd.spawn() {
                Ok(child) => {
                    tracing::info!("MCP server {name}: started {command} (pid {})", child.id());
                    How::Stdio(child)
                }
                Err(e) => How::Failed(format!("cannot start {command:?}: {e}")),
            }
        }
    }
}

/// One offered tool.
#[derive(Clone)]
pub(crate) struct Offered {
    /// The name the model calls.
    pub exposed: String,
    pub tool: Tool,
}

enum State {
    Connecting,
    Ready {
        peer: Peer<RoleClient>,
        tools: Vec<Offered>,
        /// Keeps the connection open (dropping it closes the session).
        _service: Box<RunningService<RoleClient, ()>>,
    },
    Failed(String),
}

pub(crate) struct Server {
    pub name: String,
    pub org: Option<String>,
    /// The credential context an approval names (`mcp:<server>`) when the
    /// server's sealed auth is sent with its calls.
    pub credential: Option<String>,
    transport: String,
    state: RwLock<State>,
}

impl Server {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    fn set(&self, s: State) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = s;
    }
    /// Marks the server lost (its transport closed); its tools are no longer offered.
    pub(crate) fn lost(&self, why: &str) {
        tracing::warn!("MCP server {}: {why}", self.name);
        self.set(State::Failed(why.to_string()));
    }
}

struct Hub {
    servers: Vec<Arc<Server>>,
    /// Exposed names given out so far (unique across servers).
    taken: Mutex<HashSet<String>>,
}

static HUB: OnceLock<Hub> = OnceLock::new();

/// Once the runtime exists: initializes every launched server in its own
/// task. Call at most once (later calls are ignored).
pub fn start(launched: Launched, broker: Arc<SharedClient<Broker>>) {
    let mut tasks = Vec::new();
    let servers = launched
        .0
        .into_iter()
        .map(|l| {
            let (state, how) = match l.how {
                How::Failed(e) => (State::Failed(e), None),
                how => (State::Connecting, Some(how)),
            };
            let credential = matches!(&how, Some(How::Http { auth: Some(_), .. }))
                .then(|| format!("mcp:{}", l.name));
            let server = Arc::new(Server {
                name: l.name,
                org: l.org,
                credential,
                transport: l.transport,
                state: RwLock::new(state),
            });
            if let Some(how) = how {
                tasks.push((server.clone(), how));
            }
            server
        })
        .collect();
    let hub = Hub {
        servers,
        taken: Mutex::new(HashSet::new()),
    };
    if HUB.set(hub).is_err() {
        tracing::warn!("MCP: started twice; ignored");
        return;
    }
    for (server, how) in tasks {
        let broker = broker.clone();
        tokio::spawn(async move {
            let state = match connect(&server.name, how, &broker).await {
                Ok((service, tools)) => {
                    let tools = name_tools(&server.name, tools);
                    tracing::info!(
                        "MCP server {}: ready with {} tools",
                        server.name,
                        tools.len()
                    );
                    State::Ready {
                        peer: service.peer().clone(),
                        tools,
                        _service: Box::new(service),
                    }
                }
                Err(e) => {
                    tracing::warn!("MCP server {}: {e}; skipped", server.name);
                    State::Failed(e)
                }
            };
            server.set(state);
        });
    }
}

async fn connect(
    name: &str,
    how: How,
    broker: &SharedClient<Broker>,
) -> Result<(RunningService<RoleClient, ()>, Vec<Tool>), String> {
    use rmcp::ServiceExt;
    let service = match how {
        How::Failed(e) => return Err(e),
        How::Stdio(mut child) => {
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err("its pipes are missing".into());
            };
            let stdin = tokio::process::ChildStdin::from_std(stdin)
                .map_err(|e| format!("its stdin pipe: {e}"))?;
            let stdout = tokio::process::ChildStdout::from_std(stdout)
                .map_err(|e| format!("its stdout pipe: {e}"))?;
            // `child` is dropped: that neither kills nor waits (copilotd
            // cannot signal or reap once sandboxed); the server exits when
            // its stdin closes.
            tracing::debug!("MCP server {name}: initializing over stdio");
            tokio::time::timeout(SETUP_TIMEOUT, ().serve((stdout, stdin)))
                .await
                .map_err(|_| format!("no answer to initialize within {SETUP_TIMEOUT:?}"))?
                .map_err(|e| format!("initialize failed: {e}"))?
        }
        How::Http { url, auth } => {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let headers = match auth {
                Some(request) => auth_headers(broker, *request).await?,
                None => reqwest::header::HeaderMap::new(),
            };
            // The auth rides on every request to this one URL's client; the
            // broker's exact-value redaction knows the released values.
            let client = crate::provider::http_client(&url, SETUP_TIMEOUT, headers)
                .map_err(|e| format!("HTTP client: {e}"))?;
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            let transport = StreamableHttpClientTransport::with_client(client, config);
            tokio::time::timeout(SETUP_TIMEOUT, ().serve(transport))
                .await
                .map_err(|_| format!("no answer to initialize within {SETUP_TIMEOUT:?}"))?
                .map_err(|e| format!("initialize failed: {e}"))?
        }
    };
    let tools = tokio::time::timeout(SETUP_TIMEOUT, service.peer().list_all_tools())
        .await
        .map_err(|_| format!("no answer to tools/list within {SETUP_TIMEOUT:?}"))?
        .map_err(|e| format!("tools/list failed: {e}"))?;
    Ok((service, tools))
}

/// Asks the broker for an HTTP server's sealed auth (for its URL only) and
/// turns it into request headers: the token as `Authorization: Bearer`, and
/// each named header. Every value is marked sensitive (never logged).
async fn auth_headers(
    broker: &SharedClient<Broker>,
    request: ServiceAuth,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
    let secret = match broker
        .call(BrokerRequest::ReleaseServiceAuth {
            service: Box::new(request),
        })
        .await
    {
        Ok(BrokerResponse::ServiceAuth(s)) => s,
        Ok(_) => return Err("unexpected broker reply to ReleaseServiceAuth".into()),
        Err(e) => {
            return Err(format!(
                "the broker did not release its auth ({e}); sign in, then restart copilotd"
            ));
        }
    };
    let auth: McpAuth = serde_json::from_slice(secret.expose())
        .map_err(|_| "its auth is not an MCP server auth".to_string())?;
    let value = |text: &str| {
        HeaderValue::from_str(text)
            .map(|mut v| {
                v.set_sensitive(true);
                v
            })
            .map_err(|_| "its auth holds a value that cannot be an HTTP header".to_string())
    };
    let mut headers = HeaderMap::new();
    if let Some(token) = &auth.token {
        let bearer = zeroize::Zeroizing::new(format!("Bearer {}", token.expose()));
        headers.insert(AUTHORIZATION, value(&bearer)?);
    }
    for h in &auth.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("its auth header name {:?} is not valid", h.name))?;
        headers.insert(name, value(h.value.expose())?);
    }
    Ok(headers)
}

/// `[a-zA-Z0-9_-]` only; anything else becomes `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A short stable tag of `s` (FNV-1a), for names that had to be shortened
/// or collided.
fn tag(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The name the model sees for `tool` of `server`: `mcp__<server>__<tool>`
/// in the provider's charset, at most 64 bytes, not in `taken`.
fn exposed_name(server: &str, tool: &str, taken: &HashSet<String>) -> String {
    let full = format!("{PREFIX}{}__{}", sanitize(server), sanitize(tool));
    if full.len() <= MAX_NAME && !taken.contains(&full) {
        return full;
    }
    let t = tag(&format!("{server}\0{tool}"));
    let keep = full.len().min(MAX_NAME - t.len() - 1);
    let mut name = format!("{}_{t}", &full[..keep]);
    // A collision even so (vanishingly unlikely): count up.
    let mut n = 2u32;
    while taken.contains(&name) {
        let suffix = format!("_{n}");
        name = format!("{}_{t}{suffix}", &full[..keep - suffix.len()]);
        n += 1;
    }
    name
}

fn name_tools(server: &str, tools: Vec<Tool>) -> Vec<Offered> {
    let Some(hub) = HUB.get() else {
        return Vec::new();
    };
    if tools.len() > MAX_TOOLS {
        tracing::warn!(
            "MCP server {server}: offers {} tools; only the first {MAX_TOOLS} are used",
            tools.len()
        );
    }
    let mut taken = hub.taken.lock().unwrap_or_else(|p| p.into_inner());
    tools
        .into_iter()
        .take(MAX_TOOLS)
        .map(|tool| {
            let exposed = exposed_name(server, &tool.name, &taken);
            taken.insert(exposed.clone());
            Offered { exposed, tool }
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn spec(server: &str, o: &Offered) -> ToolSpec {
    // Server-supplied text: the model may read it; it decides nothing.
    let description = o.tool.description.as_deref().unwrap_or("");
    let description = format!(
        "MCP tool {:?} of server {server:?}: {}",
        o.tool.name,
        truncate(description, MAX_DESCRIPTION)
    );
    let schema = Value::Object((*o.tool.input_schema).clone());
    let parameters = if schema.to_string().len() <= MAX_SCHEMA {
        schema
    } else {
        serde_json::json!({"type": "object"})
    };
    ToolSpec {
        name: o.exposed.clone(),
        description,
        parameters,
    }
}

/// The tools of every ready server, as offered to the model.
pub fn tool_specs() -> Vec<ToolSpec> {
    let Some(hub) = HUB.get() else {
        return Vec::new();
    };
    let mut specs = Vec::new();
    for s in &hub.servers {
        if let State::Ready { tools, .. } = &*s.state() {
            specs.extend(tools.iter().map(|o| spec(&s.name, o)));
        }
    }
    specs
}

/// The server, tool and connection behind an exposed name (ready servers only).
pub(crate) fn find(exposed: &str) -> Option<(Arc<Server>, Tool, Peer<RoleClient>)> {
    let hub = HUB.get()?;
    hub.servers.iter().find_map(|s| match &*s.state() {
        State::Ready { peer, tools, .. } => tools
            .iter()
            .find(|o| o.exposed == exposed)
            .map(|o| (s.clone(), o.tool.clone(), peer.clone())),
        _ => None,
    })
}

/// Every configured server and its state, for `Status`.
pub fn status() -> Vec<McpServerStatus> {
    let Some(hub) = HUB.get() else {
        return Vec::new();
    };
    hub.servers
        .iter()
        .map(|s| McpServerStatus {
            name: s.name.clone(),
            scope: match &s.org {
                Some(o) => format!("org {o}"),
                None => "private".into(),
            },
            transport: s.transport.clone(),
            state: match &*s.state() {
                State::Connecting => McpServerState::Connecting,
                State::Ready { tools, .. } => McpServerState::Ready {
                    tools: tools.iter().map(|o| o.tool.name.to_string()).collect(),
                },
                State::Failed(e) => McpServerState::Failed { error: e.clone() },
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn names_fit_the_provider_charset_and_length_and_stay_unique() {
        let mut taken = HashSet::new();
        let cases = [
            ("lab", "lookup_vlan"),
            ("lab", "lookup.vlan"),
            ("lab", "lookup vlan"),
            ("läb", "ünïcode/tool"),
            (
                "a-very-long-server-name-for-testing",
                "an-even-longer-tool-name-here",
            ),
            (
                "a-very-long-server-name-for-testing",
                "an-even-longer-tool-name-here2",
            ),
            ("", ""),
        ];
        for (s, t) in cases {
            let n = exposed_name(s, t, &taken);
            assert!(valid(&n), "{n}");
            assert!(n.starts_with(PREFIX), "{n}");
            assert!(taken.insert(n.clone()), "duplicate {n}");
        }
        assert!(taken.contains("mcp__lab__lookup_vlan"));
        // `lookup.vlan` and `lookup vlan` sanitize alike: the second got a tag.
        assert_eq!(
            taken
                .iter()
                .filter(|n| n.starts_with("mcp__lab__lookup_vlan"))
                .count(),
            3
        );
    }

    #[test]
    fn a_forced_run_of_collisions_still_yields_unique_names() {
        let mut taken = HashSet::new();
        for _ in 0..5 {
            let n = exposed_name("s", "t", &taken);
            assert!(valid(&n), "{n}");
            assert!(taken.insert(n));
        }
    }
}
