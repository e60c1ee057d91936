//! `gatehouse-sync-server`: the team sync server. It stores, per
//! organization, the membership log, key grants wrapped to members, and
//! record envelopes (plaintext-allowed fields, ciphertexts, MACs, writers'
//! signatures), and per account its private records' envelopes — and
//! serves them over HTTPS to members. It is treated as hostile by clients:
//! it holds no key that opens a field, and everything it returns is checked
//! by the client against signatures and the membership log.
//!
//! Modules: [`store`] (the one storage trait, SQLite and PostgreSQL),
//! [`http`] (the API and its checks), [`bundle`] (the two-secret key
//! bundle endpoints and their rate limit), [`relay`] (the live-sharing
//! relay: signed participant lists, sealed frames), [`memo`] (rows that never change,
//! remembered between requests), [`refusal`] (errors), [`tls`]
//! (rustls, self-signed mode, fingerprints), [`client`] (re-exported from
//! `gatehouse-syncclient`: the pinned HTTPS client syncd and the CLI use),
//! [`pgcluster`] (a throwaway PostgreSQL cluster for tests and benchmarks),
//! [`fixture`] (accounts, org logs and records made as a client makes them,
//! for tests and benchmarks).
//! Must never: hold or derive a key that opens a sealed field or a grant.

pub mod bundle;
/// The pinned HTTPS client (its own crate, `gatehouse-syncclient`).
pub use gatehouse_syncclient as client;
pub mod fixture;
pub mod http;
pub mod memo;
pub mod pgcluster;
pub mod refusal;
pub mod relay;
pub mod store;
pub mod tls;

use std::sync::Arc;

/// Starts serving on `listener` with `tls`, until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    store: Arc<dyn store::Store>,
) -> anyhow::Result<()> {
    let server_id = store.server_id().await?;
    let app = http::router(Arc::new(http::AppState::new(store, server_id)));
    let listener = tls::TlsListener::new(listener, tls);
    axum::serve(listener, app).await?;
    Ok(())
}
