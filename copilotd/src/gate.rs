//! The copilot's gate: what happens to one tool call, given its class, the
//! org policy, the mode and the trust level.
//!
//! Owns one decision table, pure and tested cell by cell. The trust level
//! moves the threshold; the classifier moves the floor. Must never: let a
//! class above read-only run without an approval token, or run anything org
//! policy blocks. (Under Autopilot the approval request goes to the broker,
//! which approves at once only what the person's bounds and org policy
//! permit: see broker/src/autopilot.rs. Here Autonomous asks like
//! Supervised.)

use gatehouse_ipc::copilotd::{Mode, Trust};
use gatehouse_policy::Class;

/// What to do with one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run it now.
    Run,
    /// File an approval request and wait for a person.
    AskPerson,
    /// Do not run; show it to the person as a suggestion (Ask, Planning).
    Suggest,
    /// Do not run: blocked.
    Refuse(String),
}

/// The decision for a call of class `class` (`blocked`: org policy's reason).
pub fn decide(class: Class, blocked: Option<&str>, mode: Mode, trust: Trust) -> Verdict {
    if let Some(reason) = blocked {
        return Verdict::Refuse(format!("blocked by organization policy: {reason}"));
    }
    let read_only = class == Class::ReadOnly;
    match (mode, trust) {
        // Manual: a person sees every call, read-only too; in Ask/Planning
        // changes stay suggestions even then.
        (Mode::Default, Trust::Manual) => Verdict::AskPerson,
        (Mode::Ask | Mode::Planning, Trust::Manual) if read_only => Verdict::AskPerson,
        (Mode::Default, Trust::Supervised | Trust::Autonomous) if read_only => Verdict::Run,
        (Mode::Default, Trust::Supervised | Trust::Autonomous) => Verdict::AskPerson,
        (Mode::Ask | Mode::Planning, _) if read_only => Verdict::Run,
        (Mode::Ask | Mode::Planning, _) => Verdict::Suggest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell() {
        use Class::*;
        use Mode::*;
        use Trust::*;
        use Verdict::*;
        let table = [
            // (class, mode, trust) → verdict
            (ReadOnly, Default, Manual, AskPerson),
            (ReadOnly, Default, Supervised, Run),
            (ReadOnly, Default, Autonomous, Run),
            (Moderate, Default, Manual, AskPerson),
            (Moderate, Default, Supervised, AskPerson),
            (Moderate, Default, Autonomous, AskPerson),
            (Unknown, Default, Supervised, AskPerson),
            (Unknown, Default, Autonomous, AskPerson),
            (Dangerous, Default, Supervised, AskPerson),
            (Dangerous, Default, Autonomous, AskPerson),
            (ReadOnly, Ask, Manual, AskPerson),
            (ReadOnly, Ask, Supervised, Run),
            (Moderate, Ask, Manual, Suggest),
            (Moderate, Ask, Supervised, Suggest),
            (Dangerous, Ask, Autonomous, Suggest),
            (ReadOnly, Planning, Supervised, Run),
            (Moderate, Planning, Supervised, Suggest),
            (Dangerous, Planning, Manual, Suggest),
            (Unknown, Planning, Autonomous, Suggest),
        ];
        for (class, mode, trust, want) in table {
            assert_eq!(
                decide(class, None, mode, trust),
                want,
                "{class:?} {mode:?} {trust:?}"
            );
        }
    }

    #[test]
    fn nothing_above_read_only_ever_runs_without_a_person() {
        for class in [Class::Moderate, Class::Unknown, Class::Dangerous] {
            for mode in [Mode::Default, Mode::Ask, Mode::Planning] {
                for trust in [Trust::Manual, Trust::Supervised, Trust::Autonomous] {
                    assert_ne!(decide(class, None, mode, trust), Verdict::Run);
                }
            }
        }
    }

    #[test]
    fn org_blocks_win_everywhere() {
        for class in [Class::ReadOnly, Class::Dangerous] {
            for trust in [Trust::Manual, Trust::Autonomous] {
                assert!(matches!(
                    decide(class, Some("no reloads"), Mode::Default, trust),
                    Verdict::Refuse(r) if r.contains("no reloads")
                ));
            }
        }
    }
}
