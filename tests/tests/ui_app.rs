//! The desktop app's state (State / update / view of `gatehouse-ui`) driven
//! through `iced_test` against a REAL broker, as the `ui` role.
//!
//! The broker gives the ui role only to `gatehouse-ui` beside it, so each
//! test starts the fixture with `peer_as_ui` (this test executable installed
//! as `gatehouse-ui`) and re-runs itself from there
//! ([`BrokerFixture::run_as_ui`]); inside, clicks and typing go through the
//! rendered widgets, effects run against the broker with the app's own
//! `daemons::run`, and approvals are filed and collected by a copilotd test
//! peer. Nothing is mocked.

use anyhow::{Context, Result, bail};
use gatehouse_broker::service::classify_action;
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{Action, ApprovalOutcome, BrokerEvent, BrokerRequest, BrokerResponse};
use gatehouse_tests::broker::Peer;
use gatehouse_ui::app::{Message, Session, Tab};
use gatehouse_ui::daemons;
use gatehouse_ui::{hosts, signin};

mod ui_driver;
use ui_driver::{Driver, ui_test};

fn ok(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerResponse> {
    Ok(serde_json::from_value(p.ok(req)?)?)
}

fn file(p: &mut Peer, a: &Action) -> Result<u64> {
    match ok(p, &BrokerRequest::RequestApproval { action: a.clone() })? {
        BrokerResponse::ApprovalRequested { id, .. } => Ok(id),
        other => bail!("RequestApproval: {other:?}"),
    }
}

fn outcome(p: &mut Peer, id: u64) -> Result<ApprovalOutcome> {
    match ok(p, &BrokerRequest::ApprovalOutcome { id })? {
        BrokerResponse::Outcome(o) => Ok(*o),
        other => bail!("ApprovalOutcome: {other:?}"),
    }
}

fn action(command: &str) -> Action {
    Action {
        host: "edge-r1".into(),
        vendor: "routeros".into(),
        org: "acme".into(),
        credential: Some("keychain:edge-r1".into()),
        command: command.into(),
        expected_effect: "ether2 goes down".into(),
    }
}

#[test]
fn signin_wrong_then_right_then_sign_out_with_confirmation() -> Result<()> {
    ui_test(
        "signin_wrong_then_right_then_sign_out_with_confirmation",
        |_| Ok(()),
        |child| {
            let mut d = Driver::new(child)?;
            assert_eq!(d.state.session, Session::SignedOut);
            assert!(d.sees("Sign in (Enter)"), "the sign-in screen is shown");
            assert!(!d.broker_signed_in()?);

            // Wrong passphrase: the broker's error, where it happened; still signed out.
            d.type_into(signin::PASSPHRASE_ID, "not-the-passphrase", true)?;
            assert_eq!(d.state.session, Session::SignedOut);
            let err = d.state.signin.error.clone().context("an error is shown")?;
            assert!(err.contains("wrong passphrase"), "{err}");
            assert!(d.sees(&format!("Sign-in failed: {err}")));
            assert!(!d.broker_signed_in()?);

            // The right one, with "remember this device".
            d.click("Remember this device")?;
            assert!(d.state.signin.remember_device);
            d.sign_in()?;
            assert!(d.broker_signed_in()?);
            assert!(d.sees("Hosts (Ctrl+1)") && d.sees("Sign out (Ctrl+Shift+Q)"));
            assert!(!d.sees_part("Sign-in failed"));

            // Sign-out asks first and lists what is purged; cancel keeps us in.
            d.click("Sign out (Ctrl+Shift+Q)")?;
            assert!(d.sees("Signing out purges:"));
            assert!(d.sees_part("organization key(s), zeroized in the broker"));
            assert!(d.sees_part("remembered unlock material"));
            d.click("Cancel (Esc)")?;
            assert!(!d.sees("Signing out purges:"));
            assert!(d.broker_signed_in()?);

            d.click("Sign out (Ctrl+Shift+Q)")?;
            d.click("Sign out and purge (Enter)")?;
            assert_eq!(d.state.session, Session::SignedOut);
            assert!(d.sees("Sign in (Enter)"));
            assert!(d.sees_part("Signed out:") && d.sees_part("keys and"));
            assert!(!d.broker_signed_in()?, "the broker is signed out");
            Ok(())
        },
    )
}

#[test]
fn hosts_list_filtered_by_search_over_plaintext_fields() -> Result<()> {
    ui_test(
        "hosts_list_filtered_by_search_over_plaintext_fields",
        |f| {
            for (name, addr, vendor, tag, folder) in [
                ("core-sw1", "10.0.0.1", "ios", "core", "dc1/core"),
                ("core-sw2", "10.0.0.2", "ios", "core", "dc1/core"),
                ("edge-r1", "192.0.2.1", "routeros", "edge", "branch"),
            ] {
                f.cli_ok(
                    &[
                        "host",
                        "add",
                        name,
                        "--org",
                        "acme",
                        "--address",
                        addr,
                        "--vendor",
                        vendor,
                        "--tag",
                        tag,
                        "--folder",
                        folder,
                    ],
                    "",
                )?;
            }
            Ok(())
        },
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            d.click("Hosts (Ctrl+1)")?;
            assert_eq!(d.state.tab, Tab::Hosts);
            assert!(d.sees("3 of 3 hosts"), "{:?}", d.state.hosts);
            for n in ["core-sw1", "core-sw2", "edge-r1"] {
                assert!(d.sees(n), "{n} listed");
            }
            assert!(d.sees_part("192.0.2.1"), "address shown");
            // Vendor (badge and name), the folder tree (dc1/ › core/), tag chips.
            assert!(d.sees("routeros") && d.sees("RoS") && d.sees("edge"));
            assert!(d.sees_part("dc1/") && d.sees_part("core/"));

            d.type_into(hosts::SEARCH_ID, "routeros", false)?;
            assert!(d.sees("1 of 3 hosts"));
            assert!(d.sees("edge-r1") && !d.sees("core-sw1"));

            // Every word must match some field: folder + name.
            d.send(Message::Hosts(hosts::Message::Search("dc1 SW2".into())));
            assert!(d.sees("1 of 3 hosts") && d.sees("core-sw2") && !d.sees("core-sw1"));
            d.send(Message::Hosts(hosts::Message::Search("10.0.0.".into())));
            assert!(d.sees("2 of 3 hosts"));
            d.send(Message::Hosts(hosts::Message::Search(
                "nothing-like-this".into(),
            )));
            assert!(d.sees("0 of 3 hosts") && !d.sees("edge-r1"));
            Ok(())
        },
    )
}

#[test]
fn approval_card_guard_approve_reject_and_edit_reclassified() -> Result<()> {
    ui_test(
        "approval_card_guard_approve_reject_and_edit_reclassified",
        |_| Ok(()),
        |child| {
            let moderate = "/interface disable ether2";
            let (class, _) = classify_action(&action(moderate));
            assert_eq!(class, "moderate", "test premise");
            let (class, _) = classify_action(&action("/system reboot"));
            assert_eq!(class, "dangerous", "test premise");

            let mut d = Driver::new(child)?;
            d.sign_in()?;
            let mut sub = d.rt.block_on(daemons::subscribe(&d.state.daemons))?;
            let mut copilot = child.peer(PeerRole::Copilotd)?;
            assert_eq!(copilot.role().as_deref(), Some("copilotd"));

            // 1. A pending request shows as a card, Approve inactive at first.
            let id = file(&mut copilot, &action(moderate))?;
            assert_eq!(d.next_event(&mut sub)?, BrokerEvent::ApprovalPending { id });
            // The status bar counts it (amber); the sidebar shows the count too.
            assert!(d.sees("1 pending approval"));
            d.click("Approvals (Ctrl+4)")?;
            assert!(d.sees(moderate), "the exact command is on the card");
            assert!(d.sees(&format!("Approval request #{id}")));
            assert!(d.sees("MODERATE"));
            assert!(d.sees("edge-r1 (routeros)") && d.sees("acme"));
            assert!(d.sees("keychain:edge-r1") && d.sees("ether2 goes down"));
            assert!(d.sees_part(&format!("copilotd (pid {}", copilot.pid())));
            assert!(d.sees("Approve (wait…)"));
            assert_eq!(d.click("Approve (wait…)")?, 0, "inactive before the delay");
            // The shortcut obeys the same guard.
            d.send(Message::Approval(gatehouse_ui::approval::Message::Approve));
            assert!(matches!(
                outcome(&mut copilot, id)?,
                ApprovalOutcome::Pending
            ));
            d.wait_guard();
            assert!(d.sees("Approve (Alt+A)"));
            assert_eq!(d.click("Approve (Alt+A)")?, 1);
            assert!(d.sees(&format!("Approved #{id}")));
            match outcome(&mut copilot, id)? {
                ApprovalOutcome::Approved(t) => {
                    assert_eq!(t.action.command, moderate);
                    assert_eq!(t.approver.role, PeerRole::Ui);
                    assert_eq!(t.requester.pid, copilot.pid() as i32);
                }
                other => bail!("expected a token, got {other:?}"),
            }
            d.next_event(&mut sub)?; // ApprovalDecided

            // 2. Reject with a reason.
            let id = file(&mut copilot, &action(moderate))?;
            d.next_event(&mut sub)?;
            assert!(d.sees(&format!("Approval request #{id}")));
            d.click("Reject (Alt+R)")?;
            d.type_into(
                gatehouse_ui::approval::REJECT_ID,
                "not during business hours",
                false,
            )?;
            d.click("Reject request")?;
            assert!(d.sees(&format!("Rejected #{id}")));
            match outcome(&mut copilot, id)? {
                ApprovalOutcome::Rejected { reason } => {
                    assert_eq!(reason, "not during business hours")
                }
                other => bail!("expected a rejection, got {other:?}"),
            }
            d.next_event(&mut sub)?;

            // 3. Edit a moderate command into a reboot: a new request, classified
            //    again, shown fresh, and dangerous needs a second confirmation.
            let id = file(&mut copilot, &action(moderate))?;
            d.next_event(&mut sub)?;
            d.click("Edit (Alt+E)")?;
            d.send(Message::Approval(
                gatehouse_ui::approval::Message::EditCommand("/system reboot".into()),
            ));
            d.click("Submit edit")?;
            let new_id = match outcome(&mut copilot, id)? {
                ApprovalOutcome::Edited { new_id } => new_id,
                other => bail!("expected an edit, got {other:?}"),
            };
            assert!(
                d.sees(&format!("Approval request #{new_id}")),
                "the new card"
            );
            assert!(d.sees("/system reboot") && d.sees("DANGEROUS"));
            assert!(d.sees_part("needs a second, deliberate confirmation"));
            assert_eq!(d.click("Approve (wait…)")?, 0);
            d.wait_guard();
            d.click("Approve (Alt+A)")?;
            // Not yet: the confirmation appears, itself inactive for a moment.
            assert!(matches!(
                outcome(&mut copilot, new_id)?,
                ApprovalOutcome::Pending
            ));
            let confirm = "Yes, run this DANGEROUS command on edge-r1 (Alt+Y)";
            assert!(d.sees(confirm));
            assert_eq!(d.click(confirm)?, 0, "the confirmation has its own delay");
            d.wait_guard();
            assert_eq!(d.click(confirm)?, 1);
            match outcome(&mut copilot, new_id)? {
                ApprovalOutcome::Approved(t) => assert_eq!(t.action.command, "/system reboot"),
                other => bail!("expected a token for the edit, got {other:?}"),
            }
            assert!(d.sees(&format!("Approved #{new_id}")));
            Ok(())
        },
    )
}
