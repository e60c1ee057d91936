//! Per-process hardening profiles, as data.
//!
//! **Owns:** [`Profile`] (what one Gatehouse process is allowed to do: prctl/rlimit flags,
//! Landlock rules, the seccomp syscall table) and the concrete profiles —
//! [`broker_profile`] and [`sessiond_profile`]; the copilotd profile will be added here
//! when that daemon exists (none are stubbed: a profile that was never run under its daemon
//! is not a profile).
//!
//! **Must never:** apply anything (that is [`crate::hardening`]), read configuration files or
//! environment variables to decide what is allowed, or grow an entry without a `why`.
//! A change to a syscall table is a security review: each row says why it is there.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::seccomp::{ArgCheck, SeccompPolicy, SyscallAction, SyscallRule};

/// Process-wide hardening switches applied before Landlock and seccomp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProfileFlags {
    /// `prctl(PR_SET_DUMPABLE, 0)`: no core dumps, `/proc/PID/*` owned by root, same-uid
    /// ptrace and `/proc/PID/mem` refused.
    pub non_dumpable: bool,
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: no privilege gain through exec (setuid, file caps).
    pub no_new_privs: bool,
    /// `setrlimit(RLIMIT_CORE, 0)` (soft and hard): no core file even if dumpable flips back.
    pub core_limit_zero: bool,
}

impl ProfileFlags {
    /// All switches on.
    pub const ALL: ProfileFlags = ProfileFlags {
        non_dumpable: true,
        no_new_privs: true,
        core_limit_zero: true,
    };
}

/// One Landlock path rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathRule {
    /// Directory (the rule covers everything beneath it) or single file.
    pub path: PathBuf,
    /// A required path that is missing is an error in `Strict` mode; an optional one is
    /// skipped and noted in the report.
    pub required: bool,
    /// Why the process needs it.
    pub why: &'static str,
}

/// Landlock rules: everything not listed is denied for the handled rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandlockRules {
    /// Read, write, create, remove, rename, truncate, make sockets (no execute, no device
    /// nodes).
    pub read_write: Vec<PathRule>,
    /// Read files and list directories (no execute).
    pub read_only: Vec<PathRule>,
    /// TCP ports the process may bind (Landlock ABI >= 4). Empty = none.
    pub tcp_bind: Vec<u16>,
    /// TCP ports the process may connect to (Landlock ABI >= 4). Empty = none.
    pub tcp_connect: Vec<u16>,
    /// Outgoing TCP to any port (devices listen where they like); binding
    /// stays limited to `tcp_bind`. Ignores `tcp_connect`.
    pub tcp_connect_any: bool,
    /// Refuse connecting to abstract unix sockets created outside the sandbox (ABI >= 6).
    pub scope_abstract_unix: bool,
    /// Refuse sending signals to processes outside the sandbox (ABI >= 6).
    pub scope_signals: bool,
}

/// A process's complete hardening, as reviewable data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Profile name (`"broker"`, ...).
    pub name: &'static str,
    /// prctl / rlimit switches.
    pub flags: ProfileFlags,
    /// Landlock rules (`None` = Landlock not used by this profile).
    pub landlock: Option<LandlockRules>,
    /// The seccomp syscall table (`None` = no filter).
    pub seccomp: Option<SeccompPolicy>,
}

/// Paths the broker needs; everything else on the filesystem is out of its reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerPaths {
    /// Vault and other state (read-write), e.g. `$XDG_STATE_HOME/gatehouse`.
    pub state_dir: PathBuf,
    /// Socket directory (read-write), e.g. `$XDG_RUNTIME_DIR/gatehouse`.
    pub runtime_dir: PathBuf,
    /// Directory of the installed Gatehouse binaries (read-only): peer identity compares
    /// `/proc/PID/exe` of peers with binaries here.
    pub install_dir: PathBuf,
    /// Directory holding the D-Bus session bus socket (read-only), e.g. `/run/user/UID`.
    /// Landlock (ABI <= 8) does not restrict `connect(2)` to a pathname socket, so this is for
    /// stat/lookup only; `None` when unknown.
    pub dbus_dir: Option<PathBuf>,
    /// Whether the D-Bus address is an abstract socket (`unix:abstract=...`); if so the
    /// Landlock abstract-unix-socket scope is not applied.
    pub dbus_abstract: bool,
    /// Further read-only paths (e.g. NSS files if the broker ever calls getpwuid).
    pub extra_read_only: Vec<PathBuf>,
    /// Further read-write paths.
    pub extra_read_write: Vec<PathBuf>,
}

impl BrokerPaths {
    /// Paths with no D-Bus dir and no extras.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        runtime_dir: impl Into<PathBuf>,
        install_dir: impl Into<PathBuf>,
    ) -> Self {
        BrokerPaths {
            state_dir: state_dir.into(),
            runtime_dir: runtime_dir.into(),
            install_dir: install_dir.into(),
            dbus_dir: None,
            dbus_abstract: false,
            extra_read_only: Vec::new(),
            extra_read_write: Vec::new(),
        }
    }
}

fn req(path: &Path, why: &'static str) -> PathRule {
    PathRule {
        path: path.to_path_buf(),
        required: true,
        why,
    }
}

fn opt(path: impl Into<PathBuf>, why: &'static str) -> PathRule {
    PathRule {
        path: path.into(),
        required: false,
        why,
    }
}

/// The broker's profile: all flags; Landlock limited to its state, runtime and install
/// directories plus `/proc` and the machine id, no TCP at all; the [`broker_syscalls`] table.
pub fn broker_profile(paths: &BrokerPaths) -> Profile {
    let mut read_write = vec![
        req(&paths.state_dir, "vault and broker state"),
        req(&paths.runtime_dir, "the broker's listening unix socket"),
        opt(
            "/dev/tpmrm0",
            "the TPM 2.0 resource manager: remembered unlock material is sealed to it",
        ),
    ];
    read_write.extend(
        paths
            .extra_read_write
            .iter()
            .map(|p| req(p, "extra read-write path from BrokerPaths")),
    );
    let mut read_only = vec![
        req(
            &paths.install_dir,
            "peer identity: stat installed binaries to compare with /proc/PID/exe",
        ),
        req(
            Path::new("/proc"),
            "peer identity (/proc/PID/exe, status) and self-inspection (/proc/self/status)",
        ),
        opt(
            "/etc/machine-id",
            "D-Bus/zbus and keyring identify the machine",
        ),
        opt("/var/lib/dbus/machine-id", "D-Bus machine id fallback"),
    ];
    if let Some(d) = &paths.dbus_dir {
        read_only.push(opt(d.clone(), "D-Bus session bus socket lookup"));
    }
    read_only.extend(
        paths
            .extra_read_only
            .iter()
            .map(|p| req(p, "extra read-only path from BrokerPaths")),
    );
    Profile {
        name: "broker",
        flags: ProfileFlags::ALL,
        landlock: Some(LandlockRules {
            read_write,
            read_only,
            tcp_bind: Vec::new(),
            tcp_connect: Vec::new(),
            tcp_connect_any: false,
            scope_abstract_unix: !paths.dbus_abstract,
            // The broker may signal peers through pidfds (pidfd_send_signal, e.g. to end a
            // session at sign-out); peers are outside its Landlock domain, so signal scoping
            // would forbid that. Same-uid is enforced by the kernel anyway.
            scope_signals: false,
        }),
        seccomp: Some(broker_syscalls()),
    }
}

fn allow(name: &'static str, nr: libc::c_long, why: &'static str) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        action: SyscallAction::Allow,
        when: Vec::new(),
        why,
    }
}

fn allow_if(
    name: &'static str,
    nr: libc::c_long,
    when: Vec<Vec<ArgCheck>>,
    why: &'static str,
) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        action: SyscallAction::Allow,
        when,
        why,
    }
}

fn kill_rule(name: &'static str, nr: libc::c_long, why: &'static str) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        action: SyscallAction::KillProcess,
        when: Vec::new(),
        why,
    }
}

fn errno_rule(name: &'static str, nr: libc::c_long, e: i32, why: &'static str) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        action: SyscallAction::Errno(e),
        when: Vec::new(),
        why,
    }
}

/// Each value of `arg` as its own alternative (`arg == v1 || arg == v2 ...`).
fn any_of(arg: u8, values: &[u64]) -> Vec<Vec<ArgCheck>> {
    values.iter().map(|v| vec![ArgCheck::eq(arg, *v)]).collect()
}

/// `clone` flags every thread creation has (glibc `pthread_create`).
pub const CLONE_THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

/// `clone` flags that must be absent: namespaces, vfork, ptrace, re-parenting.
pub const CLONE_FORBIDDEN_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_VFORK
    | libc::CLONE_PTRACE
    | libc::CLONE_PARENT) as u64;

/// The broker's syscall table (x86_64 and aarch64 numbers via `libc::SYS_*`).
///
/// Default for anything not listed, or listed with conditions that do not match: **EPERM**.
/// A failed call is recoverable and shows up in logs; killing is reserved for the five
/// syscalls only an exploited broker would make (exec, ptrace, cross-process memory access),
/// where dying loudly is the right answer. `clone3` returns **ENOSYS** so glibc falls back to
/// `clone`, whose flags (unlike `clone3`'s, which live in memory) seccomp can check: threads
/// yes, fork/vfork/namespaces no.
// The ioctl request constants are `c_ulong` on glibc but `c_int` on musl: keep the casts.
#[allow(clippy::unnecessary_cast)]
pub fn broker_syscalls() -> SeccompPolicy {
    use libc::*;
    let mut rules = daemon_rules();
    rules.extend([
        allow(
            "memfd_secret",
            SYS_memfd_secret,
            "secret memory (keys outside the direct map)",
        ),
        allow(
            "pidfd_send_signal",
            SYS_pidfd_send_signal,
            "signal a peer through a pidfd from SO_PEERPIDFD (kernel checks same uid)",
        ),
        allow_if(
            "socket",
            SYS_socket,
            any_of(0, &[AF_UNIX as u64]),
            "AF_UNIX only: the IPC socket and D-Bus; AF_INET/AF_INET6/AF_NETLINK/... get EPERM",
        ),
        allow(
            "connect",
            SYS_connect,
            "D-Bus session bus (only unix sockets can exist)",
        ),
        allow("bind", SYS_bind, "the broker's socket in the runtime dir"),
        // ---- keyring ----------------------------------------------------------------------------
        allow("add_key", SYS_add_key, "kernel keyutils keychain backend"),
        allow(
            "keyctl",
            SYS_keyctl,
            "kernel keyutils keychain backend (many sub-ops)",
        ),
        allow(
            "request_key",
            SYS_request_key,
            "kernel keyutils keychain backend",
        ),
    ]);
    SeccompPolicy {
        default_action: SyscallAction::Errno(EPERM),
        rules,
    }
}

/// Rows every Gatehouse daemon shares: threads, memory, signals, time, the
/// event loop, files (Landlock decides which), unix-socket IPC and identity.
/// Sockets' domains, `connect`/`bind`, and anything else a daemon needs are
/// added by its own table.
#[allow(clippy::unnecessary_cast)]
fn daemon_rules() -> Vec<SyscallRule> {
    use libc::*;
    let prot_exec = PROT_EXEC as u64;
    let mut rules = vec![
        // ---- killed: only an exploited daemon does these --------------------------------
        kill_rule("execve", SYS_execve, "daemons never run programs"),
        kill_rule("execveat", SYS_execveat, "daemons never run programs"),
        kill_rule("ptrace", SYS_ptrace, "never trace or be a tracer"),
        kill_rule(
            "process_vm_readv",
            SYS_process_vm_readv,
            "no cross-process memory reads",
        ),
        kill_rule(
            "process_vm_writev",
            SYS_process_vm_writev,
            "no cross-process memory writes",
        ),
        // ---- refused with ENOSYS so libc falls back to a filterable call ---------------------
        errno_rule(
            "clone3",
            SYS_clone3,
            ENOSYS,
            "clone3 flags are in memory, not filterable: ENOSYS makes glibc use clone",
        ),
        // ---- threads (tokio worker + blocking pools) -----------------------------------------
        allow_if(
            "clone",
            SYS_clone,
            vec![vec![ArgCheck::masked_eq(
                0,
                CLONE_THREAD_FLAGS | CLONE_FORBIDDEN_FLAGS,
                CLONE_THREAD_FLAGS,
            )]],
            "thread creation only: CLONE_THREAD|VM|... required, namespaces/vfork/ptrace \
             forbidden, so fork() and posix_spawn fail with EPERM",
        ),
        allow("futex", SYS_futex, "mutexes, condvars, thread parking"),
        allow(
            "set_robust_list",
            SYS_set_robust_list,
            "glibc sets it for each new thread",
        ),
        allow(
            "rseq",
            SYS_rseq,
            "glibc >= 2.35 registers restartable sequences per thread",
        ),
        allow("set_tid_address", SYS_set_tid_address, "thread start-up"),
        allow(
            "sched_yield",
            SYS_sched_yield,
            "spin loops in tokio/parking_lot",
        ),
        allow(
            "sched_getaffinity",
            SYS_sched_getaffinity,
            "std::thread::available_parallelism (tokio worker count)",
        ),
        allow("gettid", SYS_gettid, "thread ids (tracing, glibc)"),
        allow("getpid", SYS_getpid, "own pid"),
        allow("getppid", SYS_getppid, "own parent pid (supervisor check)"),
        allow("exit", SYS_exit, "thread exit"),
        allow("exit_group", SYS_exit_group, "process exit"),
        allow_if(
            "prctl",
            SYS_prctl,
            {
                let mut when = any_of(
                    0,
                    &[
                        PR_SET_NAME as u64,
                        PR_GET_NAME as u64,
                        PR_GET_DUMPABLE as u64,
                        PR_GET_NO_NEW_PRIVS as u64,
                    ],
                );
                when.push(vec![
                    ArgCheck::eq(0, PR_SET_DUMPABLE as u64),
                    ArgCheck::eq(1, 0),
                ]);
                when
            },
            "thread names and reading own hardening; PR_SET_DUMPABLE only to 0 (a daemon \
             turns non-dumpable once the broker identified it; never back); the rest refused",
        ),
        // ---- memory ---------------------------------------------------------------------------
        allow("brk", SYS_brk, "malloc"),
        allow_if(
            "mmap",
            SYS_mmap,
            vec![vec![ArgCheck::masked_eq(2, prot_exec, 0)]],
            "malloc, thread stacks, secret memory; never PROT_EXEC (no new code)",
        ),
        allow_if(
            "mprotect",
            SYS_mprotect,
            vec![vec![ArgCheck::masked_eq(2, prot_exec, 0)]],
            "stack guard pages; never PROT_EXEC (no new code)",
        ),
        allow("munmap", SYS_munmap, "free mappings"),
        allow("mremap", SYS_mremap, "realloc of large allocations"),
        allow(
            "madvise",
            SYS_madvise,
            "malloc trimming, MADV_DONTDUMP/WIPEONFORK for secrets",
        ),
        allow("mlock", SYS_mlock, "secret memory fallback"),
        allow(
            "mlock2",
            SYS_mlock2,
            "secret memory fallback (glibc may use mlock2)",
        ),
        allow("munlock", SYS_munlock, "secret memory fallback"),
        // ---- signals --------------------------------------------------------------------------
        allow(
            "rt_sigaction",
            SYS_rt_sigaction,
            "std/tokio signal handlers",
        ),
        allow(
            "rt_sigprocmask",
            SYS_rt_sigprocmask,
            "thread creation, signal masking",
        ),
        allow(
            "rt_sigreturn",
            SYS_rt_sigreturn,
            "return from signal handlers",
        ),
        allow(
            "sigaltstack",
            SYS_sigaltstack,
            "std's stack-overflow handler per thread",
        ),
        allow_if(
            "kill",
            SYS_kill,
            vec![vec![ArgCheck::self_pid(0)]],
            "only to itself (pid == own pid)",
        ),
        allow_if(
            "tgkill",
            SYS_tgkill,
            vec![vec![ArgCheck::self_pid(0)]],
            "only to its own threads (abort, pthread_kill)",
        ),
        allow(
            "restart_syscall",
            SYS_restart_syscall,
            "restarting interrupted sleeps",
        ),
        // ---- time -----------------------------------------------------------------------------
        allow("clock_gettime", SYS_clock_gettime, "time (vDSO fallback)"),
        allow("clock_getres", SYS_clock_getres, "time"),
        allow("gettimeofday", SYS_gettimeofday, "time (vDSO fallback)"),
        allow("nanosleep", SYS_nanosleep, "sleep"),
        allow(
            "clock_nanosleep",
            SYS_clock_nanosleep,
            "sleep (glibc uses this)",
        ),
        // ---- event loop -------------------------------------------------------------------------
        allow("epoll_create1", SYS_epoll_create1, "tokio reactor"),
        allow("epoll_ctl", SYS_epoll_ctl, "tokio reactor"),
        allow("epoll_pwait", SYS_epoll_pwait, "tokio reactor"),
        allow(
            "epoll_pwait2",
            SYS_epoll_pwait2,
            "tokio reactor (newer mio)",
        ),
        allow("eventfd2", SYS_eventfd2, "tokio waker"),
        allow("pipe2", SYS_pipe2, "tokio signal/self-pipe"),
        allow("ppoll", SYS_ppoll, "poll-based waits"),
        allow(
            "timerfd_create",
            SYS_timerfd_create,
            "async-io/polling reactor (zbus) timeouts; failure is tolerated but costs precision",
        ),
        allow(
            "timerfd_settime",
            SYS_timerfd_settime,
            "async-io/polling reactor timeouts",
        ),
        allow(
            "timerfd_gettime",
            SYS_timerfd_gettime,
            "async-io/polling reactor timeouts",
        ),
        // ---- files (Landlock decides *which* files) ---------------------------------------------
        allow(
            "openat",
            SYS_openat,
            "open files; Landlock limits the paths",
        ),
        allow("close", SYS_close, "close fds"),
        allow("read", SYS_read, "read"),
        allow("write", SYS_write, "write"),
        allow("readv", SYS_readv, "vectored read"),
        allow("writev", SYS_writev, "vectored write (tokio, tracing)"),
        allow("pread64", SYS_pread64, "positional read"),
        allow("pwrite64", SYS_pwrite64, "positional write"),
        allow("lseek", SYS_lseek, "seek"),
        allow("fstat", SYS_fstat, "metadata"),
        allow(
            "newfstatat",
            SYS_newfstatat,
            "metadata (stat/lstat in glibc)",
        ),
        allow("statx", SYS_statx, "metadata (std::fs)"),
        allow("getdents64", SYS_getdents64, "list directories"),
        allow("readlinkat", SYS_readlinkat, "/proc/PID/exe of peers"),
        allow("faccessat", SYS_faccessat, "access checks"),
        allow("faccessat2", SYS_faccessat2, "access checks (newer glibc)"),
        allow("mkdirat", SYS_mkdirat, "create state dirs"),
        allow("renameat", SYS_renameat, "atomic file replace"),
        allow("renameat2", SYS_renameat2, "atomic file replace"),
        allow(
            "unlinkat",
            SYS_unlinkat,
            "remove files (purge, stale socket)",
        ),
        allow("fchmod", SYS_fchmod, "0600/0700 permissions"),
        allow(
            "fchmodat",
            SYS_fchmodat,
            "0600/0700 permissions (std::fs::set_permissions)",
        ),
        allow("ftruncate", SYS_ftruncate, "rewrite files"),
        allow("fsync", SYS_fsync, "durable writes"),
        allow("fdatasync", SYS_fdatasync, "durable writes"),
        allow("flock", SYS_flock, "single-instance lock file"),
        allow(
            "fcntl",
            SYS_fcntl,
            "O_NONBLOCK, FD_CLOEXEC, F_DUPFD_CLOEXEC, locks",
        ),
        allow("dup", SYS_dup, "fd duplication"),
        allow("dup3", SYS_dup3, "fd duplication"),
        allow("getcwd", SYS_getcwd, "path resolution in std"),
        allow_if(
            "ioctl",
            SYS_ioctl,
            any_of(
                1,
                &[
                    FIONBIO as u64,
                    FIOCLEX as u64,
                    FIONCLEX as u64,
                    FIONREAD as u64,
                    TCGETS as u64,
                ],
            ),
            "non-blocking/cloexec toggles, bytes available, isatty; nothing else (no TIOCSTI)",
        ),
        // ---- unix sockets only ------------------------------------------------------------------
        allow_if(
            "socketpair",
            SYS_socketpair,
            any_of(0, &[AF_UNIX as u64]),
            "AF_UNIX only (tokio signal driver, zbus)",
        ),
        allow("listen", SYS_listen, "the broker's socket"),
        allow("accept4", SYS_accept4, "accept clients"),
        allow(
            "recvmsg",
            SYS_recvmsg,
            "IPC and D-Bus (SCM_RIGHTS/SCM_CREDENTIALS)",
        ),
        allow("sendmsg", SYS_sendmsg, "IPC and D-Bus"),
        allow("recvfrom", SYS_recvfrom, "IPC"),
        allow("sendto", SYS_sendto, "IPC"),
        allow(
            "getsockopt",
            SYS_getsockopt,
            "SO_PEERCRED, SO_PEERPIDFD, SO_ERROR",
        ),
        allow(
            "setsockopt",
            SYS_setsockopt,
            "SO_PASSCRED for D-Bus, buffer sizes",
        ),
        allow("getsockname", SYS_getsockname, "socket addresses"),
        allow("getpeername", SYS_getpeername, "socket addresses"),
        allow("shutdown", SYS_shutdown, "close connections"),
        // ---- randomness, identity ----------------------------------------------------------------
        allow("getrandom", SYS_getrandom, "keys, nonces, HashMap seeds"),
        allow("uname", SYS_uname, "zbus/std platform info"),
        allow("getuid", SYS_getuid, "own uid (peer check)"),
        allow("geteuid", SYS_geteuid, "own uid"),
        allow("getgid", SYS_getgid, "own gid"),
        allow("getegid", SYS_getegid, "own gid"),
        allow("getresuid", SYS_getresuid, "own uids"),
        allow("getresgid", SYS_getresgid, "own gids"),
        allow_if(
            "prlimit64",
            SYS_prlimit64,
            vec![vec![ArgCheck::eq(0, 0), ArgCheck::eq(2, 0)]],
            "read own limits only (pid 0, new limit NULL): RLIMIT_CORE cannot be raised",
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        // x86_64 legacy entry points that glibc 2.36 still uses when they exist.
        allow(
            "open",
            SYS_open,
            "legacy open (some C code); Landlock limits the paths",
        ),
        allow("stat", SYS_stat, "legacy stat"),
        allow("lstat", SYS_lstat, "legacy lstat"),
        allow("access", SYS_access, "glibc access()"),
        allow(
            "readlink",
            SYS_readlink,
            "glibc readlink() (std::fs::read_link)",
        ),
        allow("mkdir", SYS_mkdir, "glibc mkdir() (std::fs::create_dir)"),
        allow("rename", SYS_rename, "glibc rename() (std::fs::rename)"),
        allow(
            "unlink",
            SYS_unlink,
            "glibc unlink() (std::fs::remove_file)",
        ),
        allow("rmdir", SYS_rmdir, "glibc rmdir() (std::fs::remove_dir)"),
        allow(
            "chmod",
            SYS_chmod,
            "glibc chmod() (std::fs::set_permissions)",
        ),
        allow("dup2", SYS_dup2, "glibc dup2()"),
        allow("poll", SYS_poll, "glibc poll()"),
        allow("epoll_wait", SYS_epoll_wait, "mio epoll_wait"),
        allow("getrlimit", SYS_getrlimit, "read own limits"),
    ]);
    rules
}

/// Paths sessiond needs; everything else on the filesystem is out of its reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessiondPaths {
    /// Session recordings (read-write).
    pub recordings_dir: PathBuf,
    /// The session audit log's directory (read-write).
    pub audit_dir: PathBuf,
    /// The records store's files (`records.db`, `-wal`, `-shm`): read-write,
    /// because SQLite readers in WAL mode write the shared-memory index.
    pub records_files: Vec<PathBuf>,
    /// Socket directory (read-write): its own socket, the broker's.
    pub runtime_dir: PathBuf,
    /// Installed binaries (read-only): peer identity.
    pub install_dir: PathBuf,
}

/// The files glibc reads to resolve a host name (devices, the AI provider).
fn name_resolution() -> [PathRule; 4] {
    [
        opt("/etc/hosts", "resolving host names"),
        opt("/etc/resolv.conf", "resolving host names"),
        opt("/etc/nsswitch.conf", "resolving host names"),
        opt("/etc/gai.conf", "address selection for resolved names"),
    ]
}

/// sessiond's profile: all flags; Landlock limited to its recordings and
/// audit directories, the records store files, the runtime and install
/// directories and `/proc`; TCP outward only (no listening); the
/// [`sessiond_syscalls`] table.
pub fn sessiond_profile(paths: &SessiondPaths) -> Profile {
    let mut read_write = vec![
        req(&paths.recordings_dir, "session recordings"),
        req(&paths.audit_dir, "the session audit log"),
        req(
            &paths.runtime_dir,
            "its listening socket, the broker's socket",
        ),
    ];
    read_write.extend(paths.records_files.iter().map(|p| {
        opt(
            p.clone(),
            "host records (SQLite WAL readers write the -shm index)",
        )
    }));
    let mut read_only = vec![
        req(
            &paths.install_dir,
            "peer identity: stat installed binaries to compare with /proc/PID/exe",
        ),
        req(
            Path::new("/proc"),
            "peer identity (/proc/PID/status) and self-inspection",
        ),
    ];
    read_only.extend(name_resolution());
    Profile {
        name: "sessiond",
        flags: ProfileFlags::ALL,
        landlock: Some(LandlockRules {
            read_write,
            read_only,
            tcp_bind: Vec::new(),
            tcp_connect: Vec::new(),
            tcp_connect_any: true,
            scope_abstract_unix: true,
            scope_signals: true,
        }),
        seccomp: Some(sessiond_syscalls()),
    }
}

/// Paths copilotd needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopilotdPaths {
    /// The records store's files (read-write: SQLite WAL readers write the index).
    pub records_files: Vec<PathBuf>,
    /// Provider settings (read-only).
    pub config_dir: PathBuf,
    /// Socket directory: its own socket; the broker's and sessiond's.
    pub runtime_dir: PathBuf,
    /// Installed binaries (read-only): peer identity.
    pub install_dir: PathBuf,
}

/// copilotd's profile: all flags; Landlock limited to the records store, its
/// settings, the org policies, the runtime and install directories, `/proc`,
/// name resolution and the TLS trust store; TCP outward only (the AI
/// provider, connectors, streamable-HTTP MCP servers; stdio MCP servers are
/// spawned before the profile is applied, copilotd keeps only their pipes); the same
/// syscall table as sessiond (IPC plus TCP/UDP out).
pub fn copilotd_profile(paths: &CopilotdPaths) -> Profile {
    let mut read_write = vec![req(
        &paths.runtime_dir,
        "its socket, the broker's and sessiond's",
    )];
    read_write.extend(paths.records_files.iter().map(|p| {
        opt(
            p.clone(),
            "records: reads (WAL readers write the -shm index) and the memory/procedure writes a person approved",
        )
    }));
    let mut read_only = vec![
        req(
            &paths.install_dir,
            "peer identity: stat installed binaries to compare with /proc/PID/exe",
        ),
        req(Path::new("/proc"), "peer identity and self-inspection"),
        opt(paths.config_dir.clone(), "provider settings"),
        opt("/etc/ssl", "TLS trust anchors for the provider"),
        opt(
            "/usr/share/ca-certificates",
            "TLS trust anchors for the provider",
        ),
        // The system trust store's links lead here for locally added CAs
        // (Debian/Ubuntu), and Fedora/RHEL keep the store here.
        opt(
            "/usr/local/share/ca-certificates",
            "locally added TLS trust anchors",
        ),
        opt("/etc/pki", "TLS trust anchors (Fedora/RHEL layout)"),
    ];
    read_only.extend(name_resolution());
    Profile {
        name: "copilotd",
        flags: ProfileFlags::ALL,
        landlock: Some(LandlockRules {
            read_write,
            read_only,
            tcp_bind: Vec::new(),
            tcp_connect: Vec::new(),
            tcp_connect_any: true,
            scope_abstract_unix: true,
            scope_signals: true,
        }),
        seccomp: Some(sessiond_syscalls()),
    }
}

/// What syncd may touch.
#[derive(Debug, Clone)]
pub struct SyncdPaths {
    /// The records store's files (read-write: it applies pulled records).
    pub records_files: Vec<PathBuf>,
    /// Its own state (`<data>/sync/`: server URL and pin, cursors), read-write.
    pub state_dir: PathBuf,
    /// Socket directory: its own socket, the broker's.
    pub runtime_dir: PathBuf,
    /// Installed binaries (read-only): peer identity.
    pub install_dir: PathBuf,
}

/// syncd's profile: all flags; Landlock limited to its own state, the
/// records store, the runtime and install directories, `/proc` and name
/// resolution (no TLS trust store: the server's certificate is pinned);
/// TCP outward only (the sync server); its own syscall table.
pub fn syncd_profile(paths: &SyncdPaths) -> Profile {
    let mut read_write = vec![
        req(&paths.runtime_dir, "its socket, the broker's"),
        req(
            &paths.state_dir,
            "its own state: server URL and pin, cursors, queued changes",
        ),
    ];
    read_write.extend(paths.records_files.iter().map(|p| {
        opt(
            p.clone(),
            "records: local changes to push, pulled records to apply",
        )
    }));
    let mut read_only = vec![
        req(
            &paths.install_dir,
            "peer identity: stat installed binaries to compare with /proc/PID/exe",
        ),
        req(Path::new("/proc"), "peer identity and self-inspection"),
    ];
    read_only.extend(name_resolution());
    Profile {
        name: "syncd",
        flags: ProfileFlags::ALL,
        landlock: Some(LandlockRules {
            read_write,
            read_only,
            tcp_bind: Vec::new(),
            tcp_connect: Vec::new(),
            tcp_connect_any: true,
            scope_abstract_unix: true,
            scope_signals: true,
        }),
        seccomp: Some(syncd_syscalls()),
    }
}

/// syncd's syscall table: the shared daemon rows plus unix sockets (IPC)
/// and IPv4/IPv6 out to the sync server (and DNS). No keyring, no secret
/// memory (it holds no key), no signals to others.
#[allow(clippy::unnecessary_cast)]
pub fn syncd_syscalls() -> SeccompPolicy {
    use libc::*;
    let mut rules = daemon_rules();
    rules.extend([
        allow_if(
            "socket",
            SYS_socket,
            any_of(0, &[AF_UNIX as u64, AF_INET as u64, AF_INET6 as u64]),
            "unix sockets (IPC) and IPv4/IPv6 to the sync server and DNS; netlink, packet, raw get EPERM",
        ),
        allow(
            "connect",
            SYS_connect,
            "the sync server (TCP; Landlock forbids listening), the broker, DNS",
        ),
        allow(
            "bind",
            SYS_bind,
            "its unix socket in the runtime dir (Landlock refuses TCP binds)",
        ),
    ]);
    SeccompPolicy {
        default_action: SyscallAction::Errno(EPERM),
        rules,
    }
}

/// sessiond's syscall table: the shared daemon rows plus TCP/UDP sockets to
/// devices (and DNS). No keyring, no secret memory, no signals to others.
/// copilotd uses the same table (TCP to the AI provider).
#[allow(clippy::unnecessary_cast)]
pub fn sessiond_syscalls() -> SeccompPolicy {
    use libc::*;
    let mut rules = daemon_rules();
    rules.extend([
        allow_if(
            "socket",
            SYS_socket,
            any_of(0, &[AF_UNIX as u64, AF_INET as u64, AF_INET6 as u64]),
            "unix sockets (IPC) and IPv4/IPv6 to devices and DNS; netlink, packet, raw get EPERM",
        ),
        allow(
            "connect",
            SYS_connect,
            "devices (TCP; Landlock forbids listening), the broker, DNS",
        ),
        allow(
            "bind",
            SYS_bind,
            "its unix socket in the runtime dir (Landlock refuses TCP binds)",
        ),
    ]);
    SeccompPolicy {
        default_action: SyscallAction::Errno(EPERM),
        rules,
    }
}
