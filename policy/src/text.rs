//! Small text helpers shared by the engines: quote-aware tokenising and
//! splitting, case-insensitive prefix tests. Must never allocate per byte or
//! panic on any UTF-8 input (all slicing is at ASCII boundaries).

/// Split `s` at ASCII whitespace, keeping `"…"` (and `'…'` when `single` is
/// set) together. Returns byte ranges. An unterminated quote runs to the end.
pub(crate) fn tokens(s: &str, single: bool) -> Vec<(usize, usize)> {
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
        out.push((start, i.min(b.len())));
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
