//! The broker's keychain against both real OS backends (kernel keyutils and
//! gnome-keyring's Secret Service on a private bus), inspected from outside
//! with `keyctl` / `secret-tool` as the test user: entries are sealed, never
//! listed, redacted by exact value, and the remembered-device unlock entry
//! lives exactly as long as the sign-in.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Result, bail};
use gatehouse_ipc::broker::{
    BrokerError, BrokerRequest, BrokerResponse, BrokerStatus, FieldAddress, KeyScope,
    KeychainEntry, OpenItem, SealItem, SecretKind,
};
use gatehouse_ipc::{PeerRole, SecretBytes};
use gatehouse_tests::TestUser;
use gatehouse_tests::broker::{Backend, BrokerFixture, Options, Peer};
use gatehouse_tests::users::set_identity;

const PASSPHRASE: &[u8] = b"keychain-test-passphrase";

fn ok(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerResponse> {
    Ok(serde_json::from_value(p.ok(req)?)?)
}

fn err(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerError> {
    Ok(serde_json::from_value(p.err(req)?)?)
}

fn status(p: &mut Peer) -> Result<BrokerStatus> {
    match ok(p, &BrokerRequest::Status)? {
        BrokerResponse::Status(s) => Ok(*s),
        other => bail!("Status: {other:?}"),
    }
}

fn random_payload(tag: &str) -> String {
    let mut b = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("GH-{tag}-{hex}")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The raw bytes the OS keychain holds for entry `name` of this profile, read
/// as the test user with the backend's own tool; None if there is no entry.
fn raw(f: &BrokerFixture, backend: Backend, name: &str) -> Result<Option<Vec<u8>>> {
    let service = format!("gatehouse:{}", f.profile);
    match backend {
        Backend::Keyutils => {
            let desc = format!("{service}:{name}");
            let out = f
                .command(Path::new("/usr/bin/keyctl"))
                .args(["search", "@u", "user", &desc])
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                let e = String::from_utf8_lossy(&out.stderr);
                // Gone, or invalidated and waiting for the kernel's key GC (unreadable either way).
                if e.contains("Required key not available") || e.contains("has been revoked") {
                    return Ok(None);
                }
                bail!("keyctl search {desc}: {e}");
            }
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let out = f
                .command(Path::new("/usr/bin/keyctl"))
                .args(["pipe", &id])
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                bail!("keyctl pipe {id}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(Some(out.stdout))
        }
        Backend::SecretService => {
            let out = f
                .command(Path::new("/usr/bin/secret-tool"))
                .args(["lookup", "service", &service, "username", name])
                .stdin(Stdio::null())
                .output()?;
            if out.status.success() && !out.stdout.is_empty() {
                Ok(Some(out.stdout))
            } else {
                Ok(None)
            }
        }
    }
}

/// Everything the OS keychain shows for this profile (Secret Service: every
/// item's label, attributes and secret; keyutils: the user keyring listing).
fn listing(f: &BrokerFixture, backend: Backend) -> Result<Vec<u8>> {
    let out = match backend {
        Backend::Keyutils => f
            .command(Path::new("/usr/bin/keyctl"))
            .args(["show", "@u"])
            .stdin(Stdio::null())
            .output()?,
        Backend::SecretService => f
            .command(Path::new("/usr/bin/secret-tool"))
            .args([
                "search",
                "--all",
                "--unlock",
                "service",
                &format!("gatehouse:{}", f.profile),
            ])
            .stdin(Stdio::null())
            .output()?,
    };
    Ok([out.stdout, out.stderr].concat())
}

/// Invalidates leftover keyutils entries of this profile (they outlive the
/// test in the test user's user keyring), even when the test fails.
struct KeyutilsCleanup {
    user: TestUser,
    descriptions: Vec<String>,
}

impl KeyutilsCleanup {
    fn new(f: &BrokerFixture, names: &[&str]) -> KeyutilsCleanup {
        KeyutilsCleanup {
            user: f.scratch.user().clone(),
            descriptions: names
                .iter()
                .map(|n| format!("gatehouse:{}:{n}", f.profile))
                .collect(),
        }
    }
}

impl Drop for KeyutilsCleanup {
    fn drop(&mut self) {
        for desc in &self.descriptions {
            let mut c = std::process::Command::new("/bin/sh");
            c.args([
                "-c",
                "id=$(keyctl search @u user \"$1\" 2>/dev/null) && keyctl invalidate \"$id\"",
                "sh",
                desc,
            ]);
            set_identity(&mut c, &self.user);
            let _ = c
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn list(p: &mut Peer) -> Result<(Vec<KeychainEntry>, String)> {
    let v = p.ok(&BrokerRequest::KeychainList)?;
    let text = v.to_string();
    match serde_json::from_value(v)? {
        BrokerResponse::Keychain(l) => Ok((l, text)),
        other => bail!("KeychainList: {other:?}"),
    }
}

fn set(p: &mut Peer, name: &str, kind: SecretKind, payload: &str) -> Result<()> {
    let r = ok(
        p,
        &BrokerRequest::KeychainSet {
            name: name.into(),
            kind,
            payload: SecretBytes::copy_from(payload.as_bytes()),
        },
    )?;
    assert!(matches!(r, BrokerResponse::Done), "{r:?}");
    Ok(())
}

fn redact(p: &mut Peer, text: &str) -> Result<String> {
    match ok(p, &BrokerRequest::Redact { text: text.into() })? {
        BrokerResponse::Redacted { text, spans } => {
            assert!(!spans.is_empty() || !text.contains("{{"), "{spans:?}");
            Ok(text)
        }
        other => bail!("Redact: {other:?}"),
    }
}

/// Asserts `raw` is a Gatehouse sealed field for a payload of `len` bytes,
/// and holds the payload in no readable form.
fn assert_sealed(raw: &[u8], payload: &str, what: &str) {
    use base64::Engine as _;
    assert_eq!(
        raw.len(),
        1 + 8 + 24 + payload.len() + 16,
        "{what}: not a sealed field of the payload's length"
    );
    assert_eq!(raw[0], 1, "{what}: version byte");
    for form in [
        payload.as_bytes().to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(payload)
            .into_bytes(),
        payload
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
        // Half of it is enough to leak.
        payload.as_bytes()[payload.len() / 2..].to_vec(),
    ] {
        assert!(
            !contains(raw, &form),
            "{what}: payload readable in the OS keychain"
        );
    }
}

fn keychain_set_list_remove(backend: Backend) -> Result<()> {
    let f = BrokerFixture::start(Options {
        backend,
        ..Options::default()
    })?;
    let _cleanup = KeyutilsCleanup::new(&f, &["item:core-sw1", "item:api-token", "unlock"]);
    let mut ui = f.peer(PeerRole::Ui)?;
    let st = status(&mut ui)?;
    match backend {
        Backend::Keyutils => {
            assert_eq!(st.keychain_backend, "keyutils");
            let w = st.keychain_warning.expect("keyutils warns");
            assert!(w.contains("reboot"), "{w}");
        }
        Backend::SecretService => {
            assert_eq!(st.keychain_backend, "secret-service");
            assert_eq!(st.keychain_warning, None);
        }
    }
    // Nothing before an account exists.
    assert_eq!(
        err(&mut ui, &BrokerRequest::KeychainList)?,
        BrokerError::NotInitialized
    );
    ok(
        &mut ui,
        &BrokerRequest::AccountInit {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
        },
    )?;

    let pw = random_payload("pw");
    let token = random_payload("tok");
    set(&mut ui, "core-sw1", SecretKind::Password, &pw)?;
    set(&mut ui, "api-token", SecretKind::Token, &token)?;
    let (entries, text) = list(&mut ui)?;
    let mut names: Vec<(&str, SecretKind)> =
        entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    names.sort_by_key(|(n, _)| n.to_string());
    assert_eq!(
        names,
        [
            ("api-token", SecretKind::Token),
            ("core-sw1", SecretKind::Password)
        ]
    );
    for p in [&pw, &token] {
        assert!(
            !text.contains(p.as_str()),
            "KeychainList shows a payload: {text}"
        );
        // Not even as a JSON byte array.
        let as_array = serde_json::to_string(p.as_bytes())?;
        assert!(!text.contains(&as_array[1..as_array.len() - 1]));
    }

    // What the OS keychain holds is sealed.
    let raw_pw = raw(&f, backend, "item:core-sw1")?.expect("entry core-sw1 in the OS keychain");
    assert_sealed(&raw_pw, &pw, "core-sw1");
    let raw_tok = raw(&f, backend, "item:api-token")?.expect("entry api-token in the OS keychain");
    assert_sealed(&raw_tok, &token, "api-token");
    let everything = listing(&f, backend)?;
    for p in [&pw, &token] {
        assert!(
            !contains(&everything, p.as_bytes()),
            "listing shows a payload"
        );
    }
    if backend == Backend::SecretService {
        // The search did find the profile's items (else the check above proves nothing).
        assert!(
            contains(&everything, b"item:core-sw1"),
            "{}",
            String::from_utf8_lossy(&everything)
        );
    }
    // Nor is it anywhere in the broker's state on disk.
    for entry in walk(&f.home)? {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        for p in [&pw, &token] {
            assert!(
                !contains(&bytes, p.as_bytes()),
                "payload in {}",
                entry.display()
            );
        }
    }

    // Exact-value redaction, as the copilot daemon would ask for it.
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let text = format!("username admin\npassword {pw}\nBearer {token} end");
    let red = redact(&mut copilot, &text)?;
    assert!(
        !red.contains(pw.as_str()) && !red.contains(token.as_str()),
        "{red}"
    );
    assert!(red.contains("password {{keychain:core-sw1}}"), "{red}");
    assert!(red.contains("{{keychain:api-token}}"), "{red}");
    assert!(red.contains("username admin"), "{red}");
    // The raw sealed bytes are not what redaction knows: text without the payload is untouched.
    let plain = "nothing secret here, just show version";
    assert_eq!(redact(&mut copilot, plain)?, plain);

    // Rotation: a new value replaces the old one in the OS keychain.
    let pw2 = random_payload("pw2");
    set(&mut ui, "core-sw1", SecretKind::Password, &pw2)?;
    let raw_pw2 = raw(&f, backend, "item:core-sw1")?.expect("rotated entry");
    assert_sealed(&raw_pw2, &pw2, "core-sw1 rotated");
    assert_ne!(raw_pw2, raw_pw);
    let (entries, _) = list(&mut ui)?;
    assert_eq!(entries.len(), 2);
    let e = entries.iter().find(|e| e.name == "core-sw1").unwrap();
    assert!(e.rotated_ms >= e.created_ms);
    let red = redact(&mut copilot, &format!("pw {pw2}"))?;
    assert_eq!(red, "pw {{keychain:core-sw1}}");

    // Names the vault reserves or cannot store.
    for bad in ["unlock", "../etc", "", "a b"] {
        assert!(
            matches!(
                err(
                    &mut ui,
                    &BrokerRequest::KeychainSet {
                        name: bad.into(),
                        kind: SecretKind::Token,
                        payload: SecretBytes::copy_from(b"whatever"),
                    }
                )?,
                BrokerError::Invalid { .. }
            ),
            "name {bad:?}"
        );
    }

    // Remove.
    assert!(matches!(
        ok(
            &mut ui,
            &BrokerRequest::KeychainRemove {
                name: "core-sw1".into()
            }
        )?,
        BrokerResponse::Done
    ));
    let (entries, _) = list(&mut ui)?;
    assert_eq!(
        entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["api-token"]
    );
    assert_eq!(
        raw(&f, backend, "item:core-sw1")?,
        None,
        "removed entry still in the OS keychain"
    );
    assert!(raw(&f, backend, "item:api-token")?.is_some());
    for missing in ["core-sw1", "never-existed"] {
        assert_eq!(
            err(
                &mut ui,
                &BrokerRequest::KeychainRemove {
                    name: missing.into()
                }
            )?,
            BrokerError::KeychainNotFound(missing.into())
        );
    }

    // The last entry, then nothing is left for this profile.
    ok(
        &mut ui,
        &BrokerRequest::KeychainRemove {
            name: "api-token".into(),
        },
    )?;
    assert_eq!(raw(&f, backend, "item:api-token")?, None);
    assert!(list(&mut ui)?.0.is_empty());
    // Signed out: the keychain is closed.
    ok(&mut ui, &BrokerRequest::SignOut)?;
    assert_eq!(
        err(&mut ui, &BrokerRequest::KeychainList)?,
        BrokerError::SignedOut
    );
    assert_eq!(
        err(&mut copilot, &BrokerRequest::Redact { text: text.clone() })?,
        BrokerError::SignedOut
    );
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

fn remember_device(backend: Backend) -> Result<()> {
    let mut f = BrokerFixture::start(Options {
        backend,
        ..Options::default()
    })?;
    let _cleanup = KeyutilsCleanup::new(&f, &["item:core-sw1", "unlock"]);
    let mut ui = f.peer(PeerRole::Ui)?;
    ok(
        &mut ui,
        &BrokerRequest::AccountInit {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
        },
    )?;
    let pw = random_payload("rem");
    set(&mut ui, "core-sw1", SecretKind::Password, &pw)?;
    let addr = FieldAddress {
        scope: KeyScope::Private,
        record_kind: "host".into(),
        record_id: "rec-rem".into(),
        field: "ssh.password".into(),
        binding: vec![],
    };
    let sealed = match ok(
        &mut ui,
        &BrokerRequest::SealFields {
            items: vec![SealItem {
                address: addr.clone(),
                plaintext: SecretBytes::copy_from(b"remembered-field"),
            }],
        },
    )? {
        BrokerResponse::Sealed(mut v) => v.remove(0).0,
        other => bail!("{other:?}"),
    };
    let open = BrokerRequest::OpenFields {
        items: vec![OpenItem {
            address: addr,
            sealed,
        }],
    };

    // Without remember, a restart means signed out, and no unlock entry exists.
    assert!(!status(&mut ui)?.remembered_device);
    assert_eq!(raw(&f, backend, "unlock")?, None);
    f.start_broker()?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let st = status(&mut ui)?;
    assert!(!st.signed_in && !st.remembered_device, "{st:?}");

    ok(
        &mut ui,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: true,
        },
    )?;
    assert!(status(&mut ui)?.remembered_device);
    assert!(
        raw(&f, backend, "unlock")?.is_some(),
        "no unlock entry in the OS keychain"
    );

    // Restart: signed in with no passphrase, with the real keys.
    f.start_broker()?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let st = status(&mut ui)?;
    assert!(st.signed_in && st.remembered_device, "{st:?}");
    match ok(&mut ui, &open)? {
        BrokerResponse::Opened(v) => assert_eq!(v[0].expose(), b"remembered-field"),
        other => bail!("{other:?}"),
    }
    // The keychain payload was read back from the OS keychain and unsealed for redaction.
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    assert_eq!(
        redact(&mut copilot, &format!("pw {pw}"))?,
        "pw {{keychain:core-sw1}}"
    );

    // Sign-out deletes the unlock entry.
    let report = match ok(&mut ui, &BrokerRequest::SignOut)? {
        BrokerResponse::SignedOut(r) => r,
        other => bail!("{other:?}"),
    };
    assert!(report.unlock_material_deleted, "{report:?}");
    assert!(report.cached_secrets_zeroized >= 1, "{report:?}");
    assert_eq!(
        raw(&f, backend, "unlock")?,
        None,
        "unlock entry survived sign-out"
    );
    let st = status(&mut ui)?;
    assert!(!st.signed_in && !st.remembered_device, "{st:?}");
    // The item itself stays (sealed) for the next sign-in.
    assert!(raw(&f, backend, "item:core-sw1")?.is_some());

    f.start_broker()?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let st = status(&mut ui)?;
    assert!(!st.signed_in && !st.remembered_device, "{st:?}");
    assert_eq!(err(&mut ui, &open)?, BrokerError::SignedOut);

    // Tidy up the keychain.
    ok(
        &mut ui,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: false,
        },
    )?;
    ok(
        &mut ui,
        &BrokerRequest::KeychainRemove {
            name: "core-sw1".into(),
        },
    )?;
    ok(&mut ui, &BrokerRequest::SignOut)?;
    Ok(())
}

#[test]
fn keyutils_entries_are_sealed_listed_redacted_and_removed() -> Result<()> {
    keychain_set_list_remove(Backend::Keyutils)
}

#[test]
fn secret_service_entries_are_sealed_listed_redacted_and_removed() -> Result<()> {
    keychain_set_list_remove(Backend::SecretService)
}

#[test]
fn keyutils_remembered_device_lasts_until_sign_out() -> Result<()> {
    remember_device(Backend::Keyutils)
}

#[test]
fn secret_service_remembered_device_lasts_until_sign_out() -> Result<()> {
    remember_device(Backend::SecretService)
}

/// The keyutils backend when the process's session keyring is not the
/// user's (a `su`/`runuser` from a root session without `pam_keyinit
/// force`): the broker either keeps its entries in the user's own keyrings
/// or stops with the exact remedy — never a bare `AccessDenied`. Then the
/// remedy it names (`keyctl session -` in front of it) works.
#[test]
fn keyutils_under_runuser_from_a_root_session_works_or_names_the_remedy() -> Result<()> {
    let test = "keyutils_under_runuser_from_a_root_session_works_or_names_the_remedy";
    if !gatehouse_tests::users::is_root() {
        eprintln!(
            "SKIPPED {test}: runuser and a root-owned session keyring need root (CI runs as root)"
        );
        return Ok(());
    }
    for tool in ["/usr/sbin/runuser", "/usr/bin/keyctl"] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED {test}: {tool} is not installed");
            return Ok(());
        }
    }
    let f = BrokerFixture::start(Options {
        backend: Backend::Keyutils,
        ..Options::default()
    })?;
    let user = f.scratch.user().name.clone();
    let uid = f.scratch.user().uid;
    let home = f.scratch.user_dir("gh-runuser")?;
    let profile = format!("{}-runuser", f.profile);
    let broker = f.install_dir().join("gatehouse-broker");
    // Root joins a new session keyring of its own, then runuser (whose PAM
    // stack has pam_keyinit without `force`) keeps it for the user.
    let as_user_in_root_session = |inner: &[&str]| -> std::process::Command {
        let mut c = std::process::Command::new("/usr/bin/keyctl");
        // a clean environment: daemons refuse LD_* variables (cargo sets them)
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args(["session", "-", "/usr/sbin/runuser", "-u", &user, "--"])
            .args(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin"])
            .arg(format!("HOME={}", home.display()))
            .arg(format!("GATEHOUSE_HOME={}", home.display()))
            .arg("GATEHOUSE_LOG=warn")
            .args(inner)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // The scenario holds: the user's process has root's session keyring.
    let described = as_user_in_root_session(&["/usr/bin/keyctl", "rdescribe", "@s"]).output()?;
    let described = String::from_utf8_lossy(&described.stdout).into_owned();
    assert!(
        described.starts_with("keyring;0;"),
        "the session keyring under runuser should be root's: {described:?}"
    );
    let broker_args = |c: &mut std::process::Command| {
        c.arg(&broker)
            .args(["--profile", &profile, "--keychain", "keyutils"]);
    };
    let socket = home.join("run").join("broker.sock");
    // Started like that: it runs on the user's own keyring, or stops saying what to do.
    let mut c = as_user_in_root_session(&[]);
    broker_args(&mut c);
    let mut g = gatehouse_tests::proc::ChildGuard::spawn(&mut c)?;
    let mut exited = false;
    gatehouse_tests::proc::wait_until("broker socket or exit", Duration::from_secs(20), || {
        if g.has_exited()?.is_some() {
            exited = true;
            return Ok(true);
        }
        Ok(socket.exists())
    })?;
    let cli = |args: &[&str], stdin: &str| -> Result<std::process::Output> {
        let mut c = f.scratch.command(f.install_dir().join("gatehouse"));
        c.env("GATEHOUSE_HOME", &home)
            .args(["--profile", &profile])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stdin.as_bytes())?;
        Ok(child.wait_with_output()?)
    };
    if exited {
        let out = g.into_inner().wait_with_output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("AccessDenied\n") && !err.trim_end().ends_with("AccessDenied"),
            "{err}"
        );
        for remedy in [
            "keyctl session - gatehouse up",
            "pam_keyinit.so force",
            "--keychain secret-service",
        ] {
            assert!(err.contains(remedy), "the refusal lacks {remedy:?}: {err}");
        }
    } else {
        // It runs: an entry stored through it is in the user's own keyrings.
        let init = cli(
            &["account", "init", "--passphrase-stdin"],
            "runuser-test-pass\n",
        )?;
        assert!(init.status.success(), "{init:?}");
        let set = cli(&["keychain", "set", "probe"], "runuser-value\n")?;
        assert!(set.status.success(), "{set:?}");
        let desc = format!("gatehouse:{profile}:item:probe");
        // looked up as the user, from a session keyring of the user's own
        let mut seen = Vec::new();
        for ring in ["@u", "@us"] {
            let o = f
                .scratch
                .command("/usr/bin/keyctl")
                .args(["search", ring, "user", &desc])
                .stdin(Stdio::null())
                .output()?;
            seen.push((
                ring,
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ));
        }
        // the entry goes before any assertion: keyutils keys outlive the test
        let rm = cli(&["keychain", "rm", "probe"], "")?;
        assert!(
            seen.iter().any(|s| s.1),
            "entry {desc} is in neither keyring of uid {uid}: {seen:?}"
        );
        assert!(rm.status.success(), "{rm:?}");
        drop(g);
    }
    // The remedy: a session keyring of the user's own in front of it.
    let _ = std::fs::remove_file(&socket);
    let home2 = f.scratch.user_dir("gh-remedy")?;
    let socket2 = home2.join("run").join("broker.sock");
    let mut c = std::process::Command::new("/usr/bin/keyctl");
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(["session", "-", "/usr/sbin/runuser", "-u", &user, "--"])
        .args(["/usr/bin/keyctl", "session", "-"])
        .args(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={}", home2.display()))
        .arg(format!("GATEHOUSE_HOME={}", home2.display()))
        .arg("GATEHOUSE_LOG=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    broker_args(&mut c);
    let mut g = gatehouse_tests::proc::ChildGuard::spawn(&mut c)?;
    gatehouse_tests::proc::wait_until("broker socket (remedy)", Duration::from_secs(20), || {
        if let Some(s) = g.has_exited()? {
            bail!("the remedy did not start the broker: {s}");
        }
        Ok(socket2.exists())
    })?;
    Ok(())
}
