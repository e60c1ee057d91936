//! Live session sharing's keys and frames (issue 14): the sharer's signed
//! participant list for one key epoch, and the sealed frames relayed by the
//! sync server.
//!
//! Each epoch has one random **broadcast key** (the sharer's screen output:
//! every participant reads it) and, per participant, a random **input key**
//! only that participant and the sharer hold: a participant's keystrokes are
//! sealed under their own input key, so the sharer knows who typed without a
//! signature per keystroke, and no participant can type as another. Both are
//! sealed to the participant's X25519 agreement key ([`crate::sealed_box`])
//! and the list is signed by the sharer's identity key. Revoking someone or
//! stopping the share starts a new epoch with new keys, so a participant who
//! kept an old key reads nothing sent after.
//!
//! A frame is `postcard(FrameHeader) ‖ XChaCha20-Poly1305(body)` with the
//! header (channel, epoch, sender, direction, kind, counter) as associated
//! data; counters only grow per (epoch, sender, direction), and
//! [`ReplayGuard`] refuses a repeated or older one.
//!
//! Pure: no I/O, no clock. Must never: accept a list the sharer did not
//! sign, a participant who is not an active member with that agreement key,
//! a list without exactly one owner, or a frame whose header was changed.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

use crate::PublicKey;
use crate::log::MembershipState;
use crate::sealed_box;
use crate::sign;

/// The sharer's signature over a participant list.
pub const DOMAIN_SHARE: &str = "gatehouse/share-list/v1";
/// Sealing one participant's keys to their agreement key.
const DOMAIN_SHARE_WRAP: &str = "gatehouse/share-wrap/v1";
/// A frame's associated data.
const DOMAIN_FRAME: &str = "gatehouse/share-frame/v1";

/// The most participants one share may have.
pub const MAX_PARTICIPANTS: usize = 64;
/// The largest frame body (a burst of screen output).
pub const MAX_FRAME_BODY: usize = 64 * 1024;

/// What a participant may do, enforced by the sharer's sessiond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ShareRole {
    /// Sees the screen; what they type never reaches the device.
    Viewer,
    /// May type; lines that are not read-only wait for the owner's approval.
    CoWorker,
    /// Approves co-workers' lines and revokes others; exactly one per list.
    Owner,
}

impl ShareRole {
    pub fn parse(s: &str) -> Option<ShareRole> {
        match s {
            "viewer" => Some(ShareRole::Viewer),
            "co-worker" => Some(ShareRole::CoWorker),
            "owner" => Some(ShareRole::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShareRole::Viewer => "viewer",
            ShareRole::CoWorker => "co-worker",
            ShareRole::Owner => "owner",
        }
    }
}

/// One participant as the list names them, with their keys sealed to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareParticipant {
    pub account: String,
    pub role: ShareRole,
    /// The agreement key their keys were sealed to (their card's).
    pub agreement_key: PublicKey,
    pub ephemeral: PublicKey,
    pub nonce: [u8; 24],
    /// Sealed: broadcast key ‖ this participant's input key (64 bytes).
    pub sealed_keys: Vec<u8>,
}

/// What the sharer signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareList {
    pub channel: String,
    pub org: String,
    pub sharer: String,
    /// Raised at every change of the list (a new key each time).
    pub epoch: u64,
    /// What is shared, as the sharer names it (host and session).
    pub session: String,
    pub participants: Vec<ShareParticipant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedShareList {
    pub list: ShareList,
    pub signature: Vec<u8>,
}

/// Who a participant is to be, before their keys are sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    pub account: String,
    pub role: ShareRole,
    pub agreement_key: PublicKey,
}

/// The epoch's keys as the sharer holds them.
pub struct EpochKeys {
    pub broadcast: Zeroizing<[u8; 32]>,
    /// Each participant's input key.
    pub input: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

/// What a participant gets from a list addressed to them.
pub struct ParticipantKeys {
    pub role: ShareRole,
    pub epoch: u64,
    pub broadcast: Zeroizing<[u8; 32]>,
    pub input: Zeroizing<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("the share list is for org {got:?}, not {want:?}")]
    WrongOrg { want: String, got: String },
    #[error("the sharer {0:?} is not an active member of the org")]
    SharerNotMember(String),
    #[error("the share list's signature does not verify under {0:?}'s identity key")]
    BadSignature(String),
    #[error("participant {0:?} is not an active member of the org")]
    ParticipantNotMember(String),
    #[error("participant {0:?}'s keys are sealed to another agreement key than their card's")]
    ParticipantKey(String),
    #[error("participant {0:?} is listed twice")]
    Duplicate(String),
    #[error("the sharer cannot be a participant of their own share")]
    SharerListed,
    #[error("a share list needs at most one owner among the participants, found {0}")]
    Owners(usize),
    #[error("a share list has at most {MAX_PARTICIPANTS} participants, found {0}")]
    TooMany(usize),
    #[error("{0:?} is not a participant of this share")]
    NotParticipant(String),
    #[error("the keys sealed to {0:?} do not open (wrong key or tampered)")]
    Open(String),
    #[error("epoch {got} is not after epoch {have}: a replayed or rolled-back list")]
    StaleEpoch { have: u64, got: u64 },
    #[error("no randomness: {0}")]
    Random(String),
}

fn random32() -> Result<Zeroizing<[u8; 32]>, ShareError> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(k.as_mut()).map_err(|e| ShareError::Random(e.to_string()))?;
    Ok(k)
}

/// The associated data of one participant's sealed keys: every routing field.
fn wrap_aad(
    list: &ShareList,
    account: &str,
    role: ShareRole,
    key: &PublicKey,
    eph: &PublicKey,
) -> Vec<u8> {
    sign::message(
        DOMAIN_SHARE_WRAP,
        &(
            &list.channel,
            &list.org,
            &list.sharer,
            list.epoch,
            &list.session,
            account,
            role,
            key,
            eph,
        ),
    )
}

impl SignedShareList {
    /// New keys for `epoch`, sealed to each invitee, signed by the sharer.
    /// The owner is the sharer unless one invitee has [`ShareRole::Owner`].
    pub fn seal(
        sharer_seed: &[u8; 32],
        sharer: &str,
        org: &str,
        channel: &str,
        session: &str,
        epoch: u64,
        invitees: &[Invitee],
    ) -> Result<(SignedShareList, EpochKeys), ShareError> {
        let mut list = ShareList {
            channel: channel.into(),
            org: org.into(),
            sharer: sharer.into(),
            epoch,
            session: session.into(),
            participants: Vec::with_capacity(invitees.len()),
        };
        check_shape(
            &list.sharer,
            invitees.iter().map(|i| (i.account.as_str(), i.role)),
        )?;
        let broadcast = random32()?;
        let mut input = BTreeMap::new();
        for inv in invitees {
            let own = random32()?;
            let mut keys = Zeroizing::new([0u8; 64]);
            keys[..32].copy_from_slice(broadcast.as_ref());
            keys[32..].copy_from_slice(own.as_ref());
            let sealed = sealed_box::seal_to(
                DOMAIN_SHARE_WRAP,
                &inv.agreement_key,
                keys.as_ref(),
                |eph| wrap_aad(&list, &inv.account, inv.role, &inv.agreement_key, eph),
            )
            .map_err(|e| ShareError::Random(e.0))?;
            list.participants.push(ShareParticipant {
                account: inv.account.clone(),
                role: inv.role,
                agreement_key: inv.agreement_key,
                ephemeral: sealed.ephemeral,
                nonce: sealed.nonce,
                sealed_keys: sealed.ciphertext,
            });
            input.insert(inv.account.clone(), own);
        }
        let sk = ed25519_dalek::SigningKey::from_bytes(sharer_seed);
        let signature = sign::sign(&sk, DOMAIN_SHARE, &list);
        Ok((
            SignedShareList { list, signature },
            EpochKeys { broadcast, input },
        ))
    }

    /// What anyone can check with the org's membership state: the sharer
    /// and every participant are active members, the sharer signed the
    /// list, each participant's keys went to their card's agreement key, at
    /// most one participant is the owner, nobody is listed twice.
    pub fn check(&self, state: &MembershipState) -> Result<(), ShareError> {
        let l = &self.list;
        if l.org != state.org {
            return Err(ShareError::WrongOrg {
                want: state.org.clone(),
                got: l.org.clone(),
            });
        }
        let sharer = state
            .members
            .get(&l.sharer)
            .ok_or_else(|| ShareError::SharerNotMember(l.sharer.clone()))?;
        if !sign::verify(&sharer.card.card.identity, DOMAIN_SHARE, l, &self.signature) {
            return Err(ShareError::BadSignature(l.sharer.clone()));
        }
        check_shape(
            &l.sharer,
            l.participants.iter().map(|p| (p.account.as_str(), p.role)),
        )?;
        for p in &l.participants {
            let m = state
                .members
                .get(&p.account)
                .ok_or_else(|| ShareError::ParticipantNotMember(p.account.clone()))?;
            if m.card.card.agreement != p.agreement_key {
                return Err(ShareError::ParticipantKey(p.account.clone()));
            }
        }
        Ok(())
    }

    /// A participant opens the list addressed to them: [`Self::check`], an
    /// epoch after `last_epoch` (none for a first join), then their keys.
    pub fn open(
        &self,
        state: &MembershipState,
        me: &str,
        agreement_secret: &[u8; 32],
        last_epoch: Option<u64>,
    ) -> Result<ParticipantKeys, ShareError> {
        self.check(state)?;
        let l = &self.list;
        if let Some(have) = last_epoch.filter(|have| l.epoch <= *have) {
            return Err(ShareError::StaleEpoch { have, got: l.epoch });
        }
        let p = l
            .participants
            .iter()
            .find(|p| p.account == me)
            .ok_or_else(|| ShareError::NotParticipant(me.into()))?;
        let aad = wrap_aad(l, &p.account, p.role, &p.agreement_key, &p.ephemeral);
        let keys = sealed_box::open_from(
            DOMAIN_SHARE_WRAP,
            agreement_secret,
            &p.agreement_key,
            &p.ephemeral,
            &p.nonce,
            &p.sealed_keys,
            &aad,
        )
        .filter(|k| k.len() == 64)
        .ok_or_else(|| ShareError::Open(me.into()))?;
        let mut broadcast = Zeroizing::new([0u8; 32]);
        let mut input = Zeroizing::new([0u8; 32]);
        broadcast.copy_from_slice(&keys[..32]);
        input.copy_from_slice(&keys[32..]);
        Ok(ParticipantKeys {
            role: p.role,
            epoch: l.epoch,
            broadcast,
            input,
        })
    }

    /// Who owns the session: the participant listed as owner, else the sharer.
    pub fn owner(&self) -> &str {
        self.list
            .participants
            .iter()
            .find(|p| p.role == ShareRole::Owner)
            .map_or(self.list.sharer.as_str(), |p| p.account.as_str())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        sign::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignedShareList, sign::DecodeError> {
        sign::decode_exact("share list", bytes)
    }
}

fn check_shape<'a>(
    sharer: &str,
    participants: impl Iterator<Item = (&'a str, ShareRole)>,
) -> Result<(), ShareError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut owners = 0;
    for (account, role) in participants {
        if account == sharer {
            return Err(ShareError::SharerListed);
        }
        if !seen.insert(account) {
            return Err(ShareError::Duplicate(account.into()));
        }
        owners += usize::from(role == ShareRole::Owner);
    }
    if seen.len() > MAX_PARTICIPANTS {
        return Err(ShareError::TooMany(seen.len()));
    }
    if owners > 1 {
        return Err(ShareError::Owners(owners));
    }
    Ok(())
}

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// From the sharer to every participant (broadcast key).
    ToParticipants,
    /// From one participant to the sharer (that participant's input key).
    ToSharer,
}

/// What a frame carries (its body's meaning is the sharing code's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameKind {
    /// Terminal output (sharer → participants).
    Output,
    /// Keystrokes (participant → sharer).
    Input,
    /// Joins, leaves, approvals, revocations, the end.
    Control,
}

/// A frame's header: sent in clear, bound as associated data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameHeader {
    pub channel: String,
    pub epoch: u64,
    pub sender: String,
    pub direction: Direction,
    pub kind: FrameKind,
    /// Grows by at least one per frame of this (epoch, sender, direction).
    pub counter: u64,
    pub nonce: [u8; 24],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame body of {0} bytes is over the {MAX_FRAME_BODY}-byte limit")]
    TooLarge(usize),
    #[error("the frame does not decode: {0}")]
    Malformed(String),
    #[error("the frame does not open (another epoch's or sender's key, or tampered)")]
    Open,
    #[error("frame {got} from {sender:?} is not after {have}: replayed or reordered")]
    Replayed { sender: String, have: u64, got: u64 },
    #[error("no randomness: {0}")]
    Random(String),
}

/// Seals `body` under `key` (the broadcast key, or the sender's input key).
pub fn seal_frame(
    key: &[u8; 32],
    mut header: FrameHeader,
    body: &[u8],
) -> Result<Vec<u8>, FrameError> {
    if body.len() > MAX_FRAME_BODY {
        return Err(FrameError::TooLarge(body.len()));
    }
    getrandom::fill(&mut header.nonce).map_err(|e| FrameError::Random(e.to_string()))?;
    let aad = sign::message(DOMAIN_FRAME, &header);
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&header.nonce),
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .map_err(|_| FrameError::Open)?;
    let mut out = sign::encode(&header);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The header of a sealed frame, without opening it (to pick the key).
pub fn frame_header(frame: &[u8]) -> Result<(FrameHeader, &[u8]), FrameError> {
    if frame.len() > MAX_FRAME_BODY + 1024 {
        return Err(FrameError::TooLarge(frame.len()));
    }
    postcard::take_from_bytes::<FrameHeader>(frame)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Opens a frame under `key`; the header comes back as sealed.
pub fn open_frame(
    key: &[u8; 32],
    frame: &[u8],
) -> Result<(FrameHeader, Zeroizing<Vec<u8>>), FrameError> {
    let (header, sealed) = frame_header(frame)?;
    let aad = sign::message(DOMAIN_FRAME, &header);
    let body = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(&header.nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| FrameError::Open)?;
    Ok((header, Zeroizing::new(body)))
}

/// The last counter seen per (epoch, sender, direction): a frame must come
/// after it.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    last: BTreeMap<(u64, String, Direction), u64>,
}

impl ReplayGuard {
    /// Accepts `h` if its counter is after the last one from the same
    /// epoch, sender and direction, and remembers it.
    pub fn accept(&mut self, h: &FrameHeader) -> Result<(), FrameError> {
        let key = (h.epoch, h.sender.clone(), h.direction);
        match self.last.get(&key) {
            Some(&have) if h.counter <= have => Err(FrameError::Replayed {
                sender: h.sender.clone(),
                have,
                got: h.counter,
            }),
            _ => {
                self.last.insert(key, h.counter);
                Ok(())
            }
        }
    }
}
