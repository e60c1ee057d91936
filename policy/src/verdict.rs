//! Verdict data types: [`Class`], [`PartVerdict`], [`Verdict`]. Owns the danger
//! ordering (`ReadOnly < Moderate < Unknown < Dangerous`) so "most dangerous
//! part" is a `max`. Must never contain secrets beyond the command text the
//! caller passed in.

use crate::org::OrgDecision;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// How risky a command is. Ordered by danger: `ReadOnly < Moderate < Unknown < Dangerous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Cannot change device state; allowed without approval.
    ReadOnly,
    /// Changes state (config, interfaces, ACLs); needs approval.
    Moderate,
    /// Not classified with confidence; needs review, never auto-approved.
    Unknown,
    /// Reload, erase, format, clear BGP, lock-outs; explicit approval or blocked.
    Dangerous,
}

impl Class {
    /// `read-only | moderate | dangerous | unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::ReadOnly => "read-only",
            Class::Moderate => "moderate",
            Class::Unknown => "unknown",
            Class::Dangerous => "dangerous",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "read-only" | "readonly" | "ro" => Ok(Class::ReadOnly),
            "moderate" => Ok(Class::Moderate),
            "unknown" => Ok(Class::Unknown),
            "dangerous" => Ok(Class::Dangerous),
            o => Err(format!("unknown class {o:?}")),
        }
    }
}

/// The verdict for one part of a compound input (one command, one pipe
/// filter, one embedded payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartVerdict {
    /// The text of this part as it appeared in the input (trimmed).
    pub text: String,
    /// Its class.
    pub class: Class,
    /// Ids of the rules that decided it (see [`crate::rules`]).
    pub rule_ids: Vec<Cow<'static, str>>,
    /// A human sentence why.
    pub reason: Cow<'static, str>,
}

/// The verdict for a whole input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The most dangerous class among the parts (after org policy, the class
    /// is unchanged: org policy only blocks or pre-approves, see `org_policy`).
    pub class: Class,
    /// Every part with its own class, in input order (nested payloads follow
    /// the part that carries them).
    pub parts: Vec<PartVerdict>,
    /// Human sentences for the parts that decided the class (deduplicated).
    pub reasons: Vec<Cow<'static, str>>,
    /// Rule ids of the parts that decided the class (deduplicated).
    pub rule_ids: Vec<Cow<'static, str>>,
    /// A read-only command whose output carries secrets (running config,
    /// `/export`, `show configuration`): send its output through redaction.
    pub output_has_secrets: bool,
    /// Running it needs a credential to be decrypted (e.g. `enable`).
    pub needs_credential: bool,
    /// Set by [`crate::apply_org_policy`].
    pub org_policy: Option<OrgDecision>,
    /// The vendor it was classified for (None for HTTP calls).
    pub vendor: Option<crate::Vendor>,
    /// The classified input (truncated to 4 KiB), used by org policy.
    pub input: String,
}

impl Verdict {
    /// Build a verdict from its parts: class = max of parts (Unknown if none).
    pub(crate) fn from_parts(parts: Vec<PartVerdict>, secrets: bool, cred: bool) -> Verdict {
        let class = parts
            .iter()
            .map(|p| p.class)
            .max()
            .unwrap_or(Class::Unknown);
        let mut reasons: Vec<Cow<'static, str>> = Vec::new();
        let mut rule_ids: Vec<Cow<'static, str>> = Vec::new();
        for p in parts.iter().filter(|p| p.class == class) {
            if !reasons.contains(&p.reason) {
                reasons.push(p.reason.clone());
            }
            for r in &p.rule_ids {
                if !rule_ids.contains(r) {
                    rule_ids.push(r.clone());
                }
            }
        }
        if parts.is_empty() {
            reasons.push(Cow::Borrowed("empty input: nothing to classify"));
            rule_ids.push(Cow::Borrowed("core.empty"));
        }
        Verdict {
            class,
            parts,
            reasons,
            rule_ids,
            output_has_secrets: secrets,
            needs_credential: cred,
            org_policy: None,
            vendor: None,
            input: String::new(),
        }
    }

    /// True when the verdict permits running without a person (read-only and
    /// not blocked, or pre-approved by org policy).
    pub fn is_allowed_without_approval(&self) -> bool {
        match &self.org_policy {
            Some(d) if d.outcome == crate::org::OrgOutcome::Blocked => false,
            Some(d) if d.outcome == crate::org::OrgOutcome::PreApproved => true,
            _ => self.class == Class::ReadOnly,
        }
    }
}
