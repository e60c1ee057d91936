//! Org policy on top of classification: block-lists, allow-lists (exact
//! runbook commands), block dangerous / unknown entirely, and classes for
//! connector calls the classifier cannot judge (SOAP operations). Owns
//! matching of patterns against a verdict's parts; must never lower a class
//! the classifier decided (an org class only replaces `unknown`, and only
//! for connector calls), and never pre-approve a dangerous command
//! (dangerous always needs a person).

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
    /// Under Autopilot, the broker may approve moderate commands without
    /// asking (inside the person's bounds). Off by default; dangerous
    /// commands are never auto-approved, unknown ones only by an `allow` rule.
    pub autopilot_moderate: bool,
    /// Opening an interactive shell from the CLI (`gatehouse connect`) to
    /// a host of this org needs proof of presence (the account passphrase,
    /// checked by the broker before it releases the host's credential).
    pub connect_needs_presence: bool,
    /// Classes for connector calls, matched against `METHOD /path` and
    /// `SOAP <operation>` (see [`apply_connector_policy`]). First match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connector_classes: Vec<ConnectorClass>,
    /// Classes the org assigns to MCP tools, by `"server/tool"` (see
    /// [`crate::classify_mcp_tool`]): the floor a tool's annotations can only
    /// raise. A tool not listed is unknown.
    pub mcp_tools: BTreeMap<String, Class>,
}

/// An organization's class for connector calls matching `pattern`: it
/// classifies what the classifier left unknown (a SOAP operation the org
/// knows to be read-only, say) and raises anything else; it never lowers a
/// class the classifier decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorClass {
    /// Stable id shown in verdicts.
    pub id: String,
    pub pattern: PatternKind,
    pub class: Class,
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
    matches_kind(&p.kind, text)
}

fn matches_kind(kind: &PatternKind, text: &str) -> bool {
    let t = norm(text);
    match kind {
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

/// Whether `org` may name a policy file (`<dir>/<org>.json`): no path tricks.
pub fn safe_org_id(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= 128
        && !org.starts_with('.')
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Reads an organization's policy file, `<dir>/<org>.json`. No file means
/// the empty policy. The error names the file and what is wrong with it.
pub fn load_org_policy(dir: &std::path::Path, org: &str) -> Result<OrgPolicy, String> {
    if !safe_org_id(org) {
        return Err(format!("organization id {org:?} cannot name a policy file"));
    }
    let path = dir.join(format!("{org}.json"));
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OrgPolicy::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Org policy for a connector call's verdict (from
/// [`crate::classify_connector`]): first the org's connector classes (the
/// first rule matching the call's `METHOD /path` or a part such as
/// `SOAP <operation>` replaces an unknown class, or raises a lower one),
/// then [`apply_org_policy`] (blocks, which see the call as `METHOD
/// /path`). Only for connector verdicts: device commands never get an org
/// class.
pub fn apply_connector_policy(policy: &OrgPolicy, mut verdict: Verdict) -> Verdict {
    let hit = policy.connector_classes.iter().find(|c| {
        matches_kind(&c.pattern, &verdict.input)
            || verdict
                .parts
                .iter()
                .any(|p| matches_kind(&c.pattern, &p.text))
    });
    if let Some(rule) = hit {
        let class = if verdict.class == Class::Unknown {
            rule.class
        } else {
            verdict.class.max(rule.class)
        };
        if class != verdict.class {
            verdict.class = class;
            verdict.reasons.push(std::borrow::Cow::Owned(format!(
                "org rule {} classifies this call as {class}",
                rule.id
            )));
            verdict
                .rule_ids
                .push(std::borrow::Cow::Owned(rule.id.clone()));
        }
    }
    apply_org_policy(policy, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify_connector;

    fn rule(id: &str, pattern: PatternKind, class: Class) -> ConnectorClass {
        ConnectorClass {
            id: id.into(),
            pattern,
            class,
        }
    }

    const ENVELOPE: &str = "<s:Envelope><s:Body><GetUser/></s:Body></s:Envelope>";

    #[test]
    fn org_classes_classify_soap_and_never_lower_rest() {
        let p = OrgPolicy {
            connector_classes: vec![
                rule(
                    "soap-reads",
                    PatternKind::Exact("SOAP GetUser".into()),
                    Class::ReadOnly,
                ),
                rule(
                    "api-lower",
                    PatternKind::Prefix("DELETE".into()),
                    Class::ReadOnly,
                ),
                rule(
                    "api-stricter",
                    PatternKind::Contains("/admin/".into()),
                    Class::Dangerous,
                ),
            ],
            ..OrgPolicy::default()
        };
        let soap =
            apply_connector_policy(&p, classify_connector(&format!("POST /ws\n\n{ENVELOPE}")));
        assert_eq!(soap.class, Class::ReadOnly);
        assert!(soap.rule_ids.iter().any(|r| r == "soap-reads"));
        let other = apply_connector_policy(
            &p,
            classify_connector("POST /ws\n\n<Envelope><Body><DropAll/></Body></Envelope>"),
        );
        assert_eq!(other.class, Class::Unknown);
        // A REST class decided by the classifier is never lowered…
        let del = apply_connector_policy(&p, classify_connector("DELETE /api/x\n\n"));
        assert_eq!(del.class, Class::Dangerous);
        // …but may be raised.
        let get = apply_connector_policy(&p, classify_connector("GET /admin/users\n\n"));
        assert_eq!(get.class, Class::Dangerous);
        let plain = apply_connector_policy(&p, classify_connector("GET /api/users\n\n"));
        assert_eq!(plain.class, Class::ReadOnly);
    }

    #[test]
    fn blocks_match_method_and_path() {
        let p = OrgPolicy {
            block: vec![Pattern {
                id: "no-api-deletes".into(),
                vendor: None,
                kind: PatternKind::Contains("DELETE /api/".into()),
            }],
            block_unknown: true,
            ..OrgPolicy::default()
        };
        let blocked = |text: &str| {
            apply_connector_policy(&p, classify_connector(text))
                .org_policy
                .map(|d| d.outcome)
                == Some(OrgOutcome::Blocked)
        };
        assert!(blocked("DELETE /api/items/1\n\n"));
        assert!(!blocked("DELETE /other/1\n\n"));
        assert!(!blocked("GET /api/items\n\n"));
        assert!(blocked(&format!("POST /ws\n\n{ENVELOPE}")));
        // A vendor-specific device rule never applies to connector calls.
        let ios = OrgPolicy {
            block: vec![Pattern {
                id: "ios-only".into(),
                vendor: Some(Vendor::Ios),
                kind: PatternKind::Prefix("GET".into()),
            }],
            ..OrgPolicy::default()
        };
        let v = apply_connector_policy(&ios, classify_connector("GET /x\n\n"));
        assert_ne!(v.org_policy.map(|d| d.outcome), Some(OrgOutcome::Blocked));
    }

    #[test]
    fn files_without_connector_classes_still_parse() {
        let old = r#"{"allow":[],"block":[],"block_dangerous":true,"block_unknown":false}"#;
        let p: OrgPolicy = serde_json::from_str(old).unwrap();
        assert!(p.connector_classes.is_empty());
        assert!(p.block_dangerous);
    }
}
