//! The copilot's provider settings: `<data>/copilot/provider.json`, written
//! by `gatehouse copilot config`, read by copilotd at each turn.
//!
//! Owns the file format. Holds no secret: an API key is a keychain reference
//! (`keychain:NAME`), and releasing it to copilotd is the broker's business.
//! Must never: store a key's value.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// OpenAI-compatible Chat Completions (OpenAI, Ollama, llama.cpp, vLLM…).
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSettings {
    pub kind: Kind,
    /// e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`, `https://api.anthropic.com`.
    pub endpoint: String,
    pub model: String,
    /// `keychain:NAME` of the API key, if the endpoint needs one.
    pub api_key_ref: Option<String>,
}

pub fn dir(data_root: &Path) -> PathBuf {
    data_root.join("copilot")
}

pub fn path(data_root: &Path) -> PathBuf {
    dir(data_root).join("provider.json")
}

/// The settings, if configured.
pub fn load(data_root: &Path) -> Result<Option<ProviderSettings>, String> {
    let p = path(data_root);
    match std::fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// Checks and writes the settings (0600 in a 0700 directory).
pub fn save(data_root: &Path, s: &ProviderSettings) -> Result<(), String> {
    let url_ok = s.endpoint.starts_with("https://") || s.endpoint.starts_with("http://");
    if !url_ok || s.endpoint.len() > 2048 {
        return Err(format!("endpoint {:?} is not an http(s) URL", s.endpoint));
    }
    if s.model.trim().is_empty() || s.model.len() > 256 {
        return Err("model: empty or over 256 bytes".into());
    }
    if let Some(r) = &s.api_key_ref
        && !r.starts_with("keychain:")
    {
        return Err(
            "the API key must be a keychain reference (keychain:NAME), never the key".into(),
        );
    }
    gatehouse_ipc::paths::make_private_dir(&dir(data_root)).map_err(|e| e.to_string())?;
    let text = serde_json::to_vec_pretty(s).map_err(|e| e.to_string())?;
    let tmp = path(data_root).with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| e.to_string())?;
        f.write_all(&text).map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, path(data_root)).map_err(|e| e.to_string())
}
