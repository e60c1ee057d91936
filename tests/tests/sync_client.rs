//! The sync client side (issue 13): `gatehouse up` starts syncd only once a
//! sync server is configured, `gatehouse sync connect` checks the server's
//! certificate against the pin before saving anything, registers the
//! account's card and signs the device in through the broker; `status`,
//! `sync status` and `audit isolation` show syncd. Real processes: the
//! `gatehouse-sync-server` (SQLite), the broker, sessiond, copilotd and
//! syncd under the real supervisor.
//!
//! Build first: `cargo build --workspace --bins`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::proc;
use gatehouse_tests::sync_server::SyncServerProcess;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Kills the supervisor's process group when the test ends.
struct SupervisorGuard {
    pid_file: PathBuf,
}

impl Drop for SupervisorGuard {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = proc::kill9(pid as u32);
        }
    }
}

/// A profile with an account, its daemons up under the real supervisor.
struct Device {
    f: BrokerFixture,
    _guard: SupervisorGuard,
}

impl Device {
    fn up(passphrase: &str) -> Result<Device> {
        let mut f = BrokerFixture::start(Options {
            real_sessiond: true,
            real_copilotd: true,
            real_syncd: true,
            ..Options::default()
        })?;
        f.broker = None; // `gatehouse up` runs the installed one
        let guard = SupervisorGuard {
            pid_file: f.runtime().join("supervisor.pid"),
        };
        let up = f.cli_ok(&["up"], "")?;
        assert!(up.contains("broker, sessiond and copilotd"), "{up}");
        f.cli_ok(
            &["account", "init", "--passphrase-stdin"],
            &format!("{passphrase}\n"),
        )?;
        Ok(Device { f, _guard: guard })
    }

    fn status_json(&self) -> Result<serde_json::Value> {
        let out = self.f.cli(&["status", "--json"], "")?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn sync_status(&self) -> Result<serde_json::Value> {
        let s = self.f.cli_ok(&["sync", "status", "--json"], "")?;
        Ok(serde_json::from_str(&s)?)
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ok()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out waiting for {what}")
}

#[test]
fn syncd_starts_once_a_pinned_server_is_connected() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = SyncServerProcess::start(&format!(
        "sqlite:{}",
        dir.path().join("sync.sqlite").display()
    ));
    let d = Device::up("sync-client-pass")?;

    // Not configured: no syncd, status says why.
    let s = d.status_json()?;
    assert!(s["syncd"].is_null(), "{s}");
    let plain = d.f.cli_ok(&["status"], "")?;
    assert!(
        plain.contains("syncd: not running (starts once a sync server is configured)"),
        "{plain}"
    );
    let st = d.sync_status()?;
    assert!(
        st["server"].is_null() && st["syncd_running"] == false,
        "{st}"
    );

    // Refused before anything is saved: no pin, a malformed pin, the wrong
    // certificate, plain http.
    let server_file = d.f.home.join("data/sync/server.json");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![server.url.clone()], "unpinned"),
        (
            vec![server.url.clone(), "--pin".into(), "abc".into()],
            "64 hex digits",
        ),
        (
            vec![server.url.clone(), "--pin".into(), "ab".repeat(32)],
            &server.pin,
        ),
        (
            vec![
                server.url.replace("https://", "http://"),
                "--pin".into(),
                server.pin.clone(),
            ],
            "https://",
        ),
    ];
    for (args, needle) in cases {
        let mut a = vec!["sync", "connect"];
        a.extend(args.iter().map(String::as_str));
        let out = d.f.cli(&a, "")?;
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
        if needle == server.pin {
            // The wrong pin: the error names the certificate actually served.
            assert!(text(&out).contains("not the pinned"), "{}", text(&out));
        }
        assert!(
            !find_file(&d.f.home, "server.json")?,
            "{args:?} saved a server: {server_file:?}"
        );
    }

    // The right pin: syncd starts, registers the card, signs the device in.
    let out = d.f.cli_ok(
        &[
            "sync",
            "connect",
            &server.url,
            "--pin",
            &server.pin,
            "--account",
            "alice",
            "--device",
            "laptop",
        ],
        "",
    )?;
    assert!(
        out.contains("as alice from device laptop; registered the account's card"),
        "{out}"
    );
    let st = d.sync_status()?;
    assert_eq!(st["server"], server.url.as_str(), "{st}");
    assert_eq!(st["account"], "alice", "{st}");
    assert_eq!(st["device"], "laptop", "{st}");
    assert_eq!(st["signed_in"], true, "{st}");

    // The server knows the account with the broker's card.
    let rt = tokio::runtime::Runtime::new()?;
    let info = rt.block_on(server.client().info())?;
    assert_eq!(st["server_id"], info.server_id.as_str(), "{st}");

    // `status` and its JSON show syncd with its sandbox.
    let s = d.status_json()?;
    assert_eq!(s["syncd"]["account"], "alice", "{s}");
    let row = s["processes"]
        .as_array()
        .context("processes")?
        .iter()
        .find(|p| p["role"] == "syncd")
        .with_context(|| format!("no syncd row in {s}"))?
        .clone();
    assert_eq!(row["process"], "gatehouse-syncd", "{row}");
    assert_eq!(row["dumpable"], false, "{row}");
    assert_eq!(row["no_new_privs"], true, "{row}");
    let audit = d.f.cli(&["audit", "isolation"], "")?;
    let audit_text = text(&audit);
    assert!(audit_text.contains("syncd"), "{audit_text}");

    // Connecting again (same card): not registered again, signed in.
    let out = d.f.cli_ok(
        &[
            "sync",
            "connect",
            &server.url,
            "--pin",
            &server.pin,
            "--account",
            "alice",
            "--device",
            "laptop",
        ],
        "",
    )?;
    assert!(!out.contains("registered"), "{out}");
    // Another name for the same account is refused by the broker.
    let out = d.f.cli(
        &[
            "sync",
            "connect",
            &server.url,
            "--pin",
            &server.pin,
            "--account",
            "mallory",
        ],
        "",
    )?;
    assert!(!out.status.success());
    assert!(text(&out).contains("\"alice\""), "{}", text(&out));

    // A second profile cannot take the name: its card differs.
    let e = Device::up("other-pass")?;
    let out = e.f.cli(
        &[
            "sync",
            "connect",
            &server.url,
            "--pin",
            &server.pin,
            "--account",
            "alice",
        ],
        "",
    )?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("registered on this server with another card"),
        "{}",
        text(&out)
    );

    // The server goes away: `sync now` says offline; local work goes on.
    drop(server);
    let out = d.f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success());
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    wait_for("offline in sync status", || {
        Ok(d.sync_status()?["offline"].is_string())
    })?;
    d.f.cli_ok(
        &[
            "host",
            "add",
            "core-sw1",
            "--private",
            "--address",
            "192.0.2.1",
        ],
        "",
    )?;
    Ok(())
}

fn find_file(root: &std::path::Path, name: &str) -> Result<bool> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == name) {
                return Ok(true);
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    Ok(false)
}
