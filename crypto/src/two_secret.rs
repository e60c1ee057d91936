//! Two-secret key derivation, as 1Password does it: a second device signs in
//! with the account passphrase **and** the Secret Key shown once when the
//! account was created. From both (and the account's name and public
//! Argon2id salt) come two independent 32-byte values:
//!
//! - the **bundle key**, which seals the account's key bundle (its private
//!   keys) before it is stored on the sync server, and
//! - the **verifier**, which the server checks (it keeps only a slow hash of
//!   it) before it releases the sealed bundle.
//!
//! `unlock = Argon2id(passphrase, salt ‖ account) XOR HMAC-SHA256(secret key, "gatehouse/secret-key/v1/" ‖ account)`,
//! `bundle key = HMAC-SHA256(unlock, "bundle")`, `verifier = HMAC-SHA256(unlock, "verifier")`.
//! The server sees the salt, the parameters, the verifier and the sealed
//! bundle: without the 128-bit Secret Key it cannot test passphrases
//! offline, and the verifier does not open the bundle.
//!
//! Must never: derive anything from one secret alone, return a bundle that
//! failed authentication, or accept a Secret Key whose check characters do
//! not match (a typo is reported as a typo, not as a wrong key).

use zeroize::Zeroizing;

use crate::{KdfParams, derive_account_key, hmac_sha256, random_bytes, unwrap_key_into, wrap_key};

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PREFIX: &str = "GH1";
/// 16 bytes → 26 base32 characters, then 2 check characters.
const BODY_CHARS: usize = 26;
const CHECK_CHARS: usize = 2;
const TYPED_CHARS: usize = BODY_CHARS + CHECK_CHARS;
/// How the 28 characters are grouped when printed.
const GROUPS: [usize; 5] = [4, 6, 6, 6, 6];

/// The Secret Key: 128 random bits, printed as `GH1-XXXX-XXXXXX-XXXXXX-XXXXXX-XXXXXX`
/// (26 characters of Crockford base32 and 2 check characters).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<[u8; 16]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Why a typed Secret Key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretKeyError {
    #[error("a Secret Key starts with {PREFIX}-")]
    Prefix,
    #[error(
        "a Secret Key has {TYPED_CHARS} characters after {PREFIX}- (not counting dashes); this one has {0}"
    )]
    Length(usize),
    #[error("{0:?} is not a character a Secret Key uses")]
    Character(char),
    #[error("the Secret Key has a typo: its check characters do not match")]
    Checksum,
}

fn check_chars(bytes: &[u8; 16]) -> [u8; CHECK_CHARS] {
    let h = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        [b"gatehouse/secret-key-check/v1/".as_slice(), bytes].concat(),
    ));
    [
        ALPHABET[(h[0] & 31) as usize],
        ALPHABET[(h[1] & 31) as usize],
    ]
}

impl SecretKey {
    pub fn generate() -> SecretKey {
        SecretKey(Zeroizing::new(random_bytes()))
    }

    /// A Secret Key kept elsewhere (the broker keeps it wrapped).
    pub fn from_bytes(bytes: [u8; 16]) -> SecretKey {
        SecretKey(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The Secret Key as printed, e.g. `GH1-7K3Q-…`.
    pub fn display(&self) -> Zeroizing<String> {
        let mut chars = Vec::with_capacity(TYPED_CHARS);
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in self.0.iter() {
            acc = (acc << 8) | b as u32;
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                chars.push(ALPHABET[((acc >> bits) & 31) as usize]);
            }
        }
        chars.push(ALPHABET[((acc << (5 - bits)) & 31) as usize]);
        chars.extend(check_chars(&self.0));
        let mut out = Zeroizing::new(String::from(PREFIX));
        let mut at = 0;
        for n in GROUPS {
            out.push('-');
            out.extend(chars[at..at + n].iter().map(|&c| c as char));
            at += n;
        }
        chars.iter_mut().for_each(|c| *c = 0);
        out
    }

    /// Parses a typed Secret Key: case, dashes and spaces do not matter, and
    /// `O`, `I`, `L` are read as `0`, `1`, `1` as Crockford base32 says.
    pub fn parse(typed: &str) -> Result<SecretKey, SecretKeyError> {
        let t = typed.trim();
        let rest = t
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .map(|_| &t[PREFIX.len()..])
            .ok_or(SecretKeyError::Prefix)?;
        let mut vals = Vec::with_capacity(TYPED_CHARS);
        for c in rest.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let v = ALPHABET
                .iter()
                .position(|&a| a as char == c)
                .ok_or(SecretKeyError::Character(c))?;
            vals.push(v as u8);
        }
        if vals.len() != TYPED_CHARS {
            return Err(SecretKeyError::Length(vals.len()));
        }
        let mut bytes = Zeroizing::new([0u8; 16]);
        let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
        for &v in &vals[..BODY_CHARS] {
            acc = (acc << 5) | v as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                if n < 16 {
                    bytes[n] = (acc >> bits) as u8;
                }
                n += 1;
            }
        }
        let check = check_chars(&bytes);
        let typed_check = [
            ALPHABET[vals[BODY_CHARS] as usize],
            ALPHABET[vals[BODY_CHARS + 1] as usize],
        ];
        // The 2 padding bits of the last body character must be zero too.
        if check != typed_check || acc & ((1 << bits) - 1) != 0 {
            return Err(SecretKeyError::Checksum);
        }
        Ok(SecretKey(bytes))
    }
}

/// What both secrets derive: the bundle's sealing key and the server's verifier.
pub struct TwoSecretKeys {
    pub bundle_key: Zeroizing<[u8; 32]>,
    pub verifier: Zeroizing<[u8; 32]>,
}

/// Derives the bundle key and the verifier from both secrets (see the module doc).
pub fn derive(
    kdf: KdfParams,
    salt: &[u8],
    account: &str,
    passphrase: &[u8],
    secret_key: &SecretKey,
) -> Result<TwoSecretKeys, String> {
    let mut unlock = Zeroizing::new([0u8; 32]);
    let salted = [salt, b"/", account.as_bytes()].concat();
    derive_account_key(kdf, passphrase, &salted, unlock.as_mut())?;
    let sk = Zeroizing::new(hmac_sha256(
        secret_key.as_bytes(),
        [b"gatehouse/secret-key/v1/".as_slice(), account.as_bytes()]
            .concat()
            .as_slice(),
    ));
    for (u, s) in unlock.iter_mut().zip(sk.iter()) {
        *u ^= s;
    }
    Ok(TwoSecretKeys {
        bundle_key: Zeroizing::new(hmac_sha256(unlock.as_ref(), b"bundle")),
        verifier: Zeroizing::new(hmac_sha256(unlock.as_ref(), b"verifier")),
    })
}

fn purpose(account: &str) -> String {
    format!("key-bundle/{account}")
}

/// Seals the account's key bundle under the bundle key, bound to the account.
pub fn seal_bundle(bundle_key: &[u8; 32], account: &str, bundle: &[u8]) -> Vec<u8> {
    wrap_key(bundle_key, &purpose(account), bundle)
}

/// Opens a sealed bundle; `None` if the key is wrong, the bytes were altered
/// or the bundle is another account's.
pub fn open_bundle(
    bundle_key: &[u8; 32],
    account: &str,
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let len = sealed.len().checked_sub(24 + 16)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    unwrap_key_into(bundle_key, &purpose(account), sealed, &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn a_secret_key_prints_and_parses_back_and_typos_are_caught() {
        let mut caught = 0;
        for _ in 0..200 {
            let k = SecretKey::generate();
            let shown = k.display();
            assert!(shown.starts_with("GH1-"), "{}", shown.as_str());
            assert_eq!(shown.len(), 3 + 5 + 28, "{}", shown.as_str());
            assert_eq!(SecretKey::parse(&shown).unwrap(), k);
            let sloppy = shown.to_lowercase().replace('-', " ");
            assert_eq!(SecretKey::parse(&sloppy).unwrap(), k);
            // One character changed anywhere is a typo, never another key.
            let mut typo: Vec<char> = shown.chars().collect();
            let at = 4 + (k.as_bytes()[0] as usize % 30);
            let at = if typo[at] == '-' { at + 1 } else { at };
            typo[at] = if typo[at] == 'Z' { 'Y' } else { 'Z' };
            let typo: String = typo.into_iter().collect();
            match SecretKey::parse(&typo) {
                Err(SecretKeyError::Checksum) => caught += 1,
                // 10 check bits: about one typo in 1,024 parses as another key.
                Ok(other) => assert_ne!(other, k, "{typo}"),
                Err(e) => panic!("{typo}: {e}"),
            }
        }
        assert!(caught >= 195, "only {caught} of 200 typos were caught");
        assert_eq!(SecretKey::parse("XX1-ABC"), Err(SecretKeyError::Prefix));
        assert_eq!(SecretKey::parse("GH1-ABC"), Err(SecretKeyError::Length(3)));
        assert_eq!(
            SecretKey::parse("GH1-ABCD-EFGHJK-MNPQRS-TVWXYZ-0123U5"),
            Err(SecretKeyError::Character('U'))
        );
    }

    #[test]
    fn both_secrets_are_needed_and_the_verifier_does_not_open_the_bundle() {
        let (salt, sk) = (random_bytes::<16>(), SecretKey::generate());
        let k = derive(FAST, &salt, "alice", b"correct horse", &sk).unwrap();
        let sealed = seal_bundle(&k.bundle_key, "alice", b"the account's private keys");
        let again = derive(FAST, &salt, "alice", b"correct horse", &sk).unwrap();
        assert_eq!(
            open_bundle(&again.bundle_key, "alice", &sealed)
                .unwrap()
                .as_slice(),
            b"the account's private keys"
        );
        assert_eq!(*again.verifier, *k.verifier);
        assert_ne!(*k.verifier, *k.bundle_key);
        // Wrong passphrase, wrong Secret Key, other account, other salt.
        let wrong = [
            derive(FAST, &salt, "alice", b"correct horsf", &sk).unwrap(),
            derive(
                FAST,
                &salt,
                "alice",
                b"correct horse",
                &SecretKey::generate(),
            )
            .unwrap(),
            derive(FAST, &salt, "bob", b"correct horse", &sk).unwrap(),
            derive(FAST, &random_bytes::<16>(), "alice", b"correct horse", &sk).unwrap(),
        ];
        for w in &wrong {
            assert_ne!(*w.verifier, *k.verifier);
            assert!(open_bundle(&w.bundle_key, "alice", &sealed).is_none());
        }
        // The verifier (what the server sees) is not the key.
        assert!(open_bundle(&k.verifier, "alice", &sealed).is_none());
        // Moved to another account, or one bit flipped: refused.
        assert!(open_bundle(&k.bundle_key, "bob", &sealed).is_none());
        for i in [0, 30, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(open_bundle(&k.bundle_key, "alice", &t).is_none());
        }
        assert!(open_bundle(&k.bundle_key, "alice", &sealed[..10]).is_none());
    }
}
