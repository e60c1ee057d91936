//! Unprivileged test users.
//!
//! Gatehouse refuses peers of another uid and must never need root, so
//! cross-process tests run the processes under test as an ordinary user:
//!
//! * When the test runs as **root** (CI does), [`TestUser::primary`] is the
//!   user `gatehouse-test` and [`TestUser::other`] is `gatehouse-other`. Both
//!   are created with `useradd --create-home --shell /bin/bash --user-group`
//!   the first time they are needed. Creation is idempotent and safe across
//!   parallel test processes (nextest runs every test in its own process):
//!   it happens under an exclusive `flock` on [`LOCK_PATH`], and the user is
//!   looked up again after the lock is taken.
//! * When the test does **not** run as root, the primary user is the current
//!   user and there is no second uid: [`TestUser::other`] returns `None`, and
//!   tests that need it should call [`TestUser::other_or_skip`] and return
//!   early (it prints the reason).
//!
//! [`set_identity`] makes a [`Command`] run as a user (uid and gid through
//! [`CommandExt`], no `unsafe`; std drops the supplementary groups);
//! [`run_as`] additionally gives it the private environment of a
//! [`Scratch`] (HOME, USER, XDG_RUNTIME_DIR, ... — see [`Scratch::env`]).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Uid, User};

use crate::scratch::Scratch;

/// Name of the primary test user when running as root.
pub const PRIMARY_NAME: &str = "gatehouse-test";
/// Name of the second ("other uid") test user when running as root.
pub const OTHER_NAME: &str = "gatehouse-other";
/// Lock file serializing user creation across test processes.
pub const LOCK_PATH: &str = "/run/gatehouse-tests-users.lock";

/// A local user that test processes run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The home directory from the password database. Processes started with
    /// [`run_as`] get a per-test home instead (see [`Scratch`]).
    pub home: PathBuf,
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    Uid::effective().is_root()
}

static PRIMARY: OnceLock<TestUser> = OnceLock::new();
static OTHER: OnceLock<TestUser> = OnceLock::new();
static CREATE: Mutex<()> = Mutex::new(());

impl TestUser {
    /// The user that processes under test run as: `gatehouse-test` (created if
    /// missing) as root, else the current user. Panics if it cannot be set up.
    pub fn primary() -> TestUser {
        Self::try_primary().expect("setting up the primary test user")
    }

    /// Like [`TestUser::primary`], returning the error.
    pub fn try_primary() -> Result<TestUser> {
        if let Some(u) = PRIMARY.get() {
            return Ok(u.clone());
        }
        let u = if is_root() {
            ensure_user(PRIMARY_NAME)?
        } else {
            Self::current()?
        };
        Ok(PRIMARY.get_or_init(|| u).clone())
    }

    /// A second unprivileged uid, different from the primary one; `None`
    /// when not running as root. Panics if root fails to create it.
    pub fn other() -> Option<TestUser> {
        if !is_root() {
            return None;
        }
        if let Some(u) = OTHER.get() {
            return Some(u.clone());
        }
        let u = ensure_user(OTHER_NAME).expect("setting up the other test user");
        Some(OTHER.get_or_init(|| u).clone())
    }

    /// [`TestUser::other`], printing why the calling test is skipped when
    /// there is none: `let Some(other) = TestUser::other_or_skip("x") else { return };`
    pub fn other_or_skip(test: &str) -> Option<TestUser> {
        let u = Self::other();
        if u.is_none() {
            eprintln!(
                "SKIPPED {test}: needs a second uid, which only a root test run can create \
                 (CI runs as root)"
            );
        }
        u
    }

    /// The user this process runs as (effective uid).
    pub fn current() -> Result<TestUser> {
        let uid = Uid::effective();
        let user = User::from_uid(uid)
            .context("getpwuid")?
            .with_context(|| format!("uid {uid} has no passwd entry"))?;
        Ok(Self::from_passwd(user))
    }

    /// Looks a user up by name.
    pub fn lookup(name: &str) -> Result<Option<TestUser>> {
        Ok(User::from_name(name)
            .with_context(|| format!("getpwnam({name})"))?
            .map(Self::from_passwd))
    }

    fn from_passwd(u: User) -> TestUser {
        TestUser {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        }
    }

    /// Whether this is the user the current process runs as.
    pub fn is_current(&self) -> bool {
        self.uid == Uid::effective().as_raw()
    }
}

/// Returns the user `name`, creating it (`useradd --create-home --shell
/// /bin/bash --user-group`) if it does not exist. Needs root to create.
/// Safe to call concurrently from threads and processes.
pub fn ensure_user(name: &str) -> Result<TestUser> {
    if let Some(u) = TestUser::lookup(name)? {
        return Ok(u);
    }
    if !is_root() {
        bail!("user {name} does not exist and only root can create it");
    }
    let _in_process = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .with_context(|| format!("opening {LOCK_PATH}"))?;
    let _lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("flock {LOCK_PATH}"))?;
    // Another process may have created it while we waited for the lock.
    if let Some(u) = TestUser::lookup(name)? {
        return Ok(u);
    }
    let out = Command::new("useradd")
        .args([
            "--create-home",
            "--shell",
            "/bin/bash",
            "--user-group",
            name,
        ])
        .output()
        .context("running useradd (package passwd; run scripts/deps)")?;
    if !out.status.success() {
        bail!(
            "useradd {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    TestUser::lookup(name)?.with_context(|| format!("{name} missing right after useradd"))
}

/// Makes `cmd` run as `user`: uid and gid, no supplementary groups (only
/// when the user differs from the current one), plus `USER` and `LOGNAME`. Does not touch HOME or the rest of
/// the environment; [`run_as`] does.
pub fn set_identity<'a>(cmd: &'a mut Command, user: &TestUser) -> &'a mut Command {
    if !user.is_current() {
        // std calls setgroups(0, NULL) before setgid/setuid when the parent
        // is root, so the child has no supplementary groups (the test users
        // are created with only their own group).
        cmd.gid(user.gid).uid(user.uid);
    }
    cmd.env("USER", &user.name).env("LOGNAME", &user.name)
}

/// Makes `cmd` run as the scratch's user with the scratch's private
/// environment: the environment is cleared, then HOME, USER, LOGNAME,
/// XDG_RUNTIME_DIR, XDG_{CONFIG,DATA,CACHE,STATE}_HOME, PATH, LANG (and
/// RUST_BACKTRACE / RUST_LOG when set here) are set, and the working
/// directory is the private home. Add more variables after calling this.
pub fn run_as<'a>(cmd: &'a mut Command, scratch: &Scratch) -> &'a mut Command {
    cmd.env_clear();
    set_identity(cmd, scratch.user());
    cmd.envs(scratch.env()).current_dir(scratch.home())
}
