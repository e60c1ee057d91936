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
    let server_file = d.f.home.join("sync/server.json");
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

// ---------------------------------------------------------------- private records

const HOST_CANARY: &str = "host-pw-canary-5f1e9c";
const KEYCHAIN_CANARY: &str = "keychain-payload-canary-a7d2";

/// Every local record and sealed field as stored, in key order.
fn digest(f: &BrokerFixture) -> Result<Vec<String>> {
    let db = rusqlite::Connection::open(f.home.join("records.sqlite"))?;
    let mut out = Vec::new();
    let mut q = db.prepare(
        "SELECT kind, id, scope, owner, created_ms, updated_ms, revision, name, folder, plain, hex(mac) FROM records ORDER BY kind, id",
    )?;
    let rows = q.query_map([], |r| {
        Ok(format!(
            "{}|{}|{}|{}|{}|{}|{}|{:?}|{}|{}|{}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, String>(9)?,
            r.get::<_, String>(10)?,
        ))
    })?;
    for r in rows {
        out.push(r?);
    }
    let mut q = db.prepare(
        "SELECT kind, id, field, hex(ciphertext) FROM sealed_fields ORDER BY kind, id, field",
    )?;
    let rows = q.query_map([], |r| {
        Ok(format!(
            "sealed {}|{}|{}|{}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

fn host_id(f: &BrokerFixture, name: &str) -> Result<String> {
    let db = rusqlite::Connection::open(f.home.join("records.sqlite"))?;
    Ok(db.query_row(
        "SELECT id FROM records WHERE kind = 'host' AND name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

/// The hostile server: rewrites one stored envelope and serves it as new
/// (next sequence number).
fn serve_tampered(
    server_db: &std::path::Path,
    id: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<()> {
    let db = rusqlite::Connection::open(server_db)?;
    db.busy_timeout(Duration::from_secs(10))?;
    let (space, env): (String, String) = db.query_row(
        "SELECT space, envelope FROM records WHERE kind = 'host' AND id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut v: serde_json::Value = serde_json::from_str(&env)?;
    edit(&mut v);
    let head: i64 = db.query_row("SELECT head FROM spaces WHERE space = ?1", [&space], |r| {
        r.get(0)
    })?;
    db.execute(
        "UPDATE records SET envelope = ?1, revision = ?2, seq = ?3 WHERE space = ?4 AND kind = 'host' AND id = ?5",
        rusqlite::params![
            v.to_string(),
            v["revision"].as_i64().unwrap_or(0),
            head + 1,
            space,
            id
        ],
    )?;
    db.execute(
        "UPDATE spaces SET head = ?1 WHERE space = ?2",
        rusqlite::params![head + 1, space],
    )?;
    Ok(())
}

fn stored_envelope(server_db: &std::path::Path, id: &str) -> Result<serde_json::Value> {
    let db = rusqlite::Connection::open(server_db)?;
    let env: String = db.query_row(
        "SELECT envelope FROM records WHERE kind = 'host' AND id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(serde_json::from_str(&env)?)
}

fn server_bytes(dir: &std::path::Path) -> Result<Vec<u8>> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir)? {
        all.extend(std::fs::read(e?.path())?);
    }
    Ok(all)
}

#[test]
fn private_records_push_pull_rebuild_and_refuse_a_hostile_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server_db = dir.path().join("sync.sqlite");
    let server = SyncServerProcess::start(&format!("sqlite:{}", server_db.display()));
    let d = Device::up("sync-records-pass")?;
    let f = &d.f;
    f.cli_ok(&["settings", "set", "sign-out.local-records", "true"], "")?;
    f.cli_ok(
        &["keychain", "set", "core-pw"],
        &format!("{KEYCHAIN_CANARY}\n"),
    )?;
    f.cli_ok(
        &[
            "host",
            "add",
            "core-sw1",
            "--private",
            "--address",
            "192.0.2.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        &format!("{HOST_CANARY}\n"),
    )?;
    f.cli_ok(
        &[
            "host",
            "add",
            "edge-1",
            "--private",
            "--address",
            "192.0.2.2",
            "--ssh-user",
            "admin",
            "--password-ref",
            "keychain:core-pw",
        ],
        "",
    )?;
    f.cli_ok(
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
    let st = d.sync_status()?;
    let local_count = digest(f)?
        .iter()
        .filter(|l| !l.starts_with("sealed "))
        .count();
    assert_eq!(st["pending"], local_count as u64, "{st}");

    // Push: every private record, exactly as stored.
    let out = f.cli_ok(&["sync", "now", "--json"], "")?;
    let r: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(r["pushed"], local_count as u64, "{out}");
    let st = d.sync_status()?;
    assert_eq!(st["pending"], 0, "{st}");
    assert!(st["last_sync_ms"].is_u64(), "{st}");
    assert!(st["offline"].is_null(), "{st}");
    // Nothing more to do the second time.
    let r: serde_json::Value = serde_json::from_str(&f.cli_ok(&["sync", "now", "--json"], "")?)?;
    assert_eq!(
        (r["pushed"].as_u64(), r["pulled"].as_u64()),
        (Some(0), Some(0))
    );

    // The server holds names and ciphertexts, never a password or a
    // keychain payload (the keychain reference travels sealed in its record).
    let raw = server_bytes(dir.path())?;
    assert!(memchr::memmem::find(&raw, b"core-sw1").is_some());
    for canary in [HOST_CANARY, KEYCHAIN_CANARY] {
        assert!(
            memchr::memmem::find(&raw, canary.as_bytes()).is_none(),
            "{canary} is on the server"
        );
    }

    // Sign-out clears the local records; sign-in and a sync rebuild them
    // exactly (every record and sealed field, byte for byte).
    let before = digest(f)?;
    f.cli_ok(&["signout"], "")?;
    assert!(digest(f)?.is_empty(), "sign-out left records");
    f.cli_ok(&["signin", "--passphrase-stdin"], "sync-records-pass\n")?;
    let out = f.cli_ok(&["sync", "now", "--json"], "")?;
    let r: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(r["pulled"], local_count as u64, "{out}");
    assert_eq!(digest(f)?, before, "the rebuilt store differs");
    let shown = f.cli_ok(&["host", "show", "core-sw1", "--private"], "")?;
    assert!(shown.contains("192.0.2.1"), "{shown}");

    // A hostile server, each refused with why, the local store untouched.
    let core = host_id(f, "core-sw1")?;
    let edge = host_id(f, "edge-1")?;
    // 1. Rolled back: an older revision served as new.
    let rev1 = stored_envelope(&server_db, &core)?;
    f.cli_ok(
        &[
            "host",
            "edit",
            "core-sw1",
            "--private",
            "--address",
            "192.0.2.9",
        ],
        "",
    )?;
    f.cli_ok(&["sync", "now"], "")?;
    let kept = digest(f)?;
    let rev2 = stored_envelope(&server_db, &core)?;
    serve_tampered(&server_db, &core, |v| *v = rev1.clone())?;
    let out = f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rolled back"), "{}", text(&out));
    assert_eq!(digest(f)?, kept);
    // (The server behaves again: the current revision, served anew.)
    serve_tampered(&server_db, &core, |v| *v = rev2.clone())?;
    f.cli_ok(&["sync", "now"], "")?;

    // 2. A ciphertext moved from one record to another: the MAC.
    let core_env = stored_envelope(&server_db, &core)?;
    let edge_env = stored_envelope(&server_db, &edge)?;
    serve_tampered(&server_db, &edge, |v| {
        v["sealed"] = core_env["sealed"].clone();
        for k in ["revision", "base_revision"] {
            v[k] = (v[k].as_u64().unwrap_or(0) + 5).into();
        }
    })?;
    let out = f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fails its MAC"), "{}", text(&out));
    assert_eq!(digest(f)?, kept);

    // 3. A write not signed by the account (the content untouched, so the
    // MAC holds): the signature.
    let original: serde_json::Value = edge_env.clone();
    serve_tampered(&server_db, &edge, |v| {
        *v = original.clone();
        for k in ["revision", "base_revision"] {
            v[k] = (v[k].as_u64().unwrap_or(0) + 9).into();
        }
        let w = base64_decode(v["write"].as_str().unwrap_or_default());
        let mut signed = gatehouse_membership::SignedWrite::from_bytes(&w).expect("a signed write");
        signed.body.revision += 9;
        signed.body.base_revision += 9;
        let forged = gatehouse_membership::SignedWrite::sign(&[7; 32], signed.body);
        v["write"] = base64_encode(&forged.to_bytes()).into();
    })?;
    let out = f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not signed by this account's identity key"),
        "{}",
        text(&out)
    );
    assert_eq!(digest(f)?, kept);
    let st = d.sync_status()?;
    assert!(st["offline"].is_null(), "{st}");
    // Served as stored again: the sync goes through, nothing changed.
    serve_tampered(&server_db, &edge, |v| *v = edge_env.clone())?;
    f.cli_ok(&["sync", "now"], "")?;
    assert_eq!(digest(f)?, kept);
    Ok(())
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

// ---------------------------------------------------------------- a second device

/// A profile whose daemons are up but which has no account yet.
fn empty_device() -> Result<Device> {
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        real_copilotd: true,
        real_syncd: true,
        ..Options::default()
    })?;
    f.broker = None;
    let guard = SupervisorGuard {
        pid_file: f.runtime().join("supervisor.pid"),
    };
    f.cli_ok(&["up"], "")?;
    Ok(Device { f, _guard: guard })
}

#[test]
fn a_second_device_signs_in_with_both_secrets_and_sees_the_same_records() -> Result<()> {
    let dir = tempfile::tempdir()?;
    second_device_on(&format!(
        "sqlite:{}",
        dir.path().join("sync.sqlite").display()
    ))
}

/// The same on PostgreSQL: a throwaway cluster (initdb in a temp dir, a
/// private socket; as root it runs as the test user).
#[test]
fn a_second_device_on_postgresql() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let user = gatehouse_tests::TestUser::primary();
    let run_as = (!user.is_current()).then_some((user.uid, user.gid));
    let cluster = gatehouse_sync_server::pgcluster::PgCluster::start(dir.path(), run_as)
        .context("starting PostgreSQL")?;
    cluster.create_db("sync")?;
    second_device_on(&cluster.url("sync"))
}

fn second_device_on(db: &str) -> Result<()> {
    let server = SyncServerProcess::start(db);
    const PASS: &str = "two-devices-pass";
    let a = Device::up(PASS)?;
    let secret_key =
        a.f.cli_ok(
            &["account", "secret-key", "--passphrase-stdin"],
            &format!("{PASS}\n"),
        )?
        .trim()
        .to_string();
    a.f.cli_ok(
        &[
            "host",
            "add",
            "core-sw1",
            "--private",
            "--address",
            "192.0.2.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        &format!("{HOST_CANARY}\n"),
    )?;
    let out = a.f.cli_ok(
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
            "--passphrase-stdin",
        ],
        &format!("{PASS}\n"),
    )?;
    assert!(out.contains("key bundle stored"), "{out}");
    a.f.cli_ok(&["sync", "now"], "")?;

    // The second device: an empty profile, the passphrase and the Secret Key.
    let b = empty_device()?;
    let from = |secrets: &str| {
        b.f.cli(
            &[
                "account",
                "from-server",
                &server.url,
                "--pin",
                &server.pin,
                "--account",
                "alice",
                "--device",
                "desktop",
                "--secrets-stdin",
            ],
            secrets,
        )
    };
    // A wrong Secret Key (valid check characters, another key): the server
    // keeps the bundle; nothing is saved here.
    let other = gatehouse_crypto::two_secret::SecretKey::generate().display();
    let out = from(&format!("{PASS}\n{}\n", other.as_str()))?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("did not release the key bundle"),
        "{}",
        text(&out)
    );
    assert!(!b.f.home.join("state/account.json").exists());
    // A typo in the Secret Key is a typo.
    let mut typo = secret_key.clone();
    let last = typo.pop().unwrap_or('A');
    typo.push(if last == 'B' { 'C' } else { 'B' });
    let out = from(&format!("{PASS}\n{typo}\n"))?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Secret Key"), "{}", text(&out));
    // Both right: signed in, connected, every record pulled.
    let out = from(&format!("{PASS}\n{secret_key}\n"))?;
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("rebuilt: "), "{shown}");
    // The progress line: position of total, records, rate, time left.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("pulling: "), "{progress}");
    assert!(progress.contains("records/s, ETA"), "{progress}");
    assert_eq!(
        digest(&b.f)?,
        digest(&a.f)?,
        "the second device's store differs"
    );
    // It opens what the first sealed (same account keys).
    let reveal =
        b.f.cli_ok(&["host", "show", "core-sw1", "--private", "--reveal"], "")?;
    assert!(reveal.contains(HOST_CANARY), "{reveal}");

    // Each device sees the other's new private records.
    b.f.cli_ok(
        &[
            "host",
            "add",
            "edge-2",
            "--private",
            "--address",
            "192.0.2.22",
        ],
        "",
    )?;
    b.f.cli_ok(&["sync", "now"], "")?;
    let r: serde_json::Value = serde_json::from_str(&a.f.cli_ok(&["sync", "now", "--json"], "")?)?;
    assert_eq!(r["pulled"], 1, "{r}");
    assert!(
        a.f.cli_ok(&["host", "list", "--private"], "")?
            .contains("edge-2")
    );
    a.f.cli_ok(
        &[
            "host",
            "edit",
            "core-sw1",
            "--private",
            "--address",
            "192.0.2.9",
        ],
        "",
    )?;
    a.f.cli_ok(&["sync", "now"], "")?;
    b.f.cli_ok(&["sync", "now"], "")?;
    assert_eq!(digest(&b.f)?, digest(&a.f)?);
    Ok(())
}

// ---------------------------------------------------------------- offline

#[test]
fn work_done_while_the_server_is_down_syncs_when_it_is_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs)?;
    let db = format!("sqlite:{}", dir.path().join("sync.sqlite").display());
    let server = SyncServerProcess::start_keeping_cert(&db, &certs);
    let (url, pin) = (server.url.clone(), server.pin.clone());
    let d = Device::up("offline-pass")?;
    let f = &d.f;
    f.cli_ok(
        &["sync", "connect", &url, "--pin", &pin, "--account", "alice"],
        "",
    )?;
    f.cli_ok(&["sync", "now"], "")?;

    drop(server);
    f.cli_ok(
        &[
            "host",
            "add",
            "offline-1",
            "--private",
            "--address",
            "192.0.2.31",
        ],
        "",
    )?;
    let out = f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success());
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    let st = d.sync_status()?;
    assert!(st["offline"].is_string(), "{st}");
    assert_eq!(st["pending"], 1, "{st}");

    // Back (same address, same certificate): the queued change goes up.
    let server = SyncServerProcess::restart(&db, &certs, &url);
    assert_eq!(server.pin, pin);
    let r: serde_json::Value = serde_json::from_str(&f.cli_ok(&["sync", "now", "--json"], "")?)?;
    assert_eq!(r["pushed"], 1, "{r}");
    let st = d.sync_status()?;
    assert!(st["offline"].is_null(), "{st}");
    assert_eq!(st["pending"], 0, "{st}");
    Ok(())
}

// ---------------------------------------------------------------- another server

#[test]
fn a_replaced_server_or_certificate_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = SyncServerProcess::start(&format!(
        "sqlite:{}",
        dir.path().join("sync.sqlite").display()
    ));
    let d = Device::up("replaced-pass")?;
    let f = &d.f;
    f.cli_ok(
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
    f.cli_ok(&["sync", "now"], "")?;
    let file = f.home.join("sync/server.json");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;

    // The same address answering as another server (a replaced database):
    // syncd (restarted, so it reads the file again) refuses it.
    let mut other = saved.clone();
    other["server_id"] = "0000000000000000".into();
    f.cli_ok(&["down"], "")?;
    std::fs::write(&file, other.to_string())?;
    f.cli_ok(&["up"], "")?;
    wait_for("syncd", || Ok(d.sync_status()?["syncd_running"] == true))?;
    let out = f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("another server or a replaced database"),
        "{}",
        text(&out)
    );

    // A certificate that is not the pinned one: refused, named.
    let mut other = saved.clone();
    other["pin"] = "ab".repeat(32).into();
    f.cli_ok(&["down"], "")?;
    std::fs::write(&file, other.to_string())?;
    f.cli_ok(&["up"], "")?;
    wait_for("syncd", || Ok(d.sync_status()?["syncd_running"] == true))?;
    let out = f.cli(&["sync", "now"], "")?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not the pinned"), "{}", text(&out));
    Ok(())
}
