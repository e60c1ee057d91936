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

// ------------------------------------------------------ approved record writes

use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{
    Action, ApprovalToken, ApprovedRecord, Decision, KeyScope, MacItem, SealItem,
};
use gatehouse_ipc::record_write::{RECORDS_HOST, RECORDS_VENDOR, RecordWrite};
use gatehouse_records::fields::{self, MacInput};
use std::collections::BTreeMap;

fn record_action(scope: &KeyScope, write: &RecordWrite) -> Action {
    Action {
        host: RECORDS_HOST.into(),
        vendor: RECORDS_VENDOR.into(),
        org: match scope {
            KeyScope::Org(id) => id.clone(),
            KeyScope::Private => "private".into(),
        },
        credential: None,
        command: write.render(),
        expected_effect: "test write".into(),
    }
}

/// A token for `action`, requested by `requester`, approved by a person's tool (`ui`).
fn approved(requester: &mut Peer, ui: &mut Peer, action: Action) -> Result<ApprovalToken> {
    let v = requester.ok(&BrokerRequest::RequestApproval { action })?;
    let id = v["ApprovalRequested"]["id"].as_u64().context("id")?;
    ui.ok(&BrokerRequest::DecideApproval {
        id,
        decision: Decision::Approve,
        presence: None,
    })?;
    let o = requester.ok(&BrokerRequest::ApprovalOutcome { id })?;
    Ok(serde_json::from_value(o["Outcome"]["Approved"].clone())?)
}

/// Seals `body` as the body of record `kind/id` (copilotd may seal).
fn seal_body(
    copilot: &mut Peer,
    scope: &KeyScope,
    kind: &str,
    id: &str,
    body: &str,
) -> Result<Vec<u8>> {
    let address = FieldAddress {
        scope: scope.clone(),
        record_kind: kind.into(),
        record_id: id.into(),
        field: "body".into(),
        binding: Vec::new(),
    };
    let v = copilot.ok(&BrokerRequest::SealFields {
        items: vec![SealItem {
            address,
            plaintext: SecretBytes::new(fields::canonical_json(&Value::String(body.into()))),
        }],
    })?;
    let sealed: Vec<Vec<u8>> = serde_json::from_value(v["Sealed"].clone())?;
    sealed.into_iter().next().context("one ciphertext")
}

/// A new memory's MAC input, as the store builds it.
fn memory_item(
    copilot: &mut Peer,
    scope: &KeyScope,
    id: &str,
    title: &str,
    body: &str,
    host_ids: &[&str],
) -> Result<MacItem> {
    let plain: BTreeMap<String, Value> = [
        ("folder".to_string(), json!("")),
        ("host_ids".to_string(), json!(host_ids)),
        ("title".to_string(), json!(title)),
    ]
    .into();
    let sealed: BTreeMap<String, Vec<u8>> = [(
        "body".to_string(),
        seal_body(copilot, scope, "memory", id, body)?,
    )]
    .into();
    Ok(MacItem {
        scope: scope.clone(),
        record_kind: "memory".into(),
        record_id: id.into(),
        content: fields::mac_content(&MacInput {
            owner: "copilot",
            created_ms: 1,
            updated_ms: 1,
            revision: 1,
            plain: &plain,
            sealed: &sealed,
        }),
    })
}

fn mac_approved(token: &ApprovalToken, item: MacItem, hosts: Vec<VerifyItem>) -> BrokerRequest {
    BrokerRequest::MacApprovedRecord(Box::new(ApprovedRecord {
        token: token.clone(),
        item,
        current: None,
        hosts,
    }))
}

fn not_approved(v: &Value) -> bool {
    refusal(v).and_then(|r| r.get("NotApproved")).is_some()
}

fn approval_error(v: &Value) -> Option<&Value> {
    v["err"].get("Approval")
}

use serde_json::json;

#[test]
fn mac_approved_record_macs_exactly_the_approved_write_once() -> Result<()> {
    let w = World::start()?;
    let mut copilot = w.f.peer(PeerRole::Copilotd)?;
    let mut ui = w.f.peer(PeerRole::Ui)?;
    let host = w.stored(Kind::Host, "core1")?;
    let scope = host.meta.scope.clone();
    let host_proof = verify_item(&host);
    let host_id = host.meta.id.as_str();

    // The write a person approves: a memory linked to core1.
    let write = RecordWrite::Memory {
        title: "uplink".into(),
        folder: String::new(),
        hosts: vec!["core1".into()],
        body: "ether2 flaps at night".into(),
    };
    let token = approved(&mut copilot, &mut ui, record_action(&scope, &write))?;
    let id = "00000000000000a1";

    // Records a person did not approve, each refused (and the token survives them).
    let cases: Vec<(&str, MacItem, Vec<VerifyItem>)> = vec![
        (
            "one byte of the body differs",
            memory_item(
                &mut copilot,
                &scope,
                id,
                "uplink",
                "ether2 flaps at nighT",
                &[host_id],
            )?,
            vec![host_proof.clone()],
        ),
        (
            "another title",
            memory_item(
                &mut copilot,
                &scope,
                id,
                "uplink2",
                "ether2 flaps at night",
                &[host_id],
            )?,
            vec![host_proof.clone()],
        ),
        (
            "no linked host",
            memory_item(
                &mut copilot,
                &scope,
                id,
                "uplink",
                "ether2 flaps at night",
                &[],
            )?,
            Vec::new(),
        ),
        (
            "linked host not presented",
            memory_item(
                &mut copilot,
                &scope,
                id,
                "uplink",
                "ether2 flaps at night",
                &[host_id],
            )?,
            Vec::new(),
        ),
        (
            "another scope",
            memory_item(
                &mut copilot,
                &KeyScope::Private,
                id,
                "uplink",
                "ether2 flaps at night",
                &[host_id],
            )?,
            vec![host_proof.clone()],
        ),
    ];
    for (what, item, hosts) in cases {
        let v = copilot.call(&mac_approved(&token, item, hosts))?;
        assert!(not_approved(&v), "{what}: {v}");
    }
    // The body's ciphertext swapped for another record's (MAC input otherwise right).
    let mut moved = memory_item(
        &mut copilot,
        &scope,
        id,
        "uplink",
        "ether2 flaps at night",
        &[host_id],
    )?;
    let procedure = w.stored(Kind::Procedure, "check-links")?;
    moved.content = with_sealed(&moved.content, "body", &procedure.sealed["body"])?;
    let v = copilot.call(&mac_approved(&token, moved, vec![host_proof.clone()]))?;
    assert_eq!(v["err"]["OpenFailed"]["failure"], "Tampered", "{v}");
    // A token whose command was changed to match other content: its signature fails.
    let mut forged = token.clone();
    let other = RecordWrite::Memory {
        title: "uplink".into(),
        folder: String::new(),
        hosts: vec!["core1".into()],
        body: "forged".into(),
    };
    forged.action.command = other.render();
    let forged_item = memory_item(&mut copilot, &scope, id, "uplink", "forged", &[host_id])?;
    let v = copilot.call(&mac_approved(
        &forged,
        forged_item,
        vec![host_proof.clone()],
    ))?;
    assert_eq!(approval_error(&v), Some(&json!("BadSignature")), "{v}");

    let right = memory_item(
        &mut copilot,
        &scope,
        id,
        "uplink",
        "ether2 flaps at night",
        &[host_id],
    )?;
    // Only copilotd, and only the copilotd that asked.
    let v = ui.call(&mac_approved(
        &token,
        right.clone(),
        vec![host_proof.clone()],
    ))?;
    assert!(v["err"].get("Forbidden").is_some(), "{v}");
    let mut other_copilot = w.f.peer(PeerRole::Copilotd)?;
    let v = other_copilot.call(&mac_approved(
        &token,
        right.clone(),
        vec![host_proof.clone()],
    ))?;
    assert!(
        approval_error(&v)
            .and_then(|e| e.get("WrongExecutor"))
            .is_some(),
        "{v}"
    );

    // The approved record: MACed, and the MAC verifies.
    let v = copilot.ok(&mac_approved(
        &token,
        right.clone(),
        vec![host_proof.clone()],
    ))?;
    let macs: Vec<Vec<u8>> = serde_json::from_value(v["Macs"].clone())?;
    let check = copilot.ok(&BrokerRequest::VerifyRecords {
        items: vec![VerifyItem {
            item: right.clone(),
            mac: macs[0].clone(),
        }],
    })?;
    assert_eq!(check["Verified"], json!([true]));
    // Replayed: the token was spent.
    let v = copilot.call(&mac_approved(&token, right, vec![host_proof.clone()]))?;
    assert_eq!(approval_error(&v), Some(&json!("Replayed")), "{v}");

    // A token for a device command is not a record write.
    let device = approved(
        &mut copilot,
        &mut ui,
        Action {
            host: "core1".into(),
            vendor: "ios".into(),
            org: record_action(&scope, &write).org,
            credential: None,
            command: write.render(),
            expected_effect: String::new(),
        },
    )?;
    let item = memory_item(
        &mut copilot,
        &scope,
        id,
        "uplink",
        "ether2 flaps at night",
        &[host_id],
    )?;
    let v = copilot.call(&mac_approved(&device, item, vec![host_proof]))?;
    assert_eq!(refusal(&v), Some(&json!("NotARecordWrite")), "{v}");
    Ok(())
}

#[test]
fn a_procedure_update_changes_the_body_only() -> Result<()> {
    let w = World::start()?;
    let mut copilot = w.f.peer(PeerRole::Copilotd)?;
    let mut ui = w.f.peer(PeerRole::Ui)?;
    let current = w.stored(Kind::Procedure, "check-links")?;
    let scope = current.meta.scope.clone();
    let new_body = "1. show interfaces status\n";
    let write = RecordWrite::UpdateProcedure {
        procedure: "check-links".into(),
        folder: String::new(),
        body: new_body.into(),
    };
    let token = approved(&mut copilot, &mut ui, record_action(&scope, &write))?;
    let sealed = seal_body(
        &mut copilot,
        &scope,
        "procedure",
        &current.meta.id,
        new_body,
    )?;
    let next = |read_only: bool, revision: u64| -> Result<MacItem> {
        let mut plain = current.plain.clone();
        if read_only {
            plain.insert("read_only".into(), json!(true));
        }
        let sealed: BTreeMap<String, Vec<u8>> = [("body".to_string(), sealed.clone())].into();
        Ok(MacItem {
            scope: scope.clone(),
            record_kind: "procedure".into(),
            record_id: current.meta.id.clone(),
            content: fields::mac_content(&MacInput {
                owner: &current.meta.owner,
                created_ms: current.meta.created_ms,
                updated_ms: current.meta.updated_ms + 1,
                revision,
                plain: &plain,
                sealed: &sealed,
            }),
        })
    };
    let request = |item: MacItem, with_current: bool| {
        BrokerRequest::MacApprovedRecord(Box::new(ApprovedRecord {
            token: token.clone(),
            item,
            current: with_current.then(|| verify_item(&current)),
            hosts: Vec::new(),
        }))
    };
    let rev = current.meta.revision + 1;
    // Not approved: another field changed too, an odd revision, or no
    // stored record to compare with.
    for (what, req) in [
        ("read_only flipped", request(next(true, rev)?, true)),
        ("revision skipped", request(next(false, rev + 1)?, true)),
        (
            "without the stored record",
            request(next(false, rev)?, false),
        ),
    ] {
        let v = copilot.call(&req)?;
        assert!(not_approved(&v), "{what}: {v}");
    }
    // The stored record presented, tampered.
    let mut stale = verify_item(&current);
    stale.mac[3] ^= 0x40;
    let v = copilot.call(&BrokerRequest::MacApprovedRecord(Box::new(
        ApprovedRecord {
            token: token.clone(),
            item: next(false, rev)?,
            current: Some(stale),
            hosts: Vec::new(),
        },
    )))?;
    assert!(refusal(&v).and_then(|r| r.get("Tampered")).is_some(), "{v}");
    // The approved update.
    let v = copilot.ok(&request(next(false, rev)?, true))?;
    assert!(v.get("Macs").is_some(), "{v}");
    Ok(())
}
