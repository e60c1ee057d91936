//! Process helpers: waiting, killing, `/proc/PID/status`, child output.
//!
//! * [`ChildGuard`] owns a [`Child`] and SIGKILLs (and reaps) it on drop, so
//!   a failing assertion never leaves a daemon running. With
//!   [`ChildGuard::spawn_group`] the child leads a new process group and the
//!   whole group is killed.
//! * [`wait_for_socket`], [`wait_for_exit`], [`wait_until`] poll with a
//!   timeout and return an error (never hang).
//! * [`status`], [`status_field`], [`uids`], [`exe`] read `/proc/PID/...`.
//! * [`LineReader`] reads a child's stdout/stderr lines on a thread so tests
//!   can wait for a line with a timeout.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Poll interval of the wait helpers.
pub const POLL: Duration = Duration::from_millis(20);

/// Calls `f` every [`POLL`] until it returns `Ok(true)`, an error, or
/// `timeout` passes (then an error naming `what`).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if f()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until `path` exists and is a Unix socket. Does not connect (a probe
/// connection from the test's uid would be seen — and refused, and maybe
/// logged — by the server under test).
pub fn wait_for_socket(path: &Path, timeout: Duration) -> Result<()> {
    wait_until(&format!("socket {}", path.display()), timeout, || {
        Ok(std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false))
    })
}

/// Waits for `child` to exit and returns its status; error on timeout (the
/// child is left running — wrap it in a [`ChildGuard`] to have it killed).
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let mut status = None;
    wait_until(&format!("pid {} to exit", child.id()), timeout, || {
        status = child.try_wait().context("waitpid")?;
        Ok(status.is_some())
    })?;
    Ok(status.expect("set when wait_until succeeds"))
}

/// Sends SIGKILL to `pid`.
pub fn kill9(pid: u32) -> Result<()> {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).with_context(|| format!("kill -9 {pid}"))
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: Signal) -> Result<()> {
    kill(Pid::from_raw(pid as i32), sig).with_context(|| format!("kill -{sig} {pid}"))
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match status_field(pid, "State") {
        Ok(s) => !s.starts_with('Z') && !s.starts_with('X'),
        Err(_) => false,
    }
}

/// All fields of `/proc/PID/status` (`Name`, `State`, `Uid`, `VmRSS`, ...),
/// values trimmed.
pub fn status(pid: u32) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// One field of `/proc/PID/status`.
pub fn status_field(pid: u32, field: &str) -> Result<String> {
    status(pid)?
        .remove(field)
        .with_context(|| format!("/proc/{pid}/status has no {field}"))
}

/// Real, effective, saved and filesystem uid of `pid`.
pub fn uids(pid: u32) -> Result<[u32; 4]> {
    ids(pid, "Uid")
}

/// Real, effective, saved and filesystem gid of `pid`.
pub fn gids(pid: u32) -> Result<[u32; 4]> {
    ids(pid, "Gid")
}

fn ids(pid: u32, field: &str) -> Result<[u32; 4]> {
    let v = status_field(pid, field)?;
    let n: Vec<u32> = v
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {field}: {v}"))?;
    n.try_into()
        .map_err(|_| anyhow::anyhow!("{field} has not 4 values: {v}"))
}

/// The target of `/proc/PID/exe`.
pub fn exe(pid: u32) -> Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .with_context(|| format!("readlink /proc/{pid}/exe"))
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    group: bool,
}

impl ChildGuard {
    /// Takes ownership of an already spawned child.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            group: false,
        }
    }

    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Result<ChildGuard> {
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        Ok(Self::new(child))
    }

    /// Spawns `cmd` as the leader of a new process group; drop kills the group.
    pub fn spawn_group(cmd: &mut Command) -> Result<ChildGuard> {
        cmd.process_group(0);
        let mut g = Self::spawn(cmd)?;
        g.group = true;
        Ok(g)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("child present until drop")
    }

    /// The underlying [`Child`] (to take stdin/stdout, `try_wait`, ...).
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until drop")
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        wait_for_exit(self.child_mut(), timeout)
    }

    /// Whether the child has exited (reaping it if so).
    pub fn has_exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child_mut().try_wait().context("waitpid")
    }

    /// SIGKILLs the child (and its group when spawned with
    /// [`ChildGuard::spawn_group`]) and reaps it.
    pub fn kill9(&mut self) -> Result<ExitStatus> {
        let group = self.group;
        let child = self.child_mut();
        if child.try_wait()?.is_none() {
            if group {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            }
            let _ = child.kill();
        }
        child.wait().context("waitpid")
    }

    /// Gives up the guard without killing the child.
    pub fn into_inner(mut self) -> Child {
        self.child.take().expect("child present until drop")
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child()
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        self.child_mut()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.kill9();
        }
    }
}

/// Lines read from a pipe on a background thread.
#[derive(Debug)]
pub struct LineReader {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LineReader {
    /// Starts reading `r` (e.g. `child.stdout.take().unwrap()`) line by line.
    pub fn spawn(r: impl Read + Send + 'static) -> LineReader {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineReader {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line; error on timeout or end of stream.
    pub fn next_line(&mut self, timeout: Duration) -> Result<String> {
        match self.rx.recv_timeout(timeout) {
            Ok(l) => {
                self.seen.push(l.clone());
                Ok(l)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("no line within {timeout:?}; so far: {:?}", self.seen)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("stream closed; lines: {:?}", self.seen)
            }
        }
    }

    /// Reads lines until one satisfies `pred` and returns it.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self.next_line(left)?;
            if pred(&l) {
                return Ok(l);
            }
        }
    }

    /// Every line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}
