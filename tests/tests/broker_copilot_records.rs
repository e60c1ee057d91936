//! The broker's two record operations for copilotd, attacked directly by a
//! peer with the copilotd role: `OpenNote` opens a procedure's or memory's
//! body and nothing else (no credential, no procedure run, not for a
//! tampered record, not a ciphertext moved from elsewhere, and the body does
//! not join exact-value redaction); `MacApprovedRecord` MACs a record only
//! if it is exactly the write a person approved, once.
//! Records are written by the real CLI; requests are built from the store as
//! copilotd builds them.

use anyhow::{Context, Result, ensure};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{BrokerRequest, FieldAddress, VerifyItem};
use gatehouse_ipc::record_content::{self, FieldValue};
use gatehouse_records::store::{field_address, verify_item};
use gatehouse_records::{Kind, Store, StoredRecord};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer};
use serde_json::Value;

fn ok(out: std::process::Output) -> Result<()> {
    ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A profile with an org, a host whose password is a canary, a procedure and a memory.
struct World {
    f: BrokerFixture,
    password: String,
    procedure_body: String,
    memory_body: String,
}

impl World {
    fn start() -> Result<World> {
        let f = BrokerFixture::start(Options::default())?;
        ok(f.cli(
            &["account", "init", "--passphrase-stdin"],
            "notes-test-pass\n",
        )?)?;
        ok(f.cli(&["org", "create", "net"], "")?)?;
        let password = format!("canary-pw-{}", std::process::id());
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
            &format!("{password}\n"),
        )?)?;
        let procedure_body = "1. show ip interface brief on {{router}}\n".to_string();
        ok(f.cli(
            &[
                "procedure",
                "add",
                "check-links",
                "--org",
                "net",
                "--body",
                "-",
                "--param",
                "router:the router",
            ],
            &procedure_body,
        )?)?;
        let memory_body = "core1 drops BGP when the uplink flaps; check ether2 first.".to_string();
        ok(f.cli(
            &[
                "memory",
                "add",
                "core1-quirks",
                "--org",
                "net",
                "--body",
                "-",
                "--host",
                "core1",
            ],
            &memory_body,
        )?)?;
        Ok(World {
            f,
            password,
            procedure_body,
            memory_body,
        })
    }

    fn stored(&self, kind: Kind, key: &str) -> Result<StoredRecord> {
        let store = Store::open(&self.f.home.join(gatehouse_records::store::FILE_NAME))?;
        Ok(store.resolve(kind, None, key)?)
    }
}

fn open_note(record: VerifyItem, field: FieldAddress) -> BrokerRequest {
    BrokerRequest::OpenNote {
        record: Box::new(record),
        field,
    }
}

fn note_of(s: &StoredRecord) -> BrokerRequest {
    open_note(verify_item(s), field_address(&s.meta, "body", &s.plain))
}

fn opened(v: &Value) -> Result<String> {
    let bytes: Vec<u8> = serde_json::from_value(v["ok"]["Note"].clone())
        .with_context(|| format!("not a note: {v}"))?;
    Ok(String::from_utf8(bytes)?)
}

fn refusal(v: &Value) -> Option<&Value> {
    v["err"].get("RecordRefused")
}

/// `content` with its sealed `field` replaced by `sealed`.
fn with_sealed(content: &[u8], field: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    let c = record_content::decode(content)?;
    let fields: Vec<(&str, FieldValue<'_>)> = c
        .fields
        .iter()
        .map(|(n, v)| {
            if *n == field {
                (*n, FieldValue::Sealed(sealed))
            } else {
                (*n, v.clone())
            }
        })
        .collect();
    Ok(record_content::encode(
        c.owner,
        c.created_ms,
        c.updated_ms,
        c.revision,
        &fields,
    ))
}

/// A record MACed by a person's tool (the ui role may MAC records) over
/// `content`: a validly MACed record holding whatever the test put in it.
fn macked(ui: &mut Peer, mut item: VerifyItem, content: Vec<u8>) -> Result<VerifyItem> {
    item.item.content = content;
    let v = ui.ok(&BrokerRequest::MacRecords {
        items: vec![item.item.clone()],
    })?;
    let macs: Vec<Vec<u8>> = serde_json::from_value(v["Macs"].clone())?;
    item.mac = macs.into_iter().next().context("one mac")?;
    Ok(item)
}

fn cached_secrets(p: &mut Peer) -> Result<u64> {
    let v = p.ok(&BrokerRequest::Status)?;
    v["Status"]["cached_secrets"]
        .as_u64()
        .context("cached_secrets")
}

#[test]
fn open_note_opens_procedure_and_memory_bodies_only() -> Result<()> {
    let w = World::start()?;
    let mut copilot = w.f.peer(PeerRole::Copilotd)?;
    let procedure = w.stored(Kind::Procedure, "check-links")?;
    let memory = w.stored(Kind::Memory, "core1-quirks")?;
    let host = w.stored(Kind::Host, "core1")?;

    // The bodies, and the opened text does not join exact-value redaction
    // (a runbook is private, not a secret to scrub from every prompt).
    let before = cached_secrets(&mut copilot)?;
    assert_eq!(
        opened(&copilot.call(&note_of(&procedure))?)?,
        w.procedure_body
    );
    assert_eq!(opened(&copilot.call(&note_of(&memory))?)?, w.memory_body);
    assert_eq!(cached_secrets(&mut copilot)?, before);
    let r = copilot.ok(&BrokerRequest::Redact {
        text: w.memory_body.clone(),
    })?;
    assert_eq!(r["Redacted"]["text"], w.memory_body.as_str());

    // Only copilotd: people have OpenFields, sessiond has no business here.
    for role in [PeerRole::Sessiond, PeerRole::Ui] {
        let v = w.f.peer(role)?.call(&note_of(&procedure))?;
        assert!(v["err"].get("Forbidden").is_some(), "{role}: {v}");
    }

    // A host's password through this operation: refused, whichever record is presented.
    let password_field = field_address(&host.meta, "ssh.password", &host.plain);
    for record in [verify_item(&host), verify_item(&memory)] {
        let v = copilot.call(&open_note(record, password_field.clone()))?;
        assert!(refusal(&v).and_then(|r| r.get("NotANote")).is_some(), "{v}");
        assert!(!v.to_string().contains(&w.password));
    }
    // Nor a "body" of another kind, nor a procedure run's sealed fields, nor connector auth.
    for (kind, field) in [
        ("host", "body"),
        ("procedure-run", "output"),
        ("procedure-run", "arguments"),
        ("connector", "auth"),
        ("mcp-server", "auth"),
        ("procedure", "name"),
    ] {
        let mut a = field_address(&procedure.meta, "body", &procedure.plain);
        a.record_kind = kind.into();
        a.field = field.into();
        let v = copilot.call(&open_note(verify_item(&procedure), a))?;
        assert!(
            refusal(&v).and_then(|r| r.get("NotANote")).is_some(),
            "{kind} {field}: {v}"
        );
    }
    // The body of one record presented with another record.
    let v = copilot.call(&open_note(
        verify_item(&procedure),
        field_address(&memory.meta, "body", &memory.plain),
    ))?;
    assert!(refusal(&v).and_then(|r| r.get("Mismatch")).is_some(), "{v}");

    // A tampered record: content changed without the key, or a MAC flipped.
    let mut tampered = verify_item(&memory);
    let text = String::from_utf8_lossy(&tampered.item.content).into_owned();
    ensure!(text.contains("core1-quirks"));
    tampered.item.content = text.replace("core1-quirks", "core1-quirkz").into_bytes();
    let v = copilot.call(&open_note(
        tampered,
        field_address(&memory.meta, "body", &memory.plain),
    ))?;
    assert!(refusal(&v).and_then(|r| r.get("Tampered")).is_some(), "{v}");
    let mut flipped = verify_item(&memory);
    flipped.mac[0] ^= 1;
    let v = copilot.call(&open_note(
        flipped,
        field_address(&memory.meta, "body", &memory.plain),
    ))?;
    assert!(refusal(&v).and_then(|r| r.get("Tampered")).is_some(), "{v}");

    // Ciphertexts moved into a memory's body, in a record whose MAC is
    // valid (MACed by a person's tool): the host's sealed password and the
    // procedure's body. Both fail to open (they are bound to their place).
    let mut ui = w.f.peer(PeerRole::Ui)?;
    for (from, field) in [(&host, "ssh.password"), (&procedure, "body")] {
        let moved = with_sealed(
            &verify_item(&memory).item.content,
            "body",
            from.sealed.get(field).context("sealed field")?,
        )?;
        let forged = macked(&mut ui, verify_item(&memory), moved)?;
        let v = copilot.call(&open_note(
            forged,
            field_address(&memory.meta, "body", &memory.plain),
        ))?;
        let failed = &v["err"]["OpenFailed"];
        assert_eq!(failed["failure"], "Tampered", "{v}");
        assert!(!v.to_string().contains(&w.password), "{v}");
    }
    Ok(())
}
