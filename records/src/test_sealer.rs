//! An in-process stand-in for the broker in unit tests: keyed per scope,
//! binds ciphertexts to their full address, MACs records. Not real crypto
//! (SHA-256 keystream + tag); never used outside `cfg(test)`.

use std::collections::HashMap;

use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{
    BrokerError, FieldAddress, KeyScope, MacItem, OpenFailure, OpenItem, SealItem, VerifyItem,
};
use sha2::{Digest, Sha256};

use crate::sealer::{Sealer, SealerError};

#[derive(Default)]
pub struct TestSealer {
    keys: HashMap<KeyScope, [u8; 32]>,
    pub keychain: Vec<String>,
    pub calls: u64,
}

fn lp(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

impl TestSealer {
    fn key(&mut self, scope: &KeyScope) -> [u8; 32] {
        *self.keys.entry(scope.clone()).or_insert_with(|| {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).expect("entropy");
            k
        })
    }

    fn keystream(key: &[u8; 32], addr: &FieldAddress, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut ctr = 0u64;
        while out.len() < len {
            let mut h = Sha256::new();
            h.update(key);
            lp(&mut h, addr.record_id.as_bytes());
            h.update(ctr.to_le_bytes());
            out.extend(h.finalize());
            ctr += 1;
        }
        out.truncate(len);
        out
    }

    fn tag(key: &[u8; 32], addr: &FieldAddress, body: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(key);
        lp(&mut h, format!("{:?}", addr.scope).as_bytes());
        lp(&mut h, addr.record_kind.as_bytes());
        lp(&mut h, addr.record_id.as_bytes());
        lp(&mut h, addr.field.as_bytes());
        lp(&mut h, &addr.binding);
        lp(&mut h, body);
        h.finalize().into()
    }

    fn mac_of(&mut self, i: &MacItem) -> Vec<u8> {
        let key = self.key(&i.scope);
        let mut h = Sha256::new();
        h.update(key);
        h.update(b"mac");
        lp(&mut h, format!("{:?}", i.scope).as_bytes());
        lp(&mut h, i.record_kind.as_bytes());
        lp(&mut h, i.record_id.as_bytes());
        lp(&mut h, &i.content);
        h.finalize().to_vec()
    }
}

impl Sealer for TestSealer {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        self.calls += 1;
        Ok(items
            .into_iter()
            .map(|i| {
                let key = self.key(&i.address.scope);
                let ks = Self::keystream(&key, &i.address, i.plaintext.len());
                let body: Vec<u8> = i
                    .plaintext
                    .expose()
                    .iter()
                    .zip(ks)
                    .map(|(a, b)| a ^ b)
                    .collect();
                let mut out = Self::tag(&key, &i.address, &body).to_vec();
                out.extend(body);
                out
            })
            .collect())
    }

    fn open(&mut self, items: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError> {
        self.calls += 1;
        let mut out = Vec::new();
        for i in items {
            let key = self.key(&i.address.scope);
            let fail = |failure| {
                SealerError::Remote(BrokerError::OpenFailed {
                    address: i.address.to_string(),
                    failure,
                })
            };
            if i.sealed.len() < 32 {
                return Err(fail(OpenFailure::Truncated));
            }
            let (tag, body) = i.sealed.split_at(32);
            if tag != Self::tag(&key, &i.address, body) {
                return Err(fail(OpenFailure::Tampered));
            }
            let ks = Self::keystream(&key, &i.address, body.len());
            out.push(SecretBytes::new(
                body.iter().zip(ks).map(|(a, b)| a ^ b).collect(),
            ));
        }
        Ok(out)
    }

    fn mac(&mut self, items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        self.calls += 1;
        Ok(items.iter().map(|i| self.mac_of(i)).collect())
    }

    fn verify(&mut self, items: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError> {
        self.calls += 1;
        Ok(items
            .iter()
            .map(|v| self.mac_of(&v.item) == v.mac)
            .collect())
    }

    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError> {
        self.calls += 1;
        Ok(self.keychain.clone())
    }
}
