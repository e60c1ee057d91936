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
    /// Prices, to count what a conversation costs (none: tokens only).
    #[serde(default)]
    pub prices: Option<Prices>,
}

/// What the model's tokens cost, in millionths of a US dollar per million
/// tokens (so `2.50` $/Mtok is 2_500_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    pub input_micro_usd_per_mtok: u64,
    pub output_micro_usd_per_mtok: u64,
}

impl Prices {
    /// The cost of `input` and `output` tokens, in millionths of a dollar (rounded up).
    pub fn cost_micro_usd(&self, input: u64, output: u64) -> u64 {
        let micro = u128::from(input) * u128::from(self.input_micro_usd_per_mtok)
            + u128::from(output) * u128::from(self.output_micro_usd_per_mtok);
        u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// Parses a price in dollars per million tokens (`2.5`, `0.15`, `15`) into
/// millionths of a dollar per million tokens.
pub fn parse_price(text: &str) -> Result<u64, String> {
    let bad = || format!("price {text:?}: dollars per million tokens, e.g. 2.50");
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .filter(|p| *p <= 1_000_000_000_000)
        .ok_or_else(bad)
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
    crate::paths::make_private_dir(&dir(data_root)).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_and_count() {
        assert_eq!(parse_price("2.50"), Ok(2_500_000));
        assert_eq!(parse_price("0.15"), Ok(150_000));
        assert_eq!(parse_price("15"), Ok(15_000_000));
        assert_eq!(parse_price(".5"), Ok(500_000));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "1.2345678",
            "abc",
            "1.2.3",
            "99999999",
        ] {
            assert!(parse_price(bad).is_err(), "{bad:?}");
        }
        let p = Prices {
            input_micro_usd_per_mtok: 2_500_000,
            output_micro_usd_per_mtok: 10_000_000,
        };
        // 1000 in × $2.50/M + 100 out × $10/M = $0.0025 + $0.001.
        assert_eq!(p.cost_micro_usd(1000, 100), 3500);
        assert_eq!(p.cost_micro_usd(1, 0), 3, "rounded up");
        assert_eq!(p.cost_micro_usd(0, 0), 0);
    }
}
