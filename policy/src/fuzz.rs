//! Shared entry points for the cargo-fuzz targets and the corpus-replay
//! test. Owns the invariants the fuzzers check; must never do I/O.

use crate::{ExactSecrets, Vendor, classify, max_redacted_len, redact, redact_patterns};
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
