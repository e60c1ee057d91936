//! Snapshot tests of the whole window — sidebar, screen, status bar — on
//! every screen, in both themes, rendered headless by iced_test (tiny-skia,
//! the window's size and fonts: `gatehouse_ui::settings()`) and compared
//! with the PNGs stored in `ui/tests/snapshots/app-*` (written on the first
//! run; delete one to accept a deliberate change, and look at it first).
//!
//! The state is the app's own `State`, filled as the daemons would fill it
//! (24 generated hosts in two organizations, one pending approval, a
//! hardened broker); no daemon is called (effects are dropped). Besides
//! matching the stored images, the test checks that the two themes and the
//! approvals count's colour do look different.

use std::path::PathBuf;
use std::time::Instant;

use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{
    Action, ApprovalState, ApprovalView, BrokerStatus, Hardening, OrgInfo, Requester,
};
use gatehouse_ipc::paths::Layout;
use gatehouse_ui::app::{Link, Message, Session, State, Tab};
use gatehouse_ui::bench::generated_hosts;
use gatehouse_ui::daemons::Daemons;
use iced_test::Simulator;

fn state(dir: &std::path::Path) -> State {
    let daemons = Daemons::new(Layout {
        root: dir.join("root"),
        broker_state: dir.join("state"),
        runtime: dir.join("run"),
        profile: "snapshot".into(),
    });
    let (mut s, _) = State::new(daemons, Instant::now());
    s.session = Session::SignedIn;
    s.link = Link::Up;
    s.focused = true;
    s.status = Some(Box::new(BrokerStatus {
        version: "0.1.0".into(),
        pid: 1,
        uid: 1000,
        hardening: Hardening {
            dumpable: false,
            no_new_privs: true,
            seccomp_mode: 2,
            landlock: "enforced".into(),
            core_limit: 0,
            secret_memory: "memfd_secret".into(),
            degraded: vec![],
        },
        keychain_backend: "keyutils".into(),
        keychain_warning: None,
        account_initialized: true,
        signed_in: true,
        remembered_device: false,
        orgs: 2,
        pending_approvals: 1,
        cached_secrets: 0,
        peer_pidfd: true,
        install_dir: "/usr/lib/gatehouse".into(),
        autopilot_tasks: 0,
        boundary_group: None,
        remembered_at: None,
        tpm: None,
    }));
    s.hosts.loaded(Ok(generated_hosts(24)));
    s.hosts.orgs = ["acme", "lab"]
        .iter()
        .enumerate()
        .map(|(i, n)| OrgInfo {
            id: format!("org{i}"),
            name: (*n).into(),
            key_id: "k".into(),
            created_ms: 0,
        })
        .collect();
    let now = s.now;
    s.approvals.set_seen(true, now);
    s.approvals.listed(
        Ok(vec![ApprovalView {
            id: 3,
            action: Action {
                host: "r1".into(),
                vendor: "routeros".into(),
                org: "org1".into(),
                credential: Some("keychain:r1".into()),
                command: "/ip address add address=192.0.2.77/24 interface=ether2".into(),
                expected_effect: "adds 192.0.2.77/24 to ether2".into(),
            },
            requester: Requester {
                role: PeerRole::Cli,
                pid: 4242,
                exe: "/usr/lib/gatehouse/gatehouse".into(),
            },
            class: "moderate".into(),
            reasons: vec!["changes configuration".into()],
            state: ApprovalState::Pending,
            created_ms: 0,
            decided_by: None,
            replaced_by: None,
            reject_reason: None,
            autopilot: None,
        }]),
        now,
    );
    s
}

/// Renders the window at its default size; whether it matches `name`.
fn matches(s: &State, name: &str) -> bool {
    let theme = s.theme();
    let mut ui = Simulator::with_size(
        gatehouse_ui::settings(),
        gatehouse_ui::window_memory::DEFAULT,
        s.view(),
    );
    let snap = ui.snapshot(&theme).expect("snapshot");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
        .join(format!("app-{name}.png"));
    snap.matches_image(path).expect("image")
}

fn slug(t: Tab) -> String {
    t.label().to_lowercase()
}

#[test]
fn every_screen_in_both_themes_matches_its_stored_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    for dark in [false, true] {
        if s.dark != dark {
            let _ = s.update(Message::ToggleTheme);
        }
        let theme = if dark { "dark" } else { "light" };
        for t in Tab::ALL {
            s.tab = t;
            let name = format!("{}-{theme}", slug(t));
            // A second run compares with what the first stored: renders
            // are deterministic or this fails.
            assert!(matches(&s, &name), "{name} differs from its stored image");
        }
    }
    // The themes differ.
    s.tab = Tab::Hosts;
    assert!(!matches(&s, "hosts-light"), "dark looks like light");
    // With nothing pending the status bar's amber count is gone.
    let _ = s.update(Message::ToggleTheme);
    s.approvals.pending.clear();
    s.approvals.card = None;
    assert!(!matches(&s, "hosts-light"), "the amber count is not drawn");
    assert!(matches(&s, "hosts-light-nothing-pending"));
}

/// How many pixels of the window drawn from `s` are exactly `color`.
fn pixels_of(s: &State, color: iced::Color) -> usize {
    let theme = s.theme();
    let mut ui = Simulator::with_size(
        gatehouse_ui::settings(),
        gatehouse_ui::window_memory::DEFAULT,
        s.view(),
    );
    let snap = ui.snapshot(&theme).expect("snapshot");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.png");
    assert!(snap.matches_image(&path).expect("image"));
    // matches_image stores `<name>-<renderer>.png` beside the given name.
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .expect("the stored snapshot");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let [r, g, b, _] = color.into_rgba8();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks_exact(step)
        .filter(|p| p[0] == r && p[1] == g && p[2] == b)
        .count()
}

#[test]
fn the_pending_count_is_amber_only_while_something_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    for dark in [false, true] {
        s.dark = dark;
        s.tab = Tab::Hosts;
        assert!(!s.approvals.pending.is_empty());
        let amber = pixels_of(&s, gatehouse_ui::app::AMBER);
        assert!(
            amber > 1000,
            "one pending: the status bar count is amber (dark {dark}): {amber} pixels"
        );
    }
    s.approvals.pending.clear();
    s.approvals.card = None;
    for dark in [false, true] {
        s.dark = dark;
        assert_eq!(
            pixels_of(&s, gatehouse_ui::app::AMBER),
            0,
            "nothing pending: no amber (dark {dark})"
        );
    }
}

/// Two terminal tabs (their screens fed as a device would), split side by
/// side, then with the copilot beside the focused one.
#[test]
fn split_view_and_the_copilot_beside_in_both_themes() {
    use gatehouse_ui::terminal::{Message as T, Reply as R};
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    for (host, prompt) in [
        (
            "core-00-00000",
            "[admin@core-00-00000] > /system identity print\r\n  name: core-00-00000\r\n[admin@core-00-00000] > ",
        ),
        (
            "edge-01-00001",
            "edge-01-00001#show version | include uptime\r\nedge-01-00001 uptime is 4 weeks, 2 days\r\nedge-01-00001#",
        ),
    ] {
        let _ = s.update(Message::Terminal(T::Open { host: host.into() }));
        let id = s.terminals.current().unwrap().id;
        let _ = s.terminals.replied(R::Output {
            tab: id,
            data: prompt.as_bytes().to_vec(),
        });
    }
    let _ = s.update(Message::ToggleSplit);
    assert_eq!(s.tab, Tab::Terminals);
    let split = s.workarea.split.expect("split");
    assert_ne!(split.left, split.right, "each pane its own tab");
    // Focus moves with a click (or Ctrl+Shift+O): keys go to the active tab.
    let _ = s.update(Message::FocusPane(split.left));
    assert_eq!(s.terminals.current().unwrap().id, split.left);
    let _ = s.update(Message::OtherPane);
    assert_eq!(s.terminals.current().unwrap().id, split.right);
    for dark in [false, true] {
        s.dark = dark;
        let theme = if dark { "dark" } else { "light" };
        s.workarea.copilot_beside = false;
        assert!(matches(&s, &format!("split-{theme}")), "split-{theme}");
        let _ = s.update(Message::ToggleCopilotBeside);
        assert!(s.workarea.copilot_beside);
        assert!(
            matches(&s, &format!("copilot-beside-{theme}")),
            "copilot-beside-{theme}"
        );
        let _ = s.update(Message::ToggleCopilotBeside);
    }
    // Unsplit: one pane again; closing a pane's tab unsplits too.
    let _ = s.update(Message::ToggleSplit);
    assert!(s.workarea.split.is_none());
    let _ = s.update(Message::ToggleSplit);
    assert!(s.workarea.split.is_some());
    let _ = s.update(Message::Terminal(T::Close(split.right)));
    assert!(
        s.workarea.split.is_none(),
        "a closed pane's tab ends the split"
    );
}

#[test]
fn the_palette_lists_actions_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    let _ = s.update(Message::OpenPalette);
    assert!(s.palette.is_open());
    assert!(!s.approvals_seen(), "the palette covers the card");
    assert!(matches(&s, "palette-light"));
}
