//! memscan: finds a secret held by another uid's process, does not invent
//! one, finds needles across chunk boundaries, and reports memfd_secret
//! pages as unreadable (EIO) instead of scanning them.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use gatehouse_tests::memscan::{read_maps, scan_process};
use gatehouse_tests::proc::{ChildGuard, LineReader};
use gatehouse_tests::{Scratch, users};

fn hold(s: &Scratch, mode: &str, secret: &[u8]) -> (ChildGuard, String) {
    let probe = install_probe(s, "probe");
    let mut g = ChildGuard::spawn(
        s.command(&probe)
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    )
    .unwrap();
    {
        let mut stdin = g.stdin.take().unwrap();
        stdin.write_all(secret).unwrap();
    }
    let mut lines = LineReader::spawn(g.stdout.take().unwrap());
    let line = lines.next_line(Duration::from_secs(10)).unwrap();
    (g, line)
}

fn addr(line: &str) -> u64 {
    u64::from_str_radix(line.trim_start_matches("ready 0x"), 16).unwrap()
}

#[test]
fn finds_a_held_secret_and_nothing_that_is_not_there() {
    if !users::is_root() {
        eprintln!("SKIPPED: reading another process's memory needs root here");
        return;
    }
    let s = Scratch::primary().unwrap();
    let secret = random_marker("held");
    let absent = random_marker("absent");
    let (g, line) = hold(&s, "hold", secret.as_bytes());
    let at = addr(&line);
    let r = scan_process(g.pid(), &[secret.as_bytes(), absent.as_bytes()]).unwrap();
    assert!(r.found(0), "{r:#?}");
    assert!(
        r.hits_of(0).any(|h| h.address == at),
        "the probe's own buffer at {at:#x} is among {:?}",
        r.hits_of(0).collect::<Vec<_>>()
    );
    assert!(!r.found(1), "{:?}", r.hits_of(1).collect::<Vec<_>>());
    assert!(r.regions_scanned > 3 && r.bytes_scanned > 100_000, "{r:?}");
    assert!(r.regions_skipped >= 1, "vvar at least");
}

#[test]
fn finds_needles_straddling_chunk_boundaries() {
    // Scan our own process: a 4 MiB buffer is its own anonymous mapping, so
    // its offset from the mapping start (where chunks start) is known.
    let mut buf = vec![b'.'; 4 << 20];
    let needle = random_marker("straddle");
    let n = needle.len();
    let start = buf.as_ptr() as u64;
    let map = read_maps(std::process::id())
        .unwrap()
        .into_iter()
        .find(|m| m.contains(start))
        .unwrap();
    let chunk = 1u64 << 20;
    let mut expect = Vec::new();
    for k in [1u64, 2] {
        let boundary = map.start + k * chunk;
        let at = boundary - (n as u64 / 2) - k; // straddles the boundary
        let off = (at - start) as usize;
        buf[off..off + n].copy_from_slice(needle.as_bytes());
        expect.push(at);
    }
    // One ending right before a boundary, one starting right on one: the
    // chunk overlap must not report either twice.
    let at = map.start + 3 * chunk - n as u64;
    let off = (at - start) as usize;
    buf[off..off + n].copy_from_slice(needle.as_bytes());
    expect.push(at);
    let at = map.start + 3 * chunk;
    let off = (at - start) as usize;
    buf[off..off + n].copy_from_slice(needle.as_bytes());
    expect.push(at);
    let r = scan_process(std::process::id(), &[needle.as_bytes()]).unwrap();
    let mut got: Vec<u64> = r
        .hits_of(0)
        .map(|h| h.address)
        .filter(|a| map.contains(*a))
        .collect();
    got.sort();
    expect.sort();
    assert_eq!(got, expect, "each placed copy exactly once");
    std::hint::black_box(&buf);
}

#[test]
fn memfd_secret_pages_are_reported_unreadable_not_scanned() {
    if !users::is_root() {
        eprintln!("SKIPPED: reading another process's memory needs root here");
        return;
    }
    let s = Scratch::primary().unwrap();
    let secret = random_marker("secretmem");
    let (g, line) = hold(&s, "hold-secret", secret.as_bytes());
    if let Some(errno) = line.strip_prefix("unsupported ") {
        eprintln!("SKIPPED: memfd_secret unavailable on this kernel (errno {errno})");
        return;
    }
    let at = addr(&line);
    let r = scan_process(g.pid(), &[secret.as_bytes()]).unwrap();
    assert!(!r.found(0), "secret memory must not be readable: {r:#?}");
    let eio: Vec<_> = r.eio_regions().collect();
    assert!(
        eio.iter().any(|u| (u.start..u.end).contains(&at)),
        "EIO region covering {at:#x}: {:#?}",
        r.unreadable
    );
    assert!(r.bytes_unreadable >= 4096);
    assert!(
        eio.iter().any(|u| u.mapping.contains("secretmem")),
        "{eio:?}"
    );
}
