//! One simulated device: its vendor, its configuration state (shared by all
//! sessions for the device's lifetime), its credentials, its event log and
//! its reboot signal.
//!
//! Must never name a concrete vendor module: the configuration state is a
//! [`DeviceModel`] that `ios` / `routeros` implement, and `vendors` is the
//! one place that builds one for a [`Vendor`].

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use russh::keys::PublicKey;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

use crate::eventlog::{EventLog, Kind};

/// Which CLI the device imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// MikroTik RouterOS 7.
    RouterOs,
    /// Cisco IOS 15.
    Ios,
}

impl std::str::FromStr for Vendor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "routeros" | "mikrotik" => Ok(Vendor::RouterOs),
            "ios" | "cisco" => Ok(Vendor::Ios),
            other => Err(format!("unknown vendor {other:?} (routeros or ios)")),
        }
    }
}

/// Who may log in, and how.
pub struct Credentials {
    /// The one account name.
    pub user: String,
    /// Its password (also the IOS enable secret).
    pub password: Zeroizing<String>,
    /// Public keys accepted for `user`.
    pub authorized_keys: Vec<PublicKey>,
    /// Offer the `password` method.
    pub password_method: bool,
    /// Offer `keyboard-interactive` with a single `Password:` prompt.
    pub keyboard_interactive: bool,
}

impl Credentials {
    /// Compares a password in time independent of where it differs.
    pub fn password_matches(&self, candidate: &[u8]) -> bool {
        let want = self.password.as_bytes();
        let mut diff = want.len() ^ candidate.len();
        for (i, w) in want.iter().enumerate() {
            diff |= usize::from(w ^ candidate.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }

    /// Whether `name` is the account, allowing RouterOS login flags (`admin+ct`).
    pub fn user_matches(&self, vendor: Vendor, name: &str) -> bool {
        let base = match vendor {
            Vendor::RouterOs => name.split('+').next().unwrap_or(name),
            Vendor::Ios => name,
        };
        base == self.user
    }
}

/// A vendor's configuration state (one per device, shared by all its
/// sessions). Each vendor module implements it for its own state and finds
/// that state again with [`downcast_ref`](Self::downcast_ref) /
/// [`downcast_mut`](Self::downcast_mut).
pub trait DeviceModel: Any + Send {
    /// The device rebooted: fall back to what survives a reboot (IOS: the
    /// startup configuration).
    fn reload(&mut self);
}

impl dyn DeviceModel {
    /// The state as the vendor's own type, `None` if it is another vendor's.
    pub fn downcast_ref<T: DeviceModel>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }

    /// The state as the vendor's own type, `None` if it is another vendor's.
    pub fn downcast_mut<T: DeviceModel>(&mut self) -> Option<&mut T> {
        (self as &mut dyn Any).downcast_mut()
    }
}

/// A simulated device.
pub struct Device {
    /// Which CLI.
    pub vendor: Vendor,
    /// Who may log in.
    pub credentials: Credentials,
    /// Where events go.
    pub log: EventLog,
    /// Also log raw channel data as it arrives.
    pub log_data: bool,
    model: Mutex<Box<dyn DeviceModel>>,
    booted: Mutex<Instant>,
    next_session: AtomicU64,
    reboot: broadcast::Sender<()>,
}

impl Device {
    /// A freshly booted device with the vendor's state `model` (built by
    /// `vendors::model`; `vendors::new_device` builds both).
    pub fn new(
        vendor: Vendor,
        model: Box<dyn DeviceModel>,
        credentials: Credentials,
        log: EventLog,
        log_data: bool,
    ) -> Self {
        let (reboot, _) = broadcast::channel(4);
        Self {
            vendor,
            credentials,
            log,
            log_data,
            model: Mutex::new(model),
            booted: Mutex::new(Instant::now()),
            next_session: AtomicU64::new(1),
            reboot,
        }
    }

    /// Locks the configuration state (never held across an await).
    pub fn model(&self) -> MutexGuard<'_, Box<dyn DeviceModel>> {
        match self.model.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Seconds since the last (simulated) boot.
    pub fn uptime_secs(&self) -> u64 {
        let b = match self.booted.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        };
        b.elapsed().as_secs()
    }

    /// A new connection number.
    pub fn next_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Subscribes to reboots (every connection drops on one).
    pub fn subscribe_reboot(&self) -> broadcast::Receiver<()> {
        self.reboot.subscribe()
    }

    /// Reboots: IOS falls back to its startup configuration, every
    /// connection is dropped, the uptime restarts.
    pub fn reboot(&self, session: u64, why: &str) {
        self.log.record(session, Kind::Reboot, why);
        self.model().reload();
        match self.booted.lock() {
            Ok(mut g) => *g = Instant::now(),
            Err(p) => *p.into_inner() = Instant::now(),
        }
        let _ = self.reboot.send(());
    }
}
