//! Organization policies as the broker keeps them: one JSON file per org in
//! the broker's own state (`<group state>/org-policy/` with the privilege
//! boundary on, where the user's uid cannot enter; `<state>/org-policy/` in a
//! development build). Every process that classifies or gates a command —
//! the broker itself, sessiond, copilotd — reads a policy through the broker
//! (`OrgPolicyGet`), so a program running as the user cannot lift a block, an
//! Autopilot rule or `connect_needs_presence` by editing a file.
//!
//! Owns: the directory, validating a policy before it is stored (it parses as
//! `OrgPolicy`, names no unknown field, fits [`MAX_POLICY`]), and writing it
//! atomically. Must never: check presence (the service does, through the
//! vault, before [`OrgPolicies::set`]), or read a policy from anywhere the
//! user can write.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use gatehouse_ipc::broker::BrokerError;
use gatehouse_policy::OrgPolicy;

/// The largest policy accepted (its JSON text).
pub const MAX_POLICY: usize = 256 * 1024;

pub struct OrgPolicies {
    dir: PathBuf,
}

impl OrgPolicies {
    /// Policies in `<state>/org-policy/` (made 0700 if missing), where
    /// `state` is the group-only state with the boundary on.
    pub fn open(state: &Path) -> Result<OrgPolicies, String> {
        let dir = state.join("org-policy");
        gatehouse_ipc::paths::make_private_dir(&dir).map_err(|e| e.to_string())?;
        Ok(OrgPolicies { dir })
    }

    /// The directory (for `audit isolation` and the docs' examples).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `org`'s policy; the empty policy when it has none. `Err` names the
    /// file and what is wrong with it: callers refuse rather than run
    /// without the org's blocks.
    pub fn get(&self, org: &str) -> Result<OrgPolicy, String> {
        gatehouse_policy::load_org_policy(&self.dir, org)
    }

    /// Validates `text` as `org`'s policy and stores it (write to a temporary
    /// file, fsync, rename). Returns the policy as stored.
    pub fn set(&self, org: &str, text: &str) -> Result<OrgPolicy, BrokerError> {
        if !gatehouse_policy::safe_org_id(org) {
            return Err(BrokerError::Invalid {
                what: "organization id".into(),
                reason: format!("{org:?} cannot name a policy file"),
            });
        }
        let policy = parse(text)?;
        let json = serde_json::to_string_pretty(&policy)
            .map_err(|e| BrokerError::Internal(format!("org policy: {e}")))?;
        let path = self.dir.join(format!("{org}.json"));
        let tmp = self.dir.join(format!(".{org}.json.tmp"));
        let storage = |e: std::io::Error| BrokerError::Storage(format!("{}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(storage)?;
        f.write_all(json.as_bytes()).map_err(storage)?;
        f.sync_all().map_err(storage)?;
        std::fs::rename(&tmp, &path).map_err(storage)?;
        Ok(policy)
    }
}

/// Parses a policy: JSON with the fields of [`OrgPolicy`] and no other (a
/// misspelt `connect_needs_presence` must not be stored as "no rule").
pub fn parse(text: &str) -> Result<OrgPolicy, BrokerError> {
    let invalid = |reason: String| BrokerError::Invalid {
        what: "org policy".into(),
        reason,
    };
    if text.len() > MAX_POLICY {
        return Err(invalid(format!(
            "{} bytes, over the {MAX_POLICY}-byte limit",
            text.len()
        )));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let serde_json::Value::Object(fields) = &value else {
        return Err(invalid("must be a JSON object".into()));
    };
    let known = known_fields();
    if let Some(unknown) = fields.keys().find(|k| !known.contains(k)) {
        return Err(invalid(format!(
            "unknown field {unknown:?} (known: {})",
            known.join(", ")
        )));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// The top-level field names of [`OrgPolicy`] (as its serializer writes them,
/// with every optional one present).
fn known_fields() -> Vec<String> {
    let mut sample = OrgPolicy::default();
    sample
        .connector_classes
        .push(gatehouse_policy::ConnectorClass {
            id: String::new(),
            pattern: gatehouse_policy::PatternKind::Exact(String::new()),
            class: gatehouse_policy::Class::ReadOnly,
        });
    match serde_json::to_value(sample) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "gh-orgpolicies-{}-{}",
            std::process::id(),
            crate::crypto::random_bytes::<8>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn stored_policies_round_trip_and_missing_is_empty() {
        let d = temp();
        let p = OrgPolicies::open(&d).unwrap();
        assert_eq!(p.get("acme").unwrap(), OrgPolicy::default());
        let stored = p
            .set(
                "acme",
                r#"{"connect_needs_presence": true, "block_dangerous": true}"#,
            )
            .unwrap();
        assert!(stored.connect_needs_presence && stored.block_dangerous);
        assert_eq!(p.get("acme").unwrap(), stored);
        // Replaced whole, not merged.
        p.set("acme", "{}").unwrap();
        assert_eq!(p.get("acme").unwrap(), OrgPolicy::default());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(p.dir().join("acme.json"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason_and_nothing_is_stored() {
        let d = temp();
        let p = OrgPolicies::open(&d).unwrap();
        p.set("acme", r#"{"block_unknown": true}"#).unwrap();
        for (text, says) in [
            ("{not json", "not JSON"),
            ("[]", "JSON object"),
            (
                r#"{"conect_needs_presence": true}"#,
                "unknown field \"conect_needs_presence\"",
            ),
            (r#"{"block_dangerous": "yes"}"#, "invalid type"),
            (r#"{"mcp_tools": {"a/b": "harmless"}}"#, "harmless"),
        ] {
            let e = p.set("acme", text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let big = format!(r#"{{"block":[], "x": "{}"}}"#, "a".repeat(MAX_POLICY));
        assert!(
            p.set("acme", &big)
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
        for org in ["../x", "", ".hidden", "a/b"] {
            let e = p.set(org, "{}").unwrap_err().to_string();
            assert!(e.contains("organization id"), "{org}: {e}");
        }
        // The stored policy is unchanged.
        assert!(p.get("acme").unwrap().block_unknown);
        let _ = std::fs::remove_dir_all(&d);
    }
}
