//! Where "remember this device" keeps its unlock material.
//!
//! Owns: storing, reading and deleting the remembered unlock value. With the
//! privilege boundary on it is a file in the broker's group-only state
//! (`<prefix>/var/lib/gatehouse/<uid>/<profile>/unlock`, the top directory
//! `root:gatehouse 0070` made by the installer, so the user's uid cannot even
//! traverse it); in a development build it is the OS keychain entry
//! `unlock` (readable by any same-uid process: `status` says so). Either
//! way, when a TPM is there the value is sealed to it ([`crate::tpm`]): a
//! copy of the stored bytes opens nothing on another machine.
//! Must never: fall back from the group-only store to the user's keychain.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keychain::Keychain;
use crate::tpm::{Tpm, TpmPath};

/// The keychain entry of a development build's remembered unlock value.
pub const UNLOCK_ENTRY: &str = "unlock";

/// Where the remembered unlock value is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The OS keychain (development build: the boundary is off).
    Keychain,
    /// A file in the group-only state directory.
    GroupFile(PathBuf),
}

/// The store of the remembered unlock value: its place, and the TPM it is
/// sealed to when there is one ([`crate::tpm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberStore {
    pub place: Place,
    pub tpm: Option<TpmPath>,
}

impl RememberStore {
    /// The keychain (a development build), no TPM.
    pub fn keychain() -> RememberStore {
        RememberStore {
            place: Place::Keychain,
            tpm: None,
        }
    }

    /// The group-only store under `dir` (the broker's per-user, per-profile
    /// directory inside the installer's group-only root).
    pub fn in_group_dir(dir: &Path) -> RememberStore {
        RememberStore {
            place: Place::GroupFile(dir.join("unlock")),
            tpm: None,
        }
    }

    /// The same place, the value sealed to `tpm` from now on.
    pub fn sealed_to(self, tpm: Option<TpmPath>) -> RememberStore {
        RememberStore { tpm, ..self }
    }

    /// Where the material lives, for `status`.
    pub fn describe(&self, keychain: &Keychain) -> String {
        let place = match &self.place {
            Place::Keychain => format!(
                "the user's keychain ({}; readable by the user's other processes)",
                keychain.backend().name()
            ),
            Place::GroupFile(p) => format!("{} (gatehouse group only)", p.display()),
        };
        match &self.tpm {
            Some(t) => format!("{place}, sealed to the {}", t.describe()),
            None => place,
        }
    }

    /// Where the stored material is and whether it really is sealed, for
    /// `status` (reads the store, not the TPM).
    pub fn describe_stored(&self, keychain: &Keychain) -> String {
        let sealed = matches!(
            self.get_raw(keychain),
            Ok(Some(v)) if v.starts_with(crate::tpm::SEALED_MAGIC)
        );
        let place = RememberStore {
            tpm: None,
            ..self.clone()
        }
        .describe(keychain);
        match (&self.tpm, sealed) {
            (Some(t), true) => format!("{place}, sealed to the {}", t.describe()),
            (None, true) => format!("{place}, sealed to a TPM this broker is not configured with"),
            (Some(_), false) => format!(
                "{place}, NOT sealed (remembered before the TPM was used: `signin --remember` again seals it)"
            ),
            (None, false) => place,
        }
    }

    /// The value as stored (sealed, when it was sealed to a TPM).
    fn get_raw(&self, keychain: &Keychain) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        match &self.place {
            Place::Keychain => keychain.get(UNLOCK_ENTRY).map_err(|e| e.0),
            Place::GroupFile(p) => match std::fs::read(p) {
                Ok(v) => Ok(Some(Zeroizing::new(v))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", p.display())),
            },
        }
    }

    /// Whether any material is stored (without asking the TPM).
    pub fn present(&self, keychain: &Keychain) -> bool {
        matches!(self.get_raw(keychain), Ok(Some(_)))
    }

    /// The remembered value: unsealed by the TPM when it was sealed to one.
    /// A sealed value without a TPM, or one this TPM cannot unseal (another
    /// machine's), is an error naming why.
    pub fn get(&self, keychain: &Keychain) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let Some(raw) = self.get_raw(keychain)? else {
            return Ok(None);
        };
        if !raw.starts_with(crate::tpm::SEALED_MAGIC) {
            return Ok(Some(raw));
        }
        let Some(path) = &self.tpm else {
            return Err(
                "the remembered material is sealed to a TPM, and no TPM is configured".into(),
            );
        };
        Tpm::open(path)
            .and_then(|mut t| t.unseal(&raw))
            .map(Some)
            .map_err(|e| format!("unsealing the remembered material: {e}"))
    }

    /// Stores `value`, sealed to the TPM when there is one.
    pub fn set(&self, keychain: &Keychain, value: &[u8]) -> Result<(), String> {
        let sealed;
        let value = match &self.tpm {
            Some(path) => {
                sealed = Tpm::open(path)
                    .and_then(|mut t| t.seal(value))
                    .map_err(|e| format!("sealing the remembered material: {e}"))?;
                &sealed[..]
            }
            None => value,
        };
        match &self.place {
            Place::Keychain => keychain.set(UNLOCK_ENTRY, value).map_err(|e| e.0),
            Place::GroupFile(p) => {
                crate::vault::write_atomic(p, value).map_err(|e| format!("{}: {e}", p.display()))
            }
        }
    }

    /// Deletes the material; whether there was any.
    pub fn delete(&self, keychain: &Keychain) -> bool {
        match &self.place {
            Place::Keychain => keychain.delete(UNLOCK_ENTRY).unwrap_or(false),
            Place::GroupFile(p) => std::fs::remove_file(p).is_ok(),
        }
    }
}
