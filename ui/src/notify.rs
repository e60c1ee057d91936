//! Desktop notifications: one freedesktop notification
//! (`org.freedesktop.Notifications.Notify` on the session bus) per approval
//! request that arrives while the window does not have focus.
//!
//! Owns: which requests were announced ([`Announcer`]), the notification's
//! text ([`notice`]) and sending it over D-Bus ([`send`], zbus, one
//! connection per notification). Must never: put a command, a credential
//! or any field value in a notification (it names the host, the
//! organization and the class only: notification daemons log and show it
//! on a lock screen), announce one request twice, or announce a request
//! that arrived while the person was looking at the window.

use std::collections::{BTreeSet, HashMap};

use gatehouse_ipc::broker::{ApprovalState, ApprovalView, OrgInfo};

/// The bus name, object path and interface of the notification service.
pub const SERVICE: &str = "org.freedesktop.Notifications";
pub const PATH: &str = "/org/freedesktop/Notifications";
/// The application name notifications carry.
pub const APP_NAME: &str = "Gatehouse";

/// One notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The approval request it announces.
    pub approval: u64,
    pub summary: String,
    pub body: String,
}

/// The notification of request `v`: its host, its organization's name and
/// its class; nothing of the command.
pub fn notice(v: &ApprovalView, orgs: &[OrgInfo]) -> Notice {
    let org = crate::approval::org_name(orgs, &v.action.org);
    Notice {
        approval: v.id,
        summary: format!("Approval needed: {} change on {}", v.class, v.action.host),
        body: format!(
            "Request #{} on host {} in organization {} ({} class) waits for your decision in Gatehouse.",
            v.id, v.action.host, org, v.class
        ),
    }
}

/// Which requests to announce: those whose `ApprovalPending` event came
/// while the window had no focus, each once.
#[derive(Debug, Default)]
pub struct Announcer {
    /// Arrived unfocused, not yet listed.
    waiting: BTreeSet<u64>,
    /// Already announced (never again).
    announced: BTreeSet<u64>,
    /// The last failure to notify (said once on stderr, kept for the status).
    pub error: Option<String>,
}

impl Announcer {
    /// Request `id` arrived; `focused`: the window had keyboard focus.
    pub fn arrived(&mut self, id: u64, focused: bool) {
        if !focused && !self.announced.contains(&id) {
            self.waiting.insert(id);
        }
    }

    /// The approvals list came: the notifications to send now (requests
    /// that arrived unfocused and are still pending).
    pub fn listed(&mut self, pending: &[ApprovalView], orgs: &[OrgInfo]) -> Vec<Notice> {
        let mut out = Vec::new();
        for v in pending {
            if v.state == ApprovalState::Pending
                && self.waiting.remove(&v.id)
                && self.announced.insert(v.id)
            {
                out.push(notice(v, orgs));
            }
        }
        // A request decided before it was listed is not announced.
        let listed: BTreeSet<u64> = pending.iter().map(|v| v.id).collect();
        self.waiting.retain(|id| listed.contains(id));
        out
    }

    /// Sending failed: kept, and said on stderr the first time.
    pub fn failed(&mut self, e: String) {
        if self.error.is_none() {
            eprintln!("gatehouse-ui: desktop notification failed: {e}");
        }
        self.error = Some(e);
    }

    /// Sign-out: nothing of the session is kept.
    pub fn clear(&mut self) {
        *self = Announcer::default();
    }
}

/// Sends `n` to the session bus's notification service; its notification id.
pub async fn send(n: Notice) -> Result<u32, String> {
    let conn = zbus::Connection::session()
        .await
        .map_err(|e| format!("cannot reach the session bus: {e}"))?;
    let actions: Vec<&str> = Vec::new();
    let hints: HashMap<&str, zbus::zvariant::Value<'_>> =
        HashMap::from([("urgency", zbus::zvariant::Value::U8(1))]);
    let reply = conn
        .call_method(
            Some(SERVICE),
            PATH,
            Some(SERVICE),
            "Notify",
            &(
                APP_NAME,
                0u32,
                "",
                n.summary.as_str(),
                n.body.as_str(),
                actions,
                hints,
                -1i32,
            ),
        )
        .await
        .map_err(|e| format!("{SERVICE}.Notify: {e}"))?;
    reply
        .body()
        .deserialize::<u32>()
        .map_err(|e| format!("{SERVICE}.Notify answered something else: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_ipc::broker::{Action, Requester};

    fn view(id: u64, state: ApprovalState) -> ApprovalView {
        ApprovalView {
            id,
            action: Action {
                host: "r1".into(),
                vendor: "routeros".into(),
                org: "org-id-1".into(),
                credential: Some("keychain:r1".into()),
                command: "/user set admin password=hunter2".into(),
                expected_effect: String::new(),
            },
            requester: Requester {
                role: gatehouse_ipc::PeerRole::Cli,
                pid: 1,
                exe: "gatehouse".into(),
            },
            class: "moderate".into(),
            reasons: vec![],
            state,
            created_ms: 0,
            decided_by: None,
            replaced_by: None,
            reject_reason: None,
            autopilot: None,
        }
    }

    fn orgs() -> Vec<OrgInfo> {
        vec![OrgInfo {
            id: "org-id-1".into(),
            name: "lab".into(),
            key_id: String::new(),
            created_ms: 0,
        }]
    }

    #[test]
    fn announces_once_only_what_arrived_unfocused_and_never_the_command() {
        let mut a = Announcer::default();
        a.arrived(1, true);
        a.arrived(2, false);
        a.arrived(2, false);
        let out = a.listed(
            &[
                view(1, ApprovalState::Pending),
                view(2, ApprovalState::Pending),
            ],
            &orgs(),
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].approval, 2);
        assert!(out[0].body.contains("r1") && out[0].body.contains("organization lab"));
        assert!(out[0].body.contains("moderate"));
        assert!(!out[0].body.contains("org-id-1"), "names, not ids");
        for text in [&out[0].summary, &out[0].body] {
            assert!(!text.contains("hunter2") && !text.contains("password"));
        }
        // Listed again, or its event repeated: no second notification.
        a.arrived(2, false);
        assert!(
            a.listed(&[view(2, ApprovalState::Pending)], &orgs())
                .is_empty()
        );
    }
}
