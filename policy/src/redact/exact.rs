//! Exact-value layer: a pure engine the broker runs with the secret values
//! it alone knows. Owns the variants searched for (raw, URL/percent/form
//! encoded, base64 at every alignment, backslash-escaped, RouterOS-export
//! and JSON escaped, doubled quotes, shell-quoted, HTML entities, each also
//! split by a terminal line wrap) and their
//! references. Must never expose a value (no Debug of values, no accessor)
//! and zeroizes its own copies of the values, and every table derived from
//! them, on drop.
//!
//! Search: every variant is at least [`MIN_VALUE_LEN`] (6) bytes long, so
//! one pass tests the 4 bytes at every third text position against a bit
//! filter of the 4-grams at offsets 0..3 of every variant; on a hit, the
//! three possible starts are looked up by their 6-byte prefix and the
//! variants with that prefix compared, longest first — leftmost-longest,
//! non-overlapping. A variant split by a line wrap must
//! straddle a `\n`: only newlines whose neighbouring bytes (up to 3 on each
//! side) can occur around a split of some variant are re-checked, by
//! searching the joined text around them.

use super::{Hit, Repl};
use zeroize::{Zeroize, Zeroizing};

/// Values shorter than this are not searched (they would match everywhere).
pub const MIN_VALUE_LEN: usize = 6;
const MAX_REF_LEN: usize = 64;
/// Length of a variant's key (every variant is at least this long).
const W: usize = MIN_VALUE_LEN;
const KEY_MASK: u64 = (1 << (8 * W)) - 1;
/// The scan tests the 4 bytes at every `G_OFFSETS`-th position against the
/// 4-grams at offsets `0..G_OFFSETS` of every variant (W - 4 + 1 = 3), so
/// every occurrence is seen at one sampled position.
const G_OFFSETS: usize = W - 4 + 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    Url,
    Base64,
    /// Backslash-escaped, doubled quotes, HTML entities: how shells, JSON,
    /// CSV/SQL, RouterOS `export` and web pages print a value.
    Escaped,
}

/// Truncate to at most `max` bytes on a char boundary.
fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
}

/// Builder: add `(reference name, value)` pairs, then [`build`](Self::build).
#[derive(Default)]
pub struct ExactSecretsBuilder {
    entries: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl ExactSecretsBuilder {
    /// Add a keychain secret: replaced by `{{keychain:NAME}}` (NAME truncated
    /// to 64 bytes).
    pub fn add(&mut self, name: &str, value: Vec<u8>) -> &mut Self {
        let mut n: String = name
            .chars()
            .filter(|c| !c.is_control() && *c != '}')
            .collect();
        truncate_bytes(&mut n, MAX_REF_LEN);
        self.entries
            .push((format!("{{{{keychain:{n}}}}}"), Zeroizing::new(value)));
        self
    }

    /// Add a value replaced by an explicit reference text (truncated to 64 bytes).
    pub fn add_with_reference(&mut self, reference: &str, value: Vec<u8>) -> &mut Self {
        let mut r: String = reference.chars().filter(|c| !c.is_control()).collect();
        truncate_bytes(&mut r, MAX_REF_LEN);
        self.entries.push((r, Zeroizing::new(value)));
        self
    }

    /// Prebuild the search tables. Values shorter than [`MIN_VALUE_LEN`] are skipped.
    pub fn build(&mut self) -> ExactSecrets {
        let entries = std::mem::take(&mut self.entries);
        // (entry, kind, bytes) for every variant
        let mut vars: Vec<(usize, Kind, Zeroizing<Vec<u8>>)> = Vec::new();
        let mut skipped = 0;
        for (idx, (_, v)) in entries.iter().enumerate() {
            if v.len() < MIN_VALUE_LEN {
                skipped += 1;
                continue;
            }
            for (kind, form) in variants(v) {
                vars.push((idx, kind, form));
            }
        }
        vars.retain(|v| v.2.len() >= W);
        // group by 6-byte prefix, longest first; equal variants keep the
        // order they were added in (stable sort)
        let mut order: Vec<usize> = (0..vars.len()).collect();
        order.sort_by(|&x, &y| {
            key_at(&vars[x].2, 0)
                .cmp(&key_at(&vars[y].2, 0))
                .then(vars[y].2.len().cmp(&vars[x].2.len()))
        });
        let total: usize = vars.iter().map(|v| v.2.len()).sum();
        let mut bytes = Zeroizing::new(Vec::with_capacity(total));
        let mut pats = Vec::with_capacity(vars.len());
        let gram_bits = (vars.len() * G_OFFSETS * 32)
            .next_power_of_two()
            .clamp(1 << 12, 1 << 22);
        let mut grams = Bits::new(gram_bits);
        let slots_len = (vars.len() * 2).next_power_of_two().max(16);
        let mut slot_keys = vec![0u64; slots_len];
        let mut slot_range = vec![(0u32, 0u32); slots_len];
        let slot_shift = 64 - slots_len.trailing_zeros();
        let splits: usize = vars.iter().map(|v| v.2.len() - 1).sum();
        let mut wrap = Bits::new((splits * 32).next_power_of_two().clamp(1 << 12, 1 << 23));
        let mut before = [0u8; 256];
        let mut after = [0u8; 256];
        let mut max_len = 0;
        let mut g = 0;
        while g < order.len() {
            let key = key_at(&vars[order[g]].2, 0).unwrap_or(0);
            let first = pats.len();
            while g < order.len() && key_at(&vars[order[g]].2, 0) == Some(key) {
                let (entry, kind, v) = &vars[order[g]];
                pats.push(Pat {
                    off: bytes.len(),
                    len: v.len(),
                    entry: *entry,
                    kind: *kind,
                });
                bytes.extend_from_slice(v);
                for o in 0..G_OFFSETS {
                    grams.set(gram_at(v, o));
                }
                max_len = max_len.max(v.len());
                for k in 1..v.len() {
                    let (tl, hl) = (k.min(3), (v.len() - k).min(3));
                    wrap.set(split_key(&v[k - tl..k], &v[k..k + hl]));
                    before[v[k - 1] as usize] = 1;
                    after[v[k] as usize] = 1;
                }
                g += 1;
            }
            let mask = slots_len - 1;
            let mut h = (mix(key) >> slot_shift) as usize;
            while slot_range[h].1 != 0 {
                h = (h + 1) & mask;
            }
            slot_keys[h] = key;
            slot_range[h] = (first as u32, (pats.len() - first) as u32);
        }
        drop(vars);
        let refs = entries
            .iter()
            .map(|(r, _)| {
                let label = r
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .to_string();
                (r.clone(), label)
            })
            .collect();
        drop(entries);
        ExactSecrets {
            refs,
            bytes,
            pats,
            grams,
            slot_keys,
            slot_range,
            slot_shift,
            wrap,
            before,
            after,
            max_len,
            skipped,
        }
    }
}

/// Every form of `v` searched for, each once: the value itself, its
/// URL/percent/form encodings, base64 and the escaped forms.
fn variants(v: &[u8]) -> Vec<(Kind, Zeroizing<Vec<u8>>)> {
    let mut out: Vec<(Kind, Zeroizing<Vec<u8>>)> = vec![(Kind::Raw, Zeroizing::new(v.to_vec()))];
    let groups = [
        (Kind::Url, url_variants(v)),
        (Kind::Base64, b64_variants(v)),
        (Kind::Escaped, escaped_variants(v)),
    ];
    for (kind, forms) in groups {
        for f in forms {
            if !out.iter().any(|o| o.1.as_slice() == f.as_slice()) {
                out.push((kind, f));
            }
        }
    }
    out
}

/// Percent-encodings: every byte but the unreserved ones (RFC 3986), as
/// `encodeURIComponent` does (also keeps `!'()*`), as a path (keeps `/`)
/// and as a form (space as `+`); hex in upper and lower case.
fn url_variants(v: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let styles: [(&[u8], bool); 4] = [(b"", false), (b"!'()*", false), (b"/", false), (b"", true)];
    for (keep, form) in styles {
        for upper in [true, false] {
            let hex = if upper {
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            let mut e = Zeroizing::new(Vec::with_capacity(v.len() * 3));
            for &b in v {
                if b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~')
                    || keep.contains(&b)
                {
                    e.push(b);
                } else if form && b == b' ' {
                    e.push(b'+');
                } else {
                    e.extend_from_slice(&[b'%', hex[(b >> 4) as usize], hex[(b & 15) as usize]]);
                }
            }
            if e.as_slice() != v && !out.iter().any(|o| o.as_slice() == e.as_slice()) {
                out.push(e);
            }
        }
    }
    out
}

/// Escaped forms: backslash before `"` and `\` (C, JSON, most CLIs), before
/// `"` only, RouterOS `export` (also `$`, `?`, and `\XX` for bytes outside
/// printable ASCII), JSON with control characters and with non-ASCII as
/// `\uXXXX`, backslash before `'`, doubled `"` (CSV), doubled `'` (SQL),
/// POSIX shell `'\''`, and HTML entities.
fn escaped_variants(v: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    fn map(v: &[u8], f: impl Fn(u8, &mut Vec<u8>)) -> Zeroizing<Vec<u8>> {
        let mut o = Zeroizing::new(Vec::with_capacity(v.len() * 2));
        for &b in v {
            f(b, &mut o);
        }
        o
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
    let json_ctl = |b: u8, o: &mut Vec<u8>| match b {
        b'"' | b'\\' => o.extend_from_slice(&[b'\\', b]),
        b'\n' => o.extend_from_slice(b"\\n"),
        b'\r' => o.extend_from_slice(b"\\r"),
        b'\t' => o.extend_from_slice(b"\\t"),
        0..0x20 => o.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX_LOWER[(b >> 4) as usize],
            HEX_LOWER[(b & 15) as usize],
        ]),
        _ => o.push(b),
    };
    let mut forms = vec![
        map(v, |b, o| {
            if matches!(b, b'"' | b'\\') {
                o.push(b'\\');
            }
            o.push(b);
        }),
        map(v, |b, o| {
            if b == b'"' {
                o.push(b'\\');
            }
            o.push(b);
        }),
        map(v, |b, o| {
            if matches!(b, b'"' | b'\\' | b'$' | b'?') {
                o.extend_from_slice(&[b'\\', b]);
            } else if !(0x20..0x7f).contains(&b) {
                o.extend_from_slice(&[b'\\', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            } else {
                o.push(b);
            }
        }),
        map(v, json_ctl),
        map(v, |b, o| {
            if matches!(b, b'\'' | b'\\') {
                o.push(b'\\');
            }
            o.push(b);
        }),
        map(v, |b, o| {
            o.push(b);
            if b == b'"' {
                o.push(b'"');
            }
        }),
        map(v, |b, o| {
            o.push(b);
            if b == b'\'' {
                o.push(b'\'');
            }
        }),
        map(v, |b, o| {
            if b == b'\'' {
                o.extend_from_slice(b"'\\''");
            } else {
                o.push(b);
            }
        }),
        map(v, |b, o| match b {
            b'&' => o.extend_from_slice(b"&amp;"),
            b'<' => o.extend_from_slice(b"&lt;"),
            b'>' => o.extend_from_slice(b"&gt;"),
            b'"' => o.extend_from_slice(b"&quot;"),
            b'\'' => o.extend_from_slice(b"&#39;"),
            _ => o.push(b),
        }),
    ];
    // JSON with every non-ASCII character as \uXXXX (UTF-16, lower-case hex)
    if let Ok(s) = std::str::from_utf8(v)
        && !s.is_ascii()
    {
        let mut o = Zeroizing::new(Vec::with_capacity(v.len() * 6));
        for ch in s.chars() {
            if ch.is_ascii() {
                json_ctl(ch as u8, &mut o);
            } else {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    o.extend_from_slice(b"\\u");
                    for sh in [12, 8, 4, 0] {
                        o.push(HEX_LOWER[usize::from((*u >> sh) & 15)]);
                    }
                }
            }
        }
        forms.push(o);
    }
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for f in forms {
        if f.as_slice() != v && !out.iter().any(|o| o.as_slice() == f.as_slice()) {
            out.push(f);
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
                // the whole value with its padding (longest first, so the
                // `=` go with it) and without
                let whole = Zeroizing::new(
                    enc.iter()
                        .copied()
                        .filter(|&c| c != b'=')
                        .collect::<Vec<u8>>(),
                );
                for form in [enc, whole] {
                    if form.len() >= 8 && !out.iter().any(|o| o.as_slice() == form.as_slice()) {
                        out.push(form);
                    }
                }
            }
        }
    }
    out
}

/// Key of the 6 bytes at `i` (little-endian), `None` past the end.
#[inline(always)]
fn key_at(b: &[u8], i: usize) -> Option<u64> {
    if let Some(w) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        Some(u64::from_le_bytes(*w) & KEY_MASK)
    } else if i + W <= b.len() {
        let mut a = [0u8; 8];
        a[..W].copy_from_slice(&b[i..i + W]);
        Some(u64::from_le_bytes(a))
    } else {
        None
    }
}

/// The 4 bytes at `o` as a filter key.
fn gram_at(v: &[u8], o: usize) -> u64 {
    u64::from(u32::from_le_bytes([v[o], v[o + 1], v[o + 2], v[o + 3]]))
}

/// Key of a split: up to 3 bytes before the wrap and up to 3 after, with
/// their counts.
fn split_key(t: &[u8], h: &[u8]) -> u64 {
    let mut k = (t.len() as u64) << 56 | (h.len() as u64) << 60;
    for (n, &x) in t.iter().enumerate() {
        k |= u64::from(x) << (8 * n);
    }
    for (n, &x) in h.iter().enumerate() {
        k |= u64::from(x) << (24 + 8 * n);
    }
    k
}

#[inline(always)]
fn mix(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A one-hash bit filter (power-of-two size).
struct Bits {
    words: Vec<u64>,
    shift: u32,
}

impl Bits {
    fn new(bits: usize) -> Bits {
        Bits {
            words: vec![0; bits / 64],
            shift: 64 - bits.trailing_zeros(),
        }
    }
    fn set(&mut self, key: u64) {
        let h = (mix(key) >> self.shift) as usize;
        self.words[h >> 6] |= 1 << (h & 63);
    }
    #[inline(always)]
    fn get(&self, key: u64) -> bool {
        let h = (mix(key) >> self.shift) as usize;
        self.words[h >> 6] & (1 << (h & 63)) != 0
    }
}

/// One searched variant: `bytes[off..off + len]`.
struct Pat {
    off: usize,
    len: usize,
    entry: usize,
    kind: Kind,
}

/// Prebuilt exact-value matcher. Values and derived tables are zeroized on drop.
pub struct ExactSecrets {
    /// (reference, label) per added entry
    refs: Vec<(String, String)>,
    /// all variants, concatenated
    bytes: Zeroizing<Vec<u8>>,
    /// grouped by 6-byte prefix, longest first within a group
    pats: Vec<Pat>,
    /// 4-grams at offsets 0..3 of every variant
    grams: Bits,
    /// open-addressing table: prefix → range of `pats`
    slot_keys: Vec<u64>,
    slot_range: Vec<(u32, u32)>,
    slot_shift: u32,
    /// split keys (3 bytes each side of a line wrap)
    wrap: Bits,
    /// bytes that occur just before / just after a split point
    before: [u8; 256],
    after: [u8; 256],
    max_len: usize,
    skipped: usize,
}

impl std::fmt::Debug for ExactSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactSecrets")
            .field("values", &self.len())
            .field("skipped_short", &self.skipped)
            .finish()
    }
}

impl Drop for ExactSecrets {
    fn drop(&mut self) {
        self.grams.words.zeroize();
        self.slot_keys.zeroize();
        self.wrap.words.zeroize();
        self.before.zeroize();
        self.after.zeroize();
        // `bytes` is Zeroizing
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
        self.refs.len() - self.skipped
    }

    /// True when no value is searched for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values that were too short to search for (see [`MIN_VALUE_LEN`]).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    fn hit(&self, start: usize, end: usize, p: &Pat, wrapped: bool) -> Hit<'_> {
        let (repl, label) = &self.refs[p.entry];
        let rule_id = match (p.kind, wrapped) {
            (_, true) => "exact.wrapped",
            (Kind::Raw, _) => "exact.value",
            (Kind::Url, _) => "exact.url-encoded",
            (Kind::Base64, _) => "exact.base64",
            (Kind::Escaped, _) => "exact.escaped",
        };
        Hit {
            start,
            end,
            rule_id,
            label,
            repl: Repl::Reference(repl),
        }
    }

    /// Variants whose 6-byte prefix is `key`, longest first.
    #[inline]
    fn group(&self, key: u64) -> &[Pat] {
        let mask = self.slot_keys.len() - 1;
        let mut h = (mix(key) >> self.slot_shift) as usize;
        loop {
            let (first, n) = self.slot_range[h];
            if n == 0 {
                return &[];
            }
            if self.slot_keys[h] == key {
                return &self.pats[first as usize..(first + n) as usize];
            }
            h = (h + 1) & mask;
        }
    }

    /// Longest variant starting at `i` (its key is `key`).
    #[inline]
    fn longest_at(&self, b: &[u8], i: usize, key: u64) -> Option<&Pat> {
        self.group(key)
            .iter()
            .find(|p| b[i..].starts_with(&self.bytes[p.off..p.off + p.len]))
    }

    /// Hits in input coordinates, snapped outward to char boundaries.
    pub(crate) fn find(&self, text: &str) -> Vec<Hit<'_>> {
        let mut hits = Vec::new();
        if self.pats.is_empty() {
            return hits;
        }
        self.find_unwrapped(text, &mut hits);
        self.find_wrapped(text, &mut hits);
        hits
    }

    /// Variants in one piece: leftmost-longest, non-overlapping.
    fn find_unwrapped<'a>(&'a self, text: &str, hits: &mut Vec<Hit<'a>>) {
        let b = text.as_bytes();
        let n = b.len();
        let mut i = 0;
        // leftmost-longest: starts i.., sampled 4-grams at i+2, i+5, …
        'scan: while i + W <= n {
            let mut s = i + G_OFFSETS - 1;
            while let Some(g) = b.get(s..).and_then(|r| r.first_chunk::<4>()) {
                if self.grams.get(u64::from(u32::from_le_bytes(*g))) {
                    for p in s + 1 - G_OFFSETS..=s {
                        let Some(key) = key_at(b, p) else { break };
                        if let Some(pat) = self.longest_at(b, p, key) {
                            let (hs, he) = snap(text, p, p + pat.len);
                            hits.push(self.hit(hs, he, pat, false));
                            i = p + pat.len;
                            continue 'scan;
                        }
                    }
                }
                s += G_OFFSETS;
            }
            break;
        }
    }

    /// Variants split by a terminal line wrap (`\n` or `\r\n`).
    fn find_wrapped<'a>(&'a self, text: &str, hits: &mut Vec<Hit<'a>>) {
        let b = text.as_bytes();
        let keep = self.max_len - 1; // bytes of a variant on one side, at most
        let mut buf = Zeroizing::new(Vec::with_capacity(2 * keep));
        for nl in memchr::memchr_iter(b'\n', b) {
            let cr = nl > 0 && b[nl - 1] == b'\r';
            let before_end = if cr { nl - 1 } else { nl };
            if before_end == 0
                || nl + 1 >= b.len()
                || self.before[b[before_end - 1] as usize] == 0
                || self.after[b[nl + 1] as usize] == 0
            {
                continue;
            }
            let a = &b[before_end.saturating_sub(keep)..before_end];
            let c = &b[nl + 1..(nl + 1 + keep).min(b.len())];
            let probe = |tl: usize, hl: usize| {
                tl <= a.len()
                    && hl <= c.len()
                    && self.wrap.get(split_key(&a[a.len() - tl..], &c[..hl]))
            };
            if !(probe(3, 3) || probe(1, 3) || probe(2, 3) || probe(3, 1) || probe(3, 2)) {
                continue;
            }
            buf.clear();
            buf.extend_from_slice(a);
            buf.extend_from_slice(c);
            let j = a.len();
            // leftmost variant that starts before the wrap and ends after it
            for st in 0..j {
                let Some(key) = key_at(&buf, st) else { break };
                if let Some(p) = self.longest_at(&buf, st, key)
                    && st + p.len > j
                {
                    let s = before_end - (j - st);
                    let e = nl + 1 + (st + p.len - j);
                    let (s, e) = snap(text, s, e);
                    hits.push(self.hit(s, e, p, true));
                    break;
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_support::Rng;
    use aho_corasick::{AhoCorasickBuilder, MatchKind};

    /// The one-piece search finds exactly what a leftmost-longest
    /// Aho-Corasick automaton over the same variants finds.
    #[test]
    fn unwrapped_search_matches_reference_automaton() {
        let mut rng = Rng::new(42);
        let mut values: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                let n = 6 + (rng.next_u64() % 20) as usize;
                let mut v = rng.alnum(n).into_bytes();
                if i % 7 == 0 {
                    v.extend_from_slice(b"/+ &=?");
                }
                if i % 11 == 0 {
                    v.extend_from_slice("\"\\$'<é".as_bytes());
                }
                v
            })
            .collect();
        values.push(values[3].clone()); // duplicate value
        let mut longer = values[5].clone();
        longer.extend_from_slice(b"XYZ"); // one value is a prefix of another
        values.push(longer);
        values.push(b"AAAAAAAA".to_vec());
        let mut bld = ExactSecrets::builder();
        let mut pats: Vec<Vec<u8>> = Vec::new();
        let mut info: Vec<(usize, Kind)> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            bld.add(&format!("v{i}"), v.clone());
            for (kind, e) in variants(v) {
                pats.push(e.to_vec());
                info.push((i, kind));
            }
        }
        let e = bld.build();
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&pats)
            .unwrap();
        for round in 0..200 {
            let mut t = String::new();
            while t.len() < 2000 {
                let r = rng.next_u64();
                match r % 6 {
                    0 => {
                        let k = (r >> 8) as usize % pats.len();
                        t.push_str(&String::from_utf8_lossy(&pats[k]));
                    }
                    1 => t.push_str(&rng.alnum((r >> 8) as usize % 9)),
                    2 => t.push_str(" A€ "),
                    3 => t.push('\n'),
                    _ => t.push_str(&rng.alnum(3)),
                }
            }
            let mut got = Vec::new();
            e.find_unwrapped(&t, &mut got);
            let got: Vec<_> = got
                .iter()
                .map(|h| (h.start, h.end, h.repl, h.rule_id))
                .collect();
            let want: Vec<_> = ac
                .find_iter(t.as_bytes())
                .map(|m| {
                    let (idx, kind) = info[m.pattern().as_usize()];
                    let h = e.hit(
                        m.start(),
                        m.end(),
                        &Pat {
                            off: 0,
                            len: 0,
                            entry: idx,
                            kind,
                        },
                        false,
                    );
                    let (s, en) = snap(&t, m.start(), m.end());
                    (s, en, h.repl, h.rule_id)
                })
                .collect();
            assert_eq!(got, want, "round {round}");
        }
    }
}
