//! Replays policy/corpus/redact.jsonl: zero planted secrets left visible,
//! kept text stays readable, secret-free configs come back unchanged; prints
//! recall and the false-positive rate. Also covers the exact-value layer.

use gatehouse_policy::{ExactSecrets, max_redacted_len, redact, redact_patterns};
use serde_json::Value;

#[test]
fn corpus_redaction() {
    let text = include_str!("../corpus/redact.jsonl");
    let (mut planted, mut leaked, mut clean, mut changed) = (0, Vec::new(), 0, Vec::new());
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        n += 1;
        let c: Value = serde_json::from_str(line).unwrap();
        let input = c["text"].as_str().unwrap();
        let out = redact_patterns(input);
        assert!(out.text.len() <= max_redacted_len(input.len()));
        for s in c["secrets"].as_array().unwrap() {
            planted += 1;
            let s = s.as_str().unwrap();
            if out.text.contains(s) {
                leaked.push(format!("{}: {s:?} in {:?}", c["kind"], out.text));
            }
        }
        for k in c["keep"].as_array().unwrap() {
            let k = k.as_str().unwrap();
            assert!(out.text.contains(k), "over-redacted {k:?}: {:?}", out.text);
        }
        if c["kind"] == "clean" {
            clean += 1;
            if out.text != input {
                changed.push(format!("{:?}\n=> {:?}", input, out.text));
            }
        }
        for s in &out.spans {
            assert!(
                out.text[s.start..s.end].contains("redacted")
                    || out.text[s.start..s.end].starts_with("{{")
            );
        }
    }
    println!(
        "cases {n}; planted secrets {planted}; recall {:.3}",
        1.0 - leaked.len() as f64 / planted as f64
    );
    println!(
        "secret-free configs {clean}; false-positive rate {:.3}",
        changed.len() as f64 / clean as f64
    );
    for l in &leaked {
        println!("LEAK {l}");
    }
    for c in &changed {
        println!("FALSE-POSITIVE {c}");
    }
    assert!(n >= 150);
    assert!(
        leaked.is_empty(),
        "{} planted secrets left visible",
        leaked.len()
    );
    assert!(
        changed.is_empty(),
        "{} secret-free configs changed",
        changed.len()
    );
}

#[test]
fn shape_is_kept() {
    let r = redact_patterns("snmp-server community Fk3Community RO");
    assert_eq!(
        r.text,
        "snmp-server community ••••[redacted:snmp-community] RO"
    );
    assert_eq!(r.spans.len(), 1);
    assert_eq!(r.spans[0].rule_id, "pattern.snmp-community");
    assert_eq!(
        &r.text[r.spans[0].start..r.spans[0].end],
        "••••[redacted:snmp-community]"
    );
}

#[test]
fn exact_layer_variants() {
    let mut b = ExactSecrets::builder();
    b.add("core-pw", b"Fake-Pa55/word+x".to_vec());
    b.add("api", b"FAKEFAKEtoken123".to_vec());
    b.add("tiny", b"ab".to_vec());
    let e = b.build();
    assert_eq!(e.len(), 2);
    assert_eq!(e.skipped(), 1);
    let cases = [
        "login with Fake-Pa55/word+x now",
        "prefixFake-Pa55/word+xsuffix",
        "url ?p=Fake-Pa55%2Fword%2Bx&x=1",
        "b64: RmFrZS1QYTU1L3dvcmQreA==",
        "embedded b64: QUFBRmFrZS1QYTU1L3dvcmQreEJCQg==",
        "wrapped: Fake-Pa55/wo\r\nrd+x end",
        "wrapped2: FAKEFAKEto\nken123",
    ];
    for c in cases {
        let r = redact(c, &e);
        assert!(
            !r.text.contains("Fake-Pa55") && !r.text.contains("FAKEFAKEto"),
            "{c:?} -> {:?}",
            r.text
        );
        assert!(r.text.contains("{{keychain:"), "{c:?} -> {:?}", r.text);
        assert!(r.text.len() <= max_redacted_len(c.len()));
    }
    // base64 at other alignments inside a longer blob
    for pre in ["A", "AB", "ABC"] {
        let mut blob = pre.as_bytes().to_vec();
        blob.extend_from_slice(b"Fake-Pa55/word+x");
        blob.extend_from_slice(b"tail");
        let enc = b64(&blob);
        let r = redact(&format!("data {enc}"), &e);
        assert!(
            r.text.contains("{{keychain:core-pw}}"),
            "{pre}: {enc} -> {}",
            r.text
        );
    }
    // both layers, spans point into the output
    let r = redact(
        "user x password Fake-Pa55/word+x and snmp-server community Fk3Comm RO",
        &e,
    );
    assert!(r.text.contains("{{keychain:core-pw}}"));
    assert!(r.text.contains("••••[redacted:snmp-community]"));
    for s in &r.spans {
        let t = &r.text[s.start..s.end];
        assert!(t.starts_with("{{") || t.starts_with("••••"), "{t:?}");
    }
}

#[test]
fn exact_layer_wrapped_encodings() {
    let mut b = ExactSecrets::builder();
    b.add("core-pw", b"Fake-Pa55/word+x".to_vec());
    let e = b.build();
    // URL-encoded (both hex cases) and base64 (std/URL-safe, any alignment)
    // forms, split by a terminal wrap at every position
    let mut forms = vec![
        "Fake-Pa55%2Fword%2Bx".to_string(),
        "Fake-Pa55%2fword%2bx".to_string(),
        b64(b"Fake-Pa55/word+x"),
        b64(b"Fake-Pa55/word+x").replace('+', "-").replace('/', "_"),
    ];
    let whole = forms.len();
    // inside a longer base64 blob only the characters fully determined by
    // the value are searched (characters 4..20 here)
    for pre in ["A", "AB"] {
        forms.push(b64(format!("{pre}Fake-Pa55/word+xtail").as_bytes()));
    }
    for (i, f) in forms.iter().enumerate() {
        let cuts = if i < whole { 1..f.len() } else { 5..20 };
        for cut in cuts {
            for nl in ["\n", "\r\n"] {
                let input = format!("data {}{nl}{} end", &f[..cut], &f[cut..]);
                let r = redact(&input, &e);
                assert!(
                    r.text.contains("{{keychain:core-pw}}") && !r.text.contains('\n'),
                    "{input:?} -> {:?}",
                    r.text
                );
                assert!(r.text.len() <= max_redacted_len(input.len()));
            }
        }
    }
}

#[test]
fn output_bound_with_long_references() {
    let mut b = ExactSecrets::builder();
    b.add(&"€".repeat(64), b"Secr3t".to_vec());
    b.add_with_reference(&"{{ü".repeat(40), b"0ther5".to_vec());
    let e = b.build();
    for input in ["Secr3t", "0ther5", "Secr3t0ther5", "Sec\nr3t", "0th\r\ner5"] {
        let r = redact(input, &e);
        assert!(!r.text.contains("Secr3t") && !r.text.contains("0ther5"));
        assert!(
            r.text.len() <= max_redacted_len(input.len()),
            "{input:?} -> {} bytes",
            r.text.len()
        );
    }
}

fn b64(d: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for c in d.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..c.len() + 1 {
            o.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    o
}

/// Replace every pattern mask `••••[redacted:LABEL]` by `<M>`.
fn normalise_masks(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("••••[redacted:") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        match after.find(']') {
            Some(j) => {
                out.push_str("<M>");
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The generated families (policy/corpus/redact_families.jsonl, from
/// gen_redact_families.py): every planted value masked and nothing else
/// changed — the output, masks written `<M>`, equals the expected text
/// exactly. Cases with keychain values run both layers.
#[test]
fn corpus_families() {
    let text = include_str!("../corpus/redact_families.jsonl");
    let hand = include_str!("../corpus/redact.jsonl").lines().count();
    let mut per: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut wrong = Vec::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        n += 1;
        let c: Value = serde_json::from_str(line).unwrap();
        let input = c["text"].as_str().unwrap();
        let expect = c["expect"].as_str().unwrap();
        let exact = c["exact"].as_array().unwrap();
        let out = if exact.is_empty() {
            redact_patterns(input)
        } else {
            let mut b = ExactSecrets::builder();
            for e in exact {
                b.add(
                    e[0].as_str().unwrap(),
                    e[1].as_str().unwrap().as_bytes().to_vec(),
                );
            }
            redact(input, &b.build())
        };
        assert!(out.text.len() <= max_redacted_len(input.len()));
        let fam = match c.get("form").and_then(Value::as_str) {
            Some(f) => format!("{}/{f}", c["family"].as_str().unwrap()),
            None => c["family"].as_str().unwrap().to_string(),
        };
        let got = normalise_masks(&out.text);
        let leaked = c["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| out.text.contains(s.as_str().unwrap()));
        let e = per.entry(fam.clone()).or_default();
        e.0 += 1;
        if got != expect || leaked {
            e.1 += 1;
            wrong.push(format!(
                "{fam}\n   in  {input:?}\n   got {got:?}\n   want {expect:?}"
            ));
        }
    }
    for (f, (k, bad)) in &per {
        println!("family {f:<28} cases {k:>4} wrong {bad}");
    }
    for w in wrong.iter().take(60) {
        println!("WRONG {w}");
    }
    println!("hand cases {hand}; generated cases {n}");
    assert!(n >= 2 * hand, "generated redaction corpus too small");
    assert!(wrong.is_empty(), "{} of {n} cases wrong", wrong.len());
}
