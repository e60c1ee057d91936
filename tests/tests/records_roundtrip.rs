//! Every record kind through the real CLI and broker: written by one
//! process, read back by another with its sealed fields opened by the
//! broker; the database file holds none of the secrets or bodies written;
//! edits re-seal; listing works with no broker at all.

mod records_common;

use anyhow::Result;
use records_common::*;

const PW: &str = "canary-ssh-pw-5e1d0b";
const KEYPASS: &str = "canary-keypass-77c2";
const TOKEN: &str = "canary-http-token-91aa";
const ONVIF: &str = "canary-onvif-pw-3f3f";
const BODY: &str = "canary-procedure-body: reload in 5";
const MEMORY: &str = "canary-memory-body: sw1 drops LLDP";
const CONN_KEY: &str = "canary-connector-key-8d8d";
const MCP_TOKEN: &str = "canary-mcp-token-4b4b";
const RUN_OUTPUT: &str = "canary-run-output-2c2c";
const RUN_MSG: &str = "canary-run-message-6e6e";

fn canaries() -> Vec<&'static str> {
    vec![
        PW,
        KEYPASS,
        TOKEN,
        ONVIF,
        BODY,
        MEMORY,
        CONN_KEY,
        MCP_TOKEN,
        RUN_OUTPUT,
        RUN_MSG,
        "/home/n/.ssh/id_core",
    ]
}

fn show(
    f: &gatehouse_tests::broker::BrokerFixture,
    kind: &str,
    key: &str,
) -> Result<serde_json::Value> {
    json(f.cli(
        &["records", "show", "--kind", kind, key, "--reveal", "--json"],
        "",
    )?)
}

#[test]
fn every_kind_round_trips_and_the_database_holds_no_secret() -> Result<()> {
    let f = signed_in()?;
    let host = ok(f.cli(
        &[
            "host",
            "add",
            "core-sw1",
            "--org",
            "noc",
            "--address",
            "10.0.0.1",
            "--port",
            "2222",
            "--vendor",
            "ios",
            "--folder",
            "/dc1/core/",
            "--tag",
            "core",
            "--tag",
            "prod",
            "--ssh-user",
            "admin",
            "--password-stdin",
            "--ssh-key",
            "/home/n/.ssh/id_core",
            "--key-passphrase-stdin",
            "--host-key",
            "ssh-ed25519 SHA256:abc",
            "--http-port",
            "8443",
            "--token-stdin",
            "--onvif-user",
            "cam",
            "--onvif-password-stdin",
        ],
        &format!("{PW}\n{KEYPASS}\n{TOKEN}\n{ONVIF}\n"),
    )?)?;
    let host_id = created_id(&host)?;
    let body = user_file(&f, "body.md", &format!("# Reload\n\n1. {BODY}\n"))?;
    ok(f.cli(
        &[
            "procedure",
            "add",
            "reload",
            "--org",
            "noc",
            "--body",
            &body,
            "--param",
            "host=core-sw1:the switch",
            "--read-only",
        ],
        "",
    )?)?;
    let mem = user_file(&f, "mem.md", MEMORY)?;
    ok(f.cli(
        &["memory", "add", "lldp quirk", "--private", "--body", &mem],
        "",
    )?)?;
    ok(f.cli(
        &[
            "memory",
            "add",
            "sw1 notes",
            "--org",
            "noc",
            "--body",
            &mem,
            "--host",
            "dc1/core/core-sw1",
        ],
        "",
    )?)?;
    ok(f.cli(
        &[
            "connector",
            "add",
            "netbox",
            "--org",
            "noc",
            "--url",
            "https://netbox.example.net/api",
            "--auth",
            "api-key",
            "--header",
            "X-Api-Key",
            "--secret-stdin",
            "--default-header",
            "Accept: application/json",
        ],
        &format!("{CONN_KEY}\n"),
    )?)?;
    ok(f.cli(
        &[
            "mcp",
            "add",
            "tickets",
            "--org",
            "noc",
            "--command",
            "mcp-tickets",
            "--arg",
            "--verbose",
            "--token-stdin",
        ],
        &format!("{MCP_TOKEN}\n"),
    )?)?;
    ok(f.cli(
        &[
            "diagram",
            "add",
            "core",
            "--org",
            "noc",
            "--node",
            "a=core-sw1",
            "--node",
            "b=internet",
            "--link",
            "a,b,Gi0/1",
        ],
        "",
    )?)?;
    let run = serde_json::json!({
        "procedure_id": "p1", "started_ms": 1, "who": "alice", "outcome": "succeeded",
        "arguments": [{"name": "host", "value": "core-sw1"}],
        "messages": [{"role": "assistant", "text": RUN_MSG}],
        "tool_calls": [{"tool": "exec", "host": "core-sw1", "summary": "show version"}],
        "output": RUN_OUTPUT
    });
    let run_file = user_file(&f, "run.json", &run.to_string())?;
    let run_id = created_id(&ok(f.cli(
        &[
            "records",
            "put",
            "--kind",
            "procedure-run",
            "--org",
            "noc",
            &run_file,
        ],
        "",
    )?)?)?;
    let ptr = user_file(
        &f,
        "ptr.json",
        r#"{"name":"core-sw1","folder":"","secret_kind":"password","created_ms":1,"rotated_ms":2}"#,
    )?;
    ok(f.cli(
        &[
            "records",
            "put",
            "--kind",
            "keychain-pointer",
            "--private",
            &ptr,
        ],
        "",
    )?)?;

    // Each read below is a new process; sealed fields come back through the broker.
    let h = show(&f, "host", "core-sw1")?;
    let fields = &h["fields"];
    assert_eq!(h["id"], host_id.as_str());
    assert_eq!(h["mac_ok"], true);
    assert_eq!(h["revision"], 1);
    assert_eq!(fields["folder"], "dc1/core");
    assert_eq!(fields["port"], 2222);
    assert_eq!(fields["ssh.password"], PW);
    assert_eq!(fields["ssh.key_passphrase"], KEYPASS);
    assert_eq!(fields["ssh.private_key_path"], "/home/n/.ssh/id_core");
    assert_eq!(fields["http.token"], TOKEN);
    assert_eq!(fields["onvif.password"], ONVIF);
    assert_eq!(fields["ssh.host_key_fingerprint"], "ssh-ed25519 SHA256:abc");
    let sealed: Vec<&str> = h["sealed_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        sealed,
        [
            "http.token",
            "onvif.password",
            "ssh.key_passphrase",
            "ssh.password",
            "ssh.private_key_path"
        ]
    );

    let p = show(&f, "procedure", "reload")?;
    assert!(p["fields"]["body"].as_str().unwrap().contains(BODY));
    assert_eq!(p["fields"]["read_only"], true);
    assert_eq!(p["fields"]["parameters"][0]["default"], "core-sw1");
    assert_eq!(show(&f, "memory", "lldp quirk")?["scope"], "Private");
    let m = show(&f, "memory", "sw1 notes")?;
    assert_eq!(m["fields"]["body"], MEMORY);
    assert_eq!(m["fields"]["host_ids"][0], host_id.as_str());
    let c = show(&f, "connector", "netbox")?;
    assert_eq!(c["fields"]["auth"]["key"], CONN_KEY);
    assert_eq!(
        c["fields"]["default_headers"][0]["value"],
        "application/json"
    );
    assert_eq!(
        show(&f, "mcp-server", "tickets")?["fields"]["auth"]["token"],
        MCP_TOKEN
    );
    let d = show(&f, "diagram", "core")?;
    assert_eq!(d["fields"]["nodes"][0]["host_id"], host_id.as_str());
    assert_eq!(d["fields"]["links"][0]["label"], "Gi0/1");
    let r = show(&f, "procedure-run", &run_id)?;
    assert_eq!(r["fields"]["output"], RUN_OUTPUT);
    assert_eq!(r["fields"]["messages"][0]["text"], RUN_MSG);
    assert_eq!(
        show(&f, "keychain-pointer", "core-sw1")?["fields"]["secret_kind"],
        "password"
    );

    // Without --reveal: sealed values masked.
    let text = ok(f.cli(&["host", "show", "core-sw1"], "")?)?;
    assert!(
        text.contains("ssh.password               ••••   (sealed)"),
        "{text}"
    );
    assert!(!text.contains(PW));
    let pj = json(f.cli(&["procedure", "show", "reload", "--json"], "")?)?;
    assert_eq!(pj["fields"]["body"], "••••");

    let v = json(f.cli(&["records", "verify", "--json"], "")?)?;
    assert_eq!(
        (v["records"].as_u64(), v["failed"].as_u64()),
        (Some(9), Some(0)),
        "{v}"
    );

    // The database file itself: no canary, but the plaintext fields lists need.
    let raw = raw_db(&f);
    for c in canaries() {
        assert!(!contains(&raw, c), "{c:?} found in the database file");
    }
    assert!(contains(&raw, "10.0.0.1") && contains(&raw, "core-sw1"));
    Ok(())
}

#[test]
fn edits_reseal_and_references_show_as_references() -> Result<()> {
    let f = signed_in()?;
    ok(f.cli(
        &[
            "host",
            "add",
            "edge1",
            "--org",
            "noc",
            "--address",
            "10.1.0.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    )?)?;
    let out = f.cli(
        &[
            "host",
            "add",
            "edge2",
            "--org",
            "noc",
            "--address",
            "10.1.0.2",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    )?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--to-keychain"),
        "the CLI offers to move the literal"
    );
    ok(f.cli(
        &[
            "host",
            "edit",
            "edge1",
            "--address",
            "10.1.0.11",
            "--port",
            "2200",
        ],
        "",
    )?)?;
    let h = show(&f, "host", "edge1")?;
    assert_eq!(
        (h["revision"].as_u64(), h["fields"]["address"].as_str()),
        (Some(2), Some("10.1.0.11"))
    );
    assert_eq!(
        h["fields"]["ssh.password"], PW,
        "re-sealed under the new binding"
    );
    // Move the literal into the keychain: the record keeps only the reference.
    ok(f.cli(
        &[
            "host",
            "edit",
            "edge1",
            "--password-stdin",
            "--to-keychain",
            "edge1-admin",
        ],
        &format!("{PW}\n"),
    )?)?;
    let text = ok(f.cli(&["host", "show", "edge1"], "")?)?;
    assert!(text.contains("keychain:edge1-admin"), "{text}");
    let kc = ok(f.cli(&["keychain", "list"], "")?)?;
    assert!(kc.contains("keychain:edge1-admin"));
    // Pointers to keychain entries become records (metadata only).
    let sync = ok(f.cli(&["records", "sync-pointers"], "")?)?;
    assert!(sync.contains("1 created"), "{sync}");
    let p = show(&f, "keychain-pointer", "edge1-admin")?;
    assert_eq!(
        (p["scope"].as_str(), p["fields"]["secret_kind"].as_str()),
        (Some("Private"), Some("password"))
    );
    assert!(
        ok(f.cli(&["records", "sync-pointers"], "")?)?
            .contains("0 created, 0 updated, 1 unchanged")
    );
    let audit = json(f.cli(&["records", "audit", "--json"], "")?)?;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "update", "create", "create"]);
    let _ = f.cli(&["keychain", "rm", "edge1-admin"], "");
    Ok(())
}

#[test]
fn listing_needs_no_broker() -> Result<()> {
    let mut f = signed_in()?;
    let mut cfg = String::new();
    for i in 0..300 {
        cfg.push_str(&format!(
            "Host sw{i}\n  HostName 10.2.{}.{}\n  User admin\n",
            i / 250,
            i % 250
        ));
    }
    let cfg = user_file(&f, "ssh_config", &cfg)?;
    ok(f.cli(
        &[
            "host",
            "import",
            "--ssh-config",
            &cfg,
            "--org",
            "noc",
            "--vendor",
            "routeros",
            "--tag",
            "lab",
        ],
        "",
    )?)?;
    // Stop the broker: listing and filtering still work, so they made no broker request.
    f.broker = None;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let all = json(f.cli(&["host", "list", "--json"], "")?)?;
    assert_eq!(all.as_array().unwrap().len(), 300);
    let some = json(f.cli(
        &[
            "host", "list", "--json", "--org", "noc", "--vendor", "routeros", "--tag", "lab",
            "--text", "sw29",
        ],
        "",
    )?)?;
    assert_eq!(some.as_array().unwrap().len(), 11, "sw29, sw290..sw299");
    let err = fail(f.cli(&["host", "show", "sw1"], "")?)?;
    assert!(err.contains("broker unavailable"), "{err}");
    Ok(())
}

#[test]
fn bench_records_lists_with_zero_broker_requests() -> Result<()> {
    let f = signed_in()?;
    let b = json(f.cli(
        &[
            "bench", "records", "--json", "--hosts", "2000", "--open", "200",
        ],
        "",
    )?)?;
    assert_eq!(b["list_broker_requests"], 0, "{b}");
    assert_eq!(b["hosts"], 2000);
    assert!(
        b["open_batch_ms"].as_f64().unwrap() < b["open_one_by_one_ms"].as_f64().unwrap(),
        "{b}"
    );
    Ok(())
}
