//! Exact-value layer: a pure engine the broker runs with the secret values
//! it alone knows. Owns the variants searched for (raw, URL-encoded, base64 at
//! every alignment, split by a terminal line wrap) and their references.
//! Must never expose a value (no Debug of values, no accessor) and zeroizes
//! its own copies of the values on drop.
//!
//! Limitation: the aho-corasick automaton's internal tables encode the
//! patterns and are freed, not zeroized, by that library; the broker should
//! keep this engine inside its secret-memory process only.

use super::Hit;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use zeroize::{Zeroize, Zeroizing};

/// Values shorter than this are not searched (they would match everywhere).
pub const MIN_VALUE_LEN: usize = 6;
const MAX_REF_LEN: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    Url,
    Base64,
}

/// Builder: add `(reference name, value)` pairs, then [`build`](Self::build).
#[derive(Default)]
pub struct ExactSecretsBuilder {
    entries: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl ExactSecretsBuilder {
    /// Add a keychain secret: replaced by `{{keychain:NAME}}`.
    pub fn add(&mut self, name: &str, value: Vec<u8>) -> &mut Self {
        let n: String = name
            .chars()
            .filter(|c| !c.is_control() && *c != '}')
            .take(MAX_REF_LEN)
            .collect();
        self.entries
            .push((format!("{{{{keychain:{n}}}}}"), Zeroizing::new(value)));
        self
    }

    /// Add a value replaced by an explicit reference text (truncated to 64 bytes).
    pub fn add_with_reference(&mut self, reference: &str, value: Vec<u8>) -> &mut Self {
        let r: String = reference
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_REF_LEN)
            .collect();
        self.entries.push((r, Zeroizing::new(value)));
        self
    }

    /// Prebuild the automata. Values shorter than [`MIN_VALUE_LEN`] are skipped.
    pub fn build(&mut self) -> ExactSecrets {
        let entries = std::mem::take(&mut self.entries);
        let mut pats: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut info: Vec<(usize, Kind)> = Vec::new();
        let mut filter = vec![0u64; 1 << 14].into_boxed_slice(); // 2^20 bits
        let mut max_len = 0;
        let mut skipped = 0;
        for (idx, (_, v)) in entries.iter().enumerate() {
            if v.len() < MIN_VALUE_LEN {
                skipped += 1;
                continue;
            }
            max_len = max_len.max(v.len());
            pats.push(Zeroizing::new(v.to_vec()));
            info.push((idx, Kind::Raw));
            for k in 1..v.len() {
                for key in split_keys(&v[..k], &v[k..]) {
                    set_bit(&mut filter, key);
                }
            }
            for enc in url_variants(v) {
                pats.push(enc);
                info.push((idx, Kind::Url));
            }
            for enc in b64_variants(v) {
                pats.push(enc);
                info.push((idx, Kind::Base64));
            }
        }
        let ac = if pats.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(pats.iter().map(|p| p.as_slice()))
                .ok()
        };
        drop(pats);
        ExactSecrets {
            ac,
            info,
            entries,
            filter,
            max_len,
            skipped,
        }
    }
}

fn url_variants(v: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out = Vec::new();
    for upper in [true, false] {
        let mut e = Zeroizing::new(Vec::with_capacity(v.len() * 3));
        for &b in v {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                e.push(b);
            } else {
                let hex = if upper {
                    b"0123456789ABCDEF"
                } else {
                    b"0123456789abcdef"
                };
                e.extend_from_slice(&[b'%', hex[(b >> 4) as usize], hex[(b & 15) as usize]]);
            }
        }
        if e.as_slice() != v
            && !out
                .iter()
                .any(|o: &Zeroizing<Vec<u8>>| o.as_slice() == e.as_slice())
        {
            out.push(e);
        }
    }
    out
}

fn b64(data: &[u8], url: bool) -> Zeroizing<Vec<u8>> {
    let a: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut o = Zeroizing::new(Vec::with_capacity(data.len().div_ceil(3) * 4));
    for ch in data.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
            | u32::from(*ch.get(2).unwrap_or(&0));
        let k = ch.len() + 1;
        for i in 0..4 {
            if i < k {
                o.push(a[((n >> (18 - 6 * i)) & 63) as usize]);
            } else if !url {
                o.push(b'=');
            }
        }
    }
    o
}

/// Base64 of the value at each of the 3 alignments inside a longer stream:
/// only the characters fully determined by value bytes are kept.
fn b64_variants(v: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for url in [false, true] {
        for k in 0..3usize {
            let mut buf = Zeroizing::new(vec![0u8; k]);
            buf.extend_from_slice(v);
            let enc = b64(&buf, url);
            let full = buf.len() / 3;
            let start = if k == 0 { 0 } else { 4 };
            let end = full * 4;
            if end > start + 8 {
                let mid = Zeroizing::new(enc[start..end].to_vec());
                if !out.iter().any(|o| o.as_slice() == mid.as_slice()) {
                    out.push(mid);
                }
            }
            if k == 0 {
                let whole = Zeroizing::new(
                    enc.iter()
                        .copied()
                        .filter(|&c| c != b'=')
                        .collect::<Vec<u8>>(),
                );
                if whole.len() >= 8 && !out.iter().any(|o| o.as_slice() == whole.as_slice()) {
                    out.push(whole);
                }
            }
        }
    }
    out
}

/// Filter keys for a split between `a` (before the wrap) and `b` (after).
fn split_keys(a: &[u8], b: &[u8]) -> [u64; 3] {
    let tail2 = |s: &[u8]| -> u64 {
        match s.len() {
            0 => 0,
            1 => u64::from(s[0]) | 0x1_0000,
            _ => u64::from(s[s.len() - 2]) << 8 | u64::from(s[s.len() - 1]) | 0x2_0000,
        }
    };
    let head2 = |s: &[u8]| -> u64 {
        match s.len() {
            0 => 0,
            1 => u64::from(s[0]) | 0x1_0000,
            _ => u64::from(s[0]) << 8 | u64::from(s[1]) | 0x2_0000,
        }
    };
    let a1 = &a[a.len().saturating_sub(1)..];
    let b1 = &b[..b.len().min(1)];
    [
        tail2(a) << 20 | head2(b),
        tail2(a1) << 20 | head2(b),
        tail2(a) << 20 | head2(b1),
    ]
}

fn hash(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44) as usize // 20 bits
}

fn set_bit(f: &mut [u64], key: u64) {
    let h = hash(key);
    f[h >> 6] |= 1 << (h & 63);
}

fn get_bit(f: &[u64], key: u64) -> bool {
    let h = hash(key);
    f[h >> 6] & (1 << (h & 63)) != 0
}

/// Prebuilt exact-value matcher. Values are zeroized on drop.
pub struct ExactSecrets {
    ac: Option<AhoCorasick>,
    info: Vec<(usize, Kind)>,
    entries: Vec<(String, Zeroizing<Vec<u8>>)>,
    filter: Box<[u64]>,
    max_len: usize,
    skipped: usize,
}

impl std::fmt::Debug for ExactSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactSecrets")
            .field("values", &self.entries.len())
            .field("skipped_short", &self.skipped)
            .finish()
    }
}

impl Drop for ExactSecrets {
    fn drop(&mut self) {
        for (_, v) in &mut self.entries {
            v.zeroize();
        }
        self.filter.zeroize();
    }
}

impl ExactSecrets {
    /// Start a builder.
    pub fn builder() -> ExactSecretsBuilder {
        ExactSecretsBuilder::default()
    }

    /// An engine with no values.
    pub fn empty() -> ExactSecrets {
        ExactSecretsBuilder::default().build()
    }

    /// Number of values searched for.
    pub fn len(&self) -> usize {
        self.entries.len() - self.skipped
    }

    /// True when no value is searched for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values that were too short to search for (see [`MIN_VALUE_LEN`]).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    fn hit(&self, start: usize, end: usize, idx: usize, kind: Kind, wrapped: bool) -> Hit {
        let r = &self.entries[idx].0;
        let rule_id = match (kind, wrapped) {
            (_, true) => "exact.wrapped",
            (Kind::Raw, _) => "exact.value",
            (Kind::Url, _) => "exact.url-encoded",
            (Kind::Base64, _) => "exact.base64",
        };
        let label = r
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .to_string();
        Hit {
            start,
            end,
            rule_id,
            label,
            repl: r.clone(),
        }
    }

    /// Hits in input coordinates, snapped outward to char boundaries.
    pub(crate) fn find(&self, text: &str) -> Vec<Hit> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let b = text.as_bytes();
        let mut hits = Vec::new();
        for m in ac.find_iter(b) {
            let (idx, kind) = self.info[m.pattern().as_usize()];
            let (s, e) = snap(text, m.start(), m.end());
            hits.push(self.hit(s, e, idx, kind, false));
        }
        // values split by a terminal line wrap
        let max = self.max_len;
        let mut buf: Vec<u8> = Vec::new();
        for nl in memchr::memchr_iter(b'\n', b) {
            let cr = nl > 0 && b[nl - 1] == b'\r';
            let before_end = if cr { nl - 1 } else { nl };
            let a = &b[before_end.saturating_sub(max)..before_end];
            let c = &b[nl + 1..(nl + 1 + max).min(b.len())];
            if a.is_empty()
                || c.is_empty()
                || !split_keys(a, c).iter().any(|k| get_bit(&self.filter, *k))
            {
                continue;
            }
            buf.clear();
            buf.extend_from_slice(a);
            buf.extend_from_slice(c);
            let j = a.len();
            for m in ac.find_iter(&buf) {
                let (idx, kind) = self.info[m.pattern().as_usize()];
                if kind != Kind::Raw || m.start() >= j || m.end() <= j {
                    continue;
                }
                let s = before_end - (j - m.start());
                let e = nl + 1 + (m.end() - j);
                let (s, e) = snap(text, s, e);
                hits.push(self.hit(s, e, idx, kind, true));
            }
        }
        buf.zeroize();
        hits
    }
}

fn snap(t: &str, mut s: usize, mut e: usize) -> (usize, usize) {
    while s > 0 && !t.is_char_boundary(s) {
        s -= 1;
    }
    while e < t.len() && !t.is_char_boundary(e) {
        e += 1;
    }
    (s, e.min(t.len()))
}
