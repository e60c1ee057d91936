//! Applying a [`Profile`] to the current process, and inspecting any process's hardening.
//!
//! **Owns:** [`apply`] (the only code that calls prctl/setrlimit/landlock/seccomp on the
//! process), [`HardeningReport`] (what was applied, for logs and `gatehouse status`), and
//! [`inspect_self`] / [`inspect_pid`] (what `/proc` says is actually in force).
//!
//! **Must never:** report a layer as applied that was not, continue silently after a failure
//! in [`Strictness::Strict`], or undo a layer (every layer here is one-way by design).
//!
//! # Order and threads
//!
//! [`apply`] applies `PR_SET_DUMPABLE=0`, `PR_SET_NO_NEW_PRIVS=1`, `RLIMIT_CORE=0`, Landlock,
//! then seccomp. seccomp is installed on every thread (TSYNC). **Landlock before ABI 8
//! (Linux 7.0) restricts only the calling thread and threads it creates afterwards**: call
//! [`apply`] from `main` *before* building the tokio runtime. In `Strict` mode, applying
//! Landlock in a process that already has other threads, on a kernel without Landlock TSYNC,
//! is an error; in `AllowDegraded` it is applied to the calling thread and reported as
//! `Degraded`.

use std::fs;
use std::os::unix::fs::MetadataExt;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, RestrictSelfAttr,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

use crate::profile::{LandlockRules, Profile};
use crate::secret_mem::{MemoryKind, probe_memory_kind};
use crate::{Layer, SandboxError};

/// How [`apply`] treats a layer that cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strictness {
    /// Any layer failing is an error naming the layer and the OS error. The broker uses this.
    Strict,
    /// Continue and record the failure in the report (development machines, old kernels).
    AllowDegraded,
}

/// The state of one layer after [`apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LayerStatus {
    /// The layer is in force.
    Applied {
        /// Landlock: every requested right is enforced by this kernel (false = some rights,
        /// e.g. TCP on ABI < 4, are not). seccomp: always true.
        fully_enforced: bool,
        /// Landlock ABI of the running kernel (`None` for seccomp).
        abi: Option<i32>,
        /// Human-readable detail (filters installed, threads covered, skipped paths).
        detail: String,
    },
    /// Applied only partly, or not at all, in `AllowDegraded` mode.
    Degraded {
        /// Why.
        reason: String,
    },
    /// The profile does not use this layer.
    NotApplied,
}

/// A resource-limit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rlim {
    /// A finite limit in bytes.
    Bytes(u64),
    /// `RLIM_INFINITY`.
    Unlimited,
}

/// What [`apply`] did, read back from the kernel after applying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardeningReport {
    /// Profile name.
    pub profile: String,
    /// Mode used.
    pub strictness: Strictness,
    /// `PR_GET_DUMPABLE` after applying (false = hardened).
    pub dumpable: bool,
    /// `PR_GET_NO_NEW_PRIVS` after applying.
    pub no_new_privs: bool,
    /// Soft `RLIMIT_CORE` after applying.
    pub core_limit: Rlim,
    /// Landlock.
    pub landlock: LayerStatus,
    /// seccomp.
    pub seccomp: LayerStatus,
    /// Which kind of secret memory new regions get (probed before seccomp).
    pub memory: MemoryKind,
    /// Why memory is not `memfd_secret`, when it is not.
    pub memory_fallback_reason: Option<String>,
    /// Degradations of the prctl/rlimit steps and skipped optional paths.
    pub notes: Vec<String>,
}

impl HardeningReport {
    /// What a daemon reports about itself in `status`, in one form for every
    /// daemon (seccomp mode read back from /proc). `dumpable` is as applied;
    /// a daemon that turns non-dumpable later reads it live.
    pub fn summary(&self, secret_memory: &str) -> gatehouse_ipc::broker::Hardening {
        let mut degraded = self.notes.clone();
        let landlock = match &self.landlock {
            LayerStatus::Applied {
                fully_enforced,
                abi,
                ..
            } => match abi {
                Some(abi) => format!(
                    "applied (ABI {abi}{})",
                    if *fully_enforced { "" } else { ", partial" }
                ),
                None => "applied".into(),
            },
            LayerStatus::Degraded { reason } => {
                degraded.push(format!("landlock: {reason}"));
                format!("DEGRADED: {reason}")
            }
            LayerStatus::NotApplied => "not applied".into(),
        };
        if let LayerStatus::Degraded { reason } = &self.seccomp {
            degraded.push(format!("seccomp: {reason}"));
        }
        gatehouse_ipc::broker::Hardening {
            dumpable: self.dumpable,
            no_new_privs: self.no_new_privs,
            seccomp_mode: match inspect_self().seccomp {
                Some(SeccompMode::Filter) => 2,
                Some(SeccompMode::Strict) => 1,
                _ => 0,
            },
            landlock,
            core_limit: match self.core_limit {
                Rlim::Bytes(b) => b,
                Rlim::Unlimited => u64::MAX,
            },
            secret_memory: secret_memory.to_string(),
            degraded,
        }
    }
}

fn errno_str() -> String {
    std::io::Error::last_os_error().to_string()
}

fn prctl_get(option: libc::c_int) -> Option<bool> {
    // SAFETY: PR_GET_DUMPABLE / PR_GET_NO_NEW_PRIVS take no pointer arguments.
    let r = unsafe { libc::prctl(option, 0, 0, 0, 0) };
    (r >= 0).then_some(r == 1)
}

fn core_limit_self() -> Rlim {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE) {
        Ok((soft, _)) if soft != libc::RLIM_INFINITY => Rlim::Bytes(soft),
        _ => Rlim::Unlimited,
    }
}

/// The running kernel's Landlock ABI version (`None` if Landlock is unavailable).
pub fn landlock_abi() -> Option<i32> {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns
    // the ABI version; the NULL attr pointer is the documented way to ask.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    (v > 0).then_some(v as i32)
}

/// Number of threads in this process (from `/proc/self/status`).
pub fn thread_count() -> Option<usize> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    status_field(&s, "Threads").and_then(|v| v.parse().ok())
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

struct Step<'a> {
    mode: Strictness,
    notes: &'a mut Vec<String>,
}

impl Step<'_> {
    /// Strict: turn a failure into an error; AllowDegraded: note it and continue.
    fn check(&mut self, layer: Layer, result: Result<(), String>) -> Result<(), SandboxError> {
        match result {
            Ok(()) => Ok(()),
            Err(detail) if self.mode == Strictness::Strict => {
                Err(SandboxError::Layer { layer, detail })
            }
            Err(detail) => {
                tracing::warn!(%layer, %detail, "hardening layer degraded");
                self.notes.push(format!("{layer}: {detail}"));
                Ok(())
            }
        }
    }
}

/// Apply `profile` to the current process: `PR_SET_DUMPABLE=0`, `PR_SET_NO_NEW_PRIVS=1`,
/// `RLIMIT_CORE=0`, Landlock, seccomp (all threads), in that order. One-way: nothing here can
/// be undone by the process afterwards.
///
/// Call it from `main` before starting threads (see the module docs on Landlock and threads)
/// and before reading any secret.
pub fn apply(profile: &Profile, mode: Strictness) -> Result<HardeningReport, SandboxError> {
    let mut notes = Vec::new();
    // Probe before seccomp so the report reflects the kernel, then the filter keeps it working.
    let (memory, memory_fallback_reason) = probe_memory_kind();
    {
        let mut step = Step {
            mode,
            notes: &mut notes,
        };
        if profile.flags.non_dumpable {
            // SAFETY: PR_SET_DUMPABLE takes an integer argument only.
            let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            step.check(
                Layer::Dumpable,
                (r == 0).then_some(()).ok_or_else(errno_str),
            )?;
        }
        if profile.flags.no_new_privs {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            step.check(
                Layer::NoNewPrivs,
                (r == 0).then_some(()).ok_or_else(errno_str),
            )?;
        }
        if profile.flags.core_limit_zero {
            let r = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            step.check(Layer::CoreLimit, r.map_err(|e| e.to_string()))?;
        }
    }

    let landlock = match &profile.landlock {
        None => LayerStatus::NotApplied,
        Some(rules) => match apply_landlock(rules, mode, &mut notes) {
            Ok(s) => s,
            Err(detail) if mode == Strictness::Strict => {
                return Err(SandboxError::Layer {
                    layer: Layer::Landlock,
                    detail,
                });
            }
            Err(reason) => LayerStatus::Degraded { reason },
        },
    };

    let seccomp = match &profile.seccomp {
        None => LayerStatus::NotApplied,
        Some(policy) => match crate::seccomp::install(policy) {
            Ok(n) => LayerStatus::Applied {
                fully_enforced: true,
                abi: None,
                detail: format!(
                    "{n} filters, {} rules, all threads (TSYNC), default {:?}",
                    policy.rules.len(),
                    policy.default_action
                ),
            },
            Err(e @ SandboxError::InvalidProfile(_)) => return Err(e),
            Err(e) if mode == Strictness::Strict => return Err(e),
            Err(e) => LayerStatus::Degraded {
                reason: e.to_string(),
            },
        },
    };

    let report = HardeningReport {
        profile: profile.name.to_string(),
        strictness: mode,
        dumpable: prctl_get(libc::PR_GET_DUMPABLE).unwrap_or(true),
        no_new_privs: prctl_get(libc::PR_GET_NO_NEW_PRIVS).unwrap_or(false),
        core_limit: core_limit_self(),
        landlock,
        seccomp,
        memory,
        memory_fallback_reason,
        notes,
    };
    tracing::info!(
        profile = %report.profile,
        dumpable = report.dumpable,
        no_new_privs = report.no_new_privs,
        landlock = ?report.landlock,
        seccomp = ?report.seccomp,
        memory = %report.memory,
        "process hardened"
    );
    Ok(report)
}

fn apply_landlock(
    rules: &LandlockRules,
    mode: Strictness,
    notes: &mut Vec<String>,
) -> Result<LayerStatus, String> {
    // Rights are pinned to ABI 6 (fs: all incl. ioctl_dev/truncate/refer; net: TCP; scopes);
    // ABI 7 adds only audit-log flags. Best effort: older kernels enforce what they know and
    // the status says "partially".
    let abi = ABI::V6;
    let kernel_abi = landlock_abi();
    let Some(kabi) = kernel_abi else {
        return Err(
            "Landlock unavailable on this kernel (not built or not enabled via lsm=)".into(),
        );
    };
    let threads = thread_count().unwrap_or(1);
    let tsync = kabi >= 8;
    let mut thread_note = None;
    if threads > 1 && !tsync {
        let msg = format!(
            "process has {threads} threads and kernel Landlock ABI {kabi} < 8 cannot restrict \
             sibling threads: call apply() before starting any thread (before the tokio runtime)"
        );
        if mode == Strictness::Strict {
            return Err(msg);
        }
        thread_note = Some(msg);
    }

    let e = |e: landlock::RulesetError| e.to_string();
    let handled_fs = AccessFs::from_all(abi);
    let ro: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
    let rw: BitFlags<AccessFs> =
        handled_fs & !(AccessFs::Execute | AccessFs::MakeChar | AccessFs::MakeBlock);
    let file_rights = AccessFs::from_file(abi);

    let mut scopes: BitFlags<Scope> = BitFlags::empty();
    if rules.scope_abstract_unix {
        scopes |= Scope::AbstractUnixSocket;
    }
    if rules.scope_signals {
        scopes |= Scope::Signal;
    }
    let mut ruleset = Ruleset::default()
        .handle_access(handled_fs)
        .map_err(e)?
        .handle_access(if rules.tcp_connect_any {
            landlock::BitFlags::from(AccessNet::BindTcp)
        } else {
            AccessNet::from_all(abi)
        })
        .map_err(e)?;
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(e)?;
    }
    let mut created = ruleset.create().map_err(e)?;
    let mut skipped = Vec::new();
    for (list, access) in [(&rules.read_write, rw), (&rules.read_only, ro)] {
        for rule in list {
            let meta = match fs::metadata(&rule.path) {
                Ok(m) => m,
                Err(err) if !rule.required => {
                    skipped.push(format!("{} ({err})", rule.path.display()));
                    continue;
                }
                Err(err) => {
                    return Err(format!(
                        "required path {} ({}): {err}",
                        rule.path.display(),
                        rule.why
                    ));
                }
            };
            let access = if meta.is_dir() {
                access
            } else {
                access & file_rights
            };
            let fd = PathFd::new(&rule.path).map_err(|err| format!("{err}"))?;
            created = created.add_rule(PathBeneath::new(fd, access)).map_err(e)?;
        }
    }
    for port in &rules.tcp_bind {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::BindTcp))
            .map_err(e)?;
    }
    for port in rules.tcp_connect.iter().filter(|_| !rules.tcp_connect_any) {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(e)?;
    }
    // TSYNC (ABI 8) only where the kernel has it: requesting it best-effort on an older
    // kernel would mark the whole ruleset "partially enforced".
    let created = if tsync {
        created.all_threads(true).map_err(e)?
    } else {
        created
    };
    let status = created.restrict_self().map_err(e)?;
    if !skipped.is_empty() {
        notes.push(format!(
            "landlock: optional paths skipped: {}",
            skipped.join(", ")
        ));
    }
    let threads_detail = if status.all_threads {
        "all threads (TSYNC)".to_string()
    } else if let Some(n) = thread_note {
        return Ok(LayerStatus::Degraded {
            reason: format!("applied to the calling thread only: {n}"),
        });
    } else {
        "calling thread and its future threads (process was single-threaded)".to_string()
    };
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => LayerStatus::Applied {
            fully_enforced: true,
            abi: Some(kabi),
            detail: threads_detail,
        },
        RulesetStatus::PartiallyEnforced => LayerStatus::Applied {
            fully_enforced: false,
            abi: Some(kabi),
            detail: format!(
                "{threads_detail}; kernel ABI {kabi} lacks some rights of ABI 6 \
                 (e.g. TCP needs ABI 4, scopes ABI 6)"
            ),
        },
        _ => return Err("Landlock ruleset not enforced by this kernel".into()),
    })
}

/// seccomp mode of a process (`Seccomp:` in `/proc/PID/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompMode {
    /// 0: no seccomp.
    Disabled,
    /// 1: strict mode (read/write/exit only).
    Strict,
    /// 2: BPF filter(s).
    Filter,
}

/// What the kernel says about one process's hardening.
///
/// Readable for any process we can see in `/proc`: `NoNewPrivs`, `Seccomp`,
/// `Seccomp_filters` (from `/proc/PID/status`), the core limit (`/proc/PID/limits`). Dumpable
/// is exact only for ourselves (`PR_GET_DUMPABLE`); for another process it is *inferred*: a
/// non-dumpable process's `/proc/PID/*` files are owned by root, so a non-root process whose
/// `/proc/PID/status` is owned by uid 0 is non-dumpable (`None` when the process itself runs as root,
/// where ownership tells nothing). Landlock state of another process is not exposed by the
/// kernel and is not reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessHardening {
    /// The process.
    pub pid: i32,
    /// Effective uid (from `Uid:`).
    pub euid: Option<u32>,
    /// `NoNewPrivs: 1`.
    pub no_new_privs: Option<bool>,
    /// `Seccomp:` mode.
    pub seccomp: Option<SeccompMode>,
    /// `Seccomp_filters:` count.
    pub seccomp_filters: Option<u32>,
    /// Dumpable (exact for self; inferred for others, see type docs).
    pub dumpable: Option<bool>,
    /// How `dumpable` was learned.
    pub dumpable_source: String,
    /// Soft core-file limit (`None` = unreadable).
    pub core_limit: Option<Rlim>,
}

/// Hardening of the current process.
pub fn inspect_self() -> ProcessHardening {
    let pid = std::process::id() as i32;
    let mut h = inspect_pid(pid).unwrap_or_else(|_| empty(pid));
    h.dumpable = prctl_get(libc::PR_GET_DUMPABLE);
    h.dumpable_source = "prctl(PR_GET_DUMPABLE)".into();
    h.core_limit = Some(core_limit_self());
    h
}

fn empty(pid: i32) -> ProcessHardening {
    ProcessHardening {
        pid,
        euid: None,
        no_new_privs: None,
        seccomp: None,
        seccomp_filters: None,
        dumpable: None,
        dumpable_source: "unknown".into(),
        core_limit: None,
    }
}

/// Hardening of process `pid`, from `/proc/PID/status`, `/proc/PID/limits` and the owner of
/// `/proc/PID`.
pub fn inspect_pid(pid: i32) -> Result<ProcessHardening, SandboxError> {
    let proc_err = |source| SandboxError::Proc { pid, source };
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(proc_err)?;
    let mut h = empty(pid);
    h.euid = status_field(&status, "Uid")
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok());
    h.no_new_privs = status_field(&status, "NoNewPrivs").map(|v| v == "1");
    h.seccomp = status_field(&status, "Seccomp").and_then(|v| match v {
        "0" => Some(SeccompMode::Disabled),
        "1" => Some(SeccompMode::Strict),
        "2" => Some(SeccompMode::Filter),
        _ => None,
    });
    h.seccomp_filters = status_field(&status, "Seccomp_filters").and_then(|v| v.parse().ok());
    // The kernel makes a non-dumpable process's /proc/PID/* files (not the /proc/PID
    // directory itself) owned by root; see task_dump_owner() in fs/proc/base.c.
    match (fs::metadata(format!("/proc/{pid}/status")), h.euid) {
        (Ok(_), Some(0)) => {
            h.dumpable_source = "unknown: process runs as root, /proc owner tells nothing".into();
        }
        (Ok(m), Some(euid)) => {
            h.dumpable = Some(m.uid() != 0 || euid == 0);
            h.dumpable_source = format!(
                "inferred from /proc/{pid}/status owner uid {} (root-owned = non-dumpable)",
                m.uid()
            );
        }
        _ => h.dumpable_source = "unknown".into(),
    }
    h.core_limit = fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|l| {
            let line = l.lines().find(|l| l.starts_with("Max core file size"))?;
            let soft = line["Max core file size".len()..]
                .split_whitespace()
                .next()?;
            Some(if soft == "unlimited" {
                Rlim::Unlimited
            } else {
                Rlim::Bytes(soft.parse().ok()?)
            })
        });
    Ok(h)
}
