//! Smoke test of the real `gatehouse-ui` window: started by `gatehouse ui`
//! under Xvfb (software rendering, no GPU), signed in, with an approval
//! request waiting; it saves its first rendered frame (`--screenshot`) and
//! exits; the frame must not be blank.
//!
//! Needs `Xvfb` (scripts/deps installs xvfb and xauth): without it the test
//! fails and says so; nothing is skipped.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{Action, BrokerRequest};
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::xvfb::Xvfb;
use gatehouse_tests::{ChildGuard, find_binary, install};

/// Distinct RGB colours of a binary PPM (P6) image, and its size.
fn ppm_colours(bytes: &[u8]) -> Result<(usize, usize, usize)> {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
            i += 1;
        }
        if start == i {
            bail!("truncated PPM header");
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    if fields[0] != "P6" || fields[3] != "255" {
        bail!("not an 8-bit P6 PPM: {fields:?}");
    }
    let (w, h): (usize, usize) = (fields[1].parse()?, fields[2].parse()?);
    let px = &bytes[i + 1..];
    if px.len() != w * h * 3 {
        bail!("PPM has {} pixel bytes, expected {}", px.len(), w * h * 3);
    }
    let colours: std::collections::HashSet<&[u8]> = px.chunks_exact(3).collect();
    Ok((w, h, colours.len()))
}

#[test]
fn real_window_under_xvfb_renders_a_non_blank_frame() -> Result<()> {
    let xvfb = Xvfb::start()?;
    let display = xvfb.display.clone();
    let f = BrokerFixture::start(Options::default())?;
    // The real app in place of the test peer under the ui name.
    install(&f.scratch, &find_binary("gatehouse-ui")?, "gatehouse-ui")?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        "smoke-test-passphrase\n",
    )?;
    f.cli_ok(&["org", "create", "acme"], "")?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    copilot.ok(&BrokerRequest::RequestApproval {
        action: Action {
            host: "edge-r1".into(),
            vendor: "routeros".into(),
            org: "acme".into(),
            credential: Some("keychain:edge-r1".into()),
            command: "/interface disable ether2".into(),
            expected_effect: "ether2 goes down".into(),
        },
    })?;

    let dir = f.scratch.user_dir("shots")?;
    let shot = dir.join("first-frame.ppm");
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args(["--profile", &f.profile, "ui", "--screenshot"])
        .arg(&shot)
        .env("DISPLAY", &display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut c)?;
    let status = g
        .wait_timeout(Duration::from_secs(90))
        .context("gatehouse ui did not exit within 90 s")?;
    let mut err = String::new();
    if let Some(mut e) = g.child_mut().stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        bail!("gatehouse ui --screenshot failed ({status}): {err}");
    }
    let bytes =
        std::fs::read(&shot).with_context(|| format!("no screenshot at {shot:?}: {err}"))?;
    let (w, h, colours) = ppm_colours(&bytes)?;
    println!("first frame {w}x{h}, {colours} distinct colours");
    assert!(w >= 800 && h >= 600, "window size {w}x{h}");
    assert!(
        colours >= 64,
        "the frame looks blank: only {colours} distinct colours"
    );
    if let Ok(keep) = std::env::var("GATEHOUSE_UI_SCREENSHOT") {
        std::fs::copy(&shot, keep)?;
    }
    Ok(())
}

/// The README's run command on a desktop: `gatehouse demo` sets up the lab
/// in a throwaway profile and opens the real app on it, a change waiting
/// for approval; `--screenshot` closes the window once it has loaded.
#[test]
fn demo_on_a_desktop_opens_the_app_against_the_lab() -> Result<()> {
    let xvfb = Xvfb::start()?;
    let display = xvfb.display.clone();
    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("demo.ppm");
    let mut c = Command::new(find_binary("gatehouse")?);
    c.args(["demo", "--screenshot"])
        .arg(&shot)
        .env("DISPLAY", &display)
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut c)?;
    let status = g
        .wait_timeout(Duration::from_secs(240))
        .context("gatehouse demo did not finish within 240 s")?;
    let read = |s: Option<&mut dyn std::io::Read>| {
        let mut t = String::new();
        if let Some(s) = s {
            let _ = s.read_to_string(&mut t);
        }
        t
    };
    let out = read(g.child_mut().stdout.as_mut().map(|s| s as _));
    let err = read(g.child_mut().stderr.as_mut().map(|s| s as _));
    if !status.success() {
        bail!("gatehouse demo failed ({status}):\n{out}\n{err}");
    }
    assert!(
        !out.contains("headless walk-through"),
        "a display was there: {out}"
    );
    assert!(out.contains("$ gatehouse lab up") && out.contains("Opening the desktop app"));
    // The change filed in the background waited for a person (nobody
    // approved it in the window).
    assert!(out.contains("waiting for a person"), "{out}");
    let (w, h, colours) = ppm_colours(&std::fs::read(&shot)?)?;
    println!("demo window {w}x{h}, {colours} distinct colours");
    assert!(w >= 800 && h >= 600 && colours >= 64, "blank window");
    if let Ok(keep) = std::env::var("GATEHOUSE_DEMO_SCREENSHOT") {
        std::fs::copy(&shot, keep)?;
    }
    // Everything it started is gone with its profile.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("gatehouse-demo-")
        })
        .collect();
    assert!(leftovers.is_empty(), "demo profile left behind");
    Ok(())
}

/// The README's run command without a display: it says so and walks
/// through the same world in the terminal, every step a real command.
#[test]
fn demo_without_a_display_says_so_and_walks_through_headless() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = Command::new(find_binary("gatehouse")?)
        .arg("demo")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "gatehouse demo failed ({}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        text.contains("No display (DISPLAY is not set)")
            && text.contains("running the headless walk-through instead"),
        "{text}"
    );
    assert!(!text.contains("Opening the desktop app"));
    for step in [
        "$ gatehouse approvals approve",
        "AUTOPILOT approved",
        "session ended: closed by sign-out",
        "every key operation fails",
        "$ gatehouse down",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    Ok(())
}
