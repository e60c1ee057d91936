//! The copilot daemon: talks to the AI provider, runs the agent loop,
//! classifies and gates every tool call, redacts every prompt.
//!
//! Owns: provider clients (OpenAI-compatible Chat Completions, Anthropic
//! Messages; streaming, tool calls), the scripted provider used by tests and
//! the demo, and (to come) the agent loop and its gate.
//! Must never: hold a device credential or an org key, approve its own
//! requests, run anything on a device except through sessiond with a token,
//! or send a byte to the provider that did not pass redaction.

pub mod agent;
pub mod agent_api;
pub mod config;
pub mod connectors;
pub mod gate;
pub mod mcp;
pub mod org_policy;
pub mod provider;
pub mod record_tools;
pub mod scripted;
pub mod service;

/// Installs rustls' ring crypto provider as the process default (reqwest is
/// built without one: no aws-lc C build). Idempotent; every HTTP client in
/// copilotd (AI provider, MCP servers) calls it before it is built.
pub fn install_tls_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
