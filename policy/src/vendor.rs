//! Vendor / platform names. Owns the mapping between the lowercase platform
//! strings used by records (`routeros`, `ios`, …) and [`Vendor`]. Must never
//! guess: an unrecognised platform is `None` (callers classify it unknown).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A command dialect the classifier understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// MikroTik RouterOS CLI / scripts.
    RouterOs,
    /// Cisco IOS.
    Ios,
    /// Cisco IOS-XE.
    IosXe,
    /// Cisco NX-OS.
    NxOs,
    /// Juniper Junos.
    Junos,
    /// Arista EOS.
    Eos,
    /// A POSIX shell on a Linux host.
    Linux,
}

impl Vendor {
    /// Every vendor, in a stable order.
    pub const ALL: [Vendor; 7] = [
        Vendor::RouterOs,
        Vendor::Ios,
        Vendor::IosXe,
        Vendor::NxOs,
        Vendor::Junos,
        Vendor::Eos,
        Vendor::Linux,
    ];

    /// The lowercase name used in records and on the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::RouterOs => "routeros",
            Vendor::Ios => "ios",
            Vendor::IosXe => "iosxe",
            Vendor::NxOs => "nxos",
            Vendor::Junos => "junos",
            Vendor::Eos => "eos",
            Vendor::Linux => "linux",
        }
    }

    /// Map a record's platform string to a vendor; `None` for platforms the
    /// classifier has no table for (e.g. `onvif-camera`, `other`). Accepts a
    /// few common spellings (`ios-xe`, `nx-os`, `mikrotik`, `arista`).
    pub fn parse_platform(s: &str) -> Option<Vendor> {
        let t = s.trim();
        let eq = |x: &str| t.eq_ignore_ascii_case(x);
        Some(if eq("routeros") || eq("mikrotik") {
            Vendor::RouterOs
        } else if eq("ios") || eq("cisco-ios") {
            Vendor::Ios
        } else if eq("iosxe") || eq("ios-xe") || eq("ios_xe") {
            Vendor::IosXe
        } else if eq("nxos") || eq("nx-os") || eq("nx_os") {
            Vendor::NxOs
        } else if eq("junos") || eq("juniper") {
            Vendor::Junos
        } else if eq("eos") || eq("arista") {
            Vendor::Eos
        } else if eq("linux") {
            Vendor::Linux
        } else {
            return None;
        })
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unrecognised vendor name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseVendorError(pub String);

impl fmt::Display for ParseVendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown vendor {:?} (expected one of routeros, ios, iosxe, nxos, junos, eos, linux)",
            self.0
        )
    }
}

impl std::error::Error for ParseVendorError {}

impl FromStr for Vendor {
    type Err = ParseVendorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::parse_platform(s).ok_or_else(|| ParseVendorError(s.to_string()))
    }
}
