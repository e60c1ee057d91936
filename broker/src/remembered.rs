//! Where "remember this device" keeps its unlock material.
//!
//! Owns: storing, reading and deleting the remembered unlock value. With the
//! privilege boundary on it is a file in the broker's group-only state
//! (`<prefix>/var/lib/gatehouse/<uid>/<profile>/unlock`, the top directory
//! `root:gatehouse 0070` made by the installer, so the user's uid cannot even
//! traverse it); in a development build it is the OS keychain entry
//! `unlock` (readable by any same-uid process: `status` says so).
//! Must never: fall back from the group-only store to the user's keychain.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keychain::Keychain;

/// The keychain entry of a development build's remembered unlock value.
pub const UNLOCK_ENTRY: &str = "unlock";

/// The store of the remembered unlock value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RememberStore {
    /// The OS keychain (development build: the boundary is off).
    Keychain,
    /// A file in the group-only state directory.
    GroupFile(PathBuf),
}

impl RememberStore {
    /// The group-only store under `dir` (the broker's per-user, per-profile
    /// directory inside the installer's group-only root).
    pub fn in_group_dir(dir: &Path) -> RememberStore {
        RememberStore::GroupFile(dir.join("unlock"))
    }

    /// Where the material lives, for `status`.
    pub fn describe(&self, keychain: &Keychain) -> String {
        match self {
            RememberStore::Keychain => format!(
                "the user's keychain ({}; readable by the user's other processes)",
                keychain.backend().name()
            ),
            RememberStore::GroupFile(p) => format!("{} (gatehouse group only)", p.display()),
        }
    }

    pub fn get(&self, keychain: &Keychain) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        match self {
            RememberStore::Keychain => keychain.get(UNLOCK_ENTRY).map_err(|e| e.0),
            RememberStore::GroupFile(p) => match std::fs::read(p) {
                Ok(v) => Ok(Some(Zeroizing::new(v))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", p.display())),
            },
        }
    }

    pub fn set(&self, keychain: &Keychain, value: &[u8]) -> Result<(), String> {
        match self {
            RememberStore::Keychain => keychain.set(UNLOCK_ENTRY, value).map_err(|e| e.0),
            RememberStore::GroupFile(p) => {
                crate::vault::write_atomic(p, value).map_err(|e| format!("{}: {e}", p.display()))
            }
        }
    }

    /// Deletes the material; whether there was any.
    pub fn delete(&self, keychain: &Keychain) -> bool {
        match self {
            RememberStore::Keychain => keychain.delete(UNLOCK_ENTRY).unwrap_or(false),
            RememberStore::GroupFile(p) => std::fs::remove_file(p).is_ok(),
        }
    }
}
