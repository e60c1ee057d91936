//! Records for the copilot: opening exactly the note bodies it may read, and
//! MACing exactly the record writes a person approved.
//!
//! Owns the checks in front of both. Reading (`OpenNote`): the presented
//! record's MAC verifies, and the field is the `body` of that procedure or
//! memory record — never a credential, connector or MCP auth, never a
//! procedure run. Writing (`MacApprovedRecord`): the token is a person's
//! approval of a copilot record write, signed, copilotd's own, unexpired and
//! unused (it is spent here); the record content, rendered with the one
//! rendering in `ipc::record_write`, is byte for byte the approved text; a
//! procedure update changes nothing but the body (the stored record is
//! presented and verified); linked hosts are named as the person saw them
//! (their records are presented and verified).
//! Must never: open any other field for copilotd, let an opened body join
//! the exact-value redaction set (it is a note, not a credential: see
//! `vault::is_credential_field`), or MAC content a person did not approve.

use gatehouse_ipc::broker::{
    ApprovalError, ApprovedRecord, BrokerError, FieldAddress, KeyScope, MacItem, RecordRefusal,
    Requester, VerifyItem,
};
use gatehouse_ipc::record_content::{self, FieldValue, RecordContent};
use gatehouse_ipc::record_write::{RECORDS_HOST, RECORDS_VENDOR, RecordWrite};
use zeroize::Zeroizing;

use crate::approvals::{self, Approvals};
use crate::crypto;
use crate::vault::Vault;

/// The one field copilotd may have opened, and the kinds that have it.
const NOTE_FIELD: &str = "body";
const NOTE_KINDS: [&str; 2] = ["procedure", "memory"];
/// The fields a memory has (the records field table's).
const MEMORY_FIELDS: [&str; 4] = ["body", "folder", "host_ids", "title"];

fn refused(r: RecordRefusal) -> BrokerError {
    BrokerError::RecordRefused(r)
}

fn malformed(why: impl Into<String>) -> BrokerError {
    refused(RecordRefusal::Malformed(why.into()))
}

fn not_approved(why: impl Into<String>) -> BrokerError {
    refused(RecordRefusal::NotApproved(why.into()))
}

/// The class and reasons shown on the approval card of a record write.
pub fn classify(vendor: &str) -> Option<(String, Vec<String>)> {
    (vendor == RECORDS_VENDOR).then(|| {
        (
            "moderate".into(),
            vec!["writes a shared record (a memory or a procedure)".into()],
        )
    })
}

/// Checks `v`'s MAC and decodes its content.
fn verified<'a>(vault: &Vault, v: &'a VerifyItem) -> Result<RecordContent<'a>, BrokerError> {
    let mac = vault.record_mac(&v.item)?;
    if !crypto::mac_eq(&mac, &v.mac) {
        return Err(refused(RecordRefusal::Tampered {
            record_kind: v.item.record_kind.clone(),
            record_id: v.item.record_id.clone(),
        }));
    }
    decode(&v.item)
}

fn decode(item: &MacItem) -> Result<RecordContent<'_>, BrokerError> {
    record_content::decode(&item.content)
        .map_err(|e| malformed(format!("{}/{}: {e}", item.record_kind, item.record_id)))
}

/// A plaintext field holding a JSON string.
fn text_field(content: &RecordContent<'_>, name: &str) -> Result<String, BrokerError> {
    match content.field(name) {
        Some(FieldValue::Plain(json)) => {
            serde_json::from_slice(json).map_err(|_| malformed(format!("{name} is not text")))
        }
        Some(FieldValue::Sealed(_)) => Err(malformed(format!("{name} is sealed"))),
        None => Err(malformed(format!("no {name}"))),
    }
}

/// Opens the sealed body of record `item` (content `content`) as text.
fn open_body(
    vault: &mut Vault,
    item: &MacItem,
    content: &RecordContent<'_>,
) -> Result<Zeroizing<String>, BrokerError> {
    let Some(FieldValue::Sealed(sealed)) = content.field(NOTE_FIELD) else {
        return Err(malformed(format!(
            "{}/{} has no sealed body",
            item.record_kind, item.record_id
        )));
    };
    let address = FieldAddress {
        scope: item.scope.clone(),
        record_kind: item.record_kind.clone(),
        record_id: item.record_id.clone(),
        field: NOTE_FIELD.into(),
        binding: Vec::new(),
    };
    // Not a credential field: the body does not join exact-value redaction.
    let json = vault.open_field(&address, sealed)?;
    let text: String =
        serde_json::from_slice(&json).map_err(|_| malformed("the body is not text"))?;
    Ok(Zeroizing::new(text))
}

/// The body of a verified procedure or memory record.
pub fn open_note(
    vault: &mut Vault,
    record: &VerifyItem,
    field: &FieldAddress,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    if !NOTE_KINDS.contains(&field.record_kind.as_str()) || field.field != NOTE_FIELD {
        return Err(refused(RecordRefusal::NotANote {
            record_kind: field.record_kind.clone(),
            field: field.field.clone(),
        }));
    }
    let item = &record.item;
    if item.record_kind != field.record_kind
        || item.record_id != field.record_id
        || item.scope != field.scope
        || !field.binding.is_empty()
    {
        return Err(refused(RecordRefusal::Mismatch(format!(
            "{field} does not belong to the presented record {}/{}",
            item.record_kind, item.record_id
        ))));
    }
    let content = verified(vault, record)?;
    let body = open_body(vault, item, &content)?;
    Ok(Zeroizing::new(body.as_bytes().to_vec()))
}

/// The org an approval names for records of `scope`.
fn org_of(scope: &KeyScope) -> &str {
    match scope {
        KeyScope::Org(id) => id,
        KeyScope::Private => "private",
    }
}

/// A new memory's content, read as the write it is.
fn memory_write(
    vault: &mut Vault,
    req: &ApprovedRecord,
    content: &RecordContent<'_>,
) -> Result<RecordWrite, BrokerError> {
    if let Some((extra, _)) = content
        .fields
        .iter()
        .find(|(n, _)| !MEMORY_FIELDS.contains(n))
    {
        return Err(not_approved(format!(
            "field {extra} is not part of a memory"
        )));
    }
    if content.revision != 1 {
        return Err(not_approved(
            "write_memory creates a new record (revision 1)",
        ));
    }
    let host_ids: Vec<String> = match content.field("host_ids") {
        None => Vec::new(),
        Some(FieldValue::Plain(json)) => {
            serde_json::from_slice(json).map_err(|_| malformed("host_ids is not a list of ids"))?
        }
        Some(FieldValue::Sealed(_)) => return Err(malformed("host_ids is sealed")),
    };
    let mut hosts = Vec::with_capacity(host_ids.len());
    for id in &host_ids {
        let host = req
            .hosts
            .iter()
            .find(|h| h.item.record_kind == "host" && &h.item.record_id == id)
            .ok_or_else(|| not_approved(format!("linked host {id} was not presented")))?;
        if host.item.scope != req.item.scope {
            return Err(refused(RecordRefusal::Mismatch(format!(
                "linked host {id} belongs to {}, the memory to {}",
                host.item.scope, req.item.scope
            ))));
        }
        hosts.push(text_field(&verified(vault, host)?, "name")?);
    }
    Ok(RecordWrite::Memory {
        title: text_field(content, "title")?,
        folder: text_field(content, "folder")?,
        hosts,
        body: open_body(vault, &req.item, content)?.to_string(),
    })
}

/// A procedure's new content, checked against the stored one: only the body
/// (with the update time and revision) may differ.
fn procedure_update(
    vault: &mut Vault,
    req: &ApprovedRecord,
    content: &RecordContent<'_>,
) -> Result<RecordWrite, BrokerError> {
    let current = req
        .current
        .as_ref()
        .ok_or_else(|| not_approved("an update needs the procedure as stored now"))?;
    let (cur, new) = (&current.item, &req.item);
    if cur.record_kind != new.record_kind
        || cur.record_id != new.record_id
        || cur.scope != new.scope
    {
        return Err(refused(RecordRefusal::Mismatch(format!(
            "the stored record presented is {}/{}, not {}/{}",
            cur.record_kind, cur.record_id, new.record_kind, new.record_id
        ))));
    }
    let before = verified(vault, current)?;
    if content.owner != before.owner
        || content.created_ms != before.created_ms
        || content.revision != before.revision.saturating_add(1)
    {
        return Err(not_approved(
            "an update keeps the owner and creation time and is the next revision",
        ));
    }
    let same_names = content.fields.len() == before.fields.len()
        && content
            .fields
            .iter()
            .zip(&before.fields)
            .all(|((a, _), (b, _))| a == b);
    if !same_names {
        return Err(not_approved(
            "an update changes the body only, not the fields",
        ));
    }
    for ((name, value), (_, old)) in content.fields.iter().zip(&before.fields) {
        if *name != NOTE_FIELD && value != old {
            return Err(not_approved(format!(
                "an update changes the body only, not {name}"
            )));
        }
    }
    Ok(RecordWrite::UpdateProcedure {
        procedure: text_field(content, "name")?,
        folder: text_field(content, "folder")?,
        body: open_body(vault, new, content)?.to_string(),
    })
}

/// Which part of an approved write `got` differs from `want` in.
fn difference(want: &RecordWrite, got: &RecordWrite) -> &'static str {
    use RecordWrite::*;
    match (want, got) {
        (Memory { title: a, .. }, Memory { title: b, .. }) if a != b => "the title differs",
        (Memory { folder: a, .. }, Memory { folder: b, .. }) if a != b => "the folder differs",
        (Memory { hosts: a, .. }, Memory { hosts: b, .. }) if a != b => "the linked hosts differ",
        (UpdateProcedure { procedure: a, .. }, UpdateProcedure { procedure: b, .. }) if a != b => {
            "it is another procedure"
        }
        (UpdateProcedure { folder: a, .. }, UpdateProcedure { folder: b, .. }) if a != b => {
            "the folder differs"
        }
        (Memory { .. }, Memory { .. }) | (UpdateProcedure { .. }, UpdateProcedure { .. }) => {
            "the body differs"
        }
        _ => "it is another kind of write",
    }
}

/// The MAC of `req.item`, if it is exactly the write a person approved in
/// `req.token` (which is then spent).
pub fn mac_approved_record(
    vault: &mut Vault,
    book: &mut Approvals,
    me: &Requester,
    req: &ApprovedRecord,
) -> Result<[u8; 32], BrokerError> {
    let token = &req.token;
    let action = &token.action;
    if action.host != RECORDS_HOST || action.vendor != RECORDS_VENDOR || action.credential.is_some()
    {
        return Err(refused(RecordRefusal::NotARecordWrite));
    }
    // Nothing is opened for a token the broker did not sign.
    let signed = vault.verify_approval(&approvals::signed_bytes(token), &token.signature)?;
    if !signed {
        return Err(BrokerError::Approval(ApprovalError::BadSignature));
    }
    let approved = RecordWrite::parse(&action.command)
        .map_err(|e| refused(RecordRefusal::Unreadable(e.to_string())))?;
    let item = &req.item;
    if org_of(&item.scope) != action.org {
        return Err(not_approved(format!(
            "the record goes to {}, the approval is for org {}",
            item.scope, action.org
        )));
    }
    let content = decode(item)?;
    let written = match (item.record_kind.as_str(), &approved) {
        ("memory", RecordWrite::Memory { .. }) => memory_write(vault, req, &content)?,
        ("procedure", RecordWrite::UpdateProcedure { .. }) => {
            procedure_update(vault, req, &content)?
        }
        (kind, _) => {
            return Err(not_approved(format!(
                "a {kind} record is not the kind of write approved"
            )));
        }
    };
    if written != approved || written.render() != action.command {
        return Err(not_approved(difference(&approved, &written)));
    }
    // Spend the token: copilotd's own, unexpired, never used before.
    book.consume(token, action, me, |_, _| signed)
        .map_err(BrokerError::Approval)?;
    vault.record_mac(item)
}
