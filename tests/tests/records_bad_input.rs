//! Bad input through the real CLI: each a clear error naming the field, and
//! nothing written (rows and audit rows counted in the database).

mod records_common;

use anyhow::Result;
use records_common::*;

#[test]
fn each_bad_input_names_the_field_and_writes_nothing() -> Result<()> {
    let f = signed_in()?;
    ok(f.cli(&["org", "create", "other-org"], "")?)?;
    ok(f.cli(
        &[
            "host",
            "add",
            "core-sw1",
            "--org",
            "noc",
            "--address",
            "10.0.0.1",
            "--folder",
            "dc1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        "pw-bad-input\n",
    )?)?;
    let counts = |f: &gatehouse_tests::broker::BrokerFixture| -> Result<(i64, i64, i64)> {
        let db = RawDb::open(f)?;
        Ok((
            db.count("records")?,
            db.count("sealed_fields")?,
            db.count("audit")?,
        ))
    };
    let before = counts(&f)?;
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec![
                "host",
                "add",
                "x",
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--vendor",
                "cisco",
            ],
            "",
            "invalid vendor: unknown vendor \"cisco\"",
        ),
        (
            vec![
                "host",
                "add",
                "x",
                "--org",
                "noc",
                "--address",
                "10.0.0.256",
            ],
            "",
            "invalid address: \"10.0.0.256\"",
        ),
        (
            vec!["host", "add", "x", "--org", "noc", "--address", "bad host"],
            "",
            "invalid address: \"bad host\"",
        ),
        (
            vec![
                "host",
                "add",
                "x",
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--port",
                "0",
            ],
            "",
            "invalid port: \"0\"",
        ),
        (
            vec![
                "host",
                "add",
                "x",
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--port",
                "ssh",
            ],
            "",
            "invalid port: \"ssh\"",
        ),
        (
            vec![
                "host",
                "add",
                "x",
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--http-port",
                "99999",
            ],
            "",
            "invalid http.port",
        ),
        (
            vec![
                "host",
                "add",
                "x",
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--ssh-user",
                "a",
                "--password-ref",
                "keychain:no-such-entry",
            ],
            "",
            "invalid ssh.password: no keychain entry named \"no-such-entry\"",
        ),
        (
            vec![
                "host",
                "add",
                "core-sw1",
                "--org",
                "noc",
                "--address",
                "10.0.0.2",
                "--folder",
                "/dc1/",
            ],
            "",
            "invalid name: a host named \"core-sw1\" already exists in folder \"dc1\"",
        ),
        (
            vec!["host", "add", "x", "--org", "nope", "--address", "10.0.0.2"],
            "",
            "invalid org: no organization named \"nope\"",
        ),
        (
            vec!["host", "add", "x", "--address", "10.0.0.2"],
            "",
            "--org NAME or --private",
        ),
        (
            vec![
                "host",
                "edit",
                "core-sw1",
                "--org",
                "other-org",
                "--port",
                "23",
            ],
            "",
            "belongs to org",
        ),
        (
            vec!["host", "rm", "core-sw1", "--org", "other-org"],
            "",
            "belongs to org",
        ),
        (
            vec!["host", "show", "core-sw1", "--org", "other-org"],
            "",
            "belongs to org",
        ),
        (
            vec!["host", "edit", "core-sw1", "--address", "10..1"],
            "",
            "invalid address",
        ),
        (
            vec!["connector", "add", "c", "--org", "noc", "--url", "ftp://x"],
            "",
            "invalid base_url",
        ),
        (
            vec![
                "connector",
                "add",
                "c",
                "--org",
                "noc",
                "--url",
                "https://x.example",
                "--auth",
                "bearer",
            ],
            "",
            "invalid auth",
        ),
        (
            vec![
                "diagram", "add", "d", "--org", "noc", "--node", "a", "--link", "a,zz",
            ],
            "",
            "invalid links",
        ),
        (
            vec![
                "mcp",
                "add",
                "m",
                "--org",
                "noc",
                "--url",
                "https://m.example",
                "--header",
                "X=literal-secret",
            ],
            "",
            "invalid auth",
        ),
    ];
    for (args, stdin, want) in cases {
        let err = fail(f.cli(&args, stdin)?)?;
        assert!(err.contains(want), "{args:?}: {err} (wanted {want:?})");
        assert_eq!(counts(&f)?, before, "{args:?} wrote something");
    }
    // The unchanged host still opens.
    let h = json(f.cli(&["host", "show", "dc1/core-sw1", "--reveal", "--json"], "")?)?;
    assert_eq!(h["fields"]["ssh.password"], "pw-bad-input");
    assert_eq!(h["revision"], 1);
    Ok(())
}
