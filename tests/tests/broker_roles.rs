//! Who may talk to the broker, and what each role may do: every cell of the
//! role table against real peers identified by their executables; unknown
//! executables, copies at other paths, other uids and recycled pids refused.

use std::time::Duration;

use anyhow::Result;
use gatehouse_broker::roles::allowed;
use gatehouse_ipc::broker::{
    Action, ApprovalToken, BrokerRequest, Decision, FieldAddress, KeyScope, OpenItem, Operation,
    Requester, SealItem, SecretKind,
};
use gatehouse_ipc::{PeerRole, SecretBytes};
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::{TestUser, install_into};

fn sample(op: Operation) -> BrokerRequest {
    let addr = FieldAddress {
        scope: KeyScope::Private,
        record_kind: "host".into(),
        record_id: "h1".into(),
        field: "ssh.password".into(),
        binding: vec![],
    };
    let action = Action {
        host: "r1".into(),
        vendor: "ios".into(),
        org: "o".into(),
        credential: None,
        command: "show version".into(),
        expected_effect: String::new(),
    };
    let who = Requester {
        role: PeerRole::Cli,
        pid: 1,
        exe: "x".into(),
    };
    match op {
        Operation::Status => BrokerRequest::Status,
        Operation::AccountInit => BrokerRequest::AccountInit {
            passphrase: SecretBytes::copy_from(b"another-passphrase"),
        },
        Operation::SignIn => BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(b"wrong-passphrase"),
            remember_device: false,
        },
        // Signing out would change later cells; a sign-out is probed last (see below).
        Operation::SignOut => BrokerRequest::SignOut,
        Operation::OrgCreate => BrokerRequest::OrgCreate {
            name: format!("org-{}", std::process::id()),
        },
        Operation::OrgList => BrokerRequest::OrgList,
        Operation::KeychainSet => BrokerRequest::KeychainSet {
            name: "role-probe".into(),
            kind: SecretKind::Token,
            payload: SecretBytes::copy_from(b"role-probe-value"),
        },
        Operation::KeychainList => BrokerRequest::KeychainList,
        Operation::KeychainRemove => BrokerRequest::KeychainRemove {
            name: "no-such-entry".into(),
        },
        Operation::SealFields => BrokerRequest::SealFields {
            items: vec![SealItem {
                address: addr,
                plaintext: SecretBytes::copy_from(b"x"),
            }],
        },
        Operation::OpenFields => BrokerRequest::OpenFields {
            items: vec![OpenItem {
                address: addr,
                sealed: vec![1; 60],
            }],
        },
        Operation::RequestApproval => BrokerRequest::RequestApproval { action },
        Operation::ListApprovals => BrokerRequest::ListApprovals,
        Operation::ShowApproval => BrokerRequest::ShowApproval { id: 1 },
        Operation::ApprovalOutcome => BrokerRequest::ApprovalOutcome { id: 1 },
        Operation::DecideApproval => BrokerRequest::DecideApproval {
            id: 1,
            decision: Decision::Approve,
            presence: None,
        },
        Operation::ConsumeApproval => BrokerRequest::ConsumeApproval {
            token: Box::new(ApprovalToken {
                approval_id: 1,
                action: action.clone(),
                requester: who.clone(),
                approver: who,
                nonce: [0; 16],
                expires_ms: 0,
                signature: vec![0; 64],
            }),
            action,
        },
        Operation::CheckApproval => BrokerRequest::CheckApproval {
            token: Box::new(ApprovalToken {
                approval_id: 1,
                action: action.clone(),
                requester: who.clone(),
                approver: who,
                nonce: [0; 16],
                expires_ms: 0,
                signature: vec![0; 64],
            }),
            action,
        },
        Operation::Redact => BrokerRequest::Redact {
            text: "nothing secret".into(),
        },
        Operation::Subscribe => BrokerRequest::Subscribe,
        Operation::MacRecords => BrokerRequest::MacRecords {
            items: vec![mac_item()],
        },
        Operation::VerifyRecords => BrokerRequest::VerifyRecords {
            items: vec![gatehouse_ipc::broker::VerifyItem {
                item: mac_item(),
                mac: vec![0; 32],
            }],
        },
        Operation::ReleasePassword => BrokerRequest::ReleasePassword {
            host: Box::new(host_credential(addr)),
        },
        Operation::SshPublicKey => BrokerRequest::SshPublicKey {
            host: Box::new(host_credential(addr)),
        },
        Operation::SshSign => BrokerRequest::SshSign {
            host: Box::new(host_credential(addr)),
            to_sign: b"not an auth request".to_vec(),
        },
        Operation::RecordingKey => BrokerRequest::RecordingKey {
            recording_id: "0123abcd".into(),
        },
        Operation::ReleaseProviderKey => BrokerRequest::ReleaseProviderKey {
            name: "provider-key".into(),
            endpoint: "https://api.example.invalid/v1".into(),
        },
        Operation::GrantAutopilot => BrokerRequest::GrantAutopilot {
            bound: gatehouse_ipc::broker::AutopilotBound {
                org: "acme".into(),
                hosts: vec!["edge1".into()],
                max_steps: 1,
                seconds: 60,
            },
        },
        Operation::EndAutopilot => BrokerRequest::EndAutopilot { grant: 1 },
        Operation::WithdrawApproval => BrokerRequest::WithdrawApproval {
            id: 1,
            reason: "left".into(),
        },
        Operation::RequestAutoApproval => BrokerRequest::RequestAutoApproval { action, grant: 1 },
        Operation::OpenNote => BrokerRequest::OpenNote {
            record: Box::new(gatehouse_ipc::broker::VerifyItem {
                item: mac_item(),
                mac: vec![0; 32],
            }),
            field: addr,
        },
        Operation::MacApprovedRecord => {
            BrokerRequest::MacApprovedRecord(Box::new(gatehouse_ipc::broker::ApprovedRecord {
                token: ApprovalToken {
                    approval_id: 1,
                    action: action.clone(),
                    requester: who.clone(),
                    approver: who,
                    nonce: [0; 16],
                    expires_ms: 0,
                    signature: vec![0; 64],
                },
                item: mac_item(),
                current: None,
                hosts: Vec::new(),
            }))
        }
        Operation::ReleaseServiceAuth => BrokerRequest::ReleaseServiceAuth {
            service: Box::new(gatehouse_ipc::broker::ServiceAuth {
                record: gatehouse_ipc::broker::VerifyItem {
                    item: mac_item(),
                    mac: vec![0; 32],
                },
                field: FieldAddress {
                    record_kind: "connector".into(),
                    field: "auth".into(),
                    ..addr
                },
                destination: "https://api.example.invalid/v1".into(),
            }),
        },
        Operation::KeychainBind => BrokerRequest::KeychainBind {
            name: "no-such-entry".into(),
            destination: gatehouse_ipc::broker::Destination {
                address: "192.0.2.1".into(),
                port: 22,
                username: "admin".into(),
                host_key: None,
            },
            presence: SecretBytes::copy_from(b"wrong-passphrase"),
        },
        Operation::RevealFields => BrokerRequest::RevealFields {
            items: vec![OpenItem {
                address: addr,
                sealed: vec![1; 60],
            }],
            presence: None,
        },
        Operation::ShellTicket => BrokerRequest::ShellTicket {
            scope: KeyScope::Private,
            record_id: "no-such-host".into(),
            presence: None,
        },
        Operation::AccountSecretKey => BrokerRequest::AccountSecretKey {
            presence: SecretBytes::copy_from(b"wrong-passphrase"),
        },
        Operation::OrgPolicyGet => BrokerRequest::OrgPolicyGet { org: "o".into() },
        Operation::OrgPolicySet => BrokerRequest::OrgPolicySet {
            org: "o".into(),
            policy: "{}".into(),
            presence: SecretBytes::copy_from(b"wrong-passphrase"),
        },
        Operation::SyncCard => BrokerRequest::SyncCard {
            account: "role-probe".into(),
        },
        Operation::SyncSignChallenge => BrokerRequest::SyncSignChallenge {
            challenge: b"not a challenge".to_vec(),
        },
        Operation::SyncSignWrite => BrokerRequest::SyncSignWrite {
            record: Box::new(gatehouse_ipc::broker::VerifyItem {
                item: mac_item(),
                mac: vec![0; 32],
            }),
            write: b"not a write".to_vec(),
        },
        Operation::SyncKeyBundle => BrokerRequest::SyncKeyBundle {
            presence: SecretBytes::copy_from(b"wrong-passphrase"),
        },
        Operation::BundleVerifier => BrokerRequest::BundleVerifier {
            account: "role-probe".into(),
            kdf: probe_kdf(),
            passphrase: SecretBytes::copy_from(b"wrong-passphrase"),
            secret_key: SecretBytes::copy_from(b"not a secret key"),
        },
        Operation::AccountFromBundle => BrokerRequest::AccountFromBundle {
            account: "role-probe".into(),
            kdf: probe_kdf(),
            passphrase: SecretBytes::copy_from(b"wrong-passphrase"),
            secret_key: SecretBytes::copy_from(b"not a secret key"),
            bundle: vec![0; 64],
        },
    }
}

fn host_credential(field: FieldAddress) -> gatehouse_ipc::broker::HostCredential {
    gatehouse_ipc::broker::HostCredential {
        record: gatehouse_ipc::broker::VerifyItem {
            item: mac_item(),
            mac: vec![0; 32],
        },
        field,
        destination: gatehouse_ipc::broker::Destination {
            address: "127.0.0.1".into(),
            port: 22,
            username: "admin".into(),
            host_key: None,
        },
        shell: None,
    }
}

fn probe_kdf() -> gatehouse_ipc::broker::BundleKdf {
    gatehouse_ipc::broker::BundleKdf {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
        salt: vec![1; 16],
    }
}

fn mac_item() -> gatehouse_ipc::broker::MacItem {
    gatehouse_ipc::broker::MacItem {
        scope: KeyScope::Private,
        record_kind: "host".into(),
        record_id: "h1".into(),
        content: b"fields".to_vec(),
    }
}

fn is_forbidden(v: &serde_json::Value, role: PeerRole, op: Operation) -> bool {
    let Some(f) = v.get("err").and_then(|e| e.get("Forbidden")) else {
        return false;
    };
    f["role"] == serde_json::to_value(role).unwrap()
        && f["operation"] == serde_json::to_value(op).unwrap()
}

#[test]
fn every_cell_of_the_role_table() -> Result<()> {
    let f = BrokerFixture::start(Options {
        peer_as_cli: true,
        ..Options::default()
    })?;
    let mut setup = f.peer(PeerRole::Cli)?;
    setup.ok(&BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(b"role-table-passphrase"),
    })?;
    let mut checked = 0;
    for role in PeerRole::ALL {
        let mut p = f.peer(role)?;
        assert_eq!(
            p.role().as_deref(),
            Some(role.as_str()),
            "handshake role for {role}: {}",
            p.hello
        );
        for op in Operation::ALL
            .into_iter()
            .filter(|o| *o != Operation::SignOut)
        {
            let reply = p.call(&sample(op))?;
            assert!(reply.get("transport").is_none(), "{role} {op}: {reply}");
            let forbidden = is_forbidden(&reply, role, op);
            assert_eq!(
                forbidden,
                !allowed(role, op),
                "{role} {op}: expected {}, got {reply}",
                if allowed(role, op) {
                    "allowed"
                } else {
                    "Forbidden"
                }
            );
            checked += 1;
        }
    }
    // Sign-out last, per role: refused roles leave the account signed in.
    for role in [
        PeerRole::Sessiond,
        PeerRole::Copilotd,
        PeerRole::Syncd,
        PeerRole::Ui,
        PeerRole::Cli,
    ] {
        let mut p = f.peer(role)?;
        let reply = p.call(&BrokerRequest::SignOut)?;
        assert_eq!(
            is_forbidden(&reply, role, Operation::SignOut),
            !allowed(role, Operation::SignOut),
            "{role} SignOut: {reply}"
        );
        checked += 1;
    }
    assert_eq!(checked, PeerRole::ALL.len() * Operation::ALL.len());
    Ok(())
}

/// The design, independent of the table: approving is a person's act, and
/// only the executor consumes; daemons never open arbitrary fields or manage the account.
#[test]
fn table_matches_the_design() {
    for daemon in [PeerRole::Sessiond, PeerRole::Copilotd, PeerRole::Syncd] {
        for op in [
            Operation::DecideApproval,
            Operation::SignIn,
            Operation::AccountInit,
            Operation::KeychainSet,
            Operation::OpenFields,
            Operation::ListApprovals,
            Operation::MacRecords,
        ] {
            assert!(!allowed(daemon, op), "{daemon} may {op}");
        }
    }
    for person in [PeerRole::Cli, PeerRole::Ui] {
        assert!(allowed(person, Operation::DecideApproval));
        assert!(!allowed(person, Operation::ConsumeApproval));
        // Only a person starts an Autopilot task; only copilotd works in one.
        assert!(allowed(person, Operation::GrantAutopilot));
        assert!(!allowed(person, Operation::RequestAutoApproval));
    }
    for daemon in [PeerRole::Sessiond, PeerRole::Copilotd, PeerRole::Syncd] {
        assert!(!allowed(daemon, Operation::GrantAutopilot), "{daemon}");
    }
    // Ending only takes authority away: copilotd ends its task when its
    // person's chat client goes away; sessiond never touches tasks.
    assert!(allowed(PeerRole::Copilotd, Operation::EndAutopilot));
    assert!(!allowed(PeerRole::Sessiond, Operation::EndAutopilot));
    assert!(allowed(PeerRole::Copilotd, Operation::RequestAutoApproval));
    assert!(!allowed(PeerRole::Sessiond, Operation::RequestAutoApproval));
    assert!(allowed(PeerRole::Sessiond, Operation::ConsumeApproval));
    // copilotd spends only its own tokens for its own API calls (checked per
    // token: broker_approvals.rs).
    assert!(allowed(PeerRole::Copilotd, Operation::ConsumeApproval));
    // Note bodies and approved record writes are copilotd's narrow
    // operations (people have OpenFields and MacRecords).
    for op in [Operation::OpenNote, Operation::MacApprovedRecord] {
        for role in PeerRole::ALL {
            assert_eq!(allowed(role, op), role == PeerRole::Copilotd, "{role} {op}");
        }
    }
}

#[test]
fn unknown_executables_and_copies_elsewhere_are_refused() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    // The same bytes as an installed role binary, at another path.
    let elsewhere = f.scratch.trusted_dir("elsewhere")?;
    let copy = install_into(
        &elsewhere,
        &f.install_dir().join("gatehouse-sessiond"),
        "gatehouse-sessiond",
    )?;
    let p = f.peer_at(&copy)?;
    let refusal = p.hello["transport"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        refusal.contains("not an installed Gatehouse binary"),
        "copy elsewhere: {}",
        p.hello
    );
    // A binary with an unknown name inside the install dir.
    let odd = install_into(
        f.install_dir(),
        &f.install_dir().join("gatehouse-sessiond"),
        "gatehouse-other",
    )?;
    let p = f.peer_at(&odd)?;
    assert!(
        p.hello["transport"]
            .as_str()
            .unwrap_or_default()
            .contains("not an installed"),
        "{}",
        p.hello
    );
    // And a real peer still works afterwards.
    let mut ok = f.peer(PeerRole::Ui)?;
    assert_eq!(ok.role().as_deref(), Some("ui"));
    ok.ok(&BrokerRequest::Status)?;
    Ok(())
}

#[test]
fn a_replaced_binary_is_refused() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    // Start a peer from a file that is then replaced at the installed path:
    // the running process's executable is no longer the installed binary.
    let staging = f.scratch.trusted_dir("staging")?;
    let old = install_into(
        &staging,
        &f.install_dir().join("gatehouse-copilotd"),
        "gatehouse-copilotd",
    )?;
    let tmp = f.install_dir().join("gatehouse-copilotd.new");
    std::fs::copy(&old, &tmp)?;
    let mut first = f.peer(PeerRole::Copilotd)?; // runs the current inode
    assert_eq!(first.role().as_deref(), Some("copilotd"));
    std::fs::rename(&tmp, f.install_dir().join("gatehouse-copilotd"))?; // new inode at the installed path
    drop(first.ok(&BrokerRequest::Status)); // the established connection keeps its identity
    // A process still running the old (now unlinked) file connects afresh.
    let peer_exe = format!("/proc/{}/exe", first.pid());
    let p = f.peer_at(std::path::Path::new(&peer_exe))?;
    assert!(
        p.hello.get("transport").is_some(),
        "replaced binary accepted: {}",
        p.hello
    );
    Ok(())
}

#[test]
fn another_uid_is_refused_even_with_an_open_socket() -> Result<()> {
    let Some(other) = TestUser::other_or_skip("another_uid_is_refused_even_with_an_open_socket")
    else {
        return Ok(());
    };
    let f = BrokerFixture::start(Options::default())?;
    // Open every door: traversable directories and a world-writable socket.
    use std::os::unix::fs::PermissionsExt;
    let mut p = f.socket();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666))?;
    while let Some(parent) = p.parent().map(std::path::Path::to_path_buf) {
        if parent == std::path::Path::new("/") {
            break;
        }
        let mode = std::fs::metadata(&parent)?.permissions().mode();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(mode | 0o711))?;
        p = parent;
    }
    let peer = f.install_dir().join("gatehouse-sessiond");
    let out = std::process::Command::new(&peer)
        .arg("call")
        .arg(f.runtime())
        .uid(other.uid)
        .gid(other.gid)
        .stdin(std::process::Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("is not this user's uid"),
        "other uid got: {text}"
    );
    Ok(())
}

use std::os::unix::process::CommandExt;

#[test]
fn a_dead_or_recycled_pid_does_not_pass() -> Result<()> {
    // A peer connects, then its process dies before identification; its pid
    // may be reused by any process, even an installed Gatehouse binary. The
    // kernel's pidfd for the connection says the process is gone, so
    // identification refuses instead of trusting whatever /proc/PID shows now.
    let dir = tempfile::tempdir()?;
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("broker.sock"))?;
    let peer = gatehouse_tests::find_binary("gatehouse-test-peer")?;
    let install = gatehouse_ipc::peer::Installation {
        dir: peer.parent().unwrap().to_path_buf(),
        uid: nix::unistd::geteuid().as_raw(),
        group: None,
    };
    let mut child = std::process::Command::new(&peer)
        .arg("call")
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let (conn, _) = listener.accept()?;
    // Alive: identification reaches the executable check (the test peer is no role binary).
    let live =
        gatehouse_ipc::peer::identify(conn.as_fd(), &install, &gatehouse_ipc::peer::ProcResolver);
    assert!(
        matches!(
            live,
            Err(gatehouse_ipc::peer::PeerRefusal::NotInstalled { .. })
        ),
        "{live:?}"
    );
    child.kill()?;
    child.wait()?;
    let dead =
        gatehouse_ipc::peer::identify(conn.as_fd(), &install, &gatehouse_ipc::peer::ProcResolver);
    assert!(
        matches!(
            dead,
            Err(gatehouse_ipc::peer::PeerRefusal::PidRecycled { .. })
        ),
        "{dead:?}"
    );
    Ok(())
}

#[test]
fn clients_killed_mid_handshake_do_not_disturb_the_broker() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    for _ in 0..20 {
        let mut c = f.command(&f.install_dir().join("gatehouse-ui"));
        c.arg("call")
            .arg(f.runtime())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        let mut child = c.spawn()?;
        std::thread::sleep(Duration::from_millis(2));
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut ok = f.peer(PeerRole::Ui)?;
    ok.ok(&BrokerRequest::Status)?;
    Ok(())
}

use std::os::fd::AsFd;

#[test]
fn a_connection_handed_to_another_process_is_refused() -> Result<()> {
    // An installed binary connects (and is identified), then another process
    // writes on that connection: the kernel's per-write credentials show a
    // different writer, so the broker refuses. Control: the identified
    // process itself writing is welcomed.
    let f = BrokerFixture::start(Options::default())?;
    let run = |extra: &[&str]| -> Result<String> {
        let out = f
            .command(&f.install_dir().join("gatehouse-ui"))
            .arg("handoff")
            .arg(f.runtime())
            .args(extra)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let control = run(&["self"])?;
    assert!(
        control.starts_with("Welcome"),
        "the identified process was not welcomed: {control}"
    );
    let handed = run(&[])?;
    assert!(
        !handed.starts_with("Welcome"),
        "another process writing on the connection was welcomed: {handed}"
    );
    assert!(handed.contains("written by pid"), "{handed}");
    Ok(())
}
