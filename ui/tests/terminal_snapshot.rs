//! Snapshot tests of the Terminals screen with the scrollback search open,
//! in both themes, rendered headless by iced_test (tiny-skia, the embedded
//! fonts: `gatehouse_ui::settings()`) and compared with the PNGs stored in
//! `ui/tests/snapshots/terminal-*` (written on the first run; delete one to
//! accept a deliberate change, and look at it first).
//!
//! The tab is the screen's own (opened with `terminal::Message::Open`; the
//! shell is never started: effects are dropped) with a device's output fed
//! into its grid, as sessiond's stream would. Besides matching the stored
//! images, the test checks that the search's highlights are drawn (the
//! picture differs without them) and that the two themes differ.

use std::path::PathBuf;

use gatehouse_ui::term_bench::sample_output;
use gatehouse_ui::terminal::{Message, TabState, Terminals};
use iced::{Size, Theme};
use iced_test::Simulator;

/// A screen with one tab to `core-sw1` whose grid shows colored output.
fn screen() -> Terminals {
    let mut t = Terminals::default();
    let _ = t.update(Message::Open {
        host: "core-sw1".into(),
    });
    let tab = t.tabs.last_mut().expect("the tab");
    tab.state = TabState::Ended("session ended: exit status 0".into());
    tab.grid.resize(110, 30);
    tab.grid.feed(&sample_output(20_000));
    tab.grid.feed(b"\r\n\x1b[1mcore-sw1#\x1b[0m ");
    t
}

fn matches(t: &Terminals, theme: &Theme, name: &str) -> bool {
    let mut ui = Simulator::with_size(gatehouse_ui::settings(), Size::new(900.0, 560.0), t.view());
    let snap = ui.snapshot(theme).expect("snapshot");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
        .join(format!("terminal-{name}.png"));
    snap.matches_image(path).expect("image")
}

#[test]
fn the_search_bar_and_its_highlights_in_both_themes_match_their_stored_images() {
    let mut t = screen();
    let _ = t.update(Message::SearchOpen);
    let _ = t.update(Message::SearchText("notconnect".into()));
    let (current, total) = t.tabs[0].grid.search_status();
    assert!(
        total > 1 && current == Some(total),
        "{current:?} of {total}"
    );
    // One step older: the selected match moves, the others stay highlighted.
    let _ = t.update(Message::SearchStep(true));
    for (theme, name) in [(Theme::Light, "search-light"), (Theme::Dark, "search-dark")] {
        assert!(
            matches(&t, &theme, name),
            "{name} differs from its stored image"
        );
    }
    assert!(
        !matches(&t, &Theme::Dark, "search-light"),
        "dark looks like light"
    );
    // Closed: the bar and the highlights are gone (the picture differs).
    let _ = t.update(Message::SearchClose);
    assert!(
        !matches(&t, &Theme::Dark, "search-dark"),
        "closing changed nothing"
    );
    assert_eq!(t.tabs[0].grid.search_status(), (None, 0));
}
