//! Service auth from the broker (`ReleaseServiceAuth`): a connector's or
//! MCP server's sealed auth only to copilotd, only from a record whose MAC
//! verifies, only its `auth` field, only for the URL the record names, and
//! only if the ciphertext was sealed for that URL. Records are written by
//! the real CLI; the requests are built by copilotd's own code
//! (`connectors::Connector::auth_request`) and altered the way an attacker
//! would, then sent by peers with each role.

use anyhow::{Context, Result};
use gatehouse_copilotd::connectors::Connector;
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{BrokerRequest, ServiceAuth};
use gatehouse_records::store::{field_address, verify_item};
use gatehouse_records::{Kind, Store};
use gatehouse_tests::broker::{BrokerFixture, Options};
use serde_json::Value;

fn ok(out: std::process::Output) -> Result<()> {
    anyhow::ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn store(f: &BrokerFixture) -> Result<Store> {
    Ok(Store::open(
        &f.home.join(gatehouse_records::store::FILE_NAME),
    )?)
}

fn connector(f: &BrokerFixture, name: &str) -> Result<Connector> {
    Connector::load(&store(f)?, None, name).map_err(|e| anyhow::anyhow!(e))
}

fn release(s: &ServiceAuth) -> BrokerRequest {
    BrokerRequest::ReleaseServiceAuth {
        service: Box::new(s.clone()),
    }
}

/// The refusal's text if `v` is a `CredentialRefused`.
fn refusal(v: &Value) -> Option<String> {
    v["err"]
        .get("CredentialRefused")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn released(v: &Value) -> Result<Value> {
    let bytes: Vec<u8> = serde_json::from_value(
        v.get("ServiceAuth")
            .with_context(|| format!("not released: {v}"))?
            .clone(),
    )?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[test]
fn service_auth_only_to_copilotd_for_the_verified_record_and_its_url() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "service-auth-pass\n",
    )?)?;
    ok(f.cli(&["org", "create", "net"], "")?)?;
    let pid = std::process::id();
    let token = format!("tok-{pid}-kc");
    ok(f.cli(
        &["keychain", "set", "inv-token", "--kind", "token"],
        &format!("{token}\n"),
    )?)?;
    let url = "http://127.0.0.1:9/api";
    ok(f.cli(
        &[
            "connector",
            "add",
            "inventory",
            "--org",
            "net",
            "--url",
            url,
            "--auth",
            "bearer",
            "--secret-ref",
            "keychain:inv-token",
        ],
        "",
    )?)?;
    let password = format!("pw-{pid}-literal");
    ok(f.cli(
        &[
            "connector",
            "add",
            "billing",
            "--org",
            "net",
            "--kind",
            "soap",
            "--url",
            "https://billing.example.invalid/ws",
            "--auth",
            "basic",
            "--username",
            "svc",
            "--secret-stdin",
        ],
        &format!("{password}\n"),
    )?)?;
    ok(f.cli(
        &[
            "host",
            "add",
            "core1",
            "--org",
            "net",
            "--address",
            "10.0.0.1",
            "--vendor",
            "ios",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        "host-pw-123\n",
    )?)?;

    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let inv = connector(&f, "inventory")?.auth_request();
    let billing = connector(&f, "billing")?.auth_request();

    // The right requests: the keychain reference resolved; the sealed literal.
    let auth = released(&copilot.ok(&release(&inv))?)?;
    assert_eq!(auth["type"], "bearer");
    assert_eq!(auth["token"], token.as_str());
    let auth = released(&copilot.ok(&release(&billing))?)?;
    assert_eq!(auth["username"], "svc");
    assert_eq!(auth["password"], password.as_str());

    // Released values join exact-value redaction (a server echoing them back).
    let echo = format!("server said: {password} and {token}");
    let red = copilot.ok(&BrokerRequest::Redact { text: echo })?;
    let red = red["Redacted"]["text"].as_str().context("redacted")?;
    assert!(!red.contains(&password) && !red.contains(&token), "{red}");

    // Only copilotd.
    for role in [PeerRole::Sessiond, PeerRole::Ui] {
        let mut p = f.peer(role)?;
        let v = p.call(&release(&inv))?;
        assert!(v["err"].get("Forbidden").is_some(), "{role:?}: {v}");
    }

    // Another destination than the record names: another host, another path.
    for dest in [
        "http://evil.example.invalid/api",
        "http://127.0.0.1:9/api/admin",
        "http://127.0.0.1:9/ap",
    ] {
        let mut other = inv.clone();
        other.destination = dest.into();
        let why = refusal(&copilot.call(&release(&other))?).context(dest)?;
        assert!(why.contains("destination"), "{dest}: {why}");
    }

    // A tampered MAC.
    let mut bad_mac = inv.clone();
    bad_mac.record.mac[0] ^= 1;
    let why = refusal(&copilot.call(&release(&bad_mac))?).context("bad mac")?;
    assert!(why.contains("integrity"), "{why}");

    // The record's base_url rewritten in the MACed content (no key to re-MAC).
    let mut forged = inv.clone();
    let content = String::from_utf8_lossy(&forged.record.item.content).into_owned();
    anyhow::ensure!(content.contains(url));
    forged.record.item.content = content.replace(url, "http://127.0.0.1:8/api").into_bytes();
    forged.destination = "http://127.0.0.1:8/api".into();
    let why = refusal(&copilot.call(&release(&forged))?).context("forged")?;
    assert!(why.contains("integrity"), "{why}");

    // A host record's password through this operation.
    let host = store(&f)?.resolve(Kind::Host, None, "core1")?;
    let host_req = ServiceAuth {
        record: verify_item(&host),
        field: field_address(&host.meta, "ssh.password", &host.plain),
        destination: "10.0.0.1".into(),
    };
    let why = refusal(&copilot.call(&release(&host_req))?).context("host")?;
    assert!(why.contains("host record"), "{why}");
    // …even named as `auth`.
    let mut host_auth = host_req.clone();
    host_auth.field.field = "auth".into();
    assert!(refusal(&copilot.call(&release(&host_auth))?).is_some());

    // Only `auth`: another field of the same record.
    let mut other_field = inv.clone();
    other_field.field.field = "default_headers".into();
    let why = refusal(&copilot.call(&release(&other_field))?).context("field")?;
    assert!(why.contains("only"), "{why}");

    // One record's auth field presented with another record.
    let mut mixed = inv.clone();
    mixed.field = billing.field.clone();
    assert!(refusal(&copilot.call(&release(&mixed))?).is_some());

    // Moved ciphertext: the base_url changed after sealing by someone who can
    // MAC records (a person's tool), the old ciphertext kept. The MAC
    // verifies and the destination matches the record, but the auth was
    // sealed for the old URL: it does not open.
    let mut moved = store(&f)?.resolve(Kind::Connector, None, "inventory")?;
    let evil = "http://evil.example.invalid/api";
    moved
        .plain
        .insert("base_url".into(), Value::String(evil.into()));
    let mut ui = f.peer(PeerRole::Ui)?;
    let macs = ui.ok(&BrokerRequest::MacRecords {
        items: vec![verify_item(&moved).item],
    })?;
    let mac: Vec<Vec<u8>> = serde_json::from_value(macs["Macs"].clone())?;
    moved.mac = mac[0].clone();
    let moved_req = ServiceAuth {
        record: verify_item(&moved),
        field: field_address(&moved.meta, "auth", &moved.plain),
        destination: evil.into(),
    };
    let why = refusal(&copilot.call(&release(&moved_req))?).context("moved")?;
    assert!(why.contains("does not open"), "{why}");
    // …and presented with the old binding, to make it open: refused first.
    let mut old_binding = moved_req.clone();
    old_binding.field.binding = inv.field.binding.clone();
    let why = refusal(&copilot.call(&release(&old_binding))?).context("binding")?;
    assert!(why.contains("binding"), "{why}");

    // Every release and every refusal is in the credential log, naming the
    // record's field and the destination, never the value.
    let log_path = f.home.join("audit").join("credentials.jsonl");
    let (rows, bad): (Vec<gatehouse_ipc::audit::CredentialRow>, _) =
        gatehouse_ipc::audit::read(&log_path)?;
    assert!(bad.is_empty(), "{bad:?}");
    let service: Vec<_> = rows
        .iter()
        .filter(|r| r.operation.to_string() == "ReleaseServiceAuth")
        .collect();
    assert!(
        service.iter().any(|r| r.refused.is_none()
            && r.destination == url
            && r.credential.contains("connector")
            && r.credential.ends_with("field auth")),
        "{service:#?}"
    );
    assert!(service.iter().filter(|r| r.refused.is_some()).count() >= 10);
    for r in &service {
        assert_eq!(r.requester.role, PeerRole::Copilotd);
    }
    let text = std::fs::read_to_string(&log_path)?;
    assert!(
        !text.contains(&token) && !text.contains(&password),
        "{text}"
    );
    Ok(())
}

#[test]
fn service_auth_kinds_references_and_mcp_transports() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "service-kinds-pass\n",
    )?)?;
    let pid = std::process::id();
    // An AI provider's key and an SSH private key in the keychain.
    ok(f.cli(
        &[
            "copilot",
            "config",
            "--kind",
            "openai",
            "--endpoint",
            "https://api.example.invalid/v1",
            "--model",
            "m",
            "--api-key-stdin",
            "--api-key-name",
            "prov",
        ],
        &format!("sk-{pid}-provider\n"),
    )?)?;
    ok(f.cli(
        &["keychain", "set", "a-key", "--kind", "private-key"],
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n-----END OPENSSH PRIVATE KEY-----\n",
    )?)?;
    let mcp_token = format!("mcp-{pid}-tok");
    ok(f.cli(
        &["keychain", "set", "mcp-tok", "--kind", "token"],
        &format!("{mcp_token}\n"),
    )?)?;
    let add = |name: &str, reference: &str| {
        f.cli(
            &[
                "connector",
                "add",
                name,
                "--private",
                "--url",
                "https://x.example.invalid/",
                "--auth",
                "bearer",
                "--secret-ref",
                reference,
            ],
            "",
        )
    };
    ok(add("uses-provider-key", "keychain:prov")?)?;
    ok(add("uses-ssh-key", "keychain:a-key")?)?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    // A connector cannot carry the AI provider's key, or a private key, away.
    let v = copilot.call(&release(
        &connector(&f, "uses-provider-key")?.auth_request(),
    ))?;
    let why = refusal(&v).context("provider key")?;
    assert!(why.contains("provider"), "{why}");
    assert!(!v.to_string().contains(&format!("sk-{pid}")), "{v}");
    let why = refusal(&copilot.call(&release(&connector(&f, "uses-ssh-key")?.auth_request()))?)
        .context("private key")?;
    assert!(why.contains("private-key"), "{why}");

    // MCP servers: released for the HTTP transport URL; never for stdio.
    let mcp_url = "https://mcp.example.invalid/mcp";
    ok(f.cli(
        &[
            "mcp",
            "add",
            "tools",
            "--private",
            "--url",
            mcp_url,
            "--token-ref",
            "keychain:mcp-tok",
        ],
        "",
    )?)?;
    ok(f.cli(
        &[
            "mcp",
            "add",
            "local",
            "--private",
            "--command",
            "/usr/bin/true",
            "--token-stdin",
        ],
        "stdio-token-1\n",
    )?)?;
    let mcp_req = |name: &str, destination: &str| -> Result<ServiceAuth> {
        let r = store(&f)?.resolve(Kind::McpServer, None, name)?;
        Ok(ServiceAuth {
            record: verify_item(&r),
            field: field_address(&r.meta, "auth", &r.plain),
            destination: destination.into(),
        })
    };
    let auth = released(&copilot.ok(&release(&mcp_req("tools", mcp_url)?))?)?;
    assert_eq!(auth["token"], mcp_token.as_str());
    let why = refusal(&copilot.call(&release(&mcp_req(
        "tools",
        "https://mcp.example.invalid/other",
    )?))?)
    .context("mcp destination")?;
    assert!(why.contains("destination"), "{why}");
    let why =
        refusal(&copilot.call(&release(&mcp_req("local", "/usr/bin/true")?))?).context("stdio")?;
    assert!(why.contains("stdio"), "{why}");
    Ok(())
}
