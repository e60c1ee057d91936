//! Gatehouse IPC: the one way processes talk to each other.
//!
//! Owns the wire messages of every service, the frame codec (u32 length +
//! postcard body, size checked before allocating), the version handshake,
//! peer identity (`SO_PEERCRED`, `SO_PEERPIDFD`, `/proc/PID/exe` → [`PeerRole`]),
//! typed errors, the per-user runtime directory layout, and client/server
//! helpers.
//!
//! Must never: trust what a peer *claims* about itself, allocate a frame before
//! checking its size, panic on peer input, or print secret bytes (see
//! [`SecretBytes`]).

pub mod audit;
pub mod broker;
pub mod client;
pub mod codec;
pub mod copilotd;
pub mod creds;
pub mod daemon_slots;
pub mod display;
pub mod dumpable;
pub mod exe_resolver;
pub mod os;
pub mod paths;
pub mod peer;
pub mod provider_settings;
pub mod record_content;
pub mod record_write;
pub mod secret;
pub mod server;
pub mod sessiond;
pub mod sync_record;
pub mod sync_state;
pub mod syncd;
pub mod wire;

pub use codec::MAX_FRAME;
pub use paths::Layout;
pub use peer::{PeerIdentity, PeerRefusal, PeerRole};
pub use secret::SecretBytes;
pub use wire::{PROTOCOL_VERSION, ProtocolError, Service};
