//! Gatehouse lab device simulator: an SSH server (russh) that imitates a
//! MikroTik RouterOS or Cisco IOS command line well enough for scripted and
//! interactive work — prompts, paging, configuration state shared by all
//! sessions, `reload` / `/system reboot` dropping every connection — and
//! logs every command with a millisecond timestamp before running it.
//!
//! Modules:
//! - [`device`]: one device (vendor, state, credentials, log, reboot signal);
//! - [`server`]: the russh server and per-connection handler;
//! - [`terminal`]: bytes → lines, echo, paging, questions (no I/O);
//! - [`cli`]: what a vendor CLI answers and what the terminal asks of it;
//! - [`ios`], [`routeros`]: the two CLIs;
//! - [`vendors`]: the one place that maps a vendor to its CLI module;
//! - [`eventlog`]: the JSON-lines event log;
//! - [`hostkey`]: host key, password and authorized-keys files;
//! - [`abbrev`], [`clock`]: keyword abbreviation, date formatting;
//! - [`error`]: start-up errors.
//!
//! In-process use (tests):
//! ```no_run
//! # async fn f() -> Result<(), gatehouse_labdevice::error::Error> {
//! use gatehouse_labdevice::{Options, device::Vendor};
//! let dev = gatehouse_labdevice::start(Options::new(Vendor::Ios, "R1", "admin", "secret")).await?;
//! println!("listening {}", dev.addr);
//! dev.shutdown().await;
//! # Ok(()) }
//! ```

pub mod abbrev;
pub mod cli;
pub mod clock;
pub mod device;
pub mod error;
pub mod eventlog;
pub mod hostkey;
pub mod ios;
pub mod routeros;
pub mod server;
pub mod terminal;
pub mod vendors;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use device::{Credentials, Vendor};
use error::Error;
use eventlog::EventLog;
pub use server::RunningDevice;

/// Everything needed to start a device.
pub struct Options {
    /// Which CLI.
    pub vendor: Vendor,
    /// Hostname / identity at boot.
    pub hostname: String,
    /// Where to listen (port 0 picks one).
    pub listen: SocketAddr,
    /// Host key; `None` generates a throw-away Ed25519 key.
    pub host_key: Option<PrivateKey>,
    /// The account.
    pub user: String,
    /// Its password (and IOS enable secret).
    pub password: Zeroizing<String>,
    /// Accepted public keys.
    pub authorized_keys: Vec<PublicKey>,
    /// Offer `password` authentication.
    pub password_auth: bool,
    /// Offer `keyboard-interactive` authentication.
    pub keyboard_interactive: bool,
    /// JSON-lines event log file.
    pub log: Option<PathBuf>,
    /// Also log raw channel bytes on arrival (`kind: "data"`).
    pub log_data: bool,
}

impl Options {
    /// Defaults: 127.0.0.1:0, generated host key, password auth only, no log.
    pub fn new(vendor: Vendor, hostname: &str, user: &str, password: &str) -> Self {
        Self {
            vendor,
            hostname: hostname.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            host_key: None,
            user: user.to_string(),
            password: Zeroizing::new(password.to_string()),
            authorized_keys: Vec::new(),
            password_auth: true,
            keyboard_interactive: false,
            log: None,
            log_data: false,
        }
    }
}

/// Builds the device and starts serving it.
pub async fn start(opts: Options) -> Result<RunningDevice, Error> {
    let log = match &opts.log {
        Some(p) => EventLog::open(p)?,
        None => EventLog::none(),
    };
    let key = match opts.host_key {
        Some(k) => k,
        None => hostkey::generate()?,
    };
    let creds = Credentials {
        user: opts.user,
        password: opts.password,
        authorized_keys: opts.authorized_keys,
        password_method: opts.password_auth,
        keyboard_interactive: opts.keyboard_interactive,
    };
    let device = Arc::new(vendors::new_device(
        opts.vendor,
        &opts.hostname,
        creds,
        log,
        opts.log_data,
    ));
    server::serve(device, key, opts.listen).await
}
