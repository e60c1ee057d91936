//! Service auth for copilotd: the sealed `auth` of a connector or MCP
//! server record, for the one endpoint copilotd is about to call.
//!
//! Owns the checks in front of that release (the model is
//! [`crate::host_credentials`]): the record's MAC verifies under its scope
//! key; the presented field is that record's `auth` and nothing else; the
//! destination copilotd names is exactly the record's `base_url`
//! (connector) or HTTP transport URL (MCP server); the field's binding is
//! recomputed here from that verified plaintext, so a ciphertext sealed for
//! another URL does not open. `keychain:NAME` references inside the auth
//! are replaced by the entries' payloads (passwords and tokens only), and
//! every secret value released joins the exact-value redaction set.
//! Must never: release any other field or kind, release for a destination
//! the record does not name, release a private key or an AI provider's key
//! through a service record, or return anything but the auth.

use gatehouse_ipc::broker::{BrokerError, ProviderKeyPayload, SecretKind, ServiceAuth};
use gatehouse_ipc::record_content::{self, FieldValue};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::host_credentials::{refused, resolve_any, verified_content};
use crate::vault::Vault;

/// The field released.
const AUTH_FIELD: &str = "auth";

/// Record kinds whose `auth` is released, and the plaintext field it is
/// sealed bound to. Must agree with the records field table (a records test
/// checks it).
pub const SERVICE_KINDS: &[(&str, &str)] =
    &[("connector", "base_url"), ("mcp-server", "transport")];

/// Keys of an auth object whose string values are secrets (connector
/// `password`, `token`, `key`, custom header `value`; MCP `token`, key and
/// header `value`s). Only these are resolved and remembered for redaction.
const SECRET_KEYS: &[&str] = &["password", "token", "key", "value"];

/// Where a service record sends its calls, read from the verified record's
/// plaintext: a connector's `base_url`, an MCP server's HTTP transport URL.
fn destination_of(kind: &str, id: &str, canonical: &[u8]) -> Result<String, BrokerError> {
    let value: Value = serde_json::from_slice(canonical)
        .map_err(|_| refused(format!("{kind} record {id}: its endpoint is not JSON")))?;
    match (kind, &value) {
        ("connector", Value::String(url)) => Ok(url.clone()),
        ("mcp-server", Value::Object(t)) => match (t.get("type"), t.get("url")) {
            (Some(Value::String(ty)), Some(Value::String(url))) if ty == "http" => Ok(url.clone()),
            (Some(Value::String(ty)), _) => Err(refused(format!(
                "MCP server record {id} uses the {ty} transport; its auth is released only for an HTTP transport URL"
            ))),
            _ => Err(refused(format!(
                "MCP server record {id} has no transport URL"
            ))),
        },
        _ => Err(refused(format!(
            "{kind} record {id}: its endpoint is not a URL"
        ))),
    }
}

/// Walks an auth object: every string under a [`SECRET_KEYS`] key is
/// passed to `each` (which may replace it, e.g. resolve a reference).
fn walk_secrets(
    value: &mut Value,
    each: &mut dyn FnMut(&mut String) -> Result<(), BrokerError>,
) -> Result<(), BrokerError> {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if SECRET_KEYS.contains(&k.as_str()) => each(s)?,
                    other => walk_secrets(other, each)?,
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                walk_secrets(v, each)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The record's auth, as canonical JSON with references resolved.
pub fn release_service_auth(
    vault: &mut Vault,
    req: &ServiceAuth,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    let item = &req.record.item;
    let (kind, id) = (item.record_kind.as_str(), item.record_id.as_str());
    let Some(&(_, bound)) = SERVICE_KINDS.iter().find(|(k, _)| *k == kind) else {
        return Err(refused(format!(
            "service auth is released only from connector and MCP server records, not from a {kind} record"
        )));
    };
    if req.field.field != AUTH_FIELD {
        return Err(refused(format!(
            "only a {kind}'s {AUTH_FIELD} is released, not {}",
            req.field.field
        )));
    }
    if req.field.record_kind != kind || req.field.record_id != id || req.field.scope != item.scope {
        return Err(refused(format!(
            "the auth field does not belong to the presented {kind} record"
        )));
    }
    let content = verified_content(vault, &req.record)?;
    let Some(FieldValue::Plain(endpoint)) = content.field(bound) else {
        return Err(refused(format!("{kind} record {id} has no {bound}")));
    };
    let destination = destination_of(kind, id, endpoint)?;
    if destination != req.destination {
        return Err(refused(format!(
            "the destination {:?} is not the one {kind} record {id} names",
            req.destination
        )));
    }
    if req.field.binding != record_content::binding([(bound, *endpoint)]) {
        return Err(refused(format!(
            "the auth field is presented with another binding than {kind} record {id}'s {bound}"
        )));
    }
    let Some(FieldValue::Sealed(sealed)) = content.field(AUTH_FIELD) else {
        return Err(refused(format!("{kind} record {id} has no sealed auth")));
    };
    let json = vault.open_field(&req.field, sealed).map_err(|e| match e {
        BrokerError::OpenFailed { failure, .. } => refused(format!(
            "the auth of {kind} record {id} does not open for its {bound} (sealed for another \
                 record or {bound}, or altered): {failure}"
        )),
        other => other,
    })?;
    let mut auth: Value = serde_json::from_slice(&json)
        .map_err(|_| refused(format!("the auth of {kind} record {id} is not JSON")))?;
    let mut released: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    walk_secrets(&mut auth, &mut |s: &mut String| {
        if let Some(name) = s.strip_prefix("keychain:") {
            let payload = resolve_any(
                vault,
                Zeroizing::new(s.as_bytes().to_vec()),
                &[SecretKind::Password, SecretKind::Token],
            )?;
            if serde_json::from_slice::<ProviderKeyPayload>(&payload).is_ok() {
                return Err(refused(format!(
                    "keychain entry {name:?} is an AI provider's key: it is released only for its provider endpoint"
                )));
            }
            let text = std::str::from_utf8(&payload)
                .map_err(|_| refused(format!("keychain entry {name:?} is not text")))?;
            *s = text.to_string();
        }
        released.push(Zeroizing::new(s.as_bytes().to_vec()));
        Ok(())
    })?;
    for (i, value) in released.iter().enumerate() {
        vault
            .cache
            .remember(&format!("field:{kind}/{id}/{AUTH_FIELD}#{i}"), value);
    }
    vault.cache_generation += 1;
    let out = serde_json::to_vec(&auth).map_err(|e| BrokerError::Internal(e.to_string()))?;
    Ok(Zeroizing::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_come_from_the_record() {
        assert_eq!(
            destination_of("connector", "c", br#""https://api.example/v1""#).unwrap(),
            "https://api.example/v1"
        );
        assert_eq!(
            destination_of(
                "mcp-server",
                "m",
                br#"{"type":"http","url":"https://mcp.example/mcp"}"#
            )
            .unwrap(),
            "https://mcp.example/mcp"
        );
        let stdio = destination_of(
            "mcp-server",
            "m",
            br#"{"args":[],"command":"/bin/server","type":"stdio"}"#,
        )
        .unwrap_err();
        assert!(stdio.to_string().contains("stdio"), "{stdio}");
        for (kind, bad) in [
            ("connector", &b"null"[..]),
            ("connector", b"{\"url\":\"x\"}"),
            ("mcp-server", b"\"https://x\""),
            ("mcp-server", b"{\"type\":\"http\"}"),
            ("host", b"\"https://x\""),
            ("connector", b"not json"),
        ] {
            assert!(
                matches!(
                    destination_of(kind, "r", bad),
                    Err(BrokerError::CredentialRefused(_))
                ),
                "{kind} {}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_secret_keys_are_walked() {
        let mut auth: Value = serde_json::from_str(
            r#"{"type":"custom-headers","username":"keychain:not-a-secret",
                "headers":[{"name":"X-A","value":"keychain:a"},{"name":"X-B","value":"lit"}],
                "password":"p","token":"t","key":"k","nested":{"value":"v"}}"#,
        )
        .unwrap();
        let mut seen = Vec::new();
        walk_secrets(&mut auth, &mut |s| {
            seen.push(s.clone());
            *s = format!("<{s}>");
            Ok(())
        })
        .unwrap();
        seen.sort();
        assert_eq!(seen, ["k", "keychain:a", "lit", "p", "t", "v"]);
        assert_eq!(auth["username"], "keychain:not-a-secret");
        assert_eq!(auth["headers"][0]["name"], "X-A");
        assert_eq!(auth["headers"][0]["value"], "<keychain:a>");
        assert_eq!(auth["type"], "custom-headers");
    }

    #[test]
    fn bindings_are_the_records_format() {
        // The same bytes records::fields::binding writes for a connector's auth.
        let b = record_content::binding([("base_url", &br#""https://x""#[..])]);
        let mut want = Vec::new();
        want.extend(8u64.to_le_bytes());
        want.extend(b"base_url");
        want.extend(11u64.to_le_bytes());
        want.extend(br#""https://x""#);
        assert_eq!(b, want);
    }
}
