//! TLS for the server: rustls (ring provider) with a certificate and key
//! from PEM files, or a self-signed certificate made at start whose SHA-256
//! fingerprint clients pin; and [`TlsListener`], which hands axum only
//! connections whose handshake completed.
//!
//! Owns: loading and generating certificates (the fingerprint format is
//! the client's, `gatehouse_syncclient::fingerprint`).
//! Must never: serve plaintext HTTP, or let one slow handshake hold up accepting others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub use gatehouse_syncclient::{fingerprint, install_provider};

/// A certificate chain and key, with the leaf's fingerprint.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: String,
}

impl Identity {
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity> {
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificates in {}", cert.display()))?;
        let leaf = chain
            .first()
            .with_context(|| format!("no certificate in {}", cert.display()))?;
        let fingerprint = fingerprint(leaf);
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the private key in {}", key.display()))?;
        Ok(Identity {
            chain,
            key,
            fingerprint,
        })
    }

    /// A fresh self-signed certificate for `names` (DNS names or IP addresses);
    /// also returns the PEM of certificate and key so a caller can keep them.
    pub fn self_signed(names: &[String]) -> Result<(Identity, String, String)> {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .context("making a self-signed certificate")?;
        let der = ck.cert.der().clone();
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("self-signed key: {e}"))?;
        let fingerprint = fingerprint(&der);
        Ok((
            Identity {
                chain: vec![der],
                key,
                fingerprint,
            },
            ck.cert.pem(),
            ck.signing_key.serialize_pem(),
        ))
    }

    pub fn server_config(self) -> Result<Arc<ServerConfig>> {
        install_provider();
        let mut cfg = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)
            .context("the certificate and key do not form a usable TLS identity")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Accepts TCP connections and completes TLS handshakes concurrently; axum
/// gets only finished TLS streams.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, cfg: Arc<ServerConfig>) -> TlsListener {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = mpsc::channel(256);
        let acceptor = TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            loop {
                let (sock, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(_) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = sock.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await
                    {
                        let _ = tx.send((tls, addr)).await;
                    }
                });
            }
        });
        TlsListener { rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (never, while the runtime runs): park.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
