//! What needs proof of presence besides approval decisions: revealing a
//! credential to the CLI, and an interactive shell opened from the CLI to a
//! host whose org policy says `connect_needs_presence`.
//!
//! Owns: which sealed fields are credentials (every sealed field of a host,
//! connector or MCP server record: the broker knows a field's kind and name
//! from its address, which the ciphertext's associated data binds), and the
//! shell tickets — 256-bit random values the broker hands the CLI (after
//! checking presence when the org asks for it), which sessiond presents
//! with the credential request for that shell. A ticket is bound to one host
//! record and expires after [`TICKET_TTL_MS`]. Must never: verify the
//! passphrase itself (the vault does, throttled), hand out a ticket without
//! the presence the org's policy asks for, or accept a ticket for another
//! host record or after it expired.

use std::collections::HashMap;

use gatehouse_ipc::PeerRole;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{BrokerError, HostCredential, KeyScope, OpenItem};

/// How long a shell ticket may be presented (the CLI asks sessiond at once).
pub const TICKET_TTL_MS: u64 = 60_000;

/// Record kinds whose every sealed field is a credential (what a device or
/// a service accepts as proof of identity).
const CREDENTIAL_KINDS: &[&str] = &["host", "connector", "mcp-server"];

/// Whether `item` is a credential field (see [`CREDENTIAL_KINDS`]).
pub fn is_credential(item: &OpenItem) -> bool {
    CREDENTIAL_KINDS.contains(&item.address.record_kind.as_str())
}

/// Why revealing `items` to `role` needs presence, if it does: with the
/// boundary on, any credential shown by the CLI (any program running as the
/// user can run it). The app's reveals are a click in its window.
pub fn reveal_needs_presence(boundary: bool, role: PeerRole, items: &[OpenItem]) -> Option<String> {
    if !boundary || role != PeerRole::Cli {
        return None;
    }
    let creds: Vec<String> = items
        .iter()
        .filter(|i| is_credential(i))
        .map(|i| {
            format!(
                "{}/{} {}",
                i.address.record_kind, i.address.record_id, i.address.field
            )
        })
        .collect();
    (!creds.is_empty()).then(|| format!("revealing {} from the CLI", creds.join(", ")))
}

/// The org id of a scope (`None` for private records: no org policy).
pub fn org_of(scope: &KeyScope) -> Option<&str> {
    match scope {
        KeyScope::Org(id) => Some(id),
        KeyScope::Private => None,
    }
}

struct Ticket {
    scope: KeyScope,
    record_id: String,
    expires_ms: u64,
}

/// Shell tickets handed out and not yet expired.
#[derive(Default)]
pub struct ShellTickets {
    live: HashMap<[u8; 32], Ticket>,
}

impl ShellTickets {
    /// A new ticket for host record `record_id` in `scope`.
    pub fn issue(&mut self, scope: KeyScope, record_id: String, now_ms: u64) -> SecretBytes {
        self.live.retain(|_, t| t.expires_ms > now_ms);
        let value: [u8; 32] = crate::crypto::random_bytes();
        self.live.insert(
            value,
            Ticket {
                scope,
                record_id,
                expires_ms: now_ms + TICKET_TTL_MS,
            },
        );
        SecretBytes::copy_from(&value)
    }

    /// Checks that a shell credential request `req` may have its credential:
    /// when `needs_presence` (the org's policy says so) and the CLI opened
    /// the shell, it must carry a live ticket for exactly this host record.
    pub fn check(
        &mut self,
        req: &HostCredential,
        needs_presence: bool,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let Some(shell) = &req.shell else {
            return Ok(());
        };
        if !needs_presence || shell.opened_by != PeerRole::Cli {
            return Ok(());
        }
        let item = &req.record.item;
        let refused = |why: &str| {
            BrokerError::CredentialRefused(format!(
                "an interactive shell to host record {} needs proof of presence (its organization's policy says connect_needs_presence): {why}",
                item.record_id
            ))
        };
        let Some(value) = &shell.ticket else {
            return Err(refused(
                "no shell ticket (`gatehouse connect` asks for the account passphrase)",
            ));
        };
        let key: [u8; 32] = value
            .expose()
            .try_into()
            .map_err(|_| refused("the shell ticket is malformed"))?;
        self.live.retain(|_, t| t.expires_ms > now_ms);
        match self.live.get(&key) {
            Some(t) if t.scope == item.scope && t.record_id == item.record_id => Ok(()),
            Some(_) => Err(refused("the shell ticket is for another host")),
            None => Err(refused("the shell ticket is unknown or expired")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_ipc::broker::{Destination, FieldAddress, MacItem, ShellUse, VerifyItem};

    fn req(record_id: &str, shell: Option<ShellUse>) -> HostCredential {
        HostCredential {
            record: VerifyItem {
                item: MacItem {
                    scope: KeyScope::Org("o1".into()),
                    record_kind: "host".into(),
                    record_id: record_id.into(),
                    content: Vec::new(),
                },
                mac: Vec::new(),
            },
            field: FieldAddress {
                scope: KeyScope::Org("o1".into()),
                record_kind: "host".into(),
                record_id: record_id.into(),
                field: "ssh.password".into(),
                binding: Vec::new(),
            },
            destination: Destination {
                address: "10.0.0.1".into(),
                port: 22,
                username: "admin".into(),
                host_key: None,
            },
            shell,
        }
    }

    #[test]
    fn a_cli_shell_needs_a_live_ticket_for_its_own_host() {
        let mut t = ShellTickets::default();
        let ticket = t.issue(KeyScope::Org("o1".into()), "h1".into(), 1_000);
        let cli = |ticket: Option<SecretBytes>| {
            Some(ShellUse {
                opened_by: PeerRole::Cli,
                ticket,
            })
        };
        // Not a shell, or the org asks nothing, or the app: no ticket needed.
        t.check(&req("h1", None), true, 1_000).unwrap();
        t.check(&req("h1", cli(None)), false, 1_000).unwrap();
        let app = Some(ShellUse {
            opened_by: PeerRole::Ui,
            ticket: None,
        });
        t.check(&req("h1", app), true, 1_000).unwrap();
        // The CLI: no ticket, a forged one, another host's, an expired one.
        assert!(t.check(&req("h1", cli(None)), true, 1_000).is_err());
        let forged = SecretBytes::copy_from(&[7u8; 32]);
        assert!(t.check(&req("h1", cli(Some(forged))), true, 1_000).is_err());
        assert!(
            t.check(&req("h2", cli(Some(ticket.clone()))), true, 1_000)
                .is_err()
        );
        t.check(&req("h1", cli(Some(ticket.clone()))), true, 2_000)
            .unwrap();
        let late = 1_000 + TICKET_TTL_MS;
        assert!(t.check(&req("h1", cli(Some(ticket))), true, late).is_err());
    }

    #[test]
    fn only_credentials_revealed_by_the_cli_need_presence() {
        let item = |kind: &str, field: &str| OpenItem {
            address: FieldAddress {
                scope: KeyScope::Private,
                record_kind: kind.into(),
                record_id: "r".into(),
                field: field.into(),
                binding: Vec::new(),
            },
            sealed: Vec::new(),
        };
        let pw = [item("host", "ssh.password")];
        assert!(reveal_needs_presence(true, PeerRole::Cli, &pw).is_some());
        assert!(reveal_needs_presence(true, PeerRole::Cli, &[item("connector", "auth")]).is_some());
        assert!(reveal_needs_presence(true, PeerRole::Cli, &[item("procedure", "body")]).is_none());
        assert!(reveal_needs_presence(true, PeerRole::Ui, &pw).is_none());
        assert!(reveal_needs_presence(false, PeerRole::Cli, &pw).is_none());
    }
}
