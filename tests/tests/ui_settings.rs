//! The Settings screen of the desktop app, driven through its State /
//! update / view against the real broker (the ui role: see ui_app.rs), and
//! read back with the real CLI: what the screen sets is what `gatehouse
//! settings get` prints, what the CLI set is what the screen and the app
//! start from, and sign-out from the app honours what the person chose it
//! clears (the recordings directory, the terminal scrollback). One test
//! presses the theme key in the REAL window (Xvfb, xdotool): kept out of
//! ui_window.rs so it never runs beside the approval guard's window test.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_records::settings::Key;
use gatehouse_tests::broker::UiChild;
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::xvfb::Xvfb;
use gatehouse_tests::{find_binary, install};
use gatehouse_ui::app::{Message, Session, Tab};
use gatehouse_ui::{settings_screen, terminal};

mod ui_driver;
use ui_driver::{Driver, ui_test};

/// `gatehouse settings get KEY`, run beside the app.
fn cli_get(child: &UiChild, key: &str) -> Result<String> {
    let out = Command::new(child.install.join("gatehouse"))
        .args(["--profile", &child.profile, "settings", "get", key])
        .output()
        .context("running gatehouse settings get")?;
    if !out.status.success() {
        bail!(
            "settings get {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn the_settings_screen_saves_the_record_the_cli_reads_and_sign_out_honours_it() -> Result<()> {
    ui_test(
        "the_settings_screen_saves_the_record_the_cli_reads_and_sign_out_honours_it",
        |f| {
            // Set with the CLI before the app starts: the app starts there.
            f.cli_ok(&["settings", "set", "copilot.trust", "manual"], "")?;
            f.cli_ok(&["settings", "set", "theme", "dark"], "")?;
            Ok(())
        },
        |child| {
            let mut d = Driver::new(child)?;
            d.sign_in()?;
            assert_eq!(
                d.state.copilot.trust,
                gatehouse_ipc::copilotd::Trust::Manual,
                "the copilot starts from the settings' trust"
            );
            assert!(d.state.dark, "the theme follows the settings");

            // The screen, every option explained.
            d.click(&Tab::Settings.button_text())?;
            assert_eq!(d.state.tab, Tab::Settings);
            for k in Key::ALL {
                assert!(d.sees(k.explain()), "{k} is not explained on screen");
            }

            // Theme through the screen → the CLI reads it.
            d.click("light")?;
            assert!(!d.state.dark);
            assert_eq!(cli_get(child, "theme")?, "light");
            // The theme toggle saves too.
            d.send(Message::ToggleTheme);
            assert_eq!(cli_get(child, "theme")?, "dark");

            d.click("best")?;
            assert_eq!(cli_get(child, "ai.default-tier")?, "best");
            d.click("planning")?;
            assert_eq!(cli_get(child, "copilot.mode")?, "planning");

            // What sign-out clears: recordings on, scrollback off (the
            // checkboxes are below the fold: their messages are sent as a
            // click on them sends them).
            for label in [
                "Decrypted cache (always)",
                "Local records",
                "Recordings",
                "Terminal scrollback",
                "Conversation history",
                "The remembered device (always, today)",
            ] {
                assert!(d.sees(label), "no {label:?} option");
            }
            let set = |key: Key, value: &str| {
                Message::Settings(settings_screen::Message::Set {
                    key,
                    org: None,
                    value: value.into(),
                })
            };
            d.send(set(Key::ClearsRecordings, "true"));
            assert_eq!(cli_get(child, "sign-out.recordings")?, "true");
            d.send(set(Key::ClearsScrollback, "false"));
            assert_eq!(cli_get(child, "sign-out.scrollback")?, "false");
            // The options that cannot be turned off are refused on screen.
            d.send(set(Key::ClearsDecryptedCache, "false"));
            assert!(d.sees_part("cannot be turned off"));
            assert_eq!(cli_get(child, "sign-out.decrypted-cache")?, "true");
            // A refused value is shown at its option and never written.
            d.send(Message::Settings(settings_screen::Message::Set {
                key: Key::FontSize,
                org: None,
                value: "99".into(),
            }));
            assert!(d.sees_part("is not a valid value"));
            assert_eq!(cli_get(child, "font-size")?, "14");

            // A recording file and a terminal tab, then sign-out from the app.
            let layout = d.state.daemons.layout().clone();
            let recs = gatehouse_recordings::recordings_dir(&layout);
            std::fs::create_dir_all(&recs)?;
            let rec = recs.join("test-recording.cast");
            std::fs::write(&rec, b"not a real recording")?;
            // No sessiond runs here: the tab fails to open, its screen stays.
            d.send(Message::Terminal(terminal::Message::Open {
                host: "no-such-host".into(),
            }));
            assert_eq!(d.state.terminals.tabs.len(), 1);
            d.click("Sign out (Ctrl+Shift+Q)")?;
            d.click("Sign out and purge (Enter)")?;
            assert_eq!(d.state.session, Session::SignedOut);
            assert!(!rec.exists(), "sign-out.recordings was not honoured");
            assert!(
                d.sees_part("recordings: deleted 1 file(s)"),
                "the sign-out note says what was cleared"
            );
            assert_eq!(
                d.state.terminals.tabs.len(),
                1,
                "sign-out.scrollback off: the ended tab stays readable"
            );
            assert!(
                d.state.settings.current == Default::default(),
                "the settings screen forgot the person's settings"
            );
            Ok(())
        },
    )
}

/// The theme key in the real window saves the person's settings record:
/// `gatehouse settings get theme` shows what the window set.
#[test]
fn the_theme_key_saves_the_setting_the_cli_reads() -> Result<()> {
    let x = Xvfb::start()?;
    let f = BrokerFixture::start(Options::default())?;
    install(&f.scratch, &find_binary("gatehouse-ui")?, "gatehouse-ui")?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        "window-test-passphrase\n",
    )?;
    f.cli_ok(&["settings", "set", "theme", "light"], "")?;
    let (mut app, win) = x.open_app(&f, &[])?;
    x.focus(&win)?;
    // Let it load (status, settings).
    std::thread::sleep(Duration::from_secs(3));
    x.keys(&["ctrl+shift+l"], 12)?;
    let theme = || -> Result<String> {
        Ok(f.cli_ok(&["settings", "get", "theme"], "")?
            .trim()
            .to_string())
    };
    gatehouse_tests::proc::wait_until("the theme saved", Duration::from_secs(20), || {
        Ok(theme()? == "dark")
    })?;
    // And back: each press is one saved change.
    x.keys(&["ctrl+shift+l"], 12)?;
    gatehouse_tests::proc::wait_until("the theme saved again", Duration::from_secs(20), || {
        Ok(theme()? == "light")
    })?;
    if let Some(s) = app.has_exited()? {
        bail!("the app exited during the test: {s}");
    }
    Ok(())
}
