//! Shared by the ssh_* integration tests (`mod ssh_support;`): a
//! credential source standing in for the broker, and small helpers.
//!
//! `TestCreds` signs with an in-process private key. In production the
//! broker signs and sessiond never sees the key; here the test plays the
//! broker's part so the SSH module can be tested alone.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_sessiond::ssh::{Chunk, Connection, CredentialSource, SshError};
use russh::keys::PrivateKey;
use russh::keys::signature::Signer as _;
use russh::keys::ssh_encoding::Encode as _;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// What a [`TestCreds`] was asked for, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Password,
    PublicKey,
    Sign,
}

/// A credential source with an optional password and an optional key.
pub struct TestCreds {
    pub password: Option<String>,
    pub key: Option<PrivateKey>,
    pub asked: Arc<Mutex<Vec<Asked>>>,
}

impl TestCreds {
    pub fn password(p: &str) -> TestCreds {
        TestCreds {
            password: Some(p.to_string()),
            key: None,
            asked: Arc::default(),
        }
    }

    pub fn key(openssh_private: &str) -> TestCreds {
        TestCreds {
            password: None,
            key: Some(PrivateKey::from_openssh(openssh_private).expect("test key parses")),
            asked: Arc::default(),
        }
    }

    pub fn with_key(mut self, key: PrivateKey) -> TestCreds {
        self.key = Some(key);
        self
    }

    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }

    fn note(&self, a: Asked) {
        self.asked.lock().unwrap().push(a);
    }
}

impl CredentialSource for TestCreds {
    async fn password(&mut self) -> Result<Zeroizing<String>, SshError> {
        self.note(Asked::Password);
        self.password
            .clone()
            .map(Zeroizing::new)
            .ok_or_else(|| SshError::Credential("host has no password".into()))
    }

    async fn public_key(&mut self) -> Result<Option<String>, SshError> {
        self.note(Asked::PublicKey);
        match &self.key {
            Some(k) => Ok(Some(
                k.public_key()
                    .to_openssh()
                    .map_err(|e| SshError::Credential(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    async fn sign(&mut self, to_sign: Vec<u8>) -> Result<Vec<u8>, SshError> {
        self.note(Asked::Sign);
        let key = self
            .key
            .as_ref()
            .ok_or_else(|| SshError::Credential("no key".into()))?;
        let sig = key
            .try_sign(&to_sign)
            .map_err(|e| SshError::Credential(e.to_string()))?;
        let mut blob = Vec::new();
        sig.encode(&mut blob)
            .map_err(|e| SshError::Credential(e.to_string()))?;
        Ok(blob)
    }
}

/// A password of 24 random hex characters from the kernel.
pub fn random_password() -> String {
    let mut b = [0u8; 12];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Output of one exec: stdout, stderr, exit status.
pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Option<u32>,
    pub chunks: usize,
}

impl ExecResult {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `command`, collecting output through a channel of `capacity`.
pub async fn exec(conn: &Connection, command: &str, capacity: usize) -> ExecResult {
    let (tx, mut rx) = mpsc::channel(capacity);
    let collect = tokio::spawn(async move {
        let (mut out, mut err, mut chunks) = (Vec::new(), Vec::new(), 0);
        while let Some(c) = rx.recv().await {
            chunks += 1;
            match c {
                Chunk::Stdout(d) => out.extend_from_slice(&d),
                Chunk::Stderr(d) => err.extend_from_slice(&d),
            }
        }
        (out, err, chunks)
    });
    let status = tokio::time::timeout(Duration::from_secs(120), conn.exec(command, tx))
        .await
        .expect("exec finished in time")
        .expect("exec ran");
    let (stdout, stderr, chunks) = collect.await.unwrap();
    ExecResult {
        stdout,
        stderr,
        status,
        chunks,
    }
}
