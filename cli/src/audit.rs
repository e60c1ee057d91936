//! `gatehouse audit isolation`: a self-check of key isolation a security
//! team can run against a live installation.
//!
//! It loads canary secrets through the real paths (keychain, field seal and
//! open), then checks from outside the broker: other Gatehouse processes'
//! memory holds none of them; same-uid ptrace and `/proc/PID/mem` of the
//! broker are refused; the broker's hardening is in force; and (as root)
//! the broker's readable memory holds no canary. Must never: leave its
//! canaries behind (it removes them), or report pass for a check it could
//! not perform (that is `skip`, with the reason).

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gatehouse_ipc::broker::{
    BrokerRequest, BrokerResponse, FieldAddress, KeyScope, OpenItem, SealItem, SecretKind,
};
use gatehouse_ipc::{Layout, SecretBytes};
use gatehouse_sandbox::memscan::scan_process;
use gatehouse_sandbox::status::{Check, Outcome};
use serde::Serialize;

use crate::commands::BrokerConn;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Prove keys and secrets stay inside the broker (pass/fail table).
    Isolation {
        #[arg(long)]
        json: bool,
        /// Finish by signing out and (as root) scanning the broker for the
        /// canaries once more: nothing it handled may remain.
        #[arg(long)]
        then_sign_out: bool,
    },
    /// The session audit log: every command sessiond ran or refused — who
    /// asked, who approved, class, host, time, outcome. Command texts are
    /// sealed; they are shown when you are signed in.
    Log {
        #[arg(long)]
        json: bool,
        /// Only rows for this host name.
        #[arg(long)]
        host: Option<String>,
        /// Only the last N rows.
        #[arg(long)]
        last: Option<usize>,
        /// The broker's credential log instead: every password, token or
        /// key it released or used for a daemon (and every refusal), with
        /// the daemon, the sealed field and the destination.
        #[arg(long)]
        credentials: bool,
    },
}

fn check(checks: &mut Vec<Check>, name: &str, outcome: Outcome, detail: impl Into<String>) {
    checks.push(Check {
        check: name.into(),
        outcome,
        detail: detail.into(),
    });
}

/// Gatehouse processes (binaries in the installation directory) other than `exclude`.
fn gatehouse_processes(install_dir: &std::path::Path, exclude: &[i32]) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            continue;
        };
        let name = exe
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if exe.parent() == Some(install_dir) && name.starts_with("gatehouse") {
            // A daemon's peer-executable helper is the same binary with --exe-resolver.
            let helper = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == b"--exe-resolver"))
                .unwrap_or(false);
            let label = if helper {
                format!("{name} exe helper")
            } else {
                name
            };
            out.push((pid, label));
        }
    }
    out
}

pub fn run(profile: Option<&str>, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    let (json, then_sign_out) = match cmd {
        AuditCmd::Isolation {
            json,
            then_sign_out,
        } => (json, then_sign_out),
        AuditCmd::Log {
            json,
            host,
            last,
            credentials: true,
        } => {
            return credential_log(profile, json, host.as_deref(), last);
        }
        AuditCmd::Log {
            json, host, last, ..
        } => {
            return audit_log(profile, json, host.as_deref(), last);
        }
    };
    let layout = Layout::resolve(profile)?;
    let checks = isolation(&layout, then_sign_out)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        println!("{:<52} {:<6} DETAIL", "CHECK", "RESULT");
        for c in &checks {
            let r = match c.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            println!("{:<52} {:<6} {}", c.check, r, c.detail);
        }
    }
    let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The hardening rows of one daemon: as it reports itself, and (for
/// no_new_privs and seccomp) as the kernel shows it in /proc.
fn hardening_checks(
    checks: &mut Vec<Check>,
    name: &str,
    pid: i32,
    h: &gatehouse_ipc::broker::Hardening,
) {
    let k = gatehouse_sandbox::hardening::inspect_pid(pid).ok();
    let nnp = k
        .as_ref()
        .and_then(|k| k.no_new_privs)
        .unwrap_or(h.no_new_privs);
    let seccomp_filter = matches!(
        k.as_ref().and_then(|k| k.seccomp),
        Some(gatehouse_sandbox::hardening::SeccompMode::Filter)
    );
    let pass = |ok: bool| if ok { Outcome::Pass } else { Outcome::Fail };
    check(
        checks,
        &format!("{name} not dumpable"),
        pass(!h.dumpable),
        format!("PR_GET_DUMPABLE={}", h.dumpable as u8),
    );
    check(
        checks,
        &format!("{name} no_new_privs"),
        pass(nnp),
        format!("NoNewPrivs: {}", nnp as u8),
    );
    check(
        checks,
        &format!("{name} seccomp filter"),
        pass(seccomp_filter),
        format!("Seccomp: {}", h.seccomp_mode),
    );
    check(
        checks,
        &format!("{name} landlock"),
        pass(h.landlock.starts_with("applied")),
        h.landlock.clone(),
    );
    check(
        checks,
        &format!("{name} core dumps off"),
        pass(h.core_limit == 0),
        format!("RLIMIT_CORE={}", h.core_limit),
    );
}

pub fn isolation(layout: &Layout, then_sign_out: bool) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut b = BrokerConn::connect_layout(layout)?;
    let status = match b.ask(BrokerRequest::Status)? {
        BrokerResponse::Status(s) => *s,
        r => anyhow::bail!("unexpected reply {r:?}"),
    };
    let broker_pid = status.pid as i32;
    let root = nix::unistd::geteuid().is_root();

    // Hardening as each daemon and the kernel report it.
    hardening_checks(&mut checks, "broker", broker_pid, &status.hardening);
    match crate::session_cmds::SessiondConn::connect(layout)
        .and_then(|mut c| Ok(c.call(gatehouse_ipc::sessiond::SessiondRequest::Status)?))
    {
        Ok(gatehouse_ipc::sessiond::SessiondResponse::Status(s)) => {
            hardening_checks(&mut checks, "sessiond", s.pid as i32, &s.hardening)
        }
        _ => check(
            &mut checks,
            "sessiond hardening",
            Outcome::Skip,
            "sessiond is not running",
        ),
    }
    match crate::supervisor::copilotd_status(layout) {
        Some(s) => hardening_checks(&mut checks, "copilotd", s.pid as i32, &s.hardening),
        None => check(
            &mut checks,
            "copilotd hardening",
            Outcome::Skip,
            "copilotd is not running",
        ),
    }
    // syncd runs only once a sync server is configured.
    let syncd = crate::sync_cmds::syncd_status(layout);
    match &syncd {
        Some(s) => hardening_checks(&mut checks, "syncd", s.pid as i32, &s.hardening),
        None => check(
            &mut checks,
            "syncd hardening",
            Outcome::Skip,
            if gatehouse_ipc::sync_state::server_path(&layout.root).exists() {
                "syncd is not running"
            } else {
                "syncd is not running (no sync server configured)"
            },
        ),
    }
    // The privilege boundary, point by point.
    let mut daemons = vec![("broker", broker_pid)];
    if let Ok(gatehouse_ipc::sessiond::SessiondResponse::Status(s)) =
        crate::session_cmds::SessiondConn::connect(layout)
            .and_then(|mut c| Ok(c.call(gatehouse_ipc::sessiond::SessiondRequest::Status)?))
    {
        daemons.push(("sessiond", s.pid as i32));
    }
    if let Some(s) = crate::supervisor::copilotd_status(layout) {
        daemons.push(("copilotd", s.pid as i32));
    }
    if let Some(s) = &syncd {
        daemons.push(("syncd", s.pid as i32));
    }
    crate::boundary_audit::checks(&mut checks, &status, &daemons);
    let h = &status.hardening;
    check(
        &mut checks,
        "keys in secret memory",
        if h.secret_memory == "memfd_secret" {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        h.secret_memory.clone(),
    );

    // Same-uid access to the broker.
    let pid = nix::unistd::Pid::from_raw(broker_pid);
    if root {
        check(
            &mut checks,
            "ptrace of broker refused",
            Outcome::Skip,
            "running as root: root with ptrace is outside the threat model",
        );
        check(
            &mut checks,
            "/proc/<broker>/mem refused",
            Outcome::Skip,
            "running as root (see the root scan below)",
        );
    } else {
        match nix::sys::ptrace::attach(pid) {
            Ok(()) => {
                let _ = nix::sys::ptrace::detach(pid, None);
                check(
                    &mut checks,
                    "ptrace of broker refused",
                    Outcome::Fail,
                    "PTRACE_ATTACH succeeded",
                );
            }
            Err(e) => check(
                &mut checks,
                "ptrace of broker refused",
                Outcome::Pass,
                format!("PTRACE_ATTACH: {e}"),
            ),
        }
        match std::fs::File::open(format!("/proc/{broker_pid}/mem")) {
            Ok(_) => check(
                &mut checks,
                "/proc/<broker>/mem refused",
                Outcome::Fail,
                "opened",
            ),
            Err(e) => check(
                &mut checks,
                "/proc/<broker>/mem refused",
                Outcome::Pass,
                e.to_string(),
            ),
        }
    }

    if !status.signed_in {
        check(
            &mut checks,
            "canary secrets",
            Outcome::Skip,
            "signed out: sign in to load canaries through the broker",
        );
        return Ok(checks);
    }

    // Canaries through the real paths.
    let tag = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<8>());
    let payload = format!(
        "GHCANARY-KC-{}",
        gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<12>())
    );
    let field_plain = format!(
        "GHCANARY-FLD-{}",
        gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<12>())
    );
    let kc_name = format!("audit-canary-{tag}");
    b.ask(BrokerRequest::KeychainSet {
        name: kc_name.clone(),
        kind: SecretKind::Password,
        payload: SecretBytes::copy_from(payload.as_bytes()),
    })
    .context("storing the keychain canary")?;
    // A credential field, so the broker also keeps it for redaction (and
    // must purge that copy at sign-out).
    let address = FieldAddress {
        scope: KeyScope::Private,
        record_kind: "host".into(),
        record_id: format!("audit-canary-{tag}"),
        field: "ssh.password".into(),
        binding: Vec::new(),
    };
    let sealed = match b.ask(BrokerRequest::SealFields {
        items: vec![SealItem {
            address: address.clone(),
            plaintext: SecretBytes::copy_from(field_plain.as_bytes()),
        }],
    })? {
        BrokerResponse::Sealed(mut s) if s.len() == 1 => s.remove(0).0,
        r => anyhow::bail!("unexpected reply {r:?}"),
    };
    let opened = b.ask(BrokerRequest::OpenFields {
        items: vec![OpenItem { address, sealed }],
    })?;
    let roundtrip = matches!(&opened, BrokerResponse::Opened(p) if p.len() == 1 && p[0].expose() == field_plain.as_bytes());
    drop(opened);
    check(
        &mut checks,
        "seal/open round trip",
        if roundtrip {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        "canary field sealed and opened by the broker",
    );

    let needles: [&[u8]; 2] = [payload.as_bytes(), field_plain.as_bytes()];
    let install_dir = std::path::PathBuf::from(&status.install_dir);
    let me = std::process::id() as i32;
    let others = gatehouse_processes(&install_dir, &[me, broker_pid]);
    if others.is_empty() {
        check(
            &mut checks,
            "other Gatehouse processes hold no canary",
            Outcome::Skip,
            "no other Gatehouse process besides this audit and the broker",
        );
    }
    for (pid, name) in others {
        match scan_process(pid as u32, &needles) {
            Ok(r) if r.hits.is_empty() => check(
                &mut checks,
                &format!("{name} ({pid}) holds no canary"),
                Outcome::Pass,
                format!("{} bytes scanned", r.bytes_scanned),
            ),
            Ok(r) => check(
                &mut checks,
                &format!("{name} ({pid}) holds no canary"),
                Outcome::Fail,
                format!("{} hit(s)", r.hits.len()),
            ),
            Err(e) => check(
                &mut checks,
                &format!("{name} ({pid}) holds no canary"),
                Outcome::Skip,
                format!("unreadable: {e}"),
            ),
        }
    }
    if root {
        match scan_process(broker_pid as u32, &needles) {
            Ok(r) => check(
                &mut checks,
                "root scan of broker finds no canary",
                if r.hits.is_empty() {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                format!(
                    "{} bytes scanned, {} hit(s); {} bytes unreadable even to root (memfd_secret)",
                    r.bytes_scanned,
                    r.hits.len(),
                    r.bytes_unreadable
                ),
            ),
            Err(e) => check(
                &mut checks,
                "root scan of broker finds no canary",
                Outcome::Fail,
                e.to_string(),
            ),
        }
    } else {
        check(
            &mut checks,
            "root scan of broker finds no canary",
            Outcome::Skip,
            "needs root (the broker's memory is closed to this uid)",
        );
    }
    b.ask(BrokerRequest::KeychainRemove { name: kc_name })
        .context("removing the keychain canary")?;
    if then_sign_out {
        sign_out_and_rescan(&mut b, &mut checks, root, broker_pid, &needles)?;
    }
    Ok(checks)
}

/// Signs out, checks key operations are refused, and (as root) scans the
/// broker once more for the canaries it handled.
fn sign_out_and_rescan(
    b: &mut BrokerConn,
    checks: &mut Vec<Check>,
    root: bool,
    broker_pid: i32,
    needles: &[&[u8]],
) -> anyhow::Result<()> {
    let purge = match b.ask(BrokerRequest::SignOut)? {
        BrokerResponse::SignedOut(r) => r,
        r => anyhow::bail!("unexpected reply {r:?}"),
    };
    check(
        checks,
        "sign-out purged keys and cached secrets",
        if purge.keys_zeroized > 0 {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        format!(
            "{} keys, {} cached secrets in {} µs",
            purge.keys_zeroized, purge.cached_secrets_zeroized, purge.micros
        ),
    );
    let locked = matches!(
        b.call(BrokerRequest::OrgList),
        Err(gatehouse_ipc::client::CallError::Remote(
            gatehouse_ipc::broker::BrokerError::SignedOut
        ))
    );
    check(
        checks,
        "key operations refused after sign-out",
        if locked { Outcome::Pass } else { Outcome::Fail },
        "OrgList → signed out",
    );
    if !root {
        check(
            checks,
            "root scan of broker after sign-out",
            Outcome::Skip,
            "needs root",
        );
        return Ok(());
    }
    match scan_process(broker_pid as u32, needles) {
        Ok(r) => check(
            checks,
            "root scan of broker after sign-out",
            if r.hits.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            format!("{} bytes scanned, {} hit(s)", r.bytes_scanned, r.hits.len()),
        ),
        Err(e) => check(
            checks,
            "root scan of broker after sign-out",
            Outcome::Fail,
            e.to_string(),
        ),
    }
    Ok(())
}

/// One audit row as printed: the stored row and its opened command.
#[derive(Debug, Serialize)]
struct LogRow {
    #[serde(flatten)]
    row: gatehouse_ipc::audit::sessions::AuditRow,
    /// The command text (None when signed out or if it does not open).
    command: Option<String>,
    /// The organization's name (the row holds its id), when the broker knows it.
    org_name: Option<String>,
}

/// What the COMMAND column shows when the text is not opened: `(sealed)`
/// when there is a sealed text (sign in to see it), or what the row holds
/// when the command was not kept (written while signed out: sealing needs
/// the broker signed in, and the text is never written in plaintext).
fn command_cell(r: &LogRow) -> &str {
    match (&r.command, r.row.command_sealed.is_empty()) {
        (Some(c), _) => c,
        (None, true) => "(not kept: written while signed out)",
        (None, false) => "(sealed: sign in to see it)",
    }
}

fn audit_log(
    profile: Option<&str>,
    json: bool,
    host: Option<&str>,
    last: Option<usize>,
) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    use gatehouse_ipc::audit::sessions as audit;
    use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, OpenItem};
    let layout = Layout::resolve(profile)?;
    let (mut rows, bad) = audit::read(&layout.root)?;
    for b in &bad {
        eprintln!("warning: audit log {b}");
    }
    rows.retain(|r| host.is_none_or(|h| r.host == h));
    if let Some(n) = last {
        let skip = rows.len().saturating_sub(n);
        rows.drain(..skip);
    }
    // Open the command texts in one batch (only possible while signed in).
    let items: Vec<OpenItem> = rows
        .iter()
        .map(|r| OpenItem {
            address: audit::command_address(&r.id),
            sealed: base64::engine::general_purpose::STANDARD
                .decode(&r.command_sealed)
                .unwrap_or_default(),
        })
        .collect();
    let mut commands: Vec<Option<String>> = vec![None; rows.len()];
    let mut orgs = Vec::new();
    if let Ok(mut b) = crate::commands::BrokerConn::connect_layout(&layout) {
        orgs = crate::commands::org_list(&mut b).unwrap_or_default();
        // One at a time so one damaged row does not hide the others.
        for (i, item) in items.into_iter().enumerate() {
            if let Ok(BrokerResponse::Opened(mut v)) =
                b.call(BrokerRequest::OpenFields { items: vec![item] })
                && let Some(p) = v.pop()
            {
                commands[i] = Some(String::from_utf8_lossy(p.expose()).into_owned());
            }
        }
    }
    let out: Vec<LogRow> = rows
        .into_iter()
        .zip(commands)
        .map(|(row, command)| LogRow {
            org_name: orgs
                .iter()
                .find(|o| o.id == row.org)
                .map(|o| o.name.clone()),
            row,
            command,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<5} {:<12} {:<12} {:<10} {:<16} {:<26} {:<18} COMMAND",
        "TIME (UTC)", "KIND", "HOST", "ORG", "CLASS", "ASKED BY", "OUTCOME", "APPROVED BY"
    );
    for r in &out {
        let who = |q: &gatehouse_ipc::broker::Requester| format!("{} pid {}", q.role, q.pid);
        let outcome = r.row.outcome.describe();
        let org = match (&r.org_name, r.row.org.as_str()) {
            (Some(n), _) => n.clone(),
            (None, "") => "private".into(),
            (None, id) => id.to_string(),
        };
        println!(
            "{:<20} {:<5} {:<12} {:<12} {:<10} {:<16} {:<26} {:<18} {}",
            gatehouse_ipc::display::utc(r.row.time_ms),
            r.row.kind,
            r.row.host,
            truncate(&org, 12),
            r.row.class,
            who(&r.row.requester),
            truncate(&outcome, 26),
            r.row
                .approver
                .as_ref()
                .map(who)
                .unwrap_or_else(|| "-".into()),
            command_cell(r)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn credential_log(
    profile: Option<&str>,
    json: bool,
    host: Option<&str>,
    last: Option<usize>,
) -> anyhow::Result<ExitCode> {
    use gatehouse_ipc::audit::{self, CredentialRow};
    let layout = Layout::resolve(profile)?;
    let (mut rows, bad): (Vec<CredentialRow>, _) =
        audit::read(&audit::credentials_log(&layout.root))?;
    for b in &bad {
        eprintln!("warning: credential log {b}");
    }
    // `--host` matches the destination's address (user@ADDRESS:port).
    rows.retain(|r| {
        host.is_none_or(|h| {
            r.destination
                .rsplit_once('@')
                .map(|(_, a)| a)
                .unwrap_or(&r.destination)
                .starts_with(h)
        })
    });
    if let Some(n) = last {
        let skip = rows.len().saturating_sub(n);
        rows.drain(..skip);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<18} {:<18} {:<28} CREDENTIAL",
        "TIME (UTC)", "OPERATION", "FOR", "DESTINATION"
    );
    for r in &rows {
        let outcome = match &r.refused {
            None => String::new(),
            Some(why) => format!("  REFUSED: {why}"),
        };
        println!(
            "{:<20} {:<18} {:<18} {:<28} {}{outcome}",
            gatehouse_ipc::display::utc(r.time_ms),
            r.operation.to_string(),
            format!("{} pid {}", r.requester.role, r.requester.pid),
            truncate(&r.destination, 28),
            r.credential,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}
