//! The desktop app's security panel, audit log, recordings and diagrams,
//! driven through `iced_test` as the `ui` role against a REAL broker (and
//! the real sessiond with lab devices where a session is needed). Nothing
//! is mocked: the isolation audit is the real `gatehouse` CLI, the
//! recording is one sessiond made of a real SSH session to a lab device.

use anyhow::{Context, Result, bail};
use gatehouse_sandbox::status::{LayerState, Outcome};
use gatehouse_tests::broker::Options;
use gatehouse_ui::app::{Effect, Message, Tab};
use gatehouse_ui::audit_log::{self, Source};
use gatehouse_ui::security::AuditRun;
use gatehouse_ui::{diagrams, recordings, terminal};
use iced::keyboard::{self, Key, key::Named};
use iced_test::{selector, simulator};

mod ui_driver;
use ui_driver::{Driver, ui_test, ui_test_world};

fn layer(
    rows: &[gatehouse_sandbox::status::ProcessRow],
    role: &str,
    name: &str,
) -> Result<(String, LayerState)> {
    let r = rows
        .iter()
        .find(|r| r.role == role)
        .with_context(|| format!("no {role} row in {rows:#?}"))?;
    let l = r
        .layers()
        .into_iter()
        .find(|l| l.layer == name)
        .with_context(|| format!("no {name} layer"))?;
    Ok((l.value, l.state))
}

/// With `GATEHOUSE_UI_SNAPSHOTS=DIR`, saves what the screen shows as
/// `DIR/NAME.png` (1024x768) for a person to look at; otherwise nothing.
fn snapshot(d: &Driver, name: &str) -> Result<()> {
    let Some(dir) = std::env::var_os("GATEHOUSE_UI_SNAPSHOTS") else {
        return Ok(());
    };
    let mut ui = simulator(d.state.view());
    let snap = ui
        .snapshot(&d.state.theme())
        .map_err(|e| anyhow::anyhow!("snapshot: {e}"))?;
    let path = std::path::PathBuf::from(dir).join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    snap.matches_image(&path)
        .map_err(|e| anyhow::anyhow!("saving {}: {e}", path.display()))?;
    Ok(())
}

/// A key press, as the keyboard subscription hands it to the app.
fn key(k: Key, modifiers: keyboard::Modifiers) -> Message {
    Message::Key(keyboard::Event::KeyPressed {
        key: k.clone(),
        modified_key: k,
        physical_key: keyboard::key::Physical::Unidentified(
            keyboard::key::NativeCode::Unidentified,
        ),
        location: keyboard::Location::Standard,
        modifiers,
        text: None,
        repeat: false,
    })
}

/// `Seccomp:` of a process as the kernel shows it.
fn kernel_seccomp(pid: i32) -> Result<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(s.lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .context("Seccomp line")?
        .trim()
        .to_string())
}

#[test]
fn security_panel_judges_each_process_and_runs_the_isolation_audit() -> Result<()> {
    ui_test_world(
        "security_panel_judges_each_process_and_runs_the_isolation_audit",
        Options {
            real_sessiond: true,
            ..Options::default()
        },
        |f| f.start_sessiond(),
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            d.click(&Tab::Security.button_text())?;
            let g = d
                .state
                .security
                .gathered
                .clone()
                .context("the panel gathered nothing")?;
            // The broker reports PR_GET_DUMPABLE=0: shown in force.
            assert_eq!(
                layer(&g.rows, "broker", "dumpable")?,
                ("no".to_string(), LayerState::InForce)
            );
            // seccomp is green exactly when the kernel says filter mode.
            let broker = g
                .rows
                .iter()
                .find(|r| r.role == "broker")
                .context("broker")?;
            let (_, seccomp) = layer(&g.rows, "broker", "seccomp")?;
            assert_eq!(
                seccomp == LayerState::InForce,
                kernel_seccomp(broker.pid)? == "2",
                "broker seccomp judged {seccomp:?}"
            );
            // sessiond answered and is judged too.
            layer(&g.rows, "sessiond", "dumpable")?;
            // This app: its own row from prctl, judged truthfully (a test
            // process is dumpable: that must not be green).
            let me = std::process::id() as i32;
            let ui = g.rows.iter().find(|r| r.role == "ui").context("ui row")?;
            assert_eq!(ui.pid, me);
            let truth = gatehouse_sandbox::hardening::inspect_self().dumpable;
            let (value, state) = layer(&g.rows, "ui", "dumpable")?;
            match truth {
                Some(true) => assert_eq!((value.as_str(), state), ("yes", LayerState::Off)),
                Some(false) => assert_eq!(state, LayerState::InForce),
                None => assert_eq!(state, LayerState::Unknown),
            }
            // The ui's Landlock state is not reported: never green.
            assert_ne!(layer(&g.rows, "ui", "landlock")?.1, LayerState::InForce);
            assert!(d.sees_part(&format!("gatehouse-ui (this app) — role ui, pid {me}")));
            assert!(d.sees_part(&format!(
                "gatehouse-broker — role broker, pid {}",
                broker.pid
            )));
            assert!(d.sees_part("gatehouse-sessiond — role sessiond"));
            // copilotd is not running in this test: said so, not drawn as a process.
            assert!(g.rows.iter().all(|r| r.role != "copilotd"));
            assert!(d.sees_part("copilotd: not running or unreachable"));
            // The keychain backend of this fixture (keyutils) carries a warning: not green.
            assert!(d.sees_part("keychain backend:"));

            // The isolation audit, through the real CLI beside the app.
            // By its key (I), as a keyboard user would.
            d.send(key(
                Key::Character("i".into()),
                keyboard::Modifiers::empty(),
            ));
            let checks = match &d.state.security.audit {
                AuditRun::Done(c) => c.clone(),
                other => bail!("audit: {other:?}"),
            };
            let dumpable = checks
                .iter()
                .find(|c| c.check == "broker not dumpable")
                .with_context(|| format!("{checks:#?}"))?;
            assert_eq!(dumpable.outcome, Outcome::Pass, "{dumpable:?}");
            assert!(
                checks.iter().any(|c| c.check == "seal/open round trip"),
                "signed in: the canaries ran: {checks:#?}"
            );
            assert!(d.sees("broker not dumpable"));
            assert!(d.sees_part("checks:"));
            snapshot(&d, "security")?;
            Ok(())
        },
    )
}

#[test]
fn audit_log_and_playback_of_a_real_session() -> Result<()> {
    ui_test_world(
        "audit_log_and_playback_of_a_real_session",
        Options {
            real_sessiond: true,
            ..Options::default()
        },
        |f| {
            f.start_sessiond()?;
            f.cli_ok(&["lab", "up"], "")?;
            f.cli_ok(
                &[
                    "host",
                    "add",
                    "edge-r9",
                    "--org",
                    "acme",
                    "--address",
                    "192.0.2.9",
                    "--vendor",
                    "routeros",
                ],
                "",
            )?;
            let out = f.cli_ok(
                &["exec", "r1", "--org", "lab", "--", "/system identity print"],
                "",
            )?;
            anyhow::ensure!(out.contains("R1"), "{out}");
            Ok(())
        },
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;

            // ---- audit log
            d.click(&Tab::Audit.button_text())?;
            let rows = d
                .state
                .audit
                .loaded
                .as_ref()
                .context("audit log not loaded")?
                .rows
                .clone();
            let total = rows.len();
            assert!(
                rows.windows(2).all(|w| w[0].time_ms >= w[1].time_ms),
                "newest first"
            );
            let add = rows
                .iter()
                .find(|r| r.source == Source::Records && r.target == "host edge-r9")
                .with_context(|| format!("no host add row: {rows:#?}"))?;
            assert_eq!(add.action, "create", "{add:?}");
            let release = rows
                .iter()
                .find(|r| r.source == Source::Credentials && !r.refused)
                .with_context(|| format!("no credential release: {rows:#?}"))?;
            assert_eq!(release.result, "released");
            assert!(release.actor.starts_with("sessiond pid"), "{release:?}");
            assert!(
                rows.iter()
                    .any(|r| r.source == Source::Sessions && r.target.starts_with("r1")),
                "the exec's session row: {rows:#?}"
            );
            // Organizations by name, never by id.
            assert!(
                rows.iter()
                    .any(|r| r.source == Source::Sessions && r.target == "r1 (lab)"),
                "the session row names its organization: {rows:#?}"
            );
            assert!(
                add.result.ends_with("(org acme)"),
                "the record row names its organization: {add:?}"
            );
            assert!(
                rows.iter().all(|r| !r.result.contains("org:")),
                "no organization id: {rows:#?}"
            );
            assert!(d.sees("host edge-r9"));
            snapshot(&d, "audit-log")?;

            // The host list's columns, from the same session log: r1 was
            // reached (the exec ran); edge-r9 never was.
            let r1 = d
                .state
                .hosts
                .rows
                .iter()
                .find(|r| r.name == "r1")
                .context("r1 not listed")?
                .clone();
            let seen = d.state.hosts.seen_of(&r1).context("r1 not seen")?;
            assert!(seen.last_connected.is_some(), "{seen:?}");
            assert!(seen.reach.as_ref().is_some_and(|x| x.reachable), "{seen:?}");
            let edge = d
                .state
                .hosts
                .rows
                .iter()
                .find(|r| r.name == "edge-r9")
                .context("edge-r9 not listed")?
                .clone();
            assert!(d.state.hosts.seen_of(&edge).is_none());
            d.click(&Tab::Hosts.button_text())?;
            assert!(d.sees_part("✓ reachable"), "the reachability column");
            d.click(&Tab::Audit.button_text())?;

            // Ctrl+F on this tab focuses the log's filter, not the hosts search.
            let effects = d
                .state
                .update(key(Key::Character("f".into()), keyboard::Modifiers::CTRL));
            assert!(
                matches!(effects.as_slice(), [Effect::Focus(id)] if *id == audit_log::FILTER_ID),
                "{effects:?}"
            );
            assert_eq!(d.state.tab, Tab::Audit);

            // The filter narrows: by source, by words, to refusals.
            d.type_into(audit_log::FILTER_ID, "source:credentials", false)?;
            let creds = d.state.audit.visible().len();
            assert!(creds >= 1 && creds < total, "{creds} of {total}");
            assert!(!d.sees("host edge-r9"));
            d.send(Message::Audit(audit_log::Message::Filter("edge-r9".into())));
            let v = d.state.audit.visible();
            assert!(!v.is_empty() && v.iter().all(|r| r.target.contains("edge-r9")));
            assert!(d.sees("host edge-r9"));
            d.send(Message::Audit(audit_log::Message::Filter(String::new())));
            d.send(Message::Audit(audit_log::Message::RefusedOnly(true)));
            assert!(d.state.audit.visible().iter().all(|r| r.refused));
            assert!(!d.sees("host edge-r9"));

            // ---- the recording of that session
            d.click(&Tab::Recordings.button_text())?;
            let listed = d
                .state
                .recordings
                .listing
                .as_ref()
                .context("no listing")?
                .rows
                .iter()
                .find(|r| r.host == "r1")
                .context("no recording of r1")?
                .clone();
            d.click(&format!("Play {}", &listed.id[..12]))?;
            if let Some(e) = &d.state.recordings.error {
                bail!("open: {e}");
            }
            let duration_us = d
                .state
                .recordings
                .playback
                .as_ref()
                .context("no playback")?
                .rec
                .duration_us;
            // At 0:00 nothing the device sent is on screen yet.
            assert!(!d.state.recordings.screen.text().contains("R1"));
            // Seek to the end: the device's answer is on screen.
            d.send(Message::Recordings(recordings::Message::Seek(
                (duration_us / 1000 + 1) as f64,
            )));
            assert!(
                d.state.recordings.screen.text().contains("R1"),
                "{}",
                d.state.recordings.screen.text()
            );
            assert!(d.sees_part("R1"));
            snapshot(&d, "recording")?;
            // Back to the start: a fresh screen, replayed.
            d.send(Message::Recordings(recordings::Message::Seek(0.0)));
            assert!(!d.state.recordings.screen.text().contains("R1"));
            // The same by keyboard: End, then Home.
            d.send(key(Key::Named(Named::End), keyboard::Modifiers::empty()));
            assert!(d.state.recordings.screen.text().contains("R1"));
            d.send(key(Key::Named(Named::Home), keyboard::Modifiers::empty()));
            assert!(!d.state.recordings.screen.text().contains("R1"));
            // Play at 8x with the clock: the output arrives by itself.
            d.click("8x")?;
            d.click("Play")?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !d.state.recordings.screen.text().contains("R1") {
                if std::time::Instant::now() > deadline {
                    bail!("playback did not reach the output");
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
                d.tick();
            }

            // Sign-out drops the decrypted recording and the logs shown.
            d.click("Sign out (Ctrl+Shift+Q)")?;
            d.click("Sign out and purge (Enter)")?;
            assert!(d.state.recordings.playback.is_none());
            assert!(d.state.recordings.screen.text().trim().is_empty());
            assert!(d.state.audit.loaded.is_none());

            // A recording altered on disk is refused: nothing of it is shown.
            d.sign_in()?;
            // Still on the recordings tab: signing in lists them again.
            assert_eq!(d.state.tab, Tab::Recordings);
            let path = gatehouse_recordings::recording_path(
                &gatehouse_recordings::recordings_dir(d.state.daemons.layout()),
                &listed.id,
            );
            let mut bytes = std::fs::read(&path)?;
            let at = bytes.len() - 20;
            bytes[at] ^= 0x01;
            std::fs::write(&path, &bytes)?;
            d.click(&format!("Play {}", &listed.id[..12]))?;
            assert!(d.state.recordings.playback.is_none());
            let e = d
                .state
                .recordings
                .error
                .clone()
                .context("a tampered recording opened")?;
            assert!(d.sees_part(&e), "the reason is on screen: {e}");
            assert!(!d.sees_part("R1"));
            Ok(())
        },
    )
}

#[test]
fn diagram_node_linked_to_a_host_opens_its_terminal() -> Result<()> {
    ui_test(
        "diagram_node_linked_to_a_host_opens_its_terminal",
        |f| {
            f.cli_ok(
                &[
                    "host",
                    "add",
                    "edge-r1",
                    "--org",
                    "acme",
                    "--address",
                    "192.0.2.1",
                    "--vendor",
                    "routeros",
                ],
                "",
            )?;
            f.cli_ok(
                &[
                    "diagram",
                    "add",
                    "lab-net",
                    "--org",
                    "acme",
                    "--node",
                    "a=edge-r1",
                    "--node",
                    "b=Internet",
                    "--link",
                    "a,b,uplink",
                ],
                "",
            )?;
            Ok(())
        },
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            d.click(&Tab::Diagrams.button_text())?;
            if let Some(e) = &d.state.diagrams.error {
                bail!("diagrams: {e}");
            }
            let host_id = d
                .state
                .hosts
                .rows
                .iter()
                .find(|h| h.name == "edge-r1")
                .context("host edge-r1")?
                .id
                .clone();
            assert!(d.sees("lab-net"));
            // The host node shows the host's name, not its id.
            assert_eq!(d.state.diagrams.node_text(0).as_deref(), Some("edge-r1"));
            assert_eq!(d.state.diagrams.node_text(1).as_deref(), Some("Internet"));
            assert!(d.sees("edge-r1"));

            // Click on the canvas where each node is drawn.
            let click_node = |d: &mut Driver, i: usize| -> Result<Vec<Message>> {
                let mut ui = simulator(d.state.view());
                let bounds = ui
                    .find(selector::id(diagrams::CANVAS_ID))
                    .map_err(|e| anyhow::anyhow!("canvas: {e}"))?
                    .bounds();
                let p = diagrams::node_positions(2, bounds.size())[i];
                ui.point_at(iced::Point::new(bounds.x + p.x, bounds.y + p.y));
                ui.simulate(iced_test::simulator::click());
                Ok(ui.into_messages().collect())
            };
            let opens = |effects: &[Effect]| -> Vec<String> {
                effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Then(m) => match m.as_ref() {
                            Message::Terminal(terminal::Message::Open { host }) => {
                                Some(host.clone())
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect()
            };
            let msgs = click_node(&mut d, 0)?;
            assert_eq!(msgs.len(), 1, "{msgs:?}");
            let mut effects = Vec::new();
            for m in msgs {
                effects.extend(d.state.update(m));
            }
            assert_eq!(opens(&effects), vec![host_id.clone()]);

            // The label node opens nothing and says why.
            let mut effects = Vec::new();
            for m in click_node(&mut d, 1)? {
                effects.extend(d.state.update(m));
            }
            assert!(opens(&effects).is_empty());
            assert!(d.sees_part("is a label, not a host"));
            snapshot(&d, "diagram")?;

            // Empty canvas space: nothing.
            let mut ui = simulator(d.state.view());
            let b = ui
                .find(selector::id(diagrams::CANVAS_ID))
                .map_err(|e| anyhow::anyhow!("canvas: {e}"))?
                .bounds();
            ui.point_at(iced::Point::new(b.x + 3.0, b.y + 3.0));
            ui.simulate(iced_test::simulator::click());
            assert_eq!(ui.into_messages().count(), 0);

            // The keyboard: Tab to the first node, Enter opens it.
            d.state.diagrams.focus = None;
            assert!(
                d.state
                    .update(key(Key::Named(Named::Tab), keyboard::Modifiers::empty()))
                    .is_empty()
            );
            assert_eq!(d.state.diagrams.focus, Some(0));
            let effects = d
                .state
                .update(key(Key::Named(Named::Enter), keyboard::Modifiers::empty()));
            assert_eq!(opens(&effects), vec![host_id]);
            Ok(())
        },
    )
}
