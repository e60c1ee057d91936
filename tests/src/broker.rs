//! A real broker for tests: installed with role binaries into a scratch
//! install dir, run as the test user in a private profile, with either
//! keychain backend, plus peers that speak to it under each role.
//!
//! Peers are `gatehouse-test-peer` copies installed under a role's binary
//! name, so the broker gives them that role exactly as it would a real
//! daemon. Must never: start anything as root that the design runs as the user.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::BrokerRequest;

use crate::{ChildGuard, KeychainEnv, LineReader, Scratch, find_binary, install};

/// Which OS keychain the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Keyutils,
    SecretService,
}

/// Start options.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    /// Install the test peer as `gatehouse` (the cli role) instead of the real CLI.
    pub peer_as_cli: bool,
    /// Install the running test executable itself as `gatehouse-ui` (the ui
    /// role) instead of the test peer: [`BrokerFixture::run_as_ui`] re-runs
    /// one test from there, so the test process is what the broker
    /// identifies as the desktop app.
    pub peer_as_ui: bool,
    pub broker_args: Vec<String>,
    /// Extra environment for the broker process (e.g. `GATEHOUSE_TPM`).
    pub broker_env: Vec<(String, String)>,
    /// Install the real `gatehouse-sessiond` (and the lab device) instead of
    /// the test peer under the sessiond name; start it with `start_sessiond`.
    pub real_sessiond: bool,
    /// Install the real `gatehouse-copilotd` instead of the test peer under
    /// the copilotd name (then no test peer has that role); start it with
    /// `start_copilotd`.
    pub real_copilotd: bool,
    /// Install the real `gatehouse-syncd` instead of the test peer under
    /// the syncd name (then no test peer has that role); `gatehouse up`
    /// starts it once a sync server is configured.
    pub real_syncd: bool,
    /// Install with the privilege boundary (`scripts/install --setgid-only`:
    /// every binary setgid to the group `gatehouse`, the group-only state
    /// root beside the install dir). Needs root; see [`boundary_available`].
    pub boundary: bool,
}

/// The group of the privilege boundary the harness installs with.
pub const BOUNDARY_GROUP: &str = "gatehouse";

/// Whether this run can install with the privilege boundary (root only: it
/// creates a group and setgid binaries); prints why a test is skipped if not.
pub fn boundary_available(test: &str) -> bool {
    let root = crate::users::is_root();
    if !root {
        eprintln!("SKIPPED {test}: installing setgid binaries needs root (CI runs as root)");
    }
    root
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Keyutils,
            peer_as_cli: false,
            peer_as_ui: false,
            broker_args: Vec::new(),
            broker_env: Vec::new(),
            real_sessiond: false,
            real_copilotd: false,
            real_syncd: false,
            boundary: false,
        }
    }
}

pub struct BrokerFixture {
    pub scratch: Scratch,
    /// GATEHOUSE_HOME of this profile.
    pub home: PathBuf,
    /// Profile name (namespaces keychain entries).
    pub profile: String,
    pub keychain: Option<KeychainEnv>,
    /// Dropped (killed) before sessiond and the broker.
    pub copilotd: Option<ChildGuard>,
    /// Dropped (killed) before the broker, so it does not log the broker's loss.
    pub sessiond: Option<ChildGuard>,
    pub broker: Option<ChildGuard>,
    opts: Options,
}

fn unique_profile() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t{}x{n}", std::process::id())
}

impl BrokerFixture {
    pub fn start(opts: Options) -> Result<BrokerFixture> {
        let scratch = Scratch::primary()?;
        install(
            &scratch,
            &find_binary("gatehouse-broker")?,
            "gatehouse-broker",
        )?;
        let peer = find_binary("gatehouse-test-peer")?;
        for role in [
            PeerRole::Sessiond,
            PeerRole::Copilotd,
            PeerRole::Ui,
            PeerRole::Syncd,
        ] {
            let real = match role {
                PeerRole::Sessiond => opts.real_sessiond,
                PeerRole::Copilotd => opts.real_copilotd,
                PeerRole::Syncd => opts.real_syncd,
                _ => false,
            };
            if real {
                continue;
            }
            if role == PeerRole::Ui && opts.peer_as_ui {
                let me = std::env::current_exe().context("current_exe")?;
                install(&scratch, &me, role.binary_name())?;
                continue;
            }
            install(&scratch, &peer, role.binary_name())?;
        }
        if opts.real_sessiond {
            install(
                &scratch,
                &find_binary("gatehouse-sessiond")?,
                "gatehouse-sessiond",
            )?;
            install(
                &scratch,
                &find_binary("gatehouse-labdevice")?,
                "gatehouse-labdevice",
            )?;
        }
        if opts.real_copilotd {
            install(
                &scratch,
                &find_binary("gatehouse-copilotd")?,
                "gatehouse-copilotd",
            )?;
        }
        if opts.real_syncd {
            install(
                &scratch,
                &find_binary("gatehouse-syncd")?,
                "gatehouse-syncd",
            )?;
        }
        if opts.peer_as_cli {
            install(&scratch, &peer, "gatehouse")?;
        } else {
            install(&scratch, &find_binary("gatehouse")?, "gatehouse")?;
        }
        if opts.boundary {
            install_boundary(scratch.install_dir())?;
        }
        let home = scratch.user_dir("gh")?;
        let keychain = match opts.backend {
            Backend::SecretService => Some(KeychainEnv::start(&scratch)?),
            Backend::Keyutils => None,
        };
        let mut f = BrokerFixture {
            scratch,
            home,
            profile: unique_profile(),
            keychain,
            broker: None,
            sessiond: None,
            copilotd: None,
            opts,
        };
        f.start_broker()?;
        Ok(f)
    }

    pub fn install_dir(&self) -> &Path {
        self.scratch.install_dir()
    }

    /// The group-only state root of this install (with `Options::boundary`).
    pub fn group_state_root(&self) -> PathBuf {
        gatehouse_ipc::paths::group_state_root(self.install_dir())
    }

    /// A peer whose installed `role` binary is started through `prefix`
    /// (e.g. `["setpriv", "--no-new-privs"]`, or a shell that forks it), with
    /// extra environment `env`.
    pub fn peer_via(&self, prefix: &[&str], role: PeerRole, env: &[(&str, &str)]) -> Result<Peer> {
        let exe = self.install_dir().join(role.binary_name());
        let mut c = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = self.command(Path::new(first));
                c.args(rest).arg(&exe);
                c
            }
            None => self.command(&exe),
        };
        c.arg("call").arg(self.runtime());
        c.envs(env.iter().copied());
        Peer::spawn_command(c)
    }

    pub fn runtime(&self) -> PathBuf {
        self.home.join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime().join("broker.sock")
    }

    /// A command for `program`, as the test user, in this profile.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = self.scratch.command(program);
        c.env("GATEHOUSE_HOME", &self.home);
        if let Some(k) = &self.keychain {
            k.apply(&mut c);
        }
        c
    }

    /// Sets `key=value` in the broker's environment from its next start.
    pub fn set_broker_env(&mut self, key: &str, value: &str) {
        self.opts.broker_env.retain(|(k, _)| k != key);
        self.opts.broker_env.push((key.into(), value.into()));
    }

    /// (Re)starts the broker process.
    pub fn start_broker(&mut self) -> Result<()> {
        self.broker = None;
        let mut c = self.command(&self.install_dir().join("gatehouse-broker"));
        c.args(["--profile", &self.profile]);
        c.args([
            "--keychain",
            match self.opts.backend {
                Backend::Keyutils => "keyutils",
                Backend::SecretService => "secret-service",
            },
        ]);
        c.args(&self.opts.broker_args);
        c.envs(self.opts.broker_env.iter().map(|(k, v)| (k, v)));
        c.env(
            "GATEHOUSE_LOG",
            std::env::var("GATEHOUSE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        );
        c.stdin(Stdio::null());
        let _ = std::fs::remove_file(self.socket());
        let mut g = ChildGuard::spawn(&mut c)?;
        crate::proc::wait_until("broker socket", Duration::from_secs(15), || {
            if let Some(s) = g.has_exited()? {
                bail!("broker exited: {s}");
            }
            Ok(self.socket().exists())
        })?;
        self.broker = Some(g);
        Ok(())
    }

    /// (Re)starts the real sessiond (needs `Options::real_sessiond`).
    pub fn start_sessiond(&mut self) -> Result<()> {
        self.sessiond = None;
        self.sessiond = Some(self.start_daemon("gatehouse-sessiond", "sessiond.sock")?);
        Ok(())
    }

    /// Starts the real copilotd (needs `Options::real_copilotd` and a running sessiond).
    pub fn start_copilotd(&mut self) -> Result<()> {
        self.copilotd = None;
        self.copilotd = Some(self.start_daemon("gatehouse-copilotd", "copilotd.sock")?);
        Ok(())
    }

    /// Starts an installed daemon in this profile and waits for its socket.
    fn start_daemon(&self, binary: &str, socket: &str) -> Result<ChildGuard> {
        let socket = self.runtime().join(socket);
        let mut c = self.command(&self.install_dir().join(binary));
        c.args(["--profile", &self.profile]);
        c.env(
            "GATEHOUSE_LOG",
            std::env::var("GATEHOUSE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        );
        c.stdin(Stdio::null());
        let _ = std::fs::remove_file(&socket);
        let mut g = ChildGuard::spawn(&mut c)?;
        crate::proc::wait_until(&format!("{binary} socket"), Duration::from_secs(15), || {
            if let Some(s) = g.has_exited()? {
                bail!("{binary} exited: {s}");
            }
            Ok(socket.exists())
        })?;
        Ok(g)
    }

    pub fn sessiond_pid(&self) -> u32 {
        self.sessiond.as_ref().map(|b| b.pid()).unwrap_or(0)
    }

    pub fn broker_pid(&self) -> u32 {
        self.broker.as_ref().map(|b| b.pid()).unwrap_or(0)
    }

    /// A connected peer with `role` (its binary installed under that role's name).
    pub fn peer(&self, role: PeerRole) -> Result<Peer> {
        Peer::spawn(self, &self.install_dir().join(role.binary_name()))
    }

    /// A peer running from an arbitrary path (e.g. a copy outside the install dir).
    pub fn peer_at(&self, exe: &Path) -> Result<Peer> {
        Peer::spawn(self, exe)
    }

    /// Re-runs test `test` (its full name within its test binary) from the
    /// installed `gatehouse-ui` copy of this test executable, as the test
    /// user, in this profile: the test process then has the ui role. Needs
    /// `Options::peer_as_ui`; the child finds the fixture through
    /// [`UiChild::from_env`]. Fails unless exactly that one test ran and passed.
    pub fn run_as_ui(&self, test: &str) -> Result<()> {
        if !self.opts.peer_as_ui {
            bail!("run_as_ui needs Options::peer_as_ui");
        }
        let mut c = self.command(&self.install_dir().join(PeerRole::Ui.binary_name()));
        c.args([test, "--exact", "--nocapture", "--test-threads=1"]);
        c.env(UI_CHILD_ENV, "1")
            .env("GATEHOUSE_TEST_UI_RUNTIME", self.runtime())
            .env("GATEHOUSE_TEST_UI_INSTALL", self.install_dir())
            .env("GATEHOUSE_TEST_UI_PROFILE", &self.profile)
            .env("GATEHOUSE_TEST_UI_HOME", &self.home);
        c.stdin(Stdio::null());
        let out = c.output().context("running the ui-role test child")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("--- ui child {test} ---\n{stdout}{stderr}--- end ui child ---");
        if !out.status.success() {
            bail!("ui-role test child {test} failed ({})", out.status);
        }
        if !stdout.contains("test result: ok. 1 passed") {
            bail!("ui-role test child did not run exactly the test {test:?}");
        }
        Ok(())
    }

    /// Runs the real CLI (`gatehouse ARGS`) as the test user with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Result<std::process::Output> {
        let mut c = self.command(&self.install_dir().join("gatehouse"));
        c.args(["--profile", &self.profile]).args(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(stdin.as_bytes())?;
        Ok(child.wait_with_output()?)
    }

    /// Runs `gatehouse ARGS` (stdin: `stdin`) and returns its stdout; when it
    /// fails, an error with the arguments and everything it printed.
    /// Each lab device's name and event-log path, from `gatehouse lab status --json`.
    pub fn lab_logs(&self) -> Result<Vec<(String, PathBuf)>> {
        let status: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["lab", "status", "--json"], "")?)?;
        Ok(status
            .as_array()
            .context("lab status")?
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_string(),
                    PathBuf::from(d["log"].as_str().unwrap_or_default()),
                )
            })
            .collect())
    }

    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> Result<String> {
        let out = self.cli(args, stdin)?;
        if !out.status.success() {
            anyhow::bail!(
                "gatehouse {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sets organization `org`'s policy (name or id) to `json` the way a
    /// person does: `gatehouse org policy set ORG FILE --passphrase-stdin`
    /// with the account passphrase.
    pub fn set_org_policy(&self, org: &str, json: &str, passphrase: &str) -> Result<()> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.home.join(format!("policy-{n}.json"));
        std::fs::write(&file, json)?;
        let file_arg = file.display().to_string();
        let result = self.cli_ok(
            &["org", "policy", "set", org, &file_arg, "--passphrase-stdin"],
            &format!("{passphrase}\n"),
        );
        let _ = std::fs::remove_file(&file);
        result.map(drop)
    }

    /// The id of organization `name`.
    pub fn org_id(&self, name: &str) -> Result<String> {
        let orgs: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["org", "list", "--json"], "")?)?;
        orgs.as_array()
            .context("org list")?
            .iter()
            .find(|o| o["name"] == name)
            .and_then(|o| o["id"].as_str())
            .map(str::to_string)
            .with_context(|| format!("no organization {name}"))
    }

    /// The data log of lab device `name` (every byte it received, as JSON
    /// lines: `gatehouse lab up --log-data`).
    pub fn lab_log(&self, name: &str) -> Result<PathBuf> {
        let status: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["lab", "status", "--json"], "")?)?;
        status
            .as_array()
            .context("lab status")?
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["log"].as_str())
            .map(PathBuf::from)
            .with_context(|| format!("no lab device {name} with a log"))
    }

    /// Points the copilot at a (scripted) model's Chat Completions endpoint.
    pub fn use_openai_provider(&self, base_url: &str) -> Result<()> {
        self.cli_ok(
            &[
                "copilot",
                "config",
                "--kind",
                "openai",
                "--endpoint",
                base_url,
                "--model",
                "scripted",
            ],
            "",
        )
        .map(drop)
    }
}

impl Drop for BrokerFixture {
    /// Daemons first (field order), then this profile's entries in the test
    /// user's kernel keyring, which outlive the processes and count against
    /// the user's key quota (200 keys / 20,000 bytes by default).
    fn drop(&mut self) {
        self.copilotd = None;
        self.sessiond = None;
        self.broker = None;
        if self.opts.backend != Backend::Keyutils {
            return;
        }
        let script = format!(
            "for id in $(keyctl rlist @u 2>/dev/null); do \
               case \"$(keyctl rdescribe $id 2>/dev/null)\" in \
                 *\";gatehouse:{}:\"*) keyctl unlink $id @u >/dev/null 2>&1;; \
               esac; \
             done",
            self.profile
        );
        let _ = self
            .scratch
            .command(std::path::Path::new("/bin/sh"))
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `scripts/install --bin-dir DIR --setgid-only` (as root): the
/// binaries already in `dir` become setgid to [`BOUNDARY_GROUP`] (created if
/// missing; the test user is not a member) and the group-only state root is
/// made beside `dir`.
pub fn install_boundary(dir: &Path) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install");
    let out = Command::new(&script)
        .args(["--group", BOUNDARY_GROUP, "--setgid-only", "--bin-dir"])
        .arg(dir)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Set in the environment of a test re-run by [`BrokerFixture::run_as_ui`].
pub const UI_CHILD_ENV: &str = "GATEHOUSE_TEST_UI_CHILD";

/// The fixture as seen from a test re-run by [`BrokerFixture::run_as_ui`]
/// (the process with the ui role): where the broker is, and peers of the
/// other roles. The parent test owns the broker.
#[derive(Debug, Clone)]
pub struct UiChild {
    pub runtime: PathBuf,
    pub install: PathBuf,
    pub profile: String,
    pub home: PathBuf,
}

impl UiChild {
    /// `Some` only inside the re-run test.
    pub fn from_env() -> Option<UiChild> {
        std::env::var_os(UI_CHILD_ENV)?;
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        Some(UiChild {
            runtime: var("GATEHOUSE_TEST_UI_RUNTIME")?,
            install: var("GATEHOUSE_TEST_UI_INSTALL")?,
            profile: std::env::var("GATEHOUSE_TEST_UI_PROFILE").ok()?,
            home: var("GATEHOUSE_TEST_UI_HOME")?,
        })
    }

    /// A connected peer with `role` (the test peer installed under its name).
    pub fn peer(&self, role: PeerRole) -> Result<Peer> {
        let mut c = Command::new(self.install.join(role.binary_name()));
        c.arg("call").arg(&self.runtime);
        Peer::spawn_command(c)
    }
}

/// A broker client process in `call` mode.
pub struct Peer {
    pub child: ChildGuard,
    stdin: ChildStdin,
    out: LineReader,
    /// The role the broker reported at the handshake, or the refusal.
    pub hello: serde_json::Value,
}

impl Peer {
    fn spawn(f: &BrokerFixture, exe: &Path) -> Result<Peer> {
        let mut c = f.command(exe);
        c.arg("call").arg(f.runtime());
        Peer::spawn_command(c)
    }

    fn spawn_command(mut c: Command) -> Result<Peer> {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut c)?;
        let stdin = child.child_mut().stdin.take().context("peer stdin")?;
        let mut out = LineReader::spawn(child.child_mut().stdout.take().context("peer stdout")?);
        let hello: serde_json::Value =
            serde_json::from_str(&out.next_line(Duration::from_secs(15))?)?;
        Ok(Peer {
            child,
            stdin,
            out,
            hello,
        })
    }

    /// The role the broker gave this peer (None if it was refused).
    pub fn role(&self) -> Option<String> {
        self.hello
            .get("role")
            .and_then(|r| r.as_str())
            .map(str::to_string)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Sends one request; returns `{"ok": …}`, `{"err": …}` or `{"transport": …}`.
    pub fn call(&mut self, req: &BrokerRequest) -> Result<serde_json::Value> {
        writeln!(self.stdin, "{}", serde_json::to_string(req)?)?;
        self.stdin.flush()?;
        Ok(serde_json::from_str(
            &self.out.next_line(Duration::from_secs(30))?,
        )?)
    }

    /// Sends one raw JSON line (e.g. `{"sessiond": …}`); returns the reply line.
    pub fn call_json(&mut self, line: &serde_json::Value) -> Result<serde_json::Value> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        Ok(serde_json::from_str(
            &self.out.next_line(Duration::from_secs(120))?,
        )?)
    }

    /// Sends one request that must succeed; returns the `ok` payload.
    pub fn ok(&mut self, req: &BrokerRequest) -> Result<serde_json::Value> {
        let v = self.call(req)?;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => bail!("{req:?} failed: {v}"),
        }
    }

    /// Sends one request that must fail with a broker error; returns the error.
    pub fn err(&mut self, req: &BrokerRequest) -> Result<serde_json::Value> {
        let v = self.call(req)?;
        match v.get("err") {
            Some(e) => Ok(e.clone()),
            None => bail!("{req:?} was expected to fail: {v}"),
        }
    }
}
