//! The app's copilot panel and Procedures screen end to end, as the `ui`
//! role: the real broker, sessiond and copilotd, the lab devices over real
//! SSH (logging every byte they receive), and a scripted model served over
//! the real Chat Completions format by a local HTTP server started in the
//! ui-role test process. Clicks and typing go through the rendered widgets;
//! approvals are decided on the app's approval card.

mod ui_driver;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_ipc::broker::BrokerEvent;
use gatehouse_ipc::provider_settings::{Kind, ProviderSettings};
use gatehouse_labprovider::{ScriptedProvider, Turn};
use gatehouse_tests::broker::Options;
use gatehouse_ui::app::{Message, Tab};
use gatehouse_ui::copilot::{self, WAITING};
use gatehouse_ui::daemons;
use gatehouse_ui::procedures;
use iced::widget::markdown;
use serde_json::json;
use ui_driver::{Driver, ui_test_lab};

/// A turn may wait on copilotd, the model and a device.
const TURN: Duration = Duration::from_secs(60);

fn lab() -> Options {
    Options {
        real_sessiond: true,
        real_copilotd: true,
        ..Options::default()
    }
}

fn run(host: &str, command: &str) -> (String, serde_json::Value) {
    (
        "run_command".into(),
        json!({"host": host, "command": command}),
    )
}

/// Starts the scripted model in this process and points copilotd at it
/// (copilotd reads the provider settings at each turn).
fn scripted(d: &Driver, turns: Vec<Turn>) -> Result<(tokio::runtime::Runtime, ScriptedProvider)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let p = rt.block_on(ScriptedProvider::start(turns))?;
    gatehouse_ipc::provider_settings::save(
        &d.state.daemons.layout().root,
        &ProviderSettings {
            kind: Kind::Openai,
            endpoint: p.base_url_openai(),
            model: "scripted".into(),
            api_key_ref: None,
            prices: None,
        },
    )
    .map_err(anyhow::Error::msg)?;
    Ok((rt, p))
}

fn received(d: &Driver, needle: &str) -> Result<bool> {
    gatehouse_tests::device_received(&d.lab_log("r1"), needle)
}

/// Sends `message` from the panel's field with Enter.
fn say(d: &mut Driver, message: &str) -> Result<()> {
    d.type_into(copilot::INPUT_ID, message, true)?;
    if !d.state.copilot.thread.busy && d.state.copilot.autopilot.is_none() {
        bail!("the message was not sent: {:?}", d.state.copilot.error);
    }
    Ok(())
}

/// Waits for the broker's ApprovalPending event (handed to the app) and
/// returns the request id.
fn pending(
    d: &mut Driver,
    sub: &mut gatehouse_ipc::client::Client<gatehouse_ipc::broker::Broker>,
) -> Result<u64> {
    loop {
        if let BrokerEvent::ApprovalPending { id } = d.next_event(sub)? {
            return Ok(id);
        }
    }
}

#[test]
fn copilot_panel_streams_asks_on_the_card_and_shows_plans() -> Result<()> {
    ui_test_lab(
        "copilot_panel_streams_asks_on_the_card_and_shows_plans",
        lab(),
        |_| Ok(()),
        |child| {
            let approve_cmd = "/ip address add address=10.88.0.1/24 interface=ether2";
            let reject_cmd = "/ip address add address=10.89.0.1/24 interface=ether2";
            let plan_cmd = "/ip address add address=10.90.0.1/24 interface=ether3";
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            let mut sub = d.rt.block_on(daemons::subscribe(&d.state.daemons))?;
            d.click("Copilot (Ctrl+3)")?;
            assert_eq!(d.state.tab, Tab::Copilot);
            assert!(d.sees("Supervised"));
            // The panel's keys are listed in the command palette.
            d.send(Message::OpenPalette);
            assert!(d.sees("Copilot: next mode") && d.sees("Alt+M"));
            d.send(Message::Palette(gatehouse_ui::palette::Message::Close));
            assert_eq!(d.state.tab, Tab::Copilot);
            // Two organizations (acme, lab): the person picks one; its hosts follow.
            d.click("lab")?;
            assert_eq!(d.state.copilot.org_hosts, ["r1", "sw1"]);
            assert!(d.sees("r1") && d.sees("sw1"));

            // 0. No provider configured yet: a readable error in the panel.
            say(&mut d, "hello")?;
            d.pump(TURN, |s| !s.copilot.thread.busy)?;
            assert!(
                d.sees_part("no AI provider configured"),
                "{:?}",
                d.state.copilot.thread.entries
            );

            let (_rt, p) = scripted(
                &d,
                vec![
                    Turn::ToolCalls(vec![run("r1", approve_cmd)]),
                    Turn::Text("Added 10.88.0.1/24 on ether2 of r1.".into()),
                    Turn::ToolCalls(vec![run("r1", reject_cmd)]),
                    Turn::Text("Understood: 10.89.0.1 stays off r1.".into()),
                    Turn::ToolCalls(vec![run("r1", plan_cmd), run("r1", "/system reboot")]),
                    Turn::Text("That is the plan; tell me to carry it out.".into()),
                    Turn::Text("Autopilot: nothing to change.".into()),
                ],
            )?;

            // 1. A moderate change waits for the person, on the card; approved, it runs.
            say(&mut d, "add 10.88.0.1/24 on ether2 of r1")?;
            d.pump(TURN, |s| s.copilot.thread.tools().any(|t| t.waiting()))?;
            assert!(d.sees(WAITING), "the panel says where to decide");
            assert!(d.sees("[moderate]") && d.sees(&format!("r1: {approve_cmd}")));
            let id = pending(&mut d, &mut sub)?;
            d.click("Approvals (Ctrl+4)")?;
            assert!(d.sees(&format!("Approval request #{id}")) && d.sees(approve_cmd));
            assert!(!received(&d, "10.88.0.1")?, "nothing ran before approval");
            d.wait_guard();
            assert_eq!(d.click("Approve (Alt+A)")?, 1);
            d.click("Copilot (Ctrl+3)")?;
            d.pump(TURN, |s| !s.copilot.thread.busy)?;
            assert!(
                received(&d, "10.88.0.1")?,
                "the approved command reached r1"
            );
            assert!(
                d.sees("Added 10.88.0.1/24 on ether2 of r1."),
                "the answer streamed in"
            );
            assert!(!d.sees(WAITING));
            assert!(
                d.sees_part("model request(s)"),
                "usage at the end of the turn"
            );

            // 2. Rejected on the card: not run, and the panel says so.
            say(&mut d, "and 10.89.0.1/24 too")?;
            d.pump(TURN, |s| s.copilot.thread.tools().any(|t| t.waiting()))?;
            let id = pending(&mut d, &mut sub)?;
            d.click("Approvals (Ctrl+4)")?;
            assert!(d.sees(&format!("Approval request #{id}")) && d.sees(reject_cmd));
            d.click("Reject (Alt+R)")?;
            d.type_into(gatehouse_ui::approval::REJECT_ID, "not today", false)?;
            d.click("Reject request")?;
            d.click("Copilot (Ctrl+3)")?;
            d.pump(TURN, |s| !s.copilot.thread.busy)?;
            let last = d
                .state
                .copilot
                .thread
                .tools()
                .last()
                .context("a tool call")?;
            assert!(last.not_run(), "{last:?}");
            assert!(d.sees_part("Not run: a person rejected this (not today)"));
            assert!(d.sees("Understood: 10.89.0.1 stays off r1."));
            assert!(
                !received(&d, "10.89.0.1")?,
                "the rejected command never reached r1"
            );

            // 3. Planning: the proposed changes are listed with their classes, not run.
            d.send(Message::Copilot(copilot::Message::NextMode)); // Alt+M: Ask
            d.click("Planning")?;
            say(&mut d, "plan ether3 and a reboot")?;
            d.pump(TURN, |s| !s.copilot.thread.busy)?;
            assert!(d.sees_part("Plan (not run;"));
            assert!(d.sees("[moderate]") && d.sees("[dangerous]"));
            assert!(d.sees(&format!("r1: {plan_cmd}")) && d.sees("r1: /system reboot"));
            assert!(!received(&d, "10.90.0.1")? && !received(&d, "reboot")?);

            // 4. Autopilot: a person starts it (bounded to the ticked hosts),
            //    it is marked while on, and ends with its button.
            d.click("Default")?;
            d.click("Autonomous (Autopilot)")?;
            d.type_into(copilot::INPUT_ID, "anything to do?", true)?;
            assert!(
                d.state
                    .copilot
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("tick each host")),
                "{:?}",
                d.state.copilot.error
            );
            assert!(d.state.copilot.autopilot.is_none() && !d.state.copilot.thread.busy);
            // The copilot's host checkbox (the sidebar's tree shows r1 too).
            d.click_in_screen("r1")?;
            assert!(d.state.copilot.scope.contains("r1"));
            d.send(Message::Copilot(copilot::Message::Send));
            let grant = d
                .state
                .copilot
                .autopilot
                .as_ref()
                .context("Autopilot on")?
                .task
                .grant;
            assert!(d.sees_part("AUTOPILOT ON — 12 steps / 15 min left"));
            d.pump(TURN, |s| !s.copilot.thread.busy)?;
            assert!(d.sees("Autopilot: nothing to change."));
            d.click("End Autopilot")?;
            assert!(d.state.copilot.autopilot.is_none());
            assert!(!d.sees_part("AUTOPILOT ON"));
            assert!(d.sees_part(&format!("Autopilot ended (task {grant})")));

            // What the provider was sent: the rejection reason reached the model.
            let bodies: Vec<String> = p
                .received()
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            assert_eq!(bodies.len(), 7, "one request per model turn");
            assert!(bodies[3].contains("not today"), "{}", bodies[3]);
            Ok(())
        },
    )
}

#[test]
fn a_procedure_runs_from_its_screen_with_a_parameter_and_is_stored() -> Result<()> {
    ui_test_lab(
        "a_procedure_runs_from_its_screen_with_a_parameter_and_is_stored",
        lab(),
        |f| {
            let body = "# Interface check\n\n1. Show the addresses on `{{iface}}` of r1.\n";
            f.cli_ok(
                &[
                    "procedure",
                    "add",
                    "iface-check",
                    "--org",
                    "lab",
                    "--body",
                    "-",
                    "--param",
                    "iface:the interface",
                ],
                body,
            )?;
            Ok(())
        },
        |child| {
            let cmd = "/ip address print where interface=ether7";
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            let (_rt, p) = scripted(
                &d,
                vec![
                    Turn::ToolCalls(vec![run("r1", cmd)]),
                    Turn::Text("Runbook finished: ether7 checked.".into()),
                ],
            )?;
            d.click("Procedures (Ctrl+5)")?;
            d.click("iface-check · lab")?;
            let body = d
                .state
                .procedures
                .body
                .as_ref()
                .context("the body opened")?;
            assert_eq!(body.id, d.state.procedures.rows[0].id);
            assert!(
                matches!(body.items().first(), Some(markdown::Item::Heading(..))),
                "the body is parsed as markdown: {:?}",
                body.items()
            );
            assert!(d.sees("No runs yet."));

            // The parameter is required.
            d.click("Run")?;
            assert!(
                d.state
                    .procedures
                    .form_error
                    .as_deref()
                    .is_some_and(|e| e.contains("iface (the interface)")),
                "{:?}",
                d.state.procedures.form_error
            );
            d.send(Message::Procedures(procedures::Message::Param(
                "iface".into(),
                "ether7".into(),
            )));
            d.click("Run")?;
            d.pump(TURN, |s| {
                !s.procedures.run.busy && s.procedures.stored.is_some()
            })?;
            assert!(
                matches!(d.state.procedures.stored, Some(Ok(_))),
                "{:?}",
                d.state.procedures.stored
            );
            // The filled-in step reached the model; the read-only command ran.
            assert!(
                p.received()
                    .first()
                    .is_some_and(|b| String::from_utf8_lossy(b).contains("`ether7`")),
                "the task carries the argument"
            );
            assert!(received(&d, "interface=ether7")?);
            assert!(d.sees("Runbook finished: ether7 checked."));
            assert!(d.sees("[read-only]"));
            // The history lists the run with its outcome.
            assert_eq!(d.state.procedures.runs.len(), 1);
            assert_eq!(d.state.procedures.runs[0].outcome, "succeeded");
            assert!(d.sees("succeeded"));
            Ok(())
        },
    )
}
