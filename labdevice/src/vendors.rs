//! The registry of vendor CLIs: the one place that maps a [`Vendor`] to its
//! module (`ios`, `routeros`) — its configuration state and its sessions.
//!
//! Owns that mapping only. Must never: hold vendor behaviour (that lives in
//! the vendor's module) or be imported by `device`, `cli`, `terminal` or a
//! vendor module (they work against [`DeviceModel`] / [`CliSession`]).

use crate::cli::CliSession;
use crate::device::{Credentials, Device, DeviceModel, Vendor};
use crate::eventlog::EventLog;
use crate::ios::{IosModel, IosSession};
use crate::routeros::{RosModel, RosSession};

/// Factory state of a `vendor` device named `hostname`.
pub fn model(vendor: Vendor, hostname: &str) -> Box<dyn DeviceModel> {
    match vendor {
        Vendor::Ios => Box::new(IosModel::new(hostname)),
        Vendor::RouterOs => Box::new(RosModel::new(hostname)),
    }
}

/// A new CLI session of `vendor` for `user`: an exec channel's (`exec`;
/// IOS starts privileged) or a shell's.
pub fn session(vendor: Vendor, user: &str, exec: bool) -> Box<dyn CliSession> {
    match vendor {
        Vendor::Ios => Box::new(IosSession::new(exec)),
        Vendor::RouterOs => Box::new(RosSession::new(user)),
    }
}

/// A freshly booted `vendor` device with factory state and the given hostname.
pub fn new_device(
    vendor: Vendor,
    hostname: &str,
    credentials: Credentials,
    log: EventLog,
    log_data: bool,
) -> Device {
    Device::new(vendor, model(vendor, hostname), credentials, log, log_data)
}
