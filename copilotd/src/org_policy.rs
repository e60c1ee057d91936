//! Organization policy files as copilotd reads them:
//! `<data>/org-policy/<org id>.json` (the same files sessiond reads), for the
//! tools copilotd gates itself (MCP tools: classes and blocks).
//!
//! Owns only reading and parsing. Must never: write a policy, treat an
//! unreadable or malformed file as "no policy" (that would drop the org's
//! blocks: the caller refuses instead), or honour `allow` (pre-approval
//! would need a signed policy; copilotd clears it as sessiond does).

use std::path::{Path, PathBuf};

use gatehouse_policy::OrgPolicy;

/// Where organization policies live (`<data>/org-policy/`).
pub fn dir(data_root: &Path) -> PathBuf {
    data_root.join("org-policy")
}

/// An org's policy; no file means an empty policy. `Err` names the file and
/// what is wrong with it.
pub fn load(data_root: &Path, org: &str) -> Result<OrgPolicy, String> {
    if org.is_empty() || org.contains(['/', '\0']) || org.starts_with('.') {
        return Err(format!("org id {org:?} cannot name a policy file"));
    }
    let path = dir(data_root).join(format!("{org}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OrgPolicy::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut policy: OrgPolicy =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    policy.allow.clear();
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_empty_malformed_is_an_error_and_allow_is_dropped() {
        let root = std::env::temp_dir().join(format!("gh-orgpol-{}", std::process::id()));
        std::fs::create_dir_all(dir(&root)).unwrap();
        assert_eq!(load(&root, "o1").unwrap(), OrgPolicy::default());
        std::fs::write(dir(&root).join("o2.json"), "{not json").unwrap();
        assert!(load(&root, "o2").unwrap_err().contains("o2.json"));
        std::fs::write(
            dir(&root).join("o3.json"),
            r#"{"allow":[{"id":"a","vendor":null,"kind":{"kind":"exact","value":"x"}}],"mcp_tools":{"s/t":"read-only"}}"#,
        )
        .unwrap();
        let p = load(&root, "o3").unwrap();
        assert!(p.allow.is_empty());
        assert_eq!(p.mcp_tools.len(), 1);
        assert!(load(&root, "../o3").is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
