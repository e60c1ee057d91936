//! Per-test scratch directories.
//!
//! A [`Scratch`] is a fresh directory `/tmp/gh-XXXXXX` (short, so that socket
//! paths under it stay well below the 108-byte `sun_path` limit) with:
//!
//! | path | owner, mode | use |
//! | --- | --- | --- |
//! | `<root>` | root 0711 (not root: current user 0700) | traverse only |
//! | `<root>/home` | test user 0700 | `HOME` of processes run with [`Scratch::command`] |
//! | `<root>/run` | test user 0700 | `XDG_RUNTIME_DIR` (gatehouse puts its sockets in `run/gatehouse/`) |
//! | `<root>/install` | root 0755 (not root: current user 0555) | the trusted install dir, see [`crate::install`] |
//!
//! The root is deliberately *not* owned by the test user: if it were, the
//! user could rename `install/` away and put other binaries in its place,
//! which a real installation (`/usr/lib/...`, root-owned) does not allow.
//!
//! The directory is removed on drop, unless the environment variable
//! `GATEHOUSE_KEEP_SCRATCH` is set (then its path is printed), which helps
//! when debugging a failing test.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::users::{self, TestUser};

/// A per-test directory tree owned by (parts of it) a test user.
#[derive(Debug)]
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    user: TestUser,
    home: PathBuf,
    runtime: PathBuf,
    install: PathBuf,
}

impl Scratch {
    /// A scratch tree for [`TestUser::primary`].
    pub fn primary() -> Result<Scratch> {
        Self::new(&TestUser::try_primary()?)
    }

    /// A scratch tree for `user` (which must be the current user unless
    /// running as root).
    pub fn new(user: &TestUser) -> Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("gh-")
            .tempdir_in("/tmp")
            .context("creating scratch dir in /tmp")?;
        let root = dir.path().to_path_buf();
        let mut s = Scratch {
            dir: Some(dir),
            home: root.join("home"),
            runtime: root.join("run"),
            install: root.join("install"),
            root,
            user: user.clone(),
        };
        if users::is_root() {
            set_mode(&s.root, 0o711)?;
        }
        s.home = s.user_dir("home")?;
        s.runtime = s.user_dir("run")?;
        s.install = s.trusted_dir("install")?;
        Ok(s)
    }

    /// The scratch root.
    pub fn path(&self) -> &Path {
        &self.root
    }
    /// The user processes run as.
    pub fn user(&self) -> &TestUser {
        &self.user
    }
    /// Private home (test user, 0700).
    pub fn home(&self) -> &Path {
        &self.home
    }
    /// Private `XDG_RUNTIME_DIR` (test user, 0700).
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }
    /// Trusted install dir (not writable by the test user).
    pub fn install_dir(&self) -> &Path {
        &self.install
    }

    /// Creates `<root>/<name>` (and parents) owned by the test user, mode 0700.
    pub fn user_dir(&self, name: impl AsRef<Path>) -> Result<PathBuf> {
        let p = self.root.join(name);
        fs::create_dir_all(&p).with_context(|| format!("mkdir {}", p.display()))?;
        self.give(&p)?;
        set_mode(&p, 0o700)?;
        Ok(p)
    }

    /// Creates `<root>/<name>` that the test user can read and traverse but
    /// not write: root-owned 0755 as root, else 0555.
    pub fn trusted_dir(&self, name: impl AsRef<Path>) -> Result<PathBuf> {
        let p = self.root.join(name);
        fs::create_dir_all(&p).with_context(|| format!("mkdir {}", p.display()))?;
        set_mode(&p, if users::is_root() { 0o755 } else { 0o555 })?;
        Ok(p)
    }

    /// Writes `contents` to `path` (absolute, or relative to the root), owned
    /// by the test user with `mode`.
    pub fn write_user_file(
        &self,
        path: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<PathBuf> {
        let p = self.root.join(path);
        fs::write(&p, contents).with_context(|| format!("writing {}", p.display()))?;
        self.give(&p)?;
        set_mode(&p, mode)?;
        Ok(p)
    }

    /// chowns `path` to the test user (no-op when not root).
    pub fn give(&self, path: &Path) -> Result<()> {
        if users::is_root() {
            chown(path, Some(self.user.uid), Some(self.user.gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    /// The environment of processes run in this scratch (see [`users::run_as`]).
    pub fn env(&self) -> Vec<(String, String)> {
        let h = self.home.display().to_string();
        let mut env = vec![
            ("HOME".into(), h.clone()),
            ("USER".into(), self.user.name.clone()),
            ("LOGNAME".into(), self.user.name.clone()),
            ("XDG_RUNTIME_DIR".into(), self.runtime.display().to_string()),
            ("XDG_CONFIG_HOME".into(), format!("{h}/.config")),
            ("XDG_DATA_HOME".into(), format!("{h}/.local/share")),
            ("XDG_CACHE_HOME".into(), format!("{h}/.cache")),
            ("XDG_STATE_HOME".into(), format!("{h}/.local/state")),
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        for k in ["RUST_BACKTRACE", "RUST_LOG"] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.into(), v));
            }
        }
        env
    }

    /// A [`Command`] for `program` that runs as the test user with this
    /// scratch's private environment ([`users::run_as`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        users::run_as(&mut cmd, self);
        cmd
    }

    /// Keeps the directory after drop and returns its path.
    pub fn keep(mut self) -> PathBuf {
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
        self.root.clone()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if std::env::var_os("GATEHOUSE_KEEP_SCRATCH").is_some() {
            eprintln!("keeping scratch dir {}", dir.keep().display());
            return;
        }
        if !users::is_root() {
            // Read-only dirs (install) must be writable again to be removed.
            make_writable(&self.root);
        }
        let _ = dir.close();
    }
}

fn make_writable(p: &Path) {
    if let Ok(meta) = fs::symlink_metadata(p)
        && meta.is_dir()
    {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                make_writable(&e.path());
            }
        }
    }
}

pub(crate) fn set_mode(p: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", p.display()))
}
