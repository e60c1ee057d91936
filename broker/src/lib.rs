//! The Gatehouse key broker.
//!
//! The only process that holds organization keys, the account key, the
//! approval-signing key, or keychain payloads. It serves requests on a local
//! socket, decides each peer's role from its executable, checks the role
//! table, and answers without ever returning a key.
//!
//! Modules: [`crypto`] (formats and primitives), [`vault`] (keys and
//! account), [`keychain`] (OS keychain transport), [`approvals`] (signed
//! single-use approvals), [`autopilot`] (bounded auto-approval grants),
//! [`audit`] (the credential-use log), [`roles`] (who may do what),
//! [`redact`] (exact-value redaction), [`destinations`] (where a keychain
//! entry used as a host credential may go), [`remembered`] (where "remember
//! this device" keeps its unlock material), [`host_credentials`] and
//! [`service_auth`] (releases bound to one destination), [`service`]
//! (request dispatch), [`copilot_records`] (note bodies and approved record
//! writes for copilotd), [`sync_signing`] (device challenges and record
//! writes signed for syncd with the account's identity key).

pub mod approvals;
pub mod audit;
pub mod autopilot;
pub mod copilot_records;
/// The field and key-wrapping cryptography, a library crate the broker runs
/// (and the benchmarks measure in-process as a baseline).
pub use gatehouse_crypto as crypto;
pub mod destinations;
pub mod fuzz;
pub mod host_credentials;
pub mod keychain;
pub mod org_policies;
pub mod presence;
pub mod redact;
pub mod remembered;
pub mod roles;
pub mod service;
pub mod service_auth;
pub mod sync_signing;
pub mod tpm;
pub mod vault;
