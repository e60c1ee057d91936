//! An in-process sealer for unit tests: the broker's own field and record-MAC
//! cryptography (`gatehouse_broker::crypto`, a dev-dependency) over keys held
//! in this process. Cross-process tests use the real broker; this only spares
//! the store's unit tests a daemon. Never used outside `cfg(test)`.

use std::collections::HashMap;

use gatehouse_broker::crypto;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{BrokerError, KeyScope, MacItem, OpenItem, SealItem, VerifyItem};

use crate::sealer::{Sealer, SealerError};

#[derive(Default)]
pub struct TestSealer {
    keys: HashMap<KeyScope, ([u8; 32], [u8; 8])>,
    pub keychain: Vec<String>,
    pub calls: u64,
}

impl TestSealer {
    fn key(&mut self, scope: &KeyScope) -> ([u8; 32], [u8; 8]) {
        *self
            .keys
            .entry(scope.clone())
            .or_insert_with(|| (crypto::random_bytes(), crypto::random_bytes()))
    }
}

impl Sealer for TestSealer {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        self.calls += 1;
        Ok(items
            .into_iter()
            .map(|i| {
                let (key, id) = self.key(&i.address.scope);
                crypto::seal_field(&key, &id, &i.address, i.plaintext.expose())
            })
            .collect())
    }

    fn open(&mut self, items: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError> {
        self.calls += 1;
        let mut out = Vec::new();
        for i in items {
            let (key, _) = self.key(&i.address.scope);
            match crypto::open_field(&key, &i.address, &i.sealed) {
                Ok(p) => out.push(SecretBytes::copy_from(&p)),
                Err(failure) => {
                    return Err(SealerError::Remote(BrokerError::OpenFailed {
                        address: i.address.to_string(),
                        failure,
                    }));
                }
            }
        }
        Ok(out)
    }

    fn mac(&mut self, items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        self.calls += 1;
        Ok(items
            .iter()
            .map(|i| crypto::record_mac(&self.key(&i.scope).0, i).to_vec())
            .collect())
    }

    fn verify(&mut self, items: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError> {
        self.calls += 1;
        Ok(items
            .iter()
            .map(|v| {
                crypto::mac_eq(
                    &crypto::record_mac(&self.key(&v.item.scope).0, &v.item),
                    &v.mac,
                )
            })
            .collect())
    }

    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError> {
        self.calls += 1;
        Ok(self.keychain.clone())
    }
}
