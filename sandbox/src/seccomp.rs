//! seccomp-bpf: the syscall-table data model and its compilation and installation.
//!
//! **Owns:** [`SeccompPolicy`] (a default action plus one [`SyscallRule`] per syscall, each with
//! its reason), validation of such a table, compilation to BPF with `seccompiler`, and
//! installation on every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`).
//!
//! **Must never:** contain a profile's table (tables live in [`crate::profile`], where they are
//! reviewed), or install a filter whose default action is `Allow`.
//!
//! # How a table becomes filters
//!
//! `seccompiler` gives one filter a single "match" and a single "mismatch" action, so a table
//! compiles to several stacked filters:
//!
//! 1. (installed last) the **allowlist** filter: every `Allow` rule (with its argument conditions) returns
//!    ALLOW, everything else returns the table's default action (EPERM for Gatehouse
//!    profiles); syscalls whose rule is not `Allow` are let through here unconditionally so
//!    that the next filters decide;
//! 2. (installed first) one filter per other action (`KillProcess`, `Errno(ENOSYS)`, ...), matching exactly the
//!    syscalls with that action and returning ALLOW for everything else.
//!
//! The kernel runs every filter and keeps the most severe verdict
//! (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > ... > ALLOW), so the result is exactly what the
//! table says. Each filter first checks the audit architecture and kills the process on a
//! mismatch (no i386 `int 0x80` bypass). Non-`Allow` rules must be unconditional (validated),
//! otherwise a non-matching call would fall through to ALLOW in the action filter.
//! `/proc/PID/status` therefore shows `Seccomp_filters: 1 + number of distinct non-Allow actions`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::Serialize;

use crate::{Layer, SandboxError};

/// What the kernel does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallAction {
    /// Let it run.
    Allow,
    /// Fail it with this errno without running it.
    Errno(i32),
    /// Kill the whole process (it dies of SIGSYS). Reserved for syscalls that only an
    /// exploited process would make.
    KillProcess,
}

impl SyscallAction {
    fn to_seccompiler(self) -> SeccompAction {
        match self {
            SyscallAction::Allow => SeccompAction::Allow,
            SyscallAction::Errno(e) => SeccompAction::Errno(e as u32),
            SyscallAction::KillProcess => SeccompAction::KillProcess,
        }
    }
}

/// A value an argument is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgValue {
    /// A constant.
    Const(u64),
    /// The process id of the process that installs the filter (resolved at [`install`] time),
    /// e.g. "`kill` only to itself".
    SelfPid,
}

/// How an argument is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgOp {
    /// `arg == value`.
    Eq,
    /// `arg != value`.
    Ne,
    /// `arg & mask == value`.
    MaskedEq(u64),
}

/// One comparison on one syscall argument (64-bit compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgCheck {
    /// Argument index, 0..=5.
    pub arg: u8,
    /// Comparison.
    pub op: ArgOp,
    /// Right-hand side.
    pub value: ArgValue,
}

impl ArgCheck {
    /// `arg == value`.
    pub const fn eq(arg: u8, value: u64) -> Self {
        ArgCheck {
            arg,
            op: ArgOp::Eq,
            value: ArgValue::Const(value),
        }
    }
    /// `arg & mask == value`.
    pub const fn masked_eq(arg: u8, mask: u64, value: u64) -> Self {
        ArgCheck {
            arg,
            op: ArgOp::MaskedEq(mask),
            value: ArgValue::Const(value),
        }
    }
    /// `arg == getpid()` of the installing process.
    pub const fn self_pid(arg: u8) -> Self {
        ArgCheck {
            arg,
            op: ArgOp::Eq,
            value: ArgValue::SelfPid,
        }
    }
}

/// One row of a syscall table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyscallRule {
    /// Syscall name (for review and reports).
    pub name: &'static str,
    /// Syscall number on this architecture.
    pub nr: i64,
    /// What happens when the conditions hold (or always, when `when` is empty).
    pub action: SyscallAction,
    /// Argument conditions: the rule applies when ANY inner list matches in full (OR of ANDs).
    /// Empty = unconditional. When no alternative matches, the table's default action applies.
    pub when: Vec<Vec<ArgCheck>>,
    /// Why this syscall is in the table: the review comment.
    pub why: &'static str,
}

/// A complete syscall policy: the table plus the action for everything not in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompPolicy {
    /// Action for syscalls not in the table, or whose conditions do not match.
    pub default_action: SyscallAction,
    /// The table.
    pub rules: Vec<SyscallRule>,
}

impl SeccompPolicy {
    /// Check the table: no duplicate syscall, no `Allow` default, conditions only on `Allow`
    /// rules, argument indexes 0..=5.
    pub fn validate(&self) -> Result<(), SandboxError> {
        if self.default_action == SyscallAction::Allow {
            return Err(SandboxError::InvalidProfile(
                "seccomp default action must not be Allow".into(),
            ));
        }
        let mut seen = BTreeMap::new();
        for r in &self.rules {
            if let Some(prev) = seen.insert(r.nr, r.name) {
                return Err(SandboxError::InvalidProfile(format!(
                    "syscall {} (nr {}) listed twice (also as {prev})",
                    r.name, r.nr
                )));
            }
            if r.action != SyscallAction::Allow && !r.when.is_empty() {
                return Err(SandboxError::InvalidProfile(format!(
                    "syscall {}: only Allow rules may have argument conditions",
                    r.name
                )));
            }
            if r.when.iter().any(|alt| alt.is_empty()) {
                return Err(SandboxError::InvalidProfile(format!(
                    "syscall {}: empty condition alternative",
                    r.name
                )));
            }
            if r.when.iter().flatten().any(|c| c.arg > 5) {
                return Err(SandboxError::InvalidProfile(format!(
                    "syscall {}: argument index > 5",
                    r.name
                )));
            }
        }
        Ok(())
    }

    /// The rule for a syscall name, if listed.
    pub fn rule(&self, name: &str) -> Option<&SyscallRule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Compile to BPF programs, in installation order. `self_pid` resolves
    /// [`ArgValue::SelfPid`].
    pub fn compile(&self, self_pid: i32) -> Result<Vec<BpfProgram>, SandboxError> {
        self.validate()?;
        let arch = target_arch()?;
        let err = |e: seccompiler::BackendError| SandboxError::InvalidProfile(e.to_string());
        let cond = |c: &ArgCheck| -> Result<SeccompCondition, SandboxError> {
            let value = match c.value {
                ArgValue::Const(v) => v,
                ArgValue::SelfPid => self_pid as u64,
            };
            let op = match c.op {
                ArgOp::Eq => SeccompCmpOp::Eq,
                ArgOp::Ne => SeccompCmpOp::Ne,
                ArgOp::MaskedEq(m) => SeccompCmpOp::MaskedEq(m),
            };
            SeccompCondition::new(c.arg, SeccompCmpArgLen::Qword, op, value).map_err(err)
        };

        let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        let mut others: BTreeMap<SyscallAction, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
        for r in &self.rules {
            if r.action == SyscallAction::Allow {
                let mut chain = Vec::new();
                for alt in &r.when {
                    let conds = alt.iter().map(cond).collect::<Result<Vec<_>, _>>()?;
                    chain.push(SeccompRule::new(conds).map_err(err)?);
                }
                allow.insert(r.nr, chain);
            } else {
                // Let it through the allowlist filter; its own filter decides.
                allow.insert(r.nr, Vec::new());
                others.entry(r.action).or_default().insert(r.nr, Vec::new());
            }
        }
        // Action filters first, the allowlist last: once the allowlist is in place, `seccomp`
        // and `prctl(PR_SET_NO_NEW_PRIVS)` themselves are refused, so it must be the final one.
        let mut progs = Vec::new();
        for (action, rules) in others {
            let f = SeccompFilter::new(rules, SeccompAction::Allow, action.to_seccompiler(), arch)
                .map_err(err)?;
            progs.push(BpfProgram::try_from(f).map_err(err)?);
        }
        let f = SeccompFilter::new(
            allow,
            self.default_action.to_seccompiler(),
            SeccompAction::Allow,
            arch,
        )
        .map_err(err)?;
        progs.push(BpfProgram::try_from(f).map_err(err)?);
        Ok(progs)
    }
}

fn target_arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| SandboxError::InvalidProfile(format!("seccomp: {e}")))
}

/// Compile `policy` and install it on every thread of the process (TSYNC). Sets
/// `no_new_privs` (required by the kernel for unprivileged filters). Returns the number of
/// filters installed.
pub fn install(policy: &SeccompPolicy) -> Result<usize, SandboxError> {
    let progs = policy.compile(std::process::id() as i32)?;
    for (i, p) in progs.iter().enumerate() {
        seccompiler::apply_filter_all_threads(p).map_err(|e| SandboxError::Layer {
            layer: Layer::Seccomp,
            detail: format!("installing filter {} of {}: {e}", i + 1, progs.len()),
        })?;
    }
    Ok(progs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &'static str, nr: i64, action: SyscallAction) -> SyscallRule {
        SyscallRule {
            name,
            nr,
            action,
            when: Vec::new(),
            why: "test",
        }
    }

    #[test]
    fn validation_rejects_unsafe_tables() {
        let allow_default = SeccompPolicy {
            default_action: SyscallAction::Allow,
            rules: vec![],
        };
        assert!(allow_default.validate().is_err());
        let dup = SeccompPolicy {
            default_action: SyscallAction::Errno(libc::EPERM),
            rules: vec![
                rule("read", libc::SYS_read, SyscallAction::Allow),
                rule("read", libc::SYS_read, SyscallAction::KillProcess),
            ],
        };
        assert!(dup.validate().is_err());
        let mut conditional_kill = rule("kill", libc::SYS_kill, SyscallAction::KillProcess);
        conditional_kill.when = vec![vec![ArgCheck::eq(0, 1)]];
        let p = SeccompPolicy {
            default_action: SyscallAction::Errno(libc::EPERM),
            rules: vec![conditional_kill],
        };
        assert!(p.validate().is_err());
        let mut bad_arg = rule("read", libc::SYS_read, SyscallAction::Allow);
        bad_arg.when = vec![vec![ArgCheck::eq(6, 1)]];
        let p = SeccompPolicy {
            default_action: SyscallAction::Errno(libc::EPERM),
            rules: vec![bad_arg],
        };
        assert!(p.validate().is_err());
    }

    #[test]
    fn one_filter_per_action_with_allowlist_last() {
        let p = SeccompPolicy {
            default_action: SyscallAction::Errno(libc::EPERM),
            rules: vec![
                rule("read", libc::SYS_read, SyscallAction::Allow),
                rule("execve", libc::SYS_execve, SyscallAction::KillProcess),
                rule(
                    "clone3",
                    libc::SYS_clone3,
                    SyscallAction::Errno(libc::ENOSYS),
                ),
            ],
        };
        assert_eq!(p.compile(1).unwrap().len(), 3);
        let only_allow = SeccompPolicy {
            default_action: SyscallAction::KillProcess,
            rules: vec![rule("read", libc::SYS_read, SyscallAction::Allow)],
        };
        assert_eq!(only_allow.compile(1).unwrap().len(), 1);
    }
}
