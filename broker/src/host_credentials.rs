//! Device credentials for sessiond: a password for one connection, or an
//! SSH signature made here with a key that never leaves the broker.
//!
//! Owns the checks in front of every credential use: the host record's MAC
//! verifies under its scope key, the presented credential field is the one
//! in that record, and the destination sessiond is about to connect to is
//! the one the record names. For key use, the bytes to sign must be exactly
//! an SSH `publickey` user-authentication request for the record's user and
//! this key, so the broker is never a general signing oracle.
//! A `keychain:NAME` credential is also bound to the destinations a person
//! allowed ([`crate::destinations`]): first use binds it, any other
//! destination is refused until a person adds it with proof of presence.
//! Must never: release a private key, release a password for a record that
//! fails its MAC or names another destination, release a keychain entry to
//! a destination it is not bound to, or sign anything else.

use gatehouse_ipc::broker::{BrokerError, HostCredential, SecretKind, VerifyItem};
use gatehouse_ipc::record_content::{self, FieldValue, RecordContent};
use ssh_key::encoding::Encode;
use zeroize::Zeroizing;

use crate::crypto;
use crate::destinations::DestinationBindings;
use crate::vault::Vault;

/// The destination check of the keychain references one credential use
/// resolves, and the entries it named (for the credential log).
pub struct KeychainUse<'a> {
    pub bindings: &'a mut DestinationBindings,
    pub entries: Vec<String>,
}

impl<'a> KeychainUse<'a> {
    pub fn new(bindings: &'a mut DestinationBindings) -> KeychainUse<'a> {
        KeychainUse {
            bindings,
            entries: Vec::new(),
        }
    }

    /// For a `keychain:NAME` value: notes the entry and checks (or, on its
    /// first use, records) that it may go to `req`'s destination.
    fn check(&mut self, value: &[u8], req: &HostCredential) -> Result<(), BrokerError> {
        let Some(name) = value.strip_prefix(b"keychain:") else {
            return Ok(());
        };
        let name =
            std::str::from_utf8(name).map_err(|_| refused("keychain reference is not UTF-8"))?;
        self.entries.push(name.to_string());
        self.bindings.check_or_bind(name, &req.destination)
    }
}

const PASSWORD_FIELD: &str = "ssh.password";
const KEY_FIELD: &str = "ssh.private_key_path";
const KEY_PASSPHRASE_FIELD: &str = "ssh.key_passphrase";
const HOST_KEY_FIELD: &str = "ssh.host_key_fingerprint";
/// SSH_MSG_USERAUTH_REQUEST (RFC 4252).
const USERAUTH_REQUEST: u8 = 50;

pub(crate) fn refused(reason: impl Into<String>) -> BrokerError {
    BrokerError::CredentialRefused(reason.into())
}

/// Checks a presented record's MAC under its scope key (constant time) and
/// decodes the content it covers.
pub(crate) fn verified_content<'a>(
    vault: &Vault,
    record: &'a VerifyItem,
) -> Result<RecordContent<'a>, BrokerError> {
    let item = &record.item;
    let mac = vault.record_mac(item)?;
    if !crypto::mac_eq(&mac, &record.mac) {
        return Err(refused(format!(
            "{} record {} fails its integrity check (changed outside Gatehouse?)",
            item.record_kind, item.record_id
        )));
    }
    record_content::decode(&item.content).map_err(|e| {
        refused(format!(
            "{} record {}: {e}",
            item.record_kind, item.record_id
        ))
    })
}

/// Checks `req` and opens the sealed field it names. Returns the field's
/// plaintext (a secret, or a `keychain:NAME` reference).
fn open_checked(
    vault: &mut Vault,
    req: &HostCredential,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    let item = &req.record.item;
    if item.record_kind != "host"
        || req.field.record_kind != "host"
        || req.field.record_id != item.record_id
        || req.field.scope != item.scope
    {
        return Err(refused(
            "the credential field does not belong to the presented host record",
        ));
    }
    let content = verified_content(vault, &req.record)?;
    let d = &req.destination;
    let expect = [
        ("address", serde_json::to_vec(&d.address)),
        ("port", serde_json::to_vec(&d.port)),
        ("ssh.username", serde_json::to_vec(&d.username)),
    ];
    for (name, want) in expect {
        let want = want.map_err(|e| BrokerError::Internal(e.to_string()))?;
        match content.field(name) {
            Some(FieldValue::Plain(got)) if *got == want.as_slice() => {}
            _ => {
                return Err(refused(format!(
                    "the destination's {name} is not the one host record {} names",
                    item.record_id
                )));
            }
        }
    }
    // The host key sessiond pinned in the handshake is the record's pin.
    let pin_ok = match (content.field(HOST_KEY_FIELD), &d.host_key) {
        (Some(FieldValue::Plain(got)), Some(key)) => {
            serde_json::to_vec(key).is_ok_and(|want| *got == want.as_slice())
        }
        (Some(FieldValue::Plain(got)), None) => *got == b"null".as_slice(),
        (None, None) => true,
        _ => false,
    };
    if !pin_ok {
        return Err(refused(format!(
            "the destination's host key is not the one host record {} pins",
            item.record_id
        )));
    }
    let Some(FieldValue::Sealed(sealed)) = content.field(&req.field.field) else {
        return Err(refused(format!(
            "host record {} has no {}",
            item.record_id, req.field.field
        )));
    };
    // Sealed record fields hold canonical JSON; a credential is a JSON string.
    let json = vault.open_field(&req.field, sealed)?;
    let text: Zeroizing<String> = Zeroizing::new(
        serde_json::from_slice::<String>(&json)
            .map_err(|_| refused(format!("{} is not a text value", req.field.field)))?,
    );
    Ok(Zeroizing::new(text.as_bytes().to_vec()))
}

/// Resolves a field value: a `keychain:NAME` reference is replaced by the
/// keychain payload (which must be of `kind`); anything else is the value.
fn resolve(
    vault: &Vault,
    value: Zeroizing<Vec<u8>>,
    kind: SecretKind,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    resolve_any(vault, value, &[kind])
}

/// [`resolve`] for a reference that may name an entry of any of `kinds`.
pub(crate) fn resolve_any(
    vault: &Vault,
    value: Zeroizing<Vec<u8>>,
    kinds: &[SecretKind],
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    let Some(name) = value.strip_prefix(b"keychain:") else {
        return Ok(value);
    };
    let name = std::str::from_utf8(name).map_err(|_| refused("keychain reference is not UTF-8"))?;
    let entry = vault
        .keychain_list()?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| BrokerError::KeychainNotFound(name.into()))?;
    if !kinds.contains(&entry.kind) {
        let want: Vec<String> = kinds.iter().map(ToString::to_string).collect();
        return Err(refused(format!(
            "keychain entry {name:?} holds a {}, not a {}",
            entry.kind,
            want.join(" or ")
        )));
    }
    vault.keychain_payload(name)
}

/// The host's SSH password, for the one connection being opened.
pub fn release_password(
    vault: &mut Vault,
    req: &HostCredential,
    used: &mut KeychainUse,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    if req.field.field != PASSWORD_FIELD {
        return Err(refused(format!(
            "only {PASSWORD_FIELD} is released, not {}",
            req.field.field
        )));
    }
    let value = open_checked(vault, req)?;
    used.check(&value, req)?;
    resolve(vault, value, SecretKind::Password)
}

/// The host's private key, parsed (and decrypted with the record's key
/// passphrase if it is encrypted). Stays in the broker.
fn private_key(
    vault: &mut Vault,
    req: &HostCredential,
    used: &mut KeychainUse,
) -> Result<ssh_key::PrivateKey, BrokerError> {
    if req.field.field != KEY_FIELD {
        return Err(refused(format!(
            "SSH keys are named by {KEY_FIELD}, not {}",
            req.field.field
        )));
    }
    let value = open_checked(vault, req)?;
    if !value.starts_with(b"keychain:") {
        return Err(refused(
            "the host's private key is a file path; the broker signs only with keys kept in the \
             keychain: `gatehouse keychain set NAME --kind private-key < KEYFILE`, then set the \
             host's key to keychain:NAME",
        ));
    }
    used.check(&value, req)?;
    let pem = resolve(vault, value, SecretKind::PrivateKey)?;
    let key = ssh_key::PrivateKey::from_openssh(&*pem).map_err(|e| {
        refused(format!(
            "the keychain entry is not an OpenSSH private key: {e}"
        ))
    })?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let passphrase_field = gatehouse_ipc::broker::FieldAddress {
        field: KEY_PASSPHRASE_FIELD.into(),
        ..req.field.clone()
    };
    let passphrase = open_checked(
        vault,
        &HostCredential {
            field: passphrase_field,
            ..req.clone()
        },
    )
    .map_err(|_| {
        refused("the private key is encrypted and the host has no usable key passphrase")
    })?;
    used.check(&passphrase, req)?;
    let passphrase = resolve(vault, passphrase, SecretKind::Password)?;
    key.decrypt(&*passphrase)
        .map_err(|_| refused("the key passphrase does not decrypt the private key"))
}

/// The public half of the host's key, as OpenSSH text.
pub fn public_key(
    vault: &mut Vault,
    req: &HostCredential,
    used: &mut KeychainUse,
) -> Result<String, BrokerError> {
    let key = private_key(vault, req, used)?;
    key.public_key()
        .to_openssh()
        .map_err(|e| BrokerError::Internal(e.to_string()))
}

/// Reads one SSH `string` (u32 BE length + bytes).
fn ssh_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let s = rest.get(4..4 + len)?;
    *rest = &rest[4 + len..];
    Some(s)
}

/// Whether the SSH login name `login` is the record's `user`: exactly, or
/// with RouterOS console flags appended (`admin+ct511w4096h`), which change
/// the terminal, not who logs in.
fn is_login_of(login: &[u8], user: &str) -> bool {
    match login.strip_prefix(user.as_bytes()) {
        Some([]) => true,
        Some([b'+', flags @ ..]) => {
            !flags.is_empty() && flags.iter().all(u8::is_ascii_alphanumeric)
        }
        _ => false,
    }
}

/// Checks that `to_sign` is a `publickey` userauth request (RFC 4252 §7)
/// for `user`, signed with the key whose public blob is `key_blob`.
fn check_userauth_request(to_sign: &[u8], user: &str, key_blob: &[u8]) -> Result<(), String> {
    let mut r = to_sign;
    let session_id = ssh_string(&mut r).ok_or("no session identifier")?;
    if session_id.is_empty() || session_id.len() > 64 {
        return Err("session identifier has an odd length".into());
    }
    if r.first() != Some(&USERAUTH_REQUEST) {
        return Err("not a user-authentication request".into());
    }
    r = &r[1..];
    let login = ssh_string(&mut r).ok_or("no user")?;
    if !is_login_of(login, user) {
        return Err("user is not the host record's".into());
    }
    let fields = [
        ("service", b"ssh-connection".as_slice()),
        ("method", b"publickey".as_slice()),
    ];
    for (what, want) in fields {
        let got = ssh_string(&mut r).ok_or(format!("no {what}"))?;
        if got != want {
            return Err(format!("{what} is not {}", String::from_utf8_lossy(want)));
        }
    }
    if r.first() != Some(&1) {
        return Err("not a signed publickey request".into());
    }
    r = &r[1..];
    let _algorithm = ssh_string(&mut r).ok_or("no algorithm")?;
    let blob = ssh_string(&mut r).ok_or("no public key")?;
    if blob != key_blob {
        return Err("the request names another key".into());
    }
    if !r.is_empty() {
        return Err("trailing bytes after the request".into());
    }
    Ok(())
}

/// Signs an SSH user-authentication request with the host's key. Returns
/// the signature blob (string algorithm ‖ string signature).
pub fn sign(
    vault: &mut Vault,
    req: &HostCredential,
    to_sign: &[u8],
    used: &mut KeychainUse,
) -> Result<Vec<u8>, BrokerError> {
    use signature::Signer;
    let key = private_key(vault, req, used)?;
    let blob = key
        .public_key()
        .to_bytes()
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
    check_userauth_request(to_sign, &req.destination.username, &blob)
        .map_err(|why| refused(format!("refusing to sign: {why}")))?;
    let sig: ssh_key::Signature = key
        .try_sign(to_sign)
        .map_err(|e| refused(format!("signing failed: {e}")))?;
    let mut out = Vec::new();
    sig.encode(&mut out)
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
    Ok(out)
}

/// The key that seals recording `id`: HMAC of the id under the user's key,
/// so it exists only while this user is signed in.
pub fn recording_key(vault: &Vault, id: &str) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(BrokerError::Invalid {
            what: "recording id".into(),
            reason: "1–128 ASCII letters, digits or '-'".into(),
        });
    }
    let key = vault.derive_private_key(&format!("gatehouse/recording/v1/{id}"))?;
    Ok(Zeroizing::new(key.to_vec()))
}

/// An AI provider's API key, for the endpoint stored with it in the
/// keychain entry (a token whose payload is a [`ProviderKeyPayload`]).
pub fn provider_key(
    vault: &Vault,
    name: &str,
    endpoint: &str,
) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
    use gatehouse_ipc::broker::ProviderKeyPayload;
    let payload = resolve(
        vault,
        Zeroizing::new(format!("keychain:{name}").into_bytes()),
        SecretKind::Token,
    )?;
    let stored: ProviderKeyPayload = serde_json::from_slice(&payload).map_err(|_| {
        refused(format!(
            "keychain entry {name:?} is not a provider key (store it with `gatehouse copilot config --api-key-stdin`)"
        ))
    })?;
    if stored.endpoint != endpoint {
        return Err(refused(format!(
            "keychain entry {name:?} is the key for {}, not for {endpoint}",
            stored.endpoint
        )));
    }
    Ok(Zeroizing::new(stored.key.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend((s.len() as u32).to_be_bytes());
        out.extend(s);
    }

    fn request(user: &str, method: &str, blob: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        string(&mut v, &[7; 32]);
        v.push(USERAUTH_REQUEST);
        string(&mut v, user.as_bytes());
        string(&mut v, b"ssh-connection");
        string(&mut v, method.as_bytes());
        v.push(1);
        string(&mut v, b"ssh-ed25519");
        string(&mut v, blob);
        v
    }

    #[test]
    fn accepts_only_the_exact_userauth_request() {
        let blob = b"key-blob";
        assert!(
            check_userauth_request(&request("admin", "publickey", blob), "admin", blob).is_ok()
        );
        assert!(
            check_userauth_request(&request("root", "publickey", blob), "admin", blob).is_err()
        );
        assert!(
            check_userauth_request(&request("admin", "password", blob), "admin", blob).is_err()
        );
        assert!(
            check_userauth_request(&request("admin", "publickey", b"other"), "admin", blob)
                .is_err()
        );
        let mut trailing = request("admin", "publickey", blob);
        trailing.push(0);
        assert!(check_userauth_request(&trailing, "admin", blob).is_err());
        let full = request("admin", "publickey", blob);
        for n in 0..full.len() {
            assert!(check_userauth_request(&full[..n], "admin", blob).is_err());
        }
        assert!(check_userauth_request(b"arbitrary document", "admin", blob).is_err());
    }
}
