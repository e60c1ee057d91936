//! STUB (uncommitted) for type checking
use std::time::Duration;
use zeroize::Zeroizing;
pub struct Target {
    pub host_name: String,
    pub address: String,
    pub port: u16,
    pub username: String,
    pub pinned_host_key: Option<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("x")]
    HostKeyUnknown { presented: String },
    #[error("x")]
    HostKeyChanged { expected: String, presented: String },
    #[error("x")]
    AuthFailed { reason: String },
    #[error("x")]
    Connect { reason: String },
    #[error("x")]
    Timeout,
    #[error("x")]
    Credential(String),
}
pub trait CredentialSource: Send {
    fn password(&mut self) -> impl Future<Output = Result<Zeroizing<String>, SshError>> + Send;
    fn public_key(&mut self) -> impl Future<Output = Result<Option<String>, SshError>> + Send;
    fn sign(&mut self, to_sign: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, SshError>> + Send;
}
pub struct Connection;
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}
pub async fn connect(
    _t: &Target,
    _c: &mut impl CredentialSource,
    _d: Duration,
) -> Result<Connection, SshError> {
    todo!()
}
impl Connection {
    pub fn host_key(&self) -> &str {
        ""
    }
    pub async fn exec(
        &self,
        _c: &str,
        _o: tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<Option<u32>, SshError> {
        todo!()
    }
    pub async fn shell(&self, _c: u16, _r: u16, _t: &str) -> Result<Shell, SshError> {
        todo!()
    }
    pub async fn close(self) {}
}
pub struct Shell;
pub struct ShellWriter;
pub struct ShellReader;
pub enum ShellEvent {
    Data(Vec<u8>),
    Exit(Option<u32>),
    Closed,
}
impl Shell {
    pub fn split(self) -> (ShellWriter, ShellReader) {
        todo!()
    }
}
impl ShellWriter {
    pub async fn write(&self, _d: &[u8]) -> Result<(), SshError> {
        todo!()
    }
    pub async fn resize(&self, _c: u16, _r: u16) -> Result<(), SshError> {
        todo!()
    }
}
impl ShellReader {
    pub async fn next(&mut self) -> Option<ShellEvent> {
        todo!()
    }
}
