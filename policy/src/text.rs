//! Small text helpers shared by the engines: quote-aware tokenising and
//! splitting, case-insensitive prefix tests. Must never allocate per byte or
//! panic on any UTF-8 input (all slicing is at ASCII boundaries).

/// Split `s` at ASCII whitespace, keeping `"…"` (and `'…'` when `single` is
/// set) together. Returns slices of `s`. An unterminated quote runs to the end.
pub(crate) fn tokens(s: &str, single: bool) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut quote: u8 = 0;
        while i < b.len() {
            let c = b[i];
            if quote != 0 {
                if c == quote {
                    quote = 0;
                } else if c == b'\\' && quote == b'"' {
                    i += 1;
                }
            } else if c == b'"' || (single && c == b'\'') {
                quote = c;
            } else if c.is_ascii_whitespace() {
                break;
            }
            i += 1;
        }
        out.push(&s[start..i.min(b.len())]);
    }
    out
}

/// Positions of `sep` outside double quotes.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut last = 0;
    let mut q = false;
    for (i, &c) in b.iter().enumerate() {
        if c == b'"' {
            q = !q;
        } else if c == sep && !q {
            parts.push(&s[last..i]);
            last = i + 1;
        }
    }
    parts.push(&s[last..]);
    parts
}

/// Case-insensitive "`word` starts with `prefix`".
pub(crate) fn starts_with_ci(word: &str, prefix: &str) -> bool {
    word.len() >= prefix.len()
        && word.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Remove one layer of matching surrounding quotes.
pub(crate) fn unquote(s: &str) -> &str {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &t[1..t.len() - 1]
    } else if !b.is_empty() && (b[0] == b'"' || b[0] == b'\'') {
        &t[1..]
    } else {
        t
    }
}

/// Parse a leading unsigned number (saturating); None if no digits.
pub(crate) fn num(s: &str) -> Option<u64> {
    let mut v: u64 = 0;
    let mut any = false;
    for c in s.bytes() {
        if c.is_ascii_digit() {
            any = true;
            v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
        } else {
            break;
        }
    }
    any.then_some(v)
}

/// Split a line at every [`crate::rules::COMPOUND_SEPARATORS`] outside double
/// quotes (a `)` closing a `$(` also ends a part). Returns the parts and the
/// separators met, in order. A line without separators is one part.
pub(crate) fn split_compound(s: &str) -> (Vec<&str>, Vec<&'static str>) {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut seps = Vec::new();
    let mut last = 0;
    let mut q = false;
    let mut open_subst = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two = b.get(i + 1).copied();
        let sep: Option<(&'static str, usize)> = if c == b'"' {
            q = !q;
            None
        } else if q {
            None
        } else {
            match (c, two) {
                (b';', _) => Some((";", 1)),
                (b'&', Some(b'&')) => Some(("&&", 2)),
                (b'|', Some(b'|')) => Some(("||", 2)),
                (b'`', _) => Some(("`", 1)),
                (b'$', Some(b'(')) => {
                    open_subst += 1;
                    Some(("$(", 2))
                }
                (b')', _) if open_subst > 0 => {
                    open_subst -= 1;
                    Some(("$(", 1))
                }
                _ => None,
            }
        };
        match sep {
            Some((name, len)) => {
                parts.push(&s[last..i]);
                if !seps.contains(&name) {
                    seps.push(name);
                }
                i += len;
                last = i;
            }
            None => i += 1,
        }
    }
    parts.push(&s[last..]);
    (parts, seps)
}

/// A case-insensitive keyword index for unique-prefix lookups (how device
/// CLIs resolve abbreviations), built once per keyword list. Keys are
/// ordered by their lower-case bytes; most comparisons are on the first 8
/// bytes packed in a number.
#[derive(Default)]
pub(crate) struct CiIndex {
    /// (first 8 lower-case bytes, big-endian and zero-padded; lower-case
    /// key; index in the list)
    sorted: Vec<(u64, String, usize)>,
}

/// What a word selects in a [`CiIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CiMatch {
    /// A key equal to the word, ignoring ASCII case: its first index.
    Exact(usize),
    /// The one key the word is a prefix of.
    Unique(usize),
    /// No key starts with the word.
    None,
    /// Several keys start with the word (or the word is too long to look
    /// up here): the caller scans the list in order.
    Many,
}

/// The first 8 bytes of `b` as a big-endian number, zero-padded: ordering
/// by it, then by the whole bytes, is the bytes' lexicographic order.
fn head8(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(a)
}

impl CiIndex {
    /// Index `keys` (list order is kept in the returned indexes).
    pub(crate) fn new<'k>(keys: impl IntoIterator<Item = (usize, &'k str)>) -> CiIndex {
        let mut sorted: Vec<(u64, String, usize)> = keys
            .into_iter()
            .map(|(i, k)| {
                let k = k.to_ascii_lowercase();
                (head8(k.as_bytes()), k, i)
            })
            .collect();
        sorted.sort();
        CiIndex { sorted }
    }

    /// Look `word` up: exact key (case-insensitive) first, else the keys it
    /// is a prefix of. An empty word is [`CiMatch::Many`] (left to the caller).
    pub(crate) fn lookup(&self, word: &str) -> CiMatch {
        if word.is_empty() {
            return CiMatch::Many;
        }
        let mut buf = [0u8; 64];
        let Some(lower) = buf.get_mut(..word.len()) else {
            return CiMatch::Many;
        };
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        let lower: &[u8] = lower;
        let head = head8(lower);
        let lo = self
            .sorted
            .partition_point(|(h, k, _)| *h < head || (*h == head && k.as_bytes() < lower));
        let prefixed = self.sorted[lo..]
            .iter()
            .take_while(|(_, k, _)| k.as_bytes().starts_with(lower))
            .count();
        if prefixed > 0 && self.sorted[lo].1.as_bytes() == lower {
            // equal keys sort by index: the first is the list's first
            return CiMatch::Exact(self.sorted[lo].2);
        }
        match prefixed {
            0 => CiMatch::None,
            1 => CiMatch::Unique(self.sorted[lo].2),
            _ => CiMatch::Many,
        }
    }
}
