//! Terminal tabs of the desktop app against a REAL broker, sessiond and lab
//! devices (simulated IOS / RouterOS over real SSH), as the `ui` role: a
//! shell opened through the Terminals screen shows the device's prompt on
//! the grid, typed keys reach the device and its output comes back, the tab
//! names host, user and ● REC, tabs switch and close with their shortcuts
//! (closing ends the session in sessiond), sign-out drops every tab; an
//! unknown host and a sessiond that is not running read as errors in the tab.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_ipc::sessiond::{Sessiond, SessiondRequest, SessiondResponse};
use gatehouse_tests::broker::Options;
use gatehouse_ui::app::{Message, Session, Tab};
use gatehouse_ui::daemons::daemon_call;
use gatehouse_ui::term_grid::GridEvent;
use gatehouse_ui::terminal::{self, TabState};
use iced::keyboard::{self, Key, Location, Modifiers, key};

mod ui_driver;
use ui_driver::{Driver, ui_test, ui_test_lab};

/// A key press as the keyboard subscription delivers it.
fn press(d: &mut Driver, key: Key, text: Option<&str>, modifiers: Modifiers) {
    d.send(Message::Key(keyboard::Event::KeyPressed {
        key: key.clone(),
        modified_key: key,
        physical_key: key::Physical::Unidentified(key::NativeCode::Unidentified),
        location: Location::Standard,
        modifiers,
        text: text.map(Into::into),
        repeat: false,
    }));
}

/// Types `s` key by key (`\n` is Enter).
fn type_keys(d: &mut Driver, s: &str) {
    for c in s.chars() {
        if c == '\n' {
            press(d, Key::Named(key::Named::Enter), None, Modifiers::empty());
        } else {
            let t = c.to_string();
            press(
                d,
                Key::Character(t.as_str().into()),
                Some(&t),
                Modifiers::empty(),
            );
        }
    }
}

fn grid_text(d: &Driver) -> String {
    d.state
        .terminals
        .current()
        .map(|t| t.grid.text())
        .unwrap_or_default()
}

/// The shown tab, for failure messages.
fn tab_dump(d: &Driver) -> String {
    match d.state.terminals.current() {
        Some(t) => format!(
            "tab {:?} {:?} notice {:?}, {} bytes fed; grid:\n{}",
            t.label(),
            t.state,
            t.notice,
            t.grid.fed(),
            t.grid.text()
        ),
        None => "no tab".into(),
    }
}

/// Whether the shown grid's last line is an IOS prompt of SW1.
fn at_prompt(s: &gatehouse_ui::app::State) -> bool {
    s.terminals.current().is_some_and(|t| {
        let text = t.grid.text();
        let last = text.lines().last().unwrap_or("").trim_end();
        last.ends_with("SW1>") || last.ends_with("SW1#")
    })
}

/// Pumps until the shown grid has `needle` and the prompt is back.
fn until_output(d: &mut Driver, needle: &str) -> Result<()> {
    d.pump(Duration::from_secs(30), |s| {
        s.terminals
            .current()
            .is_some_and(|t| t.grid.text().contains(needle))
            && at_prompt(s)
    })
    .with_context(|| format!("waiting for {needle:?}: {}", tab_dump(d)))
}

/// Pumps until the shown tab's state satisfies `ok`.
fn until_state(d: &mut Driver, ok: impl Fn(&TabState) -> bool) -> Result<()> {
    d.pump(Duration::from_secs(15), |s| {
        s.terminals.current().is_some_and(|t| ok(&t.state))
    })
    .with_context(|| format!("tab state: {}", tab_dump(d)))
}

/// The ids of sessiond's open sessions.
fn sessions(d: &Driver) -> Result<Vec<u64>> {
    match d.rt.block_on(daemon_call::<Sessiond>(
        &d.state.daemons,
        SessiondRequest::List,
    ))? {
        SessiondResponse::Sessions(v) => Ok(v.iter().map(|s| s.id).collect()),
        other => bail!("List: {other:?}"),
    }
}

/// Waits (running the app's watches) until sessiond's sessions satisfy `ok`.
fn wait_sessions(d: &Driver, ok: impl Fn(&[u64]) -> bool) -> Result<Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = sessions(d)?;
        if ok(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("sessiond still has sessions {s:?}");
        }
        d.rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
}

/// Runs `body` as the ui role, signed in, with the lab devices and a real
/// sessiond.
fn signed_in_with_lab(name: &str, body: impl FnOnce(Driver) -> Result<()>) -> Result<()> {
    ui_test_lab(
        name,
        Options {
            real_sessiond: true,
            ..Options::default()
        },
        |_| Ok(()),
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            body(d)
        },
    )
}

#[test]
fn terminal_tab_shows_the_lab_device_prompt_runs_a_command_and_closes() -> Result<()> {
    signed_in_with_lab(
        "terminal_tab_shows_the_lab_device_prompt_runs_a_command_and_closes",
        |mut d| {
            // Through the screen: the Terminals tab, the host field, Enter.
            d.click("Terminals (Ctrl+2)")?;
            assert!(d.sees_part("No terminal open"));
            d.type_into(terminal::HOST_ID, "sw1", true)?;
            assert_eq!(d.state.tab, Tab::Terminals);
            d.pump(Duration::from_secs(30), at_prompt)
                .with_context(|| format!("no prompt: {}", tab_dump(&d)))?;
            let t = d.state.terminals.current().context("tab")?;
            assert_eq!(t.state, TabState::Live);
            assert_eq!(t.user.as_deref(), Some("admin"));
            let recording = t.recording.clone().context("sessiond records shells")?;
            let session = t.session.context("session id")?;
            assert_eq!(t.label(), "sw1 · admin ● REC");
            assert!(d.sees("sw1 · admin"), "tab label shown");
            assert!(d.sees("● REC"), "the recording indicator");
            assert!(d.sees_part(&format!(
                "● REC: sessiond records this session ({recording})"
            )));
            // The grid's rows are on screen as text too.
            assert!(d.sees_part("SW1"), "prompt drawn");
            assert_eq!(wait_sessions(&d, |s| s.contains(&session))?, vec![session]);

            // A read-only command typed key by key; its output on the grid.
            type_keys(&mut d, "show version\n");
            until_output(&mut d, "Cisco IOS Software")?;
            let text = grid_text(&d);
            assert!(text.contains("show version"), "echoed: {text}");
            assert!(text.contains("SW1 uptime is"), "{text}");

            // A second tab (RouterOS); tabs switch with Ctrl+Shift+PgUp/PgDn.
            d.send(Message::Terminal(terminal::Message::Open {
                host: "r1".into(),
            }));
            d.pump(Duration::from_secs(30), |s| {
                s.terminals.current().is_some_and(|t| {
                    t.host == "r1" && t.state == TabState::Live && t.grid.text().contains("R1")
                })
            })
            .with_context(|| format!("r1: {}", tab_dump(&d)))?;
            assert_eq!(d.state.terminals.tabs.len(), 2);
            // The window's size reaches the device: at 6 rows RouterOS pages
            // a long print after 5 lines.
            let r1_tab = d.state.terminals.current().context("r1 tab")?.id;
            d.send(Message::Terminal(terminal::Message::Grid(
                r1_tab,
                GridEvent::Resize { cols: 100, rows: 6 },
            )));
            assert_eq!(
                d.state.terminals.current().map(|t| t.grid.size()),
                Some((100, 6))
            );
            type_keys(&mut d, "/system resource print\n");
            d.pump(Duration::from_secs(15), |s| {
                s.terminals
                    .current()
                    .is_some_and(|t| t.grid.text().contains("-- [Q quit|D dump|down]"))
            })
            .with_context(|| format!("paging: {}", tab_dump(&d)))?;
            type_keys(&mut d, "q");
            d.send(Message::Terminal(terminal::Message::Grid(
                r1_tab,
                GridEvent::Resize {
                    cols: 120,
                    rows: 36,
                },
            )));
            let ctrl_shift = Modifiers::CTRL | Modifiers::SHIFT;
            press(&mut d, Key::Named(key::Named::PageUp), None, ctrl_shift);
            assert_eq!(
                d.state.terminals.current().map(|t| t.host.as_str()),
                Some("sw1")
            );
            press(&mut d, Key::Named(key::Named::PageDown), None, ctrl_shift);
            assert_eq!(
                d.state.terminals.current().map(|t| t.host.as_str()),
                Some("r1")
            );
            let r1 = d
                .state
                .terminals
                .current()
                .and_then(|t| t.session)
                .context("r1")?;
            assert_eq!(wait_sessions(&d, |s| s.len() == 2)?.len(), 2);

            // Ctrl+Shift+W closes the shown tab, and sessiond ends its session.
            press(&mut d, Key::Character("W".into()), None, ctrl_shift);
            assert_eq!(d.state.terminals.tabs.len(), 1);
            assert_eq!(
                d.state.terminals.current().map(|t| t.host.as_str()),
                Some("sw1")
            );
            assert_eq!(wait_sessions(&d, |s| !s.contains(&r1))?, vec![session]);

            // Keys typed on another screen do not reach the shell.
            d.send(Message::Tab(Tab::Hosts));
            type_keys(&mut d, "zzz");
            d.send(Message::Tab(Tab::Terminals));
            type_keys(&mut d, "\n");
            d.pump(Duration::from_secs(15), |s| {
                s.terminals
                    .current()
                    .is_some_and(|t| t.grid.text().matches("SW1").count() >= 3)
            })?;
            assert!(!grid_text(&d).contains("zzz"), "{}", grid_text(&d));
            // What the device itself received (its byte log).
            let log = d.lab_log("sw1");
            assert!(gatehouse_tests::device_received(&log, "show version")?);
            assert!(!gatehouse_tests::device_received(&log, "zzz")?);

            // A paste (Ctrl+Shift+V hands the clipboard's text to the tab):
            // line breaks become Enter.
            let id = d.state.terminals.current().context("tab")?.id;
            d.send(Message::Terminal(terminal::Message::Grid(
                id,
                GridEvent::Paste("show clock\n".into()),
            )));
            until_output(&mut d, "UTC")?;

            // The device ends the session: the tab says so and stays readable.
            type_keys(&mut d, "exit\n");
            until_state(&mut d, |t| matches!(t, TabState::Ended(_)))?;
            assert!(d.sees("sw1 · admin (ended)"));
            assert!(d.sees_part("session ended"), "{}", tab_dump(&d));
            assert!(grid_text(&d).contains("UTC"), "the screen stays");
            assert_eq!(wait_sessions(&d, <[u64]>::is_empty)?, Vec::<u64>::new());
            // Keys for an ended session go nowhere (and do not panic).
            type_keys(&mut d, "show version\n");

            // Sign-out drops every tab (and sessiond closes the sessions).
            press(&mut d, Key::Character("Q".into()), None, ctrl_shift);
            press(
                &mut d,
                Key::Named(key::Named::Enter),
                None,
                Modifiers::empty(),
            );
            assert_eq!(d.state.session, Session::SignedOut);
            assert!(d.state.terminals.tabs.is_empty());
            Ok(())
        },
    )
}

#[test]
fn terminal_unknown_host_reads_as_an_error_in_its_tab() -> Result<()> {
    signed_in_with_lab(
        "terminal_unknown_host_reads_as_an_error_in_its_tab",
        |mut d| {
            d.send(Message::Terminal(terminal::Message::Open {
                host: "no-such-host".into(),
            }));
            assert_eq!(d.state.tab, Tab::Terminals);
            until_state(&mut d, |t| matches!(t, TabState::Failed(_)))?;
            let t = d.state.terminals.current().context("tab")?;
            let TabState::Failed(why) = &t.state else {
                bail!("{:?}", t.state);
            };
            assert!(why.contains("no host \"no-such-host\""), "{why}");
            assert!(d.sees_part("no-such-host (failed)"));
            assert!(d.sees_part("Could not open a shell to no-such-host: sessiond: no host"));
            // Typing into a failed tab sends nothing and breaks nothing.
            type_keys(&mut d, "ls\n");
            assert_eq!(grid_text(&d), "");
            Ok(())
        },
    )
}

#[test]
fn terminal_without_sessiond_reads_as_unavailable() -> Result<()> {
    ui_test(
        "terminal_without_sessiond_reads_as_unavailable",
        |_| Ok(()),
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            d.send(Message::Terminal(terminal::Message::Open {
                host: "sw1".into(),
            }));
            until_state(&mut d, |t| matches!(t, TabState::Failed(_)))?;
            assert!(d.sees_part("Could not open a shell to sw1: sessiond unavailable"));
            Ok(())
        },
    )
}
