//! Shared entry points for the cargo-fuzz targets and the corpus-replay
//! test. Owns the invariants the fuzzers check; must never do I/O.

use crate::joins::{JoinCorpus, Spacing, check_join, join, joins};
use crate::{Class, ExactSecrets, Vendor, classify, max_redacted_len, redact, redact_patterns};
use std::sync::OnceLock;

/// Classify arbitrary bytes for every vendor (first byte picks nothing; all
/// vendors run). Panics only if an invariant is broken.
pub fn fuzz_classify(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for v in Vendor::ALL {
        let verdict = classify(v, &text);
        let max = verdict.parts.iter().map(|p| p.class).max();
        assert!(
            max.is_none_or(|m| m == verdict.class),
            "class must be the max of the parts"
        );
    }
}

fn fuzz_exact() -> &'static ExactSecrets {
    static E: OnceLock<ExactSecrets> = OnceLock::new();
    E.get_or_init(|| {
        let mut b = ExactSecrets::builder();
        b.add("fuzz-a", b"Fuzz-Secret-Value-1".to_vec());
        b.add("fuzz-b", b"p@ss w/rd&=?".to_vec());
        b.add("fuzz-c", b"AAAAAAAA".to_vec());
        b.build()
    })
}

/// Redact arbitrary bytes with both layers; checks the output-length bound
/// and that spans lie on char boundaries inside the output.
pub fn fuzz_redact(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for r in [redact_patterns(&text), redact(&text, fuzz_exact())] {
        assert!(
            r.text.len() <= max_redacted_len(text.len()),
            "redaction grew beyond the documented bound"
        );
        for s in &r.spans {
            assert!(s.start <= s.end && s.end <= r.text.len());
            assert!(r.text.is_char_boundary(s.start) && r.text.is_char_boundary(s.end));
        }
    }
}

/// Join a read-only and a dangerous command of `corpus` the way `data`
/// picks (vendor, the two commands, the join form, its blanks, and bytes
/// after the second command) and assert the join is never read-only; with
/// nothing after it, a form the vendor honours is dangerous.
pub fn fuzz_joins(corpus: &JoinCorpus, data: &[u8]) {
    let byte = |i: usize| usize::from(data.get(i).copied().unwrap_or(0));
    let Some((vendor, ro, dg)) = corpus.by_vendor.get(byte(0) % Vendor::ALL.len()) else {
        return;
    };
    if ro.is_empty() || dg.is_empty() {
        return;
    }
    let r = &ro[(byte(1) << 8 | byte(2)) % ro.len()];
    let d = &dg[(byte(3) << 8 | byte(4)) % dg.len()];
    let forms = joins(*vendor);
    let form = &forms[byte(5) % forms.len()];
    let spacing = [Spacing::AsIs, Spacing::Tabs, Spacing::Doubled][byte(6) % 3];
    let tail = String::from_utf8_lossy(data.get(7..).unwrap_or(&[]));
    let d = if tail.is_empty() {
        d.clone()
    } else {
        format!("{d} {tail}")
    };
    let Some(joined) = join(form, r, &d, spacing) else {
        return;
    };
    let got = classify(*vendor, &joined).class;
    assert!(
        got != Class::ReadOnly,
        "{vendor}: {joined:?} ({}) is read-only",
        form.name
    );
    if tail.is_empty() {
        assert!(
            check_join(*vendor, form, &joined).is_none(),
            "{vendor}: {joined:?} ({}) is {got}",
            form.name
        );
    }
}
