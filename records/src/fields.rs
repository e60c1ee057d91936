//! THE field table: for every field of every record kind, sealed or plaintext,
//! and for sealed host protocol secrets the plaintext fields they are bound to.
//!
//! Review this file like a security policy. Owns: the classification, the
//! flattening of a record into named fields (driven by the table), the
//! binding bytes of a sealed field and the canonical encoding a record MAC
//! covers. Must never: let a field through that the table does not classify
//! (`flatten` fails with [`RecordError::Unclassified`]), or classify by any
//! other means (naming conventions, types).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::RecordError;
use crate::model::Kind;

/// How a field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Stored as is: what lists, search and filters need.
    Plain,
    /// Stored only as ciphertext sealed by the broker under the record's scope
    /// key, with associated data = scope ‖ kind ‖ record id ‖ field name ‖
    /// binding, where the binding is the canonical encoding of the plaintext
    /// fields listed here (so changing where a secret goes breaks its seal).
    Sealed { bound_to: &'static [&'static str] },
}

#[derive(Debug, Clone, Copy)]
pub struct FieldRule {
    pub kind: Kind,
    /// Dotted path in the record's JSON (`ssh.password`). A sealed path may
    /// name a whole object or list (sealed as one value).
    pub field: &'static str,
    pub class: Class,
}

/// Plaintext fields every record carries (columns of the store), covered by the record MAC.
pub const META_FIELDS: [&str; 7] = [
    "kind",
    "id",
    "scope",
    "owner",
    "created_ms",
    "updated_ms",
    "revision",
];

const SSH_BINDING: &[&str] = &[
    "address",
    "port",
    "ssh.username",
    "ssh.host_key_fingerprint",
];
const HTTP_BINDING: &[&str] = &["address", "http.port", "http.tls"];
const ONVIF_BINDING: &[&str] = &["address", "onvif.port", "onvif.username"];

const fn plain(kind: Kind, field: &'static str) -> FieldRule {
    FieldRule {
        kind,
        field,
        class: Class::Plain,
    }
}

const fn sealed(kind: Kind, field: &'static str, bound_to: &'static [&'static str]) -> FieldRule {
    FieldRule {
        kind,
        field,
        class: Class::Sealed { bound_to },
    }
}

use Kind::*;

/// Every field of every kind. A field missing here cannot be stored.
pub const TABLE: &[FieldRule] = &[
    // Host
    plain(Host, "name"),
    plain(Host, "folder"),
    plain(Host, "address"),
    plain(Host, "port"),
    plain(Host, "tags"),
    plain(Host, "vendor"),
    plain(Host, "ssh.username"),
    sealed(Host, "ssh.password", SSH_BINDING),
    sealed(Host, "ssh.private_key_path", SSH_BINDING),
    sealed(Host, "ssh.key_passphrase", SSH_BINDING),
    plain(Host, "ssh.host_key_fingerprint"),
    plain(Host, "http.port"),
    plain(Host, "http.tls"),
    sealed(Host, "http.token", HTTP_BINDING),
    plain(Host, "onvif.port"),
    plain(Host, "onvif.username"),
    sealed(Host, "onvif.password", ONVIF_BINDING),
    // Diagram: stored as data, renderable later
    plain(Diagram, "name"),
    plain(Diagram, "folder"),
    plain(Diagram, "nodes"),
    plain(Diagram, "links"),
    // Procedure (runbook)
    plain(Procedure, "name"),
    plain(Procedure, "folder"),
    plain(Procedure, "parameters"),
    sealed(Procedure, "body", &[]),
    plain(Procedure, "read_only"),
    // Procedure run
    plain(ProcedureRun, "procedure_id"),
    plain(ProcedureRun, "started_ms"),
    plain(ProcedureRun, "who"),
    plain(ProcedureRun, "outcome"),
    sealed(ProcedureRun, "arguments", &[]),
    sealed(ProcedureRun, "messages", &[]),
    sealed(ProcedureRun, "tool_calls", &[]),
    sealed(ProcedureRun, "output", &[]),
    // Memory
    plain(Memory, "title"),
    plain(Memory, "folder"),
    sealed(Memory, "body", &[]),
    plain(Memory, "host_ids"),
    // Connector
    plain(Connector, "name"),
    plain(Connector, "folder"),
    plain(Connector, "kind"),
    plain(Connector, "base_url"),
    sealed(Connector, "auth", &["base_url"]),
    plain(Connector, "default_headers"),
    // MCP server
    plain(McpServer, "name"),
    plain(McpServer, "folder"),
    plain(McpServer, "transport"),
    sealed(McpServer, "auth", &["transport"]),
    // Keychain pointer: metadata only, the payload never leaves the OS keychain
    plain(KeychainPointer, "name"),
    plain(KeychainPointer, "folder"),
    plain(KeychainPointer, "secret_kind"),
    plain(KeychainPointer, "created_ms"),
    plain(KeychainPointer, "rotated_ms"),
    // Settings: a person's preferences, private scope only; no secrets
    plain(Settings, "name"),
    plain(Settings, "folder"),
    plain(Settings, "theme"),
    plain(Settings, "font_size"),
    plain(Settings, "default_tier"),
    plain(Settings, "tier_models"),
    plain(Settings, "copilot_mode"),
    plain(Settings, "copilot_trust"),
    plain(Settings, "sign_out_clears"),
];

/// The rule for `field` of `kind`, if the table has one.
pub fn rule(kind: Kind, field: &str) -> Option<&'static FieldRule> {
    TABLE.iter().find(|r| r.kind == kind && r.field == field)
}

pub fn rules_of(kind: Kind) -> impl Iterator<Item = &'static FieldRule> {
    TABLE.iter().filter(move |r| r.kind == kind)
}

/// A record split by the table into plaintext and to-be-sealed values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Split {
    pub plain: BTreeMap<String, Value>,
    pub sealed: BTreeMap<String, Value>,
}

/// Splits a record's JSON object into table fields. Objects not named by the
/// table are walked into (`ssh` → `ssh.username`, …); absent (null) values
/// are skipped; any other value not named by the table is an error.
pub fn flatten(kind: Kind, record: Value) -> Result<Split, RecordError> {
    let Value::Object(map) = record else {
        return Err(RecordError::Corrupt {
            what: format!("{kind} is not a JSON object"),
        });
    };
    let mut out = Split::default();
    walk(kind, "", map, &mut out)?;
    Ok(out)
}

fn walk(
    kind: Kind,
    prefix: &str,
    map: serde_json::Map<String, Value>,
    out: &mut Split,
) -> Result<(), RecordError> {
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        if v.is_null() {
            continue;
        }
        match (rule(kind, &path), v) {
            (Some(r), v) => {
                match r.class {
                    Class::Plain => out.plain.insert(path, v),
                    Class::Sealed { .. } => out.sealed.insert(path, v),
                };
            }
            (None, Value::Object(m)) => walk(kind, &path, m, out)?,
            (None, _) => {
                return Err(RecordError::Unclassified { kind, field: path });
            }
        }
    }
    Ok(())
}

/// Rebuilds a record's JSON object from its named fields.
pub fn unflatten(fields: BTreeMap<String, Value>) -> Value {
    let mut root = serde_json::Map::new();
    for (path, v) in fields {
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap_or_default().to_string();
        let mut cur = &mut root;
        for p in parts {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = Value::Object(Default::default());
            }
            match entry {
                Value::Object(m) => cur = m,
                _ => unreachable!("just made an object"),
            }
        }
        cur.insert(last, v);
    }
    Value::Object(root)
}

/// Canonical JSON: object keys sorted, no whitespace. Independent of
/// serde_json's map ordering features.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(k).unwrap_or_default());
                out.push(b':');
                write_canonical(&m[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// The binding of sealed field `field`: the canonical encoding of the
/// plaintext fields the table binds it to (absent ones as `null`).
pub fn binding(kind: Kind, field: &str, plain: &BTreeMap<String, Value>) -> Vec<u8> {
    let Some(FieldRule {
        class: Class::Sealed { bound_to },
        ..
    }) = rule(kind, field)
    else {
        return Vec::new();
    };
    let values: Vec<Vec<u8>> = bound_to
        .iter()
        .map(|name| canonical_json(plain.get(*name).unwrap_or(&Value::Null)))
        .collect();
    gatehouse_ipc::record_content::binding(
        bound_to
            .iter()
            .zip(&values)
            .map(|(name, v)| (*name, v.as_slice())),
    )
}

/// What a record MAC covers: every meta field and every field (sealed ones as
/// their ciphertext), each length-prefixed, fields in name order.
pub struct MacInput<'a> {
    pub owner: &'a str,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub revision: u64,
    pub plain: &'a BTreeMap<String, Value>,
    pub sealed: &'a BTreeMap<String, Vec<u8>>,
}

pub fn mac_content(m: &MacInput<'_>) -> Vec<u8> {
    use gatehouse_ipc::record_content::{FieldValue, encode};
    let plain: Vec<(&str, Vec<u8>)> = m
        .plain
        .iter()
        .map(|(k, v)| (k.as_str(), canonical_json(v)))
        .collect();
    let mut fields: Vec<(&str, FieldValue<'_>)> = plain
        .iter()
        .map(|(k, v)| (*k, FieldValue::Plain(v)))
        .chain(
            m.sealed
                .iter()
                .map(|(k, v)| (k.as_str(), FieldValue::Sealed(v))),
        )
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    encode(m.owner, m.created_ms, m.updated_ms, m.revision, &fields)
}
