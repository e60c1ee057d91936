//! [`OpenedCache`]: the decrypted-record cache of a long-lived process (UI,
//! daemons). Memory only — there is no way to persist it — and cleared
//! whole on the broker's `SignedOut` event.
//!
//! Owns: keeping opened records by (kind, id) and dropping them (their
//! secrets are zeroized on drop). Must never: write anything to disk, or
//! serve an entry older than the stored revision.

use std::collections::HashMap;

use gatehouse_ipc::broker::BrokerEvent;

use crate::model::Kind;
use crate::store::Opened;

#[derive(Default)]
pub struct OpenedCache {
    entries: HashMap<(Kind, String), Opened>,
}

impl OpenedCache {
    pub fn new() -> OpenedCache {
        OpenedCache::default()
    }

    pub fn put(&mut self, o: Opened) {
        self.entries.insert((o.meta.kind, o.meta.id.clone()), o);
    }

    /// The cached record if it is still at `revision`.
    pub fn get(&self, kind: Kind, id: &str, revision: u64) -> Option<&Opened> {
        self.entries
            .get(&(kind, id.to_string()))
            .filter(|o| o.meta.revision == revision)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every decrypted record.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Feed every broker event here: sign-out clears the cache. Returns
    /// whether it was cleared.
    pub fn on_event(&mut self, e: &BrokerEvent) -> bool {
        if matches!(e, BrokerEvent::SignedOut) {
            self.clear();
            return true;
        }
        false
    }
}
