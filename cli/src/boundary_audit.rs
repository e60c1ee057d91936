//! The privilege boundary's rows of `gatehouse audit isolation`.
//!
//! Owns: checking, from outside, each point of the boundary a same-uid
//! program must not cross (docs/threat-model.md): the binaries are installed
//! setgid to a group the user is not in; the group-only state is closed to
//! the user; every daemon runs with the group (so the loader ran it in secure
//! mode: no `LD_*`); the app and waiting CLI processes are closed to ptrace;
//! remembered unlock material is in the group-only state; decisions and new
//! credential destinations need presence. In a development build every row
//! says plainly that the boundary is off (and fails).
//! Must never: report pass for something it did not look at (then: skip).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use gatehouse_ipc::broker::BrokerStatus;
use gatehouse_sandbox::status::{Check, Outcome};

const OFF: &str = "OFF: development build (binaries not installed setgid; run scripts/install)";

fn row(checks: &mut Vec<Check>, name: &str, outcome: Outcome, detail: impl Into<String>) {
    checks.push(Check {
        check: format!("boundary: {name}"),
        outcome,
        detail: detail.into(),
    });
}

/// Real, effective, saved and filesystem gids of `pid` (from /proc, which
/// any same-uid process may read).
fn gids(pid: i32) -> Option<[u32; 4]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Gid:"))?;
    let v: Vec<u32> = line[4..]
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    v.try_into().ok()
}

/// Why the user's other processes cannot ptrace or read `pid`, if they cannot.
fn closed_to_user(pid: i32, group: Option<u32>) -> Result<String, String> {
    let Some(g) = gids(pid) else {
        return Err("gone".into());
    };
    if group.is_some_and(|group| g.iter().all(|x| *x == group)) {
        return Ok(
            "runs with the gatehouse group in all gids: ptrace and /proc/PID/mem need it".into(),
        );
    }
    // A non-dumpable process's /proc directory belongs to root.
    match std::fs::metadata(format!("/proc/{pid}")) {
        Ok(m) if m.uid() == 0 && !nix::unistd::geteuid().is_root() => {
            Ok("not dumpable (PR_SET_DUMPABLE 0)".into())
        }
        Ok(_) => Err(format!(
            "dumpable, gids {g:?}: a same-uid program can ptrace it"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Processes whose name (comm) is `comm`, with their command lines.
fn by_name(comm: &str) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            (pid, cmd)
        })
        .collect()
}

/// Adds the boundary's rows. `daemons` are the running daemons' (name, pid).
pub fn checks(checks: &mut Vec<Check>, status: &BrokerStatus, daemons: &[(&str, i32)]) {
    let group = status.boundary_group;
    let install = Path::new(&status.install_dir);

    // 1. The install: every binary root-owned, setgid to the group.
    match group {
        None => row(checks, "setgid install", Outcome::Fail, OFF),
        Some(gid) => {
            let mut bad = Vec::new();
            let mut seen = 0;
            for name in [
                "gatehouse",
                "gatehouse-broker",
                "gatehouse-sessiond",
                "gatehouse-copilotd",
                "gatehouse-ui",
            ] {
                if let Ok(m) = std::fs::metadata(install.join(name)) {
                    seen += 1;
                    if m.uid() != 0
                        || m.gid() != gid
                        || m.mode() & 0o2000 == 0
                        || m.mode() & 0o022 != 0
                    {
                        bad.push(format!(
                            "{name} is uid {} gid {} mode {:o}",
                            m.uid(),
                            m.gid(),
                            m.mode() & 0o7777
                        ));
                    }
                }
            }
            let member = nix::unistd::getgroups()
                .map(|g| g.iter().any(|x| x.as_raw() == gid))
                .unwrap_or(false)
                && nix::unistd::getgid().as_raw() != gid;
            if member {
                bad.push(format!("this user is a member of group gid {gid}"));
            }
            if bad.is_empty() {
                row(
                    checks,
                    "setgid install",
                    Outcome::Pass,
                    format!(
                        "{seen} binaries in {} root-owned, setgid to gid {gid}",
                        install.display()
                    ),
                );
            } else {
                row(checks, "setgid install", Outcome::Fail, bad.join("; "));
            }
        }
    }

    // 2. The group-only state.
    let root = gatehouse_ipc::paths::group_state_root(install);
    match group {
        None => row(checks, "group-only state", Outcome::Fail, OFF),
        Some(gid) => match std::fs::metadata(&root) {
            Ok(m)
                if m.uid() != nix::unistd::getuid().as_raw()
                    && m.gid() == gid
                    && m.mode() & 0o707 == 0 =>
            {
                row(
                    checks,
                    "group-only state",
                    Outcome::Pass,
                    format!(
                        "{} uid {} gid {gid} mode {:o}: the user's uid cannot enter it",
                        root.display(),
                        m.uid(),
                        m.mode() & 0o7777
                    ),
                )
            }
            Ok(m) => row(
                checks,
                "group-only state",
                Outcome::Fail,
                format!(
                    "{} is uid {} gid {} mode {:o}",
                    root.display(),
                    m.uid(),
                    m.gid(),
                    m.mode() & 0o7777
                ),
            ),
            Err(e) => row(
                checks,
                "group-only state",
                Outcome::Fail,
                format!("{}: {e}", root.display()),
            ),
        },
    }

    // 3. No LD_* in any daemon: each runs with the group, i.e. was executed
    //    in secure mode (the loader ignores LD_*), and refuses LD_* itself.
    for (name, pid) in daemons {
        let check = format!("no LD_* in {name}");
        match (group, gids(*pid)) {
            (_, None) => row(checks, &check, Outcome::Skip, format!("pid {pid} is gone")),
            (None, Some(_)) => row(
                checks,
                &check,
                Outcome::Fail,
                format!(
                    "{OFF}: the loader honours LD_PRELOAD before the daemon's own LD_* refusal runs"
                ),
            ),
            (Some(gid), Some(g)) if g[1] == gid => row(
                checks,
                &check,
                Outcome::Pass,
                format!(
                    "pid {pid} runs with gid {gid} (secure-mode exec: the loader ignored LD_*); it refuses LD_* at start"
                ),
            ),
            (Some(gid), Some(g)) => row(
                checks,
                &check,
                Outcome::Fail,
                format!("pid {pid} gids {g:?}, not {gid}"),
            ),
        }
    }

    // 4. The app.
    let apps = by_name("gatehouse-ui");
    if apps.is_empty() {
        row(
            checks,
            "app closed to ptrace",
            Outcome::Skip,
            "the app is not running",
        );
    }
    for (pid, _) in apps {
        match (group, closed_to_user(pid, group)) {
            (None, _) => row(checks, "app closed to ptrace", Outcome::Fail, OFF),
            (Some(_), Ok(why)) => row(
                checks,
                "app closed to ptrace",
                Outcome::Pass,
                format!("pid {pid}: {why}"),
            ),
            (Some(_), Err(why)) => row(
                checks,
                "app closed to ptrace",
                Outcome::Fail,
                format!("pid {pid}: {why}"),
            ),
        }
    }

    // 5. Waiting CLI processes (exec --request, connect).
    let waiting: Vec<(i32, String)> = by_name("gatehouse")
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(" connect ") || cmd.contains(" exec "))
        .collect();
    if waiting.is_empty() {
        row(
            checks,
            "waiting CLI closed to ptrace",
            Outcome::Skip,
            "no `gatehouse exec` or `connect` is running",
        );
    }
    for (pid, _) in waiting {
        match closed_to_user(pid, group) {
            Ok(why) => row(
                checks,
                "waiting CLI closed to ptrace",
                Outcome::Pass,
                format!("pid {pid}: {why}"),
            ),
            Err(why) => row(
                checks,
                "waiting CLI closed to ptrace",
                Outcome::Fail,
                format!("pid {pid}: {why}"),
            ),
        }
    }

    // 6. Remembered unlock material.
    match (group, &status.remembered_at) {
        (None, Some(at)) => row(
            checks,
            "remembered material closed to the user",
            Outcome::Fail,
            format!("{OFF}: kept in {at}"),
        ),
        (None, None) => row(
            checks,
            "remembered material closed to the user",
            Outcome::Fail,
            format!("{OFF}: `signin --remember` would keep it in the user's keychain"),
        ),
        (Some(_), Some(at)) if at.starts_with(&*root.to_string_lossy()) => row(
            checks,
            "remembered material closed to the user",
            Outcome::Pass,
            at.clone(),
        ),
        (Some(_), Some(at)) => row(
            checks,
            "remembered material closed to the user",
            Outcome::Fail,
            at.clone(),
        ),
        (Some(_), None) => row(
            checks,
            "remembered material closed to the user",
            Outcome::Pass,
            format!(
                "nothing remembered; `signin --remember` keeps it under {} (group only)",
                root.display()
            ),
        ),
    }

    // 6b. Sealed to the TPM when there is one.
    let check = "remembered material sealed to the TPM";
    match (&status.tpm, &status.remembered_at) {
        (None, _) => row(
            checks,
            check,
            Outcome::Skip,
            "no TPM this broker can use (/dev/tpmrm0 missing or closed to it, or GATEHOUSE_TPM=off): the group-only store is the protection".to_string(),
        ),
        (Some(t), None) => row(
            checks,
            check,
            Outcome::Pass,
            format!("nothing remembered; `signin --remember` seals it to the {t}"),
        ),
        (Some(_), Some(at)) if at.contains(", sealed to the ") => {
            row(checks, check, Outcome::Pass, at.clone())
        }
        (Some(_), Some(at)) => row(checks, check, Outcome::Fail, at.clone()),
    }

    // 7. Presence-proven decisions and destination-bound keychain entries.
    row(
        checks,
        "decisions need presence",
        if group.is_some() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        if group.is_some() {
            "the broker requires the account passphrase for every approve/edit from the CLI and every dangerous one".to_string()
        } else {
            format!("{OFF}: no presence is asked (any same-uid program can take the app's role)")
        },
    );
    row(
        checks,
        "keychain entries bound to destinations",
        if group.is_some() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        if group.is_some() {
            "first use binds an entry to its destination (address, port, user and host key); another needs `gatehouse keychain bind` with the passphrase; the bindings are group-only".to_string()
        } else {
            format!(
                "{OFF}: bindings are enforced but kept in the user's own state directory, which any same-uid program can edit"
            )
        },
    );
    row(
        checks,
        "org policies kept by the broker",
        if group.is_some() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        if group.is_some() {
            "blocks, Autopilot and presence rules are in the group-only state; daemons read them from the broker; `gatehouse org policy set` needs the passphrase".to_string()
        } else {
            format!(
                "{OFF}: daemons read policies from the broker, which keeps them in the user's own state directory, which any same-uid program can edit"
            )
        },
    );

    // 8. Credentials revealed to the CLI or the app.
    row(
        checks,
        "reveals need presence",
        if group.is_some() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        if group.is_some() {
            "the broker requires the account passphrase before it reveals a credential to the CLI (`host show --reveal`, `field open`) or the app (its Reveal); every reveal is in the credential log".to_string()
        } else {
            format!("{OFF}: `host show --reveal` prints a password without asking")
        },
    );

    // 9. How the binaries were installed.
    deb_row(checks, group, install);
}

/// Which dpkg package owns `install`'s binaries, if any (from dpkg's own
/// file lists, readable by every user).
fn dpkg_owner(install: &Path) -> Option<String> {
    let cli = install.join("gatehouse");
    let cli = cli.to_str()?;
    let dir = std::fs::read_dir("/var/lib/dpkg/info").ok()?;
    dir.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let package = name.strip_suffix(".list")?;
        let list = std::fs::read_to_string(e.path()).ok()?;
        list.lines().any(|l| l == cli).then(|| package.to_string())
    })
}

fn deb_row(checks: &mut Vec<Check>, group: Option<u32>, install: &Path) {
    match (group, dpkg_owner(install)) {
        (Some(gid), Some(package)) => row(
            checks,
            "Debian package install",
            Outcome::Pass,
            format!(
                "{} belongs to the package {package}; its postinst made the binaries setgid to gid {gid}",
                install.display()
            ),
        ),
        (None, Some(package)) => row(
            checks,
            "Debian package install",
            Outcome::Fail,
            format!(
                "{} belongs to the package {package}, but the binaries are not setgid (reinstall it: its postinst sets the modes)",
                install.display()
            ),
        ),
        (_, None) => row(
            checks,
            "Debian package install",
            Outcome::Skip,
            format!(
                "{} is not from the Debian package (scripts/install or a development build)",
                install.display()
            ),
        ),
    }
}
