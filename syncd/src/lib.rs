//! `gatehouse-syncd`: the sync daemon. Unprivileged and sandboxed like
//! sessiond (its own seccomp table and Landlock profile: its own files, the
//! records store, TCP out only), started by the supervisor only when a sync
//! server is configured. It moves records between the local store and the
//! server exactly as stored (ciphertext, plaintext fields, MACs) and asks
//! the broker to sign its requests and to verify what arrives.
//!
//! Modules: [`config`] (its files: server, state; in `gatehouse_ipc::sync_state`), [`service`] (the
//! `syncd.sock` service and the device sign-in), `sync` (push and pull).
//! Must never: hold a key, or apply anything from the server that the
//! broker's MAC check or the account's signature check refuses.

/// Its files' format lives in ipc (the CLI writes the server file).
pub use gatehouse_ipc::sync_state as config;
pub mod service;
mod sync;
