//! Real OS keychains for processes run as the test user.
//!
//! Gatehouse keeps credential payloads in the OS keychain through the
//! `keyring` stores: the Secret Service (org.freedesktop.secrets, here served
//! by gnome-keyring) where a desktop session runs one, else the kernel
//! keyutils store. Tests exercise both for real.
//!
//! ## Secret Service: [`KeychainEnv`]
//!
//! [`KeychainEnv::start`] starts, **as the scratch's test user**:
//!
//! 1. a private D-Bus session bus: `dbus-daemon --config-file=<scratch>/keychain/bus.conf
//!    --nofork --print-address=1`, listening on the path socket
//!    `$XDG_RUNTIME_DIR/bus` (never an abstract socket). The config is the
//!    stock session config *without* service directories, so nothing is
//!    auto-activated behind the test's back;
//! 2. `gnome-keyring-daemon --unlock --components=secrets --foreground`
//!    with a generated login password on stdin. (`--start` is refused
//!    together with `--unlock`; an *empty* password creates no login
//!    keyring, so the `default` alias would not resolve.) It creates and
//!    unlocks the `login` collection under `$HOME/.local/share/keyrings`.
//!
//! It is ready when `org.freedesktop.Secret.Service.ReadAlias("default")`
//! answers `/org/freedesktop/secrets/collection/login`. A process that should
//! use it needs the scratch environment ([`crate::Scratch::command`]: HOME,
//! XDG_RUNTIME_DIR, same uid as the bus) plus `DBUS_SESSION_BUS_ADDRESS`
//! from [`KeychainEnv::env`]; [`KeychainEnv::command`] does both. Dropping
//! the `KeychainEnv` kills both daemons.
//!
//! ## Kernel keyutils: [`keyutils_wrap`]
//!
//! A process started from a root test with [`std::os::unix::process::CommandExt::uid`]
//! keeps the *session keyring of its parent*. If the test runner has none
//! (the usual case), `@s` of the child resolves to the test user's own
//! user-session keyring `_uid_ses.<uid>`. But if the runner does have one
//! (started from a PAM login with pam_keyinit, or under `keyctl session`),
//! every child — of *any* uid — possesses that same root-owned keyring, and
//! a key one test user adds there is readable by another uid. So processes
//! under test should get a session keyring of their own:
//! [`keyutils_wrap`] joins one in the child (after the uid switch, before
//! exec, so the pid and `/proc/PID/exe` stay those of the real binary).
//! See tests/README.md for what a second process can and cannot see.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::proc::{ChildGuard, LineReader, wait_until};
use crate::scratch::Scratch;

/// How long to wait for each daemon to become ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The object path of the collection gnome-keyring creates on `--unlock`.
pub const LOGIN_COLLECTION: &str = "/org/freedesktop/secrets/collection/login";

/// A private session bus with gnome-keyring's Secret Service, run as a test user.
#[derive(Debug)]
pub struct KeychainEnv {
    // Field order = drop order: keyring first, then the bus.
    keyring: ChildGuard,
    bus: ChildGuard,
    address: String,
    socket: PathBuf,
    dir: PathBuf,
    password: String,
}

impl KeychainEnv {
    /// Starts the bus and gnome-keyring as `scratch`'s user and waits until
    /// the Secret Service answers (up to [`START_TIMEOUT`] each).
    pub fn start(scratch: &Scratch) -> Result<KeychainEnv> {
        let dir = scratch.user_dir("keychain")?;
        let (bus, address, socket) = start_session_bus(scratch, &dir, false)?;

        let password = format!("gatehouse-test-login-{}", std::process::id());
        let gk_log = scratch.write_user_file(dir.join("gnome-keyring.log"), "", 0o600)?;
        let mut cmd = scratch.command("gnome-keyring-daemon");
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &address)
            .args(["--unlock", "--components=secrets", "--foreground"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&gk_log)?)
            .stderr(std::fs::File::create(&gk_log)?);
        let mut keyring = ChildGuard::spawn_group(&mut cmd)
            .context("starting gnome-keyring-daemon (package gnome-keyring; run scripts/deps)")?;
        {
            let mut stdin = keyring.stdin.take().expect("piped");
            stdin.write_all(password.as_bytes())?;
            // Closing stdin ends the password.
        }

        let env = KeychainEnv {
            keyring,
            bus,
            address,
            socket,
            dir,
            password,
        };
        let mut last = String::new();
        let ready = wait_until("the Secret Service", START_TIMEOUT, || {
            if !crate::proc::is_alive(env.keyring.pid()) {
                bail!("gnome-keyring-daemon exited; log: {}", read(&gk_log));
            }
            let out = env
                .command(scratch, "dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.secrets",
                    "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service.ReadAlias",
                    "string:default",
                ])
                .output()
                .context("running dbus-send (package dbus-bin)")?;
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(out.status.success() && last.contains(LOGIN_COLLECTION))
        });
        ready.with_context(|| format!("last answer: {last}; log: {}", read(&gk_log)))?;
        Ok(env)
    }

    /// `unix:path=...,guid=...` of the private bus.
    pub fn bus_address(&self) -> &str {
        &self.address
    }
    /// The bus socket (inside the scratch runtime dir).
    pub fn bus_socket(&self) -> &Path {
        &self.socket
    }
    /// Where the bus config and the daemons' logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The login keyring password given to gnome-keyring.
    pub fn login_password(&self) -> &str {
        &self.password
    }
    pub fn bus_pid(&self) -> u32 {
        self.bus.pid()
    }
    pub fn keyring_pid(&self) -> u32 {
        self.keyring.pid()
    }

    /// Variables to add to a process run as the same user (on top of the
    /// scratch environment) so that it uses this Secret Service.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS".into(), self.address.clone())]
    }

    /// Adds [`KeychainEnv::env`] to `cmd`.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.envs(self.env())
    }

    /// `scratch.command(program)` with this keychain's environment.
    pub fn command(&self, scratch: &Scratch, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = scratch.command(program);
        self.apply(&mut cmd);
        cmd
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("<{e}>"))
}

/// Starts a private session bus (`dbus-daemon`) as `scratch`'s user,
/// listening on `$XDG_RUNTIME_DIR/bus`, its config and log in `dir`; waits
/// for its address. `allow_root`: root (the test process itself) may connect
/// too, to serve or watch a name on the user's bus. Returns the daemon, its
/// address and its socket.
pub fn start_session_bus(
    scratch: &Scratch,
    dir: &Path,
    allow_root: bool,
) -> Result<(ChildGuard, String, PathBuf)> {
    let socket = scratch.runtime_dir().join("bus");
    let conf =
        scratch.write_user_file(dir.join("bus.conf"), bus_config(&socket, allow_root), 0o600)?;
    let bus_log = scratch.write_user_file(dir.join("dbus-daemon.log"), "", 0o600)?;
    let mut cmd = scratch.command("dbus-daemon");
    cmd.arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&bus_log)?);
    let mut bus = ChildGuard::spawn_group(&mut cmd)
        .context("starting dbus-daemon (package dbus-daemon; run scripts/deps)")?;
    let mut lines = LineReader::spawn(bus.stdout.take().expect("piped"));
    let address = lines
        .next_line(START_TIMEOUT)
        .with_context(|| format!("dbus-daemon printed no address; log: {}", read(&bus_log)))?;
    if !address.starts_with("unix:path=") {
        bail!("unexpected bus address {address}");
    }
    Ok((bus, address, socket))
}

/// The stock session bus policy, listening on `socket`, without service
/// directories (no auto-activation); `allow_root`: uid 0 may connect too
/// (by default only the bus's own uid may).
fn bus_config(socket: &Path, allow_root: bool) -> String {
    let root = if allow_root {
        "\n    <allow user=\"root\"/>"
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>{root}
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// Which session keyring a process started with [`keyutils_wrap`] gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKeyring {
    /// Keep the parent's (see the module docs for why that is risky).
    Inherit,
    /// A new anonymous session keyring owned by the child's uid, like a new
    /// login session (what pam_keyinit gives): keys added to it die with the
    /// last process holding it, unless also linked into a longer-lived
    /// keyring (user `@u` or persistent).
    New,
    /// The user's own user-session keyring `_uid_ses.<uid>` (what a process
    /// without any session keyring uses): shared by every process of that
    /// uid that joins it or has no session keyring, for as long as the kernel
    /// keeps the uid's keyrings.
    UserSession,
}

const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEY_SPEC_USER_SESSION_KEYRING: libc::c_long = -5;

/// Makes `cmd` join a session keyring of its own (per `mode`) right before
/// exec, after the uid/gid switch of [`crate::users::run_as`], so the keyring
/// belongs to the test user. The pid and executable do not change.
pub fn keyutils_wrap(cmd: &mut Command, mode: SessionKeyring) -> &mut Command {
    if mode == SessionKeyring::Inherit {
        return cmd;
    }
    let user_session = mode == SessionKeyring::UserSession;
    // Allocated before fork: the closure must not allocate.
    let mut name: Option<CString> = None;
    let uid_known = cmd_target_uid(cmd);
    if user_session {
        name = Some(CString::new(format!("_uid_ses.{uid_known}")).expect("no NUL"));
    }
    // SAFETY: the closure only makes raw keyctl(2) system calls, which are
    // async-signal-safe, and touches no memory allocated after fork.
    unsafe {
        cmd.pre_exec(move || {
            let name_ptr = match &name {
                Some(n) => {
                    // Make sure the user-session keyring exists before
                    // joining it by name (joining a missing name would
                    // create a new, unrelated keyring of that name).
                    if libc::syscall(
                        libc::SYS_keyctl,
                        KEYCTL_GET_KEYRING_ID,
                        KEY_SPEC_USER_SESSION_KEYRING,
                        1 as libc::c_long,
                    ) < 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    n.as_ptr()
                }
                None => std::ptr::null(),
            };
            if libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name_ptr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The uid `cmd` will run as: not observable on `Command`, so this uses the
/// `USER` variable that [`crate::users::set_identity`] sets, falling back to
/// the current uid.
fn cmd_target_uid(cmd: &Command) -> u32 {
    let user = cmd
        .get_envs()
        .find(|(k, _)| *k == "USER")
        .and_then(|(_, v)| v)
        .and_then(|v| v.to_str())
        .and_then(|n| crate::users::TestUser::lookup(n).ok().flatten());
    match user {
        Some(u) => u.uid,
        None => nix::unistd::Uid::effective().as_raw(),
    }
}
