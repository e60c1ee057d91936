//! The session daemon: SSH sessions to devices.
//!
//! Owns SSH connections (russh) opened with credentials the broker releases
//! for one connection (passwords) or uses on sessiond's behalf (key
//! signatures), the gate in front of every command (classification, then an
//! approval token spent with the broker before a byte reaches the device),
//! session recordings (asciicast v3, sealed in chunks) and the audit log.
//! Must never: hold a private key, keep a password after the connection it
//! was released for is authenticated, or send any byte of a gated command to
//! a device before its token was consumed.

/// The session audit rows now live beside the other audit types in `ipc`;
/// sessiond keeps its old path to them.
pub use gatehouse_ipc::audit::sessions as audit;
pub mod broker_link;
pub mod driver;
pub mod gate;
pub mod hosts;
pub mod recorder;
pub mod service;
pub mod ssh;
pub mod typed_lines;
