//! The hardening table of `gatehouse status` and the desktop app's security
//! panel, and the isolation audit's check rows.
//!
//! **Owns:** [`ProcessRow`] (one process's hardening: what it reports about
//! itself completed with what `/proc` shows), building the rows from the
//! daemons' `Status` answers ([`process_rows`]), judging each layer
//! ([`ProcessRow::layers`]: in force only when it really is), and the row
//! format of `gatehouse audit isolation --json` ([`Check`]).
//!
//! **Must never:** call a layer in force that is unknown, partial or off
//! (that is [`LayerState::Unknown`] / [`LayerState::Off`], with the reason),
//! or talk to a daemon itself (callers gather the statuses their own way:
//! the CLI blocking, the app async).

use gatehouse_ipc::broker::{BrokerStatus, Hardening};
use gatehouse_ipc::copilotd::CopilotStatus;
use gatehouse_ipc::sessiond::SessiondStatus;
use serde::{Deserialize, Serialize};

use crate::hardening::{ProcessHardening, Rlim, SeccompMode, inspect_pid};

/// One process in `gatehouse status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRow {
    /// Executable name (`gatehouse-broker`).
    pub process: String,
    /// Process id.
    pub pid: i32,
    /// Effective uid, when known.
    pub uid: Option<u32>,
    /// Its role (`broker`, `sessiond`, `copilotd`, `ui`, `supervisor`).
    pub role: String,
    /// `PR_GET_DUMPABLE` (exact for a daemon's self-report and for this process).
    pub dumpable: Option<bool>,
    /// `NoNewPrivs`.
    pub no_new_privs: Option<bool>,
    /// `filter (2)`, `strict (1)`, `off (0)` or `?`.
    pub seccomp: String,
    /// As the process reports it (`applied (ABI 6)`, `not applied`, `DEGRADED: …`);
    /// `-` or empty when the process does not report it.
    pub landlock: String,
    /// The memory keys live in (`memfd_secret`, `mlock+dontdump`, `none`, `-`).
    pub secret_memory: String,
    /// Soft `RLIMIT_CORE` (bytes, `unlimited`, `?`).
    pub core_limit: String,
}

/// The seccomp column's text for a mode.
pub fn seccomp_name(m: Option<SeccompMode>) -> String {
    match m {
        Some(SeccompMode::Filter) => "filter (2)".into(),
        Some(SeccompMode::Strict) => "strict (1)".into(),
        Some(SeccompMode::Disabled) => "off (0)".into(),
        None => "?".into(),
    }
}

/// A row from what the kernel shows of a process (`/proc`): for processes
/// that do not report their own hardening (the supervisor, the app itself
/// through [`crate::hardening::inspect_self`]).
pub fn kernel_row(process: &str, role: &str, h: &ProcessHardening) -> ProcessRow {
    ProcessRow {
        process: process.into(),
        pid: h.pid,
        uid: h.euid,
        role: role.into(),
        dumpable: h.dumpable,
        no_new_privs: h.no_new_privs,
        seccomp: seccomp_name(h.seccomp),
        landlock: "-".into(),
        secret_memory: "-".into(),
        core_limit: match h.core_limit {
            Some(Rlim::Bytes(b)) => b.to_string(),
            Some(Rlim::Unlimited) => "unlimited".into(),
            None => "?".into(),
        },
    }
}

/// A daemon's row: what the kernel shows in /proc, completed with what the
/// daemon reports about itself (it knows its dumpable flag exactly).
pub fn daemon_row(process: &str, role: &str, pid: u32, h: &Hardening) -> ProcessRow {
    let mut r = match inspect_pid(pid as i32) {
        Ok(k) => kernel_row(process, role, &k),
        Err(_) => ProcessRow {
            process: process.into(),
            pid: pid as i32,
            uid: None,
            role: role.into(),
            dumpable: None,
            no_new_privs: None,
            seccomp: "?".into(),
            landlock: String::new(),
            secret_memory: String::new(),
            core_limit: String::new(),
        },
    };
    r.dumpable = Some(h.dumpable);
    r.landlock = h.landlock.clone();
    r.secret_memory = if h.secret_memory.is_empty() {
        "-".into()
    } else {
        h.secret_memory.clone()
    };
    r.core_limit = if h.core_limit == u64::MAX {
        "unlimited".into()
    } else {
        h.core_limit.to_string()
    };
    r
}

/// The daemons' rows from their `Status` answers (those that answered), in
/// the order broker, sessiond, copilotd, syncd.
pub fn process_rows(
    broker: Option<&BrokerStatus>,
    sessiond: Option<&SessiondStatus>,
    copilotd: Option<&CopilotStatus>,
    syncd: Option<&gatehouse_ipc::syncd::SyncStatus>,
) -> Vec<ProcessRow> {
    let mut rows = Vec::new();
    if let Some(s) = broker {
        let mut r = daemon_row("gatehouse-broker", "broker", s.pid, &s.hardening);
        r.uid = Some(s.uid);
        rows.push(r);
    }
    if let Some(s) = sessiond {
        rows.push(daemon_row(
            "gatehouse-sessiond",
            "sessiond",
            s.pid,
            &s.hardening,
        ));
    }
    if let Some(s) = copilotd {
        rows.push(daemon_row(
            "gatehouse-copilotd",
            "copilotd",
            s.pid,
            &s.hardening,
        ));
    }
    if let Some(s) = syncd {
        rows.push(daemon_row("gatehouse-syncd", "syncd", s.pid, &s.hardening));
    }
    rows
}

/// Whether a layer is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerState {
    /// Really in force (the only state to show as good).
    InForce,
    /// Off, partial or degraded.
    Off,
    /// Not known (not reported, unreadable).
    Unknown,
    /// The process does not use this layer (e.g. secret memory in a process that holds no keys).
    NotUsed,
}

/// One layer of one process, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerVerdict {
    /// `dumpable`, `no_new_privs`, `seccomp`, `landlock`, `core dumps`, `secret memory`.
    pub layer: &'static str,
    /// The value as reported.
    pub value: String,
    /// The judgement.
    pub state: LayerState,
    /// Why (always set when not in force).
    pub reason: String,
}

fn verdict(layer: &'static str, value: &str, state: LayerState, reason: &str) -> LayerVerdict {
    LayerVerdict {
        layer,
        value: if value.is_empty() {
            "-".into()
        } else {
            value.into()
        },
        state,
        reason: reason.into(),
    }
}

impl ProcessRow {
    /// Each hardening layer of this process, judged: in force only when the
    /// value says so exactly.
    pub fn layers(&self) -> Vec<LayerVerdict> {
        use LayerState::*;
        let yes_no = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let dumpable = match self.dumpable {
            Some(false) => verdict("dumpable", "no", InForce, "PR_SET_DUMPABLE=0"),
            Some(true) => verdict(
                "dumpable",
                "yes",
                Off,
                "dumpable: same-uid processes may ptrace it or read its memory",
            ),
            None => verdict("dumpable", "?", Unknown, "not reported and not inferable"),
        };
        let nnp = match self.no_new_privs {
            Some(true) => verdict("no_new_privs", "yes", InForce, ""),
            Some(false) => verdict("no_new_privs", "no", Off, "NoNewPrivs: 0"),
            None => verdict(
                "no_new_privs",
                yes_no(None),
                Unknown,
                "/proc status unreadable",
            ),
        };
        let seccomp = match self.seccomp.as_str() {
            "filter (2)" => verdict("seccomp", &self.seccomp, InForce, ""),
            "?" | "" => verdict("seccomp", &self.seccomp, Unknown, "/proc status unreadable"),
            _ => verdict("seccomp", &self.seccomp, Off, "no seccomp filter installed"),
        };
        let l = self.landlock.as_str();
        let landlock = if l.starts_with("applied") && !l.contains("partial") {
            verdict("landlock", l, InForce, "")
        } else if l.starts_with("applied") {
            verdict(
                "landlock",
                l,
                Off,
                "partial: this kernel does not enforce every requested right",
            )
        } else if l.is_empty() || l == "-" {
            verdict(
                "landlock",
                l,
                Unknown,
                "not reported by the process, and the kernel does not expose it",
            )
        } else {
            verdict("landlock", l, Off, l)
        };
        let core = match self.core_limit.as_str() {
            "0" => verdict("core dumps", "off (0)", InForce, "RLIMIT_CORE=0"),
            "?" | "" => verdict("core dumps", "?", Unknown, "core limit unreadable"),
            c => verdict(
                "core dumps",
                c,
                Off,
                &format!("RLIMIT_CORE={c}: a crash may write memory to disk"),
            ),
        };
        let m = self.secret_memory.as_str();
        let memory = match m {
            "memfd_secret" => verdict(
                "secret memory",
                m,
                InForce,
                "keys in memfd_secret: unmapped from the kernel",
            ),
            "none" => verdict(
                "secret memory",
                m,
                NotUsed,
                "holds no long-lived keys (they stay in the broker)",
            ),
            "" | "-" => verdict("secret memory", m, Unknown, "not reported by this process"),
            other => verdict(
                "secret memory",
                other,
                Off,
                "fallback: memfd_secret unavailable (mlocked, excluded from dumps only)",
            ),
        };
        vec![dumpable, nnp, seccomp, landlock, core, memory]
    }
}

/// The broker's keychain backend, judged: in force only for a durable
/// backend without a warning.
pub fn keychain_verdict(s: &BrokerStatus) -> LayerVerdict {
    match &s.keychain_warning {
        Some(w) => verdict("keychain backend", &s.keychain_backend, LayerState::Off, w),
        None if s.keychain_backend == "secret-service" => verdict(
            "keychain backend",
            &s.keychain_backend,
            LayerState::InForce,
            "Secret Service",
        ),
        None => verdict(
            "keychain backend",
            &s.keychain_backend,
            LayerState::Unknown,
            "unrecognised backend",
        ),
    }
}

/// The result of one isolation check.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The check ran and passed.
    Pass,
    /// The check ran and failed.
    Fail,
    /// The check could not be performed (the detail says why).
    Skip,
}

/// One row of `gatehouse audit isolation` (`--json` prints an array of them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// Its result.
    pub outcome: Outcome,
    /// The evidence, or why it was skipped.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ProcessRow {
        ProcessRow {
            process: "p".into(),
            pid: 1,
            uid: Some(1000),
            role: "broker".into(),
            dumpable: Some(false),
            no_new_privs: Some(true),
            seccomp: "filter (2)".into(),
            landlock: "applied (ABI 6)".into(),
            secret_memory: "memfd_secret".into(),
            core_limit: "0".into(),
        }
    }

    fn state(r: &ProcessRow, layer: &str) -> LayerState {
        r.layers()
            .into_iter()
            .find(|l| l.layer == layer)
            .map(|l| l.state)
            .expect("layer")
    }

    #[test]
    fn only_exact_values_are_in_force() {
        let r = row();
        assert!(r.layers().iter().all(|l| l.state == LayerState::InForce));
        let mut r = row();
        r.dumpable = None;
        r.landlock = "applied (ABI 3, partial)".into();
        r.seccomp = "off (0)".into();
        r.secret_memory = "mlock+dontdump".into();
        r.core_limit = "unlimited".into();
        assert_eq!(state(&r, "dumpable"), LayerState::Unknown);
        assert_eq!(state(&r, "landlock"), LayerState::Off);
        assert_eq!(state(&r, "seccomp"), LayerState::Off);
        assert_eq!(state(&r, "secret memory"), LayerState::Off);
        assert_eq!(state(&r, "core dumps"), LayerState::Off);
        r.landlock = "-".into();
        r.dumpable = Some(true);
        assert_eq!(state(&r, "landlock"), LayerState::Unknown);
        assert_eq!(state(&r, "dumpable"), LayerState::Off);
        r.landlock = "DEGRADED: no kernel support".into();
        assert_eq!(state(&r, "landlock"), LayerState::Off);
        for l in r.layers() {
            if l.state != LayerState::InForce {
                assert!(!l.reason.is_empty(), "{l:?} has no reason");
            }
        }
    }
}
