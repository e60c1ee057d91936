//! Approvals through a real broker, attacked from outside: who may decide,
//! who collects the token, what the token covers, altered and expired
//! tokens, edits, rejections, and single use across a restart.

use std::time::Duration;

use anyhow::{Result, bail};
use gatehouse_broker::service::classify_action;
use gatehouse_ipc::broker::{
    Action, ActionField, ApprovalError, ApprovalOutcome, ApprovalState, ApprovalToken,
    ApprovalView, BrokerError, BrokerRequest, BrokerResponse, Decision, Operation,
};
use gatehouse_ipc::{PeerRole, SecretBytes};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer};

const PASSPHRASE: &[u8] = b"approvals-test-passphrase";

fn ok(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerResponse> {
    Ok(serde_json::from_value(p.ok(req)?)?)
}

fn err(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerError> {
    Ok(serde_json::from_value(p.err(req)?)?)
}

/// Sets org `org`'s policy as a person does (the passphrase as presence).
fn set_policy(cli: &mut Peer, org: &str, json: &str) -> Result<()> {
    ok(
        cli,
        &BrokerRequest::OrgPolicySet {
            org: org.into(),
            policy: json.into(),
            presence: SecretBytes::copy_from(PASSPHRASE),
        },
    )
    .map(drop)
}

/// A signed-in broker whose `gatehouse` binary is the test peer (cli role).
fn start(broker_args: &[&str]) -> Result<BrokerFixture> {
    let f = BrokerFixture::start(Options {
        peer_as_cli: true,
        broker_args: broker_args.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    })?;
    let mut ui = f.peer(PeerRole::Ui)?;
    ok(
        &mut ui,
        &BrokerRequest::AccountInit {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
        },
    )?;
    Ok(f)
}

fn action(command: &str) -> Action {
    Action {
        host: "core-sw1".into(),
        vendor: "ios".into(),
        org: "acme".into(),
        credential: Some("keychain:core-sw1".into()),
        command: command.into(),
        expected_effect: "as described".into(),
    }
}

fn request(p: &mut Peer, a: &Action) -> Result<(u64, String)> {
    match ok(p, &BrokerRequest::RequestApproval { action: a.clone() })? {
        BrokerResponse::ApprovalRequested { id, class } => Ok((id, class)),
        other => bail!("RequestApproval: {other:?}"),
    }
}

fn decide(p: &mut Peer, id: u64, decision: Decision) -> Result<(ApprovalState, Option<u64>)> {
    match ok(
        p,
        &BrokerRequest::DecideApproval {
            id,
            decision,
            presence: None,
        },
    )? {
        BrokerResponse::Decided { state, new_id } => Ok((state, new_id)),
        other => bail!("DecideApproval: {other:?}"),
    }
}

fn outcome(p: &mut Peer, id: u64) -> Result<Result<ApprovalOutcome, BrokerError>> {
    let v = p.call(&BrokerRequest::ApprovalOutcome { id })?;
    if let Some(e) = v.get("err") {
        return Ok(Err(serde_json::from_value(e.clone())?));
    }
    match v.get("ok").map(|o| serde_json::from_value(o.clone())) {
        Some(Ok(BrokerResponse::Outcome(o))) => Ok(Ok(*o)),
        _ => bail!("ApprovalOutcome: {v}"),
    }
}

fn show(p: &mut Peer, id: u64) -> Result<ApprovalView> {
    match ok(p, &BrokerRequest::ShowApproval { id })? {
        BrokerResponse::Approval(v) => Ok(*v),
        other => bail!("ShowApproval: {other:?}"),
    }
}

fn list(p: &mut Peer) -> Result<Vec<ApprovalView>> {
    match ok(p, &BrokerRequest::ListApprovals)? {
        BrokerResponse::Approvals(v) => Ok(v),
        other => bail!("ListApprovals: {other:?}"),
    }
}

fn token_of(p: &mut Peer, id: u64) -> Result<ApprovalToken> {
    match outcome(p, id)? {
        Ok(ApprovalOutcome::Approved(t)) => Ok(*t),
        other => bail!("outcome of {id}: {other:?}"),
    }
}

/// `requester` asks for `a`, `approver` approves, `requester` collects the token.
fn approved(requester: &mut Peer, approver: &mut Peer, a: &Action) -> Result<ApprovalToken> {
    let (id, _) = request(requester, a)?;
    assert_eq!(
        decide(approver, id, Decision::Approve)?,
        (ApprovalState::Approved, None)
    );
    token_of(requester, id)
}

/// ConsumeApproval: `Ok(())` or the approval error.
fn consume(p: &mut Peer, token: &ApprovalToken, a: &Action) -> Result<Result<(), BrokerError>> {
    let v = p.call(&BrokerRequest::ConsumeApproval {
        token: Box::new(token.clone()),
        action: a.clone(),
    })?;
    if let Some(e) = v.get("err") {
        return Ok(Err(serde_json::from_value(e.clone())?));
    }
    match v.get("ok").map(|o| serde_json::from_value(o.clone())) {
        Some(Ok(BrokerResponse::Consumed)) => Ok(Ok(())),
        _ => bail!("ConsumeApproval: {v}"),
    }
}

fn approval_err<T>(e: ApprovalError) -> Result<T, BrokerError> {
    Err(BrokerError::Approval(e))
}

#[test]
fn a_request_is_shown_exactly_as_asked_and_only_people_decide() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut cli = f.peer(PeerRole::Cli)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;

    let reload = action("reload");
    let show_version = Action {
        credential: None,
        ..action("show version")
    };
    let (rid, rclass) = request(&mut copilot, &reload)?;
    let (sid, sclass) = request(&mut copilot, &show_version)?;
    assert_ne!(rid, sid);
    assert_eq!(rclass, "dangerous");
    assert_eq!(sclass, "read-only");
    // The broker's own classifier, independently of the literal classes above.
    assert_eq!(rclass, classify_action(&reload).0);
    assert_eq!(sclass, classify_action(&show_version).0);

    for person in [&mut ui, &mut cli] {
        let views = list(person)?;
        for (id, a, class) in [
            (rid, &reload, "dangerous"),
            (sid, &show_version, "read-only"),
        ] {
            let v = views
                .iter()
                .find(|v| v.id == id)
                .unwrap_or_else(|| panic!("request {id} not listed: {views:?}"));
            assert_eq!(&v.action, a);
            assert_eq!(v.class, class);
            assert_eq!(v.state, ApprovalState::Pending);
            assert_eq!(v.requester.role, PeerRole::Copilotd);
            assert_eq!(v.requester.pid, copilot.pid() as i32);
            assert!(
                v.requester.exe.ends_with("/gatehouse-copilotd"),
                "{:?}",
                v.requester.exe
            );
            assert_eq!(v.decided_by, None);
            assert_eq!(&show(person, id)?, v);
        }
    }
    // Daemons cannot decide; the request stays pending.
    for (daemon, role) in [
        (&mut copilot, PeerRole::Copilotd),
        (&mut sessiond, PeerRole::Sessiond),
    ] {
        for decision in [
            Decision::Approve,
            Decision::Reject { reason: "x".into() },
            Decision::Edit {
                command: "show clock".into(),
            },
        ] {
            assert_eq!(
                err(
                    daemon,
                    &BrokerRequest::DecideApproval {
                        id: rid,
                        decision,
                        presence: None
                    }
                )?,
                BrokerError::Forbidden {
                    role,
                    operation: Operation::DecideApproval
                }
            );
        }
    }
    assert_eq!(show(&mut ui, rid)?.state, ApprovalState::Pending);
    assert_eq!(outcome(&mut copilot, rid)?, Ok(ApprovalOutcome::Pending));
    // Unknown ids.
    assert_eq!(
        err(
            &mut ui,
            &BrokerRequest::DecideApproval {
                id: rid + 1000,
                decision: Decision::Approve,
                presence: None
            }
        )?,
        BrokerError::Approval(ApprovalError::NotFound)
    );
    assert_eq!(
        outcome(&mut copilot, rid + 1000)?,
        approval_err(ApprovalError::NotFound)
    );
    Ok(())
}

#[test]
fn a_requester_cannot_decide_its_own_request() -> Result<()> {
    let f = start(&[])?;
    let mut cli = f.peer(PeerRole::Cli)?;
    let a = action("write memory");
    let (id, _) = request(&mut cli, &a)?;
    for decision in [
        Decision::Approve,
        Decision::Reject {
            reason: "mine".into(),
        },
        Decision::Edit {
            command: "show run".into(),
        },
    ] {
        assert_eq!(
            err(
                &mut cli,
                &BrokerRequest::DecideApproval {
                    id,
                    decision,
                    presence: None
                }
            )?,
            BrokerError::Approval(ApprovalError::SelfDecision)
        );
    }
    let v = show(&mut cli, id)?;
    assert_eq!(v.state, ApprovalState::Pending);
    assert_eq!(v.replaced_by, None);
    assert_eq!(outcome(&mut cli, id)?, Ok(ApprovalOutcome::Pending));
    // Another cli process (another person's terminal) may decide it: the
    // refusal is about the process, not the role.
    let mut other_cli = f.peer(PeerRole::Cli)?;
    assert_ne!(other_cli.pid(), cli.pid());
    assert_eq!(
        decide(&mut other_cli, id, Decision::Approve)?,
        (ApprovalState::Approved, None)
    );
    let t = token_of(&mut cli, id)?;
    assert_eq!(t.requester.pid, cli.pid() as i32);
    assert_eq!(t.approver.pid, other_cli.pid() as i32);
    assert_eq!(t.approver.role, PeerRole::Cli);
    Ok(())
}

#[test]
fn only_the_requester_collects_the_token_and_it_is_single_use() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let a = action("reload");
    let (id, _) = request(&mut copilot, &a)?;
    assert_eq!(outcome(&mut copilot, id)?, Ok(ApprovalOutcome::Pending));
    let before = gatehouse_broker::vault::now_ms();
    assert_eq!(
        decide(&mut ui, id, Decision::Approve)?,
        (ApprovalState::Approved, None)
    );
    let t = token_of(&mut copilot, id)?;
    assert_eq!(t.approval_id, id);
    assert_eq!(t.action, a);
    assert_eq!(t.requester.role, PeerRole::Copilotd);
    assert_eq!(t.requester.pid, copilot.pid() as i32);
    assert_eq!(t.approver.role, PeerRole::Ui);
    assert_eq!(t.approver.pid, ui.pid() as i32);
    assert_eq!(t.signature.len(), 64);
    assert!(
        t.expires_ms > before && t.expires_ms <= before + 60_000 + 5_000,
        "{}",
        t.expires_ms
    );
    let v = show(&mut ui, id)?;
    assert_eq!(v.state, ApprovalState::Approved);
    assert_eq!(v.decided_by.as_ref().map(|d| d.pid), Some(ui.pid() as i32));

    // Nobody else collects it: other roles, and another process of the requester's role.
    let mut other_copilot = f.peer(PeerRole::Copilotd)?;
    for p in [&mut ui, &mut sessiond, &mut other_copilot] {
        assert_eq!(outcome(p, id)?, approval_err(ApprovalError::NotRequester));
    }
    // Decided once.
    assert_eq!(
        err(
            &mut ui,
            &BrokerRequest::DecideApproval {
                id,
                decision: Decision::Reject {
                    reason: "too late".into()
                },
                presence: None
            }
        )?,
        BrokerError::Approval(ApprovalError::NotPending)
    );
    // Only the executor consumes: a person's role never, copilotd not a
    // device command (even its own).
    assert_eq!(
        consume(&mut ui, &t, &a)?,
        Err(BrokerError::Forbidden {
            role: PeerRole::Ui,
            operation: Operation::ConsumeApproval
        })
    );
    assert_eq!(
        consume(&mut copilot, &t, &a)?,
        approval_err(ApprovalError::WrongExecutor {
            executor: PeerRole::Sessiond
        })
    );
    assert_eq!(consume(&mut sessiond, &t, &a)?, Ok(()));
    assert_eq!(
        consume(&mut sessiond, &t, &a)?,
        approval_err(ApprovalError::Replayed)
    );
    let mut other_sessiond = f.peer(PeerRole::Sessiond)?;
    assert_eq!(
        consume(&mut other_sessiond, &t, &a)?,
        approval_err(ApprovalError::Replayed)
    );
    // Collecting the outcome again gives the same (spent) token, not a new one.
    assert_eq!(token_of(&mut copilot, id)?, t);
    assert_eq!(
        consume(&mut sessiond, &token_of(&mut copilot, id)?, &a)?,
        approval_err(ApprovalError::Replayed)
    );
    Ok(())
}

#[test]
fn copilotd_spends_only_its_own_tokens_for_its_own_kind_of_action() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut other_copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let api_call = Action {
        host: "netbox".into(),
        vendor: "copilot:connector".into(),
        org: "acme".into(),
        credential: Some("connector:netbox".into()),
        command: "POST /api/dcim/devices/\n{\"name\":\"edge9\"}".into(),
        expected_effect: "adds a device".into(),
    };
    assert_eq!(api_call.executor(), PeerRole::Copilotd);
    assert_eq!(action("reload").executor(), PeerRole::Sessiond);

    // sessiond never carries out copilotd's API calls.
    let t = approved(&mut copilot, &mut ui, &api_call)?;
    assert_eq!(
        consume(&mut sessiond, &t, &api_call)?,
        approval_err(ApprovalError::WrongExecutor {
            executor: PeerRole::Copilotd
        })
    );
    // Another copilotd process cannot spend it.
    assert_eq!(
        consume(&mut other_copilot, &t, &api_call)?,
        approval_err(ApprovalError::WrongExecutor {
            executor: PeerRole::Copilotd
        })
    );
    // A token asked for by a person's tool is not copilotd's either.
    let mut cli = f.peer(PeerRole::Cli)?;
    let by_cli = approved(&mut cli, &mut ui, &api_call)?;
    assert_eq!(
        consume(&mut copilot, &by_cli, &api_call)?,
        approval_err(ApprovalError::WrongExecutor {
            executor: PeerRole::Copilotd
        })
    );
    // Its own requester spends it, once, for exactly the approved call.
    let mut changed = api_call.clone();
    changed.command.push(' ');
    assert_eq!(
        consume(&mut copilot, &t, &changed)?,
        approval_err(ApprovalError::Mismatch(ActionField::Command))
    );
    assert_eq!(consume(&mut copilot, &t, &api_call)?, Ok(()));
    assert_eq!(
        consume(&mut copilot, &t, &api_call)?,
        approval_err(ApprovalError::Replayed)
    );
    Ok(())
}

fn auto_request(p: &mut Peer, a: &Action, grant: u64) -> Result<(u64, Option<String>)> {
    match ok(
        p,
        &BrokerRequest::RequestAutoApproval {
            action: a.clone(),
            grant,
        },
    )? {
        BrokerResponse::AutoApprovalRequested {
            id,
            auto_approved,
            why_person,
            ..
        } => {
            // Exactly one of the two.
            assert_ne!(auto_approved.is_some(), why_person.is_some());
            Ok((id, auto_approved))
        }
        other => bail!("RequestAutoApproval: {other:?}"),
    }
}

fn grant(p: &mut Peer, max_steps: u32, seconds: u64) -> Result<u64> {
    match ok(
        p,
        &BrokerRequest::GrantAutopilot {
            bound: gatehouse_ipc::broker::AutopilotBound {
                org: "acme".into(),
                hosts: vec!["core-sw1".into()],
                max_steps,
                seconds,
            },
        },
    )? {
        BrokerResponse::AutopilotGranted { grant, .. } => Ok(grant),
        other => bail!("GrantAutopilot: {other:?}"),
    }
}

#[test]
fn the_broker_holds_autopilot_to_its_bounds_whatever_copilotd_does() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut cli = f.peer(PeerRole::Cli)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    set_policy(&mut cli, "acme", r#"{"autopilot_moderate": true}"#)?;
    let change = action("configure terminal");
    // copilotd cannot start a task for itself.
    assert_eq!(
        err(
            &mut copilot,
            &BrokerRequest::GrantAutopilot {
                bound: gatehouse_ipc::broker::AutopilotBound {
                    org: "acme".into(),
                    hosts: vec!["core-sw1".into()],
                    max_steps: 100,
                    seconds: 3600,
                },
            }
        )?,
        BrokerError::Forbidden {
            role: PeerRole::Copilotd,
            operation: Operation::GrantAutopilot
        }
    );
    let g = grant(&mut cli, 2, 3600)?;
    // Two steps: approved at once, on behalf of the person who started the task.
    for _ in 0..2 {
        let (id, auto) = auto_request(&mut copilot, &change, g)?;
        assert!(
            auto.as_deref()
                .is_some_and(|r| r.contains("autopilot-moderate")),
            "{auto:?}"
        );
        let t = token_of(&mut copilot, id)?;
        assert_eq!(t.approver.role, PeerRole::Cli);
        assert_eq!(t.approver.pid, cli.pid() as i32);
        assert_eq!(consume(&mut sessiond, &t, &change)?, Ok(()));
        let v = show(&mut cli, id)?;
        assert_eq!(v.state, ApprovalState::Approved);
        assert!(v.autopilot.is_some(), "{v:?}");
    }
    // The third waits for a person, however copilotd counts.
    let (id, auto) = auto_request(&mut copilot, &change, g)?;
    assert_eq!(auto, None);
    assert_eq!(outcome(&mut copilot, id)?, Ok(ApprovalOutcome::Pending));

    // Dangerous, another host, another org: a person, even in a fresh task.
    let g2 = grant(&mut cli, 10, 3600)?;
    let mut elsewhere = change.clone();
    elsewhere.host = "core-sw2".into();
    let mut other_org = change.clone();
    other_org.org = "other".into();
    for a in [action("reload"), elsewhere, other_org] {
        let (id, auto) = auto_request(&mut copilot, &a, g2)?;
        assert_eq!(auto, None, "{a:?}");
        assert_eq!(outcome(&mut copilot, id)?, Ok(ApprovalOutcome::Pending));
    }
    // The org policy changes its mind: nothing more is auto-approved.
    set_policy(&mut cli, "acme", "{}")?;
    assert_eq!(auto_request(&mut copilot, &change, g2)?.1, None);
    set_policy(&mut cli, "acme", r#"{"autopilot_moderate": true}"#)?;
    assert!(auto_request(&mut copilot, &change, g2)?.1.is_some());
    // Ended by the person: nothing more.
    assert!(matches!(
        ok(&mut cli, &BrokerRequest::EndAutopilot { grant: g2 })?,
        BrokerResponse::Done
    ));
    assert_eq!(auto_request(&mut copilot, &change, g2)?.1, None);
    // The time bound.
    let g3 = grant(&mut cli, 10, 1)?;
    assert!(auto_request(&mut copilot, &change, g3)?.1.is_some());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(auto_request(&mut copilot, &change, g3)?.1, None);
    // Sign-out ends every task.
    let g4 = grant(&mut cli, 10, 3600)?;
    ok(&mut cli, &BrokerRequest::SignOut)?;
    ok(
        &mut cli,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: false,
        },
    )?;
    assert_eq!(auto_request(&mut copilot, &change, g4)?.1, None);
    Ok(())
}

#[test]
fn a_token_covers_exactly_the_approved_action() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let a = action("interface Gi0/1\n shutdown");
    let cases: Vec<(&str, Action, ActionField)> = vec![
        (
            "command, last byte",
            Action {
                command: "interface Gi0/1\n shutdowm".into(),
                ..a.clone()
            },
            ActionField::Command,
        ),
        (
            "command, first byte",
            Action {
                command: "Interface Gi0/1\n shutdown".into(),
                ..a.clone()
            },
            ActionField::Command,
        ),
        (
            "command, trailing space",
            Action {
                command: "interface Gi0/1\n shutdown ".into(),
                ..a.clone()
            },
            ActionField::Command,
        ),
        (
            "command, CRLF",
            Action {
                command: "interface Gi0/1\r\n shutdown".into(),
                ..a.clone()
            },
            ActionField::Command,
        ),
        (
            "host",
            Action {
                host: "core-sw2".into(),
                ..a.clone()
            },
            ActionField::Host,
        ),
        (
            "org",
            Action {
                org: "globex".into(),
                ..a.clone()
            },
            ActionField::Org,
        ),
        (
            "credential",
            Action {
                credential: Some("keychain:core-sw2".into()),
                ..a.clone()
            },
            ActionField::Credential,
        ),
        (
            "no credential",
            Action {
                credential: None,
                ..a.clone()
            },
            ActionField::Credential,
        ),
        (
            "vendor",
            Action {
                vendor: "nxos".into(),
                ..a.clone()
            },
            ActionField::Vendor,
        ),
        (
            "expected effect",
            Action {
                expected_effect: "nothing".into(),
                ..a.clone()
            },
            ActionField::ExpectedEffect,
        ),
    ];
    for (what, presented, field) in cases {
        // A fresh approval each time, so a replay could not mask a mismatch.
        let t = approved(&mut copilot, &mut ui, &a)?;
        assert_eq!(
            consume(&mut sessiond, &t, &presented)?,
            approval_err(ApprovalError::Mismatch(field)),
            "{what}"
        );
        // The mismatch did not spend it: the approved action itself still goes through once.
        assert_eq!(consume(&mut sessiond, &t, &a)?, Ok(()), "{what}");
        assert_eq!(
            consume(&mut sessiond, &t, &presented)?,
            Err(BrokerError::Approval(ApprovalError::Mismatch(field))),
            "{what}: after use"
        );
    }
    Ok(())
}

#[test]
fn any_altered_token_field_breaks_the_signature() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let a = action("reload in 5");
    let t = approved(&mut copilot, &mut ui, &a)?;
    // A second, genuine token: its valid signature must not fit the first.
    let t2 = approved(&mut copilot, &mut ui, &a)?;
    assert_ne!(t.nonce, t2.nonce);

    let alter = |f: &dyn Fn(&mut ApprovalToken)| {
        let mut x = t.clone();
        f(&mut x);
        x
    };
    let mut cases: Vec<(String, ApprovalToken, Action)> = vec![
        (
            "approval_id".into(),
            alter(&|x| x.approval_id += 1),
            a.clone(),
        ),
        ("nonce".into(), alter(&|x| x.nonce[0] ^= 1), a.clone()),
        (
            "nonce, last".into(),
            alter(&|x| x.nonce[15] ^= 0x80),
            a.clone(),
        ),
        (
            "expires_ms + 1".into(),
            alter(&|x| x.expires_ms += 1),
            a.clone(),
        ),
        (
            "expires_ms far future".into(),
            alter(&|x| x.expires_ms = u64::MAX),
            a.clone(),
        ),
        (
            "requester pid".into(),
            alter(&|x| x.requester.pid = sessiond.pid() as i32),
            a.clone(),
        ),
        (
            "requester role".into(),
            alter(&|x| x.requester.role = PeerRole::Cli),
            a.clone(),
        ),
        (
            "requester exe".into(),
            alter(&|x| x.requester.exe.push('x')),
            a.clone(),
        ),
        (
            "approver pid".into(),
            alter(&|x| x.approver.pid += 1),
            a.clone(),
        ),
        (
            "approver role".into(),
            alter(&|x| x.approver.role = PeerRole::Cli),
            a.clone(),
        ),
        (
            "approver exe".into(),
            alter(&|x| x.approver.exe = "/usr/bin/gatehouse".into()),
            a.clone(),
        ),
        (
            "signature of another token".into(),
            alter(&|x| x.signature = t2.signature.clone()),
            a.clone(),
        ),
        (
            "signature truncated".into(),
            alter(&|x| {
                x.signature.pop();
            }),
            a.clone(),
        ),
        (
            "signature empty".into(),
            alter(&|x| x.signature.clear()),
            a.clone(),
        ),
        (
            "signature extended".into(),
            alter(&|x| x.signature.push(0)),
            a.clone(),
        ),
    ];
    // The same edit to the token's action and the presented action: no
    // Mismatch to hide behind, so only the signature can catch it.
    for (what, edit) in [
        (
            "command",
            &(|x: &mut Action| x.command.push('!')) as &dyn Fn(&mut Action),
        ),
        ("host", &|x: &mut Action| x.host = "edge-fw1".into()),
        ("org", &|x: &mut Action| x.org = "globex".into()),
        ("vendor", &|x: &mut Action| x.vendor = "linux".into()),
        ("credential", &|x: &mut Action| x.credential = None),
        ("expected effect", &|x: &mut Action| {
            x.expected_effect.clear()
        }),
    ] {
        let mut presented = a.clone();
        edit(&mut presented);
        let forged = alter(&|x| x.action = presented.clone());
        cases.push((format!("token and action {what}"), forged, presented));
    }
    for i in 0..t.signature.len() {
        cases.push((
            format!("signature byte {i}"),
            alter(&|x| x.signature[i] ^= 0x01),
            a.clone(),
        ));
    }
    for (what, token, presented) in &cases {
        assert_eq!(
            consume(&mut sessiond, token, presented)?,
            approval_err(ApprovalError::BadSignature),
            "{what}"
        );
    }
    // The genuine tokens were not spent by any of it.
    assert_eq!(consume(&mut sessiond, &t, &a)?, Ok(()));
    assert_eq!(consume(&mut sessiond, &t2, &a)?, Ok(()));
    Ok(())
}

#[test]
fn an_expired_token_is_refused() -> Result<()> {
    let f = start(&["--approval-ttl-secs", "1"])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let a = action("reload");
    let now = gatehouse_broker::vault::now_ms();
    let fresh = approved(&mut copilot, &mut ui, &a)?;
    let stale = approved(&mut copilot, &mut ui, &a)?;
    assert!(
        stale.expires_ms <= now + 1000 + 2000,
        "ttl flag ignored: expires {} ms from now",
        stale.expires_ms - now
    );
    assert_eq!(consume(&mut sessiond, &fresh, &a)?, Ok(()));
    let wait = stale
        .expires_ms
        .saturating_sub(gatehouse_broker::vault::now_ms())
        + 500;
    std::thread::sleep(Duration::from_millis(wait));
    assert_eq!(
        consume(&mut sessiond, &stale, &a)?,
        approval_err(ApprovalError::Expired)
    );
    // Moving the expiry forward is a forgery, not a renewal.
    let extended = ApprovalToken {
        expires_ms: gatehouse_broker::vault::now_ms() + 60_000,
        ..stale.clone()
    };
    assert_eq!(
        consume(&mut sessiond, &extended, &a)?,
        approval_err(ApprovalError::BadSignature)
    );
    Ok(())
}

#[test]
fn an_edit_is_a_new_request_and_the_original_never_gets_a_token() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;

    // Dangerous → read-only, and read-only → dangerous: the class follows the new command.
    for (original, edited, new_class) in [
        ("reload", "show version", "read-only"),
        ("show version", "reload", "dangerous"),
    ] {
        let a = action(original);
        let (id, _) = request(&mut copilot, &a)?;
        let (state, new_id) = decide(
            &mut ui,
            id,
            Decision::Edit {
                command: edited.into(),
            },
        )?;
        assert_eq!(state, ApprovalState::Edited);
        let new_id = new_id.expect("an edit names the new request");
        assert_ne!(new_id, id);

        let old = show(&mut ui, id)?;
        assert_eq!(old.state, ApprovalState::Edited);
        assert_eq!(old.replaced_by, Some(new_id));
        assert_eq!(old.action, a, "the original request is kept as asked");
        assert_eq!(old.decided_by.as_ref().map(|d| d.role), Some(PeerRole::Ui));
        assert_eq!(
            outcome(&mut copilot, id)?,
            Ok(ApprovalOutcome::Edited { new_id })
        );

        let new = show(&mut ui, new_id)?;
        let edited_action = Action {
            command: edited.into(),
            ..a.clone()
        };
        assert_eq!(new.state, ApprovalState::Pending);
        assert_eq!(new.action, edited_action);
        assert_eq!(new.class, new_class);
        assert_eq!(new.class, classify_action(&edited_action).0);
        assert_eq!(new.requester, old.requester);
        assert_eq!(new.decided_by, None);
        assert!(list(&mut ui)?.iter().any(|v| v.id == new_id));
        assert_eq!(outcome(&mut copilot, new_id)?, Ok(ApprovalOutcome::Pending));

        // The original cannot be approved after the edit.
        assert_eq!(
            err(
                &mut ui,
                &BrokerRequest::DecideApproval {
                    id,
                    decision: Decision::Approve,
                    presence: None
                }
            )?,
            BrokerError::Approval(ApprovalError::NotPending)
        );
        // The edited request needs its own decision, and the requester can't give it.
        assert_eq!(
            err(
                &mut copilot,
                &BrokerRequest::DecideApproval {
                    id: new_id,
                    decision: Decision::Approve,
                    presence: None
                }
            )?,
            BrokerError::Forbidden {
                role: PeerRole::Copilotd,
                operation: Operation::DecideApproval
            }
        );
        assert_eq!(
            decide(&mut ui, new_id, Decision::Approve)?,
            (ApprovalState::Approved, None)
        );
        let t = token_of(&mut copilot, new_id)?;
        assert_eq!(t.action, edited_action);
        // Still no token for the original, and the new token does not cover it.
        assert_eq!(
            outcome(&mut copilot, id)?,
            Ok(ApprovalOutcome::Edited { new_id })
        );
        assert_eq!(
            consume(&mut sessiond, &t, &a)?,
            approval_err(ApprovalError::Mismatch(ActionField::Command))
        );
        assert_eq!(consume(&mut sessiond, &t, &edited_action)?, Ok(()));
    }
    // An edit to an empty command is refused and decides nothing.
    let (id, _) = request(&mut copilot, &action("reload"))?;
    assert!(matches!(
        err(
            &mut ui,
            &BrokerRequest::DecideApproval {
                id,
                decision: Decision::Edit {
                    command: "  ".into()
                },
                presence: None
            }
        )?,
        BrokerError::Invalid { .. }
    ));
    assert_eq!(show(&mut ui, id)?.state, ApprovalState::Pending);
    Ok(())
}

#[test]
fn a_rejection_carries_its_reason_and_no_token() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let a = action("reload");
    let (id, _) = request(&mut copilot, &a)?;
    let reason = "outside the change window";
    assert_eq!(
        decide(
            &mut ui,
            id,
            Decision::Reject {
                reason: reason.into()
            }
        )?,
        (ApprovalState::Rejected, None)
    );
    assert_eq!(
        outcome(&mut copilot, id)?,
        Ok(ApprovalOutcome::Rejected {
            reason: reason.into()
        })
    );
    let v = show(&mut ui, id)?;
    assert_eq!(v.state, ApprovalState::Rejected);
    assert_eq!(v.reject_reason.as_deref(), Some(reason));
    assert_eq!(v.replaced_by, None);
    // A later approval (by anyone) changes nothing.
    let mut cli = f.peer(PeerRole::Cli)?;
    for p in [&mut ui, &mut cli] {
        assert_eq!(
            err(
                p,
                &BrokerRequest::DecideApproval {
                    id,
                    decision: Decision::Approve,
                    presence: None
                }
            )?,
            BrokerError::Approval(ApprovalError::NotPending)
        );
    }
    assert_eq!(
        outcome(&mut copilot, id)?,
        Ok(ApprovalOutcome::Rejected {
            reason: reason.into()
        })
    );
    Ok(())
}

#[test]
fn single_use_survives_a_broker_restart() -> Result<()> {
    let mut f = start(&[])?;
    let a = action("reload");
    let (spent, unspent) = {
        let mut copilot = f.peer(PeerRole::Copilotd)?;
        let mut ui = f.peer(PeerRole::Ui)?;
        let mut sessiond = f.peer(PeerRole::Sessiond)?;
        let spent = approved(&mut copilot, &mut ui, &a)?;
        let unspent = approved(&mut copilot, &mut ui, &a)?;
        assert_eq!(consume(&mut sessiond, &spent, &a)?, Ok(()));
        (spent, unspent)
    };
    let old_pid = f.broker_pid();
    f.start_broker()?;
    assert_ne!(f.broker_pid(), old_pid);
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    // Signed out after the restart: nothing is verified.
    assert_eq!(
        consume(&mut sessiond, &unspent, &a)?,
        Err(BrokerError::SignedOut)
    );
    let mut ui = f.peer(PeerRole::Ui)?;
    ok(
        &mut ui,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: false,
        },
    )?;
    assert_eq!(
        consume(&mut sessiond, &spent, &a)?,
        approval_err(ApprovalError::Replayed)
    );
    // The unspent token is still good: the refusal above is the nonce log's doing.
    assert_eq!(consume(&mut sessiond, &unspent, &a)?, Ok(()));
    assert_eq!(
        consume(&mut sessiond, &unspent, &a)?,
        approval_err(ApprovalError::Replayed)
    );
    // And again after a second restart.
    f.start_broker()?;
    let mut ui = f.peer(PeerRole::Ui)?;
    ok(
        &mut ui,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: false,
        },
    )?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    for t in [&spent, &unspent] {
        assert_eq!(
            consume(&mut sessiond, t, &a)?,
            approval_err(ApprovalError::Replayed)
        );
    }
    Ok(())
}

/// An MCP tool call's card shows the class the broker derives itself: the
/// org's assignment from the policy the broker keeps, raised
/// (never lowered) by the server's hints as the requester stated them. What
/// copilotd writes can make a call stricter, never looser.
#[test]
fn mcp_calls_take_the_class_the_broker_derives_from_the_org_policy() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    set_policy(
        &mut ui,
        "acme",
        r#"{"mcp_tools": {"sw/lookup_vlan": "read-only", "sw/delete_vlan": "read-only"}}"#,
    )?;
    let mcp = |tool: &str, org: &str, effect: &str| Action {
        host: "sw".into(),
        vendor: "copilot:mcp".into(),
        org: org.into(),
        credential: None,
        command: format!("{tool} {{\"vlan\":10}}"),
        expected_effect: effect.into(),
    };
    let plain = "calls MCP tool on server sw";
    let cases = [
        // the org's assignment
        (mcp("lookup_vlan", "acme", plain), "read-only"),
        // a destructive hint raises the org's (wrong) read-only
        (
            mcp(
                "delete_vlan",
                "acme",
                "calls MCP tool delete_vlan on server sw (the server says destructive: dangerous)",
            ),
            "dangerous",
        ),
        // no org rule: a read-only hint does not lower unknown
        (
            mcp(
                "port_status",
                "acme",
                "(the server says read-only (a hint, not trusted))",
            ),
            "unknown",
        ),
        // the requester claiming the org's word changes nothing
        (
            mcp(
                "port_status",
                "acme",
                "the organization classifies MCP tool sw/port_status as read-only",
            ),
            "unknown",
        ),
        // another org's assignment does not apply
        (mcp("lookup_vlan", "globex", plain), "unknown"),
        // the same tool name on another server is another tool
        (
            Action {
                host: "sw2".into(),
                ..mcp("lookup_vlan", "acme", plain)
            },
            "unknown",
        ),
    ];
    for (a, want) in &cases {
        let (id, class) = request(&mut copilot, a)?;
        assert_eq!(class, *want, "{a:?}");
        let card = show(&mut ui, id)?;
        assert_eq!(card.class, *want, "{a:?}");
        assert!(
            card.reasons.iter().any(|r| r.contains("MCP tool")),
            "{:?}",
            card.reasons
        );
    }
    let (id, _) = request(&mut copilot, &cases[0].0)?;
    assert!(
        show(&mut ui, id)?
            .reasons
            .iter()
            .any(|r| r == "the organization classifies MCP tool sw/lookup_vlan as read-only")
    );
    // The broker reads the policy at each request: the org withdraws the
    // assignment and the same call is unknown again.
    set_policy(&mut ui, "acme", "{}")?;
    assert_eq!(request(&mut copilot, &cases[0].0)?.1, "unknown");
    // A damaged stored policy (the development layout's state directory) is
    // unknown with the reason, not an empty policy.
    std::fs::write(
        f.home.join("state").join("org-policy").join("acme.json"),
        "{not json",
    )?;
    let (id, class) = request(&mut copilot, &cases[0].0)?;
    assert_eq!(class, "unknown");
    assert!(
        show(&mut ui, id)?
            .reasons
            .iter()
            .any(|r| r.contains("cannot be read")),
    );
    Ok(())
}

/// Only the requesting process withdraws its own pending request; the card
/// then says why and nobody can approve it; copilotd may end an Autopilot
/// task (ending only takes authority away) but never start one.
#[test]
fn only_the_requester_withdraws_and_a_withdrawn_card_cannot_be_approved() -> Result<()> {
    let f = start(&[])?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let mut other_copilot = f.peer(PeerRole::Copilotd)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut cli = f.peer(PeerRole::Cli)?;
    let a = action("configure terminal");
    let (id, _) = request(&mut copilot, &a)?;
    let withdraw = |reason: &str| BrokerRequest::WithdrawApproval {
        id,
        reason: reason.into(),
    };
    // Another process of the same role, and a person, cannot withdraw it.
    for p in [&mut other_copilot, &mut ui, &mut cli] {
        assert_eq!(
            err(p, &withdraw("not yours"))?,
            BrokerError::Approval(ApprovalError::NotRequester)
        );
    }
    assert_eq!(show(&mut ui, id)?.state, ApprovalState::Pending);
    assert!(matches!(
        ok(&mut copilot, &withdraw("the person left"))?,
        BrokerResponse::Done
    ));
    let card = show(&mut ui, id)?;
    assert_eq!(card.state, ApprovalState::Withdrawn);
    assert_eq!(card.reject_reason.as_deref(), Some("the person left"));
    // Nobody can approve it any more; withdrawing twice is refused.
    assert_eq!(
        err(
            &mut ui,
            &BrokerRequest::DecideApproval {
                id,
                decision: Decision::Approve,
                presence: None,
            }
        )?,
        BrokerError::Approval(ApprovalError::NotPending)
    );
    assert_eq!(
        err(&mut copilot, &withdraw("again"))?,
        BrokerError::Approval(ApprovalError::NotPending)
    );
    assert!(matches!(
        outcome(&mut copilot, id)?,
        Ok(ApprovalOutcome::Rejected { .. })
    ));
    // A decided request cannot be withdrawn.
    let (id2, _) = request(&mut copilot, &a)?;
    decide(&mut ui, id2, Decision::Approve)?;
    assert_eq!(
        err(
            &mut copilot,
            &BrokerRequest::WithdrawApproval {
                id: id2,
                reason: "late".into()
            }
        )?,
        BrokerError::Approval(ApprovalError::NotPending)
    );
    // copilotd ends a task, never starts one.
    let g = grant(&mut cli, 5, 600)?;
    assert!(matches!(
        ok(&mut copilot, &BrokerRequest::EndAutopilot { grant: g })?,
        BrokerResponse::Done
    ));
    let (_, auto) = auto_request(&mut copilot, &action("show version"), g)?;
    assert!(auto.is_none(), "an ended task approved something");
    Ok(())
}

/// Org policy lives in the broker: changing it needs the passphrase (a
/// wrong one changes nothing), a malformed or misspelt policy is refused
/// with the reason, daemons may read it but not write it, and every change,
/// refused or not, is a row of the credential log.
#[test]
fn org_policy_changes_need_presence_and_are_audited() -> Result<()> {
    let f = start(&[])?;
    let mut cli = f.peer(PeerRole::Cli)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let get = |p: &mut Peer| -> Result<serde_json::Value> {
        match ok(p, &BrokerRequest::OrgPolicyGet { org: "acme".into() })? {
            BrokerResponse::OrgPolicy(json) => Ok(serde_json::from_str(&json)?),
            other => bail!("OrgPolicyGet: {other:?}"),
        }
    };
    assert_eq!(get(&mut sessiond)?["block_dangerous"], false);
    set_policy(&mut cli, "acme", r#"{"block_dangerous": true}"#)?;
    assert_eq!(get(&mut sessiond)?["block_dangerous"], true);
    let set = |policy: &str, presence: &[u8]| BrokerRequest::OrgPolicySet {
        org: "acme".into(),
        policy: policy.into(),
        presence: SecretBytes::copy_from(presence),
    };
    // A wrong passphrase, a misspelt field, a daemon: refused, nothing changes.
    assert!(matches!(
        err(&mut cli, &set("{}", b"guess"))?,
        BrokerError::WrongPassphrase { .. }
    ));
    let e = err(&mut cli, &set(r#"{"block_dangerus": false}"#, PASSPHRASE))?;
    assert!(e.to_string().contains("unknown field"), "{e}");
    for role in [PeerRole::Sessiond, PeerRole::Copilotd] {
        let mut daemon = f.peer(role)?;
        assert_eq!(
            err(&mut daemon, &set("{}", PASSPHRASE))?,
            BrokerError::Forbidden {
                role,
                operation: Operation::OrgPolicySet
            }
        );
    }
    assert_eq!(get(&mut cli)?["block_dangerous"], true);
    // Each change, refused or not, is audited (the policy's digest, never a
    // secret: there is none in a policy).
    let log = std::fs::read_to_string(f.home.join("audit").join("credentials.jsonl"))?;
    let rows: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["credential"] == "org-policy/acme")
        .collect();
    let refused = rows.iter().filter(|r| !r["refused"].is_null()).count();
    assert_eq!((rows.len(), refused), (3, 2), "{log}");
    Ok(())
}
