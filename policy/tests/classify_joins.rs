//! Per-vendor property: for every read-only command R and every dangerous
//! command D of the hand corpus (policy/corpus/classify.tsv), every way the
//! vendor can join them (its honoured separators, substitutions, blocks,
//! wrappers: the join is dangerous) and every way it cannot (foreign
//! separators, control characters: the join is at least unknown) is never
//! read-only. The join catalogue is `gatehouse_policy::joins`, shared with
//! the `policy_joins` fuzz target.

use gatehouse_policy::joins::{JoinCorpus, Spacing, check_join, join, joins};
use gatehouse_policy::{Class, Vendor, classify};

fn corpus() -> JoinCorpus {
    JoinCorpus::parse(include_str!("../corpus/classify.tsv"))
}

fn property(vendor: Vendor) {
    let c = corpus();
    let (_, ro, dg) = c.by_vendor.iter().find(|e| e.0 == vendor).unwrap();
    assert!(ro.len() >= 4 && dg.len() >= 3, "{vendor}: corpus too small");
    // the ingredients are what the corpus says they are
    for r in ro {
        assert_eq!(
            classify(vendor, r).class,
            Class::ReadOnly,
            "{vendor}: {r:?}"
        );
    }
    for d in dg {
        assert_eq!(
            classify(vendor, d).class,
            Class::Dangerous,
            "{vendor}: {d:?}"
        );
    }
    let forms = joins(vendor);
    let (mut n, mut bad) = (0usize, Vec::new());
    for r in ro {
        for d in dg {
            for f in &forms {
                let Some(joined) = join(f, r, d, Spacing::AsIs) else {
                    continue;
                };
                n += 1;
                if let Some(got) = check_join(vendor, f, &joined) {
                    bad.push(format!(
                        "{} ({}): {joined:?} is {got}",
                        f.name,
                        if f.honoured {
                            "honoured"
                        } else {
                            "not honoured"
                        }
                    ));
                }
            }
        }
    }
    println!(
        "{vendor}: {} read-only x {} dangerous x {} forms = {n} joins, {} wrong",
        ro.len(),
        dg.len(),
        forms.len(),
        bad.len()
    );
    for b in bad.iter().take(40) {
        println!("WRONG {b}");
    }
    assert!(n > 500, "{vendor}: only {n} joins");
    assert!(
        bad.is_empty(),
        "{vendor}: {} joins misclassified",
        bad.len()
    );
}

#[test]
fn joins_routeros() {
    property(Vendor::RouterOs);
}

#[test]
fn joins_ios() {
    property(Vendor::Ios);
}

#[test]
fn joins_iosxe() {
    property(Vendor::IosXe);
}

#[test]
fn joins_nxos() {
    property(Vendor::NxOs);
}

#[test]
fn joins_eos() {
    property(Vendor::Eos);
}

#[test]
fn joins_junos() {
    property(Vendor::Junos);
}

#[test]
fn joins_linux() {
    property(Vendor::Linux);
}

/// The honoured flag matches the vendor tables: a form is honoured only
/// where the device runs both commands.
#[test]
fn honoured_forms_per_vendor() {
    let names = |v: Vendor| -> Vec<&'static str> {
        joins(v)
            .into_iter()
            .filter(|f| f.honoured)
            .map(|f| f.name)
            .collect()
    };
    assert!(names(Vendor::NxOs).contains(&"semicolon"));
    assert!(names(Vendor::Eos).contains(&"semicolon"));
    assert!(!names(Vendor::Ios).contains(&"semicolon"));
    assert!(!names(Vendor::Junos).contains(&"semicolon"));
    assert!(names(Vendor::Linux).contains(&"dollar-paren"));
    assert!(names(Vendor::RouterOs).contains(&"do-block"));
}
