//! Snapshot tests of the hosts screen, rendered headless by iced_test with
//! the tiny-skia renderer and compared with the PNGs stored in
//! `ui/tests/snapshots/` (written on the first run; delete one to accept a
//! deliberate change, and look at it before committing).
//!
//! Both faces are embedded (DejaVu Sans for text, DejaVu Sans Mono for
//! addresses, as the window loads them), so the pixels do not depend on the machine's fonts. Besides
//! matching the stored images, the tests check that what must look
//! different does (a filter, an open detail, a revealed value).

use std::collections::BTreeMap;
use std::path::PathBuf;

use gatehouse_ipc::broker::{KeyScope, OrgInfo};
use gatehouse_records::model::Secret;
use gatehouse_ui::bench::generated_hosts;
use gatehouse_ui::hosts::detail::Shown;
use gatehouse_ui::hosts::form::Form;
use gatehouse_ui::hosts::{Hosts, Message, ops};
use iced::{Element, Settings, Theme};
use iced_test::Simulator;

fn settings() -> Settings {
    gatehouse_ui::settings()
}

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
        .join(format!("{name}.png"))
}

/// Whether `view` renders exactly as the stored image `name` (stored on the
/// first run).
fn matches(name: &str, view: Element<'_, Message>) -> bool {
    let mut ui = Simulator::with_settings(settings(), view);
    let snap = ui.snapshot(&Theme::Light).expect("snapshot");
    snap.matches_image(snapshot_path(name)).expect("image")
}

fn hosts() -> Hosts {
    let mut h = Hosts::default();
    let mut rows = generated_hosts(24);
    rows[0].folder = String::new();
    rows[1].vendor = "onvif-camera".into();
    rows[2].vendor = "other".into();
    h.loaded(Ok(rows));
    h.orgs = vec![OrgInfo {
        id: "org0".into(),
        name: "acme".into(),
        key_id: "k".into(),
        created_ms: 0,
    }];
    h.collapsed.insert("region3".into());
    h
}

fn detail(h: &Hosts) -> ops::Detail {
    let r = &h.rows[3];
    let mut plain = BTreeMap::new();
    for (k, v) in [
        ("name", serde_json::json!(r.name)),
        ("address", serde_json::json!(r.address)),
        ("port", serde_json::json!(22)),
        ("vendor", serde_json::json!(r.vendor)),
        ("folder", serde_json::json!(r.folder)),
        ("tags", serde_json::json!(r.tags)),
        ("ssh.username", serde_json::json!("admin")),
        (
            "ssh.host_key_fingerprint",
            serde_json::json!("ssh-ed25519 SHA256:snapshot-not-a-real-key"),
        ),
    ] {
        plain.insert(k.to_string(), v);
    }
    ops::Detail {
        id: r.id.clone(),
        scope: KeyScope::Org("org0".into()),
        owner: "ops".into(),
        revision: 2,
        updated_ms: 0,
        plain,
        sealed: vec!["ssh.password".into(), "ssh.private_key_path".into()],
    }
}

#[test]
fn hosts_list_and_detail_match_their_stored_images() {
    let mut h = hosts();
    assert!(matches("hosts-list", h.view(None)));
    assert!(matches("hosts-list", h.view(None)), "deterministic");

    // The organization filter and the search change what is drawn.
    assert!(!matches("hosts-list", h.view(Some("org1"))));
    h.search = "edge".into();
    assert!(!matches("hosts-list", h.view(None)));
    assert!(matches("hosts-list-search-edge", h.view(None)));
    h.search.clear();

    // The detail, sealed fields masked.
    let d = detail(&h);
    h.selected = Some(d.id.clone());
    h.shown = Some(Shown::new(d));
    assert!(matches("hosts-detail-masked", h.view(None)));

    // A revealed value is drawn (and looks different from the mask).
    if let Some(s) = h.shown.as_mut() {
        s.set_revealed(
            "ssh.password".into(),
            Secret::new("snapshot-fake-password".into()),
        );
    }
    assert!(!matches("hosts-detail-masked", h.view(None)));
    assert!(matches("hosts-detail-revealed", h.view(None)));
}

#[test]
fn host_form_shows_the_error_under_its_field() {
    let mut h = hosts();
    let mut f = Form::new(&h.orgs, None);
    f.name = "edge-r9".into();
    f.address = "not an address!".into();
    f.ssh_user = "admin".into();
    h.form = Some(f);
    assert!(matches("hosts-form", h.view(None)));
    if let Some(f) = h.form.as_mut() {
        f.errors.insert(
            "address".into(),
            "invalid address: \"not an address!\" is not a hostname or IP address: only letters, digits, '-', '_' and '.' are allowed".into(),
        );
    }
    assert!(!matches("hosts-form", h.view(None)), "the error is drawn");
    assert!(matches("hosts-form-address-error", h.view(None)));
}

/// `view` in `theme` is exactly the stored image `name`.
fn matches_in(name: &str, theme: Theme, view: Element<'_, Message>) -> bool {
    let mut ui = Simulator::with_settings(settings(), view);
    let snap = ui.snapshot(&theme).expect("snapshot");
    snap.matches_image(snapshot_path(name)).expect("image")
}

/// With the privilege boundary on, the broker answers a Reveal from the
/// app with `PresenceRequired`: the detail asks for the account passphrase
/// (masked, the dangerous confirmation's field), Enter retries with it
/// once, a refusal is shown in the prompt, Escape gives up and nothing is
/// revealed.
#[test]
fn a_reveal_the_broker_asks_presence_for_prompts_for_the_passphrase() {
    use gatehouse_ui::app::Effect;
    use gatehouse_ui::hosts::{Call, Reply};
    use gatehouse_ui::presence::{Message as P, PROMPT_ID};
    use iced::keyboard::{Key, Modifiers, key::Named};

    let mut h = hosts();
    let d = detail(&h);
    let id = d.id.clone();
    h.selected = Some(id.clone());
    h.shown = Some(Shown::new(d));
    let effects = h.replied(Reply::Revealed {
        id: id.clone(),
        field: "ssh.password".into(),
        result: Err(ops::RevealFailed::PresenceRequired(format!(
            "revealing host/{id} ssh.password from the app"
        ))),
    });
    assert!(
        matches!(effects.as_slice(), [Effect::Focus(f)] if *f == PROMPT_ID),
        "{effects:?}"
    );
    assert!(!h.holds_revealed());
    h.update(
        Message::RevealPresence(P::Passphrase("typed-not-shown".into())),
        None,
    );
    assert!(!format!("{:?}", h.shown).contains("typed-not-shown"));
    assert!(
        !matches("hosts-detail-masked", h.view(None)),
        "the prompt is drawn"
    );
    assert!(matches_in(
        "hosts-detail-presence-light",
        Theme::Light,
        h.view(None)
    ));
    assert!(matches_in(
        "hosts-detail-presence-dark",
        Theme::Dark,
        h.view(None)
    ));

    // Enter (the field's submit, or the key when the field lost focus) sends it once.
    let key = h
        .key(&Key::Named(Named::Enter), Modifiers::empty())
        .expect("Enter is the prompt's");
    let effects = h.update(key, None);
    let [
        Effect::Call(gatehouse_ui::daemons::Call::Hosts(Call::Reveal {
            field,
            presence: Some(p),
            ..
        })),
    ] = effects.as_slice()
    else {
        panic!("no reveal with presence: {effects:?}");
    };
    assert_eq!(
        (field.as_str(), p.expose()),
        ("ssh.password", &b"typed-not-shown"[..])
    );
    assert!(
        h.update(Message::RevealPresence(P::Submit), None)
            .is_empty(),
        "the field is empty: nothing is sent again"
    );

    // The broker's refusal is shown in the prompt, which asks again.
    h.replied(Reply::Revealed {
        id: id.clone(),
        field: "ssh.password".into(),
        result: Err(ops::RevealFailed::Refused(
            "wrong passphrase (attempt 1)".into(),
        )),
    });
    assert!(matches_in(
        "hosts-detail-presence-refused",
        Theme::Light,
        h.view(None)
    ));
    assert!(!h.holds_revealed());

    // Escape gives up: the prompt goes, the value stays masked.
    let key = h
        .key(&Key::Named(Named::Escape), Modifiers::empty())
        .expect("Escape is the prompt's");
    h.update(key, None);
    assert!(h.shown.as_ref().is_some_and(|s| s.presence.is_none()));
    assert!(matches("hosts-detail-masked", h.view(None)));
}
