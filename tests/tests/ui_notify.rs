//! Desktop notifications, for real: a private D-Bus session bus
//! (dbus-daemon, as the test user), this test owning
//! `org.freedesktop.Notifications` on it with a zbus interface that records
//! every `Notify`, the real `gatehouse ui` under Xvfb, and change requests
//! filed with the real CLI (`gatehouse exec r1 --org lab --request`) against
//! the real sessiond and lab device.
//!
//! A request that arrives while the window has no keyboard focus gives
//! exactly one notification naming the host, the organization (by name) and
//! the class, never the command; one that arrives while the window has
//! focus gives none. Needs Xvfb, xdotool and dbus-daemon (scripts/deps).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_tests::ChildGuard;
use gatehouse_tests::broker::BrokerFixture;
use gatehouse_tests::keychain_env::start_session_bus;
use gatehouse_tests::proc::wait_until;
use gatehouse_tests::xvfb::lab_window_profile;

/// One recorded `Notify` call: (app name, summary, body).
type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

/// The notification service: records what it is asked to show.
struct Recorder(Calls);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut calls = self.0.lock().expect("calls");
        calls.push((app_name, summary, body));
        calls.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "recorder".into(),
            "gatehouse-tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

/// Distinct commands (moderate: each needs a person), and what of each the
/// notification must never carry.
const CHANGES: [&str; 3] = [
    "/ip address add address=192.0.2.71/24 interface=ether2",
    "/ip address add address=192.0.2.72/24 interface=ether2",
    "/ip address add address=192.0.2.73/24 interface=ether2",
];

/// The ids of the pending requests.
fn pending(f: &BrokerFixture) -> Result<Vec<u64>> {
    let list: serde_json::Value =
        serde_json::from_str(&f.cli_ok(&["approvals", "list", "--json"], "")?)?;
    Ok(list
        .as_array()
        .context("approvals list --json is not an array")?
        .iter()
        .filter(|v| v["state"] == "Pending")
        .filter_map(|v| v["id"].as_u64())
        .collect())
}

/// Files change `n` for approval; waits until the broker lists it pending.
/// The requester (killed on drop) and the request's id.
fn file(f: &BrokerFixture, n: usize) -> Result<(ChildGuard, u64)> {
    let mut req = f.command(&f.install_dir().join("gatehouse"));
    req.args(["--profile", &f.profile])
        .args(["exec", "r1", "--org", "lab", "--request", "--"])
        .arg(CHANGES[n])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = ChildGuard::spawn(&mut req)?;
    let mut ids = Vec::new();
    wait_until("the request to be pending", Duration::from_secs(30), || {
        ids = pending(f)?;
        Ok(ids.len() == n + 1)
    })?;
    Ok((child, ids.into_iter().max().context("no request")?))
}

#[test]
fn a_request_arriving_while_the_window_is_unfocused_gives_exactly_one_notification() -> Result<()> {
    let (x, mut f) = lab_window_profile("notify-test-passphrase")?;
    let result = (|| {
        f.start_sessiond()?;
        let dir = f.scratch.user_dir("notify-bus")?;
        let (_bus, address, _) = start_session_bus(&f.scratch, &dir, true)?;
        let calls: Calls = Arc::default();
        let _service = zbus::blocking::connection::Builder::address(address.as_str())?
            .name("org.freedesktop.Notifications")?
            .serve_at("/org/freedesktop/Notifications", Recorder(calls.clone()))?
            .build()
            .context("owning org.freedesktop.Notifications on the private bus")?;

        let (mut app, win) = x.open_app(&f, &[("DBUS_SESSION_BUS_ADDRESS", &address)])?;
        // Never focused: let it load (status, lists), then file a change.
        std::thread::sleep(Duration::from_secs(3));
        let (_first, first) = file(&f, 0)?;
        wait_until("a notification", Duration::from_secs(30), || {
            Ok(!calls.lock().expect("calls").is_empty())
        })?;

        // The window takes focus; a second request arrives while it has it.
        x.focus(&win)?;
        std::thread::sleep(Duration::from_secs(2));
        let (_second, _) = file(&f, 1)?;
        // Time for the app to take the event in while still focused, then
        // the focus goes away and a third request arrives: its notification
        // shows the app handled the second request's event before.
        std::thread::sleep(Duration::from_secs(3));
        x.unfocus()?;
        std::thread::sleep(Duration::from_secs(2));
        let (_third, third) = file(&f, 2)?;
        wait_until("the third notification", Duration::from_secs(30), || {
            Ok(calls.lock().expect("calls").len() >= 2)
        })?;
        // Anything further (a duplicate) would come with the next list.
        std::thread::sleep(Duration::from_secs(2));

        let calls = calls.lock().expect("calls").clone();
        assert_eq!(
            calls.len(),
            2,
            "one notification per request that arrived unfocused (the first and the third), none for the one that arrived focused: {calls:#?}"
        );
        for (i, (app_name, summary, body)) in calls.iter().enumerate() {
            assert_eq!(app_name, "Gatehouse");
            assert!(
                summary.contains("r1") && summary.contains("moderate"),
                "summary {i}: {summary}"
            );
            assert!(
                body.contains("host r1") && body.contains("organization lab"),
                "body {i} names the host and the organization by name: {body}"
            );
            assert!(
                body.contains("moderate"),
                "body {i} names the class: {body}"
            );
            for c in CHANGES {
                let mark = c.split_whitespace().nth(2).expect("address");
                assert!(
                    !summary.contains(mark) && !body.contains(mark),
                    "notification {i} carries the command: {summary} / {body}"
                );
            }
        }
        assert!(calls[0].2.contains(&format!("#{first} ")), "{:?}", calls[0]);
        assert!(calls[1].2.contains(&format!("#{third} ")), "{:?}", calls[1]);
        if let Some(s) = app.has_exited()? {
            bail!("the app exited during the test: {s}");
        }
        Ok(())
    })();
    let _ = f.cli(&["lab", "down"], "");
    result
}
