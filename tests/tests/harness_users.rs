//! users: the test users exist, are unprivileged, and run_as really switches
//! uid/gid and gives a private environment.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::*;
use gatehouse_tests::users::{self, OTHER_NAME, PRIMARY_NAME, TestUser};
use gatehouse_tests::{Scratch, proc::ChildGuard};

#[test]
fn primary_user_is_unprivileged_and_real() {
    let u = TestUser::primary();
    assert_eq!(TestUser::lookup(&u.name).unwrap().as_ref(), Some(&u));
    if users::is_root() {
        assert_eq!(u.name, PRIMARY_NAME);
        assert_ne!(u.uid, 0);
        assert_ne!(u.gid, 0);
        assert!(u.home.is_dir(), "useradd --create-home made {:?}", u.home);
    } else {
        assert!(u.is_current());
    }
    // Idempotent.
    assert_eq!(TestUser::primary(), u);
}

#[test]
fn other_user_is_a_different_uid() {
    let Some(o) = TestUser::other_or_skip("other_user_is_a_different_uid") else {
        return;
    };
    let p = TestUser::primary();
    assert_eq!(o.name, OTHER_NAME);
    assert_ne!(o.uid, p.uid);
    assert_ne!(o.gid, p.gid);
    assert_ne!(o.uid, 0);
}

#[test]
fn run_as_switches_identity_and_clears_env() {
    let s = Scratch::primary().unwrap();
    let probe = install_probe(&s, "probe");
    let out = check(
        s.command(&probe).arg("whoami").output().unwrap(),
        "probe whoami",
    );
    let u = s.user();
    let uid = u.uid.to_string();
    assert_eq!(
        field(&out, "uid")
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [uid.as_str(); 4]
    );
    let gid = u.gid.to_string();
    assert_eq!(
        field(&out, "gid")
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [gid.as_str(); 4]
    );
    if users::is_root() {
        assert_eq!(field(&out, "groups"), Some(""), "no supplementary groups");
    }
    assert_eq!(field(&out, "env:HOME"), Some(s.home().to_str().unwrap()));
    assert_eq!(
        field(&out, "env:XDG_RUNTIME_DIR"),
        Some(s.runtime_dir().to_str().unwrap())
    );
    assert_eq!(field(&out, "env:USER"), Some(u.name.as_str()));
    assert_eq!(field(&out, "cwd"), Some(s.home().to_str().unwrap()));
    // Nothing of the test runner's environment leaks (cargo sets this one).
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(!out.contains("CARGO_MANIFEST_DIR"), "{out}");
    for (dir, mode) in [(s.home(), 0o700), (s.runtime_dir(), 0o700)] {
        let m = std::fs::metadata(dir).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (u.uid, mode), "{dir:?}");
    }
}

#[test]
fn other_user_cannot_enter_primary_home() {
    let Some(o) = TestUser::other_or_skip("other_user_cannot_enter_primary_home") else {
        return;
    };
    let mine = Scratch::primary().unwrap();
    let theirs = Scratch::new(&o).unwrap();
    let secret = mine
        .write_user_file(mine.home().join("secret"), "x", 0o644)
        .unwrap();
    // The primary user can read it; the other uid cannot even reach it.
    let ok = mine.command("cat").arg(&secret).output().unwrap();
    assert!(ok.status.success());
    let denied = theirs.command("cat").arg(&secret).output().unwrap();
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
}

/// Six processes race to create the same new user; all get the same uid.
#[test]
fn ensure_user_is_race_safe_across_processes() {
    if !users::is_root() {
        eprintln!("SKIPPED ensure_user_is_race_safe_across_processes: creating users needs root");
        return;
    }
    let name = format!("ghrace{}", std::process::id());
    let kids: Vec<ChildGuard> = (0..6)
        .map(|_| {
            ChildGuard::spawn(
                Command::new(PROBE)
                    .args(["ensure-user", &name])
                    .stdout(std::process::Stdio::piped()),
            )
            .unwrap()
        })
        .collect();
    let outs: Vec<String> = kids
        .into_iter()
        .map(|k| check(k.into_inner().wait_with_output().unwrap(), "ensure-user"))
        .collect();
    let created = TestUser::lookup(&name).unwrap().expect("created");
    let del = Command::new("userdel")
        .args(["-r", &name])
        .output()
        .unwrap();
    for o in &outs {
        assert_eq!(o.trim(), format!("uid={}", created.uid));
    }
    assert!(
        del.status.success() || del.status.code() == Some(12),
        "{del:?}"
    );
}
