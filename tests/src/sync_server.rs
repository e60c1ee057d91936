//! A real `gatehouse-sync-server --self-signed` process on loopback, with
//! the URL and certificate pin it prints (build it first:
//! `cargo build -p gatehouse-sync-server`).

use std::process::{Command, Stdio};
use std::time::Duration;

use gatehouse_syncclient::SyncClient;

use crate::{ChildGuard, LineReader, find_binary};

pub struct SyncServerProcess {
    pub child: ChildGuard,
    pub url: String,
    pub pin: String,
}

impl SyncServerProcess {
    /// Starts the server on `db` (`sqlite:PATH` or a PostgreSQL URL).
    pub fn start(db: &str) -> SyncServerProcess {
        Self::start_with(&["--listen", "127.0.0.1:0", "--db", db, "--self-signed"])
    }

    /// Starts the server keeping its self-signed certificate in `cert_dir`,
    /// so [`Self::restart`] serves the same certificate.
    pub fn start_keeping_cert(db: &str, cert_dir: &std::path::Path) -> SyncServerProcess {
        let dir = cert_dir.display().to_string();
        Self::start_with(&[
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--self-signed",
            "--write-cert",
            &dir,
        ])
    }

    /// Starts the server again at `url`'s address with the certificate
    /// [`Self::start_keeping_cert`] kept (the same pin).
    pub fn restart(db: &str, cert_dir: &std::path::Path, url: &str) -> SyncServerProcess {
        let listen = url.trim_start_matches("https://");
        let cert = cert_dir.join("cert.pem").display().to_string();
        let key = cert_dir.join("key.pem").display().to_string();
        Self::start_with(&[
            "--listen",
            listen,
            "--db",
            db,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
    }

    fn start_with(args: &[&str]) -> SyncServerProcess {
        let bin = find_binary("gatehouse-sync-server").unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut cmd).unwrap();
        let mut lines = LineReader::spawn(child.child_mut().stdout.take().unwrap());
        let l = lines
            .wait_for(Duration::from_secs(60), |l| {
                l.contains("listening on https://")
            })
            .unwrap();
        let url = l.split("listening on ").nth(1).unwrap().trim().to_string();
        let f = lines
            .wait_for(Duration::from_secs(10), |l| l.contains("fingerprint: "))
            .unwrap();
        let pin = f.split("fingerprint: ").nth(1).unwrap().trim().to_string();
        assert_eq!(pin.len(), 64, "{f}");
        SyncServerProcess { child, url, pin }
    }

    pub fn client(&self) -> SyncClient {
        SyncClient::new(&self.url, &self.pin).unwrap()
    }
}
