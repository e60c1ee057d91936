//! Who is on the other end of a socket, decided by the kernel, not the peer.
//!
//! Owns: reading `SO_PEERCRED` (uid, gid, pid) and `SO_PEERPIDFD`, and mapping
//! the peer's executable (`/proc/PID/exe`) to a [`PeerRole`]: it must be the
//! installed binary of that role, in the same directory as the server's own
//! binary, and still the same file (device + inode). With the privilege
//! boundary on (an install whose binaries are setgid to the `gatehouse`
//! group, see [`Installation::group`]) the peer's binary must also be setgid
//! to that group and the peer must run with the group's effective gid — which
//! the loader grants only to an unmodified exec of that binary (secure mode:
//! no `LD_PRELOAD`, not dumpable, not ptrace-able by the user).
//! Must never: accept a role, uid or name that the peer sends, or accept a
//! peer whose process may have been replaced (pid recycled) while we looked.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::{getsockopt, sockopt};
use serde::{Deserialize, Serialize};

/// The role of a peer process, derived from its executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum PeerRole {
    /// The `gatehouse` command-line tool (a person at a terminal, or a script).
    Cli,
    /// The desktop app `gatehouse-ui`.
    Ui,
    /// The SSH session daemon `gatehouse-sessiond`.
    Sessiond,
    /// The AI copilot daemon `gatehouse-copilotd`.
    Copilotd,
    /// The sync daemon `gatehouse-syncd`: moves records between the local
    /// store and a sync server, holding no key (appended last: variant
    /// indices are the wire format).
    Syncd,
}

impl PeerRole {
    pub const ALL: [PeerRole; 5] = [
        PeerRole::Cli,
        PeerRole::Ui,
        PeerRole::Sessiond,
        PeerRole::Copilotd,
        PeerRole::Syncd,
    ];

    /// The installed executable's file name for this role.
    pub fn binary_name(self) -> &'static str {
        match self {
            PeerRole::Cli => "gatehouse",
            PeerRole::Ui => "gatehouse-ui",
            PeerRole::Sessiond => "gatehouse-sessiond",
            PeerRole::Copilotd => "gatehouse-copilotd",
            PeerRole::Syncd => "gatehouse-syncd",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Cli => "cli",
            PeerRole::Ui => "ui",
            PeerRole::Sessiond => "sessiond",
            PeerRole::Copilotd => "copilotd",
            PeerRole::Syncd => "syncd",
        }
    }

    /// A daemon role: granted only to a process the supervisor started
    /// (checked by the server when the boundary is on, one process per role).
    pub fn is_daemon(self) -> bool {
        !matches!(self, PeerRole::Cli | PeerRole::Ui)
    }

    fn from_binary_name(name: &str) -> Option<PeerRole> {
        PeerRole::ALL.into_iter().find(|r| r.binary_name() == name)
    }
}

impl std::fmt::Display for PeerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A peer whose identity the kernel vouched for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerIdentity {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    pub exe: PathBuf,
    pub role: PeerRole,
    /// Whether a pidfd pinned the process while its executable was checked.
    pub pidfd_pinned: bool,
    /// The peer's parent pid when it was identified (0 if unknown).
    pub ppid: i32,
}

/// Why a peer was refused. Each names what did not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefusal {
    #[error("peer uid {peer} is not this user's uid {ours}")]
    OtherUid { peer: u32, ours: u32 },
    #[error("peer credentials unavailable: {0}")]
    NoCredentials(String),
    #[error("cannot read the executable of pid {pid}: {reason}")]
    ExeUnreadable { pid: i32, reason: String },
    #[error("executable {exe} is not an installed Gatehouse binary in {install_dir}")]
    NotInstalled { exe: PathBuf, install_dir: PathBuf },
    #[error("executable {exe} was replaced or deleted since the process started")]
    ExeReplaced { exe: PathBuf },
    #[error("process {pid} exited or its pid was recycled while being identified")]
    PidRecycled { pid: i32 },
    #[error(
        "executable {exe} is not setgid to the gatehouse group (gid {group}); the privilege boundary requires the installed setgid binaries"
    )]
    NotSetgid { exe: PathBuf, group: u32 },
    #[error(
        "peer pid {pid} runs with gid {peer_gid}, not the gatehouse group's gid {group} (started under LD_PRELOAD, ptrace, no_new_privs or a dropped group)"
    )]
    WrongGroup { pid: i32, peer_gid: u32, group: u32 },
}

/// The trusted installation directory (where the server's own binary lives)
/// and the uid peers must have.
#[derive(Debug, Clone)]
pub struct Installation {
    pub dir: PathBuf,
    pub uid: u32,
    /// The privilege boundary: `Some(gid)` when our own binary is setgid to
    /// `gid` and we run with it as our effective gid (an installed system);
    /// `None` in a development build (the boundary is off).
    pub group: Option<u32>,
}

impl Installation {
    /// The directory of the running executable, our own uid, and the
    /// boundary's group if we run from a setgid install.
    pub fn of_current_exe() -> std::io::Result<Installation> {
        let exe = std::fs::read_link("/proc/self/exe")?;
        let dir = exe
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(Installation {
            dir,
            uid: nix::unistd::geteuid().as_raw(),
            group: boundary_group(&std::fs::metadata("/proc/self/exe")?),
        })
    }

    /// Path of a binary in the installation directory.
    pub fn binary_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Path of the installed binary of `role`.
    pub fn binary(&self, role: PeerRole) -> PathBuf {
        self.dir.join(role.binary_name())
    }
}

/// The group of the privilege boundary this process runs under: our binary
/// (`exe_meta`) is setgid and its group is our effective gid.
pub fn boundary_group(exe_meta: &std::fs::Metadata) -> Option<u32> {
    let egid = nix::unistd::getegid().as_raw();
    (exe_meta.mode() & 0o2000 != 0 && exe_meta.gid() == egid && egid != 0).then_some(egid)
}

/// The executable of a process: its path and the file's identity, and the
/// process's parent pid (0 if unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExeInfo {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub ppid: i32,
}

/// Finds which executable a process runs.
///
/// [`ProcResolver`] reads `/proc/PID/exe` itself. A Landlock-sandboxed
/// server cannot (the kernel treats it as ptrace access across domains), so
/// the broker asks an unsandboxed helper process instead.
pub trait ExeResolver: Send + Sync {
    fn resolve(&self, pid: i32) -> Result<ExeInfo, String>;
}

/// Reads `/proc/PID/exe` in this process.
pub struct ProcResolver;

impl ExeResolver for ProcResolver {
    fn resolve(&self, pid: i32) -> Result<ExeInfo, String> {
        let proc_exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let path = std::fs::read_link(&proc_exe).map_err(|e| e.to_string())?;
        let meta = std::fs::metadata(&proc_exe).map_err(|e| e.to_string())?;
        Ok(ExeInfo {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
            ppid: parent_pid(pid).unwrap_or(0),
        })
    }
}

/// The parent pid in `/proc/PID/stat` (the field after the `(comm)`, which
/// may itself hold spaces and parentheses).
pub fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Identifies the peer of a connected unix socket.
pub fn identify(
    sock: BorrowedFd<'_>,
    install: &Installation,
    resolver: &dyn ExeResolver,
) -> Result<PeerIdentity, PeerRefusal> {
    let cred = getsockopt(&sock, sockopt::PeerCredentials)
        .map_err(|e| PeerRefusal::NoCredentials(e.to_string()))?;
    let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
    if uid != install.uid {
        return Err(PeerRefusal::OtherUid {
            peer: uid,
            ours: install.uid,
        });
    }
    if pid <= 0 {
        return Err(PeerRefusal::NoCredentials("no pid".into()));
    }
    // The boundary: only an unmodified exec of an installed setgid binary
    // carries the group (SO_PEERCRED holds the peer's effective gid at
    // connect). Checked first: such a peer's /proc/PID/exe is not even
    // readable to us (its gids are not ours).
    if let Some(group) = install.group
        && gid != group
    {
        return Err(PeerRefusal::WrongGroup {
            pid,
            peer_gid: gid,
            group,
        });
    }
    // Pin the process: the pidfd refers to the process that connected, even if
    // its pid is later reused. Kernels before 6.5 lack SO_PEERPIDFD.
    let pidfd: Option<OwnedFd> = getsockopt(&sock, sockopt::PeerPidfd).ok();
    if let Some(fd) = &pidfd {
        ensure_alive(fd.as_fd(), pid)?;
    }
    let running = resolver
        .resolve(pid)
        .map_err(|reason| PeerRefusal::ExeUnreadable { pid, reason })?;
    let exe = running.path.clone();
    if let Some(fd) = &pidfd {
        // Still the same process after we read its exe: the reads above were about it.
        ensure_alive(fd.as_fd(), pid)?;
    }
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let role = PeerRole::from_binary_name(name)
        .filter(|_| exe.parent() == Some(install.dir.as_path()))
        .ok_or_else(|| PeerRefusal::NotInstalled {
            exe: exe.clone(),
            install_dir: install.dir.clone(),
        })?;
    let installed = std::fs::metadata(install.binary(role))
        .map_err(|_| PeerRefusal::ExeReplaced { exe: exe.clone() })?;
    if (installed.dev(), installed.ino()) != (running.dev, running.ino) {
        return Err(PeerRefusal::ExeReplaced { exe });
    }
    if let Some(group) = install.group
        && (installed.mode() & 0o2000 == 0 || installed.gid() != group)
    {
        return Err(PeerRefusal::NotSetgid { exe, group });
    }
    Ok(PeerIdentity {
        uid,
        gid,
        pid,
        exe,
        role,
        pidfd_pinned: pidfd.is_some(),
        ppid: running.ppid,
    })
}

/// Checks via `/proc/self/fdinfo` that the pidfd still names live process `pid`.
fn ensure_alive(pidfd: BorrowedFd<'_>, pid: i32) -> Result<(), PeerRefusal> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))
        .map_err(|e| PeerRefusal::NoCredentials(format!("pidfd info: {e}")))?;
    let current = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse::<i32>().ok());
    match current {
        Some(p) if p == pid => Ok(()),
        _ => Err(PeerRefusal::PidRecycled { pid }),
    }
}
