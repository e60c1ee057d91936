//! sessiond's connection to the broker, and the SSH credential source that
//! asks the broker for one host's credential at a time.
//!
//! Owns reconnecting to the broker and mapping its errors to sessiond's.
//! Must never: cache a password or keep one beyond the call that uses it.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_ipc::broker::{Broker, BrokerError, BrokerRequest, BrokerResponse, ShellUse};
use gatehouse_ipc::client::{CallError, Client};
use gatehouse_ipc::sessiond::SessiondError;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::hosts::{CredentialField, Host};
use crate::ssh::{CredentialSource, SshError};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct BrokerLink {
    runtime: PathBuf,
    client: Mutex<Option<Client<Broker>>>,
}

pub fn broker_error(e: BrokerError) -> SessiondError {
    match e {
        BrokerError::SignedOut | BrokerError::NotInitialized => SessiondError::SignedOut,
        BrokerError::Approval(a) => SessiondError::Approval(a),
        other => SessiondError::Broker(other.to_string()),
    }
}

impl BrokerLink {
    pub fn new(runtime: PathBuf) -> BrokerLink {
        BrokerLink {
            runtime,
            client: Mutex::new(None),
        }
    }

    /// Connects now (sessiond connects before it drops the ability to be
    /// identified by its executable; see main.rs).
    pub async fn connect(&self) -> Result<(), SessiondError> {
        let mut guard = self.client.lock().await;
        let c = Client::<Broker>::connect(&self.runtime, CALL_TIMEOUT)
            .await
            .map_err(|e| SessiondError::Broker(e.to_string()))?;
        *guard = Some(c);
        Ok(())
    }

    pub async fn connected(&self) -> bool {
        self.client.lock().await.is_some()
    }

    /// One broker call; reconnects once if the broker went away (restarted).
    pub async fn call(&self, req: BrokerRequest) -> Result<BrokerResponse, SessiondError> {
        let mut guard = self.client.lock().await;
        for attempt in 0..2 {
            if guard.is_none() {
                let c = Client::<Broker>::connect(&self.runtime, CALL_TIMEOUT)
                    .await
                    .map_err(|e| SessiondError::Broker(e.to_string()))?;
                *guard = Some(c);
            }
            let Some(client) = guard.as_mut() else {
                continue;
            };
            match client.call(req.clone()).await {
                Ok(r) => return Ok(r),
                Err(CallError::Remote(e)) => return Err(broker_error(e)),
                Err(CallError::Transport(e)) => {
                    *guard = None;
                    if attempt == 1 {
                        return Err(SessiondError::Broker(e.to_string()));
                    }
                }
            }
        }
        Err(SessiondError::Broker("unreachable".into()))
    }
}

/// Asks the broker for `host`'s credentials, one use at a time.
pub struct BrokerCredentials<'a> {
    pub link: &'a BrokerLink,
    pub host: &'a Host,
    /// Set for an interactive shell (see `HostCredential::shell`).
    pub shell: Option<ShellUse>,
}

fn credential_error(e: SessiondError) -> SshError {
    SshError::Credential(e.to_string())
}

impl CredentialSource for BrokerCredentials<'_> {
    async fn password(&mut self) -> Result<Zeroizing<String>, SshError> {
        if !self.host.credentials.contains(&CredentialField::Password) {
            return Err(SshError::Credential(format!(
                "host {} has no ssh.password",
                self.host.name
            )));
        }
        let req = BrokerRequest::ReleasePassword {
            host: Box::new(
                self.host
                    .credential_request(CredentialField::Password, self.shell.clone()),
            ),
        };
        match self.link.call(req).await.map_err(credential_error)? {
            BrokerResponse::Password(p) => {
                let text = std::str::from_utf8(p.expose())
                    .map_err(|_| SshError::Credential("the password is not UTF-8".into()))?;
                Ok(Zeroizing::new(text.to_string()))
            }
            other => Err(SshError::Credential(format!("unexpected reply {other:?}"))),
        }
    }

    async fn public_key(&mut self) -> Result<Option<String>, SshError> {
        if !self.host.credentials.contains(&CredentialField::PrivateKey) {
            return Ok(None);
        }
        let req = BrokerRequest::SshPublicKey {
            host: Box::new(
                self.host
                    .credential_request(CredentialField::PrivateKey, self.shell.clone()),
            ),
        };
        match self.link.call(req).await.map_err(credential_error)? {
            BrokerResponse::PublicKey(k) => Ok(Some(k)),
            other => Err(SshError::Credential(format!("unexpected reply {other:?}"))),
        }
    }

    async fn sign(&mut self, to_sign: Vec<u8>) -> Result<Vec<u8>, SshError> {
        let req = BrokerRequest::SshSign {
            host: Box::new(
                self.host
                    .credential_request(CredentialField::PrivateKey, self.shell.clone()),
            ),
            to_sign,
        };
        match self.link.call(req).await.map_err(credential_error)? {
            BrokerResponse::Signature(s) => Ok(s),
            other => Err(SshError::Credential(format!("unexpected reply {other:?}"))),
        }
    }
}
