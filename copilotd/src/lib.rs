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
pub mod config;
pub mod connectors;
pub mod gate;
pub mod provider;
pub mod record_tools;
pub mod scripted;
pub mod service;
