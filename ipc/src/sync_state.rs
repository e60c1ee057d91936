//! syncd's files in `<data>/sync/` (here, in ipc, because syncd and the
//! CLI share the format; the CLI links no daemon crate): `server.json` (the server a person
//! connected to: URL, certificate pin, server id — written by `gatehouse
//! sync connect`, whose presence makes `gatehouse up` start syncd) and
//! `state.json` (syncd's own: account and device names, cursors, the
//! revisions it has seen, last sync, conflicts).
//!
//! Must never: hold a key, a session token or record content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `<data>/sync/`.
pub fn dir(root: &Path) -> PathBuf {
    root.join("sync")
}

/// `<data>/sync/server.json`: whether a sync server is configured.
pub fn server_path(root: &Path) -> PathBuf {
    dir(root).join("server.json")
}

fn state_path(root: &Path) -> PathBuf {
    dir(root).join("state.json")
}

/// The server a person connected this profile to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// `https://HOST:PORT`.
    pub url: String,
    /// SHA-256 of the server's certificate (64 hex digits).
    pub pin: String,
    /// The server's id when it was connected (`GET /v1/info`); a server
    /// answering with another id is another server.
    pub server_id: String,
}

/// syncd's own progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    pub account: Option<String>,
    pub device: Option<String>,
    /// Per space: the last sequence number applied.
    #[serde(default)]
    pub cursors: BTreeMap<String, u64>,
    /// Per `SPACE KIND/ID`: the highest revision seen on the server (a
    /// server that serves a lower one is rolling the record back).
    #[serde(default)]
    pub revisions: BTreeMap<String, u64>,
    /// Per `SPACE KIND/ID`: the local record's MAC when it was last pushed
    /// or pulled (a different MAC now is a local change to push).
    #[serde(default)]
    pub synced_macs: BTreeMap<String, String>,
    pub last_sync_ms: Option<u64>,
    #[serde(default)]
    pub conflicts: Vec<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_json<T: Serialize>(root: &Path, path: &Path, v: &T) -> Result<(), String> {
    crate::paths::make_private_dir(&dir(root))
        .map_err(|e| format!("{}: {e}", dir(root).display()))?;
    let json = serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?;
    crate::os::write_atomic(path, &json).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn load_server(root: &Path) -> Result<Option<ServerConfig>, String> {
    read_json(&server_path(root))
}

pub fn save_server(root: &Path, c: &ServerConfig) -> Result<(), String> {
    write_json(root, &server_path(root), c)
}

pub fn load_state(root: &Path) -> Result<SyncState, String> {
    Ok(read_json(&state_path(root))?.unwrap_or_default())
}

pub fn save_state(root: &Path, s: &SyncState) -> Result<(), String> {
    write_json(root, &state_path(root), s)
}
