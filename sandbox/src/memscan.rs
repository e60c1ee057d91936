//! Scanning another process's memory for secrets.
//!
//! [`scan_process`] reads `/proc/PID/maps` and then every readable mapping
//! through `/proc/PID/mem` (needs ptrace-read access: root, or the same uid
//! with a dumpable target), searching for byte strings. It is how tests check
//! that a key or a keychain secret is *not* lying around in a daemon after
//! use or after sign-out — and that it *is* found when it should be, so a
//! broken scanner cannot pass those tests.
//!
//! * Mappings without read permission and the kernel's `[vvar]`,
//!   `[vvar_vclock]` and `[vsyscall]` pages are skipped (counted in
//!   [`ScanReport::regions_skipped`]).
//! * A mapping (or part of it) that fails to read is recorded in
//!   [`ScanReport::unreadable`] with the error, not treated as fatal: pages of
//!   a `memfd_secret` mapping fail with EIO because they are removed from the
//!   kernel's direct map — that is the point of secret memory.
//! * Needles spanning chunk boundaries are found (chunks overlap).

#![allow(missing_docs)] // field names say what they are; see the module docs

use std::fs::File;
use std::os::unix::fs::FileExt;

type Result<T> = std::io::Result<T>;

fn err(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

const CHUNK: usize = 1 << 20;
const SKIP_NAMES: &[&str] = &["[vvar]", "[vvar_vclock]", "[vsyscall]"];

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// e.g. `rw-p`
    pub perms: String,
    pub offset: u64,
    pub inode: u64,
    /// Path, `[heap]`, `[stack]`, `/secretmem (deleted)`, or empty for
    /// anonymous memory.
    pub name: String,
}

impl Mapping {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    pub fn readable(&self) -> bool {
        self.perms.starts_with('r')
    }
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// A needle found in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index into the `needles` argument.
    pub needle: usize,
    pub address: u64,
    /// The mapping's name (empty for anonymous memory).
    pub mapping: String,
    pub perms: String,
}

/// A range that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub start: u64,
    pub end: u64,
    pub mapping: String,
    /// The OS error, e.g. `EIO`.
    pub errno: Option<i32>,
    pub error: String,
}

/// The result of a scan.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub pid: u32,
    pub hits: Vec<Hit>,
    /// Readable mappings that were read (fully or partly).
    pub regions_scanned: usize,
    pub bytes_scanned: u64,
    /// Mappings not attempted: no read permission, or vvar/vsyscall.
    pub regions_skipped: usize,
    /// Ranges that failed to read (memfd_secret pages: EIO).
    pub unreadable: Vec<Unreadable>,
    pub bytes_unreadable: u64,
}

impl ScanReport {
    /// Whether needle `i` was found anywhere.
    pub fn found(&self, i: usize) -> bool {
        self.hits.iter().any(|h| h.needle == i)
    }
    /// Hits of needle `i`.
    pub fn hits_of(&self, i: usize) -> impl Iterator<Item = &Hit> {
        self.hits.iter().filter(move |h| h.needle == i)
    }
    /// Unreadable ranges whose read failed with EIO.
    pub fn eio_regions(&self) -> impl Iterator<Item = &Unreadable> {
        self.unreadable
            .iter()
            .filter(|u| u.errno == Some(libc::EIO))
    }
}

/// Parses `/proc/PID/maps`.
pub fn read_maps(pid: u32) -> Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| err(format!("reading /proc/{pid}/maps: {e}")))?;
    text.lines().map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Result<Mapping> {
    let mut it = line.splitn(6, ' ');
    let bad = |what: &str| err(format!("{what} in maps line: {line}"));
    let mut next = || it.next().ok_or_else(|| bad("short"));
    let range = next()?;
    let perms = next()?.to_string();
    let offset = u64::from_str_radix(next()?, 16).map_err(|_| bad("bad offset"))?;
    let _dev = next()?;
    let inode = next()?.parse().map_err(|_| bad("bad inode"))?;
    let name = it.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-').ok_or_else(|| bad("bad range"))?;
    Ok(Mapping {
        start: u64::from_str_radix(s, 16).map_err(|_| bad("bad start"))?,
        end: u64::from_str_radix(e, 16).map_err(|_| bad("bad end"))?,
        perms,
        offset,
        inode,
        name,
    })
}

/// Scans every readable mapping of `pid` for each of `needles`.
pub fn scan_process(pid: u32, needles: &[&[u8]]) -> Result<ScanReport> {
    if needles.iter().any(|n| n.is_empty()) {
        return Err(err("empty needle".into()));
    }
    let maps = read_maps(pid)?;
    let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| {
        err(format!(
            "opening /proc/{pid}/mem (needs ptrace access): {e}"
        ))
    })?;
    let overlap = needles.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    let mut s = Scanner {
        needles,
        finders: needles.iter().map(memchr::memmem::Finder::new).collect(),
        overlap,
        buf: vec![0u8; CHUNK + overlap],
        carry: 0,
        bad: None,
        report: ScanReport {
            pid,
            ..Default::default()
        },
    };
    for m in &maps {
        if !m.readable() || SKIP_NAMES.contains(&m.name.as_str()) {
            s.report.regions_skipped += 1;
            continue;
        }
        s.report.regions_scanned += 1;
        s.carry = 0;
        let mut addr = m.start;
        while addr < m.end {
            let want = ((m.end - addr) as usize).min(CHUNK);
            if s.read(&mem, addr, want).is_ok() {
                s.scan(m, addr, want);
            } else {
                // Retry page by page: one unreadable page must not hide its
                // readable neighbours.
                let mut p = addr;
                while p < addr + want as u64 {
                    let n = ((addr + want as u64 - p) as usize).min(PAGE);
                    match s.read(&mem, p, n) {
                        Ok(()) => s.scan(m, p, n),
                        Err(e) => s.unreadable(m, p, n, e),
                    }
                    p += n as u64;
                }
            }
            addr += want as u64;
        }
        s.flush_bad();
    }
    s.flush_bad();
    Ok(s.report)
}

const PAGE: usize = 4096;

struct Scanner<'a> {
    needles: &'a [&'a [u8]],
    finders: Vec<memchr::memmem::Finder<'a>>,
    overlap: usize,
    /// `buf[..carry]` is the tail of the previous piece of the same mapping.
    buf: Vec<u8>,
    carry: usize,
    bad: Option<Unreadable>,
    report: ScanReport,
}

impl Scanner<'_> {
    fn read(&mut self, mem: &File, addr: u64, len: usize) -> std::io::Result<()> {
        mem.read_exact_at(&mut self.buf[self.carry..self.carry + len], addr)
    }

    fn scan(&mut self, m: &Mapping, addr: u64, len: usize) {
        self.flush_bad();
        self.report.bytes_scanned += len as u64;
        let end = self.carry + len;
        let window = &self.buf[..end];
        let base = addr - self.carry as u64;
        for (i, f) in self.finders.iter().enumerate() {
            for pos in f.find_iter(window) {
                // Hits wholly inside the carried tail were reported before.
                if pos + self.needles[i].len() <= self.carry {
                    continue;
                }
                self.report.hits.push(Hit {
                    needle: i,
                    address: base + pos as u64,
                    mapping: m.name.clone(),
                    perms: m.perms.clone(),
                });
            }
        }
        let keep = self.overlap.min(end);
        self.buf.copy_within(end - keep..end, 0);
        self.carry = keep;
    }

    fn unreadable(&mut self, m: &Mapping, addr: u64, len: usize, e: std::io::Error) {
        self.carry = 0;
        let end = addr + len as u64;
        if let Some(u) = &mut self.bad
            && u.errno == e.raw_os_error()
            && u.end == addr
        {
            u.end = end;
            return;
        }
        self.flush_bad();
        self.bad = Some(Unreadable {
            start: addr,
            end,
            mapping: m.name.clone(),
            errno: e.raw_os_error(),
            error: e.to_string(),
        });
    }

    fn flush_bad(&mut self) {
        if let Some(u) = self.bad.take() {
            self.report.bytes_unreadable += u.end - u.start;
            self.report.unreadable.push(u);
        }
    }
}
