//! The hosts screen of the desktop app driven through `iced_test` against a
//! REAL broker as the `ui` role (see `ui_driver`): add with a validation
//! error shown at its field and nothing written, fix and create, edit
//! (revision 2), an audited Reveal that lives only while shown and is gone
//! at sign-out, the organization switcher, and delete with confirmation.
//! Nothing is mocked: the store is the profile's, the seals the broker's.

use anyhow::{Context, Result, bail};
use gatehouse_ipc::audit::CredentialRow;
use gatehouse_ipc::broker::KeyScope;
use gatehouse_ui::app::{Effect, Message, Session, Tab};
use gatehouse_ui::daemons::{self, HostRow};
use gatehouse_ui::hosts::{self, form};
use iced::keyboard::{self, Key, Modifiers, key::Named};

mod ui_driver;
use ui_driver::{Driver, ui_test};

/// Obviously fake, typed into the form at run time.
const PASSWORD: &str = "ui-test-literal-password";

fn stored(d: &Driver) -> Result<Vec<HostRow>> {
    daemons::load_hosts(d.state.daemons.layout()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn credential_rows(d: &Driver) -> Result<Vec<CredentialRow>> {
    let path = gatehouse_ipc::audit::credentials_log(&d.state.daemons.layout().root);
    let (rows, bad) = gatehouse_ipc::audit::read(&path)?;
    anyhow::ensure!(bad.is_empty(), "{bad:?}");
    Ok(rows)
}

/// The app, signed in, on the hosts screen.
fn on_hosts(child: &gatehouse_tests::broker::UiChild) -> Result<Driver> {
    let mut d = Driver::new(child)?;
    d.sign_in()?;
    d.click("Hosts (Ctrl+1)")?;
    assert_eq!(d.state.tab, Tab::Hosts);
    Ok(d)
}

fn form_msg(d: &mut Driver, m: form::Message) {
    d.send(Message::Hosts(hosts::Message::Form(m)));
}

fn press(d: &mut Driver, key: Key, modifiers: Modifiers) {
    d.send(Message::Key(keyboard::Event::KeyPressed {
        modified_key: key.clone(),
        key,
        physical_key: keyboard::key::Physical::Unidentified(
            keyboard::key::NativeCode::Unidentified,
        ),
        location: keyboard::Location::Standard,
        modifiers,
        text: None,
        repeat: false,
    }));
}

fn field_error(d: &Driver, field: &str) -> Result<String> {
    let f = d.state.hosts.form.as_ref().context("the form is open")?;
    f.errors
        .get(field)
        .cloned()
        .with_context(|| format!("no error at {field}: {:?} / {:?}", f.errors, f.error))
}

#[test]
fn host_add_error_at_field_then_edit_reveal_audited_and_dropped_at_sign_out() -> Result<()> {
    ui_test(
        "host_add_error_at_field_then_edit_reveal_audited_and_dropped_at_sign_out",
        |_| Ok(()),
        |child| {
            let mut d = on_hosts(child)?;
            assert!(d.sees("0 of 0 hosts"));
            assert_eq!(d.state.hosts.orgs.len(), 1, "OrgList from the broker");

            // 1. A bad address: the error shows under the address field and
            //    nothing is written.
            d.click("New host (Ctrl+N)")?;
            assert!(d.sees("New host"));
            let scope = d.state.hosts.form.as_ref().and_then(|f| f.scope.clone());
            assert_eq!(scope.context("a scope")?.label, "org acme");
            d.type_into(form::NAME_ID, "edge-r9", false)?;
            d.type_into(form::FOLDER_ID, "branch/east", false)?;
            d.type_into(form::ADDRESS_ID, "not an address!", false)?;
            d.type_into(form::TAGS_ID, "edge, lab", false)?;
            d.type_into(form::SSH_USER_ID, "admin", false)?;
            d.type_into(form::PASSWORD_ID, PASSWORD, false)?;
            assert!(!d.sees_part(PASSWORD), "the password field is secure");
            d.click("Save (Enter)")?;
            let err = field_error(&d, "address")?;
            assert!(err.contains("not a hostname or IP address"), "{err}");
            assert!(d.sees(&err), "shown on screen, under the field");
            assert!(stored(&d)?.is_empty(), "nothing written");
            let f = d.state.hosts.form.as_ref().context("form")?;
            assert!(f.has_password(), "kept for the correction");
            assert_eq!(f.errors.len(), 1, "{:?}", f.errors);

            // A bad port too, then fixed: created, listed, the password gone.
            form_msg(&mut d, form::Message::Address("192.0.2.10".into()));
            form_msg(&mut d, form::Message::Port("70000".into()));
            d.click("Save (Enter)")?;
            assert!(field_error(&d, "port")?.contains("not a port"));
            assert!(stored(&d)?.is_empty(), "nothing written");
            form_msg(&mut d, form::Message::Port("2222".into()));
            d.click("Save (Enter)")?;
            assert!(
                d.state.hosts.form.is_none(),
                "the form (and its password) is dropped"
            );
            let rows = stored(&d)?;
            assert_eq!(rows.len(), 1);
            let h = &rows[0];
            assert_eq!(
                (h.name.as_str(), h.address.as_str()),
                ("edge-r9", "192.0.2.10")
            );
            assert_eq!(
                (h.port.as_str(), h.folder.as_str()),
                ("2222", "branch/east")
            );
            assert_eq!(h.tags, ["edge", "lab"]);
            assert!(matches!(&h.scope, KeyScope::Org(_)));
            assert!(d.sees("Saved host edge-r9 (revision 1)"));
            assert!(d.sees("1 of 1 hosts") && d.sees("edge-r9"));
            let id = h.id.clone();

            // 2. The detail: the sealed password masked, nothing opened for it.
            assert_eq!(d.state.hosts.selected.as_deref(), Some(id.as_str()));
            assert!(d.sees("••••") && d.sees("Reveal SSH password (V)"));
            assert!(!d.sees_part(PASSWORD));
            let opened = |d: &Driver| -> Result<usize> {
                Ok(credential_rows(d)?
                    .iter()
                    .filter(|r| r.operation.to_string() == "RevealFields")
                    .count())
            };
            assert_eq!(opened(&d)?, 0, "adding and showing opened nothing");

            // Reveal: exactly that field, audited for the ui's pid (a
            // development build: the broker asks no presence).
            d.click("Reveal SSH password (V)")?;
            assert!(d.sees(PASSWORD), "revealed");
            assert!(d.state.hosts.holds_revealed());
            let rows = credential_rows(&d)?;
            let r = rows.last().context("a row")?;
            assert_eq!(r.operation.to_string(), "RevealFields");
            assert_eq!(r.requester.pid, std::process::id() as i32);
            assert!(r.credential.contains(&id) && r.credential.ends_with("field ssh.password"));
            assert_eq!(
                r.destination,
                format!("revealed to ui pid {}", std::process::id())
            );
            assert_eq!(opened(&d)?, 1, "one field, one row");
            let log = std::fs::read_to_string(gatehouse_ipc::audit::credentials_log(
                &d.state.daemons.layout().root,
            ))?;
            assert!(!log.contains(PASSWORD), "the log never holds the value");

            // Closing the detail drops it; the V shortcut reveals again.
            press(&mut d, Key::Named(Named::Escape), Modifiers::empty());
            assert!(d.state.hosts.shown.is_none() && !d.state.hosts.holds_revealed());
            assert!(!d.sees_part(PASSWORD));
            d.click("edge-r9")?;
            assert!(d.sees("••••") && !d.state.hosts.holds_revealed());
            press(&mut d, Key::Character("v".into()), Modifiers::empty());
            assert!(d.sees(PASSWORD) && opened(&d)? == 2);

            // 3. Edit (E): the reveal is dropped, the form is the plaintext
            //    fields; saving re-seals: revision 2, password unchanged.
            press(&mut d, Key::Character("e".into()), Modifiers::empty());
            assert!(!d.state.hosts.holds_revealed());
            assert!(d.sees("Edit host edge-r9"));
            let f = d.state.hosts.form.as_ref().context("form")?;
            assert_eq!(
                (f.address.as_str(), f.port.as_str()),
                ("192.0.2.10", "2222")
            );
            assert!(!f.has_password(), "a sealed value is never pre-filled");
            form_msg(&mut d, form::Message::Tags("edge, lab, east".into()));
            d.click("Save (Enter)")?;
            assert!(
                d.sees("Saved host edge-r9 (revision 2)"),
                "{:?}",
                d.state.hosts.form
            );
            let h = stored(&d)?.pop().context("host")?;
            assert_eq!(h.tags, ["edge", "lab", "east"]);
            assert!(d.sees("Revision") && d.sees_part("2 (owner"));
            d.click("Reveal SSH password (V)")?;
            assert!(d.sees(PASSWORD), "the edit kept the sealed password");

            // Connect asks the terminal screen for a shell to this host.
            let effects = d
                .state
                .update(Message::Hosts(hosts::Message::ConnectSelected));
            match effects.as_slice() {
                [Effect::Then(m)] => match m.as_ref() {
                    Message::Terminal(gatehouse_ui::terminal::Message::Open { host }) => {
                        assert_eq!(host, &id)
                    }
                    other => bail!("Connect asked {other:?}"),
                },
                other => bail!("Connect: {other:?}"),
            }

            // 4. Sign-out drops the revealed value with the screen.
            assert!(d.state.hosts.holds_revealed());
            d.click("Sign out (Ctrl+Shift+Q)")?;
            d.click("Sign out and purge (Enter)")?;
            assert_eq!(d.state.session, Session::SignedOut);
            assert!(!d.state.hosts.holds_revealed() && d.state.hosts.shown.is_none());
            assert!(d.state.hosts.rows.is_empty() && d.state.org.is_none());
            assert!(!format!("{:?}", d.state).contains(PASSWORD));
            assert!(!d.sees_part(PASSWORD));
            Ok(())
        },
    )
}

#[test]
fn org_switcher_field_errors_from_the_store_and_delete_with_confirmation() -> Result<()> {
    ui_test(
        "org_switcher_field_errors_from_the_store_and_delete_with_confirmation",
        |f| {
            f.cli_ok(&["org", "create", "globex"], "")?;
            for (name, org, addr, vendor, folder) in [
                ("a1", "acme", "10.0.0.1", "ios", "dc1/core"),
                ("a3", "acme", "10.0.0.3", "linux", ""),
                ("g1", "globex", "10.9.0.1", "junos", "dc1/core"),
            ] {
                f.cli_ok(
                    &[
                        "host",
                        "add",
                        name,
                        "--org",
                        org,
                        "--address",
                        addr,
                        "--vendor",
                        vendor,
                        "--folder",
                        folder,
                        "--tag",
                        "core",
                    ],
                    "",
                )?;
            }
            Ok(())
        },
        |child| {
            let mut d = on_hosts(child)?;
            assert!(d.sees("3 of 3 hosts"), "{:?}", d.state.hosts.rows);
            assert!(d.sees("Organization:"));
            let picks: Vec<String> = d
                .state
                .hosts
                .org_choices()
                .iter()
                .map(|p| p.name.clone())
                .collect();
            assert_eq!(picks, ["All", "acme", "globex"]);

            // The switcher: acme only.
            let acme = d
                .state
                .hosts
                .org_choices()
                .into_iter()
                .find(|p| p.name == "acme")
                .context("acme offered")?;
            let acme_id = acme.id.clone().context("id")?;
            d.send(Message::Org(acme));
            assert_eq!(d.state.org.as_deref(), Some(acme_id.as_str()));
            assert!(d.sees("2 of 2 hosts") && d.sees("a1") && !d.sees("g1"));
            // The copilot panel follows the switcher.
            assert_eq!(
                d.state.copilot.org.as_ref().map(|o| o.id.as_str()),
                Some(acme_id.as_str())
            );

            // Folder tree: collapsing dc1 hides a1, not a3 (root).
            d.click("▾ dc1/  (1)")?;
            assert!(!d.sees("a1") && d.sees("a3") && d.sees("▸ dc1/  (1)"));
            d.click("▸ dc1/  (1)")?;
            assert!(d.sees("a1"));

            // A new host goes to the selected org. A duplicate name in the
            // same folder: the store's check names the name field.
            press(&mut d, Key::Character("n".into()), Modifiers::CTRL);
            let f = d
                .state
                .hosts
                .form
                .as_ref()
                .context("Ctrl+N opens the form")?;
            assert_eq!(
                f.scope.as_ref().map(|s| s.scope.clone()),
                Some(KeyScope::Org(acme_id.clone()))
            );
            form_msg(&mut d, form::Message::Name("a1".into()));
            form_msg(&mut d, form::Message::Folder("dc1/core".into()));
            form_msg(&mut d, form::Message::Address("10.0.0.2".into()));
            d.click("Save (Enter)")?;
            assert!(field_error(&d, "name")?.contains("already exists"));
            // A keychain reference to nothing: the password field's error,
            // found when sealing, and still nothing written.
            form_msg(&mut d, form::Message::Name("a2".into()));
            form_msg(&mut d, form::Message::SshUser("admin".into()));
            form_msg(
                &mut d,
                form::Message::Password("keychain:no-such-entry".into()),
            );
            d.click("Save (Enter)")?;
            let e = field_error(&d, "ssh.password")?;
            assert!(
                e.contains("no keychain entry named \"no-such-entry\""),
                "{e}"
            );
            assert!(d.sees(&e));
            assert!(
                d.state
                    .hosts
                    .form
                    .as_ref()
                    .is_some_and(|f| f.errors.len() == 1),
                "the name error is gone once fixed"
            );
            assert_eq!(stored(&d)?.len(), 3, "nothing written");
            form_msg(&mut d, form::Message::Password(String::new()));
            d.click("Save (Enter)")?;
            let rows = stored(&d)?;
            let a2 = rows.iter().find(|r| r.name == "a2").context("a2 created")?;
            assert_eq!(a2.scope, KeyScope::Org(acme_id.clone()));
            assert!(d.sees("3 of 3 hosts"), "acme's three");

            // Keyboard: Up/Down select, the detail follows.
            d.send(Message::Hosts(hosts::Message::CloseDetail));
            press(&mut d, Key::Named(Named::ArrowUp), Modifiers::empty());
            let first = d.state.hosts.selected.clone().context("selected")?;
            press(&mut d, Key::Named(Named::ArrowUp), Modifiers::empty());
            let second = d.state.hosts.selected.clone().context("selected")?;
            assert_ne!(first, second);
            assert_eq!(
                d.state.hosts.shown.as_ref().map(|s| s.detail.id.clone()),
                Some(second)
            );

            // Delete asks first; "keep it" keeps it; Delete removes it.
            d.click("a1")?;
            d.click("Delete (Del)")?;
            assert!(d.sees("Delete host a1?"));
            d.click("Keep it (Esc)")?;
            assert!(!d.sees("Delete host a1?"));
            assert_eq!(stored(&d)?.len(), 4);
            press(&mut d, Key::Named(Named::Delete), Modifiers::empty());
            assert!(d.sees("Delete host a1?"));
            d.click("Delete (Enter)")?;
            assert!(d.sees("Deleted host a1"));
            let rows = stored(&d)?;
            assert_eq!(rows.len(), 3);
            assert!(!rows.iter().any(|r| r.name == "a1"));
            assert!(d.sees("2 of 2 hosts") && !d.sees("a1"));
            Ok(())
        },
    )
}

/// A record changed without the key (its address redirected in the
/// database) is not revealed: the MAC is checked first and nothing is
/// opened, so no credential-log row and no value.
#[test]
fn reveal_of_a_tampered_host_is_refused_before_anything_is_opened() -> Result<()> {
    ui_test(
        "reveal_of_a_tampered_host_is_refused_before_anything_is_opened",
        |f| {
            f.cli_ok(
                &[
                    "host",
                    "add",
                    "r1",
                    "--org",
                    "acme",
                    "--address",
                    "10.0.0.1",
                    "--ssh-user",
                    "admin",
                    "--password-stdin",
                ],
                &format!("{PASSWORD}\n"),
            )?;
            Ok(())
        },
        |child| {
            let mut d = on_hosts(child)?;
            let id = stored(&d)?.pop().context("r1")?.id;
            {
                let db = rusqlite::Connection::open(
                    d.state
                        .daemons
                        .layout()
                        .root
                        .join(gatehouse_records::store::FILE_NAME),
                )?;
                let n = db.execute(
                    "UPDATE records SET plain = replace(plain, '10.0.0.1', '203.0.113.66') WHERE id = ?1",
                    [&id],
                )?;
                assert_eq!(n, 1);
            }
            d.send(Message::Hosts(hosts::Message::Refresh));
            d.click("r1")?;
            assert!(d.sees("••••"), "the mask needs no opening");
            d.click("Reveal SSH password (V)")?;
            let err = d
                .state
                .hosts
                .shown
                .as_ref()
                .and_then(|s| s.reveal_error.clone())
                .context("a reveal error")?;
            assert!(err.contains("tampered"), "{err}");
            assert!(d.sees(&format!("Reveal failed: {err}")));
            assert!(!d.state.hosts.holds_revealed() && !d.sees_part(PASSWORD));
            assert!(
                credential_rows(&d)?.iter().all(|r| !matches!(
                    r.operation.to_string().as_str(),
                    "OpenFields" | "RevealFields"
                )),
                "nothing was opened"
            );
            Ok(())
        },
    )
}
