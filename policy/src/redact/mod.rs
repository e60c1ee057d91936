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

/// A hit in input coordinates.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub rule_id: &'static str,
    pub label: String,
    /// Replacement text (mask or reference).
    pub repl: String,
}

/// Sort, drop overlaps (earlier/longer wins), apply. Returns output and
/// spans in output coordinates, plus the (input_end, cumulative delta) map.
pub(crate) fn apply(
    text: &str,
    mut hits: Vec<Hit>,
) -> (String, Vec<Span>, Vec<(usize, usize, isize)>) {
    hits.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out = String::with_capacity(text.len());
    let mut spans = Vec::new();
    let mut edits = Vec::new();
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
        out.push_str(&h.repl);
        spans.push(Span {
            start: s,
            end: out.len(),
            rule_id: h.rule_id.to_string(),
            label: h.label,
        });
        delta += h.repl.len() as isize - (h.end - h.start) as isize;
        edits.push((h.start, h.end, delta));
        pos = h.end;
    }
    out.push_str(&text[pos..]);
    (out, spans, edits)
}

/// Mask for a pattern label.
pub(crate) fn mask(label: &str) -> String {
    format!("{MASK}[redacted:{label}]")
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
    let (t1, spans1, _) = apply(text, hits1);
    redact_patterns_after(&t1, spans1)
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
