// Shared by the records_* integration tests (included with `mod records_common;`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use anyhow::{Result, bail};
use gatehouse_tests::broker::{BrokerFixture, Options};

pub const PASSPHRASE: &str = "records-test-passphrase";

/// A broker with an account and organization `noc`, driven by the real CLI.
pub fn signed_in() -> Result<BrokerFixture> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?)?;
    ok(f.cli(&["org", "create", "noc"], "")?)?;
    Ok(f)
}

pub fn ok(o: Output) -> Result<String> {
    if !o.status.success() {
        bail!(
            "command failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The command must fail; returns its stderr.
pub fn fail(o: Output) -> Result<String> {
    if o.status.success() {
        bail!(
            "command was expected to fail:\nstdout: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&o.stderr).into_owned())
}

pub fn json(o: Output) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&ok(o)?)?)
}

pub fn db_path(f: &BrokerFixture) -> PathBuf {
    f.home.join("records.sqlite")
}

/// The database file and its WAL, as raw bytes.
pub fn raw_db(f: &BrokerFixture) -> Vec<u8> {
    let mut out = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{}{suffix}", db_path(f).display())) {
            out.extend(b);
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Opens the store directly, as a hostile sync server (or a test) would.
/// Files SQLite creates as root are handed back to the test user on drop.
pub struct RawDb<'a> {
    pub conn: Option<rusqlite::Connection>,
    f: &'a BrokerFixture,
}

impl<'a> RawDb<'a> {
    pub fn open(f: &'a BrokerFixture) -> Result<RawDb<'a>> {
        Ok(RawDb {
            conn: Some(rusqlite::Connection::open(db_path(f))?),
            f,
        })
    }
    pub fn c(&self) -> &rusqlite::Connection {
        self.conn.as_ref().expect("open")
    }
    pub fn count(&self, table: &str) -> Result<i64> {
        Ok(self
            .c()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    }
}

impl Drop for RawDb<'_> {
    fn drop(&mut self) {
        drop(self.conn.take());
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", db_path(self.f).display()));
            if p.exists() {
                let _ = self.f.scratch.give(&p);
            }
        }
    }
}

/// Writes a file the test user can read, in the scratch root.
pub fn user_file(f: &BrokerFixture, name: &str, contents: &str) -> Result<String> {
    Ok(f.scratch
        .write_user_file(name, contents, 0o600)?
        .display()
        .to_string())
}

/// The id printed by `created KIND NAME (id ID)`.
pub fn created_id(out: &str) -> Result<String> {
    for l in out.lines() {
        if let Some(rest) = l.split("(id ").nth(1) {
            return Ok(rest.split(')').next().unwrap_or("").to_string());
        }
    }
    bail!("no id in {out:?}")
}
