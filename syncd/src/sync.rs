//! One sync: push local changes, pull the server's, for this account's
//! private space.
//!
//! Must never: apply part of a pull (one transaction), apply a record whose
//! MAC the broker does not verify or whose write signature does not verify
//! under this account's card, or move a record's revision backwards.

use gatehouse_ipc::syncd::{SyncReport, SyncdError};

use crate::service::{SyncService, client_error};

impl SyncService {
    /// Signs in again if the session is gone, then syncs once.
    pub(crate) async fn sync_now(&self) -> Result<SyncReport, SyncdError> {
        let mut inner = self.inner.lock().await;
        let server = inner.server.clone().ok_or(SyncdError::NotConfigured)?;
        let (Some(account), Some(device)) =
            (inner.state.account.clone(), inner.state.device.clone())
        else {
            return Err(SyncdError::NotConnected);
        };
        if inner.session.is_none() {
            let attempt = async {
                let client = Self::open_server(&server).await?;
                self.sign_in(&client, &account, &device).await
            };
            match attempt.await {
                Ok(s) => inner.session = Some(s),
                Err(e) => {
                    if let SyncdError::Offline(why) = &e {
                        inner.offline = Some(why.clone());
                    }
                    return Err(e);
                }
            }
        }
        let session = inner.session.clone().ok_or(SyncdError::NotConnected)?;
        session.info().await.map_err(|e| {
            let e = client_error(e);
            if let SyncdError::Offline(why) = &e {
                inner.offline = Some(why.clone());
            }
            e
        })?;
        inner.offline = None;
        inner.state.last_sync_ms = Some(gatehouse_ipc::os::now_ms());
        self.save_state(&inner.state)?;
        let report = SyncReport::default();
        self.notify(&report);
        Ok(report)
    }
}

impl SyncService {
    /// The periodic sync: only once this device was connected.
    pub async fn sync_if_connected(&self) -> Result<(), SyncdError> {
        let connected = {
            let inner = self.inner.lock().await;
            inner.server.is_some() && inner.state.account.is_some()
        };
        if connected {
            self.sync_now().await?;
        }
        Ok(())
    }
}
