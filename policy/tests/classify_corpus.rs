//! Replays policy/corpus/classify.tsv: asserts the exact expected class for
//! every case, zero dangerous commands classed read-only, and prints
//! per-class precision/recall.

use gatehouse_policy::{Class, Vendor, classify};
use std::str::FromStr;

/// Decode the corpus escapes: `\n`, `\r` and `\xHH` for the control
/// characters the families use.
fn decode(s: &str) -> String {
    let mut out = s.replace("\\n", "\n").replace("\\r", "\r");
    for (esc, ch) in [
        ("\\x15", "\u{15}"),
        ("\\x7f", "\u{7f}"),
        ("\\x08", "\u{8}"),
        ("\\x03", "\u{3}"),
    ] {
        out = out.replace(esc, ch);
    }
    out
}

/// (vendor, expected class, command, family) for every line of a corpus.
fn cases_of(text: &str) -> Vec<(Vendor, Class, String, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.splitn(4, '\t');
        let v =
            Vendor::from_str(f.next().unwrap()).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let c =
            Class::from_str(f.next().unwrap()).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let cmd = decode(
            f.next()
                .unwrap_or_else(|| panic!("line {}: no command", n + 1)),
        );
        let family = f.next().unwrap_or("hand").to_string();
        out.push((v, c, cmd, family));
    }
    out
}

fn cases() -> Vec<(Vendor, Class, String)> {
    cases_of(include_str!("../corpus/classify.tsv"))
        .into_iter()
        .map(|(v, c, cmd, _)| (v, c, cmd))
        .collect()
}

/// The generated families (policy/corpus/classify_families.tsv, from
/// gen_classify.py): exact class for every case, none read-only unless
/// expected, and the corpora together at least twice the hand corpus.
#[test]
fn corpus_families() {
    let hand = cases().len();
    let generated = cases_of(include_str!("../corpus/classify_families.tsv"));
    println!("hand cases {hand}; generated cases {}", generated.len());
    assert!(
        generated.len() >= hand,
        "corpora must be at least twice the hand corpus"
    );
    let mut per_family: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let mut failures = Vec::new();
    let mut unsafe_ro = Vec::new();
    for (v, want, cmd, fam) in &generated {
        let got = classify(*v, cmd);
        let e = per_family.entry(fam.as_str()).or_default();
        e.0 += 1;
        if got.class != *want {
            e.1 += 1;
            failures.push(format!(
                "{fam}\t{v}\t{want}\tgot {}\t{cmd:?}\t{:?}",
                got.class, got.rule_ids
            ));
        }
        if *want != Class::ReadOnly && got.class == Class::ReadOnly {
            unsafe_ro.push(format!("{v} {cmd:?} expected {want}"));
        }
    }
    for (fam, (n, bad)) in &per_family {
        println!("family {fam:<11} cases {n:>4} mismatches {bad}");
    }
    for f in &failures {
        println!("MISMATCH {f}");
    }
    assert!(unsafe_ro.is_empty(), "classed read-only: {unsafe_ro:#?}");
    assert!(failures.is_empty(), "{} mismatches", failures.len());
}

#[test]
fn verdict_flags_and_parts() {
    let v = classify(Vendor::Ios, "sh run | i snmp");
    assert!(v.output_has_secrets);
    assert_eq!(v.parts.len(), 2);
    assert!(classify(Vendor::Ios, "enable").needs_credential);
    assert!(classify(Vendor::RouterOs, "/export").output_has_secrets);
    assert!(classify(Vendor::Junos, "show configuration | display set").output_has_secrets);
    let v = classify(Vendor::Linux, "ls && reboot");
    assert_eq!(v.class, Class::Dangerous);
    assert!(v.rule_ids.iter().any(|r| r == "linux.reboot"));
    assert!(!v.reasons.is_empty());
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.contains("\"dangerous\""));
    let back: gatehouse_policy::Verdict = serde_json::from_str(&json).unwrap();
    assert_eq!(back.class, Class::Dangerous);
}

#[test]
fn http_calls() {
    use gatehouse_policy::{HttpCall, classify_http};
    let c = |m: &str, p: &str, ro: bool| {
        classify_http(&HttpCall {
            method: m.into(),
            path: p.into(),
            connector_read_only: ro,
            ..Default::default()
        })
        .class
    };
    assert_eq!(c("GET", "/api/v1/items", true), Class::ReadOnly);
    assert_eq!(c("GET", "/api/v1/items", false), Class::Moderate);
    assert_eq!(c("HEAD", "https://x.example/api", true), Class::ReadOnly);
    assert_eq!(c("POST", "/api/v1/items", true), Class::Moderate);
    assert_eq!(c("BREW", "/pot", true), Class::Unknown);
    assert_eq!(c("POST", "/rest/ip/address/print", false), Class::ReadOnly);
    assert_eq!(c("POST", "/rest/system/reboot", false), Class::Dangerous);
    assert_eq!(c("GET", "/rest/interface", false), Class::ReadOnly);
    assert_eq!(c("PATCH", "/rest/interface/ether1", false), Class::Moderate);
    assert_eq!(c("DELETE", "/rest/ip/address/*1", false), Class::Moderate);
    let shared = classify_http(&HttpCall {
        method: "GET".into(),
        path: "/x".into(),
        connector_read_only: true,
        writes_shared_records: true,
        ..Default::default()
    });
    assert_eq!(shared.class, Class::Moderate);
}

#[test]
fn org_policy() {
    use gatehouse_policy::{OrgOutcome, OrgPolicy, Pattern, PatternKind, apply_org_policy};
    let p = OrgPolicy {
        allow: vec![Pattern {
            id: "runbook-1".into(),
            vendor: Some(Vendor::Ios),
            kind: PatternKind::Exact("clear counters".into()),
        }],
        block: vec![Pattern {
            id: "no-debug".into(),
            vendor: None,
            kind: PatternKind::Prefix("debug".into()),
        }],
        block_dangerous: true,
        block_unknown: false,
        autopilot_moderate: false,
        connect_needs_presence: false,
        connector_classes: Vec::new(),
        mcp_tools: [("lab/lookup_vlan".to_string(), Class::ReadOnly)].into(),
    };
    let v = apply_org_policy(&p, classify(Vendor::Ios, "clear  counters"));
    assert_eq!(
        v.org_policy.as_ref().unwrap().outcome,
        OrgOutcome::PreApproved
    );
    assert!(v.is_allowed_without_approval());
    let v = apply_org_policy(&p, classify(Vendor::Ios, "reload"));
    assert_eq!(v.org_policy.as_ref().unwrap().outcome, OrgOutcome::Blocked);
    assert_eq!(v.class, Class::Dangerous);
    let v = apply_org_policy(&p, classify(Vendor::Ios, "show ver\ndebug ip packet"));
    assert_eq!(
        v.org_policy.as_ref().unwrap().rule_id.as_deref(),
        Some("no-debug")
    );
    let v = apply_org_policy(&p, classify(Vendor::Ios, "show version"));
    assert_eq!(v.org_policy.as_ref().unwrap().outcome, OrgOutcome::NoMatch);
    let s = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<OrgPolicy>(&s).unwrap(), p);
}

#[test]
fn vendor_names() {
    for v in Vendor::ALL {
        assert_eq!(Vendor::from_str(&v.to_string()).unwrap(), v);
    }
    assert_eq!(Vendor::parse_platform("onvif-camera"), None);
    assert_eq!(Vendor::parse_platform("other"), None);
    assert!(
        Class::ReadOnly < Class::Moderate
            && Class::Moderate < Class::Unknown
            && Class::Unknown < Class::Dangerous
    );
    assert_eq!(Class::ReadOnly.to_string(), "read-only");
}

#[test]
fn huge_and_deep_inputs_are_unknown_not_panics() {
    let big = "show version\n".repeat(10_000);
    assert_eq!(classify(Vendor::Ios, &big).class, Class::Unknown);
    let mut deep = "ls".to_string();
    for _ in 0..20 {
        deep = format!("sh -c {:?}", deep);
    }
    assert_ne!(classify(Vendor::Linux, &deep).class, Class::ReadOnly);
    let nested = "$(".repeat(500);
    assert_eq!(classify(Vendor::Linux, &nested).class, Class::Unknown);
}
