//! install/scratch: binaries land in a trusted dir the test user can run but
//! not modify; copies elsewhere have another /proc/PID/exe.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;
use gatehouse_tests::proc::{self, ChildGuard};
use gatehouse_tests::{Scratch, find_binary, install_into, users};

#[test]
fn installed_role_binary_runs_as_user_from_the_install_path() {
    let s = Scratch::primary().unwrap();
    let sessiond = install_probe(&s, "gatehouse-sessiond");
    assert_eq!(sessiond, s.install_dir().join("gatehouse-sessiond"));
    let out = check(
        s.command(&sessiond).arg("whoami").output().unwrap(),
        "whoami",
    );
    assert_eq!(field(&out, "exe"), Some(sessiond.to_str().unwrap()));

    let m = std::fs::metadata(&sessiond).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755);
    let d = std::fs::metadata(s.install_dir()).unwrap();
    if users::is_root() {
        assert_eq!((m.uid(), d.uid(), d.mode() & 0o7777), (0, 0, 0o755));
        // The test user can neither replace the binary nor add one.
        let w = s
            .command("sh")
            .arg("-c")
            .arg("echo x > \"$0\" || exit 3; exit 0")
            .arg(&sessiond)
            .output()
            .unwrap();
        assert_eq!(w.status.code(), Some(3));
        let add = s
            .command("cp")
            .arg(&sessiond)
            .arg(s.install_dir().join("gatehouse-ui"))
            .output()
            .unwrap();
        assert!(!add.status.success());
        let mv = s
            .command("mv")
            .arg(s.install_dir())
            .arg(s.home().join("stolen"))
            .output()
            .unwrap();
        assert!(
            !mv.status.success(),
            "scratch root must not be user-writable"
        );
    } else {
        assert_eq!(d.mode() & 0o222, 0);
    }
}

#[test]
fn a_copy_at_another_path_has_another_exe() {
    let s = Scratch::primary().unwrap();
    let real = install_probe(&s, "gatehouse-copilotd");
    let elsewhere = s.user_dir("elsewhere").unwrap();
    let copy = install_into(&elsewhere, PROBE.as_ref(), "gatehouse-copilotd").unwrap();
    assert_ne!(real, copy);
    let g = ChildGuard::spawn(s.command(&copy).arg("sleep")).unwrap();
    assert_eq!(proc::exe(g.pid()).unwrap(), copy);
    assert_eq!(
        std::fs::read(&real).unwrap(),
        std::fs::read(&copy).unwrap(),
        "same bytes, different path"
    );
}

#[test]
fn install_refuses_path_names() {
    let s = Scratch::primary().unwrap();
    assert!(gatehouse_tests::install(&s, PROBE.as_ref(), "../x").is_err());
    assert!(gatehouse_tests::install(&s, "/nonexistent/bin".as_ref(), "x").is_err());
}

#[test]
fn find_binary_finds_workspace_binaries_in_the_target_dir() {
    let found = find_binary("gatehouse-harness-probe").unwrap();
    assert_eq!(found, std::path::Path::new(PROBE));
    assert!(find_binary("gatehouse-no-such-binary").is_err());
}

#[test]
fn scratch_is_short_private_and_removed_on_drop() {
    let s = Scratch::primary().unwrap();
    let root = s.path().to_path_buf();
    let sock = s.runtime_dir().join("gatehouse").join("broker.sock");
    assert!(sock.as_os_str().len() < 100, "{sock:?}");
    let r = std::fs::metadata(&root).unwrap();
    if users::is_root() {
        assert_eq!((r.uid(), r.mode() & 0o7777), (0, 0o711));
    } else {
        assert_eq!(r.mode() & 0o077, 0);
    }
    // Files the test user created are removed too.
    check(
        s.command("mkdir")
            .arg("-p")
            .arg(s.home().join("a/b"))
            .output()
            .unwrap(),
        "mkdir",
    );
    drop(s);
    assert!(!root.exists());
}
