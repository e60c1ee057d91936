//! The role table: which role may perform which broker operation.
//!
//! One table, reviewed like a security policy and enumerated by the tests.
//! Must never: grant anything by default — an operation missing from the
//! table is refused for every role.

use gatehouse_ipc::PeerRole::{self, Cli, Copilotd, Sessiond, Syncd, Ui};
use gatehouse_ipc::broker::Operation::{self, *};

/// `(operation, roles allowed)`. Everything else is refused.
pub const ROLE_TABLE: &[(Operation, &[PeerRole])] = &[
    (Status, &[Cli, Ui, Sessiond, Copilotd, Syncd]),
    // Account life cycle is a person's act.
    (AccountInit, &[Cli, Ui]),
    (SignIn, &[Cli, Ui]),
    (SignOut, &[Cli, Ui]),
    (OrgCreate, &[Cli, Ui]),
    // Org ids and names are not secret; daemons need them to scope work.
    (OrgList, &[Cli, Ui, Sessiond, Copilotd, Syncd]),
    (KeychainSet, &[Cli, Ui]),
    (KeychainList, &[Cli, Ui]),
    (KeychainRemove, &[Cli, Ui]),
    // A new destination for a keychain entry: a person's act, with presence.
    (KeychainBind, &[Cli, Ui]),
    // The second sign-in secret: a person's, shown after presence.
    (AccountSecretKey, &[Cli, Ui]),
    // Organization policy: every process that classifies or gates reads it
    // from the broker; changing it is a person's act, with presence.
    (OrgPolicyGet, &[Cli, Ui, Sessiond, Copilotd]),
    (OrgPolicySet, &[Cli, Ui]),
    // Daemons seal what they write (recordings, procedure runs).
    (SealFields, &[Cli, Ui, Sessiond, Copilotd]),
    // Opening arbitrary fields is for a person's tools only; daemons get
    // narrower operations (credential release for one connection) later.
    (OpenFields, &[Cli, Ui]),
    // Values shown to a person: credentials from the CLI need presence
    // when the boundary is on (crate::presence).
    (RevealFields, &[Cli, Ui]),
    // A person's `connect`: presence when the org's policy asks for it.
    (ShellTicket, &[Cli, Ui]),
    (RequestApproval, &[Cli, Ui, Sessiond, Copilotd]),
    (ListApprovals, &[Cli, Ui]),
    (ShowApproval, &[Cli, Ui]),
    // Only the requester itself gets its token (checked per request).
    (ApprovalOutcome, &[Cli, Ui, Sessiond, Copilotd]),
    // Approving is a person's act.
    (DecideApproval, &[Cli, Ui]),
    // Only the executor consumes tokens: sessiond for device commands,
    // copilotd for its own API calls and record writes (checked per token:
    // `Action::executor`, and copilotd only its own tokens).
    (ConsumeApproval, &[Sessiond, Copilotd]),
    // The same checks without spending: the executor asks before it gets a
    // device credential (a forged or replayed token releases nothing).
    (CheckApproval, &[Sessiond, Copilotd]),
    // Exact-value redaction of text bound for the AI provider.
    (Redact, &[Cli, Ui, Copilotd]),
    // syncd stops and clears at sign-out like the other daemons.
    (Subscribe, &[Cli, Ui, Sessiond, Copilotd, Syncd]),
    // Writing records is a person's act (daemons that write records go
    // through approvals and a person's tool); anyone may check a record.
    (MacRecords, &[Cli, Ui]),
    // syncd checks every record that arrives from a server before it
    // applies it (a moved ciphertext or changed plaintext fails the MAC).
    (VerifyRecords, &[Cli, Ui, Sessiond, Copilotd, Syncd]),
    // Device credentials go to the executor only, for one verified host
    // record and the destination it names; keys are used, never released.
    (ReleasePassword, &[Sessiond]),
    (SshPublicKey, &[Sessiond]),
    (SshSign, &[Sessiond]),
    // Sessiond seals recordings; a person's tools play them back.
    (RecordingKey, &[Cli, Ui, Sessiond]),
    // The copilot's API key, for the endpoint stored with it.
    (ReleaseProviderKey, &[Copilotd]),
    // Starting and ending an Autopilot task is a person's act; inside it,
    // copilotd's requests are approved at once only within its bounds and
    // what org policy permits (crate::autopilot).
    (GrantAutopilot, &[Cli, Ui]),
    // Ending only takes authority away: copilotd ends its task when its
    // person's chat client goes away.
    (EndAutopilot, &[Cli, Ui, Copilotd]),
    // A requester withdraws its own pending request (checked per request).
    (WithdrawApproval, &[Cli, Ui, Sessiond, Copilotd]),
    (RequestAutoApproval, &[Copilotd]),
    // Procedure and memory bodies for the copilot's record tools: only that
    // field of a verified record (a person's tools have OpenFields).
    (OpenNote, &[Copilotd]),
    // A record write copilotd carries out, only as a person approved it
    // (the token is checked and spent per request).
    (MacApprovedRecord, &[Copilotd]),
    // A connector's or MCP server's auth, for the endpoint its verified
    // record names; copilotd applies it to that one call.
    (ReleaseServiceAuth, &[Copilotd]),
    // syncd (crate::sync_signing): the account's card, a server's device
    // challenge and writes of records the local store holds, signed with
    // the identity key; never arbitrary bytes, and never for another role
    // (a person's tools reach the server through syncd).
    (SyncCard, &[Syncd]),
    (SyncSignChallenge, &[Syncd]),
    (SyncSignWrite, &[Syncd]),
    // A second device: uploading the key bundle needs the passphrase
    // (presence); deriving a verifier and restoring an account from a
    // bundle are a person's sign-in on an empty profile.
    (SyncKeyBundle, &[Cli, Ui]),
    (BundleVerifier, &[Cli, Ui]),
    (AccountFromBundle, &[Cli, Ui]),
];

/// Whether `role` may perform `op`.
pub fn allowed(role: PeerRole, op: Operation) -> bool {
    ROLE_TABLE
        .iter()
        .any(|(o, roles)| *o == op && roles.contains(&role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_table_once() {
        for op in Operation::ALL {
            let n = ROLE_TABLE.iter().filter(|(o, _)| *o == op).count();
            assert_eq!(n, 1, "{op} appears {n} times in ROLE_TABLE");
        }
        assert_eq!(ROLE_TABLE.len(), Operation::ALL.len());
    }

    #[test]
    fn people_only_operations() {
        for op in [
            DecideApproval,
            SignIn,
            SignOut,
            AccountInit,
            KeychainSet,
            KeychainBind,
            AccountSecretKey,
            OpenFields,
            RevealFields,
            ShellTicket,
            OrgPolicySet,
        ] {
            assert!(!allowed(Copilotd, op), "copilotd may {op}");
            assert!(!allowed(Sessiond, op), "sessiond may {op}");
        }
        assert!(allowed(Sessiond, ConsumeApproval));
        for role in [Cli, Ui, Sessiond] {
            assert!(!allowed(role, ReleaseServiceAuth), "{role:?}");
        }
        assert!(allowed(Copilotd, ReleaseServiceAuth));
        assert!(!allowed(Copilotd, ReleasePassword));
        assert!(!allowed(Cli, ConsumeApproval));
    }

    #[test]
    fn syncd_signs_sync_bodies_and_nothing_else() {
        for op in [SyncCard, SyncSignChallenge, SyncSignWrite] {
            for role in PeerRole::ALL {
                assert_eq!(allowed(role, op), role == Syncd, "{role} {op}");
            }
        }
        // syncd holds no key: it never opens, MACs or releases anything,
        // and never acts for a person.
        for op in [
            OpenFields,
            RevealFields,
            MacRecords,
            SealFields,
            ReleasePassword,
            SshSign,
            RecordingKey,
            ReleaseProviderKey,
            OpenNote,
            ReleaseServiceAuth,
            DecideApproval,
            SignIn,
            SignOut,
            AccountSecretKey,
            KeychainList,
        ] {
            assert!(!allowed(Syncd, op), "syncd may {op}");
        }
        // The key bundle is a person's: sealed with the passphrase, opened
        // with both secrets; no daemon (syncd included) makes or opens one.
        for op in [SyncKeyBundle, BundleVerifier, AccountFromBundle] {
            for role in PeerRole::ALL {
                assert_eq!(allowed(role, op), matches!(role, Cli | Ui), "{role} {op}");
            }
        }
    }
}
