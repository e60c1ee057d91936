//! Messages of the copilot daemon (`copilotd.sock`).
//!
//! Owns the request/response/error/event types of copilot conversations:
//! a person's message in, streamed text, tool calls with the class and the
//! gate's decision, approvals waiting for a person, tool results, the end of
//! a turn with its token count. Must never: carry a secret (what the model
//! and the client see is redacted), or a way for the copilot to decide an
//! approval (people decide through the broker, with the cli or ui role).

use serde::{Deserialize, Serialize};

use crate::sessiond::HostRef;
use crate::wire::Service;

/// Marker type for the copilot service.
pub struct Copilotd;

impl Service for Copilotd {
    const SOCKET: &'static str = "copilotd.sock";
    const NAME: &'static str = "copilotd";
    type Request = CopilotRequest;
    type Response = CopilotResponse;
    type Error = CopilotError;
    type Event = CopilotEvent;
}

/// What the copilot does with the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Mode {
    /// Works the task.
    #[default]
    Default,
    /// Answers and runs read-only tools only; anything else is a suggestion.
    Ask,
    /// Gathers evidence read-only, then proposes a numbered plan (each step
    /// with its class) instead of running changes.
    Planning,
}

/// How much runs without asking. The trust level moves the threshold; the
/// classifier moves the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Trust {
    /// Every tool call asks, read-only too.
    Manual,
    /// Read-only runs; everything else asks.
    #[default]
    Supervised,
    /// Autopilot: not available yet (treated as Supervised, and said so).
    Autonomous,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChatSettings {
    pub mode: Mode,
    pub trust: Trust,
    /// Hosts the copilot may act on (empty: any host of `org`).
    pub hosts: Vec<HostRef>,
    /// Organization the conversation works in (`None`: any).
    pub org: Option<String>,
    /// Most tool calls in this turn before the copilot stops.
    pub max_steps: u32,
    /// With `Trust::Autonomous`: the Autopilot task a person started in the
    /// broker (`GrantAutopilot`), whose bounds the broker enforces.
    pub autopilot: Option<AutopilotTask>,
}

/// An Autopilot task as the broker granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotTask {
    pub grant: u64,
    /// When the task's time bound passes (ms since the epoch).
    pub expires_ms: u64,
}

/// What the gate decided for one tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateDecision {
    /// Runs without asking (read-only under Supervised).
    Run,
    /// Waits for a person's decision on approval request `approval_id`.
    AskPerson { approval_id: u64 },
    /// Approved by the broker under the Autopilot task (`rule`: what
    /// permitted it); runs without asking.
    AutoApproved { approval_id: u64, rule: String },
    /// Not run: shown to the person as a suggestion (Ask and Planning modes).
    Suggest,
    /// Not run: refused (org policy, out of scope, unknown tool).
    Refuse { reason: String },
}

impl GateDecision {
    /// What the gate decided, as a person reads it (`runs`, `needs approval
    /// (request 7)`, …): the cli's line and the app's tool-call card.
    pub fn describe(&self) -> String {
        match self {
            GateDecision::Run => "runs".to_string(),
            GateDecision::AskPerson { approval_id } => {
                format!("needs approval (request {approval_id})")
            }
            GateDecision::AutoApproved { approval_id, rule } => {
                format!("AUTOPILOT approved (request {approval_id}, {rule})")
            }
            GateDecision::Suggest => "suggestion only, not run".to_string(),
            GateDecision::Refuse { reason } => format!("REFUSED: {reason}"),
        }
    }
}

/// The host and command a tool call's arguments (JSON, as in
/// [`CopilotEvent::ToolCall`]) name: `run_command`'s `host`/`command`, else
/// `?` and the raw arguments. For plan steps and tool-call summaries.
pub fn call_target(arguments: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(arguments).unwrap_or_default();
    (
        v["host"].as_str().unwrap_or("?").to_string(),
        v["command"].as_str().unwrap_or(arguments).to_string(),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Model requests made in this turn.
    pub requests: u32,
    /// What the tokens cost, in millionths of a US dollar, when the
    /// provider settings give prices (`copilot config --price-in/--price-out`).
    pub cost_micro_usd: Option<u64>,
}

impl Usage {
    /// Adds `other` (a turn) to this running total.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.requests += other.requests;
        self.cost_micro_usd = match (self.cost_micro_usd, other.cost_micro_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}

/// `3 model request(s), 2182 tokens in, 85 out, $0.006305` (the cost only
/// when the provider settings give prices).
impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} model request(s), {} tokens in, {} out",
            self.requests, self.input_tokens, self.output_tokens
        )?;
        if let Some(c) = self.cost_micro_usd {
            write!(f, ", ${}.{:06}", c / 1_000_000, c % 1_000_000)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopilotStatus {
    pub version: String,
    pub pid: u32,
    pub hardening: crate::broker::Hardening,
    pub provider: Option<String>,
    pub conversations: usize,
    /// The configured MCP servers copilotd connected to at start-up.
    pub mcp_servers: Vec<McpServerStatus>,
}

/// One configured MCP server as copilotd sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerStatus {
    /// The record's name.
    pub name: String,
    /// `org ID` or `private`.
    pub scope: String,
    /// `stdio: COMMAND ARGS…` or `http: URL`.
    pub transport: String,
    pub state: McpServerState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum McpServerState {
    /// Starting or initializing.
    Connecting,
    /// Initialized; its tools (the server's names) as offered to the model.
    Ready { tools: Vec<String> },
    /// Could not start, initialize or list its tools, or the connection was
    /// lost; skipped (the copilot works without it).
    Failed { error: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CopilotRequest {
    Status,
    /// One turn: the person's message. Events follow on this connection
    /// until `TurnEnded`. `conversation: None` starts a new one.
    Chat {
        conversation: Option<u64>,
        message: String,
        settings: ChatSettings,
    },
    /// Forgets a conversation (its history is purged).
    Forget {
        conversation: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CopilotResponse {
    Status(Box<CopilotStatus>),
    /// The turn runs; events follow.
    Started {
        conversation: u64,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopilotEvent {
    /// A piece of the model's answer (redacted).
    Text { conversation: u64, delta: String },
    /// The model asked for a tool; what the gate decided.
    ToolCall {
        conversation: u64,
        call_id: String,
        tool: String,
        /// The arguments as the model gave them (JSON, redacted).
        arguments: String,
        /// `read-only`, `moderate`, `dangerous`, `unknown` (or `-` for tools that touch no device).
        class: String,
        reasons: Vec<String>,
        decision: GateDecision,
    },
    /// What the tool returned to the model (redacted, shortened for display).
    ToolResult {
        conversation: u64,
        call_id: String,
        result: String,
    },
    /// The turn is over.
    TurnEnded {
        conversation: u64,
        /// This turn's usage.
        usage: Usage,
        /// The whole conversation's so far.
        total: Usage,
        /// Why, when not because the model finished (step bound, provider error…).
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CopilotError {
    #[error(
        "no AI provider configured: `gatehouse copilot config --kind openai --endpoint URL --model M` (or run `gatehouse demo` for a scripted local one)"
    )]
    NoProvider,
    #[error("AI provider: {0}")]
    Provider(String),
    #[error("no conversation {0}")]
    NoSuchConversation(u64),
    #[error("signed out: run `gatehouse signin`")]
    SignedOut,
    #[error("role {0} may not do this")]
    Forbidden(crate::peer::PeerRole),
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{service}: {reason}")]
    Daemon { service: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}
