//! Autopilot grants: a person's consent for copilotd to have device commands
//! approved without asking, inside bounds the person set (organization,
//! hosts, number of approvals, time), and only where org policy permits.
//!
//! Owns the grants and the one decision "may this action be auto-approved
//! under this grant?", which spends one step when it says yes. The broker,
//! not copilotd, keeps the count and the clock, so a copilotd that ignores
//! its bounds still gets nothing past them.
//! Must never: auto-approve a dangerous command, an unknown one without an
//! explicit org allow rule, anything org policy blocks, a command for a host
//! or organization outside the grant, anything but a device command, or
//! anything once the grant is spent, expired or ended. Every "no" here means
//! "a person decides", never "refused".

use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{
    AUTOPILOT_MAX_SECONDS, AUTOPILOT_MAX_STEPS, Action, AutopilotBound, BrokerError, Requester,
};
#[cfg(test)]
use gatehouse_policy::safe_org_id;
use gatehouse_policy::{Class, OrgOutcome, OrgPolicy, Vendor, apply_org_policy, classify};
use std::collections::HashMap;

/// Most live grants at once (old ones are dropped first).
const MAX_GRANTS: usize = 64;

struct Grant {
    bound: AutopilotBound,
    expires_ms: u64,
    steps_used: u32,
    granted_by: Requester,
}

/// What the broker does with one action asked for under a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoDecision {
    /// Approve now; `rule` says what permitted it (for the approval view and audit).
    Approve { rule: String, granted_by: Requester },
    /// A person decides, for this reason.
    Person(String),
}

#[derive(Default)]
pub struct Grants {
    next_id: u64,
    grants: HashMap<u64, Grant>,
}

impl Grants {
    /// Records a person's grant; returns its id and expiry.
    pub fn grant(
        &mut self,
        bound: AutopilotBound,
        granted_by: Requester,
        now_ms: u64,
    ) -> Result<(u64, u64), BrokerError> {
        let invalid = |reason: &str| BrokerError::Invalid {
            what: "Autopilot bound".into(),
            reason: reason.into(),
        };
        if !gatehouse_policy::safe_org_id(&bound.org) {
            return Err(invalid("the organization id is not valid"));
        }
        if bound.hosts.is_empty() || bound.hosts.iter().any(|h| h.trim().is_empty()) {
            return Err(invalid("name at least one host, and no empty host names"));
        }
        if bound.max_steps == 0 || bound.max_steps > AUTOPILOT_MAX_STEPS {
            return Err(invalid(&format!(
                "steps must be between 1 and {AUTOPILOT_MAX_STEPS}"
            )));
        }
        if bound.seconds == 0 || bound.seconds > AUTOPILOT_MAX_SECONDS {
            return Err(invalid(&format!(
                "time must be between 1 s and {AUTOPILOT_MAX_SECONDS} s"
            )));
        }
        self.grants.retain(|_, g| g.expires_ms > now_ms);
        while self.grants.len() >= MAX_GRANTS {
            let Some(oldest) = self.grants.keys().min().copied() else {
                break;
            };
            self.grants.remove(&oldest);
        }
        self.next_id += 1;
        let id = self.next_id;
        let expires_ms = now_ms + bound.seconds * 1000;
        self.grants.insert(
            id,
            Grant {
                bound,
                expires_ms,
                steps_used: 0,
                granted_by,
            },
        );
        Ok((id, expires_ms))
    }

    /// Ends a grant early. Ending an unknown or expired grant is not an error.
    pub fn end(&mut self, id: u64) {
        self.grants.remove(&id);
    }

    /// Grants still running at `now_ms` (not ended, within their time bound).
    pub fn running(&self, now_ms: u64) -> usize {
        self.grants
            .values()
            .filter(|g| now_ms < g.expires_ms)
            .count()
    }

    /// Drops every grant (sign-out).
    pub fn clear(&mut self) {
        self.grants.clear();
    }

    /// Decides one action under grant `id`; `policy` is the action's org's
    /// policy. A "yes" spends one of the grant's steps.
    pub fn decide(
        &mut self,
        id: u64,
        action: &Action,
        policy: Result<&OrgPolicy, &str>,
        now_ms: u64,
    ) -> AutoDecision {
        let person = |why: &str| AutoDecision::Person(why.to_string());
        let Some(g) = self.grants.get_mut(&id) else {
            return person("no such Autopilot task (ended, or never started)");
        };
        if now_ms >= g.expires_ms {
            return person("the Autopilot task's time bound has passed");
        }
        if g.steps_used >= g.bound.max_steps {
            return person("the Autopilot task's step bound is reached");
        }
        if action.executor() != PeerRole::Sessiond {
            return person("Autopilot approves device commands only");
        }
        if action.org != g.bound.org {
            return person("the command's organization is outside the Autopilot task");
        }
        if !g.bound.hosts.contains(&action.host) {
            return person("the host is outside the Autopilot task's hosts");
        }
        let policy = match policy {
            Ok(p) => p,
            Err(e) => return AutoDecision::Person(format!("the org policy cannot be read: {e}")),
        };
        let Some(vendor) = Vendor::parse_platform(&action.vendor) else {
            return person("the host's platform has no classifier");
        };
        let verdict = apply_org_policy(policy, classify(vendor, &action.command));
        let outcome = verdict.org_policy.as_ref().map(|d| d.outcome);
        let rule = verdict.org_policy.as_ref().and_then(|d| d.rule_id.clone());
        let permitted = match (verdict.class, outcome) {
            (_, Some(OrgOutcome::Blocked)) => return person("org policy blocks this command"),
            (Class::Dangerous, _) => {
                return person("dangerous commands always need a person");
            }
            (_, Some(OrgOutcome::PreApproved)) => rule.unwrap_or_else(|| "org.allow".to_string()),
            (Class::ReadOnly, _) => "read-only".to_string(),
            (Class::Moderate, _) if policy.autopilot_moderate => {
                "org.autopilot-moderate".to_string()
            }
            (Class::Moderate, _) => {
                return person(
                    "org policy does not let Autopilot approve moderate commands (autopilot_moderate)",
                );
            }
            (Class::Unknown, _) => {
                return person(
                    "unknown commands are auto-approved only by an explicit org allow rule",
                );
            }
        };
        g.steps_used += 1;
        AutoDecision::Approve {
            rule: permitted,
            granted_by: g.granted_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_policy::{Pattern, PatternKind};

    fn person() -> Requester {
        Requester {
            role: PeerRole::Cli,
            pid: 10,
            exe: "/usr/bin/gatehouse".into(),
        }
    }

    fn bound(max_steps: u32, seconds: u64) -> AutopilotBound {
        AutopilotBound {
            org: "acme".into(),
            hosts: vec!["edge1".into()],
            max_steps,
            seconds,
        }
    }

    fn action(host: &str, command: &str) -> Action {
        Action {
            host: host.into(),
            vendor: "routeros".into(),
            org: "acme".into(),
            credential: None,
            command: command.into(),
            expected_effect: String::new(),
        }
    }

    fn permissive() -> OrgPolicy {
        OrgPolicy {
            autopilot_moderate: true,
            ..OrgPolicy::default()
        }
    }

    const MODERATE: &str = "/ip address add address=10.9.9.1/24 interface=ether2";

    fn approved(d: &AutoDecision) -> bool {
        matches!(d, AutoDecision::Approve { .. })
    }

    #[test]
    fn bounds_are_validated() {
        let mut g = Grants::default();
        for b in [
            bound(0, 60),
            bound(AUTOPILOT_MAX_STEPS + 1, 60),
            bound(3, 0),
            bound(3, AUTOPILOT_MAX_SECONDS + 1),
            AutopilotBound {
                hosts: vec![],
                ..bound(3, 60)
            },
            AutopilotBound {
                org: "../etc".into(),
                ..bound(3, 60)
            },
        ] {
            assert!(g.grant(b.clone(), person(), 0).is_err(), "{b:?}");
        }
        assert!(g.grant(bound(3, 60), person(), 0).is_ok());
    }

    #[test]
    fn steps_time_hosts_and_org_bound_every_approval() {
        let mut g = Grants::default();
        let p = permissive();
        let (id, exp) = g.grant(bound(2, 60), person(), 1_000).unwrap();
        assert_eq!(exp, 61_000);
        assert!(approved(&g.decide(
            id,
            &action("edge1", MODERATE),
            Ok(&p),
            2_000
        )));
        // Outside the hosts or the org: a person, and no step spent.
        assert!(!approved(&g.decide(
            id,
            &action("core9", MODERATE),
            Ok(&p),
            2_000
        )));
        let mut other_org = action("edge1", MODERATE);
        other_org.org = "other".into();
        assert!(!approved(&g.decide(id, &other_org, Ok(&p), 2_000)));
        assert!(approved(&g.decide(
            id,
            &action("edge1", MODERATE),
            Ok(&p),
            3_000
        )));
        // Step bound reached.
        assert_eq!(
            g.decide(id, &action("edge1", MODERATE), Ok(&p), 4_000),
            AutoDecision::Person("the Autopilot task's step bound is reached".into())
        );
        // Time bound.
        let (id2, _) = g.grant(bound(5, 1), person(), 10_000).unwrap();
        assert!(approved(&g.decide(
            id2,
            &action("edge1", MODERATE),
            Ok(&p),
            10_500
        )));
        assert!(!approved(&g.decide(
            id2,
            &action("edge1", MODERATE),
            Ok(&p),
            11_000
        )));
        // Ended.
        let (id3, _) = g.grant(bound(5, 60), person(), 0).unwrap();
        g.end(id3);
        assert!(!approved(&g.decide(
            id3,
            &action("edge1", MODERATE),
            Ok(&p),
            1
        )));
        assert!(!approved(&g.decide(
            999,
            &action("edge1", MODERATE),
            Ok(&p),
            1
        )));
    }

    #[test]
    fn only_what_org_policy_permits() {
        let mut g = Grants::default();
        let (id, _) = g.grant(bound(50, 60), person(), 0).unwrap();
        let none = OrgPolicy::default();
        let permissive = permissive();
        let allow_unknown = OrgPolicy {
            allow: vec![Pattern {
                id: "runbook-7".into(),
                vendor: None,
                kind: PatternKind::Exact(":execute script=x".into()),
            }],
            ..OrgPolicy::default()
        };
        let blocks = OrgPolicy {
            autopilot_moderate: true,
            block: vec![Pattern {
                id: "no-addresses".into(),
                vendor: None,
                kind: PatternKind::Prefix("/ip address".into()),
            }],
            ..OrgPolicy::default()
        };
        let reset = action("edge1", "/system reset-configuration");
        let cases: [(&OrgPolicy, &str, bool); 8] = [
            (&none, MODERATE, false),
            (&permissive, MODERATE, true),
            (&permissive, "/system reset-configuration", false),
            (&permissive, ":execute script=x", false),
            (&allow_unknown, ":execute script=x", true),
            (&allow_unknown, MODERATE, false),
            (&blocks, MODERATE, false),
            (&none, "/ip address print", true),
        ];
        for (policy, command, want) in cases {
            let d = g.decide(id, &action("edge1", command), Ok(policy), 1);
            assert_eq!(approved(&d), want, "{command}: {d:?}");
        }
        // Dangerous even when an org allow rule names it exactly.
        let allow_reset = OrgPolicy {
            allow: vec![Pattern {
                id: "reset".into(),
                vendor: None,
                kind: PatternKind::Exact("/system reset-configuration".into()),
            }],
            autopilot_moderate: true,
            ..OrgPolicy::default()
        };
        assert!(!approved(&g.decide(id, &reset, Ok(&allow_reset), 1)));
        // An unreadable policy: a person.
        assert!(!approved(&g.decide(
            id,
            &action("edge1", MODERATE),
            Err("bad json"),
            1
        )));
        // Not a device command.
        let mut api = action("edge1", "GET /x");
        api.vendor = "copilot:connector".into();
        assert!(!approved(&g.decide(id, &api, Ok(&permissive), 1)));
    }

    #[test]
    fn org_ids_cannot_name_other_files() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "a\0b"] {
            assert!(!safe_org_id(bad), "{bad:?}");
        }
        for good in ["acme", "org-1", "a.b_c"] {
            assert!(safe_org_id(good), "{good:?}");
        }
    }
}
