//! The OS keychain transport: Secret Service (gnome-keyring over D-Bus) or the
//! kernel keyutils store.
//!
//! Owns choosing a backend and moving opaque bytes in and out of it. What it
//! stores is already sealed by the vault (payloads) or is the remembered
//! unlock material. Must never: log or format a stored value.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};

/// Which OS keychain is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    Keyutils,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
        }
    }

    /// What a user should know about the backend's durability.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Backend::SecretService => None,
            Backend::Keyutils => Some(
                "kernel keyutils store: entries do not survive a reboot (or expiry of the persistent keyring); run a Secret Service (gnome-keyring) for durable storage",
            ),
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "secret-service" => Ok(Backend::SecretService),
            "keyutils" => Ok(Backend::Keyutils),
            other => Err(format!("unknown keychain backend {other:?} (secret-service, keyutils)")),
        }
    }
}

/// A keychain namespace (one per profile) in one backend.
pub struct Keychain {
    backend: Backend,
    store: Arc<CredentialStore>,
    service: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeychainError(pub String);

impl Keychain {
    /// Opens `preferred`, or with `None` Secret Service when a session bus
    /// answers for it, else keyutils.
    pub fn open(preferred: Option<Backend>, profile: &str) -> Result<Keychain, KeychainError> {
        let service = format!("gatehouse:{profile}");
        let try_ss = || -> Result<Keychain, KeychainError> {
            if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                return Err(KeychainError("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)".into()));
            }
            let store = zbus_secret_service_keyring_store::Store::new()
                .map_err(|e| KeychainError(format!("Secret Service: {e}")))?;
            let kc = Keychain { backend: Backend::SecretService, store, service: service.clone() };
            kc.probe()?;
            Ok(kc)
        };
        let keyutils = || -> Result<Keychain, KeychainError> {
            let store = linux_keyutils_keyring_store::Store::new()
                .map_err(|e| KeychainError(format!("keyutils: {e}")))?;
            Ok(Keychain { backend: Backend::Keyutils, store, service: service.clone() })
        };
        match preferred {
            Some(Backend::SecretService) => try_ss(),
            Some(Backend::Keyutils) => keyutils(),
            None => try_ss().or_else(|ss_err| {
                tracing::info!("Secret Service unavailable ({ss_err}); using keyutils");
                keyutils()
            }),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn entry(&self, name: &str) -> Result<Entry, KeychainError> {
        Entry::new_in_store(&self.store, &self.service, name).map_err(|e| KeychainError(e.to_string()))
    }

    /// A read of an entry that does not exist: proves the backend answers.
    fn probe(&self) -> Result<(), KeychainError> {
        match self.entry("probe")?.get_secret() {
            Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(KeychainError(e.to_string())),
        }
    }

    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), KeychainError> {
        self.entry(name)?.set_secret(value).map_err(|e| KeychainError(e.to_string()))
    }

    /// `Ok(None)` when the entry does not exist.
    pub fn get(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, KeychainError> {
        match self.entry(name)?.get_secret() {
            Ok(v) => Ok(Some(zeroize::Zeroizing::new(v))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(KeychainError(e.to_string())),
        }
    }

    /// Deletes; `Ok(false)` when there was nothing to delete.
    pub fn delete(&self, name: &str) -> Result<bool, KeychainError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(KeychainError(e.to_string())),
        }
    }
}
