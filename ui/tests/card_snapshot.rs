//! Snapshot tests of the approval card, rendered headless by iced_test with
//! the tiny-skia renderer and compared with the PNGs stored in
//! `ui/tests/snapshots/` (written on the first run; delete one to accept a
//! deliberate change, and look at it before committing).
//!
//! Both faces are embedded (DejaVu Sans for labels, DejaVu Sans Mono for the
//! command block, loaded through `gatehouse_ui::settings()`, as the window does), so the pixels
//! do not depend on the machine's fonts. Besides matching the stored
//! images, the test checks that what must look different (the guard's
//! state, the dangerous confirmation, another command) does.

use std::time::{Duration, Instant};

use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{Action, ApprovalState, ApprovalView, Requester};
use gatehouse_ui::approval::{
    APPROVE_DELAY, Approvals, Card, FRAMES_BEFORE_DRAWN, Message, card_view,
};
use iced::Theme;
use iced_test::Simulator;

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

/// Whether the card at `now` renders exactly as the stored image `name`
/// (stored on the first run).
fn matches(name: &str, card: &Card, now: Instant) -> bool {
    let mut ui = Simulator::with_settings(
        gatehouse_ui::settings(),
        card_view(card, now, card.view.action.org.clone()),
    );
    let snap = ui.snapshot(&Theme::Light).expect("snapshot");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
        .join(format!("card-{name}.png"));
    snap.matches_image(path).expect("image")
}

#[test]
fn approval_card_snapshots_are_deterministic_and_show_the_guard() {
    let t0 = Instant::now();
    let later = t0 + APPROVE_DELAY + Duration::from_millis(1);

    let mut card = Card::new(view("dangerous", "/system reboot"), true, t0);
    // The window draws it (the guard counts from its first drawn frame).
    for _ in 0..FRAMES_BEFORE_DRAWN {
        card.frame(t0);
    }
    // Stored on the first render, matched by a second render of the same state.
    assert!(matches("dangerous-waiting", &card, t0));
    assert!(matches("dangerous-waiting", &card, t0), "deterministic");
    // Armed looks different from waiting (the Approve button's label and style).
    assert!(!matches("dangerous-waiting", &card, later));
    assert!(matches("dangerous-armed", &card, later));

    // The first Approve of a dangerous card adds the confirmation, not a decision.
    let mut approvals = Approvals::default();
    approvals.set_seen(true, t0);
    approvals.shown(Ok(view("dangerous", "/system reboot")), t0);
    for _ in 0..FRAMES_BEFORE_DRAWN {
        approvals.frame(t0);
    }
    assert!(approvals.update(Message::Approve, later).is_none());
    let card = approvals.card.as_ref().unwrap();
    assert!(card.confirming_since.is_some());
    assert!(!matches("dangerous-armed", card, later));

    // Another command or class is another image.
    let moderate = Card::new(view("moderate", "/interface disable ether2"), true, t0);
    assert!(!matches("dangerous-waiting", &moderate, t0));
    assert!(matches("moderate-waiting", &moderate, t0));
}
