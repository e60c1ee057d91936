//! The store under a hostile sync server: plaintext changed in the database
//! without the key, and ciphertexts moved between records. The real broker
//! decides; the CLI must say which record and field.

mod records_common;

use anyhow::Result;
use records_common::*;

const PW: &str = "tamper-canary-pw-0a0a";

#[test]
fn an_address_edited_in_the_database_makes_the_record_tampered_and_the_password_not_open()
-> Result<()> {
    let f = signed_in()?;
    let id = created_id(&ok(f.cli(
        &[
            "host",
            "add",
            "core-sw1",
            "--org",
            "noc",
            "--address",
            "10.0.0.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    )?)?)?;
    ok(f.cli(&["host", "show", "core-sw1", "--reveal"], "")?)?;
    {
        // Redirect the host to an attacker's address, as a sync server without the key could.
        let db = RawDb::open(&f)?;
        let plain: String =
            db.c()
                .query_row("SELECT plain FROM records WHERE id = ?1", [&id], |r| {
                    r.get(0)
                })?;
        assert!(plain.contains("10.0.0.1") && !plain.contains(PW));
        let n = db.c().execute(
            "UPDATE records SET plain = ?1 WHERE id = ?2",
            [plain.replace("10.0.0.1", "203.0.113.66"), id.clone()],
        )?;
        assert_eq!(n, 1);
    }
    let err = fail(f.cli(&["host", "show", "core-sw1", "--reveal"], "")?)?;
    assert!(
        err.contains(&format!(
            "record host/{id} was modified without the key (tampered)"
        )),
        "{err}"
    );
    // The broker itself refuses the password under the new address (binding).
    assert!(
        err.contains("field ssh.password does not open: authentication failed"),
        "{err}"
    );
    assert!(!err.contains(PW));
    let out = f.cli(&["host", "show", "core-sw1", "--reveal", "--json"], "")?;
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PW));
    // Edits are refused too, and a full verification reports it (exit 2).
    let err = fail(f.cli(&["host", "edit", "core-sw1", "--port", "23"], "")?)?;
    assert!(err.contains("tampered"), "{err}");
    let v = f.cli(&["records", "verify", "--json"], "")?;
    assert_eq!(v.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&v.stdout)?;
    assert_eq!(v["failed"], 1);
    // `list --verify` flags it with one MAC check per record, no opening.
    let l = f.cli(&["host", "list", "--verify", "--json"], "")?;
    assert_eq!(l.status.code(), Some(2));
    let l: serde_json::Value = serde_json::from_slice(&l.stdout)?;
    assert_eq!(l[0]["mac_ok"], false);
    Ok(())
}

#[test]
fn metadata_edits_are_tampering_too() -> Result<()> {
    let f = signed_in()?;
    for (n, (sql, what)) in [
        (
            "UPDATE records SET owner = 'mallory' WHERE id = ?1",
            "owner",
        ),
        (
            "UPDATE records SET revision = revision + 5 WHERE id = ?1",
            "revision",
        ),
        (
            "UPDATE records SET scope = 'private' WHERE id = ?1",
            "scope",
        ),
        (
            "DELETE FROM sealed_fields WHERE id = ?1",
            "a sealed field removed",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("sw{n}");
        let id = created_id(&ok(f.cli(
            &[
                "host",
                "add",
                &name,
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--ssh-user",
                "admin",
                "--password-stdin",
            ],
            &format!("{PW}\n"),
        )?)?)?;
        {
            let db = RawDb::open(&f)?;
            assert_eq!(db.c().execute(sql, [&id])?, 1, "{what}");
        }
        let err = fail(f.cli(&["host", "show", &id], "")?)?;
        assert!(
            err.contains("was modified without the key (tampered)"),
            "{what}: {err}"
        );
    }
    Ok(())
}

#[test]
fn a_ciphertext_copied_to_another_record_fails_naming_record_and_field() -> Result<()> {
    let f = signed_in()?;
    let a = created_id(&ok(f.cli(
        &[
            "host",
            "add",
            "a",
            "--org",
            "noc",
            "--address",
            "10.0.0.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    )?)?)?;
    let b = created_id(&ok(f.cli(
        &[
            "host",
            "add",
            "b",
            "--org",
            "noc",
            "--address",
            "10.0.0.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        "other-password\n",
    )?)?)?;
    {
        let db = RawDb::open(&f)?;
        let n = db.c().execute(
            "UPDATE sealed_fields SET ciphertext = (SELECT ciphertext FROM sealed_fields WHERE id = ?1 AND field = 'ssh.password') WHERE id = ?2 AND field = 'ssh.password'",
            [&a, &b],
        )?;
        assert_eq!(n, 1);
    }
    let err = fail(f.cli(&["host", "show", "b", "--reveal"], "")?)?;
    assert!(err.contains(&format!("record host/{b}")), "{err}");
    assert!(err.contains("field ssh.password does not open"), "{err}");
    assert!(!err.contains(PW));
    // The record it came from is intact.
    let ok_a = json(f.cli(&["host", "show", "a", "--reveal", "--json"], "")?)?;
    assert_eq!(ok_a["fields"]["ssh.password"], PW);
    Ok(())
}
