//! The sync service: answers a person's tools on `syncd.sock` (connect this
//! device, sync now, status) and keeps the session with the server.
//!
//! Owns the connection to the configured server (pinned), the device
//! sign-in (the broker signs the challenge), and the state file.
//! Must never: hold or ask for a key (every signature comes from the broker
//! through its narrow sync ops), talk to a server whose certificate is not
//! the pinned one or whose id changed, or let a daemon role connect or sync.

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_ipc::broker::KeyBundleOut;
use gatehouse_ipc::broker::{Broker, BrokerEvent, BrokerRequest, BrokerResponse, Hardening};
use gatehouse_ipc::client::SharedClient;
use gatehouse_ipc::server::{Events, Handler};
use gatehouse_ipc::syncd::{
    SyncEvent, SyncReport, SyncStatus, Syncd, SyncdError, SyncdRequest, SyncdResponse,
};
use gatehouse_ipc::{Layout, PeerIdentity, PeerRole};
use gatehouse_membership::sign;
use gatehouse_records::Store;
use gatehouse_syncclient::{ClientError, SyncClient};
use gatehouse_syncproto::{Bytes, ErrorCode, KdfParams, PutBundle};
use tokio::sync::{Mutex, broadcast};

use crate::config::{self, ServerConfig, SyncState};

/// What syncd keeps while it runs.
pub(crate) struct Inner {
    pub(crate) server: Option<ServerConfig>,
    pub(crate) state: SyncState,
    /// The signed-in client (session token in memory only).
    pub(crate) session: Option<SyncClient>,
    /// Why the last contact failed, while it does.
    pub(crate) offline: Option<String>,
    pub(crate) pending: u64,
}

pub struct SyncService {
    pub(crate) root: PathBuf,
    hardening: Hardening,
    pub(crate) broker: Arc<SharedClient<Broker>>,
    pub(crate) store: std::sync::Mutex<Store>,
    pub(crate) inner: Mutex<Inner>,
    /// Held for a whole sync (one at a time), not for status.
    pub(crate) sync_lock: Mutex<()>,
    events: broadcast::Sender<SyncEvent>,
}

/// A client error as syncd reports it: no answer is "offline" (local work
/// goes on), a refusal names the server's code and message, an answer that
/// breaks the protocol is refused.
pub(crate) fn client_error(e: ClientError) -> SyncdError {
    match e {
        ClientError::Transport(t) => SyncdError::Offline(t),
        ClientError::Api { status, error } => {
            SyncdError::Server(format!("{status} {:?}: {}", error.code, error.message))
        }
        ClientError::Protocol(p) => SyncdError::Hostile(p),
    }
}

pub(crate) fn broker_error(e: impl std::fmt::Display) -> SyncdError {
    SyncdError::Broker(e.to_string())
}

fn valid_device(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl SyncService {
    pub fn new(
        layout: &Layout,
        hardening: Hardening,
        broker: Arc<SharedClient<Broker>>,
        store: Store,
    ) -> Result<Arc<SyncService>, String> {
        let server = config::load_server(&layout.root)?;
        let state = config::load_state(&layout.root)?;
        let (events, _) = broadcast::channel(64);
        Ok(Arc::new(SyncService {
            root: layout.root.clone(),
            hardening,
            broker,
            store: std::sync::Mutex::new(store),
            inner: Mutex::new(Inner {
                server,
                state,
                session: None,
                offline: None,
                pending: 0,
            }),
            sync_lock: Mutex::new(()),
            events,
        }))
    }

    /// Sign-out: the session ends (the server's data stays).
    pub async fn on_broker_event(&self, e: &BrokerEvent) {
        if matches!(e, BrokerEvent::SignedOut) {
            self.inner.lock().await.session = None;
        }
    }

    pub(crate) fn save_state(&self, state: &SyncState) -> Result<(), SyncdError> {
        config::save_state(&self.root, state).map_err(SyncdError::Local)
    }

    pub(crate) fn notify(&self, report: &SyncReport) {
        let _ = self.events.send(SyncEvent::Synced(report.clone()));
    }

    pub(crate) fn progress(&self, e: SyncEvent) {
        let _ = self.events.send(e);
    }

    async fn status(&self) -> SyncStatus {
        let inner = self.inner.lock().await;
        let mut hardening = self.hardening.clone();
        hardening.dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
        SyncStatus {
            pid: std::process::id(),
            hardening,
            server: inner.server.as_ref().map(|s| s.url.clone()),
            server_id: inner.server.as_ref().map(|s| s.server_id.clone()),
            account: inner.state.account.clone(),
            device: inner.state.device.clone(),
            signed_in: inner.session.is_some(),
            last_sync_ms: inner.state.last_sync_ms,
            pending: if inner.state.account.is_some() {
                self.pending(&inner.state).unwrap_or(inner.pending)
            } else {
                0
            },
            conflicts: inner.state.conflicts.clone(),
            offline: inner.offline.clone(),
        }
    }

    /// A pinned client of the configured server, checked to be the same
    /// server (its id) as when it was connected.
    pub(crate) async fn open_server(server: &ServerConfig) -> Result<SyncClient, SyncdError> {
        let client = SyncClient::new(&server.url, &server.pin).map_err(client_error)?;
        let info = client.info().await.map_err(client_error)?;
        if info.server_id != server.server_id {
            return Err(SyncdError::Hostile(format!(
                "the server at {} says it is server {}, not {} (the one this profile connected to): another server or a replaced database",
                server.url, info.server_id, server.server_id
            )));
        }
        Ok(client)
    }

    /// Signs this device in: a challenge the broker signs.
    pub(crate) async fn sign_in(
        &self,
        client: &SyncClient,
        account: &str,
        device: &str,
    ) -> Result<SyncClient, SyncdError> {
        let broker = self.broker.clone();
        let signed = client
            .sign_in_with(account, device, |body| async move {
                match broker
                    .call(BrokerRequest::SyncSignChallenge {
                        challenge: sign::encode(&body),
                    })
                    .await
                {
                    Ok(BrokerResponse::Signature(s)) => Ok(s),
                    Ok(other) => Err(ClientError::Protocol(format!(
                        "the broker answered {other:?} to a challenge"
                    ))),
                    // Carried out of the closure as a transport error and
                    // reported as the broker's below.
                    Err(e) => Err(ClientError::Transport(format!("broker: {e}"))),
                }
            })
            .await;
        match signed {
            Ok(c) => Ok(c),
            Err(ClientError::Transport(t)) if t.starts_with("broker: ") => {
                Err(SyncdError::Broker(t["broker: ".len()..].to_string()))
            }
            Err(e) => Err(client_error(e)),
        }
    }

    async fn connect(&self, account: &str, device: &str) -> Result<SyncdResponse, SyncdError> {
        if !gatehouse_membership::card::valid_account_name(account) {
            return Err(SyncdError::Invalid {
                what: "account name".into(),
                reason: format!("{account:?} is not 1–64 of A-Z a-z 0-9 . _ -"),
            });
        }
        if !valid_device(device) {
            return Err(SyncdError::Invalid {
                what: "device name".into(),
                reason: format!("{device:?} is not 1–64 of A-Z a-z 0-9 . _ -"),
            });
        }
        // Not while a sync runs (it would write back the state it started with).
        let _one = self.sync_lock.lock().await;
        // `sync connect` may have just written the server file.
        let server = config::load_server(&self.root)
            .map_err(SyncdError::Local)?
            .ok_or(SyncdError::NotConfigured)?;
        let result = self.connect_to(&server, account, device).await;
        let mut inner = self.inner.lock().await;
        inner.server = Some(server);
        match result {
            Ok((session, registered, server_id)) => {
                inner.state.account = Some(account.into());
                inner.state.device = Some(device.into());
                inner.session = Some(session);
                inner.offline = None;
                self.save_state(&inner.state)?;
                Ok(SyncdResponse::Connected {
                    account: account.into(),
                    server_id,
                    registered,
                })
            }
            Err(e) => {
                if let SyncdError::Offline(why) = &e {
                    inner.offline = Some(why.clone());
                }
                Err(e)
            }
        }
    }

    async fn connect_to(
        &self,
        server: &ServerConfig,
        account: &str,
        device: &str,
    ) -> Result<(SyncClient, bool, String), SyncdError> {
        let client = Self::open_server(server).await?;
        let card = match self
            .broker
            .call(BrokerRequest::SyncCard {
                account: account.into(),
            })
            .await
            .map_err(broker_error)?
        {
            BrokerResponse::Card(c) => c,
            other => return Err(broker_error(format!("unexpected answer {other:?}"))),
        };
        let registered = match client.register(card.clone()).await {
            Ok(_) => true,
            Err(e) if e.code() == Some(ErrorCode::Conflict) => false,
            Err(e) => return Err(client_error(e)),
        };
        let session = match self.sign_in(&client, account, device).await {
            Ok(s) => s,
            Err(SyncdError::Server(why)) if !registered => {
                return Err(SyncdError::Server(format!(
                    "the account name {account:?} is registered on this server with another card (this account's challenge answer was refused: {why})"
                )));
            }
            Err(e) => return Err(e),
        };
        // A name registered earlier must carry this account's card.
        let info = session.account(account).await.map_err(client_error)?;
        if info.card.0 != card {
            return Err(SyncdError::Hostile(format!(
                "the server shows another card for {account:?} (fingerprint {})",
                info.fingerprint
            )));
        }
        Ok((session, registered, server.server_id.clone()))
    }

    async fn put_bundle(&self, b: &KeyBundleOut) -> Result<(), SyncdError> {
        let session = self
            .inner
            .lock()
            .await
            .session
            .clone()
            .ok_or(SyncdError::NotConnected)?;
        session
            .put_bundle(&PutBundle {
                kdf: KdfParams {
                    algorithm: "argon2id".into(),
                    salt: Bytes(b.kdf.salt.clone()),
                    m_kib: b.kdf.m_kib,
                    t: b.kdf.t,
                    p: b.kdf.p,
                },
                verifier: Bytes(b.verifier.clone()),
                bundle: Bytes(b.sealed.clone()),
            })
            .await
            .map_err(client_error)?;
        Ok(())
    }

    async fn dispatch(
        &self,
        peer: &PeerIdentity,
        req: SyncdRequest,
    ) -> Result<SyncdResponse, SyncdError> {
        let person = matches!(peer.role, PeerRole::Cli | PeerRole::Ui);
        match req {
            SyncdRequest::Status => Ok(SyncdResponse::Status(Box::new(self.status().await))),
            SyncdRequest::Subscribe => Ok(SyncdResponse::Subscribed),
            SyncdRequest::Connect { .. } | SyncdRequest::SyncNow | SyncdRequest::PutBundle(_)
                if !person =>
            {
                Err(SyncdError::Forbidden {
                    role: peer.role,
                    what: "connect or sync (a person's tools only)".into(),
                })
            }
            SyncdRequest::Connect { account, device } => self.connect(&account, &device).await,
            SyncdRequest::SyncNow => Ok(SyncdResponse::Synced(self.sync_now().await?)),
            SyncdRequest::PutBundle(b) => {
                self.put_bundle(&b).await?;
                Ok(SyncdResponse::BundleStored)
            }
        }
    }
}

impl Handler<Syncd> for SyncService {
    async fn handle(
        &self,
        peer: &PeerIdentity,
        _conn: u64,
        req: SyncdRequest,
    ) -> Result<SyncdResponse, SyncdError> {
        self.dispatch(peer, req).await
    }

    fn subscribes(&self, req: &SyncdRequest) -> bool {
        matches!(req, SyncdRequest::Subscribe)
    }

    fn take_events(&self, _conn: u64) -> Option<Events<SyncEvent>> {
        Some(Events::Broadcast(self.events.subscribe()))
    }
}
