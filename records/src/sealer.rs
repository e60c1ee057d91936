//! [`Sealer`]: what the store needs from the key broker — seal, open, MAC and
//! verify in batches, and the names of keychain entries — and
//! [`BrokerSealer`], the one implementation over the broker's IPC client
//! shared by the CLI (and later the UI and daemons).
//!
//! Owns: splitting large batches into frames the IPC accepts, and turning
//! broker answers into [`SealerError`]. Must never: hold a key, cache a
//! plaintext, or retry a request on its own.

use std::time::Duration;

use gatehouse_ipc::broker::{
    Broker, BrokerError, BrokerRequest, BrokerResponse, MacItem, OpenItem, SealItem, VerifyItem,
};
use gatehouse_ipc::client::{CallError, Client, DEFAULT_TIMEOUT};
use gatehouse_ipc::{Layout, SecretBytes};

#[derive(Debug, thiserror::Error)]
pub enum SealerError {
    /// The broker could not be reached, or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// The broker answered with an error.
    #[error("{0}")]
    Remote(BrokerError),
    #[error("unexpected broker response: {0}")]
    Unexpected(String),
}

impl From<CallError<BrokerError>> for SealerError {
    fn from(e: CallError<BrokerError>) -> SealerError {
        match e {
            CallError::Remote(r) => SealerError::Remote(r),
            CallError::Transport(t) => SealerError::Transport(t.to_string()),
        }
    }
}

/// Field crypto and record MACs as the store uses them. Each method is one
/// logical batch (an implementation may split it into several requests).
pub trait Sealer {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError>;
    /// Opens every item or fails on the first that does not open.
    fn open(&mut self, items: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError>;
    fn mac(&mut self, items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError>;
    /// One bool per item: whether its MAC verifies.
    fn verify(&mut self, items: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError>;
    /// Names of the entries in the OS keychain (for checking `keychain:NAME` references).
    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError>;
}

/// Counts the requests a sealer makes (benchmarks and tests: listing must make none).
pub struct Counting<S> {
    pub inner: S,
    pub calls: u64,
    pub items: u64,
}

impl<S: Sealer> Counting<S> {
    pub fn new(inner: S) -> Counting<S> {
        Counting {
            inner,
            calls: 0,
            items: 0,
        }
    }
}

impl<S: Sealer> Sealer for Counting<S> {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        self.calls += 1;
        self.items += items.len() as u64;
        self.inner.seal(items)
    }
    fn open(&mut self, items: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError> {
        self.calls += 1;
        self.items += items.len() as u64;
        self.inner.open(items)
    }
    fn mac(&mut self, items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        self.calls += 1;
        self.items += items.len() as u64;
        self.inner.mac(items)
    }
    fn verify(&mut self, items: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError> {
        self.calls += 1;
        self.items += items.len() as u64;
        self.inner.verify(items)
    }
    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError> {
        self.calls += 1;
        self.inner.keychain_names()
    }
}

/// Keeps each request well under the IPC frame limit (8 MiB).
const MAX_BATCH_BYTES: usize = 2 << 20;
const MAX_BATCH_ITEMS: usize = 4096;

fn chunks<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for it in items {
        let s = size(&it) + 128;
        if !cur.is_empty() && (bytes + s > MAX_BATCH_BYTES || cur.len() >= MAX_BATCH_ITEMS) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += s;
        cur.push(it);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The broker over its socket, with a small runtime of its own (callers are
/// synchronous; an async caller runs it on a blocking thread).
pub struct BrokerSealer {
    rt: tokio::runtime::Runtime,
    client: Client<Broker>,
    requests: u64,
    /// Set by [`BrokerSealer::reveal`]: `open` sends `RevealFields` with
    /// this proof of presence (the values are for a person to see).
    reveal: Option<Option<SecretBytes>>,
}

impl BrokerSealer {
    /// Connects to the broker of the profile `layout`.
    pub fn connect(layout: &Layout) -> Result<BrokerSealer, SealerError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SealerError::Transport(format!("runtime: {e}")))?;
        let client = rt
            .block_on(Client::<Broker>::connect(&layout.runtime, DEFAULT_TIMEOUT))
            .map_err(|e| SealerError::Transport(e.to_string()))?;
        Ok(BrokerSealer::from_parts(rt, client))
    }

    pub fn from_parts(rt: tokio::runtime::Runtime, client: Client<Broker>) -> BrokerSealer {
        BrokerSealer {
            rt,
            client,
            requests: 0,
            reveal: None,
        }
    }

    /// From now on `open` asks for values to show to a person
    /// (`RevealFields`), with `presence` (the account passphrase) when the
    /// caller has it: the broker asks for it before revealing a credential
    /// to the CLI of an installed system.
    pub fn reveal(&mut self, presence: Option<SecretBytes>) {
        self.reveal = Some(presence);
    }

    pub fn set_timeout(&mut self, t: Duration) {
        self.client.set_timeout(t);
    }

    /// Any other broker request (org list, keychain set, …).
    pub fn call(&mut self, req: BrokerRequest) -> Result<BrokerResponse, SealerError> {
        self.requests += 1;
        Ok(self.rt.block_on(self.client.call(req))?)
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn server_pid(&self) -> u32 {
        self.client.welcome().server_pid
    }
}

fn unexpected(r: BrokerResponse) -> SealerError {
    SealerError::Unexpected(format!("{r:?}"))
}

impl Sealer for BrokerSealer {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in chunks(items, |i| i.plaintext.len()) {
            let n = chunk.len();
            match self.call(BrokerRequest::SealFields { items: chunk })? {
                BrokerResponse::Sealed(s) if s.len() == n => out.extend(s.into_iter().map(|s| s.0)),
                r => return Err(unexpected(r)),
            }
        }
        Ok(out)
    }

    fn open(&mut self, items: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in chunks(items, |i| i.sealed.len()) {
            let n = chunk.len();
            let req = match &self.reveal {
                Some(presence) => BrokerRequest::RevealFields {
                    items: chunk,
                    presence: presence.clone(),
                },
                None => BrokerRequest::OpenFields { items: chunk },
            };
            match self.call(req)? {
                BrokerResponse::Opened(p) if p.len() == n => out.extend(p),
                r => return Err(unexpected(r)),
            }
        }
        Ok(out)
    }

    fn mac(&mut self, items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in chunks(items, |i| i.content.len()) {
            let n = chunk.len();
            match self.call(BrokerRequest::MacRecords { items: chunk })? {
                BrokerResponse::Macs(m) if m.len() == n => out.extend(m.into_iter().map(|m| m.0)),
                r => return Err(unexpected(r)),
            }
        }
        Ok(out)
    }

    fn verify(&mut self, items: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in chunks(items, |i| i.item.content.len()) {
            let n = chunk.len();
            match self.call(BrokerRequest::VerifyRecords { items: chunk })? {
                BrokerResponse::Verified(v) if v.len() == n => out.extend(v),
                r => return Err(unexpected(r)),
            }
        }
        Ok(out)
    }

    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError> {
        match self.call(BrokerRequest::KeychainList)? {
            BrokerResponse::Keychain(entries) => Ok(entries.into_iter().map(|e| e.name).collect()),
            r => Err(unexpected(r)),
        }
    }
}

/// A sealer that does no cryptography at all: "ciphertext" = plaintext and
/// empty MACs. Only for the benchmark's plaintext-only baseline, in a
/// throwaway database; never for records anyone keeps.
pub struct PlaintextBaseline;

impl Sealer for PlaintextBaseline {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        Ok(items
            .into_iter()
            .map(|i| i.plaintext.expose().to_vec())
            .collect())
    }
    fn open(&mut self, items: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError> {
        Ok(items
            .into_iter()
            .map(|i| SecretBytes::new(i.sealed))
            .collect())
    }
    fn mac(&mut self, items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        Ok(items.iter().map(|_| Vec::new()).collect())
    }
    fn verify(&mut self, items: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError> {
        Ok(items.iter().map(|i| i.mac.is_empty()).collect())
    }
    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError> {
        Ok(Vec::new())
    }
}
