//! What needs proof of presence besides approval decisions: revealing a
//! credential (to the CLI or the app), and an interactive shell (opened by
//! the CLI or the app) to a host whose org policy says
//! `connect_needs_presence`. One rule for both roles: under X11 a same-uid
//! program drives the app's Reveal button and terminal tabs as easily as
//! it runs the CLI, so a click in the app proves no more than a CLI run.
//!
//! Owns: which sealed fields are credentials (every sealed field of a host,
//! connector or MCP server record: the broker knows a field's kind and name
//! from its address, which the ciphertext's associated data binds), and the
//! shell tickets — 256-bit random values the broker hands the CLI or the app
//! (after checking presence when the org asks for it), which sessiond
//! presents with the credential request for that shell. A ticket is bound to one host
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
/// boundary on, any credential, whoever shows it (any program running as
/// the user can run the CLI, and under X11 click the app's Reveal). `role`
/// only names who asked in the reason. In a development build (boundary
/// off) nothing is asked: any same-uid program can take any role there.
pub fn reveal_needs_presence(boundary: bool, role: PeerRole, items: &[OpenItem]) -> Option<String> {
    if !boundary {
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
    let from = match role {
        PeerRole::Cli => "the CLI".to_string(),
        PeerRole::Ui => "the app".to_string(),
        other => other.to_string(),
    };
    (!creds.is_empty()).then(|| format!("revealing {} from {from}", creds.join(", ")))
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
    /// when `needs_presence` (the org's policy says so) it must carry a live
    /// ticket for exactly this host record, whoever opened the shell (the
    /// CLI's `connect` or an app's terminal tab: both roles are a same-uid
    /// program's to drive, see the module doc).
    pub fn check(
        &mut self,
        req: &HostCredential,
        needs_presence: bool,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let Some(shell) = &req.shell else {
            return Ok(());
        };
        if !needs_presence {
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
            return Err(refused(&format!(
                "no shell ticket ({} asks for the account passphrase)",
                match shell.opened_by {
                    PeerRole::Ui => "the app's terminal tab",
                    _ => "`gatehouse connect`",
                }
            )));
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

    fn shell(opened_by: PeerRole, ticket: Option<SecretBytes>) -> Option<ShellUse> {
        Some(ShellUse { opened_by, ticket })
    }

    #[test]
    fn a_shell_needs_a_live_ticket_for_its_own_host_whoever_opened_it() {
        for role in [PeerRole::Cli, PeerRole::Ui] {
            let mut t = ShellTickets::default();
            let ticket = t.issue(KeyScope::Org("o1".into()), "h1".into(), 1_000);
            // Not a shell, or the org asks nothing: no ticket needed.
            t.check(&req("h1", None), true, 1_000).unwrap();
            t.check(&req("h1", shell(role, None)), false, 1_000)
                .unwrap();
            // No ticket, a forged one, another host's, an expired one.
            let err = t
                .check(&req("h1", shell(role, None)), true, 1_000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("connect_needs_presence"), "{role}: {err}");
            let forged = SecretBytes::copy_from(&[7u8; 32]);
            assert!(
                t.check(&req("h1", shell(role, Some(forged))), true, 1_000)
                    .is_err(),
                "{role}"
            );
            let short = SecretBytes::copy_from(&[7u8; 5]);
            assert!(
                t.check(&req("h1", shell(role, Some(short))), true, 1_000)
                    .is_err(),
                "{role}"
            );
            assert!(
                t.check(&req("h2", shell(role, Some(ticket.clone()))), true, 1_000)
                    .is_err(),
                "{role}"
            );
            t.check(&req("h1", shell(role, Some(ticket.clone()))), true, 2_000)
                .unwrap();
            let late = 1_000 + TICKET_TTL_MS;
            assert!(
                t.check(&req("h1", shell(role, Some(ticket))), true, late)
                    .is_err(),
                "{role}"
            );
        }
    }

    #[test]
    fn the_refusal_says_where_the_passphrase_is_asked() {
        let mut t = ShellTickets::default();
        let app = t
            .check(&req("h1", shell(PeerRole::Ui, None)), true, 1)
            .unwrap_err()
            .to_string();
        assert!(app.contains("the app's terminal tab"), "{app}");
        let cli = t
            .check(&req("h1", shell(PeerRole::Cli, None)), true, 1)
            .unwrap_err()
            .to_string();
        assert!(cli.contains("`gatehouse connect`"), "{cli}");
    }

    #[test]
    fn credentials_revealed_by_the_cli_or_the_app_need_presence_with_the_boundary_on() {
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
        for role in [PeerRole::Cli, PeerRole::Ui] {
            assert!(reveal_needs_presence(true, role, &pw).is_some(), "{role}");
            let auth = [item("connector", "auth")];
            assert!(reveal_needs_presence(true, role, &auth).is_some(), "{role}");
            let mcp = [item("procedure", "body"), item("mcp-server", "token")];
            assert!(reveal_needs_presence(true, role, &mcp).is_some(), "{role}");
            let body = [item("procedure", "body")];
            assert!(reveal_needs_presence(true, role, &body).is_none(), "{role}");
            // A development build asks nothing (any same-uid program can take any role).
            assert!(reveal_needs_presence(false, role, &pw).is_none(), "{role}");
        }
        let cli = reveal_needs_presence(true, PeerRole::Cli, &pw).unwrap_or_default();
        assert_eq!(cli, "revealing host/r ssh.password from the CLI");
        let app = reveal_needs_presence(true, PeerRole::Ui, &pw).unwrap_or_default();
        assert_eq!(app, "revealing host/r ssh.password from the app");
    }
}
