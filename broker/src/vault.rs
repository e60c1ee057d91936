//! The vault: the account, its keys in secret memory, organizations, the
//! keychain index, and the cache of secret values the broker has handled.
//!
//! Owns every key Gatehouse has. Keys live only in [`SecretArena`] slots
//! (memfd_secret pages where the kernel has them) and are zeroized at
//! sign-out. The account file on disk holds only wrapped keys, the Argon2id
//! parameters and salt, and public metadata.
//! Must never: hand out a key, write an unwrapped key to disk, or keep a
//! plaintext outside secret memory longer than one request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gatehouse_ipc::broker::{
    BrokerError, FieldAddress, KeyScope, KeychainEntry, OpenFailure, OrgInfo, PurgeReport,
    SecretKind,
};
use gatehouse_sandbox::secret_mem::{SecretArena, SecretRegion, SecretSlot};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{self, KdfParams, KeyId};
use crate::keychain::Keychain;
use crate::remembered::{RememberStore, UNLOCK_ENTRY};

mod account_keys;
pub use account_keys::bundle_verifier;

const KEY_SLOTS: usize = 256;
/// Room for cached secret values (exact-value redaction, purge at sign-out).
const CACHE_BYTES: usize = 2 * 1024 * 1024;
/// Values longer than this are not cached for redaction.
const CACHE_MAX_VALUE: usize = 4096;

pub use gatehouse_ipc::os::{now_ms, write_atomic};

/// The account file (`state/account.json`): wrapped keys and public metadata only.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountFile {
    format: u32,
    kdf: KdfParams,
    salt: String,
    user_key_id: String,
    user_key: String,
    keychain_key: String,
    approval_seed: String,
    approval_public: String,
    orgs: Vec<OrgRecord>,
    keychain: Vec<KeychainEntry>,
    /// The account's sync identity (see `vault/account_keys.rs`): wrapped private
    /// halves and the Secret Key, and the public halves in hex. Absent in
    /// account files written before they existed; made at the next sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_keys: Option<account_keys::AccountKeysFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrgRecord {
    id: String,
    name: String,
    key_id: String,
    wrapped: String,
    created_ms: u64,
}

/// Failed sign-in attempts (`state/throttle.json`), kept across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Throttle {
    failures: u32,
    last_failure_ms: u64,
}

impl Throttle {
    /// No delay for the first 3 failures, then 1 s doubling, capped at 5 minutes.
    fn delay_ms(&self) -> u64 {
        if self.failures < 3 {
            return 0;
        }
        (1000u64 << (self.failures - 3).min(9)).min(300_000)
    }
}

/// Keys of a signed-in account, as arena slots.
struct Unlocked {
    account: SecretSlot,
    user: SecretSlot,
    user_key_id: KeyId,
    keychain: SecretSlot,
    approval: SecretSlot,
    /// org id → (key id, slot)
    orgs: HashMap<String, (KeyId, SecretSlot)>,
}

/// Secret values the broker handled, for exact-value redaction; zeroized at sign-out.
pub struct SecretCache {
    region: SecretRegion,
    used: usize,
    /// (reference, offset, len)
    index: Vec<(String, usize, usize)>,
    seen: HashMap<[u8; 32], usize>,
    hash_key: [u8; 32],
}

impl SecretCache {
    fn new() -> Result<Self, BrokerError> {
        Ok(SecretCache {
            region: SecretRegion::new(CACHE_BYTES)
                .map_err(|e| BrokerError::Internal(e.to_string()))?,
            used: 0,
            index: Vec::new(),
            seen: HashMap::new(),
            hash_key: crypto::random_bytes(),
        })
    }

    /// Remembers `value` under `reference` (once per distinct value).
    pub fn remember(&mut self, reference: &str, value: &[u8]) {
        if value.len() < 4
            || value.len() > CACHE_MAX_VALUE
            || self.used + value.len() > self.region.len()
        {
            return;
        }
        let h = crypto::hmac_sha256(&self.hash_key, value);
        if self.seen.contains_key(&h) {
            return;
        }
        let off = self.used;
        self.region.as_mut_slice()[off..off + value.len()].copy_from_slice(value);
        self.used += value.len();
        self.seen.insert(h, self.index.len());
        self.index.push((reference.to_string(), off, value.len()));
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Iterates (reference, value).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.index
            .iter()
            .map(|(r, off, len)| (r.as_str(), &self.region.as_slice()[*off..*off + *len]))
    }

    /// Zeroizes every cached value; returns how many there were.
    fn purge(&mut self) -> usize {
        let n = self.index.len();
        self.region.as_mut_slice()[..self.used].zeroize();
        self.used = 0;
        self.index.clear();
        self.seen.clear();
        self.hash_key = crypto::random_bytes();
        n
    }
}

pub struct Vault {
    state_dir: PathBuf,
    arena: SecretArena,
    unlocked: Option<Unlocked>,
    file: Option<AccountFile>,
    throttle: Throttle,
    pub cache: SecretCache,
    pub keychain: Keychain,
    /// Bumped whenever the cache changes (lets redaction rebuild its matcher lazily).
    pub cache_generation: u64,
    /// Unlock material for this device is stored (in `remember_store`).
    remembered: bool,
    /// Where "remember this device" keeps its unlock material.
    remember_store: RememberStore,
}

fn storage<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> BrokerError + '_ {
    move |e| BrokerError::Storage(format!("{what}: {e}"))
}

fn b64d(s: &str) -> Result<Vec<u8>, BrokerError> {
    B64.decode(s).map_err(storage("account file"))
}

fn key_id_from_hex(s: &str) -> Result<KeyId, BrokerError> {
    let mut id = [0u8; crypto::KEY_ID_LEN];
    if s.len() != 2 * id.len() {
        return Err(BrokerError::Storage(format!(
            "bad key id {s:?} in account file"
        )));
    }
    for (i, b) in id.iter_mut().enumerate() {
        *b =
            u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(storage("account file key id"))?;
    }
    Ok(id)
}

fn as_key(slice: &[u8]) -> &[u8; 32] {
    slice.try_into().expect("key slots are 32 bytes")
}

impl Vault {
    /// Loads the account file if present; the vault starts signed out.
    pub fn open(state_dir: &Path, keychain: Keychain) -> Result<Vault, BrokerError> {
        let arena =
            SecretArena::new(32, KEY_SLOTS).map_err(|e| BrokerError::Internal(e.to_string()))?;
        let file = match std::fs::read(state_dir.join("account.json")) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(storage("account.json"))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(storage("account.json")(e)),
        };
        let throttle = std::fs::read(state_dir.join("throttle.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Vault {
            state_dir: state_dir.to_path_buf(),
            arena,
            unlocked: None,
            file,
            throttle,
            cache: SecretCache::new()?,
            remembered: matches!(keychain.get(UNLOCK_ENTRY), Ok(Some(_))),
            remember_store: RememberStore::keychain(),
            keychain,
            cache_generation: 0,
        })
    }

    /// Keeps remembered unlock material in `store` from now on (the
    /// group-only store of an installed system; see [`RememberStore`]).
    pub fn set_remember_store(&mut self, store: RememberStore) {
        self.remembered = store.present(&self.keychain);
        self.remember_store = store;
    }

    /// Where remembered unlock material is (or would be) kept.
    pub fn remember_store(&self) -> &RememberStore {
        &self.remember_store
    }

    pub fn memory_kind(&self) -> String {
        self.arena.kind().to_string()
    }

    pub fn initialized(&self) -> bool {
        self.file.is_some()
    }

    pub fn signed_in(&self) -> bool {
        self.unlocked.is_some()
    }

    pub fn org_count(&self) -> usize {
        self.file.as_ref().map_or(0, |f| f.orgs.len())
    }

    /// Whether unlock material for this device is in the keychain (known
    /// without asking the keychain: read once at start, kept up to date).
    pub fn remembered(&self) -> bool {
        self.remembered
    }

    fn save(&self) -> Result<(), BrokerError> {
        let file = self.file.as_ref().ok_or(BrokerError::NotInitialized)?;
        let json = serde_json::to_vec_pretty(file).map_err(storage("account.json"))?;
        write_atomic(&self.state_dir.join("account.json"), &json).map_err(storage("account.json"))
    }

    fn save_throttle(&self) {
        if let Ok(json) = serde_json::to_vec(&self.throttle) {
            let _ = write_atomic(&self.state_dir.join("throttle.json"), &json);
        }
    }

    fn alloc(&mut self) -> Result<SecretSlot, BrokerError> {
        self.arena
            .alloc()
            .map_err(|e| BrokerError::Internal(e.to_string()))
    }

    fn key(&self, slot: &SecretSlot) -> &[u8; 32] {
        as_key(
            self.arena
                .get(slot)
                .expect("slots of the unlocked account belong to the arena"),
        )
    }

    fn unlocked(&self) -> Result<&Unlocked, BrokerError> {
        self.unlocked.as_ref().ok_or(if self.file.is_some() {
            BrokerError::SignedOut
        } else {
            BrokerError::NotInitialized
        })
    }

    /// Creates the account: derives the account key and generates the user,
    /// keychain and approval keys, all wrapped under it. Leaves it signed in.
    pub fn init(&mut self, passphrase: &[u8]) -> Result<(), BrokerError> {
        if self.file.is_some() {
            return Err(BrokerError::AlreadyInitialized);
        }
        if passphrase.len() < 8 {
            return Err(BrokerError::Invalid {
                what: "passphrase".into(),
                reason: "at least 8 bytes".into(),
            });
        }
        std::fs::create_dir_all(&self.state_dir).map_err(storage("state dir"))?;
        let salt: [u8; 16] = crypto::random_bytes();
        let kdf = KdfParams::DEFAULT;
        let account = self.alloc()?;
        crypto::derive_account_key(
            kdf,
            passphrase,
            &salt,
            self.arena.get_mut(&account).expect("fresh slot"),
        )
        .map_err(BrokerError::Internal)?;
        let mut slots = Vec::new();
        let mut wrapped = Vec::new();
        for purpose in ["user", "keychain", "approval"] {
            let slot = self.alloc()?;
            crypto::fill_random(self.arena.get_mut(&slot).expect("fresh slot"));
            wrapped.push(B64.encode(crypto::wrap_key(
                self.key(&account),
                purpose,
                self.key(&slot),
            )));
            slots.push(slot);
        }
        let approval_public = {
            let sk = ed25519_dalek::SigningKey::from_bytes(self.key(&slots[2]));
            crypto::hex(sk.verifying_key().as_bytes())
        };
        let user_key_id: KeyId = crypto::random_bytes();
        let approval = slots.pop().expect("3 slots");
        let keychain = slots.pop().expect("3 slots");
        let user = slots.pop().expect("3 slots");
        self.file = Some(AccountFile {
            format: 1,
            kdf,
            salt: B64.encode(salt),
            user_key_id: crypto::hex(&user_key_id),
            user_key: wrapped[0].clone(),
            keychain_key: wrapped[1].clone(),
            approval_seed: wrapped[2].clone(),
            approval_public,
            orgs: Vec::new(),
            keychain: Vec::new(),
            account_keys: None,
        });
        self.unlocked = Some(Unlocked {
            account,
            user,
            user_key_id,
            keychain,
            approval,
            orgs: HashMap::new(),
        });
        self.save()?;
        self.ensure_account_keys()
    }

    /// Signs in with a passphrase (throttled after repeated failures).
    pub fn sign_in(&mut self, passphrase: &[u8], remember: bool) -> Result<(), BrokerError> {
        let file = self.file.clone().ok_or(BrokerError::NotInitialized)?;
        let wait =
            (self.throttle.last_failure_ms + self.throttle.delay_ms()).saturating_sub(now_ms());
        if wait > 0 {
            return Err(BrokerError::TooSoon {
                retry_after_ms: wait,
            });
        }
        // A session already open stays open unless the new passphrase is right.
        let previous = self.unlocked.take();
        let account = self.alloc()?;
        let salt = b64d(&file.salt)?;
        crypto::derive_account_key(
            file.kdf,
            passphrase,
            &salt,
            self.arena.get_mut(&account).expect("fresh slot"),
        )
        .map_err(BrokerError::Internal)?;
        let unlocked = self.unlock_with(account, &file);
        match (&unlocked, previous) {
            (Ok(()), Some(old)) => self.free_unlocked(old),
            (Err(_), Some(old)) => self.unlocked = Some(old),
            (_, None) => {}
        }
        match unlocked {
            Ok(()) => {
                if self.throttle.failures > 0 {
                    self.throttle = Throttle::default();
                    self.save_throttle();
                }
                if remember {
                    let u = self.unlocked()?;
                    let value = B64.encode(self.key(&u.account));
                    let value = Zeroizing::new(value);
                    self.remember_store
                        .set(&self.keychain, value.as_bytes())
                        .map_err(|reason| BrokerError::Keychain {
                            backend: self.remember_store.describe(&self.keychain),
                            reason,
                        })?;
                    self.remembered = true;
                }
                self.load_keychain_cache();
                self.ensure_account_keys()
            }
            Err(BrokerError::WrongPassphrase { .. }) => {
                self.throttle.failures += 1;
                self.throttle.last_failure_ms = now_ms();
                self.save_throttle();
                Err(BrokerError::WrongPassphrase {
                    failures: self.throttle.failures,
                    retry_after_ms: self.throttle.delay_ms(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Checks that `passphrase` is the signed-in account's passphrase: the
    /// proof of presence a decision carries (see `docs/threat-model.md`).
    /// Shares sign-in's throttle: wrong tries count, and while the throttle
    /// runs every attempt is refused without deriving anything.
    pub fn verify_presence(&mut self, passphrase: &[u8]) -> Result<(), BrokerError> {
        let file = self.file.clone().ok_or(BrokerError::NotInitialized)?;
        self.unlocked()?;
        let wait =
            (self.throttle.last_failure_ms + self.throttle.delay_ms()).saturating_sub(now_ms());
        if wait > 0 {
            return Err(BrokerError::TooSoon {
                retry_after_ms: wait,
            });
        }
        let probe = self.alloc()?;
        let salt = b64d(&file.salt)?;
        let derived = crypto::derive_account_key(
            file.kdf,
            passphrase,
            &salt,
            self.arena.get_mut(&probe).expect("fresh slot"),
        )
        .map_err(BrokerError::Internal);
        // Constant-time comparison of the derived key with the account key.
        let same = derived.is_ok() && {
            let current = &self.unlocked()?.account;
            self.key(&probe)
                .iter()
                .zip(self.key(current).iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        };
        let _ = self.arena.free(probe);
        derived?;
        if same {
            if self.throttle.failures > 0 {
                self.throttle = Throttle::default();
                self.save_throttle();
            }
            return Ok(());
        }
        self.throttle.failures += 1;
        self.throttle.last_failure_ms = now_ms();
        self.save_throttle();
        Err(BrokerError::WrongPassphrase {
            failures: self.throttle.failures,
            retry_after_ms: self.throttle.delay_ms(),
        })
    }

    /// Signs in with remembered unlock material, if this device was remembered.
    pub fn sign_in_remembered(&mut self) -> Result<bool, BrokerError> {
        let Some(file) = self.file.clone() else {
            return Ok(false);
        };
        let stored = match self.remember_store.get(&self.keychain) {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(false),
            Err(reason) => {
                return Err(BrokerError::Keychain {
                    backend: self.remember_store.describe(&self.keychain),
                    reason,
                });
            }
        };
        let account = self.alloc()?;
        let ok = {
            let dst = self.arena.get_mut(&account).expect("fresh slot");
            let mut raw = Zeroizing::new([0u8; 48]);
            match B64.decode_slice(&stored[..], &mut raw[..]) {
                Ok(32) => {
                    dst.copy_from_slice(&raw[..32]);
                    true
                }
                _ => false,
            }
        };
        if !ok {
            let _ = self.arena.free(account);
            return Ok(false);
        }
        match self.unlock_with(account, &file) {
            Ok(()) => {
                self.load_keychain_cache();
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Unwraps every key with the account key in `account`.
    fn unlock_with(&mut self, account: SecretSlot, file: &AccountFile) -> Result<(), BrokerError> {
        let mut got = Vec::new();
        for (purpose, wrapped) in [
            ("user", &file.user_key),
            ("keychain", &file.keychain_key),
            ("approval", &file.approval_seed),
        ] {
            let slot = self.alloc()?;
            let w = b64d(wrapped)?;
            let ak = *self.key(&account);
            let ok = crypto::unwrap_key_into(
                &ak,
                purpose,
                &w,
                self.arena.get_mut(&slot).expect("fresh slot"),
            );
            let mut ak = ak;
            ak.zeroize();
            got.push(slot);
            if !ok {
                for s in got {
                    let _ = self.arena.free(s);
                }
                let _ = self.arena.free(account);
                return Err(BrokerError::WrongPassphrase {
                    failures: 0,
                    retry_after_ms: 0,
                });
            }
        }
        let approval = got.pop().expect("3");
        let keychain = got.pop().expect("3");
        let user = got.pop().expect("3");
        let mut orgs = HashMap::new();
        for org in &file.orgs {
            let slot = self.alloc()?;
            let w = b64d(&org.wrapped)?;
            let purpose = format!("org:{}", org.id);
            let ak = self.key(&account).to_owned();
            let ok = crypto::unwrap_key_into(
                &ak,
                &purpose,
                &w,
                self.arena.get_mut(&slot).expect("fresh slot"),
            );
            let mut ak = ak;
            ak.zeroize();
            if !ok {
                return Err(BrokerError::Storage(format!(
                    "org {} key does not unwrap: account file altered",
                    org.name
                )));
            }
            orgs.insert(org.id.clone(), (key_id_from_hex(&org.key_id)?, slot));
        }
        let user_key_id = key_id_from_hex(&file.user_key_id)?;
        self.unlocked = Some(Unlocked {
            account,
            user,
            user_key_id,
            keychain,
            approval,
            orgs,
        });
        Ok(())
    }

    /// Zeroizes and frees the slots of a session that is being replaced.
    fn free_unlocked(&mut self, old: Unlocked) {
        let Unlocked {
            account,
            user,
            keychain,
            approval,
            orgs,
            ..
        } = old;
        for slot in [account, user, keychain, approval]
            .into_iter()
            .chain(orgs.into_values().map(|(_, s)| s))
        {
            let _ = self.arena.free(slot);
        }
    }

    /// Zeroizes every key slot; returns how many keys there were.
    fn sign_out_keys(&mut self) -> usize {
        let n = self.arena.in_use();
        self.unlocked = None;
        self.arena.purge();
        n
    }

    /// Sign-out: zeroize keys and cached secrets, delete remembered unlock material.
    pub fn sign_out(&mut self) -> PurgeReport {
        let started = std::time::Instant::now();
        let keys_zeroized = self.sign_out_keys();
        let cached_secrets_zeroized = self.cache.purge();
        self.cache_generation += 1;
        let unlock_material_deleted = self.remember_store.delete(&self.keychain);
        self.remembered = false;
        PurgeReport {
            keys_zeroized,
            cached_secrets_zeroized,
            unlock_material_deleted,
            daemons_notified: 0,
            micros: started.elapsed().as_micros() as u64,
        }
    }

    pub fn create_org(&mut self, name: &str) -> Result<OrgInfo, BrokerError> {
        check_name("organization name", name)?;
        self.unlocked()?;
        let file = self.file.as_ref().ok_or(BrokerError::NotInitialized)?;
        if file.orgs.iter().any(|o| o.name == name) {
            return Err(BrokerError::OrgExists(name.into()));
        }
        let id = crypto::hex(&crypto::random_bytes::<8>());
        let key_id: KeyId = crypto::random_bytes();
        let slot = self.alloc()?;
        crypto::fill_random(self.arena.get_mut(&slot).expect("fresh slot"));
        let u = self.unlocked()?;
        let wrapped = crypto::wrap_key(self.key(&u.account), &format!("org:{id}"), self.key(&slot));
        let record = OrgRecord {
            id: id.clone(),
            name: name.into(),
            key_id: crypto::hex(&key_id),
            wrapped: B64.encode(wrapped),
            created_ms: now_ms(),
        };
        let info = org_info(&record);
        self.file.as_mut().expect("checked").orgs.push(record);
        self.unlocked
            .as_mut()
            .expect("checked")
            .orgs
            .insert(id, (key_id, slot));
        self.save()?;
        Ok(info)
    }

    pub fn orgs(&self) -> Result<Vec<OrgInfo>, BrokerError> {
        self.unlocked()?;
        Ok(self
            .file
            .as_ref()
            .map(|f| f.orgs.iter().map(org_info).collect())
            .unwrap_or_default())
    }

    /// The key (and its id) that seals fields of `scope`.
    fn scope_key(&self, scope: &KeyScope) -> Result<(KeyId, &[u8; 32]), BrokerError> {
        let u = self.unlocked()?;
        match scope {
            KeyScope::Private => Ok((u.user_key_id, self.key(&u.user))),
            KeyScope::Org(id) => {
                let (kid, slot) = u
                    .orgs
                    .get(id)
                    .ok_or_else(|| BrokerError::NoSuchOrg(id.clone()))?;
                Ok((*kid, self.key(slot)))
            }
        }
    }

    pub fn seal_field(
        &self,
        addr: &FieldAddress,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BrokerError> {
        let (kid, key) = self.scope_key(&addr.scope)?;
        Ok(crypto::seal_field(key, &kid, addr, plaintext))
    }

    /// MAC of a record's content under its scope key.
    pub fn record_mac(
        &self,
        item: &gatehouse_ipc::broker::MacItem,
    ) -> Result<[u8; 32], BrokerError> {
        let (_, key) = self.scope_key(&item.scope)?;
        Ok(crypto::record_mac(key, item))
    }

    pub fn open_field(
        &mut self,
        addr: &FieldAddress,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
        let fail = |failure| BrokerError::OpenFailed {
            address: addr.to_string(),
            failure,
        };
        let (kid, key) = self.scope_key(&addr.scope)?;
        if crypto::sealed_key_id(sealed).map_err(fail)? != kid {
            return Err(fail(OpenFailure::UnknownKey));
        }
        let plain = crypto::open_field(key, addr, sealed).map_err(fail)?;
        // Exact-value redaction knows credentials, not every sealed text: a
        // runbook body or an audited command is private, not a secret to
        // scrub from every prompt (that would mangle ordinary commands).
        if is_credential_field(addr) {
            self.cache.remember(
                &format!(
                    "field:{}/{}/{}",
                    addr.record_kind, addr.record_id, addr.field
                ),
                &plain,
            );
            self.cache_generation += 1;
        }
        Ok(plain)
    }

    fn keychain_address(name: &str) -> FieldAddress {
        FieldAddress {
            scope: KeyScope::Private,
            record_kind: "keychain".into(),
            record_id: name.into(),
            field: "payload".into(),
            binding: Vec::new(),
        }
    }

    fn keychain_key(&self) -> Result<&[u8; 32], BrokerError> {
        let u = self.unlocked()?;
        Ok(self.key(&u.keychain))
    }

    fn keychain_error(&self, e: crate::keychain::KeychainError) -> BrokerError {
        BrokerError::Keychain {
            backend: self.keychain.backend().name().into(),
            reason: e.0,
        }
    }

    /// Stores a payload in the OS keychain, sealed under the keychain key.
    pub fn keychain_set(
        &mut self,
        name: &str,
        kind: SecretKind,
        payload: &[u8],
    ) -> Result<(), BrokerError> {
        check_name("keychain name", name)?;
        if name == UNLOCK_ENTRY {
            return Err(BrokerError::Invalid {
                what: "keychain name".into(),
                reason: "\"unlock\" is reserved".into(),
            });
        }
        if payload.is_empty() {
            return Err(BrokerError::Invalid {
                what: "payload".into(),
                reason: "empty".into(),
            });
        }
        let sealed = crypto::seal_field(
            self.keychain_key()?,
            &[0; 8],
            &Self::keychain_address(name),
            payload,
        );
        self.keychain
            .set(&format!("item:{name}"), &sealed)
            .map_err(|e| self.keychain_error(e))?;
        self.cache.remember(&format!("keychain:{name}"), payload);
        self.cache_generation += 1;
        let now = now_ms();
        let file = self.file.as_mut().ok_or(BrokerError::NotInitialized)?;
        match file.keychain.iter_mut().find(|e| e.name == name) {
            Some(e) => {
                e.kind = kind;
                e.rotated_ms = now;
            }
            None => file.keychain.push(KeychainEntry {
                name: name.into(),
                kind,
                created_ms: now,
                rotated_ms: now,
            }),
        }
        self.save()
    }

    pub fn keychain_list(&self) -> Result<Vec<KeychainEntry>, BrokerError> {
        self.unlocked()?;
        Ok(self
            .file
            .as_ref()
            .map(|f| f.keychain.clone())
            .unwrap_or_default())
    }

    pub fn keychain_remove(&mut self, name: &str) -> Result<(), BrokerError> {
        self.unlocked()?;
        let file = self.file.as_mut().ok_or(BrokerError::NotInitialized)?;
        let before = file.keychain.len();
        file.keychain.retain(|e| e.name != name);
        if file.keychain.len() == before {
            return Err(BrokerError::KeychainNotFound(name.into()));
        }
        self.keychain
            .delete(&format!("item:{name}"))
            .map_err(|e| self.keychain_error(e))?;
        self.save()
    }

    /// Opens one keychain payload (for use inside the broker only).
    pub fn keychain_payload(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, BrokerError> {
        let key = self.keychain_key()?;
        let sealed = self
            .keychain
            .get(&format!("item:{name}"))
            .map_err(|e| self.keychain_error(e))?
            .ok_or_else(|| BrokerError::KeychainNotFound(name.into()))?;
        crypto::open_field(key, &Self::keychain_address(name), &sealed).map_err(|failure| {
            BrokerError::OpenFailed {
                address: format!("keychain:{name}"),
                failure,
            }
        })
    }

    /// After sign-in: remember every keychain payload for exact-value redaction.
    fn load_keychain_cache(&mut self) {
        let names: Vec<String> = self
            .file
            .as_ref()
            .map(|f| f.keychain.iter().map(|e| e.name.clone()).collect())
            .unwrap_or_default();
        for name in names {
            match self.keychain_payload(&name) {
                Ok(p) => self.cache.remember(&format!("keychain:{name}"), &p),
                Err(e) => tracing::warn!("keychain entry {name}: {e}"),
            }
        }
        self.cache_generation += 1;
    }

    /// A key derived from the user's own key for `label` (e.g. one
    /// recording's key): exists only while this user is signed in.
    pub fn derive_private_key(&self, label: &str) -> Result<Zeroizing<[u8; 32]>, BrokerError> {
        let u = self.unlocked()?;
        Ok(Zeroizing::new(crypto::hmac_sha256(
            self.key(&u.user),
            label.as_bytes(),
        )))
    }

    /// Signs `msg` with the approval key.
    pub fn sign_approval(&self, msg: &[u8]) -> Result<Vec<u8>, BrokerError> {
        use ed25519_dalek::Signer;
        let u = self.unlocked()?;
        let sk = ed25519_dalek::SigningKey::from_bytes(self.key(&u.approval));
        Ok(sk.sign(msg).to_bytes().to_vec())
    }

    /// Verifies a signature by the approval key (works only while signed in).
    pub fn verify_approval(&self, msg: &[u8], sig: &[u8]) -> Result<bool, BrokerError> {
        let file = self.file.as_ref().ok_or(BrokerError::NotInitialized)?;
        self.unlocked()?;
        let mut pk = [0u8; 32];
        for (i, b) in pk.iter_mut().enumerate() {
            *b = u8::from_str_radix(
                file.approval_public.get(2 * i..2 * i + 2).unwrap_or("zz"),
                16,
            )
            .map_err(storage("approval public key"))?;
        }
        let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
            return Ok(false);
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return Ok(false);
        };
        Ok(vk.verify_strict(msg, &sig).is_ok())
    }
}

/// Sealed fields that hold credentials (the records field table's host
/// protocol secrets, connector and MCP server auth): their opened values
/// join the exact-value redaction set.
fn is_credential_field(addr: &FieldAddress) -> bool {
    matches!(
        (addr.record_kind.as_str(), addr.field.as_str()),
        (
            "host",
            "ssh.password"
                | "ssh.private_key_path"
                | "ssh.key_passphrase"
                | "http.token"
                | "onvif.password"
        ) | ("connector" | "mcp-server", "auth")
    )
}

fn org_info(o: &OrgRecord) -> OrgInfo {
    OrgInfo {
        id: o.id.clone(),
        name: o.name.clone(),
        key_id: o.key_id.clone(),
        created_ms: o.created_ms,
    }
}

/// Names: 1–64 characters of letters, digits, `-`, `_`, `.`.
pub fn check_name(what: &str, name: &str) -> Result<(), BrokerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BrokerError::Invalid {
            what: what.into(),
            reason: format!("{name:?}: use 1-64 letters, digits, '-', '_' or '.'"),
        })
    }
}
