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
                "kernel keyutils store: entries live in your user keyring and do not survive a reboot; run a Secret Service (gnome-keyring) for durable storage",
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
            other => Err(format!(
                "unknown keychain backend {other:?} (secret-service, keyutils)"
            )),
        }
    }
}

enum Store {
    /// keyring-core's Secret Service store (zbus).
    SecretService(Arc<CredentialStore>),
    /// The kernel's per-user keyring (`@u`): shared by every process of this
    /// uid, gone at reboot. (The persistent keyring is not used: linking into
    /// it is refused on some kernels and containers.)
    /// The ring, and which of the user's rings it is (see [`possess`]).
    Keyutils(linux_keyutils::KeyRing, linux_keyutils::KeyRingIdentifier),
}

/// A keychain namespace (one per profile) in one backend.
pub struct Keychain {
    backend: Backend,
    store: Store,
    service: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeychainError(pub String);

/// What to do when the kernel refuses this process its user keyrings.
pub const KEYUTILS_ACCESS_HELP: &str = "the kernel refused this process access to your keyrings (its session keyring is not yours: a login without pam_keyinit, or su/runuser/sudo kept another user's). Start Gatehouse in a session keyring of your own: `keyctl session - gatehouse up` (package keyutils), or add `session optional pam_keyinit.so force revoke` to the PAM service you log in with, or run a Secret Service (gnome-keyring) and use --keychain secret-service";

/// The user keyring (`@u`) if this process can keep entries in it, else the
/// user's own session keyring (`@us`, the one the kernel gives a uid without
/// a session keyring; it links `@u`); neither: an error saying what to do.
///
/// A keyring named by its serial is only *possessed* (and the entries in it,
/// whose permissions are possessor-only, only searchable) when it is
/// reachable from the calling thread's keyrings. Under `su`/`runuser` from a
/// root session the session keyring is root's and `@u` is not in it: every
/// use first links the ring into the calling thread's keyring ([`possess`]).
/// The ring is proven by a probe entry written, found and invalidated.
fn usable_keyring(
    service: &str,
) -> Result<(linux_keyutils::KeyRing, linux_keyutils::KeyRingIdentifier), KeychainError> {
    use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};
    let probe = format!("{service}:probe");
    let try_ring = |id: KeyRingIdentifier| -> Result<(KeyRing, KeyRingIdentifier), KeyError> {
        let ring = KeyRing::from_special_id(id, false)?;
        let key = possess(id, &ring).add_key(&probe, b"probe")?;
        let found = possess(id, &ring).search(&probe);
        let _ = key.invalidate();
        found.map(|_| (ring, id))
    };
    let user = match try_ring(KeyRingIdentifier::User) {
        Ok(ring) => return Ok(ring),
        Err(e) => e,
    };
    match try_ring(KeyRingIdentifier::UserSession) {
        Ok(ring) => {
            tracing::warn!(
                "keyutils: user keyring unusable ({user:?}); using the user session keyring (@us)"
            );
            Ok(ring)
        }
        Err(us)
            if matches!(user, KeyError::AccessDenied) || matches!(us, KeyError::AccessDenied) =>
        {
            Err(KeychainError(format!(
                "keyutils: {KEYUTILS_ACCESS_HELP} (user keyring: {user:?}; user session keyring: {us:?})"
            )))
        }
        Err(us) => Err(KeychainError(format!(
            "keyutils: neither the user keyring ({user:?}) nor the user session keyring ({us:?}) can be used"
        ))),
    }
}

/// `ring` (the user's ring `id`), made possessed by the calling thread: the
/// ring is linked into the thread's own keyring by its special id (which the
/// kernel treats as possessed), so entries found through it by serial are
/// possessed too. Credentials (and so thread keyrings) are per thread: this
/// runs before every use. Best effort: a session keyring of the user's own
/// already makes the ring possessed, and a refusal is reported by the use.
fn possess(
    id: linux_keyutils::KeyRingIdentifier,
    ring: &linux_keyutils::KeyRing,
) -> &linux_keyutils::KeyRing {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    if let Ok(thread) = KeyRing::from_special_id(KeyRingIdentifier::Thread, true) {
        let _ = thread.link_keyring_id(id);
    }
    ring
}

/// A keyutils error as text; access refusals carry what to do.
fn keyutils_error(op: &str, e: linux_keyutils::KeyError) -> KeychainError {
    match e {
        linux_keyutils::KeyError::AccessDenied => {
            KeychainError(format!("keyutils {op}: {KEYUTILS_ACCESS_HELP}"))
        }
        other => KeychainError(format!("keyutils {op}: {other:?}")),
    }
}

impl Keychain {
    /// Opens `preferred`, or with `None` Secret Service when a session bus
    /// answers for it, else keyutils.
    pub fn open(preferred: Option<Backend>, profile: &str) -> Result<Keychain, KeychainError> {
        let service = format!("gatehouse:{profile}");
        let try_ss = || -> Result<Keychain, KeychainError> {
            if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                return Err(KeychainError(
                    "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)".into(),
                ));
            }
            let store = zbus_secret_service_keyring_store::Store::new()
                .map_err(|e| KeychainError(format!("Secret Service: {e}")))?;
            let kc = Keychain {
                backend: Backend::SecretService,
                store: Store::SecretService(store),
                service: service.clone(),
            };
            kc.probe()?;
            Ok(kc)
        };
        let keyutils = || -> Result<Keychain, KeychainError> {
            let ring = usable_keyring(&service)?;
            Ok(Keychain {
                backend: Backend::Keyutils,
                store: Store::Keyutils(ring.0, ring.1),
                service: service.clone(),
            })
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

    fn entry(&self, store: &Arc<CredentialStore>, name: &str) -> Result<Entry, KeychainError> {
        Entry::new_in_store(store, &self.service, name).map_err(|e| KeychainError(e.to_string()))
    }

    /// keyutils description of an entry.
    fn description(&self, name: &str) -> String {
        format!("{}:{name}", self.service)
    }

    /// A read of an entry that does not exist: proves the backend answers.
    fn probe(&self) -> Result<(), KeychainError> {
        self.get("probe").map(|_| ())
    }

    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), KeychainError> {
        match &self.store {
            Store::SecretService(s) => self
                .entry(s, name)?
                .set_secret(value)
                .map_err(|e| KeychainError(e.to_string())),
            Store::Keyutils(ring, id) => possess(*id, ring)
                .add_key(&self.description(name), value)
                .map(|_| ())
                .map_err(|e| keyutils_error("add_key", e)),
        }
    }

    /// `Ok(None)` when the entry does not exist.
    pub fn get(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, KeychainError> {
        match &self.store {
            Store::SecretService(s) => match self.entry(s, name)?.get_secret() {
                Ok(v) => Ok(Some(zeroize::Zeroizing::new(v))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(KeychainError(e.to_string())),
            },
            Store::Keyutils(ring, id) => match possess(*id, ring).search(&self.description(name)) {
                Ok(key) => key
                    .read_to_vec()
                    .map(|v| Some(zeroize::Zeroizing::new(v)))
                    .map_err(|e| keyutils_error("read", e)),
                // A key invalidated a moment ago reads as revoked until the kernel collects it.
                Err(
                    linux_keyutils::KeyError::KeyDoesNotExist
                    | linux_keyutils::KeyError::KeyRevoked,
                ) => Ok(None),
                Err(e) => Err(keyutils_error("search", e)),
            },
        }
    }

    /// Deletes; `Ok(false)` when there was nothing to delete.
    pub fn delete(&self, name: &str) -> Result<bool, KeychainError> {
        match &self.store {
            Store::SecretService(s) => match self.entry(s, name)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(KeychainError(e.to_string())),
            },
            Store::Keyutils(ring, id) => match possess(*id, ring).search(&self.description(name)) {
                Ok(key) => key
                    .invalidate()
                    .map(|_| true)
                    .map_err(|e| keyutils_error("invalidate", e)),
                Err(
                    linux_keyutils::KeyError::KeyDoesNotExist
                    | linux_keyutils::KeyError::KeyRevoked,
                ) => Ok(false),
                Err(e) => Err(keyutils_error("search", e)),
            },
        }
    }
}
