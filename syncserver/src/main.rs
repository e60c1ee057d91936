//! `gatehouse-sync-server`: serves the sync API over HTTPS.
//!
//! ```text
//! gatehouse-sync-server [--listen ADDR] [--db sqlite:PATH | --db postgres://…]
//!                       (--tls-cert CERT.pem --tls-key KEY.pem | --self-signed [--name NAME]…)
//! ```
//! Prints `listening on https://ADDR` and, for every mode, the certificate's
//! SHA-256 fingerprint (clients pin it: `gatehouse sync connect URL --pin FP`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use gatehouse_sync_server::{store, tls};

#[derive(Parser)]
#[command(
    name = "gatehouse-sync-server",
    about = "Gatehouse team sync server (HTTPS)"
)]
struct Args {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Storage: `sqlite:PATH` (the default backend) or `postgres://USER@HOST/DB`
    /// (several servers may share one PostgreSQL database).
    #[arg(long, default_value = "sqlite:gatehouse-sync.sqlite")]
    db: String,
    /// PEM certificate chain.
    #[arg(long, requires = "tls_key", conflicts_with = "self_signed")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Make a self-signed certificate at start and print its SHA-256 fingerprint.
    #[arg(long)]
    self_signed: bool,
    /// Names for the self-signed certificate (default: localhost, 127.0.0.1).
    #[arg(long = "name")]
    names: Vec<String>,
    /// Write the self-signed certificate and key as PEM into this directory.
    #[arg(long)]
    write_cert: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let identity = match (&a.tls_cert, &a.tls_key, a.self_signed) {
        (Some(c), Some(k), false) => tls::Identity::from_pem_files(c, k)?,
        (None, None, true) => {
            let names = if a.names.is_empty() {
                vec!["localhost".to_string(), "127.0.0.1".to_string()]
            } else {
                a.names.clone()
            };
            let (id, cert_pem, key_pem) = tls::Identity::self_signed(&names)?;
            if let Some(dir) = &a.write_cert {
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join("cert.pem"), cert_pem)?;
                write_private(&dir.join("key.pem"), key_pem.as_bytes())?;
            }
            id
        }
        _ => bail!("give --tls-cert and --tls-key, or --self-signed"),
    };
    let fingerprint = identity.fingerprint.clone();
    let cfg = identity.server_config()?;
    let store = store::open(&a.db)
        .await
        .with_context(|| format!("opening the database {}", redact(&a.db)))?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    // A reader that stops reading (closes the pipe) must not stop the
    // server: write errors on stdout are ignored.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "gatehouse-sync-server: listening on https://{addr}");
    let _ = writeln!(out, "certificate sha256 fingerprint: {fingerprint}");
    let _ = writeln!(out, "storage: {}", redact(&a.db));
    let _ = out.flush();
    drop(out);
    gatehouse_sync_server::serve(listener, cfg, store).await
}

/// The database URL without a password.
fn redact(db: &str) -> String {
    match (db.find("://"), db.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &db[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &db[..s + 3], user, &db[at + 1..])
        }
        _ => db.to_string(),
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
