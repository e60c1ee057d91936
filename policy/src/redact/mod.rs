//! Redaction: the pattern layer ([`redact_patterns`]) and the combined
//! exact-value + pattern pipeline ([`redact`]). Owns span bookkeeping and the
//! output shape (`••••[redacted:LABEL]`, `{{keychain:NAME}}`). Must never
//! return a known or pattern-matched secret in its output, never grow text
//! beyond [`max_redacted_len`], and never hold secret values longer than a
//! call (the exact layer's values live in [`exact::ExactSecrets`]).
//!
//! **Span offsets are byte offsets into the *output* text** (`Redacted::text`),
//! so a UI can highlight the masks; `text[start..end]` is the mask or
//! reference that replaced the secret.

pub mod exact;
mod patterns;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Mask prefix used by the pattern layer.
pub const MASK: &str = "••••";

/// One replaced region (offsets in the output text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Start byte offset in the output text.
    pub start: usize,
    /// End byte offset (exclusive) in the output text.
    pub end: usize,
    /// Rule that matched (`pattern.snmp-community`, `exact.base64` …).
    pub rule_id: String,
    /// Label shown in the mask (`snmp-community`) or the reference name.
    pub label: String,
}

/// Redacted text and what was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redacted {
    /// The text with secrets replaced.
    pub text: String,
    /// Replaced regions, in order, non-overlapping.
    pub spans: Vec<Span>,
}

/// Upper bound on the output length for an input of `n` bytes: every
/// replaced region covers at least 4 input bytes and is replaced by at most
/// 64 bytes, so output ≤ 16 × input.
pub fn max_redacted_len(n: usize) -> usize {
    n.saturating_mul(16)
}

/// A hit in input coordinates. Borrows its label and reference from the
/// engine that found it, so finding allocates nothing per hit.
#[derive(Debug, Clone)]
pub(crate) struct Hit<'a> {
    pub start: usize,
    pub end: usize,
    pub rule_id: &'static str,
    /// Label shown in the mask, or the reference name.
    pub label: &'a str,
    /// What replaces the region.
    pub repl: Repl<'a>,
}

/// Replacement text of a [`Hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repl<'a> {
    /// The pattern layer's mask for this label (see [`mask`]).
    Mask(&'static str),
    /// A known value's reference (`{{keychain:NAME}}`).
    Reference(&'a str),
}

impl Repl<'_> {
    fn len(self) -> usize {
        match self {
            Repl::Mask(label) => MASK.len() + "[redacted:]".len() + label.len(),
            Repl::Reference(r) => r.len(),
        }
    }
    fn push_to(self, out: &mut String) {
        match self {
            Repl::Mask(label) => {
                out.push_str(MASK);
                out.push_str("[redacted:");
                out.push_str(label);
                out.push(']');
            }
            Repl::Reference(r) => out.push_str(r),
        }
    }
}

/// Sort, drop overlaps (earlier/longer wins), apply into `out` (cleared
/// first). Returns spans in output coordinates, plus the (input_start,
/// input_end, cumulative delta) map.
pub(crate) fn apply_into(
    text: &str,
    mut hits: Vec<Hit<'_>>,
    out: &mut String,
) -> (Vec<Span>, Vec<(usize, usize, isize)>) {
    hits.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    // room for every replacement that grows the text: no reallocation
    let growth: usize = hits
        .iter()
        .map(|h| h.repl.len().saturating_sub(h.end.saturating_sub(h.start)))
        .sum();
    out.clear();
    out.reserve(text.len() + growth);
    let mut spans = Vec::with_capacity(hits.len());
    let mut edits = Vec::with_capacity(hits.len());
    let mut pos = 0;
    let mut delta: isize = 0;
    for h in hits {
        if h.start < pos
            || h.end <= h.start
            || h.end > text.len()
            || !text.is_char_boundary(h.start)
            || !text.is_char_boundary(h.end)
        {
            continue;
        }
        out.push_str(&text[pos..h.start]);
        let s = out.len();
        h.repl.push_to(out);
        spans.push(Span {
            start: s,
            end: out.len(),
            rule_id: h.rule_id.to_string(),
            label: h.label.to_string(),
        });
        delta += h.repl.len() as isize - (h.end - h.start) as isize;
        edits.push((h.start, h.end, delta));
        pos = h.end;
    }
    out.push_str(&text[pos..]);
    (spans, edits)
}

/// [`apply_into`] a new string.
pub(crate) fn apply(
    text: &str,
    hits: Vec<Hit<'_>>,
) -> (String, Vec<Span>, Vec<(usize, usize, isize)>) {
    let mut out = String::new();
    let (spans, edits) = apply_into(text, hits, &mut out);
    (out, spans, edits)
}

/// Pattern layer only: masks secret-shaped text.
pub fn redact_patterns(text: &str) -> Redacted {
    let hits = patterns::find(text);
    let (text, spans, _) = apply(text, hits);
    Redacted { text, spans }
}

/// Both layers: exact known values first (replaced by their reference, also
/// inside words, URL-encoded, base64-encoded, or split by a line wrap), then
/// the pattern layer on what remains. References are never re-masked.
pub fn redact(text: &str, exact: &exact::ExactSecrets) -> Redacted {
    let hits1 = exact.find(text);
    if hits1.is_empty() {
        return redact_patterns(text);
    }
    // the intermediate text (known values replaced, patterns not yet
    // masked) lives in a per-thread buffer, reused without page faults and
    // zeroized after every call
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut t1) => {
            let (spans1, _) = apply_into(text, hits1, &mut t1);
            let r = redact_patterns_after(&t1, spans1);
            // zero what was written (not the whole capacity: a short line
            // after a long text costs only its own length)
            let mut bytes = std::mem::take(&mut *t1).into_bytes();
            let n = bytes.len();
            bytes[..n].zeroize();
            bytes.clear();
            *t1 = String::from_utf8(bytes).unwrap_or_default();
            r
        }
        Err(_) => {
            let (t1, spans1, _) = apply(text, hits1);
            let r = redact_patterns_after(&t1, spans1);
            let mut t1 = t1;
            t1.zeroize();
            r
        }
    })
}

thread_local! {
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Pattern layer over text an exact layer already redacted (e.g. the
/// broker's output): `spans` are that layer's spans in `text`; they are kept
/// unmasked, shifted into the final output, and merged with the pattern spans.
pub fn redact_patterns_after(text: &str, spans: Vec<Span>) -> Redacted {
    let spans1 = spans;
    // kept regions sorted by start, with the running maximum of their ends,
    // so each pattern hit is checked for overlap by a binary search
    let mut kept: Vec<(usize, usize)> = spans1.iter().map(|s| (s.start, s.end)).collect();
    kept.sort_unstable();
    let mut max_end = 0;
    let kept_max_end: Vec<usize> = kept
        .iter()
        .map(|k| {
            max_end = max_end.max(k.1);
            max_end
        })
        .collect();
    let hits2: Vec<Hit> = patterns::find(text)
        .into_iter()
        .filter(|h| {
            // regions starting before the hit ends; any of them ending after it starts?
            let k = kept.partition_point(|s| s.0 < h.end);
            k == 0 || kept_max_end[k - 1] <= h.start
        })
        .collect();
    let (t2, spans2, edits) = apply(text, hits2);
    let mut spans: Vec<Span> = spans1
        .into_iter()
        .map(|mut s| {
            // edits are in input order: the last one ending at or before s
            let k = edits.partition_point(|e| e.1 <= s.start);
            let d = if k == 0 { 0 } else { edits[k - 1].2 };
            s.start = (s.start as isize + d).max(0) as usize;
            s.end = (s.end as isize + d).max(0) as usize;
            s
        })
        .chain(spans2)
        .collect();
    spans.sort_by_key(|s| s.start);
    Redacted { text: t2, spans }
}
