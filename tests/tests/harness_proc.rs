//! proc: the wait helpers time out and succeed for real, guards kill, and
//! /proc readers see the test user's uid.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use gatehouse_tests::Scratch;
use gatehouse_tests::proc::{self, ChildGuard, LineReader, wait_for_exit, wait_for_socket};

#[test]
fn wait_for_socket_sees_a_late_listener_and_times_out_otherwise() {
    let s = Scratch::primary().unwrap();
    let probe = install_probe(&s, "probe");
    let sock = s.runtime_dir().join("late.sock");
    let t = Instant::now();
    let _g = ChildGuard::spawn(
        s.command(&probe)
            .arg("listen")
            .arg(&sock)
            .arg("300")
            .stdout(Stdio::null()),
    )
    .unwrap();
    wait_for_socket(&sock, Duration::from_secs(10)).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));

    // A regular file is not a socket.
    let file = s.write_user_file("plain", "", 0o600).unwrap();
    let t = Instant::now();
    let e = wait_for_socket(&file, Duration::from_millis(200)).unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn wait_for_exit_returns_the_status_or_times_out() {
    let s = Scratch::primary().unwrap();
    let probe = install_probe(&s, "probe");
    let mut c = s
        .command(&probe)
        .args(["exit", "7", "100"])
        .spawn()
        .unwrap();
    let st = wait_for_exit(&mut c, Duration::from_secs(10)).unwrap();
    assert_eq!(st.code(), Some(7));

    let mut g = ChildGuard::spawn(s.command(&probe).arg("sleep")).unwrap();
    assert!(g.wait_timeout(Duration::from_millis(150)).is_err());
    assert!(proc::is_alive(g.pid()));
    let st = g.kill9().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(9));
}

#[test]
fn child_guard_kills_on_drop_and_group_guard_kills_grandchildren() {
    let s = Scratch::primary().unwrap();
    let probe = install_probe(&s, "probe");
    let g = ChildGuard::spawn(s.command(&probe).arg("sleep")).unwrap();
    let pid = g.pid();
    assert!(proc::is_alive(pid));
    drop(g);
    assert!(!proc::is_alive(pid));

    // sh starts a grandchild and prints its pid.
    let mut g = ChildGuard::spawn_group(
        s.command("sh")
            .args(["-c", "\"$0\" sleep & echo $!; wait"])
            .arg(&probe)
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let mut lines = LineReader::spawn(g.stdout.take().unwrap());
    let grandchild: u32 = lines
        .next_line(Duration::from_secs(10))
        .unwrap()
        .parse()
        .unwrap();
    proc::wait_until("grandchild exec", Duration::from_secs(10), || {
        Ok(proc::exe(grandchild).is_ok_and(|e| e == probe))
    })
    .unwrap();
    drop(g);
    // The grandchild is reparented (to init or a subreaper) and reaped there;
    // it must at least be dead.
    proc::wait_until("grandchild to die", Duration::from_secs(10), || {
        Ok(!proc::is_alive(grandchild))
    })
    .unwrap();
}

#[test]
fn proc_status_reports_the_test_users_ids_and_exe() {
    let s = Scratch::primary().unwrap();
    let probe = install_probe(&s, "probe");
    let g = ChildGuard::spawn(s.command(&probe).arg("sleep")).unwrap();
    let u = s.user();
    assert_eq!(proc::uids(g.pid()).unwrap(), [u.uid; 4]);
    assert_eq!(proc::gids(g.pid()).unwrap(), [u.gid; 4]);
    assert_eq!(proc::exe(g.pid()).unwrap(), probe);
    assert_eq!(proc::status_field(g.pid(), "Name").unwrap(), "probe");
    assert!(proc::status(g.pid()).unwrap().contains_key("VmRSS"));
    assert!(proc::status_field(g.pid(), "NoSuchField").is_err());
    proc::kill9(g.pid()).unwrap();
}

#[test]
fn line_reader_waits_with_a_timeout() {
    let mut c = ChildGuard::spawn(
        std::process::Command::new("sh")
            .args(["-c", "echo one; sleep 0.2; echo two; exec sleep 30"])
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let mut r = LineReader::spawn(c.stdout.take().unwrap());
    assert_eq!(
        r.wait_for(Duration::from_secs(10), |l| l == "two").unwrap(),
        "two"
    );
    assert_eq!(r.seen(), ["one", "two"]);
    assert!(r.next_line(Duration::from_millis(100)).is_err());
}
