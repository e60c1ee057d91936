//! Snapshot tests of the approval card, rendered headless by iced_test with
//! the tiny-skia renderer.
//!
//! The rendering is deterministic on one machine (checked: two renders of
//! the same card hash the same), but the monospace command block uses the
//! system's monospace font (fontconfig), so expected images are NOT stored
//! in the repository: the pixels would differ between machines. Instead the
//! test checks that what must look different (the guard's state, the
//! dangerous confirmation) does, and saves the images in a temporary dir
//! (`GATEHOUSE_UI_SNAPSHOT_DIR` keeps them).

use std::time::{Duration, Instant};

use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{Action, ApprovalState, ApprovalView, Requester};
use gatehouse_ui::approval::{APPROVE_DELAY, Approvals, Card, Message, card_view};
use iced::Theme;
use iced_test::simulator;

fn view(class: &str, command: &str) -> ApprovalView {
    ApprovalView {
        id: 7,
        action: Action {
            host: "edge-r1".into(),
            vendor: "routeros".into(),
            org: "acme".into(),
            credential: Some("keychain:edge-r1".into()),
            command: command.into(),
            expected_effect: "the router restarts".into(),
        },
        requester: Requester {
            role: PeerRole::Copilotd,
            pid: 4242,
            exe: "/usr/lib/gatehouse/gatehouse-copilotd".into(),
        },
        class: class.into(),
        reasons: vec!["reboot interrupts service".into()],
        state: ApprovalState::Pending,
        created_ms: 0,
        decided_by: None,
        replaced_by: None,
        reject_reason: None,
        autopilot: None,
    }
}

/// Whether the card at `now` matches the hash stored at `name` in `dir`
/// (the first call stores it).
fn matches(dir: &std::path::Path, name: &str, card: &Card, now: Instant) -> bool {
    let mut ui = simulator(card_view(card, now));
    let snap = ui.snapshot(&Theme::Light).expect("snapshot");
    let _ = snap.matches_image(dir.join(format!("{name}.png")));
    snap.matches_hash(dir.join(name)).expect("hash")
}

#[test]
fn approval_card_snapshots_are_deterministic_and_show_the_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("GATEHOUSE_UI_SNAPSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let t0 = Instant::now();
    let later = t0 + APPROVE_DELAY + Duration::from_millis(1);

    let card = Card::new(view("dangerous", "/system reboot"), t0);
    // Stored on the first render, matched by a second render of the same state.
    assert!(matches(&dir, "dangerous-waiting", &card, t0));
    assert!(
        matches(&dir, "dangerous-waiting", &card, t0),
        "deterministic"
    );
    // Armed looks different from waiting (the Approve button's label and style).
    assert!(!matches(&dir, "dangerous-waiting", &card, later));
    assert!(matches(&dir, "dangerous-armed", &card, later));

    // The first Approve of a dangerous card adds the confirmation, not a decision.
    let mut approvals = Approvals::default();
    approvals.shown(Ok(view("dangerous", "/system reboot")), t0);
    assert!(approvals.update(Message::Approve, later).is_none());
    let card = approvals.card.as_ref().unwrap();
    assert!(card.confirming_since.is_some());
    assert!(!matches(&dir, "dangerous-armed", card, later));

    // Another command or class is another image.
    let moderate = Card::new(view("moderate", "/interface disable ether2"), t0);
    assert!(!matches(&dir, "dangerous-waiting", &moderate, t0));
}
