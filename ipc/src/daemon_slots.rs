//! Who holds each daemon role while the privilege boundary is on.
//!
//! Owns: the rule that a daemon role (sessiond, copilotd, …) goes only to a
//! process the supervisor started — a sibling of this server, i.e. the same
//! parent pid — and to one process per role at a time (the slot is held while
//! that process has a connection open).
//! Must never: hand a daemon role to a second process while the first one
//! still holds it, or decide anything from what the peer says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::peer::{PeerIdentity, PeerRole};

/// Why a daemon role was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaemonRefusal {
    #[error(
        "the {role} role is only for a daemon the supervisor started: pid {pid}'s parent is {ppid}, the supervisor is {supervisor}"
    )]
    NotSupervised {
        role: PeerRole,
        pid: i32,
        ppid: i32,
        supervisor: i32,
    },
    #[error("the {role} role is held by pid {holder}; pid {pid} refused (one process per role)")]
    Taken {
        role: PeerRole,
        holder: i32,
        pid: i32,
    },
}

/// The daemon roles in use: role → (pid, open connections).
pub struct DaemonSlots {
    held: Arc<Mutex<HashMap<PeerRole, (i32, usize)>>>,
    supervisor: i32,
}

/// Holds a daemon role for one connection; dropping it releases the slot
/// when the holder's last connection ends.
pub struct SlotGuard {
    held: Arc<Mutex<HashMap<PeerRole, (i32, usize)>>>,
    role: PeerRole,
}

impl DaemonSlots {
    /// Slots for a server whose parent (the supervisor) is `supervisor`.
    pub fn new(supervisor: i32) -> DaemonSlots {
        DaemonSlots {
            held: Arc::default(),
            supervisor,
        }
    }

    /// Slots for this process: the supervisor is our parent.
    pub fn for_this_process() -> DaemonSlots {
        DaemonSlots::new(nix::unistd::getppid().as_raw())
    }

    /// Claims `peer.role` for this connection (non-daemon roles pass freely).
    pub fn claim(&self, peer: &PeerIdentity) -> Result<Option<SlotGuard>, DaemonRefusal> {
        if !peer.role.is_daemon() {
            return Ok(None);
        }
        if peer.ppid != self.supervisor {
            return Err(DaemonRefusal::NotSupervised {
                role: peer.role,
                pid: peer.pid,
                ppid: peer.ppid,
                supervisor: self.supervisor,
            });
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let slot = held.entry(peer.role).or_insert((peer.pid, 0));
        if slot.1 > 0 && slot.0 != peer.pid {
            return Err(DaemonRefusal::Taken {
                role: peer.role,
                holder: slot.0,
                pid: peer.pid,
            });
        }
        *slot = (peer.pid, slot.1 + 1);
        Ok(Some(SlotGuard {
            held: self.held.clone(),
            role: peer.role,
        }))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = held.get_mut(&self.role) {
            slot.1 = slot.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(role: PeerRole, pid: i32, ppid: i32) -> PeerIdentity {
        PeerIdentity {
            uid: 1000,
            gid: 1000,
            pid,
            exe: role.binary_name().into(),
            role,
            pidfd_pinned: true,
            ppid,
        }
    }

    #[test]
    fn one_supervised_process_per_daemon_role() {
        let slots = DaemonSlots::new(10);
        let first = slots.claim(&peer(PeerRole::Sessiond, 20, 10)).unwrap();
        let again = slots.claim(&peer(PeerRole::Sessiond, 20, 10)).unwrap();
        assert!(matches!(
            slots.claim(&peer(PeerRole::Sessiond, 21, 10)),
            Err(DaemonRefusal::Taken { holder: 20, .. })
        ));
        assert!(matches!(
            slots.claim(&peer(PeerRole::Copilotd, 22, 1)),
            Err(DaemonRefusal::NotSupervised { ppid: 1, .. })
        ));
        assert!(slots.claim(&peer(PeerRole::Cli, 23, 1)).unwrap().is_none());
        drop(first);
        assert!(slots.claim(&peer(PeerRole::Sessiond, 21, 10)).is_err());
        drop(again);
        // The holder's last connection ended: a restarted daemon takes the role.
        assert!(slots.claim(&peer(PeerRole::Sessiond, 21, 10)).is_ok());
    }
}
