//! Accounts, org logs and signed record envelopes made the way a client
//! makes them, with keys held in memory: for the server's tests and the
//! benchmark (syncd gets its signatures from the broker instead).
//!
//! Owns: the one way the tests and the bench build a team on a server.
//! Must never: be used by the server itself, or hold a key that matters
//! (every key here is generated at run time and thrown away).

use gatehouse_membership::card::{AccountCard, Role, SignedCard};
use gatehouse_membership::envelope::{Scope, SignedWrite, WriteBody, content_hash};
use gatehouse_membership::invite::secret_hash;
use gatehouse_membership::{EntryBody, KeyGen, Op, SignedEntry, sign};
use gatehouse_syncproto::{
    AccountId, Bytes, KindName, OrgId, RecordEnvelope, RecordId, SealedField, SpaceId,
};

use crate::client::{ClientError, SyncClient};

/// `N` random bytes.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS has no randomness");
    b
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

/// An account whose identity seed is held here (the broker holds it for real).
pub struct TestAccount {
    pub name: String,
    pub seed: [u8; 32],
    /// The X25519 agreement secret (the broker holds it for real).
    pub agreement: [u8; 32],
    pub card: SignedCard,
}

impl TestAccount {
    /// A new account with fresh identity and agreement keys.
    pub fn generate(name: &str) -> TestAccount {
        let seed = random::<32>();
        let agreement = random::<32>();
        let card = SignedCard::sign(
            &seed,
            AccountCard {
                account: name.into(),
                identity: sign::identity_public(&seed),
                agreement: sign::agreement_public(&agreement),
            },
        );
        TestAccount {
            name: name.into(),
            seed,
            agreement,
            card,
        }
    }

    /// Registers the account's card on the server.
    pub async fn register(&self, anon: &SyncClient) -> Result<(), ClientError> {
        anon.register(sign::encode(&self.card)).await.map(drop)
    }

    /// Signs in as `device`; returns a client using the new session.
    pub async fn sign_in(
        &self,
        anon: &SyncClient,
        device: &str,
    ) -> Result<SyncClient, ClientError> {
        anon.sign_in(&self.name, device, &self.seed).await
    }
}

/// An org's membership log as its admins have written it so far.
pub struct TestOrg {
    pub id: OrgId,
    pub entries: Vec<SignedEntry>,
}

impl TestOrg {
    /// Creates the org on the server with a genesis entry signed by `owner`.
    pub async fn create(
        owner: &TestAccount,
        c: &SyncClient,
        id: &str,
    ) -> Result<TestOrg, ClientError> {
        let genesis = SignedEntry::sign(
            &owner.seed,
            EntryBody {
                org: id.into(),
                seq: 0,
                prev: [0; 32],
                time_ms: now_ms(),
                signer: owner.name.clone(),
                op: Op::Genesis {
                    owner: owner.card.clone(),
                    key: KeyGen::for_key(id, 1, &random::<32>()),
                },
            },
        );
        let id = OrgId::new(id).map_err(protocol)?;
        c.create_org(&id, genesis.to_bytes()).await?;
        Ok(TestOrg {
            id,
            entries: vec![genesis],
        })
    }

    /// The next entry of the chain, signed by `by` (not sent).
    pub fn entry(&self, by: &TestAccount, op: Op) -> SignedEntry {
        let last = self.entries.last().expect("an org has its genesis entry");
        SignedEntry::sign(
            &by.seed,
            EntryBody {
                org: self.id.to_string(),
                seq: last.body.seq + 1,
                prev: last.hash(),
                time_ms: now_ms().max(last.body.time_ms),
                signer: by.name.clone(),
                op,
            },
        )
    }

    /// Signs the next entry and appends it on the server.
    pub async fn append(
        &mut self,
        c: &SyncClient,
        by: &TestAccount,
        op: Op,
    ) -> Result<(), ClientError> {
        let e = self.entry(by, op);
        c.append_log(&self.id, e.to_bytes()).await?;
        self.entries.push(e);
        Ok(())
    }

    /// Invites and confirms `who` with `role` (two entries signed by `by`).
    pub async fn add(
        &mut self,
        c: &SyncClient,
        by: &TestAccount,
        who: &TestAccount,
        role: Role,
    ) -> Result<(), ClientError> {
        let invite_id = random::<16>();
        let invite = Op::Invite {
            invite_id,
            role,
            secret_hash: secret_hash(&invite_id, &random::<32>()),
            expires_ms: now_ms() + 3_600_000,
        };
        self.append(c, by, invite).await?;
        let confirm = Op::Confirm {
            invite_id,
            member: who.card.clone(),
            role,
        };
        self.append(c, by, confirm).await
    }

    /// The membership state the log says (as every client verifies it).
    pub fn state(
        &self,
    ) -> Result<gatehouse_membership::MembershipState, gatehouse_membership::LogError> {
        gatehouse_membership::MembershipState::verify_chain(&self.entries)
    }

    pub fn space(&self) -> SpaceId {
        SpaceId::Org(self.id.clone())
    }
}

/// A host record envelope written by `by` on top of revision `base`:
/// `plain` is its plaintext-allowed JSON, `sealed` its ciphertexts by field
/// (the MAC is random bytes: the server cannot check it, clients do).
pub fn signed_host(
    space: &SpaceId,
    by: &TestAccount,
    id: &str,
    base: u64,
    plain: &str,
    sealed: Vec<SealedField>,
) -> Result<RecordEnvelope, ClientError> {
    let content = content_hash(
        plain,
        sealed
            .iter()
            .map(|f| (f.field.as_str(), f.ciphertext.as_slice())),
    );
    let scope = match space {
        SpaceId::Org(o) => Scope::Org(o.to_string()),
        SpaceId::Private(a) => Scope::Private(a.to_string()),
    };
    let write = SignedWrite::sign(
        &by.seed,
        WriteBody {
            scope,
            kind: "host".into(),
            id: id.into(),
            revision: base + 1,
            base_revision: base,
            deleted: false,
            content,
            generation: 1,
            log_head: 0,
            writer: by.name.clone(),
        },
    );
    Ok(RecordEnvelope {
        space: space.clone(),
        kind: KindName::new("host").map_err(protocol)?,
        id: RecordId::new(id).map_err(protocol)?,
        revision: base + 1,
        base_revision: base,
        deleted: false,
        plain: plain.into(),
        sealed,
        mac: Bytes(random::<32>().to_vec()),
        writer: AccountId::new(by.name.clone()).map_err(protocol)?,
        write: Bytes(write.to_bytes()),
    })
}
