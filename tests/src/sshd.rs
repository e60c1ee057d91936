//! A real OpenSSH `sshd` on loopback, started by tests.
//!
//! Owns: the sshd process (foreground, `-D -e`, killed on drop), its private
//! config, a host key and a client key pair generated at run time with
//! `ssh-keygen`, and the local login user [`SSH_USER`] with a password
//! generated at run time. Must never: listen on anything but 127.0.0.1, use
//! the system's sshd config or host keys, or put a fixed secret anywhere.
//!
//! * [`Sshd::start`] offers password, keyboard-interactive (PAM) and public
//!   key; [`Sshd::start_with`] restricts to one method, so a client really
//!   exercises it (OpenSSH's `AuthenticationMethods`).
//! * The login user `gatehouse-ssh` (shell `/bin/bash`) is created with
//!   `useradd` on first use. Its password is generated once per machine
//!   boot and kept in [`PASSWORD_FILE`] (root-only, in `/run`), so that
//!   parallel test processes agree on it; it is (re)applied with `chpasswd`
//!   under a lock on every start.
//! * Needs root (the privilege-separated sshd and `chpasswd` do); CI runs as
//!   root. [`Sshd::start_or_skip`] returns `None` (printing why) otherwise.
//! * [`Sshd::restart_with_new_host_key`] restarts on the same port with a
//!   fresh host key, for host-key-change tests.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use nix::fcntl::{Flock, FlockArg};

use crate::proc::{ChildGuard, LineReader};
use crate::scratch::Scratch;
use crate::users::{self, TestUser};

/// The sshd binary (Debian's openssh-server).
pub const SSHD: &str = "/usr/sbin/sshd";
/// The local user tests log in as.
pub const SSH_USER: &str = "gatehouse-ssh";
/// Root-only file holding [`SSH_USER`]'s run-time generated password.
pub const PASSWORD_FILE: &str = "/run/gatehouse-tests-ssh-password";
/// Lock serializing password set-up across test processes.
pub const PASSWORD_LOCK: &str = "/run/gatehouse-tests-ssh-password.lock";
/// How long sshd gets to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Which authentication methods the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethods {
    /// Password, keyboard-interactive and public key (any one suffices).
    All,
    /// Only `password`.
    PasswordOnly,
    /// Only `keyboard-interactive` (PAM asks `Password: `).
    KeyboardInteractiveOnly,
    /// Only `publickey`.
    PublicKeyOnly,
}

impl AuthMethods {
    fn config(self) -> &'static str {
        match self {
            AuthMethods::All => {
                "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n\
                 PubkeyAuthentication yes\n"
            }
            AuthMethods::PasswordOnly => {
                "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication no\nAuthenticationMethods password\n"
            }
            AuthMethods::KeyboardInteractiveOnly => {
                "PasswordAuthentication no\nKbdInteractiveAuthentication yes\n\
                 PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n"
            }
            AuthMethods::PublicKeyOnly => {
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nAuthenticationMethods publickey\n"
            }
        }
    }
}

/// A running sshd on 127.0.0.1.
#[derive(Debug)]
pub struct Sshd {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Presented host key as `ssh-ed25519 SHA256:…` (the records' pin format).
    pub host_key_fingerprint: String,
    /// Host public key line (`ssh-ed25519 AAAA… comment`).
    pub host_public_key: String,
    /// Login user.
    pub user: String,
    /// Its password (generated at run time).
    pub password: String,
    /// Authorized client private key, OpenSSH PEM text (generated at run time).
    pub client_private_key: String,
    /// The matching public key line.
    pub client_public_key: String,
    /// The client private key file (root, 0600), for `ssh -i`.
    pub client_key_path: PathBuf,
    methods: AuthMethods,
    dir: PathBuf,
    log: Option<LineReader>,
    child: Option<ChildGuard>,
    _scratch: Scratch,
}

impl Sshd {
    /// Starts sshd accepting every method. Needs root.
    pub fn start() -> Result<Sshd> {
        Self::start_with(AuthMethods::All)
    }

    /// [`Sshd::start`], or `None` (printing why `test` is skipped) when not
    /// running as root.
    pub fn start_or_skip(test: &str) -> Option<Sshd> {
        if !users::is_root() {
            eprintln!("SKIPPED {test}: starting sshd needs root (CI runs as root)");
            return None;
        }
        Some(Self::start().expect("starting sshd"))
    }

    /// Starts sshd accepting only `methods`. Needs root.
    pub fn start_with(methods: AuthMethods) -> Result<Sshd> {
        if !users::is_root() {
            bail!("starting sshd needs root");
        }
        if !Path::new(SSHD).is_file() {
            bail!("{SSHD} missing: install openssh-server (scripts/deps)");
        }
        std::fs::create_dir_all("/run/sshd").context("mkdir /run/sshd")?;
        std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755))
            .context("chmod /run/sshd")?;
        let user = users::ensure_user(SSH_USER)?;
        let password = ensure_password(&user)?;
        let scratch = Scratch::new(&user)?;
        let dir = scratch.trusted_dir("sshd")?;

        keygen(&dir.join("client_key"), "gatehouse-test-client")?;
        let client_key_path = dir.join("client_key");
        let client_private_key = std::fs::read_to_string(&client_key_path)?;
        let client_public_key = std::fs::read_to_string(dir.join("client_key.pub"))?
            .trim()
            .to_string();
        let auth_keys = dir.join("authorized_keys");
        std::fs::write(&auth_keys, format!("{client_public_key}\n"))?;
        std::fs::set_permissions(&auth_keys, std::fs::Permissions::from_mode(0o644))?;

        let mut sshd = Sshd {
            port: 0,
            host_key_fingerprint: String::new(),
            host_public_key: String::new(),
            user: user.name.clone(),
            password,
            client_private_key,
            client_public_key,
            client_key_path,
            methods,
            dir,
            log: None,
            child: None,
            _scratch: scratch,
        };
        sshd.new_host_key()?;
        // A free port can be taken between probing and sshd's bind: retry.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            match sshd.spawn(port) {
                Ok(()) => return Ok(sshd),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .expect("at least one attempt")
            .context("sshd did not start in 5 attempts"))
    }

    /// The sshd config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    /// The host public key file.
    pub fn host_public_key_path(&self) -> PathBuf {
        self.dir.join("host_key.pub")
    }

    /// The sshd process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// sshd's log lines (`-e`) read so far, plus those arriving within `wait`.
    pub fn log_lines(&mut self, wait: Duration) -> Vec<String> {
        let Some(log) = self.log.as_mut() else {
            return Vec::new();
        };
        let deadline = Instant::now() + wait;
        while log
            .next_line(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
        {}
        log.seen().to_vec()
    }

    /// A `known_hosts` line pinning this server's current host key.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public_key)
    }

    /// Stops sshd, generates a new host key and starts again on the same port.
    pub fn restart_with_new_host_key(&mut self) -> Result<()> {
        let old = self.host_key_fingerprint.clone();
        self.stop();
        self.new_host_key()?;
        if self.host_key_fingerprint == old {
            bail!("ssh-keygen produced the same host key twice");
        }
        // The port was just released; retry briefly if the kernel still holds it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn(self.port) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Kills sshd (and every session process in its group).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill9();
        }
        self.log = None;
    }

    fn new_host_key(&mut self) -> Result<()> {
        let key = self.dir.join("host_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(self.host_public_key_path());
        keygen(&key, "gatehouse-test-host")?;
        self.host_public_key = std::fs::read_to_string(self.host_public_key_path())?
            .trim()
            .to_string();
        self.host_key_fingerprint = fingerprint_of_line(&self.host_public_key)?;
        Ok(())
    }

    fn spawn(&mut self, port: u16) -> Result<()> {
        let d = &self.dir;
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {hk}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {ak}\n\
             StrictModes no\n\
             UsePAM yes\n\
             {methods}\
             AllowUsers {user}\n\
             PermitRootLogin no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             AllowAgentForwarding no\n\
             AllowTcpForwarding no\n\
             MaxAuthTries 10\n\
             MaxSessions 20\n\
             MaxStartups 50\n\
             LogLevel VERBOSE\n",
            hk = d.join("host_key").display(),
            pid = d.join("sshd.pid").display(),
            ak = d.join("authorized_keys").display(),
            methods = self.methods.config(),
            user = self.user,
        );
        std::fs::write(self.config_path(), config)?;
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn_group(&mut cmd)?;
        let stderr = child.child_mut().stderr.take().context("sshd stderr")?;
        let mut log = LineReader::spawn(stderr);
        let want = format!("Server listening on 127.0.0.1 port {port}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.next_line(left) {
                Ok(l) if l.contains(&want) => break,
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill9();
                    return Err(e.context(format!("sshd on port {port} did not start")));
                }
            }
        }
        self.port = port;
        self.child = Some(child);
        self.log = Some(log);
        Ok(())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ssh-keygen -t ed25519 -N '' -f path -C comment` (path must not exist).
fn keygen(path: &Path, comment: &str) -> Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen (package openssh-client)")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen -f {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `ALG SHA256:…` of an OpenSSH public key line, computed by
/// `ssh-keygen -l -E sha256` (the reference implementation).
pub fn fingerprint_of_line(line: &str) -> Result<String> {
    let alg = line.split_whitespace().next().context("empty key line")?;
    let mut child = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ssh-keygen -l")?;
    child
        .stdin
        .take()
        .context("ssh-keygen stdin")?
        .write_all(format!("{line}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fp = text
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .with_context(|| {
            format!(
                "ssh-keygen -l printed no fingerprint: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(format!("{alg} {fp}"))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The login user's password: read from [`PASSWORD_FILE`], or generated
/// (24 random bytes, base64) and written there; then applied with chpasswd.
/// Serialized across processes by a lock.
fn ensure_password(user: &TestUser) -> Result<String> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(PASSWORD_LOCK)
        .with_context(|| format!("opening {PASSWORD_LOCK}"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("flock {PASSWORD_LOCK}"))?;
    let password = match std::fs::read_to_string(PASSWORD_FILE) {
        Ok(p) if p.trim().len() >= 16 => p.trim().to_string(),
        _ => {
            let mut raw = [0u8; 24];
            std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
            let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(PASSWORD_FILE)
                .with_context(|| format!("writing {PASSWORD_FILE}"))?;
            f.write_all(p.as_bytes())?;
            p
        }
    };
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running chpasswd (package passwd)")?;
    child
        .stdin
        .take()
        .context("chpasswd stdin")?
        .write_all(format!("{}:{password}\n", user.name).as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "chpasswd for {} failed: {}",
            user.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(password)
}
