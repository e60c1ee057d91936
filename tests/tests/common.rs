// Shared by the harness_* integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use gatehouse_tests::{Scratch, install};

pub const PROBE: &str = env!("CARGO_BIN_EXE_gatehouse-harness-probe");

/// Installs the probe into the scratch install dir as `name`.
pub fn install_probe(s: &Scratch, name: &str) -> PathBuf {
    install(s, PROBE.as_ref(), name).expect("install probe")
}

/// Random printable marker (hex of 16 bytes from the kernel).
pub fn random_marker(tag: &str) -> String {
    let mut b = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("GH-{tag}-{hex}")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn check(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// `key=value` lines printed by `probe whoami`.
pub fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}
