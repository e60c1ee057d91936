//! Host key and credential files: load an OpenSSH Ed25519 host key or
//! generate one (mode 0600), read the password file, read authorized keys.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::{AuthorizedKeys, LineEnding};
use russh::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::error::Error;

/// Loads the host key at `path`, or generates an Ed25519 key there if the file is missing.
pub fn load_or_generate(path: &Path) -> Result<PrivateKey, Error> {
    if path.exists() {
        return PrivateKey::read_openssh_file(path).map_err(|e| Error::HostKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
    }
    let key = generate()?;
    let text = key.to_openssh(LineEnding::LF).map_err(|e| Error::HostKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let file_err = |source| Error::File {
        what: "host key",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(file_err)?;
    f.write_all(text.as_bytes()).map_err(file_err)?;
    Ok(key)
}

/// A fresh Ed25519 key from the OS's randomness.
pub fn generate() -> Result<PrivateKey, Error> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| Error::Random(e.to_string()))?;
    let pair = Ed25519Keypair::from_seed(&seed);
    PrivateKey::new(KeypairData::Ed25519(pair), "gatehouse-labdevice")
        .map_err(|e| Error::Random(format!("key construction: {e}")))
}

/// Reads a password file: its content without the final line break.
pub fn read_password(path: &Path) -> Result<Zeroizing<String>, Error> {
    let raw = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::File {
        what: "password file",
        path: path.to_path_buf(),
        source,
    })?);
    let trimmed = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(&raw);
    if trimmed.is_empty() {
        return Err(Error::EmptyPassword(path.to_path_buf()));
    }
    Ok(Zeroizing::new(trimmed.to_string()))
}

/// Reads an OpenSSH `authorized_keys` file (options are ignored).
pub fn read_authorized_keys(path: &Path) -> Result<Vec<PublicKey>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        what: "authorized keys",
        path: path.to_path_buf(),
        source,
    })?;
    let mut keys = Vec::new();
    for (n, entry) in AuthorizedKeys::new(&text).enumerate() {
        match entry {
            Ok(e) => keys.push(e.public_key().clone()),
            Err(e) => {
                return Err(Error::AuthorizedKey {
                    path: path.to_path_buf(),
                    line: n + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(keys)
}
