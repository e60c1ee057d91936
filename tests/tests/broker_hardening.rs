//! The broker's process hardening, observed from outside by the kernel's
//! own reports and by same-uid attackers.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use anyhow::Result;
use gatehouse_ipc::PeerRole;
use gatehouse_tests::broker::{BrokerFixture, Options};

fn run_peer_as_user(f: &BrokerFixture, args: &[&str]) -> Result<String> {
    let out = f
        .command(&f.install_dir().join("gatehouse-sessiond"))
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn kernel_reports_no_new_privs_and_seccomp_filter() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let status = gatehouse_tests::proc::status(f.broker_pid())?;
    assert_eq!(
        status.get("NoNewPrivs").map(String::as_str),
        Some("1"),
        "{status:?}"
    );
    assert_eq!(
        status.get("Seccomp").map(String::as_str),
        Some("2"),
        "{status:?}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", f.broker_pid()))?;
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default();
    assert!(
        core.split_whitespace().filter(|w| *w == "0").count() >= 2,
        "core limit not 0/0: {core}"
    );
    // This kernel has SO_PEERPIDFD (6.5+): the broker must say it pinned us.
    let mut ui = f.peer(PeerRole::Ui)?;
    let st = ui.ok(&gatehouse_ipc::broker::BrokerRequest::Status)?;
    assert_eq!(st["Status"]["peer_pidfd"], true, "{st}");
    Ok(())
}

#[test]
fn same_uid_cannot_read_memory_or_ptrace_the_broker() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let broker = f.broker_pid().to_string();
    let mem = run_peer_as_user(&f, &["readmem", &broker])?;
    assert!(
        mem.starts_with("refused"),
        "same-uid /proc/<broker>/mem: {mem}"
    );
    let ptrace = run_peer_as_user(&f, &["ptrace", &broker])?;
    assert!(
        ptrace.starts_with("refused"),
        "same-uid ptrace of broker: {ptrace}"
    );
    // Control: the same user can do both to an ordinary process of its own,
    // so the refusals above come from the broker's hardening.
    let victim = f.peer(PeerRole::Ui)?;
    let pid = victim.pid().to_string();
    assert_eq!(run_peer_as_user(&f, &["readmem", &pid])?, "opened");
    assert_eq!(run_peer_as_user(&f, &["ptrace", &pid])?, "attached");
    Ok(())
}

#[test]
fn sigsegv_leaves_no_core() -> Result<()> {
    let mut f = BrokerFixture::start(Options::default())?;
    let pid = f.broker_pid();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
    // Rust's runtime handles the first SIGSEGV (stack-overflow detection): for a
    // fault that is not a guard page it restores the default action and returns,
    // so a real fault re-faults and dies. A signal sent by kill() does not
    // re-fault, hence a second one.
    gatehouse_tests::proc::signal(pid, nix::sys::signal::Signal::SIGSEGV)?;
    let broker = f.broker.as_mut().expect("broker");
    let status = match broker.wait_timeout(Duration::from_millis(300)) {
        Ok(s) => s,
        Err(_) => {
            gatehouse_tests::proc::signal(pid, nix::sys::signal::Signal::SIGSEGV)?;
            broker.wait_timeout(Duration::from_secs(10))?
        }
    };
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    assert!(!status.core_dumped(), "kernel reports a core dump");
    for dir in [cwd.as_path(), f.home.as_path(), &f.home.join("state")] {
        for e in std::fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().to_string();
            assert!(
                !name.starts_with("core"),
                "core file {name} in {}",
                dir.display()
            );
        }
    }
    Ok(())
}

#[test]
fn audit_isolation_passes_as_the_user() -> Result<()> {
    // The security team's self-check, run as the (unprivileged) user against a
    // real broker: every check must pass, and the same-uid attacks must have
    // been tried (not skipped).
    let f = BrokerFixture::start(Options::default())?;
    let init = f.cli(
        &["account", "init", "--passphrase-stdin"],
        "audit-test-passphrase\n",
    )?;
    assert!(init.status.success(), "{init:?}");
    let out = f.cli(&["audit", "isolation", "--json", "--then-sign-out"], "")?;
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rows = checks.as_array().cloned().unwrap_or_default();
    let outcome = |name: &str| {
        rows.iter()
            .find(|c| c["check"] == name)
            .map(|c| c["outcome"].as_str().unwrap_or_default().to_string())
    };
    for name in [
        "ptrace of broker refused",
        "/proc/<broker>/mem refused",
        "broker seccomp filter",
        "keys in secret memory",
        "seal/open round trip",
        "key operations refused after sign-out",
    ] {
        assert_eq!(outcome(name).as_deref(), Some("pass"), "{name}: {checks:#}");
    }
    // A development build (not installed setgid): every boundary row says so
    // plainly and fails; everything else passes.
    let boundary: Vec<_> = rows
        .iter()
        .filter(|c| {
            c["check"]
                .as_str()
                .is_some_and(|n| n.starts_with("boundary: "))
        })
        .collect();
    assert!(boundary.len() >= 5, "{checks:#}");
    for c in boundary.iter().filter(|c| c["outcome"] != "skip") {
        assert_eq!(c["outcome"], "fail", "{c}");
        assert!(
            c["detail"]
                .as_str()
                .is_some_and(|d| d.contains("OFF: development build")),
            "{c}"
        );
    }
    assert!(
        rows.iter()
            .filter(|c| !boundary.contains(c))
            .all(|c| c["outcome"] != "fail"),
        "{checks:#}"
    );
    Ok(())
}
