//! Org policy on top of classification: block-lists, allow-lists (exact
//! runbook commands), block dangerous / unknown entirely. Owns matching of
//! patterns against a verdict's parts; must never lower a class, and never
//! pre-approve a dangerous command (dangerous always needs a person).

use crate::vendor::Vendor;
use crate::verdict::{Class, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a pattern matches a command (whitespace is normalised, case kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum PatternKind {
    /// The whole command equals this text.
    Exact(String),
    /// The command starts with these words.
    Prefix(String),
    /// The command contains this text.
    Contains(String),
}

/// An org policy pattern with an id for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    /// Stable id shown in verdicts.
    pub id: String,
    /// Only for this vendor (None = all).
    pub vendor: Option<Vendor>,
    /// Matcher.
    pub kind: PatternKind,
}

/// Organization policy (`<data>/org-policy/<org id>.json`). Every field
/// has a default, so older files stay valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgPolicy {
    /// Pre-approved commands (exact runbook commands). Never applies to dangerous.
    pub allow: Vec<Pattern>,
    /// Blocked commands; a block on any part blocks the whole input.
    pub block: Vec<Pattern>,
    /// Block every dangerous command.
    pub block_dangerous: bool,
    /// Block every unknown command.
    pub block_unknown: bool,
    /// Classes the org assigns to MCP tools, by `"server/tool"` (see
    /// [`crate::classify_mcp_tool`]): the floor a tool's annotations can only
    /// raise. A tool not listed is unknown.
    pub mcp_tools: BTreeMap<String, Class>,
}

/// Result of org policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrgOutcome {
    /// Must not run.
    Blocked,
    /// May run without a person's approval.
    PreApproved,
    /// No rule matched; the class decides.
    NoMatch,
}

/// What org policy decided and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDecision {
    /// Outcome.
    pub outcome: OrgOutcome,
    /// The deciding pattern id (or `org.block-dangerous` / `org.block-unknown`).
    pub rule_id: Option<String>,
    /// Human sentence.
    pub reason: String,
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn matches(p: &Pattern, vendor: Option<Vendor>, text: &str) -> bool {
    if p.vendor.is_some() && p.vendor != vendor {
        return false;
    }
    let t = norm(text);
    match &p.kind {
        PatternKind::Exact(x) => t == norm(x),
        PatternKind::Prefix(x) => {
            let x = norm(x);
            t == x || t.starts_with(&format!("{x} "))
        }
        PatternKind::Contains(x) => t.contains(&norm(x)),
    }
}

/// Apply org policy to a verdict (matching its `vendor` and `input`, and
/// each part). The class is never lowered; the decision is recorded in
/// `verdict.org_policy` and its rule id appended to `rule_ids`.
pub fn apply_org_policy(policy: &OrgPolicy, mut verdict: Verdict) -> Verdict {
    let vendor = verdict.vendor;
    let input = std::mem::take(&mut verdict.input);
    let text = input.as_str();
    let decide = |outcome, id: &str, reason: String| OrgDecision {
        outcome,
        rule_id: Some(id.to_string()),
        reason,
    };
    let mut d = None;
    for p in &policy.block {
        let hit = matches(p, vendor, text)
            || verdict
                .parts
                .iter()
                .any(|part| matches(p, vendor, &part.text));
        if hit {
            d = Some(decide(
                OrgOutcome::Blocked,
                &p.id,
                format!("blocked by org rule {}", p.id),
            ));
            break;
        }
    }
    if d.is_none() && policy.block_dangerous && verdict.class == Class::Dangerous {
        d = Some(decide(
            OrgOutcome::Blocked,
            "org.block-dangerous",
            "the organization blocks dangerous commands".into(),
        ));
    }
    if d.is_none() && policy.block_unknown && verdict.class == Class::Unknown {
        d = Some(decide(
            OrgOutcome::Blocked,
            "org.block-unknown",
            "the organization blocks unclassified commands".into(),
        ));
    }
    if d.is_none() {
        for p in &policy.allow {
            if matches(p, vendor, text) && !matches!(p.kind, PatternKind::Contains(_)) {
                d = Some(if verdict.class == Class::Dangerous {
                    decide(
                        OrgOutcome::NoMatch,
                        &p.id,
                        format!(
                            "org rule {} matches, but dangerous commands always need a person",
                            p.id
                        ),
                    )
                } else {
                    decide(
                        OrgOutcome::PreApproved,
                        &p.id,
                        format!("pre-approved by org rule {}", p.id),
                    )
                });
                break;
            }
        }
    }
    let d = d.unwrap_or(OrgDecision {
        outcome: OrgOutcome::NoMatch,
        rule_id: None,
        reason: "no org rule matched".into(),
    });
    if let Some(id) = &d.rule_id {
        verdict.rule_ids.push(std::borrow::Cow::Owned(id.clone()));
    }
    verdict
        .reasons
        .push(std::borrow::Cow::Owned(d.reason.clone()));
    verdict.org_policy = Some(d);
    verdict.input = input;
    verdict
}
