//! What the session log says about each host: when a session last reached
//! it (last connected) and how the last connection attempt went
//! (reachability), for the host list's columns.
//!
//! Owns: reducing the session audit rows (`gatehouse_ipc::audit::sessions`)
//! to one [`Seen`] per host. Must never: open a row's sealed command (only
//! the plaintext metadata is read), or claim a host reachable that no row
//! shows reached.

use std::collections::HashMap;

use gatehouse_ipc::audit::sessions::{AuditRow, Outcome};

/// The last connection attempt's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub reachable: bool,
    pub at_ms: u64,
    /// Why it failed (unreachable only).
    pub why: Option<String>,
}

/// One host as the session log saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The newest time a session reached it (a command sent, a shell typed
    /// into, a session ended), Unix ms.
    pub last_connected: Option<u64>,
    pub reach: Option<Reach>,
}

/// Per host (its record id, and its name), what the rows show. Gate
/// refusals are no connection attempt and are skipped.
pub fn from_rows(rows: &[AuditRow]) -> HashMap<String, Seen> {
    let mut out: HashMap<String, Seen> = HashMap::new();
    for r in rows {
        let (reachable, why) = match &r.outcome {
            Outcome::Refused { .. } => continue,
            Outcome::Failed { reason } => (false, Some(reason.clone())),
            Outcome::Started | Outcome::Typed | Outcome::Exited { .. } => (true, None),
        };
        let keys = std::iter::once(r.host.clone()).chain(r.host_id.clone());
        for k in keys.filter(|k| !k.is_empty()) {
            let s = out.entry(k).or_default();
            if reachable && s.last_connected.is_none_or(|t| r.time_ms >= t) {
                s.last_connected = Some(r.time_ms);
            }
            if s.reach.as_ref().is_none_or(|x| r.time_ms >= x.at_ms) {
                s.reach = Some(Reach {
                    reachable,
                    at_ms: r.time_ms,
                    why: why.clone(),
                });
            }
        }
    }
    out
}

/// Reads the session log of `layout` (damaged lines are skipped: the
/// audit screen names them).
pub fn load(layout: &gatehouse_ipc::Layout) -> Result<HashMap<String, Seen>, String> {
    gatehouse_ipc::audit::sessions::read(&layout.root)
        .map(|(rows, _)| from_rows(&rows))
        .map_err(|e| format!("cannot read the session log: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_ipc::PeerRole;
    use gatehouse_ipc::broker::Requester;

    fn row(host: &str, t: u64, outcome: Outcome) -> AuditRow {
        AuditRow {
            id: format!("{host}{t}"),
            time_ms: t,
            session: None,
            kind: "exec".into(),
            requester: Requester {
                role: PeerRole::Cli,
                pid: 1,
                exe: "gatehouse".into(),
            },
            approver: None,
            approval_id: None,
            class: "read-only".into(),
            host: host.into(),
            host_id: Some(format!("id-{host}")),
            org: "o".into(),
            outcome,
            recording: None,
            command_sealed: String::new(),
        }
    }

    #[test]
    fn newest_reach_wins_and_refusals_are_no_attempt() {
        let rows = vec![
            row("r1", 10, Outcome::Started),
            row(
                "r1",
                20,
                Outcome::Failed {
                    reason: "connection refused".into(),
                },
            ),
            row(
                "r1",
                30,
                Outcome::Refused {
                    reason: "policy".into(),
                },
            ),
            row(
                "r2",
                5,
                Outcome::Failed {
                    reason: "timeout".into(),
                },
            ),
            row("r2", 7, Outcome::Typed),
        ];
        let s = from_rows(&rows);
        let r1 = &s["r1"];
        assert_eq!(r1.last_connected, Some(10));
        let reach = r1.reach.as_ref().unwrap();
        assert!(!reach.reachable && reach.at_ms == 20);
        assert_eq!(reach.why.as_deref(), Some("connection refused"));
        assert_eq!(s["id-r1"], *r1, "by record id too");
        let r2 = &s["r2"];
        assert_eq!(r2.last_connected, Some(7));
        assert!(r2.reach.as_ref().unwrap().reachable);
        assert!(!s.contains_key("r3"));
    }
}
