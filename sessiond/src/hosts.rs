//! Host records as sessiond sees them: plaintext fields to connect and to
//! classify, and the sealed fields' ciphertexts to present to the broker.
//!
//! Owns finding a host in the local store and building the broker requests
//! for its credentials. Must never: open a sealed field (only the broker
//! does, and only for the destination the MAC-verified record names).

use std::collections::BTreeMap;

use gatehouse_ipc::broker::{Destination, HostCredential, KeyScope, OrgInfo, ShellUse};
use gatehouse_ipc::sessiond::{HostRef, SessiondError};
use gatehouse_records::store::{field_address, verify_item};
use gatehouse_records::{Kind, Store, StoredRecord};
use serde_json::Value;

/// Which credential the host record configures for SSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialField {
    Password,
    PrivateKey,
}

impl CredentialField {
    pub fn field(self) -> &'static str {
        match self {
            CredentialField::Password => "ssh.password",
            CredentialField::PrivateKey => "ssh.private_key_path",
        }
    }
}

/// A host, ready to connect to.
#[derive(Debug, Clone)]
pub struct Host {
    pub id: String,
    pub name: String,
    pub scope: KeyScope,
    /// Organization id (`private` for private hosts).
    pub org: String,
    pub address: String,
    pub port: u16,
    pub username: String,
    /// The platform string classification uses (`routeros`, `ios`, …).
    pub vendor: String,
    pub pinned_host_key: Option<String>,
    /// The record's configured credentials, key first.
    pub credentials: Vec<CredentialField>,
    stored: StoredRecord,
}

fn host_error(host: &str, reason: impl Into<String>) -> SessiondError {
    SessiondError::HostRecord {
        host: host.into(),
        reason: reason.into(),
    }
}

/// Resolves `r.org` (id or name) against the broker's organizations.
pub fn scope_of(r: &HostRef, orgs: &[OrgInfo]) -> Result<Option<KeyScope>, SessiondError> {
    let Some(org) = &r.org else { return Ok(None) };
    if org == "private" {
        return Ok(Some(KeyScope::Private));
    }
    orgs.iter()
        .find(|o| &o.id == org || &o.name == org)
        .map(|o| Some(KeyScope::Org(o.id.clone())))
        .ok_or_else(|| SessiondError::Invalid {
            what: "organization".into(),
            reason: format!("no organization {org:?}"),
        })
}

impl Host {
    /// Finds a host by id, `NAME` or `FOLDER/NAME` (within `scope` if given).
    pub fn load(store: &Store, scope: Option<&KeyScope>, key: &str) -> Result<Host, SessiondError> {
        let stored = store.resolve(Kind::Host, scope, key).map_err(|e| match e {
            gatehouse_records::RecordError::NotFound { .. } => {
                SessiondError::HostNotFound(key.into())
            }
            other => host_error(key, other.to_string()),
        })?;
        Self::from_stored(stored)
    }

    fn from_stored(stored: StoredRecord) -> Result<Host, SessiondError> {
        let p = &stored.plain;
        let text = |f: &str| p.get(f).and_then(Value::as_str).map(str::to_string);
        let name = text("name").unwrap_or_else(|| stored.meta.id.clone());
        let need = |f: &str| text(f).ok_or_else(|| host_error(&name, format!("no {f}")));
        let address = need("address")?;
        let username = text("ssh.username")
            .ok_or_else(|| host_error(&name, "no SSH access configured (ssh.username)"))?;
        let port = p
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| host_error(&name, "no valid port"))?;
        let vendor = need("vendor")?;
        let mut credentials = Vec::new();
        for c in [CredentialField::PrivateKey, CredentialField::Password] {
            if stored.sealed.contains_key(c.field()) {
                credentials.push(c);
            }
        }
        let org = match &stored.meta.scope {
            KeyScope::Org(id) => id.clone(),
            KeyScope::Private => "private".into(),
        };
        Ok(Host {
            id: stored.meta.id.clone(),
            scope: stored.meta.scope.clone(),
            org,
            address,
            port,
            username,
            vendor,
            pinned_host_key: text("ssh.host_key_fingerprint"),
            credentials,
            name,
            stored,
        })
    }

    /// The broker request that proves this record and names `field`
    /// (`shell`: for an interactive shell, see `HostCredential::shell`).
    pub fn credential_request(
        &self,
        field: CredentialField,
        shell: Option<ShellUse>,
    ) -> HostCredential {
        HostCredential {
            record: verify_item(&self.stored),
            field: field_address(&self.stored.meta, field.field(), &self.stored.plain),
            destination: Destination {
                address: self.address.clone(),
                port: self.port,
                username: self.username.clone(),
                host_key: self.pinned_host_key.clone(),
            },
            shell,
        }
    }

    /// The credential context shown on (and signed into) an approval.
    pub fn credential_context(&self) -> Option<String> {
        self.credentials
            .first()
            .map(|c| format!("{} of {}@{}", c.field(), self.username, self.name))
    }

    /// Plaintext fields, for listing.
    pub fn plain(&self) -> &BTreeMap<String, Value> {
        &self.stored.plain
    }
}
