//! The account's sync identity, kept in the vault like its other keys: an
//! Ed25519 identity key (signs what the account sends to a sync server), an
//! X25519 agreement key (receives org-key grants and share keys), and the
//! **Secret Key**, the second secret a new device needs with the passphrase
//! (see `gatehouse_crypto::two_secret`). Private halves and the Secret Key
//! are wrapped under the account key; only the public halves are in clear.
//!
//! Made at `account init`, or at the first sign-in of an account created
//! before they existed. Also the account's name on sync servers (fixed by
//! the first `SyncCard`), and the one place the identity key signs: with
//! [`Vault::sign_as_account`], only for bodies `crate::sync_signing` has
//! checked.
//! Must never: write an unwrapped private half or the Secret Key to disk,
//! show the Secret Key without a proof of presence, or sign bytes that are
//! not a membership body under its domain.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gatehouse_crypto::two_secret::{self, SecretKey};
use gatehouse_ipc::broker::BrokerError;
use gatehouse_ipc::broker::{BundleKdf, KeyBundleOut};
use gatehouse_membership::{AccountCard, SignedCard, sign};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Vault, b64d};
use crate::crypto;

const IDENTITY: &str = "identity";
const AGREEMENT: &str = "agreement";
const SECRET_KEY: &str = "secret-key";

/// What `account.json` holds of the sync identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AccountKeysFile {
    identity_seed: String,
    agreement_secret: String,
    secret_key: String,
    pub identity_public: String,
    pub agreement_public: String,
    /// The account's name on sync servers, fixed by the first `SyncCard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_account: Option<String>,
}

impl Vault {
    /// Makes the sync identity and the Secret Key if the account has none
    /// yet (needs the account signed in); saves the account file.
    pub(super) fn ensure_account_keys(&mut self) -> Result<(), BrokerError> {
        let has = self.file.as_ref().is_some_and(|f| f.account_keys.is_some());
        if has {
            return Ok(());
        }
        // Made and wrapped in secret memory; only the wrapped and public
        // halves leave it.
        self.unlocked()?;
        let identity = self.alloc()?;
        let agreement = self.alloc()?;
        for slot in [&identity, &agreement] {
            crypto::fill_random(self.arena.get_mut(slot).expect("fresh slot"));
        }
        let secret = SecretKey::generate();
        let account = &self.unlocked()?.account;
        let keys = AccountKeysFile {
            identity_seed: B64.encode(crypto::wrap_key(
                self.key(account),
                IDENTITY,
                self.key(&identity),
            )),
            agreement_secret: B64.encode(crypto::wrap_key(
                self.key(account),
                AGREEMENT,
                self.key(&agreement),
            )),
            secret_key: B64.encode(crypto::wrap_key(
                self.key(account),
                SECRET_KEY,
                secret.as_bytes(),
            )),
            identity_public: crypto::hex(&sign::identity_public(self.key(&identity))),
            agreement_public: crypto::hex(&sign::agreement_public(self.key(&agreement))),
            sync_account: None,
        };
        let _ = self.arena.free(identity);
        let _ = self.arena.free(agreement);
        if let Some(f) = self.file.as_mut() {
            f.account_keys = Some(keys);
        }
        self.save()
    }

    /// The Secret Key as printed, after the account passphrase proves a
    /// person is there (the same throttle as sign-in).
    pub fn secret_key(&mut self, presence: &[u8]) -> Result<Zeroizing<String>, BrokerError> {
        self.verify_presence(presence)?;
        Ok(self.stored_secret_key()?.display())
    }

    /// The Secret Key, unwrapped (callers have checked presence).
    fn stored_secret_key(&mut self) -> Result<SecretKey, BrokerError> {
        self.ensure_account_keys()?;
        let wrapped = self
            .file
            .as_ref()
            .and_then(|f| f.account_keys.as_ref())
            .map(|k| k.secret_key.clone())
            .ok_or(BrokerError::NotInitialized)?;
        let mut bytes = Zeroizing::new([0u8; 16]);
        let wrapped = b64d(&wrapped)?;
        let account = &self.unlocked()?.account;
        if !crypto::unwrap_key_into(self.key(account), SECRET_KEY, &wrapped, bytes.as_mut()) {
            return Err(BrokerError::Storage(
                "the Secret Key does not unwrap: account file altered".into(),
            ));
        }
        Ok(SecretKey::from_bytes(*bytes))
    }

    /// The account's key bundle for its sync server, after the passphrase
    /// proves a person is there: the account file (every key wrapped under
    /// the account key, public halves, names) sealed under the key both
    /// secrets derive (`gatehouse_crypto::two_secret`), with a fresh salt,
    /// and the verifier the server checks before it releases it.
    pub fn key_bundle(&mut self, presence: &[u8]) -> Result<KeyBundleOut, BrokerError> {
        self.verify_presence(presence)?;
        let account = self.sync_account().ok_or_else(|| BrokerError::Invalid {
            what: "key bundle".into(),
            reason: "the account has no name on sync servers yet (gatehouse sync connect)".into(),
        })?;
        let secret = self.stored_secret_key()?;
        let mut salt = [0u8; 16];
        crypto::fill_random(&mut salt);
        let kdf = crypto::KdfParams::DEFAULT;
        let keys = two_secret::derive(kdf, &salt, &account, presence, &secret)
            .map_err(BrokerError::Internal)?;
        let file = self.file.as_ref().ok_or(BrokerError::NotInitialized)?;
        let json = Zeroizing::new(
            serde_json::to_vec(file).map_err(|e| BrokerError::Internal(e.to_string()))?,
        );
        Ok(KeyBundleOut {
            kdf: BundleKdf {
                m_kib: kdf.m_cost_kib,
                t: kdf.t_cost,
                p: kdf.p_cost,
                salt: salt.to_vec(),
            },
            verifier: keys.verifier.to_vec(),
            sealed: two_secret::seal_bundle(&keys.bundle_key, &account, &json),
        })
    }

    /// The public halves (identity, agreement) in hex, once made.
    pub fn account_public_keys(&self) -> Option<(String, String)> {
        let k = self.file.as_ref()?.account_keys.as_ref()?;
        Some((k.identity_public.clone(), k.agreement_public.clone()))
    }
}

impl Vault {
    /// The account's name on sync servers, once a `SyncCard` fixed it.
    pub fn sync_account(&self) -> Option<String> {
        self.file
            .as_ref()?
            .account_keys
            .as_ref()?
            .sync_account
            .clone()
    }

    /// The account's self-signed card under `account` (postcard
    /// `SignedCard`). The first call fixes the name; another name later is
    /// refused (one account, one name on every server).
    pub fn sync_card(&mut self, account: &str) -> Result<Vec<u8>, BrokerError> {
        if !gatehouse_membership::card::valid_account_name(account) {
            return Err(BrokerError::Invalid {
                what: "account name".into(),
                reason: format!("{account:?} is not 1–64 of A-Z a-z 0-9 . _ -"),
            });
        }
        self.unlocked()?;
        self.ensure_account_keys()?;
        match self.sync_account() {
            Some(name) if name != account => {
                return Err(BrokerError::Invalid {
                    what: "account name".into(),
                    reason: format!("this account is {name:?} on sync servers, not {account:?}"),
                });
            }
            Some(_) => {}
            None => {
                if let Some(k) = self.file.as_mut().and_then(|f| f.account_keys.as_mut()) {
                    k.sync_account = Some(account.to_string());
                }
                self.save()?;
            }
        }
        let (identity, agreement) = self
            .account_public_keys()
            .ok_or(BrokerError::NotInitialized)?;
        let parse = |hex: &str| {
            sign::parse_hex::<32>(hex).ok_or_else(|| {
                BrokerError::Storage("account file: a public key is not 64 hex digits".into())
            })
        };
        let card = AccountCard {
            account: account.to_string(),
            identity: parse(&identity)?,
            agreement: parse(&agreement)?,
        };
        let signed = self.sign_as_account(|seed| SignedCard::sign(seed, card))?;
        Ok(sign::encode(&signed))
    }

    /// Runs `sign` with the account's identity seed, unwrapped into secret
    /// memory for the call and freed after. Callers pass a membership
    /// signing function (a domain-separated body), never raw bytes.
    pub(crate) fn sign_as_account<R>(
        &mut self,
        sign: impl FnOnce(&[u8; 32]) -> R,
    ) -> Result<R, BrokerError> {
        self.unlocked()?;
        self.ensure_account_keys()?;
        let wrapped = self
            .file
            .as_ref()
            .and_then(|f| f.account_keys.as_ref())
            .map(|k| k.identity_seed.clone())
            .ok_or(BrokerError::NotInitialized)?;
        let wrapped = b64d(&wrapped)?;
        let slot = self.alloc()?;
        let account = &self.unlocked()?.account;
        let ak = *self.key(account);
        let mut ak = Zeroizing::new(ak);
        let ok = crypto::unwrap_key_into(
            &ak,
            IDENTITY,
            &wrapped,
            self.arena.get_mut(&slot).expect("fresh slot"),
        );
        zeroize::Zeroize::zeroize(&mut *ak);
        if !ok {
            let _ = self.arena.free(slot);
            return Err(BrokerError::Storage(
                "the identity key does not unwrap: account file altered".into(),
            ));
        }
        let out = sign(self.key(&slot));
        let _ = self.arena.free(slot);
        Ok(out)
    }
}

/// The two-secret derivation for `account` from a person's passphrase and
/// typed Secret Key (a typo in the Secret Key is reported as such).
fn derive_typed(
    account: &str,
    kdf: &BundleKdf,
    passphrase: &[u8],
    secret_key: &[u8],
) -> Result<two_secret::TwoSecretKeys, BrokerError> {
    let typed = std::str::from_utf8(secret_key).map_err(|_| BrokerError::Invalid {
        what: "Secret Key".into(),
        reason: "not text".into(),
    })?;
    let secret = SecretKey::parse(typed).map_err(|e| BrokerError::Invalid {
        what: "Secret Key".into(),
        reason: e.to_string(),
    })?;
    // Refuse parameters cheaper than the default or absurdly large: a
    // hostile server must not weaken the derivation or exhaust memory.
    let d = crypto::KdfParams::DEFAULT;
    if kdf.m_kib < d.m_cost_kib
        || kdf.t < d.t_cost
        || kdf.m_kib > 1024 * 1024
        || kdf.t > 16
        || kdf.p == 0
        || kdf.p > 8
        || kdf.salt.len() < 16
        || kdf.salt.len() > 64
    {
        return Err(BrokerError::Invalid {
            what: "key bundle parameters".into(),
            reason: format!(
                "m={} KiB t={} p={} salt {} bytes: weaker than the default or out of range",
                kdf.m_kib,
                kdf.t,
                kdf.p,
                kdf.salt.len()
            ),
        });
    }
    two_secret::derive(
        crypto::KdfParams {
            m_cost_kib: kdf.m_kib,
            t_cost: kdf.t,
            p_cost: kdf.p,
        },
        &kdf.salt,
        account,
        passphrase,
        &secret,
    )
    .map_err(BrokerError::Internal)
}

/// The verifier a sync server checks before it releases `account`'s key
/// bundle (derived from both secrets; opens nothing).
pub fn bundle_verifier(
    account: &str,
    kdf: &BundleKdf,
    passphrase: &[u8],
    secret_key: &[u8],
) -> Result<Vec<u8>, BrokerError> {
    Ok(derive_typed(account, kdf, passphrase, secret_key)?
        .verifier
        .to_vec())
}

impl Vault {
    /// Makes this empty profile the account whose key bundle `sealed` is
    /// (fetched from its sync server), then signs in with the passphrase.
    pub fn restore_from_bundle(
        &mut self,
        account: &str,
        kdf: &BundleKdf,
        passphrase: &[u8],
        secret_key: &[u8],
        sealed: &[u8],
    ) -> Result<(), BrokerError> {
        if self.file.is_some() {
            return Err(BrokerError::AlreadyInitialized);
        }
        let keys = derive_typed(account, kdf, passphrase, secret_key)?;
        let json = two_secret::open_bundle(&keys.bundle_key, account, sealed).ok_or_else(|| {
            BrokerError::Invalid {
                what: "key bundle".into(),
                reason: format!(
                    "it does not open with this passphrase and Secret Key for account {account:?}"
                ),
            }
        })?;
        let file: super::AccountFile =
            serde_json::from_slice(&json).map_err(|e| BrokerError::Invalid {
                what: "key bundle".into(),
                reason: format!("not an account file: {e}"),
            })?;
        let named = file
            .account_keys
            .as_ref()
            .and_then(|k| k.sync_account.as_deref());
        if named != Some(account) {
            return Err(BrokerError::Invalid {
                what: "key bundle".into(),
                reason: format!("it is the bundle of {named:?}, not {account:?}"),
            });
        }
        self.file = Some(file);
        self.save()?;
        self.sign_in(passphrase, false)
    }
}
