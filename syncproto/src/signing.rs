//! The exact byte strings that get signed (Ed25519) or hashed. Each is a
//! domain-separation prefix (ASCII, ending in NUL) followed by the postcard
//! encoding of a view struct listing the covered fields in order. Postcard is
//! deterministic: integers are varints, strings and byte strings are a varint
//! length then the bytes, `Option` is a 0/1 tag, enums a varint variant index.
//!
//! Owns: the prefixes and the views. Must never: change a view or a prefix
//! without bumping the `/v1` in its prefix (old signatures would stop verifying).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bytes::{Bytes, Hash32};
use crate::ids::{AccountId, ChannelId, KeyId, KindName, OrgId, RecordId, SpaceId};
use crate::membership::{LogAction, LogEntry};
use crate::record::{RecordEnvelope, SealedField};

pub const RECORD_DOMAIN: &[u8] = b"gatehouse-sync/v1/record\0";
pub const LOG_ENTRY_DOMAIN: &[u8] = b"gatehouse-sync/v1/log-entry\0";
pub const LOG_HASH_DOMAIN: &[u8] = b"gatehouse-sync/v1/log-hash\0";
pub const GRANT_DOMAIN: &[u8] = b"gatehouse-sync/v1/grant\0";
pub const AUTH_DOMAIN: &[u8] = b"gatehouse-sync/v1/auth\0";
pub const REGISTER_DOMAIN: &[u8] = b"gatehouse-sync/v1/register\0";
pub const DEVICE_DOMAIN: &[u8] = b"gatehouse-sync/v1/device\0";
pub const INVITE_SECRET_DOMAIN: &[u8] = b"gatehouse-sync/v1/invite-secret\0";
pub const RELAY_PARTICIPANTS_DOMAIN: &[u8] = b"gatehouse-sync/v1/relay-participants\0";

fn with_domain<T: Serialize>(domain: &[u8], view: &T) -> Vec<u8> {
    let mut out = domain.to_vec();
    // postcard into a Vec cannot fail for these plain structs.
    out.extend(postcard::to_allocvec(view).unwrap_or_default());
    out
}

#[derive(Serialize)]
struct RecordSigned<'a> {
    space: &'a SpaceId,
    kind: &'a KindName,
    id: &'a RecordId,
    revision: u64,
    base_revision: u64,
    deleted: bool,
    plain: &'a str,
    sealed: &'a [SealedField],
    mac: &'a Bytes,
    key_generation: u32,
    written_ms: u64,
    writer: &'a AccountId,
    writer_key_id: &'a KeyId,
}

/// What the writer signs for a record revision: every envelope field but `signature`.
pub fn record_bytes(r: &RecordEnvelope) -> Vec<u8> {
    with_domain(
        RECORD_DOMAIN,
        &RecordSigned {
            space: &r.space,
            kind: &r.kind,
            id: &r.id,
            revision: r.revision,
            base_revision: r.base_revision,
            deleted: r.deleted,
            plain: &r.plain,
            sealed: &r.sealed,
            mac: &r.mac,
            key_generation: r.key_generation,
            written_ms: r.written_ms,
            writer: &r.writer,
            writer_key_id: &r.writer_key_id,
        },
    )
}

#[derive(Serialize)]
struct LogSigned<'a> {
    org: &'a OrgId,
    seq: u64,
    prev_hash: &'a Hash32,
    at_ms: u64,
    signer: &'a AccountId,
    signer_key_id: &'a KeyId,
    action: &'a LogAction,
}

/// What an admin/owner signs for a membership-log entry: every field but `signature`.
pub fn log_entry_bytes(e: &LogEntry) -> Vec<u8> {
    with_domain(
        LOG_ENTRY_DOMAIN,
        &LogSigned {
            org: &e.org,
            seq: e.seq,
            prev_hash: &e.prev_hash,
            at_ms: e.at_ms,
            signer: &e.signer,
            signer_key_id: &e.signer_key_id,
            action: &e.action,
        },
    )
}

#[derive(Serialize)]
struct GrantSigned<'a> {
    org: &'a OrgId,
    generation: u32,
    recipient: &'a AccountId,
    recipient_key_id: &'a KeyId,
    granter: &'a AccountId,
    granter_key_id: &'a KeyId,
    log_seq: u64,
    wrapped: &'a Bytes,
}

/// What the granter signs for a key grant: every field but `signature`.
pub fn grant_bytes(g: &crate::api::KeyGrant) -> Vec<u8> {
    with_domain(
        GRANT_DOMAIN,
        &GrantSigned {
            org: &g.org,
            generation: g.generation,
            recipient: &g.recipient,
            recipient_key_id: &g.recipient_key_id,
            granter: &g.granter,
            granter_key_id: &g.granter_key_id,
            log_seq: g.log_seq,
            wrapped: &g.wrapped,
        },
    )
}

#[derive(Serialize)]
struct AuthSigned<'a> {
    server_id: &'a str,
    account: &'a AccountId,
    key_id: &'a KeyId,
    challenge_id: &'a str,
    nonce: &'a Bytes,
    expires_ms: u64,
}

/// What a device signs to answer a challenge (the broker's sign-challenge op, syncd role only).
pub fn auth_bytes(account: &AccountId, key_id: &KeyId, c: &crate::api::Challenge) -> Vec<u8> {
    with_domain(
        AUTH_DOMAIN,
        &AuthSigned {
            server_id: &c.server_id,
            account,
            key_id,
            challenge_id: &c.challenge_id,
            nonce: &c.nonce,
            expires_ms: c.expires_ms,
        },
    )
}

#[derive(Serialize)]
struct RegisterSigned<'a> {
    server_id: &'a str,
    account: &'a AccountId,
    identity_key: &'a Bytes,
    agreement_key: &'a Bytes,
}

/// What the identity key signs to register an account (proof of possession,
/// and the agreement key bound to the identity key).
pub fn register_bytes(
    server_id: &str,
    account: &AccountId,
    identity_key: &Bytes,
    agreement_key: &Bytes,
) -> Vec<u8> {
    with_domain(
        REGISTER_DOMAIN,
        &RegisterSigned {
            server_id,
            account,
            identity_key,
            agreement_key,
        },
    )
}

#[derive(Serialize)]
struct DeviceSigned<'a> {
    server_id: &'a str,
    account: &'a AccountId,
    device_key: &'a Bytes,
    label: &'a str,
}

/// What a new device key signs when it is added to an account (proof of possession).
pub fn device_bytes(
    server_id: &str,
    account: &AccountId,
    device_key: &Bytes,
    label: &str,
) -> Vec<u8> {
    with_domain(
        DEVICE_DOMAIN,
        &DeviceSigned {
            server_id,
            account,
            device_key,
            label,
        },
    )
}

#[derive(Serialize)]
struct RelayParticipantsSigned<'a> {
    channel: &'a ChannelId,
    org: &'a OrgId,
    epoch: u64,
    participants: &'a [crate::api::RelayParticipant],
}

/// What the sharer signs for a relay channel's participant list (issue 14).
pub fn relay_participants_bytes(p: &crate::api::RelayParticipants) -> Vec<u8> {
    with_domain(
        RELAY_PARTICIPANTS_DOMAIN,
        &RelayParticipantsSigned {
            channel: &p.channel,
            org: &p.org,
            epoch: p.epoch,
            participants: &p.participants,
        },
    )
}

/// The invite secret's hash as the `Invite` log entry carries it:
/// SHA-256(`gatehouse-sync/v1/invite-secret\0` ‖ org ‖ 0x00 ‖ invite_id ‖ 0x00 ‖ secret).
pub fn invite_secret_hash(org: &OrgId, invite_id: &str, secret: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(INVITE_SECRET_DOMAIN);
    h.update(org.as_str().as_bytes());
    h.update([0]);
    h.update(invite_id.as_bytes());
    h.update([0]);
    h.update(secret);
    Hash32(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn record_bytes_cover_every_field_but_the_signature() {
        let r = sample();
        let base = record_bytes(&r);
        assert!(base.starts_with(RECORD_DOMAIN));
        let mut s = r.clone();
        s.signature = Bytes(vec![9; 64]);
        assert_eq!(record_bytes(&s), base, "signature is not covered");
        let muts: Vec<Box<dyn Fn(&mut RecordEnvelope)>> = vec![
            Box::new(|r| r.space = "org:other".parse().unwrap()),
            Box::new(|r| r.kind = KindName::new("procedure").unwrap()),
            Box::new(|r| r.id = RecordId::new("ffff").unwrap()),
            Box::new(|r| r.revision += 1),
            Box::new(|r| r.base_revision += 1),
            Box::new(|r| r.deleted = true),
            Box::new(|r| r.plain.push(' ')),
            Box::new(|r| r.sealed[0].ciphertext.0[0] ^= 1),
            Box::new(|r| r.sealed[0].field.push('x')),
            Box::new(|r| r.mac.0[0] ^= 1),
            Box::new(|r| r.key_generation += 1),
            Box::new(|r| r.written_ms += 1),
            Box::new(|r| r.writer = AccountId::new("mallory").unwrap()),
            Box::new(|r| r.writer_key_id = crate::ids::key_id(b"x")),
        ];
        for (i, m) in muts.iter().enumerate() {
            let mut x = r.clone();
            m(&mut x);
            assert_ne!(record_bytes(&x), base, "mutation {i} not covered");
        }
    }

    #[test]
    fn domains_differ_and_invite_hash_binds_everything() {
        let all = [
            RECORD_DOMAIN,
            LOG_ENTRY_DOMAIN,
            LOG_HASH_DOMAIN,
            GRANT_DOMAIN,
            AUTH_DOMAIN,
            REGISTER_DOMAIN,
            DEVICE_DOMAIN,
            INVITE_SECRET_DOMAIN,
            RELAY_PARTICIPANTS_DOMAIN,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(!a.starts_with(b) && !b.starts_with(a));
            }
        }
        let o = OrgId::new("acme").unwrap();
        let h = invite_secret_hash(&o, "i1", b"s");
        assert_ne!(h, invite_secret_hash(&o, "i2", b"s"));
        assert_ne!(h, invite_secret_hash(&o, "i1", b"t"));
        assert_ne!(h, invite_secret_hash(&OrgId::new("x").unwrap(), "i1", b"s"));
    }
}
