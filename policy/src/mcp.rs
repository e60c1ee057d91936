//! Classification of an MCP tool call (a tool offered by a configured MCP
//! server, called by the copilot).
//!
//! The rule (issue 6): a tool's annotations inform but never lower the
//! class. The class is `max(org-assigned, annotation-implied)`:
//! * org-assigned: the org policy's `mcp_tools["server/tool"]`, else
//!   [`Class::Unknown`] (an MCP server's own word is never enough to run
//!   without a person);
//! * annotation-implied: an explicit `destructiveHint: true` raises to
//!   [`Class::Dangerous`]; `readOnlyHint`, `idempotentHint` and
//!   `openWorldHint` only add a reason (they are claims by the server, which
//!   may lie).
//!
//! Then the org's `block` patterns (matched against the text `server/tool`),
//! `block_dangerous` and `block_unknown` apply exactly as for commands,
//! through [`apply_org_policy`]. Owns only this pure decision; must never
//! read a tool's description or let any server-supplied text lower a class.

use std::borrow::Cow;

use crate::org::{OrgOutcome, OrgPolicy, apply_org_policy};
use crate::verdict::{Class, PartVerdict, Verdict};

/// What an MCP server says about its tool (`ToolAnnotations`): hints, not
/// facts. `None` is "not said".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct McpHints {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

impl McpHints {
    /// The hints stated in a text that carries [`classify_mcp_tool`]'s own
    /// hint sentences (copilotd puts them in an approval's expected
    /// effect). Used by the broker, which never sees the server: a hint
    /// can only raise a class, so a requester that drops or invents one
    /// can make a call stricter, never looser.
    pub fn from_stated(text: &str) -> McpHints {
        let said = |s: &str| text.contains(s).then_some(true);
        McpHints {
            read_only: said(SAYS_READ_ONLY),
            destructive: said(SAYS_DESTRUCTIVE),
            idempotent: said(SAYS_IDEMPOTENT),
            open_world: said(SAYS_OPEN_WORLD),
        }
    }
}

const SAYS_DESTRUCTIVE: &str = "the server says destructive: dangerous";
const SAYS_READ_ONLY: &str = "the server says read-only (a hint, not trusted)";
const SAYS_IDEMPOTENT: &str = "the server says idempotent (a hint, not trusted)";
const SAYS_OPEN_WORLD: &str = "the server says it reaches outside systems (open world)";

/// The classification of one MCP tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpVerdict {
    /// `max(org-assigned, annotation-implied)`.
    pub class: Class,
    /// Human sentences: what the org said, what the server hinted.
    pub reasons: Vec<String>,
    /// Org policy's reason when it blocks the tool.
    pub blocked: Option<String>,
}

/// The text org policy sees for a tool: `server/tool`.
pub fn mcp_tool_key(server: &str, tool: &str) -> String {
    format!("{server}/{tool}")
}

/// Classifies a call of `tool` on `server` under `policy`, given the
/// server's `hints`. Pure; never lowers the org-assigned class.
pub fn classify_mcp_tool(
    policy: &OrgPolicy,
    server: &str,
    tool: &str,
    hints: &McpHints,
) -> McpVerdict {
    let key = mcp_tool_key(server, tool);
    let mut reasons = Vec::new();
    let assigned = match policy.mcp_tools.get(&key) {
        Some(c) => {
            reasons.push(format!("the organization classifies MCP tool {key} as {c}"));
            *c
        }
        None => {
            reasons.push(format!(
                "no organization rule classifies MCP tool {key}: unknown"
            ));
            Class::Unknown
        }
    };
    let mut class = assigned;
    if hints.destructive == Some(true) {
        class = class.max(Class::Dangerous);
        reasons.push(SAYS_DESTRUCTIVE.into());
    }
    if hints.read_only == Some(true) {
        reasons.push(SAYS_READ_ONLY.into());
    }
    if hints.idempotent == Some(true) {
        reasons.push(SAYS_IDEMPOTENT.into());
    }
    if hints.open_world == Some(true) {
        reasons.push(SAYS_OPEN_WORLD.into());
    }
    // Org blocks: the same semantics as for commands, over the text `server/tool`.
    let verdict = Verdict {
        class,
        parts: vec![PartVerdict {
            text: key.clone(),
            class,
            rule_ids: vec![Cow::Borrowed("mcp.tool")],
            reason: Cow::Borrowed("an MCP tool call"),
        }],
        reasons: Vec::new(),
        rule_ids: Vec::new(),
        output_has_secrets: false,
        needs_credential: false,
        org_policy: None,
        vendor: None,
        input: key,
    };
    let verdict = apply_org_policy(policy, verdict);
    let blocked = verdict
        .org_policy
        .filter(|d| d.outcome == OrgOutcome::Blocked)
        .map(|d| d.reason);
    if let Some(b) = &blocked {
        reasons.push(b.clone());
    }
    McpVerdict {
        class: verdict.class,
        reasons,
        blocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{Pattern, PatternKind};

    fn hints(ro: Option<bool>, destructive: Option<bool>) -> McpHints {
        McpHints {
            read_only: ro,
            destructive,
            ..McpHints::default()
        }
    }

    fn org(assign: Option<Class>) -> OrgPolicy {
        let mut p = OrgPolicy::default();
        if let Some(c) = assign {
            p.mcp_tools.insert("lab/t".into(), c);
        }
        p
    }

    /// Every cell: org assignment × readOnlyHint × destructiveHint.
    #[test]
    fn every_cell() {
        use Class::*;
        let assigns = [None, Some(ReadOnly), Some(Moderate), Some(Dangerous)];
        let bools = [None, Some(false), Some(true)];
        for assign in assigns {
            for ro in bools {
                for de in bools {
                    let v = classify_mcp_tool(&org(assign), "lab", "t", &hints(ro, de));
                    let base = assign.unwrap_or(Unknown);
                    let want = if de == Some(true) { Dangerous } else { base };
                    assert_eq!(v.class, want, "{assign:?} ro={ro:?} destructive={de:?}");
                    // Never below what the org assigned.
                    assert!(v.class >= base);
                    assert!(v.blocked.is_none());
                }
            }
        }
    }

    #[test]
    fn a_read_only_hint_alone_never_makes_read_only() {
        let v = classify_mcp_tool(
            &OrgPolicy::default(),
            "lab",
            "t",
            &McpHints {
                read_only: Some(true),
                destructive: Some(false),
                idempotent: Some(true),
                open_world: Some(false),
            },
        );
        assert_eq!(v.class, Class::Unknown);
        assert!(
            v.reasons
                .iter()
                .any(|r| r == "the server says read-only (a hint, not trusted)"),
            "{v:?}"
        );
        assert!(v.reasons.iter().any(|r| r.contains("idempotent")));
    }

    #[test]
    fn destructive_is_dangerous_even_when_the_org_says_read_only() {
        let v = classify_mcp_tool(
            &org(Some(Class::ReadOnly)),
            "lab",
            "t",
            &hints(Some(true), Some(true)),
        );
        assert_eq!(v.class, Class::Dangerous);
    }

    #[test]
    fn the_org_assignment_is_per_server_and_tool() {
        let p = org(Some(Class::ReadOnly));
        assert_eq!(
            classify_mcp_tool(&p, "lab", "t", &McpHints::default()).class,
            Class::ReadOnly
        );
        for (s, t) in [("lab", "t2"), ("other", "t"), ("la", "b/t")] {
            assert_eq!(
                classify_mcp_tool(&p, s, t, &McpHints::default()).class,
                Class::Unknown,
                "{s}/{t}"
            );
        }
    }

    #[test]
    fn org_blocks_apply_to_server_slash_tool() {
        let mut p = org(Some(Class::ReadOnly));
        p.block.push(Pattern {
            id: "no-deletes".into(),
            vendor: None,
            kind: PatternKind::Exact("lab/t".into()),
        });
        let v = classify_mcp_tool(&p, "lab", "t", &McpHints::default());
        assert!(
            v.blocked.as_deref().unwrap().contains("no-deletes"),
            "{v:?}"
        );
        // A whole server by prefix? Prefix matches words; `Contains` matches text.
        p.block = vec![Pattern {
            id: "no-lab".into(),
            vendor: None,
            kind: PatternKind::Contains("lab/".into()),
        }];
        assert!(
            classify_mcp_tool(&p, "lab", "other", &McpHints::default())
                .blocked
                .is_some()
        );
        assert!(
            classify_mcp_tool(&p, "prod", "t", &McpHints::default())
                .blocked
                .is_none()
        );
        // A vendor-specific pattern never matches an MCP tool.
        p.block = vec![Pattern {
            id: "ios-only".into(),
            vendor: Some(crate::Vendor::Ios),
            kind: PatternKind::Exact("lab/t".into()),
        }];
        assert!(
            classify_mcp_tool(&p, "lab", "t", &McpHints::default())
                .blocked
                .is_none()
        );
    }

    #[test]
    fn block_dangerous_and_block_unknown_apply() {
        let mut p = OrgPolicy {
            block_dangerous: true,
            ..OrgPolicy::default()
        };
        assert!(
            classify_mcp_tool(&p, "lab", "t", &hints(None, Some(true)))
                .blocked
                .is_some()
        );
        assert!(
            classify_mcp_tool(&p, "lab", "t", &McpHints::default())
                .blocked
                .is_none()
        );
        p.block_unknown = true;
        assert!(
            classify_mcp_tool(&p, "lab", "t", &McpHints::default())
                .blocked
                .is_some()
        );
        p.mcp_tools.insert("lab/t".into(), Class::Moderate);
        assert!(
            classify_mcp_tool(&p, "lab", "t", &McpHints::default())
                .blocked
                .is_none()
        );
    }

    #[test]
    fn an_allow_pattern_does_not_pre_approve_a_tool() {
        let p = OrgPolicy {
            allow: vec![Pattern {
                id: "allow-t".into(),
                vendor: None,
                kind: PatternKind::Exact("lab/t".into()),
            }],
            ..OrgPolicy::default()
        };
        let v = classify_mcp_tool(&p, "lab", "t", &McpHints::default());
        assert_eq!(v.class, Class::Unknown);
        assert!(v.blocked.is_none());
    }

    #[test]
    fn policy_files_without_mcp_tools_stay_valid_and_classes_parse() {
        let old = r#"{"allow":[],"block":[],"block_dangerous":true,"block_unknown":false}"#;
        let p: OrgPolicy = serde_json::from_str(old).unwrap();
        assert!(p.block_dangerous && p.mcp_tools.is_empty());
        let new =
            r#"{"mcp_tools":{"lab/lookup_vlan":"read-only","lab/set_description":"moderate"}}"#;
        let p: OrgPolicy = serde_json::from_str(new).unwrap();
        assert_eq!(p.mcp_tools["lab/lookup_vlan"], Class::ReadOnly);
        assert_eq!(p.mcp_tools["lab/set_description"], Class::Moderate);
        assert!(serde_json::from_str::<OrgPolicy>(r#"{"mcp_tools":{"a/b":"harmless"}}"#).is_err());
    }
}
