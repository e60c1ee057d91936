//! Replays the cargo-fuzz seed corpora (fuzz/corpus/*) through the same entry
//! points the fuzz targets call, so a crash found by fuzzing stays fixed.

use std::path::Path;

fn replay(dir: &str, f: fn(&[u8])) -> usize {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("corpus")
        .join(dir);
    let mut n = 0;
    for e in std::fs::read_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        f(&data);
        n += 1;
    }
    n
}

#[test]
fn replay_policy_classify() {
    assert!(replay("policy_classify", gatehouse_policy::fuzz_classify) > 10);
}

#[test]
fn replay_policy_redact() {
    assert!(replay("policy_redact", gatehouse_policy::fuzz_redact) > 10);
}

#[test]
fn replay_policy_joins() {
    fn f(data: &[u8]) {
        static C: std::sync::OnceLock<gatehouse_policy::joins::JoinCorpus> =
            std::sync::OnceLock::new();
        let c = C.get_or_init(|| {
            gatehouse_policy::joins::JoinCorpus::parse(include_str!("../corpus/classify.tsv"))
        });
        gatehouse_policy::fuzz_joins(c, data);
    }
    assert!(replay("policy_joins", f) > 10);
}
