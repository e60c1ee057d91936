//! The copilot daemon: talks to the AI provider, runs the agent loop,
//! classifies and gates every tool call, redacts every prompt.
//!
//! Owns: provider clients (OpenAI-compatible Chat Completions, Anthropic
//! Messages; streaming, tool calls), the agent loop and its gate. (The
//! scripted provider the tests and the demo talk to is the
//! `gatehouse-labprovider` crate; the provider settings file is
//! `gatehouse_ipc::provider_settings`.)
//! Must never: hold a device credential or an org key, approve its own
//! requests, run anything on a device except through sessiond with a token,
//! or send a byte to the provider that did not pass redaction.

pub mod agent;
pub mod agent_api;
/// The provider settings file, shared with the CLI that writes it.
pub use gatehouse_ipc::provider_settings as config;
pub mod connectors;
pub mod gate;
pub mod mcp;
pub mod org_policy;
pub mod provider;
pub mod record_tools;
pub mod service;

/// Installs rustls' ring crypto provider as the process default (reqwest is
/// built without one: no aws-lc C build). Idempotent; every HTTP client in
/// copilotd (AI provider, MCP servers) calls it before it is built.
pub fn install_tls_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
