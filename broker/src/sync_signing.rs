//! What the broker signs for syncd with the account's identity key: a sync
//! server's device challenge, and a write of a record the local store holds.
//!
//! Owns the checks before each signature: the bytes decode exactly as the
//! membership body of that kind (no trailing bytes), name this account, and
//! for a write describe the presented record, whose MAC must verify under its
//! scope's key, with the content hash recomputed here from the MACed content
//! (`gatehouse_ipc::sync_record`). syncd holds no key and is not trusted: a
//! compromised syncd can get signatures only for challenges and for writes
//! of records this account already holds, never for other bytes.
//! Must never: sign bytes that did not decode as the body, sign under another
//! domain than the body's, or sign a write whose content it did not check.

use gatehouse_ipc::broker::{BrokerError, KeyScope, VerifyItem};
use gatehouse_ipc::sync_record;
use gatehouse_membership::auth::AuthChallenge;
use gatehouse_membership::envelope::content_hash;
use gatehouse_membership::{Scope, SignedWrite, WriteBody, sign};

use crate::host_credentials::verified_content;
use crate::vault::Vault;

/// Length of a server's challenge nonce.
const NONCE_LEN: usize = 32;

fn refused(reason: impl Into<String>) -> BrokerError {
    BrokerError::SyncRefused(reason.into())
}

/// The account's sync name, which every signed body must carry.
fn account_name(vault: &Vault) -> Result<String, BrokerError> {
    vault
        .sync_account()
        .ok_or_else(|| refused("the account has no name on sync servers yet (SyncCard first)"))
}

/// Signs `bytes` if they are exactly an [`AuthChallenge`] for this account.
pub fn sign_challenge(vault: &mut Vault, bytes: &[u8]) -> Result<Vec<u8>, BrokerError> {
    let challenge: AuthChallenge = sign::decode_exact("device challenge", bytes)
        .map_err(|e| refused(format!("not a device challenge: {e}")))?;
    let me = account_name(vault)?;
    if challenge.account != me {
        return Err(refused(format!(
            "the challenge is for account {:?}, this account is {me:?}",
            challenge.account
        )));
    }
    if challenge.nonce.len() != NONCE_LEN {
        return Err(refused(format!(
            "the challenge nonce is {} bytes, not {NONCE_LEN}",
            challenge.nonce.len()
        )));
    }
    if challenge.server.is_empty() || challenge.device.is_empty() {
        return Err(refused("the challenge names no server or no device"));
    }
    vault.sign_as_account(|seed| challenge.sign(seed))
}

/// Signs `bytes` if they are exactly a [`WriteBody`] by this account that
/// describes `record` (MAC verified), returning the 64-byte signature.
pub fn sign_write(
    vault: &mut Vault,
    record: &VerifyItem,
    bytes: &[u8],
) -> Result<Vec<u8>, BrokerError> {
    let body: WriteBody = sign::decode_exact("record write", bytes)
        .map_err(|e| refused(format!("not a record write: {e}")))?;
    let me = account_name(vault)?;
    if body.writer != me {
        return Err(refused(format!(
            "the write is by {:?}, this account is {me:?}",
            body.writer
        )));
    }
    let item = &record.item;
    let scope_matches = match (&body.scope, &item.scope) {
        (Scope::Private(owner), KeyScope::Private) => *owner == me,
        (Scope::Org(a), KeyScope::Org(b)) => a == b,
        _ => false,
    };
    if !scope_matches {
        return Err(refused(format!(
            "the write is for {:?}, the record is in {}",
            body.scope, item.scope
        )));
    }
    if body.kind != item.record_kind || body.id != item.record_id {
        return Err(refused(format!(
            "the write is for {}/{}, the record is {}/{}",
            body.kind, body.id, item.record_kind, item.record_id
        )));
    }
    if matches!(body.scope, Scope::Private(_)) && (body.generation != 0 || body.log_head != 0) {
        return Err(refused(
            "a private record's write has key generation 0 and log head 0",
        ));
    }
    // The record must be one this account holds, unaltered.
    verified_content(vault, record)?;
    let expected = if body.deleted {
        content_hash("", [])
    } else {
        let wire = sync_record::to_wire(&item.content)
            .map_err(|e| refused(format!("{}/{}: {e}", item.record_kind, item.record_id)))?;
        content_hash(
            &wire.plain,
            wire.sealed.iter().map(|(n, c)| (n.as_str(), c.as_slice())),
        )
    };
    if body.content != expected {
        return Err(refused(format!(
            "the write's content hash is not the content of {}/{} as stored",
            item.record_kind, item.record_id
        )));
    }
    vault.sign_as_account(|seed| SignedWrite::sign(seed, body).signature)
}
