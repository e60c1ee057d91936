//! # gatehouse-policy
//!
//! Owns the two pure engines every gate in Gatehouse relies on:
//!
//! * **classification** ([`classify`], [`classify_http`]) — decides whether a
//!   command for a network device / Linux host, or a connector HTTP call, is
//!   read-only, moderate, dangerous or unknown (and [`classify_connector`]
//!   for the copilot's connector calls), with the rule ids and human
//!   sentences that decided it; plus org policy on top ([`apply_org_policy`]);
//!   and MCP tool calls ([`classify_mcp_tool`]: annotations only raise).
//! * **redaction** ([`redact_patterns`], [`redact`] with [`ExactSecrets`]) —
//!   masks secret-shaped text and replaces known secret values by their
//!   reference.
//!
//! This crate must never do I/O (no files, sockets, processes, environment,
//! clock-dependent behaviour), never panic on any input, and never spend
//! unbounded time: classification input is capped ([`MAX_CLASSIFY_BYTES`]) and
//! nested payloads are capped in depth ([`MAX_DEPTH`]); redaction is linear in
//! its input. Anything not fully understood is [`Class::Unknown`], never
//! [`Class::ReadOnly`].

#![forbid(unsafe_code)]

pub mod bench_support;
mod classify;
mod fuzz;
pub mod joins;
mod mcp;
mod org;
mod redact;
pub mod rules;
mod text;
mod vendor;
mod verdict;

pub use classify::{
    ConnectorCommandError, ConnectorRequest, HttpCall, MAX_CLASSIFY_BYTES, MAX_DEPTH, MAX_TARGET,
    classify, classify_connector, classify_http, soap_envelope,
};
pub use fuzz::{fuzz_classify, fuzz_joins, fuzz_redact};
pub use mcp::{McpHints, McpVerdict, classify_mcp_tool, mcp_tool_key};
pub use org::{
    ConnectorClass, OrgDecision, OrgOutcome, OrgPolicy, Pattern, PatternKind,
    apply_connector_policy, apply_org_policy, load_org_policy, safe_org_id,
};
pub use redact::exact::{ExactSecrets, ExactSecretsBuilder};
pub use redact::{
    MASK, Redacted, Span, max_redacted_len, redact, redact_patterns, redact_patterns_after,
};
pub use vendor::{ParseVendorError, Vendor};
pub use verdict::{Class, PartVerdict, Verdict};
