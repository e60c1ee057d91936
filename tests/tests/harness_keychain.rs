//! keychain_env: a real Secret Service (gnome-keyring on a private bus) as
//! the test user, and the kernel keyutils behaviour tests rely on.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use gatehouse_tests::proc::{self, ChildGuard};
use gatehouse_tests::{KeychainEnv, Scratch, SessionKeyring, TestUser, keyutils_wrap, users};

fn secret_tool_store(k: &KeychainEnv, s: &Scratch, key: &str, value: &str) {
    let mut c = k
        .command(s, "secret-tool")
        .args([
            "store",
            "--label=gatehouse harness",
            "app",
            "gatehouse-test",
            "key",
            key,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("secret-tool (package libsecret-tools)");
    c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    check(c.wait_with_output().unwrap(), "secret-tool store");
}

fn secret_tool_lookup(cmd: &mut Command, key: &str) -> std::process::Output {
    let mut g = ChildGuard::spawn(
        cmd.args(["lookup", "app", "gatehouse-test", "key", key])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    g.wait_timeout(Duration::from_secs(20))
        .expect("lookup finished");
    g.into_inner().wait_with_output().unwrap()
}

#[test]
fn secret_service_stores_and_returns_a_secret_as_the_test_user() {
    let s = Scratch::primary().unwrap();
    let k = KeychainEnv::start(&s).unwrap();
    let (bus, keyring) = (k.bus_pid(), k.keyring_pid());
    let u = s.user();
    // Both daemons run as the test user, on a path socket in its runtime dir.
    assert_eq!(proc::uids(bus).unwrap(), [u.uid; 4]);
    assert_eq!(proc::uids(keyring).unwrap(), [u.uid; 4]);
    assert!(k.bus_address().starts_with(&format!(
        "unix:path={}",
        s.runtime_dir().join("bus").display()
    )));
    assert!(k.bus_socket().starts_with(s.runtime_dir()));
    proc::wait_for_socket(k.bus_socket(), Duration::from_secs(1)).unwrap();

    let value = random_marker("secret-service");
    secret_tool_store(&k, &s, "k1", &value);
    // Read back by a separate process.
    let got = check(
        secret_tool_lookup(&mut k.command(&s, "secret-tool"), "k1"),
        "lookup",
    );
    assert_eq!(got, value);
    // The keyring file is on disk in the private home, and encrypted.
    let login = s.home().join(".local/share/keyrings/login.keyring");
    let bytes = std::fs::read(&login).unwrap();
    assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()));
    // An unknown key is not found.
    let miss = secret_tool_lookup(&mut k.command(&s, "secret-tool"), "nope");
    assert!(!miss.status.success() && miss.stdout.is_empty());

    // The socket is at the standard per-user place $XDG_RUNTIME_DIR/bus, so
    // D-Bus clients (GDBus, zbus, sd-bus) find it from XDG_RUNTIME_DIR alone,
    // like a systemd user bus...
    let implicit = secret_tool_lookup(&mut s.command("secret-tool"), "k1");
    assert_eq!(check(implicit, "lookup via XDG_RUNTIME_DIR"), value);
    // ...and without either variable there is no Secret Service: no fallback
    // to some other bus.
    let none = secret_tool_lookup(s.command("secret-tool").env_remove("XDG_RUNTIME_DIR"), "k1");
    assert!(!none.status.success() && none.stdout.is_empty(), "{none:?}");

    drop(k);
    assert!(!proc::is_alive(bus) && !proc::is_alive(keyring));
}

#[test]
fn two_keychain_envs_are_independent() {
    let a = Scratch::primary().unwrap();
    let b = Scratch::primary().unwrap();
    let ka = KeychainEnv::start(&a).unwrap();
    let kb = KeychainEnv::start(&b).unwrap();
    secret_tool_store(&ka, &a, "only-in-a", "A");
    assert_eq!(
        check(
            secret_tool_lookup(&mut ka.command(&a, "secret-tool"), "only-in-a"),
            "a"
        ),
        "A"
    );
    let other = secret_tool_lookup(&mut kb.command(&b, "secret-tool"), "only-in-a");
    assert!(other.stdout.is_empty(), "{other:?}");
}

fn keyctl(s: &Scratch, mode: SessionKeyring, script: &str) -> std::process::Output {
    let mut cmd = s.command("sh");
    cmd.arg("-c").arg(script);
    keyutils_wrap(&mut cmd, mode);
    cmd.output().expect("sh")
}

fn key_name(tag: &str) -> String {
    format!("gh-{tag}-{}", &random_marker("")[4..20])
}

#[test]
fn wrapped_process_gets_its_own_session_keyring_same_pid_and_exe() {
    let s = Scratch::primary().unwrap();
    let u = s.user().clone();
    // `keyctl rdescribe @s` = type;uid;gid;perm;description
    let out = check(
        keyctl(&s, SessionKeyring::New, "keyctl rdescribe @s"),
        "rdescribe",
    );
    let f: Vec<&str> = out.trim().split(';').collect();
    assert_eq!(
        (f[0], f[1], f[4]),
        ("keyring", u.uid.to_string().as_str(), "_ses"),
        "{out}"
    );

    let out = check(
        keyctl(&s, SessionKeyring::UserSession, "keyctl rdescribe @s"),
        "rdescribe",
    );
    assert!(
        out.trim().ends_with(&format!(";_uid_ses.{}", u.uid)),
        "{out}"
    );

    // No exec indirection: the wrapped child is the program itself.
    let probe = install_probe(&s, "gatehouse-broker");
    let mut cmd = s.command(&probe);
    cmd.arg("sleep");
    keyutils_wrap(&mut cmd, SessionKeyring::New);
    let g = ChildGuard::spawn(&mut cmd).unwrap();
    proc::wait_until("exec", Duration::from_secs(10), || {
        Ok(proc::exe(g.pid()).is_ok_and(|e| e == probe))
    })
    .unwrap();
    assert_eq!(proc::uids(g.pid()).unwrap(), [u.uid; 4]);
}

#[test]
fn keys_in_a_new_session_die_with_it_unless_linked_to_the_persistent_keyring() {
    let s = Scratch::primary().unwrap();
    let gone = key_name("session-only");
    let kept = key_name("persistent");
    // Process 1 (its own new session): one key only in @s, one in the
    // user's persistent keyring (linked into @s, so possessed).
    check(
        keyctl(
            &s,
            SessionKeyring::New,
            &format!(
                "keyctl add user {gone} v1 @s >/dev/null && \
                 keyctl add user {kept} v2 $(keyctl get_persistent @s) >/dev/null"
            ),
        ),
        "add",
    );
    // Process 2, another new session: needs get_persistent to see the key.
    let without = keyctl(
        &s,
        SessionKeyring::New,
        &format!("keyctl request user {kept}"),
    );
    assert!(!without.status.success(), "not reachable without the link");
    let got = check(
        keyctl(
            &s,
            SessionKeyring::New,
            &format!("keyctl get_persistent @s >/dev/null && keyctl pipe %user:{kept}"),
        ),
        "pipe persistent",
    );
    assert_eq!(got, "v2");
    let lost = keyctl(
        &s,
        SessionKeyring::New,
        &format!("keyctl get_persistent @s >/dev/null; keyctl request user {gone}"),
    );
    assert!(
        !lost.status.success(),
        "session-only key died with its session"
    );
    // Clean up.
    check(
        keyctl(
            &s,
            SessionKeyring::New,
            &format!("keyctl get_persistent @s >/dev/null && keyctl invalidate %user:{kept}"),
        ),
        "invalidate",
    );
}

#[test]
fn user_session_keyring_is_shared_by_later_processes_of_the_same_uid_only() {
    let s = Scratch::primary().unwrap();
    let name = key_name("usersession");
    // Adding through the special id "@s" would not work: the kernel answers
    // a *create* lookup of @s from a process whose session keyring is the
    // user-session keyring by joining a new anonymous one. Resolving @s
    // without create (`keyctl id`, or `KeyRing::from_special_id(Session,
    // false)` in linux-keyutils-keyring-store) and adding by number does.
    let lost = key_name("usersession-via-special-id");
    check(
        keyctl(
            &s,
            SessionKeyring::UserSession,
            &format!(
                "keyctl add user {lost} v @s >/dev/null && keyctl add user {name} v3 $(keyctl id @s)"
            ),
        ),
        "add",
    );
    let r = keyctl(
        &s,
        SessionKeyring::UserSession,
        &format!("keyctl request user {lost}"),
    );
    assert!(!r.status.success(), "went to a throwaway session keyring");
    let got = check(
        keyctl(
            &s,
            SessionKeyring::UserSession,
            &format!("keyctl pipe %user:{name}"),
        ),
        "pipe",
    );
    assert_eq!(got, "v3");
    // So is a process that has no session keyring at all (what a plain
    // setuid child of a runner without one gets: Inherit here).
    let plain = keyctl(
        &s,
        SessionKeyring::Inherit,
        &format!("keyctl pipe %user:{name}"),
    );
    if keyctl(&s, SessionKeyring::Inherit, "keyctl rdescribe @s")
        .stdout
        .ends_with(format!(";_uid_ses.{}\n", s.user().uid).as_bytes())
    {
        assert_eq!(check(plain, "pipe (no session keyring)"), "v3");
    } else {
        eprintln!("note: this runner has its own session keyring; Inherit shares it");
    }
    // A new session keyring does not see it.
    let fresh = keyctl(
        &s,
        SessionKeyring::New,
        &format!("keyctl request user {name}"),
    );
    assert!(!fresh.status.success());
    if let Some(o) = TestUser::other_or_skip("user_session_keyring ... other uid") {
        let theirs = Scratch::new(&o).unwrap();
        for mode in [SessionKeyring::UserSession, SessionKeyring::New] {
            let r = keyctl(&theirs, mode, &format!("keyctl request user {name}"));
            assert!(!r.status.success(), "other uid must not find it ({mode:?})");
        }
    }
    check(
        keyctl(
            &s,
            SessionKeyring::UserSession,
            &format!("keyctl invalidate %user:{name}"),
        ),
        "invalidate",
    );
}

/// Documents the hazard keyutils_wrap exists for: under a root process that
/// has a session keyring, children of *different* uids share it.
#[test]
fn inherited_root_session_keyring_leaks_between_uids() {
    let Some(o) = TestUser::other_or_skip("inherited_root_session_keyring_leaks_between_uids")
    else {
        return;
    };
    assert!(users::is_root());
    let p = TestUser::primary();
    let name = key_name("leak");
    // A root shell in a new session keyring starts one process per uid, the
    // way a test runner started from a PAM login would (setpriv = plain
    // setresuid, like CommandExt::uid).
    let script = format!(
        "setpriv --reuid={pu} --regid={pg} --clear-groups keyctl add user {name} leaked @s >/dev/null && \
         setpriv --reuid={ou} --regid={og} --clear-groups keyctl pipe %user:{name}",
        pu = p.uid,
        pg = p.gid,
        ou = o.uid,
        og = o.gid
    );
    let out = Command::new("keyctl")
        .args(["session", "-", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        check(out, "leak demo"),
        "leaked",
        "kernel behaviour changed? then update tests/README.md"
    );
}
